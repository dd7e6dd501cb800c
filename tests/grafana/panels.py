#!/usr/bin/env python3
"""Check the flowvis Grafana dashboards: their JSON, and every panel's SQL
against a real ClickHouse, as Grafana and grafana-clickhouse-datasource
would run it. For test_grafana_dashboards.sh.

    panels.py lint DASHBOARD_DIR
    panels.py run DASHBOARD_DIR EXPECTED_DIR CLICKHOUSE_URL [--update]

lint: every dashboard parses; its only datasource is the `datasource`
variable of type grafana-clickhouse-datasource (every panel, target and
query variable points at ${datasource}); every panel has an id, a
gridPos inside the 24 columns that overlaps no other panel's, and a SQL
query of the right format (0, time series, for a timeseries panel; 1,
table, otherwise); the SQL uses only the plugin macros that work on
ClickHouse 18.16 (MACROS) and only variables the dashboard defines, as
${name:singlequote}; every query variable is multi-value with "All" and
the custom all value '__all__'; uids and titles are unique.

run: for each dashboard, each query variable and each panel query, for
each variable setting of VARSETS (just the first when the query uses no
variable) and each macro dialect of the plugin
(DIALECTS), expands the variables as Grafana does and the macros as the
plugin does, for the time range and interval of fixture.py, sends the
query to ClickHouse's HTTP interface, and compares the answer
(TabSeparatedWithNamesAndTypes) with the block EXPECTED_DIR/<dashboard>.txt
holds for it. The answer must be the same in both dialects, and every
panel must return rows when every variable is All (else the fixture does
not exercise it). Time series answers must start with a DateTime column
named time, in ascending order, as the plugin's long-to-wide conversion
needs. --update rewrites the expected files from the answers (review
the diff: that is the test's whole point). Exit status 1 on any failure.
"""
import json
import os
import re
import sys
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixture  # noqa: E402

DS_TYPE = "grafana-clickhouse-datasource"
DS = {"type": DS_TYPE, "uid": "${datasource}"}
ALL_VALUE = "'__all__'"
ALL = "$__all"

# The plugin macros a dashboard may use. $__timeInterval is not among them:
# it expands to toStartOfInterval, which ClickHouse 18.16 does not have.
MACROS = {"timeFilter", "fromTime", "toTime", "interval_s"}

# Variable settings: every variable All, then specific selections. A
# variable a dashboard does not define is ignored.
VARSETS = [
    ("all", {}),
    ("one", {"namespace": ["backend"], "node": ["node-b"]}),
    ("two", {"namespace": ["batch", "kube-system"], "node": ["node-a"]}),
]


def macros_v4(frm, to, interval):
    """grafana-clickhouse-datasource 4.x (pkg/macros/macros.go)."""
    return {
        "timeFilter": lambda c: f"{c} >= toDateTime({frm}) AND {c} <= toDateTime({to})",
        "fromTime": lambda: f"toDateTime({frm})",
        "toTime": lambda: f"toDateTime({to})",
        "interval_s": lambda: str(interval),
        "timeInterval": lambda c: f"toStartOfInterval(toDateTime({c}), INTERVAL {interval} second)",
    }


def macros_v2(frm, to, interval):
    """grafana-clickhouse-datasource 2.x, the version for Grafana 8."""
    return {
        "timeFilter": lambda c: f"{c} >= '{frm}' AND {c} <= '{to}'",
        "fromTime": lambda: f"toDateTime(intDiv({frm * 1000},1000))",
        "toTime": lambda: f"toDateTime(intDiv({to * 1000},1000))",
        "interval_s": lambda: str(interval),
        "timeInterval": lambda c: f"toStartOfInterval(toDateTime({c}), INTERVAL {interval} second)",
    }


DIALECTS = [("plugin-4", macros_v4), ("plugin-2", macros_v2)]

MACRO_RE = re.compile(r"\$__(\w+)(?:\(([^()]*)\))?")
# Grafana's variable syntaxes: $name, [[name]] / [[name:fmt]], ${name} / ${name:fmt}.
VAR_RE = re.compile(r"\$(\w+)|\[\[(\w+?)(?::(\w+))?\]\]|\$\{(\w+)(?:\.[^:}]+)?(?::([^}]+))?\}")


def variables_used(sql):
    """[(name, format)] of the Grafana variables in sql (not the $__ macros)."""
    out = []
    for m in VAR_RE.finditer(sql):
        name = m.group(1) or m.group(2) or m.group(4)
        fmt = m.group(3) or m.group(5)
        if name.startswith("__"):
            continue
        out.append((name, fmt))
    return out


def expand_variables(sql, selection):
    """As Grafana's template service does for ${name:singlequote}: the custom
    all value as it is when All is selected, else the quoted values."""

    def sub(m):
        name = m.group(4)
        if not name or name.startswith("__"):
            return m.group(0)
        values = selection[name]
        if values == [ALL]:
            return ALL_VALUE
        return ",".join("'" + v.replace("'", "\\'") + "'" for v in values)

    return VAR_RE.sub(sub, sql)


def expand_macros(sql, table):
    def sub(m):
        name, args = m.group(1), m.group(2)
        fn = table.get(name)
        if fn is None:
            raise ValueError(f"unknown macro $__{name}")
        return fn(args.strip()) if args is not None else fn()

    return MACRO_RE.sub(sub, sql)


def load(dashboard_dir):
    out = []
    for name in sorted(os.listdir(dashboard_dir)):
        if name.endswith(".json"):
            with open(os.path.join(dashboard_dir, name), encoding="utf-8") as f:
                out.append((name, f.read()))
    return out


# ---- lint ------------------------------------------------------------------------


def walk_datasources(node, path, problems):
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "datasource" and v != DS:
                problems.append(f"{path}.{k} is {json.dumps(v)}, expected {json.dumps(DS)}")
            walk_datasources(v, f"{path}.{k}", problems)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            walk_datasources(v, f"{path}[{i}]", problems)


def lint_sql(where, sql, defined, problems):
    if not sql or not sql.strip():
        problems.append(f"{where}: no SQL")
        return
    for m in MACRO_RE.finditer(sql):
        if m.group(1) not in MACROS:
            problems.append(f"{where}: macro $__{m.group(1)} (allowed: {sorted(MACROS)})")
    for name, fmt in variables_used(sql):
        if name not in defined:
            problems.append(f"{where}: variable {name} is not defined")
        if fmt != "singlequote":
            problems.append(f"{where}: variable {name} used as format {fmt!r}, "
                            "expected ${" + name + ":singlequote}")
    if sql.rstrip().endswith(";"):
        problems.append(f"{where}: ends with ';'")
    if re.search(r"\bFORMAT\s+\w+\s*$", sql, re.I):
        problems.append(f"{where}: has a FORMAT clause (the plugin sets the format)")


def overlaps(a, b):
    return (a["x"] < b["x"] + b["w"] and b["x"] < a["x"] + a["w"] and
            a["y"] < b["y"] + b["h"] and b["y"] < a["y"] + a["h"])


def lint_dashboard(name, text, problems):
    try:
        d = json.loads(text)
    except json.JSONDecodeError as e:
        problems.append(f"{name}: not JSON: {e}")
        return None
    for key in ("uid", "title", "panels", "templating", "schemaVersion"):
        if key not in d:
            problems.append(f"{name}: no {key}")
            return None
    if d["schemaVersion"] < 36:
        problems.append(f"{name}: schemaVersion {d['schemaVersion']} < 36")
    walk_datasources(d, name, problems)
    variables = d["templating"]["list"]
    ds_vars = [v for v in variables if v.get("type") == "datasource"]
    if len(ds_vars) != 1 or ds_vars[0].get("name") != "datasource" or \
            ds_vars[0].get("query") != DS_TYPE:
        problems.append(f"{name}: needs exactly one datasource variable `datasource` "
                        f"of type {DS_TYPE}")
    defined = set()
    for v in variables:
        if v.get("type") == "datasource":
            continue
        vn = v.get("name")
        defined.add(vn)
        if v.get("type") != "query":
            problems.append(f"{name}: variable {vn} is of type {v.get('type')}, expected query")
            continue
        if not (v.get("includeAll") and v.get("multi") and v.get("allValue") == ALL_VALUE):
            problems.append(f"{name}: variable {vn} must be multi-value with All = {ALL_VALUE}")
        if v.get("definition") != v.get("query"):
            problems.append(f"{name}: variable {vn}: definition and query differ")
        lint_sql(f"{name}: variable {vn}", v.get("query"), defined, problems)
    if not d["panels"]:
        problems.append(f"{name}: no panels")
    ids, grids = set(), []
    for p in d["panels"]:
        pid = p.get("id")
        where = f"{name}: panel {pid} {p.get('title')!r}"
        if not isinstance(pid, int) or pid <= 0 or pid in ids:
            problems.append(f"{where}: id missing, not a positive integer, or repeated")
        ids.add(pid)
        g = p.get("gridPos") or {}
        if not all(isinstance(g.get(k), int) for k in "xywh") or g["w"] <= 0 or \
                g["h"] <= 0 or g["x"] < 0 or g["y"] < 0 or g["x"] + g["w"] > 24:
            problems.append(f"{where}: gridPos {g} is not inside the 24 columns")
        else:
            for other_id, og in grids:
                if overlaps(g, og):
                    problems.append(f"{where}: gridPos {g} overlaps panel {other_id} {og}")
            grids.append((pid, g))
        if p.get("type") == "row" or "panels" in p:
            problems.append(f"{where}: rows are not used; panels stay flat")
        targets = p.get("targets") or []
        if not targets:
            problems.append(f"{where}: no query")
        want_format = 0 if p.get("type") == "timeseries" else 1
        for t in targets:
            if t.get("editorType") != "sql":
                problems.append(f"{where}: target {t.get('refId')} is not a SQL query")
            if t.get("format") != want_format:
                problems.append(f"{where}: target {t.get('refId')} format {t.get('format')}, "
                                f"expected {want_format} for a {p.get('type')} panel")
            lint_sql(f"{where} target {t.get('refId')}", t.get("rawSql"), defined, problems)
    return d


def cmd_lint(dashboard_dir):
    problems = []
    uids, titles, count = {}, {}, 0
    for name, text in load(dashboard_dir):
        d = lint_dashboard(name, text, problems)
        count += 1
        if d is None:
            continue
        for seen, key in ((uids, "uid"), (titles, "title")):
            if d[key] in seen:
                problems.append(f"{name}: {key} {d[key]!r} is also {seen[d[key]]}'s")
            seen[d[key]] = name
        print(f"{name}: {len(d['panels'])} panels, "
              f"variables {[v['name'] for v in d['templating']['list']]}")
    if count == 0:
        problems.append(f"no dashboard in {dashboard_dir}")
    for p in problems:
        print(f"FAIL: {p}", file=sys.stderr)
    return 1 if problems else 0


# ---- run ---------------------------------------------------------------------------


def clickhouse(url, sql):
    """(ok, text): the answer, or the server's error."""
    req = urllib.request.Request(
        url.rstrip("/") + "/?" + urllib.parse.urlencode({"database": "default"}),
        data=(sql + "\nFORMAT TabSeparatedWithNamesAndTypes").encode(), method="POST")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return True, r.read().decode()
    except urllib.error.HTTPError as e:
        return False, e.read().decode(errors="replace").strip()


def queries(d):
    """(key, title, sql, is_series) for each query variable and panel target."""
    for v in d["templating"]["list"]:
        if v.get("type") == "query":
            yield f"variable {v['name']}", v["name"], v["query"], False
    for p in d["panels"]:
        for t in p["targets"]:
            yield (f"panel {p['id']} {t['refId']}", p["title"], t["rawSql"],
                   p["type"] == "timeseries")


def selection_for(d, assignments):
    sel = {}
    for v in d["templating"]["list"]:
        if v.get("type") == "query":
            sel[v["name"]] = assignments.get(v["name"], [ALL])
    return sel


def series_problem(answer):
    lines = answer.rstrip("\n").split("\n")
    if len(lines) < 2:
        return "no header"
    names, types = lines[0].split("\t"), lines[1].split("\t")
    if names[0] != "time" or types[0] != "DateTime":
        return f"first column is {names[0]} {types[0]}, expected time DateTime"
    times = [line.split("\t")[0] for line in lines[2:]]
    if times != sorted(times):
        return "rows are not in ascending time order"
    return None


def cmd_run(dashboard_dir, expected_dir, url, update):
    failures = 0
    checked = 0
    frm, to, interval = fixture.WINDOW_FROM, fixture.WINDOW_TO, fixture.INTERVAL_S
    for name, text in load(dashboard_dir):
        d = json.loads(text)
        stem = name[:-len(".json")]
        failures_before = failures
        blocks = []
        for key, title, sql, is_series in queries(d):
            # A query without variables answers the same to every setting.
            varsets = VARSETS if variables_used(sql) else VARSETS[:1]
            for set_name, assignments in varsets:
                sel = selection_for(d, assignments)
                label = " ".join(f"{k}={','.join(v)}" for k, v in sorted(sel.items()))
                head = f"## {key} {title!r} [{set_name}: {label}]"
                answers, refused = {}, False
                for dialect, macros in DIALECTS:
                    q = expand_macros(expand_variables(sql, sel), macros(frm, to, interval))
                    ok, answer = clickhouse(url, q)
                    if not ok:
                        print(f"FAIL: {stem}: {key} {title!r} [{set_name}, {dialect}]: "
                              f"ClickHouse refused the query: {answer}\n--- query ---\n{q}",
                              file=sys.stderr)
                        failures += 1
                        refused = True
                        answer = f"<error: {answer.splitlines()[0] if answer else ''}>\n"
                    answers[dialect] = answer
                first = answers[DIALECTS[0][0]]
                if refused:
                    blocks.append((head, first))
                    continue
                for dialect, other in answers.items():
                    if other != first:
                        print(f"FAIL: {stem}: {key} {title!r} [{set_name}]: {dialect} answers "
                              f"differently from {DIALECTS[0][0]}:\n{other}", file=sys.stderr)
                        failures += 1
                if is_series and (problem := series_problem(first)):
                    print(f"FAIL: {stem}: {key} {title!r}: time series: {problem}",
                          file=sys.stderr)
                    failures += 1
                if set_name == "all" and first.count("\n") <= 2:
                    print(f"FAIL: {stem}: {key} {title!r}: no rows with every variable at All: "
                          "the fixture does not exercise this query", file=sys.stderr)
                    failures += 1
                blocks.append((head, first))
                checked += 1
        got = "".join(f"{h}\n{a}\n" for h, a in blocks)
        path = os.path.join(expected_dir, stem + ".txt")
        if update:
            if failures > failures_before:
                print(f"FAIL: not writing {path}: its queries failed", file=sys.stderr)
                continue
            with open(path, "w", encoding="utf-8") as f:
                f.write(got)
            print(f"wrote {path}")
            continue
        try:
            with open(path, encoding="utf-8") as f:
                want = f.read()
        except FileNotFoundError:
            print(f"FAIL: {path} is missing (run with --update and review it)", file=sys.stderr)
            failures += 1
            continue
        failures += compare(stem, parse_blocks(want), blocks)
    print(f"{checked} query answers checked ({len(DIALECTS)} macro dialects each)")
    return 1 if failures else 0


def parse_blocks(text):
    out, head, body = {}, None, []
    for line in text.split("\n"):
        if line.startswith("## "):
            if head is not None:
                out[head] = "\n".join(body).rstrip("\n") + "\n"
            head, body = line, []
        elif head is not None:
            body.append(line)
    if head is not None:
        out[head] = "\n".join(body).rstrip("\n") + "\n"
    return out


def compare(stem, want, blocks):
    failures = 0
    got_heads = set()
    for head, answer in blocks:
        got_heads.add(head)
        if head not in want:
            print(f"FAIL: {stem}: no expected answer for {head}; got:\n{answer}", file=sys.stderr)
            failures += 1
        elif want[head] != answer:
            print(f"FAIL: {stem}: {head}\n--- expected ---\n{want[head]}--- got ---\n{answer}",
                  file=sys.stderr)
            failures += 1
        else:
            print(f"ok: {stem}: {head[3:]}")
    for head in sorted(set(want) - got_heads):
        print(f"FAIL: {stem}: expected {head}, but the dashboard has no such query",
              file=sys.stderr)
        failures += 1
    return failures


def main(argv):
    if len(argv) == 2 and argv[0] == "lint":
        return cmd_lint(argv[1])
    if len(argv) in (4, 5) and argv[0] == "run" and argv[4:] in ([], ["--update"]):
        return cmd_run(argv[1], argv[2], argv[3], argv[4:] == ["--update"])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
