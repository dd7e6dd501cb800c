/*
 * query.c - the UI's query API over the stores (query.h, docs/api.md):
 * parameters checked against tables, SQL built from those tables with
 * every request value as an argument, answers written as JSON.
 */
#include "store/query.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/clock.h"
#include "base/err.h"

/* ------------------------------------------------------------------------
 * Tables: parameters, metrics, groups, where aliases
 * ------------------------------------------------------------------------ */

enum param {
    PA_START,
    PA_END,
    PA_SINCE,
    PA_WHERE,
    PA_LIMIT,
    PA_OFFSET,
    PA_SORT,
    PA_ORDER,
    PA_COLUMNS,
    PA_STEP,
    PA_METRIC,
    PA_GROUP,
    PA_TOP,
    PA_COUNT_
};

#define K_FLOWS (1u << FV_QUERY_FLOWS)
#define K_SERIES (1u << FV_QUERY_SERIES)
#define K_TOP (1u << FV_QUERY_TOP)

static const struct {
    const char *name;
    unsigned kinds; /* endpoints that take it */
} params[PA_COUNT_] = {
    [PA_START] = {"start", K_FLOWS | K_SERIES | K_TOP},
    [PA_END] = {"end", K_FLOWS | K_SERIES | K_TOP},
    [PA_SINCE] = {"since", K_FLOWS | K_SERIES | K_TOP},
    [PA_WHERE] = {"where", K_FLOWS | K_SERIES | K_TOP},
    [PA_LIMIT] = {"limit", K_FLOWS | K_TOP},
    [PA_OFFSET] = {"offset", K_FLOWS},
    [PA_SORT] = {"sort", K_FLOWS},
    [PA_ORDER] = {"order", K_FLOWS},
    [PA_COLUMNS] = {"columns", K_FLOWS},
    [PA_STEP] = {"step", K_SERIES},
    [PA_METRIC] = {"metric", K_SERIES | K_TOP},
    [PA_GROUP] = {"group", K_SERIES | K_TOP},
    [PA_TOP] = {"top", K_SERIES},
};

static const char *const endpoint[] = {
    [FV_QUERY_FLOWS] = "/api/v1/flows",
    [FV_QUERY_SERIES] = "/api/v1/series",
    [FV_QUERY_TOP] = "/api/v1/top",
};

struct metric_def {
    const char *name;
    int col;   /* the summed column; -1: distinct 5-tuples */
    int rev;   /* the same in the other direction; -1: none */
    bool rate; /* bits per second: sum * 8 / seconds */
};

static const struct metric_def metrics[FV_METRIC_COUNT_] = {
    [FV_METRIC_BYTES] = {"bytes", FV_C_OCT_DELTA, FV_C_ROCT_DELTA, false},
    [FV_METRIC_REV_BYTES] = {"reverseBytes", FV_C_ROCT_DELTA, FV_C_OCT_DELTA, false},
    [FV_METRIC_PACKETS] = {"packets", FV_C_PKT_DELTA, FV_C_RPKT_DELTA, false},
    [FV_METRIC_REV_PACKETS] = {"reversePackets", FV_C_RPKT_DELTA, FV_C_PKT_DELTA, false},
    [FV_METRIC_THROUGHPUT] = {"throughput", FV_C_OCT_DELTA, FV_C_ROCT_DELTA, true},
    [FV_METRIC_REV_THROUGHPUT] = {"reverseThroughput", FV_C_ROCT_DELTA, FV_C_OCT_DELTA, true},
    [FV_METRIC_FLOWS] = {"flows", -1, -1, false},
};

/* How one part of a group key becomes a label. */
enum part_kind {
    PK_TEXT,      /* one text column as it is */
    PK_POD,       /* namespace, pod name or IP: "ns/pod", or the IP */
    PK_POLICY,    /* namespace, name: "ns/name", or "name" */
    PK_FLOW_TYPE, /* flowType: "intra-node", ... */
    PK_ACTION,    /* rule action: "allow", "drop", "reject", "" */
};

struct part {
    const char *label;   /* name in "labels" */
    enum part_kind kind; /* how it is shown */
    const char *expr[2]; /* SQL of its key columns (two for PK_POD, PK_POLICY) */
};

struct group_def {
    const char *name;
    int nparts;
    struct part part[4];
};

/* A pod when there is one, else the address: pod-to-external flows are
 * grouped by the external address. */
// clang-format off
#define SRC_POD_OR_IP "CASE WHEN length(sourcePodName) = 0 THEN sourceIP ELSE sourcePodName END"
#define DST_POD_OR_IP \
    "CASE WHEN length(destinationPodName) = 0 THEN destinationIP ELSE destinationPodName END"
#define P_SRC_POD {"source", PK_POD, {"sourcePodNamespace", SRC_POD_OR_IP}}
#define P_DST_POD {"destination", PK_POD, {"destinationPodNamespace", DST_POD_OR_IP}}
#define P_SRC_NS {"source", PK_TEXT, {"sourcePodNamespace"}}
#define P_DST_NS {"destination", PK_TEXT, {"destinationPodNamespace"}}
#define P_SRC_NODE {"source", PK_TEXT, {"sourceNodeName"}}
#define P_DST_NODE {"destination", PK_TEXT, {"destinationNodeName"}}
#define P_IN_POLICY(l) {l, PK_POLICY, {"ingressNetworkPolicyNamespace", "ingressNetworkPolicyName"}}
#define P_EG_POLICY(l) {l, PK_POLICY, {"egressNetworkPolicyNamespace", "egressNetworkPolicyName"}}
// clang-format on

static const struct group_def groups[FV_GROUP_COUNT_] = {
    [FV_GROUP_NONE] = {"none", 0, {{NULL, PK_TEXT, {NULL}}}},
    [FV_GROUP_FLOW_TYPE] = {"flow_type", 1, {{"flowType", PK_FLOW_TYPE, {"flowType"}}}},
    [FV_GROUP_SOURCE_POD] = {"source_pod", 1, {P_SRC_POD}},
    [FV_GROUP_DESTINATION_POD] = {"destination_pod", 1, {P_DST_POD}},
    [FV_GROUP_POD_PAIR] = {"pod_pair", 2, {P_SRC_POD, P_DST_POD}},
    [FV_GROUP_SOURCE_NAMESPACE] = {"source_namespace", 1, {P_SRC_NS}},
    [FV_GROUP_DESTINATION_NAMESPACE] = {"destination_namespace", 1, {P_DST_NS}},
    [FV_GROUP_NAMESPACE_PAIR] = {"namespace_pair", 2, {P_SRC_NS, P_DST_NS}},
    [FV_GROUP_SOURCE_NODE] = {"source_node", 1, {P_SRC_NODE}},
    [FV_GROUP_DESTINATION_NODE] = {"destination_node", 1, {P_DST_NODE}},
    [FV_GROUP_NODE_PAIR] = {"node_pair", 2, {P_SRC_NODE, P_DST_NODE}},
    [FV_GROUP_SERVICE] = {"service", 1, {{"service", PK_TEXT, {"destinationServicePortName"}}}},
    [FV_GROUP_POD_SERVICE_PAIR] = {"pod_service_pair",
                                   2,
                                   {P_SRC_POD,
                                    {"destination", PK_TEXT, {"destinationServicePortName"}}}},
    [FV_GROUP_INGRESS_POLICY] = {"ingress_policy", 1, {P_IN_POLICY("policy")}},
    [FV_GROUP_EGRESS_POLICY] = {"egress_policy", 1, {P_EG_POLICY("policy")}},
    [FV_GROUP_POLICY_PAIR] = {"policy_pair",
                              4,
                              {P_EG_POLICY("source"),
                               {"egressAction", PK_ACTION, {"egressNetworkPolicyRuleAction"}},
                               P_IN_POLICY("destination"),
                               {"ingressAction", PK_ACTION, {"ingressNetworkPolicyRuleAction"}}}},
};

static int part_ncols(const struct part *p)
{
    return p->kind == PK_POD || p->kind == PK_POLICY ? 2 : 1;
}

static bool part_numeric(const struct part *p)
{
    return p->kind == PK_FLOW_TYPE || p->kind == PK_ACTION;
}

/* Short names for where=; a name of fv_flow_cols works as well. */
static const struct {
    const char *name;
    int col[2]; /* -1: one column only */
} aliases[] = {
    {"srcip", {FV_C_SRC_IP, -1}},          {"dstip", {FV_C_DST_IP, -1}},
    {"srcport", {FV_C_SRC_PORT, -1}},      {"dstport", {FV_C_DST_PORT, -1}},
    {"proto", {FV_C_PROTO, -1}},           {"namespace", {FV_C_SRC_NS, FV_C_DST_NS}},
    {"pod", {FV_C_SRC_POD, FV_C_DST_POD}}, {"node", {FV_C_SRC_NODE, FV_C_DST_NODE}},
    {"service", {FV_C_SVC_NAME, -1}},      {"policy", {FV_C_IN_POLICY, FV_C_EG_POLICY}},
};

static const struct {
    const char *name;
    int number;
} protocols[] = {{"tcp", 6}, {"udp", 17}, {"sctp", 132}, {"icmp", 1}, {"icmpv6", 58}};

static const char *const flow_types[] = {"unknown", "intra-node", "inter-node", "to-external",
                                         "from-external"};
static const char *const actions[] = {"", "allow", "drop", "reject"};

const char *fv_query_metric_name(enum fv_query_metric m)
{
    return (unsigned)m < FV_METRIC_COUNT_ ? metrics[m].name : "?";
}

const char *fv_query_group_name(enum fv_query_group g)
{
    return (unsigned)g < FV_GROUP_COUNT_ ? groups[g].name : "?";
}

int fv_query_group_nkeys(enum fv_query_group g)
{
    int n = 0;

    for (int i = 0; i < groups[g].nparts; i++)
        n += part_ncols(&groups[g].part[i]);
    return n;
}

/* ------------------------------------------------------------------------
 * Parsing values
 * ------------------------------------------------------------------------ */

static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

#define SHOWN_MAX 60

/* A value as quoted in an error message: at most SHOWN_MAX bytes, control
 * bytes as '?' (the message is JSON-escaped later; this keeps it short
 * and readable). */
static const char *shown(const char *s, size_t len, char buf[SHOWN_MAX + 4])
{
    size_t n = len < SHOWN_MAX ? len : SHOWN_MAX;

    for (size_t i = 0; i < n; i++)
        buf[i] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
    strcpy(buf + n, len > SHOWN_MAX ? "..." : "");
    return buf;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* A decimal number without sign or spaces, at most max. */
static int parse_u64(const char *s, size_t len, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;

    if (len == 0 || len > 20)
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (!is_digit(s[i]) || v > (UINT64_MAX - 9) / 10)
            return -1;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (v > max)
        return -1;
    *out = v;
    return 0;
}

static bool two_digits(const char *s, int *v)
{
    if (!is_digit(s[0]) || !is_digit(s[1]))
        return false;
    *v = (s[0] - '0') * 10 + (s[1] - '0');
    return true;
}

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar
 * (H. Hinnant's days_from_civil). */
static int64_t days_from_civil(int y, int m, int d)
{
    int64_t era, yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int month_days(int y, int m)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

    return m == 2 && leap ? 29 : days[m - 1];
}

/* RFC 3339: 2026-11-21T10:00:00[.frac](Z|+hh:mm|-hh:mm).  't', 'z' and a
 * space for the T are accepted (RFC 3339 allows them), and so is a space
 * for the '+' of the offset: an unescaped '+' in a URL arrives as one.
 * Fractions of a second are dropped. */
static int parse_rfc3339(const char *s, size_t len, int64_t *out)
{
    int y, y2, mo, d, h, mi, sec, oh = 0, om = 0, sign = 0;
    size_t i = 19;
    int64_t t;

    if (len < 20 || !two_digits(s, &y) || !two_digits(s + 2, &y2) || s[4] != '-' ||
        !two_digits(s + 5, &mo) || s[7] != '-' || !two_digits(s + 8, &d) ||
        (s[10] != 'T' && s[10] != 't' && s[10] != ' ') || !two_digits(s + 11, &h) || s[13] != ':' ||
        !two_digits(s + 14, &mi) || s[16] != ':' || !two_digits(s + 17, &sec))
        return -1;
    if (s[i] == '.') {
        size_t f = ++i;
        while (i < len && is_digit(s[i]))
            i++;
        if (i == f)
            return -1;
    }
    if (i + 1 == len && (s[i] == 'Z' || s[i] == 'z')) {
        i++;
    } else if (i + 6 == len && (s[i] == '+' || s[i] == '-' || s[i] == ' ') &&
               two_digits(s + i + 1, &oh) && s[i + 3] == ':' && two_digits(s + i + 4, &om)) {
        sign = s[i] == '-' ? -1 : 1;
        i += 6;
    }
    y = y * 100 + y2;
    if (i != len || mo < 1 || mo > 12 || d < 1 || d > month_days(y, mo) || h > 23 || mi > 59 ||
        sec > 60 || oh > 23 || om > 59)
        return -1;
    t = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - sign * (oh * 3600 + om * 60);
    if (t < 0 || t > (int64_t)FV_QUERY_MAX_TIME)
        return -1;
    *out = t;
    return 0;
}

/* Unix seconds or RFC 3339, within DateTime's range. */
static int parse_time(const char *s, size_t len, int64_t *out)
{
    uint64_t v;

    if (len > 0 && len <= 10 && strspn(s, "0123456789") == len) {
        if (parse_u64(s, len, FV_QUERY_MAX_TIME, &v) < 0)
            return -1;
        *out = (int64_t)v;
        return 0;
    }
    return parse_rfc3339(s, len, out);
}

/* "15m", "1h30m", "7d": whole numbers with units s, m, h, d; not zero.
 * -ERANGE above the longest range. */
static int parse_since(const char *s, size_t len, int64_t *out)
{
    int64_t total = 0;
    size_t i = 0;

    if (len == 0)
        return -EINVAL;
    while (i < len) {
        int64_t v = 0, unit;
        size_t first = i;
        for (; i < len && is_digit(s[i]); i++) {
            v = v * 10 + (s[i] - '0');
            if (v > FV_QUERY_MAX_RANGE)
                return -ERANGE;
        }
        if (i == first || i == len)
            return -EINVAL;
        switch (s[i++]) {
        case 's':
            unit = 1;
            break;
        case 'm':
            unit = 60;
            break;
        case 'h':
            unit = 3600;
            break;
        case 'd':
            unit = 86400;
            break;
        default:
            return -EINVAL;
        }
        total += v * unit;
        if (total > FV_QUERY_MAX_RANGE)
            return -ERANGE;
    }
    if (total == 0)
        return -EINVAL;
    *out = total;
    return 0;
}

/* The index of s (len bytes) in a table of names, or -1. */
static int find_name(const char *s, size_t len, const char *const *names, size_t stride,
                     size_t count)
{
    for (size_t i = 0; i < count; i++) {
        const char *name = *(const char *const *)((const char *)names + i * stride);
        if (name && strlen(name) == len && memcmp(name, s, len) == 0)
            return (int)i;
    }
    return -1;
}

static int find_col(const char *s, size_t len)
{
    return find_name(s, len, &fv_flow_cols[0].name, sizeof(fv_flow_cols[0]), FV_FLOW_NCOLS);
}

/* ------------------------------------------------------------------------
 * Parsing where= clauses
 * ------------------------------------------------------------------------ */

/* The value of a where clause on an integer or DateTime column. */
static int where_number(struct fv_query_where *w, const char *key, size_t klen, const char *v,
                        size_t vlen, char *err, size_t errlen)
{
    enum fv_col_type t = fv_flow_cols[w->col[0]].type;
    uint64_t max = t == FV_COL_U8 ? 255 : t == FV_COL_U16 ? 65535 : INT64_MAX, u;
    char b[SHOWN_MAX + 4];

    if (w->op == FV_QUERY_SUB)
        return fail(err, errlen, "where: %.*s is a number column; ~ needs a text column", (int)klen,
                    key);
    w->numeric = true;
    if (t == FV_COL_DATETIME) {
        if (parse_time(v, vlen, &w->num) < 0)
            return fail(err, errlen, "where: %.*s: '%s' is not unix seconds or an RFC 3339 time",
                        (int)klen, key, shown(v, vlen, b));
        return 0;
    }
    if (w->col[0] == FV_C_PROTO) {
        for (size_t i = 0; i < sizeof(protocols) / sizeof(protocols[0]); i++)
            if (strlen(protocols[i].name) == vlen && strncasecmp(protocols[i].name, v, vlen) == 0) {
                w->num = protocols[i].number;
                return 0;
            }
    }
    if (parse_u64(v, vlen, max, &u) < 0)
        return fail(err, errlen, "where: %.*s: '%s' is not an integer from 0 to %llu%s", (int)klen,
                    key, shown(v, vlen, b), (unsigned long long)max,
                    w->col[0] == FV_C_PROTO ? " or tcp, udp, sctp, icmp, icmpv6" : "");
    w->num = (int64_t)u;
    return 0;
}

/* where=key=value, key!=value or key~value. */
static int parse_where(const char *s, size_t len, struct fv_query_where *w, char *err,
                       size_t errlen)
{
    size_t k = 0, off;
    int col, alias = -1;
    char b[SHOWN_MAX + 4];

    memset(w, 0, sizeof(*w));
    while (k < len && (is_digit(s[k]) || s[k] == '_' || (s[k] >= 'a' && s[k] <= 'z') ||
                       (s[k] >= 'A' && s[k] <= 'Z')))
        k++;
    if (k < len && s[k] == '=') {
        w->op = FV_QUERY_EQ;
        off = k + 1;
    } else if (k + 1 < len && s[k] == '!' && s[k + 1] == '=') {
        w->op = FV_QUERY_NE;
        off = k + 2;
    } else if (k < len && s[k] == '~') {
        w->op = FV_QUERY_SUB;
        off = k + 1;
    } else {
        return fail(err, errlen, "where: '%s' is not key=value, key!=value or key~value",
                    shown(s, len, b));
    }
    if (k == 0)
        return fail(err, errlen, "where: '%s' has no key before the operator", shown(s, len, b));
    col = find_col(s, k);
    if (col < 0)
        alias = find_name(s, k, &aliases[0].name, sizeof(aliases[0]),
                          sizeof(aliases) / sizeof(aliases[0]));
    if (col < 0 && alias < 0)
        return fail(err, errlen,
                    "where: unknown key '%s' (a column of the flows table, or srcip, dstip, "
                    "srcport, dstport, proto, namespace, pod, node, service, policy)",
                    shown(s, k, b));
    w->ncols = alias >= 0 && aliases[alias].col[1] >= 0 ? 2 : 1;
    w->col[0] = alias >= 0 ? aliases[alias].col[0] : col;
    w->col[1] = alias >= 0 ? aliases[alias].col[1] : -1;
    if (fv_flow_cols[w->col[0]].type != FV_COL_STRING)
        return where_number(w, s, k, s + off, len - off, err, errlen);
    w->val = s + off;
    w->len = len - off;
    if (alias >= 0 && w->col[0] == FV_C_SRC_POD && w->op != FV_QUERY_SUB) {
        const char *slash = memchr(w->val, '/', w->len);
        if (slash) {
            w->split = true;
            w->nslen = (size_t)(slash - w->val);
            w->nscol[0] = FV_C_SRC_NS;
            w->nscol[1] = FV_C_DST_NS;
        }
    }
    return 0;
}

/* ------------------------------------------------------------------------
 * Parsing a request
 * ------------------------------------------------------------------------ */

static int parse_columns(const char *s, size_t len, struct fv_query *q, char *err, size_t errlen)
{
    bool seen[FV_FLOW_NCOLS] = {false};
    char b[SHOWN_MAX + 4];
    size_t i = 0;

    q->ncols = 0;
    for (;;) {
        const char *comma = memchr(s + i, ',', len - i);
        size_t n = comma ? (size_t)(comma - (s + i)) : len - i;
        int col = find_col(s + i, n);
        if (n == 0)
            return fail(err, errlen, "columns: an empty name in '%s'", shown(s, len, b));
        if (col < 0)
            return fail(err, errlen, "columns: unknown column '%s'", shown(s + i, n, b));
        if (seen[col])
            return fail(err, errlen, "columns: '%s' is named twice", fv_flow_cols[col].name);
        seen[col] = true;
        q->cols[q->ncols++] = col;
        if (comma == NULL)
            return 0;
        i += n + 1;
    }
}

/* start, end and since into q->start and q->end. */
static int parse_range(const struct fv_query_param *const *p, int64_t now, struct fv_query *q,
                       char *err, size_t errlen)
{
    char b[SHOWN_MAX + 4];
    int64_t since;
    int rc;

    if (p[PA_SINCE] && (p[PA_START] || p[PA_END]))
        return fail(err, errlen, "since: give either since or start/end, not both");
    if (p[PA_SINCE]) {
        rc = parse_since(p[PA_SINCE]->val, p[PA_SINCE]->vlen, &since);
        if (rc == -ERANGE)
            return fail(err, errlen, "since: '%s' is longer than 400 days",
                        shown(p[PA_SINCE]->val, p[PA_SINCE]->vlen, b));
        if (rc < 0)
            return fail(err, errlen,
                        "since: '%s' is not a duration such as 15m, 1h30m or 7d (units s, m, "
                        "h, d)",
                        shown(p[PA_SINCE]->val, p[PA_SINCE]->vlen, b));
        q->start = now - since;
        q->end = now;
        return 0;
    }
    q->end = now;
    if (p[PA_END] && parse_time(p[PA_END]->val, p[PA_END]->vlen, &q->end) < 0)
        return fail(err, errlen, "end: '%s' is not unix seconds or an RFC 3339 time",
                    shown(p[PA_END]->val, p[PA_END]->vlen, b));
    q->start = q->end - FV_QUERY_DEFAULT_RANGE;
    if (p[PA_START] && parse_time(p[PA_START]->val, p[PA_START]->vlen, &q->start) < 0)
        return fail(err, errlen, "start: '%s' is not unix seconds or an RFC 3339 time",
                    shown(p[PA_START]->val, p[PA_START]->vlen, b));
    if (q->start < 0)
        q->start = 0;
    if (q->end <= q->start)
        return fail(err, errlen, "%s: the range is empty or inverted (end must be after start)",
                    p[PA_END] ? "end" : "start");
    if (q->end - q->start > FV_QUERY_MAX_RANGE)
        return fail(err, errlen, "%s: the range is longer than 400 days",
                    p[PA_START] ? "start" : "end");
    return 0;
}

/* An unsigned parameter in [min, max], or def when absent. */
static int param_u32(const struct fv_query_param *p, uint32_t min, uint32_t max, uint32_t def,
                     uint32_t *out, char *err, size_t errlen)
{
    char b[SHOWN_MAX + 4];
    uint64_t v;

    *out = def;
    if (p == NULL)
        return 0;
    if (parse_u64(p->val, p->vlen, max, &v) < 0 || v < min)
        return fail(err, errlen, "%s: '%s' is not an integer from %u to %u", p->key,
                    shown(p->val, p->vlen, b), min, max);
    *out = (uint32_t)v;
    return 0;
}

/* A name from a table, or def when absent. */
static int param_name(const struct fv_query_param *p, const char *const *names, size_t stride,
                      size_t count, int def, int *out, const char *choices, char *err,
                      size_t errlen)
{
    char b[SHOWN_MAX + 4];

    *out = def;
    if (p == NULL)
        return 0;
    *out = find_name(p->val, p->vlen, names, stride, count);
    if (*out < 0)
        return fail(err, errlen, "%s: '%s' is not one of %s", p->key, shown(p->val, p->vlen, b),
                    choices);
    return 0;
}

int64_t fv_query_first_bucket(const struct fv_query *q)
{
    return q->start - q->start % q->step;
}

static uint64_t buckets_for(int64_t start, int64_t end, uint32_t step)
{
    int64_t first = start - start % step, last = (end - 1) - (end - 1) % step;

    return (uint64_t)((last - first) / step + 1);
}

uint32_t fv_query_nbuckets(const struct fv_query *q)
{
    return (uint32_t)buckets_for(q->start, q->end, q->step);
}

static int parse_step(const struct fv_query_param *p, struct fv_query *q, char *err, size_t errlen)
{
    static const uint32_t nice[] = {1,   2,   5,    10,   15,   30,    60,    120,   300,
                                    600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400};
    uint64_t n;
    int rc;

    if (p == NULL) {
        for (size_t i = 0; i < sizeof(nice) / sizeof(nice[0]); i++) {
            q->step = nice[i];
            if (buckets_for(q->start, q->end, q->step) <= FV_QUERY_AUTO_BUCKETS)
                return 0;
        }
        while (buckets_for(q->start, q->end, q->step) > FV_QUERY_AUTO_BUCKETS)
            q->step += 86400;
        return 0;
    }
    rc = param_u32(p, 1, FV_QUERY_MAX_RANGE, 0, &q->step, err, errlen);
    if (rc < 0)
        return rc;
    n = buckets_for(q->start, q->end, q->step);
    if (n > FV_QUERY_MAX_BUCKETS)
        return fail(err, errlen,
                    "step: %u s makes %llu buckets over the range, more than %d (use a larger "
                    "step or a shorter range)",
                    q->step, (unsigned long long)n, FV_QUERY_MAX_BUCKETS);
    return 0;
}

static int parse_flows_params(const struct fv_query_param *const *p, struct fv_query *q, char *err,
                              size_t errlen)
{
    char b[SHOWN_MAX + 4];
    int rc;

    rc = param_u32(p[PA_LIMIT], 1, FV_QUERY_MAX_ROWS, 100, &q->limit, err, errlen);
    if (rc == 0)
        rc = param_u32(p[PA_OFFSET], 0, FV_QUERY_MAX_OFFSET, 0, &q->offset, err, errlen);
    if (rc < 0)
        return rc;
    q->sort = FV_C_FLOW_END;
    if (p[PA_SORT]) {
        q->sort = find_col(p[PA_SORT]->val, p[PA_SORT]->vlen);
        if (q->sort < 0)
            return fail(err, errlen, "sort: unknown column '%s'",
                        shown(p[PA_SORT]->val, p[PA_SORT]->vlen, b));
    }
    if (p[PA_ORDER]) {
        const char *v = p[PA_ORDER]->val;
        if (strcmp(v, "asc") == 0)
            q->asc = true;
        else if (strcmp(v, "desc") != 0)
            return fail(err, errlen, "order: '%s' is not asc or desc",
                        shown(v, p[PA_ORDER]->vlen, b));
    }
    if (p[PA_COLUMNS])
        return parse_columns(p[PA_COLUMNS]->val, p[PA_COLUMNS]->vlen, q, err, errlen);
    for (int c = 0; c < FV_FLOW_NCOLS; c++)
        q->cols[c] = c;
    q->ncols = FV_FLOW_NCOLS;
    return 0;
}

static int parse_group_params(const struct fv_query_param *const *p, struct fv_query *q, char *err,
                              size_t errlen)
{
    int m, g, rc;

    rc = param_name(p[PA_METRIC], &metrics[0].name, sizeof(metrics[0]), FV_METRIC_COUNT_,
                    FV_METRIC_BYTES, &m,
                    "bytes, reverseBytes, packets, reversePackets, throughput, "
                    "reverseThroughput, flows",
                    err, errlen);
    if (rc == 0)
        rc = param_name(p[PA_GROUP], &groups[0].name, sizeof(groups[0]), FV_GROUP_COUNT_,
                        FV_GROUP_NONE, &g,
                        "none, flow_type, source_pod, destination_pod, pod_pair, "
                        "source_namespace, destination_namespace, namespace_pair, source_node, "
                        "destination_node, node_pair, service, pod_service_pair, "
                        "ingress_policy, egress_policy, policy_pair",
                        err, errlen);
    if (rc < 0)
        return rc;
    q->metric = (enum fv_query_metric)m;
    q->group = (enum fv_query_group)g;
    if (q->kind == FV_QUERY_TOP)
        return param_u32(p[PA_LIMIT], 1, FV_QUERY_MAX_GROUPS, 10, &q->limit, err, errlen);
    rc = param_u32(p[PA_TOP], 1, FV_QUERY_MAX_TOP, 10, &q->top, err, errlen);
    if (rc == 0)
        rc = parse_step(p[PA_STEP], q, err, errlen);
    return rc;
}

/* Sorts the parameters by name into p[]: at most one of each but where,
 * whose clauses go straight into q. */
static int sort_params(enum fv_query_kind kind, const struct fv_query_param *in, size_t n,
                       const struct fv_query_param **p, struct fv_query *q, char *err,
                       size_t errlen)
{
    char b[SHOWN_MAX + 4];
    int rc;

    if (n > FV_QUERY_MAX_PARAMS)
        return fail(err, errlen, "more than %d query parameters", FV_QUERY_MAX_PARAMS);
    for (size_t i = 0; i < n; i++) {
        const struct fv_query_param *pp = &in[i];
        int k = find_name(pp->key, pp->klen, &params[0].name, sizeof(params[0]), PA_COUNT_);
        if (k < 0 || !(params[k].kinds & (1u << kind)))
            return fail(err, errlen, "unknown parameter '%s' for %s", shown(pp->key, pp->klen, b),
                        endpoint[kind]);
        if (strlen(pp->val) != pp->vlen)
            return fail(err, errlen, "%s: the value holds a NUL byte", params[k].name);
        if (pp->vlen > FV_QUERY_MAX_VALUE)
            return fail(err, errlen, "%s: the value is longer than %d bytes", params[k].name,
                        FV_QUERY_MAX_VALUE);
        if (k != PA_WHERE) {
            if (p[k])
                return fail(err, errlen, "%s: given more than once", params[k].name);
            p[k] = pp;
            continue;
        }
        if (q->nwhere >= FV_QUERY_MAX_WHERE)
            return fail(err, errlen, "where: more than %d clauses", FV_QUERY_MAX_WHERE);
        rc = parse_where(pp->val, pp->vlen, &q->where[q->nwhere], err, errlen);
        if (rc < 0)
            return rc;
        q->nwhere++;
    }
    return 0;
}

int fv_query_parse(enum fv_query_kind kind, const struct fv_query_param *in, size_t n, int64_t now,
                   struct fv_query *q, char *err, size_t errlen)
{
    const struct fv_query_param *p[PA_COUNT_] = {NULL};
    int rc;

    memset(q, 0, sizeof(*q));
    q->kind = kind;
    err[0] = '\0';
    rc = sort_params(kind, in, n, p, q, err, errlen);
    if (rc == 0)
        rc = parse_range(p, now, q, err, errlen);
    if (rc < 0)
        return rc;
    if (kind == FV_QUERY_FLOWS)
        return parse_flows_params(p, q, err, errlen);
    return parse_group_params(p, q, err, errlen);
}

/* ------------------------------------------------------------------------
 * SQL
 * ------------------------------------------------------------------------ */

static bool is_ch(enum fv_sql_dialect d)
{
    return d == FV_SQL_CLICKHOUSE;
}

/* A column as selected: DateTime as unix seconds. */
static void add_col(struct fv_sql *s, enum fv_sql_dialect d, int col)
{
    if (is_ch(d) && fv_flow_cols[col].type == FV_COL_DATETIME)
        fv_sql_addf(s, "toUInt32(%s)", fv_flow_cols[col].name);
    else
        fv_sql_add(s, fv_flow_cols[col].name);
}

/* The placeholder of an integer compared with col. */
static void add_int_arg(struct fv_sql *s, enum fv_sql_dialect d, int col, int64_t v)
{
    bool wrap = is_ch(d) && fv_flow_cols[col].type == FV_COL_DATETIME;

    if (wrap)
        fv_sql_add(s, "toDateTime(");
    fv_sql_arg_int(s, v);
    if (wrap)
        fv_sql_add(s, ")");
}

static void add_where(struct fv_sql *s, enum fv_sql_dialect d, const struct fv_query_where *w)
{
    fv_sql_add(s, " AND (");
    for (int i = 0; i < w->ncols; i++) {
        const char *c = fv_flow_cols[w->col[i]].name;
        if (i > 0)
            fv_sql_add(s, w->op == FV_QUERY_NE ? " AND " : " OR ");
        if (w->split) {
            fv_sql_addf(s, "%s(%s = ", w->op == FV_QUERY_NE ? "NOT " : "",
                        fv_flow_cols[w->nscol[i]].name);
            fv_sql_arg_text(s, w->val, w->nslen);
            fv_sql_addf(s, " AND %s = ", c);
            fv_sql_arg_text(s, w->val + w->nslen + 1, w->len - w->nslen - 1);
            fv_sql_add(s, ")");
        } else if (w->op == FV_QUERY_SUB) {
            /* Not LIKE: SQLite's is case-insensitive and needs an ESCAPE
             * clause, ClickHouse's is case-sensitive and has none; these
             * two are the same plain substring test. */
            fv_sql_addf(s, "%s(%s, ", is_ch(d) ? "position" : "instr", c);
            fv_sql_arg_text(s, w->val, w->len);
            fv_sql_add(s, ") > 0");
        } else {
            fv_sql_addf(s, "%s %s ", c, w->op == FV_QUERY_NE ? "!=" : "=");
            if (w->numeric)
                add_int_arg(s, d, w->col[i], w->num);
            else
                fv_sql_arg_text(s, w->val, w->len);
        }
    }
    fv_sql_add(s, ")");
}

/* FROM and WHERE: the time range first (the index), then the clauses. */
static void add_from(struct fv_sql *s, enum fv_sql_dialect d, const struct fv_query *q)
{
    fv_sql_add(s, " FROM flows WHERE flowEndSeconds >= ");
    add_int_arg(s, d, FV_C_FLOW_END, q->start);
    fv_sql_add(s, " AND flowEndSeconds < ");
    add_int_arg(s, d, FV_C_FLOW_END, q->end);
    for (int i = 0; i < q->nwhere; i++)
        add_where(s, d, &q->where[i]);
}

void fv_query_sql_flows(const struct fv_query *q, enum fv_sql_dialect d, struct fv_sql *out)
{
    fv_sql_add(out, "SELECT ");
    for (int i = 0; i < q->ncols; i++) {
        if (i > 0)
            fv_sql_add(out, ", ");
        add_col(out, d, q->cols[i]);
    }
    add_from(out, d, q);
    /* Ties are broken by the time and the 5-tuple, so that pages do not
     * overlap and both stores answer the same order. */
    fv_sql_addf(out, " ORDER BY %s %s", fv_flow_cols[q->sort].name, q->asc ? "ASC" : "DESC");
    if (q->sort != FV_C_FLOW_END)
        fv_sql_addf(out, ", flowEndSeconds %s", q->asc ? "ASC" : "DESC");
    fv_sql_add(out, ", sourceIP, destinationIP, sourceTransportPort, destinationTransportPort, "
                    "protocolIdentifier LIMIT ");
    /* LIMIT offset, count: both dialects have it (ClickHouse 18.16 has no OFFSET). */
    fv_sql_arg_int(out, q->offset);
    fv_sql_add(out, ", ");
    fv_sql_arg_int(out, q->limit);
}

void fv_query_sql_count(const struct fv_query *q, enum fv_sql_dialect d, struct fv_sql *out)
{
    fv_sql_add(out, "SELECT count(*)");
    add_from(out, d, q);
}

/* The metric summed over a group of records. */
static void add_metric(struct fv_sql *s, enum fv_sql_dialect d, int col)
{
    if (col >= 0)
        fv_sql_addf(s, "sum(%s)", fv_flow_cols[col].name);
    else if (is_ch(d))
        fv_sql_add(s, "uniqExact(sourceIP, destinationIP, sourceTransportPort, "
                      "destinationTransportPort, protocolIdentifier)");
    else /* one integer for the ports and protocol, char(124) is '|' */
        fv_sql_add(s, "count(DISTINCT sourceIP || char(124) || destinationIP || char(124) || "
                      "(sourceTransportPort * 16777216 + destinationTransportPort * 256 + "
                      "protocolIdentifier))");
}

void fv_query_sql_total(const struct fv_query *q, enum fv_sql_dialect d, struct fv_sql *out)
{
    const struct metric_def *m = &metrics[q->metric];

    fv_sql_add(out, "SELECT count(*), coalesce(");
    add_metric(out, d, m->col);
    fv_sql_add(out, ", 0), ");
    if (m->rev >= 0) {
        fv_sql_add(out, "coalesce(");
        add_metric(out, d, m->rev);
        fv_sql_add(out, ", 0)");
    } else {
        fv_sql_add(out, "0");
    }
    add_from(out, d, q);
}

void fv_query_sql_groups(const struct fv_query *q, enum fv_sql_dialect d, uint32_t limit,
                         struct fv_sql *out)
{
    const struct group_def *g = &groups[q->group];
    const struct metric_def *m = &metrics[q->metric];
    int k = 0;

    fv_sql_add(out, "SELECT ");
    for (int i = 0; i < g->nparts; i++)
        for (int j = 0; j < part_ncols(&g->part[i]); j++)
            fv_sql_addf(out, "%s AS fv_k%d, ", g->part[i].expr[j], k++);
    add_metric(out, d, m->col);
    fv_sql_add(out, " AS fv_v, ");
    if (m->rev >= 0)
        add_metric(out, d, m->rev);
    else
        fv_sql_add(out, "0");
    fv_sql_add(out, " AS fv_r");
    add_from(out, d, q);
    for (int i = 0; i < k; i++)
        fv_sql_addf(out, "%s fv_k%d", i == 0 ? " GROUP BY" : ",", i);
    fv_sql_add(out, " ORDER BY fv_v DESC");
    for (int i = 0; i < k; i++)
        fv_sql_addf(out, ", fv_k%d", i);
    fv_sql_add(out, " LIMIT ");
    fv_sql_arg_int(out, limit);
}

void fv_query_sql_series(const struct fv_query *q, enum fv_sql_dialect d,
                         const struct fv_query_key *keys, size_t nkeys, struct fv_sql *out)
{
    const struct group_def *g = &groups[q->group];
    bool grouped = q->group != FV_GROUP_NONE && nkeys > 0;

    fv_sql_add(out, is_ch(d) ? "SELECT toUInt32(flowEndSeconds) - toUInt32(flowEndSeconds) % "
                             : "SELECT flowEndSeconds - flowEndSeconds % ");
    fv_sql_arg_int(out, q->step);
    fv_sql_add(out, " AS fv_t, ");
    if (grouped) {
        /* The index of the record's group among the top keys, 0 for the rest. */
        fv_sql_add(out, "CASE");
        for (size_t i = 0; i < nkeys; i++) {
            int k = 0;
            fv_sql_add(out, " WHEN ");
            for (int p = 0; p < g->nparts; p++)
                for (int j = 0; j < part_ncols(&g->part[p]); j++, k++) {
                    const struct fv_sql_val *c = &keys[i].cell[k];
                    fv_sql_addf(out, "%s(%s) = ", k > 0 ? " AND " : "", g->part[p].expr[j]);
                    if (c->type == FV_SQL_TEXT)
                        fv_sql_arg_text(out, c->s, c->len);
                    else
                        fv_sql_arg_int(out, c->i);
                }
            fv_sql_addf(out, " THEN %zu", i + 1);
        }
        fv_sql_add(out, " ELSE 0 END AS fv_g, ");
    } else {
        fv_sql_add(out, "0 AS fv_g, ");
    }
    add_metric(out, d, metrics[q->metric].col);
    fv_sql_add(out, " AS fv_v");
    add_from(out, d, q);
    fv_sql_add(out, grouped ? " GROUP BY fv_t, fv_g" : " GROUP BY fv_t");
}

/* ------------------------------------------------------------------------
 * Cells and labels
 * ------------------------------------------------------------------------ */

/* A cell as an integer: stores give INT, but a TEXT of digits (and a
 * REAL) is taken too.  Negative or unreadable values become 0. */
static uint64_t cell_u64(const struct fv_sql_val *c)
{
    uint64_t v = 0;

    if (c->type == FV_SQL_INT)
        return c->i > 0 ? (uint64_t)c->i : 0;
    if (c->type == FV_SQL_REAL)
        return c->d > 0 && c->d < 1.8e19 ? (uint64_t)c->d : 0;
    if (parse_u64(c->s, c->len, UINT64_MAX, &v) < 0)
        return 0;
    return v;
}

static int64_t cell_i64(const struct fv_sql_val *c)
{
    uint64_t v = cell_u64(c);

    if (c->type == FV_SQL_INT)
        return c->i;
    return v > INT64_MAX ? INT64_MAX : (int64_t)v;
}

/* Appends a cell as text (an integer in decimal). */
static int put_cell_text(struct fv_sbuf *b, const struct fv_sql_val *c)
{
    if (c->type == FV_SQL_TEXT)
        return c->len ? fv_sbuf_append(b, c->s, c->len) : 0;
    if (c->type == FV_SQL_INT)
        return fv_sbuf_put_i64(b, c->i);
    return fv_sbuf_printf(b, "%.17g", c->d);
}

static int put_cell_json_str(struct fv_sbuf *b, const struct fv_sql_val *c)
{
    char num[32];

    if (c->type == FV_SQL_TEXT)
        return fv_sbuf_put_json_str(b, c->s ? c->s : "", c->len);
    if (c->type == FV_SQL_INT)
        snprintf(num, sizeof(num), "%lld", (long long)c->i);
    else
        snprintf(num, sizeof(num), "%.17g", c->d);
    return fv_sbuf_put_json_str(b, num, strlen(num));
}

/* A cell of a number column as a JSON number (null when unreadable). */
static int put_cell_json_num(struct fv_sbuf *b, const struct fv_sql_val *c)
{
    uint64_t v;

    if (c->type == FV_SQL_INT)
        return fv_sbuf_put_i64(b, c->i);
    if (c->type == FV_SQL_TEXT && parse_u64(c->s, c->len, UINT64_MAX, &v) == 0)
        return fv_sbuf_put_u64(b, v);
    if (c->type == FV_SQL_REAL)
        return fv_sbuf_printf(b, "%.0f", c->d);
    return fv_sbuf_puts(b, "null");
}

static int put_named(struct fv_sbuf *b, int64_t v, const char *const *names, size_t n)
{
    if (v >= 0 && (uint64_t)v < n)
        return fv_sbuf_puts(b, names[v]);
    return fv_sbuf_put_i64(b, v);
}

/* The label of one part of a group key, from its cells. */
static int put_label(struct fv_sbuf *b, const struct part *p, const struct fv_sql_val *c)
{
    switch (p->kind) {
    case PK_POD:
    case PK_POLICY:
        if (c[0].type != FV_SQL_TEXT || c[0].len > 0) {
            put_cell_text(b, &c[0]);
            fv_sbuf_putc(b, '/');
        }
        return put_cell_text(b, &c[1]);
    case PK_FLOW_TYPE:
        return put_named(b, c[0].i, flow_types, sizeof(flow_types) / sizeof(flow_types[0]));
    case PK_ACTION:
        return put_named(b, c[0].i, actions, sizeof(actions) / sizeof(actions[0]));
    case PK_TEXT:
        break;
    }
    return put_cell_text(b, &c[0]);
}

/* "key":"...","labels":{...} of a group: the key is the labels joined by
 * " -> ", with a rule action in parentheses after its policy. */
static int put_key_labels(struct fv_sbuf *out, enum fv_query_group group,
                          const struct fv_sql_val *cells)
{
    const struct group_def *g = &groups[group];
    struct fv_sbuf key, label;
    int k = 0;

    fv_sbuf_init(&key, 1u << 16);
    fv_sbuf_init(&label, 1u << 16);
    fv_sbuf_puts(&key, "");
    fv_sbuf_puts(out, "\"key\":");
    for (int i = 0; i < g->nparts; i++) {
        const struct part *p = &g->part[i];
        fv_sbuf_reset(&label);
        fv_sbuf_puts(&label, "");
        put_label(&label, p, &cells[k]);
        k += part_ncols(p);
        if (p->kind == PK_ACTION) {
            if (label.len > 0)
                fv_sbuf_printf(&key, " (%s)", label.p);
            continue;
        }
        if (i > 0)
            fv_sbuf_puts(&key, " -> ");
        fv_sbuf_append(&key, label.p, label.len);
    }
    fv_sbuf_put_json_str(out, group == FV_GROUP_NONE ? "all" : key.p,
                         group == FV_GROUP_NONE ? 3 : key.len);
    fv_sbuf_puts(out, ",\"labels\":{");
    k = 0;
    for (int i = 0; i < g->nparts; i++) {
        const struct part *p = &g->part[i];
        fv_sbuf_reset(&label);
        fv_sbuf_puts(&label, "");
        put_label(&label, p, &cells[k]);
        k += part_ncols(p);
        fv_sbuf_printf(out, "%s\"%s\":", i > 0 ? "," : "", p->label);
        fv_sbuf_put_json_str(out, label.p, label.len);
    }
    fv_sbuf_putc(out, '}');
    k = key.err ? key.err : label.err;
    fv_sbuf_fini(&key);
    fv_sbuf_fini(&label);
    return k ? k : out->err;
}

/* ------------------------------------------------------------------------
 * Running
 * ------------------------------------------------------------------------ */

/* What a row callback reports when it stops a query. */
struct cb_status {
    int rc;        /* negative code, 0 while fine */
    char msg[128]; /* why */
};

static int cb_fail(struct cb_status *st, int rc, const char *msg)
{
    st->rc = rc;
    snprintf(st->msg, sizeof(st->msg), "%s", msg);
    return rc;
}

static int exec(struct fv_store *store, const struct fv_sql *s, fv_sql_row_fn fn, void *arg,
                struct cb_status *st, char *err, size_t errlen)
{
    char serr[512] = "";
    int rc;

    if (s->err == -FV_ELIMIT) {
        snprintf(err, errlen,
                 "the request needs more than %d SQL arguments: use fewer where clauses or a "
                 "lower top",
                 FV_SQL_MAX_ARGS);
        return -E2BIG;
    }
    if (s->err) {
        snprintf(err, errlen, "cannot build the query: %s", fv_strerror(s->err));
        return s->err < 0 ? s->err : -EINVAL;
    }
    st->rc = 0;
    rc = store->ops->query(store->impl, s, fn, arg, serr, sizeof(serr));
    if (rc == 0)
        return 0;
    if (st->rc) {
        snprintf(err, errlen, "%s", st->msg);
        return st->rc;
    }
    snprintf(err, errlen, "store %s: %s", store->ops->name, serr[0] ? serr : fv_strerror(rc));
    return rc < 0 ? rc : -EIO;
}

/* One row of counts: count(*), metric, reverse. */
struct totals {
    struct cb_status st;
    uint64_t v[3];
};

static int cb_totals(void *arg, const struct fv_sql_val *cells, int n)
{
    struct totals *t = arg;

    if (n < 1 || n > 3)
        return cb_fail(&t->st, -EPROTO, "the store answered a count with the wrong columns");
    for (int i = 0; i < n; i++)
        t->v[i] = cell_u64(&cells[i]);
    return 0;
}

/* ---- /flows ---- */

struct flows_cb {
    struct cb_status st;
    const struct fv_query *q;
    struct fv_sbuf *out;
    uint64_t rows;
};

static int cb_flow_row(void *arg, const struct fv_sql_val *cells, int n)
{
    struct flows_cb *f = arg;
    struct fv_sbuf *out = f->out;

    if (n != f->q->ncols)
        return cb_fail(&f->st, -EPROTO, "the store answered with the wrong number of columns");
    fv_sbuf_puts(out, f->rows++ ? ",\n{" : "\n{");
    for (int i = 0; i < n; i++) {
        const struct fv_col *col = &fv_flow_cols[f->q->cols[i]];
        fv_sbuf_printf(out, "%s\"%s\":", i ? "," : "", col->name);
        if (col->type == FV_COL_STRING)
            put_cell_json_str(out, &cells[i]);
        else
            put_cell_json_num(out, &cells[i]);
    }
    fv_sbuf_putc(out, '}');
    if (out->err)
        return cb_fail(&f->st, out->err, "the answer is too large; lower limit");
    return 0;
}

static int run_flows(const struct fv_query *q, struct fv_store *store, struct fv_sbuf *out,
                     char *err, size_t errlen)
{
    enum fv_sql_dialect d = store->ops->dialect;
    struct totals t = {{0, ""}, {0}};
    struct flows_cb f = {{0, ""}, q, out, 0};
    struct fv_sql s;
    int rc;

    fv_sql_init(&s);
    fv_query_sql_count(q, d, &s);
    rc = exec(store, &s, cb_totals, &t, &t.st, err, errlen);
    if (rc == 0) {
        fv_sbuf_printf(out,
                       "{\"start\":%lld,\"end\":%lld,\"total\":%llu,\"limit\":%u,\"offset\":%u,"
                       "\"rows\":[",
                       (long long)q->start, (long long)q->end, (unsigned long long)t.v[0], q->limit,
                       q->offset);
        fv_sql_reset(&s);
        fv_query_sql_flows(q, d, &s);
        rc = exec(store, &s, cb_flow_row, &f, &f.st, err, errlen);
    }
    if (rc == 0)
        fv_sbuf_puts(out, "]}\n");
    fv_sql_fini(&s);
    return rc;
}

/* ---- groups (/top, and the top keys of /series) ---- */

struct groupset {
    struct cb_status st;
    enum fv_query_group group;
    int nkeys;                 /* key cells per group */
    struct fv_query_key *keys; /* text cells: offsets into text until fixed up */
    uint64_t *value, *reverse;
    size_t n, cap;
    struct fv_sbuf text; /* the key strings */
};

static void groupset_fini(struct groupset *gs)
{
    free(gs->keys);
    free(gs->value);
    free(gs->reverse);
    fv_sbuf_fini(&gs->text);
}

static int groupset_grow(struct groupset *gs)
{
    size_t cap = gs->cap ? gs->cap * 2 : 16;
    void *k = realloc(gs->keys, cap * sizeof(*gs->keys));
    void *v = k ? realloc(gs->value, cap * sizeof(*gs->value)) : NULL;
    void *r = v ? realloc(gs->reverse, cap * sizeof(*gs->reverse)) : NULL;

    if (k)
        gs->keys = k;
    if (v)
        gs->value = v;
    if (r)
        gs->reverse = r;
    if (r == NULL)
        return -ENOMEM;
    gs->cap = cap;
    return 0;
}

static int cb_group(void *arg, const struct fv_sql_val *cells, int n)
{
    struct groupset *gs = arg;
    const struct group_def *g = &groups[gs->group];
    struct fv_query_key *key;
    int k = 0;

    if (n != gs->nkeys + 2)
        return cb_fail(&gs->st, -EPROTO, "the store answered with the wrong number of columns");
    if (gs->n == gs->cap && groupset_grow(gs) < 0)
        return cb_fail(&gs->st, -ENOMEM, "out of memory");
    key = &gs->keys[gs->n];
    for (int p = 0; p < g->nparts; p++)
        for (int j = 0; j < part_ncols(&g->part[p]); j++, k++) {
            struct fv_sql_val *c = &key->cell[k];
            if (part_numeric(&g->part[p])) {
                *c = (struct fv_sql_val){.type = FV_SQL_INT, .i = cell_i64(&cells[k])};
                continue;
            }
            /* The text is copied; its offset stands in for the pointer
             * until the buffer stops moving. */
            *c = (struct fv_sql_val){.type = FV_SQL_TEXT, .i = (int64_t)gs->text.len};
            put_cell_text(&gs->text, &cells[k]);
            c->len = gs->text.len - (size_t)c->i;
        }
    if (gs->text.err)
        return cb_fail(&gs->st, gs->text.err, "the group keys are too large");
    gs->value[gs->n] = cell_u64(&cells[k]);
    gs->reverse[gs->n] = cell_u64(&cells[k + 1]);
    gs->n++;
    return 0;
}

/* The `limit` largest groups of q, largest first. */
static int collect_groups(const struct fv_query *q, struct fv_store *store, uint32_t limit,
                          struct groupset *gs, char *err, size_t errlen)
{
    struct fv_sql s;
    int rc;

    memset(gs, 0, sizeof(*gs));
    gs->group = q->group;
    gs->nkeys = fv_query_group_nkeys(q->group);
    fv_sbuf_init(&gs->text, 64u << 20);
    fv_sbuf_puts(&gs->text, "");
    fv_sql_init(&s);
    fv_query_sql_groups(q, store->ops->dialect, limit, &s);
    rc = exec(store, &s, cb_group, gs, &gs->st, err, errlen);
    fv_sql_fini(&s);
    for (size_t i = 0; i < gs->n && rc == 0; i++)
        for (int k = 0; k < gs->nkeys; k++)
            if (gs->keys[i].cell[k].type == FV_SQL_TEXT)
                gs->keys[i].cell[k].s = gs->text.p + gs->keys[i].cell[k].i;
    return rc;
}

/* A metric value as answered: bits per second for the rates. */
static uint64_t shown_value(const struct fv_query *q, uint64_t v, uint64_t seconds)
{
    if (!metrics[q->metric].rate)
        return v;
    return v > UINT64_MAX / 8 ? v / seconds * 8 : v * 8 / seconds;
}

static void put_reverse(struct fv_sbuf *out, const struct fv_query *q, uint64_t v, uint64_t seconds)
{
    if (metrics[q->metric].rev < 0)
        fv_sbuf_puts(out, "null");
    else
        fv_sbuf_put_u64(out, shown_value(q, v, seconds));
}

static int run_top(const struct fv_query *q, struct fv_store *store, struct fv_sbuf *out, char *err,
                   size_t errlen)
{
    uint64_t secs = (uint64_t)(q->end - q->start), sum = 0;
    struct totals t = {{0, ""}, {0}};
    struct groupset gs;
    struct fv_sql s;
    int rc;

    memset(&gs, 0, sizeof(gs));
    fv_sql_init(&s);
    fv_query_sql_total(q, store->ops->dialect, &s);
    rc = exec(store, &s, cb_totals, &t, &t.st, err, errlen);
    fv_sql_fini(&s);
    if (rc == 0 && q->group != FV_GROUP_NONE)
        rc = collect_groups(q, store, q->limit, &gs, err, errlen);
    if (rc < 0)
        goto out;
    if (q->group == FV_GROUP_NONE && t.v[0] > 0) {
        /* One group: everything. */
        gs.keys = calloc(1, sizeof(*gs.keys));
        gs.value = malloc(sizeof(*gs.value));
        gs.reverse = malloc(sizeof(*gs.reverse));
        if (gs.keys == NULL || gs.value == NULL || gs.reverse == NULL) {
            snprintf(err, errlen, "out of memory");
            rc = -ENOMEM;
            goto out;
        }
        gs.value[0] = t.v[1];
        gs.reverse[0] = t.v[2];
        gs.n = 1;
    }
    for (size_t i = 0; i < gs.n; i++)
        sum += gs.value[i];
    fv_sbuf_printf(out, "{\"start\":%lld,\"end\":%lld,\"metric\":\"%s\",\"group\":\"%s\",",
                   (long long)q->start, (long long)q->end, metrics[q->metric].name,
                   groups[q->group].name);
    fv_sbuf_printf(out, "\"total\":%llu,\"other\":%llu,\"groups\":[",
                   (unsigned long long)shown_value(q, t.v[1], secs),
                   (unsigned long long)shown_value(q, t.v[1] > sum ? t.v[1] - sum : 0, secs));
    for (size_t i = 0; i < gs.n; i++) {
        fv_sbuf_puts(out, i ? ",\n{" : "\n{");
        put_key_labels(out, q->group, gs.keys[i].cell);
        fv_sbuf_printf(out, ",\"value\":%llu,\"reverse\":",
                       (unsigned long long)shown_value(q, gs.value[i], secs));
        put_reverse(out, q, gs.reverse[i], secs);
        fv_sbuf_putc(out, '}');
    }
    fv_sbuf_puts(out, "]}\n");
out:
    groupset_fini(&gs);
    return rc;
}

/* ---- /series ---- */

struct series_cb {
    struct cb_status st;
    int64_t first;  /* first bucket */
    uint32_t step;  /* bucket width */
    uint32_t nb;    /* buckets */
    size_t ngroups; /* groups with a series (index 1..ngroups); 0 is other */
    uint64_t *v;    /* [(ngroups + 1) * nb] */
};

static int cb_series(void *arg, const struct fv_sql_val *cells, int n)
{
    struct series_cb *sc = arg;
    int64_t t, g, b;

    if (n != 3)
        return cb_fail(&sc->st, -EPROTO, "the store answered with the wrong number of columns");
    t = cell_i64(&cells[0]);
    g = cell_i64(&cells[1]);
    b = (t - sc->first) / (int64_t)sc->step;
    if (t < sc->first || b >= (int64_t)sc->nb || g < 0 || (uint64_t)g > sc->ngroups)
        return cb_fail(&sc->st, -EPROTO, "the store answered a bucket outside the range");
    sc->v[(size_t)g * sc->nb + (size_t)b] += cell_u64(&cells[2]);
    return 0;
}

static void put_points(struct fv_sbuf *out, const struct fv_query *q, const struct series_cb *sc,
                       size_t g)
{
    fv_sbuf_puts(out, ",\"points\":[");
    for (uint32_t b = 0; b < sc->nb; b++)
        fv_sbuf_printf(out, "%s[%lld,%llu]", b ? "," : "",
                       (long long)(sc->first + (int64_t)b * sc->step),
                       (unsigned long long)shown_value(q, sc->v[g * sc->nb + b], sc->step));
    fv_sbuf_puts(out, "]}");
}

static int run_series(const struct fv_query *q, struct fv_store *store, struct fv_sbuf *out,
                      char *err, size_t errlen)
{
    struct series_cb sc = {{0, ""}, fv_query_first_bucket(q), q->step, fv_query_nbuckets(q), 0,
                           NULL};
    bool grouped = q->group != FV_GROUP_NONE, other = false;
    struct groupset gs;
    struct fv_sql s;
    int rc = 0;

    memset(&gs, 0, sizeof(gs));
    fv_sql_init(&s);
    if (grouped) {
        /* One more than top tells whether there is an "other". */
        rc = collect_groups(q, store, q->top + 1, &gs, err, errlen);
        other = gs.n > q->top;
        sc.ngroups = other ? q->top : gs.n;
    }
    if (rc == 0) {
        sc.v = calloc((sc.ngroups + 1) * sc.nb, sizeof(*sc.v));
        if (sc.v == NULL) {
            snprintf(err, errlen, "out of memory");
            rc = -ENOMEM;
        }
    }
    if (rc == 0 && (!grouped || gs.n > 0)) {
        fv_query_sql_series(q, store->ops->dialect, gs.keys, sc.ngroups, &s);
        rc = exec(store, &s, cb_series, &sc, &sc.st, err, errlen);
    }
    if (rc < 0)
        goto out;
    fv_sbuf_printf(out,
                   "{\"start\":%lld,\"end\":%lld,\"step\":%u,\"metric\":\"%s\",\"group\":\"%s\","
                   "\"series\":[",
                   (long long)q->start, (long long)q->end, q->step, metrics[q->metric].name,
                   groups[q->group].name);
    if (!grouped) {
        fv_sbuf_puts(out, "\n{\"key\":\"all\",\"labels\":{},\"other\":false");
        put_points(out, q, &sc, 0);
    }
    for (size_t i = 0; i < sc.ngroups; i++) {
        fv_sbuf_puts(out, i ? ",\n{" : "\n{");
        put_key_labels(out, q->group, gs.keys[i].cell);
        fv_sbuf_puts(out, ",\"other\":false");
        put_points(out, q, &sc, i + 1);
    }
    if (other) {
        fv_sbuf_puts(out, ",\n{\"key\":\"other\",\"labels\":{},\"other\":true");
        put_points(out, q, &sc, 0);
    }
    fv_sbuf_puts(out, "]}\n");
out:
    free(sc.v);
    fv_sql_fini(&s);
    groupset_fini(&gs);
    return rc;
}

int fv_query_run(const struct fv_query *q, struct fv_store *store, struct fv_sbuf *out, char *err,
                 size_t errlen)
{
    int rc;

    err[0] = '\0';
    if (q->kind == FV_QUERY_FLOWS)
        rc = run_flows(q, store, out, err, errlen);
    else if (q->kind == FV_QUERY_SERIES)
        rc = run_series(q, store, out, err, errlen);
    else
        rc = run_top(q, store, out, err, errlen);
    if (rc == 0 && out->err) {
        snprintf(err, errlen, "the answer is too large");
        rc = out->err;
    }
    return rc;
}

/* ------------------------------------------------------------------------
 * HTTP
 * ------------------------------------------------------------------------ */

struct param_list {
    struct fv_query_param p[FV_QUERY_MAX_PARAMS + 1]; /* one more: "too many" */
    size_t n;
};

static int collect_param(void *arg, const char *key, size_t klen, const char *val, size_t vlen)
{
    struct param_list *pl = arg;

    pl->p[pl->n++] = (struct fv_query_param){key, klen, val, vlen};
    return pl->n == FV_QUERY_MAX_PARAMS + 1; /* stop: fv_query_parse says why */
}

static int handle(enum fv_query_kind kind, void *vctx, struct fv_http_req *req, struct fv_sbuf *out)
{
    struct fv_query_http_ctx *ctx = vctx;
    struct param_list pl;
    struct fv_query q;
    char err[512];
    int64_t now = ctx->now ? ctx->now : (int64_t)fv_clock_wall_s();
    int rc;

    pl.n = 0;
    fv_http_query_all(req, NULL, collect_param, &pl);
    if (fv_query_parse(kind, pl.p, pl.n, now, &q, err, sizeof(err)) < 0)
        return fv_http_error(out, 400, err);
    if (ctx->store == NULL)
        return fv_http_error(out, 503,
                             "no store is enabled (sqlite.enable or clickHouse.enable); the "
                             "query API needs one");
    rc = fv_query_run(&q, ctx->store, out, err, sizeof(err));
    if (rc < 0)
        return fv_http_error(out, rc == -E2BIG ? 400 : 500, err);
    return 200;
}

int fv_query_http_flows(void *ctx, struct fv_http_req *req, struct fv_sbuf *out)
{
    return handle(FV_QUERY_FLOWS, ctx, req, out);
}

int fv_query_http_series(void *ctx, struct fv_http_req *req, struct fv_sbuf *out)
{
    return handle(FV_QUERY_SERIES, ctx, req, out);
}

int fv_query_http_top(void *ctx, struct fv_http_req *req, struct fv_sbuf *out)
{
    return handle(FV_QUERY_TOP, ctx, req, out);
}
