/*
 * test_store_query.c - the query API of the stores (store/query.h):
 * parameter checking (every error path), the SQL built for SQLite and for
 * ClickHouse, SQL injection through every parameter, and the answers of
 * /flows, /series and /top computed by a real SQLite database over the
 * hand-written records of tests/unit/fixtures/query_flows.sql, checked
 * against sums worked out by hand (the comments show the arithmetic).
 *
 * The "store" here is a few lines over sqlite3 that prepare, bind and step
 * exactly as the SQLite store does; the HTTP tests put the handlers on a
 * real fv_http_server and ask it with libcurl.
 */
#include "testutil.h"
#include "tu_http.h"

#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <sqlite3.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http/server.h"
#include "store/query.h"

#define FIXTURE "tests/unit/fixtures/query_flows.sql"
#define T0 1700000000                           /* 2023-11-14T22:13:20Z */
#define NOW 1700000600                          /* the wall clock of these tests */
#define RANGE "start=1700000000&end=1700000600" /* the fixture's records 1-17, 20, 21 */
#define ALL_BYTES 24569                         /* octetDeltaCount of those records */
#define ALL_RECORDS 19
#define FIXTURE_ROWS 21

/* ------------------------------------------------------------------------
 * A SQLite "store" over an in-memory database
 * ------------------------------------------------------------------------ */

struct tdb {
    sqlite3 *db;
    bool fail;           /* answer every query with an error */
    int queries;         /* queries run */
    struct fv_sbuf sqls; /* every SQL text run, one per line */
};

static struct tdb g_db;

static int tdb_query(void *impl, const struct fv_sql *q, fv_sql_row_fn fn, void *arg, char *err,
                     size_t errlen)
{
    struct tdb *t = impl;
    sqlite3_stmt *st = NULL;
    const char *tail = NULL;
    struct fv_sql_val cells[64];
    int rc, n;

    t->queries++;
    fv_sbuf_append(&t->sqls, q->text.p, q->text.len);
    fv_sbuf_putc(&t->sqls, '\n');
    if (t->fail) {
        snprintf(err, errlen, "disk on fire");
        return -EIO;
    }
    assert_int_equal(q->err, 0);
    rc = sqlite3_prepare_v2(t->db, q->text.p, (int)q->text.len, &st, &tail);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "%s", sqlite3_errmsg(t->db));
        return -EINVAL;
    }
    /* What the SQLite store enforces too: one read-only statement, every
     * placeholder bound. */
    assert_true(tail == NULL || *tail == '\0');
    assert_true(sqlite3_stmt_readonly(st));
    assert_int_equal(sqlite3_bind_parameter_count(st), q->nargs);
    for (int i = 0; i < q->nargs; i++) {
        const struct fv_sql_val *v = &q->args[i];
        if (v->type == FV_SQL_INT)
            rc = sqlite3_bind_int64(st, i + 1, v->i);
        else
            rc = sqlite3_bind_text(st, i + 1, v->s ? v->s : "", (int)v->len, SQLITE_STATIC);
        assert_int_equal(rc, SQLITE_OK);
    }
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        n = sqlite3_column_count(st);
        assert_true(n <= 64);
        for (int i = 0; i < n; i++) {
            memset(&cells[i], 0, sizeof(cells[i]));
            if (sqlite3_column_type(st, i) == SQLITE_INTEGER) {
                cells[i].type = FV_SQL_INT;
                cells[i].i = sqlite3_column_int64(st, i);
            } else {
                cells[i].type = FV_SQL_TEXT;
                cells[i].s = (const char *)sqlite3_column_text(st, i);
                cells[i].len = (size_t)sqlite3_column_bytes(st, i);
            }
        }
        rc = fn(arg, cells, n);
        if (rc != 0) {
            sqlite3_finalize(st);
            return rc;
        }
    }
    if (rc != SQLITE_DONE)
        snprintf(err, errlen, "%s", sqlite3_errmsg(t->db));
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : -EIO;
}

static const struct fv_store_ops tdb_ops = {
    .name = "sqlite-test", .dialect = FV_SQL_SQLITE, .query = tdb_query};
static struct fv_store g_store = {&tdb_ops, &g_db};

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;

    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    n = ftell(f);
    assert_true(n > 0);
    rewind(f);
    buf = calloc(1, (size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    return buf;
}

/* The flows table from fv_flow_cols, as the SQLite store makes it (plus
 * defaults, so the fixture names only the columns it uses). */
static int setup(void **state)
{
    struct fv_sbuf ddl;
    char *fixture, *msg = NULL;

    (void)state;
    memset(&g_db, 0, sizeof(g_db));
    fv_sbuf_init(&g_db.sqls, 64u << 20);
    assert_int_equal(sqlite3_open(":memory:", &g_db.db), SQLITE_OK);
    fv_sbuf_init(&ddl, 1 << 16);
    fv_sbuf_puts(&ddl, "CREATE TABLE flows (");
    for (int c = 0; c < FV_FLOW_NCOLS; c++)
        fv_sbuf_printf(&ddl, "%s%s %s", c ? ", " : "", fv_flow_cols[c].name,
                       fv_flow_cols[c].type == FV_COL_STRING ? "TEXT NOT NULL DEFAULT ''"
                                                             : "INTEGER NOT NULL DEFAULT 0");
    fv_sbuf_puts(&ddl, "); CREATE INDEX flows_flowEndSeconds ON flows(flowEndSeconds);");
    fixture = read_text(FIXTURE);
    assert_int_equal(sqlite3_exec(g_db.db, ddl.p, NULL, NULL, &msg), SQLITE_OK);
    if (sqlite3_exec(g_db.db, fixture, NULL, NULL, &msg) != SQLITE_OK)
        fail_msg("%s: %s", FIXTURE, msg);
    free(fixture);
    fv_sbuf_fini(&ddl);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    sqlite3_close(g_db.db);
    fv_sbuf_fini(&g_db.sqls);
    return 0;
}

static int64_t db_int(const char *sql)
{
    sqlite3_stmt *st;
    int64_t v;

    assert_int_equal(sqlite3_prepare_v2(g_db.db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

/* The database is as the fixture made it: nothing dropped, deleted or added. */
static void assert_db_intact(void)
{
    assert_int_equal(db_int("SELECT count(*) FROM flows"), FIXTURE_ROWS);
    assert_int_equal(db_int("SELECT count(*) FROM sqlite_master"), 2);
    assert_int_equal(db_int("SELECT sum(octetDeltaCount) FROM flows"), ALL_BYTES + 99999 + 88888);
}

/* ------------------------------------------------------------------------
 * Requests as query strings
 * ------------------------------------------------------------------------ */

/* A query string split and decoded as libmicrohttpd does (%XX, '+'). */
struct qs {
    char buf[1 << 16];
    size_t used;
    struct fv_query_param p[128];
    size_t n;
};

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c - 'A' + 10;
}

static const char *decode(struct qs *s, const char *p, size_t n, size_t *len)
{
    char *out = s->buf + s->used;
    size_t k = 0;

    assert_true(s->used + n + 1 <= sizeof(s->buf));
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '%' && i + 2 < n) {
            out[k++] = (char)(hexval(p[i + 1]) * 16 + hexval(p[i + 2]));
            i += 2;
        } else {
            out[k++] = p[i] == '+' ? ' ' : p[i];
        }
    }
    out[k] = '\0';
    s->used += k + 1;
    *len = k;
    return out;
}

static void qs_split(struct qs *s, const char *text)
{
    const char *p = text;

    s->used = 0;
    s->n = 0;
    while (*p) {
        size_t n = strcspn(p, "&"), k = strcspn(p, "=&");
        struct fv_query_param *pp = &s->p[s->n++];
        assert_true(s->n <= sizeof(s->p) / sizeof(s->p[0]));
        pp->key = decode(s, p, k, &pp->klen);
        pp->val = k < n ? decode(s, p + k + 1, n - k - 1, &pp->vlen) : decode(s, "", 0, &pp->vlen);
        p += n;
        if (*p == '&')
            p++;
    }
}

/* Requests borrow their strings: one buffer per live request. */
static struct qs g_qs[2];

static int tparse2(int slot, enum fv_query_kind kind, const char *text, struct fv_query *q,
                   char *err)
{
    qs_split(&g_qs[slot], text);
    return fv_query_parse(kind, g_qs[slot].p, g_qs[slot].n, NOW, q, err, 256);
}

static int tparse(enum fv_query_kind kind, const char *text, struct fv_query *q, char *err)
{
    return tparse2(0, kind, text, q, err);
}

/* Parses text (which must be good) into q. */
static void parse_ok(enum fv_query_kind kind, const char *text, struct fv_query *q)
{
    char err[256];

    if (tparse(kind, text, q, err) != 0)
        fail_msg("%s: %s", text, err);
}

/* text must be refused with a message that contains want. */
static void parse_bad(enum fv_query_kind kind, const char *text, const char *want)
{
    struct fv_query q;
    char err[256] = "";

    if (tparse(kind, text, &q, err) != -EINVAL)
        fail_msg("accepted: %s", text);
    if (strstr(err, want) == NULL)
        fail_msg("%s: message '%s' does not say '%s'", text, err, want);
}

/* Runs a request on the test database; the parsed JSON answer. */
static json_t *run(enum fv_query_kind kind, const char *text)
{
    struct fv_query q;
    struct fv_sbuf out;
    json_error_t jerr;
    json_t *doc;
    char err[512];

    parse_ok(kind, text, &q);
    fv_sbuf_init(&out, 64u << 20);
    if (fv_query_run(&q, &g_store, &out, err, sizeof(err)) != 0)
        fail_msg("%s: %s", text, err);
    doc = json_loadb(out.p, out.len, 0, &jerr);
    if (doc == NULL)
        fail_msg("%s: not JSON (%s): %s", text, jerr.text, out.p);
    fv_sbuf_fini(&out);
    return doc;
}

static json_int_t jint(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);

    if (!json_is_integer(v))
        fail_msg("member %s is not an integer", key);
    return json_integer_value(v);
}

static const char *jstr(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);

    if (!json_is_string(v))
        fail_msg("member %s is not a string", key);
    return json_string_value(v);
}

/* Builds one statement of q for dialect d into s (initialised by the caller). */
enum which { W_FLOWS, W_COUNT, W_TOTAL, W_GROUPS, W_SERIES };

static void build(const struct fv_query *q, enum fv_sql_dialect d, enum which w, struct fv_sql *s)
{
    struct fv_query_key keys[2];

    memset(keys, 0, sizeof(keys));
    for (int k = 0; k < FV_QUERY_MAX_KEYS; k++) {
        keys[0].cell[k] = (struct fv_sql_val){.type = FV_SQL_TEXT, .s = "k0", .len = 2};
        keys[1].cell[k] = (struct fv_sql_val){.type = FV_SQL_TEXT, .s = "k1", .len = 2};
    }
    if (q->group == FV_GROUP_FLOW_TYPE)
        keys[0].cell[0] = keys[1].cell[0] = (struct fv_sql_val){.type = FV_SQL_INT, .i = 2};
    switch (w) {
    case W_FLOWS:
        fv_query_sql_flows(q, d, s);
        break;
    case W_COUNT:
        fv_query_sql_count(q, d, s);
        break;
    case W_TOTAL:
        fv_query_sql_total(q, d, s);
        break;
    case W_GROUPS:
        fv_query_sql_groups(q, d, 10, s);
        break;
    case W_SERIES:
        fv_query_sql_series(q, d, keys, q->group == FV_GROUP_NONE ? 0 : 2, s);
        break;
    }
    assert_int_equal(s->err, 0);
}

/* ------------------------------------------------------------------------
 * Parsing: good requests
 * ------------------------------------------------------------------------ */

static void test_defaults_are_the_last_15_minutes_and_documented_values(void **state)
{
    struct fv_query q;

    (void)state;
    parse_ok(FV_QUERY_FLOWS, "", &q);
    assert_int_equal(q.start, NOW - 900);
    assert_int_equal(q.end, NOW);
    assert_int_equal(q.limit, 100);
    assert_int_equal(q.offset, 0);
    assert_int_equal(q.sort, FV_C_FLOW_END);
    assert_false(q.asc);
    assert_int_equal(q.ncols, FV_FLOW_NCOLS);
    assert_int_equal(q.nwhere, 0);

    parse_ok(FV_QUERY_SERIES, "", &q);
    assert_int_equal(q.metric, FV_METRIC_BYTES);
    assert_int_equal(q.group, FV_GROUP_NONE);
    assert_int_equal(q.top, 10);
    assert_int_equal(q.step, 5); /* 900 s: 1 and 2 s make more than 300 buckets */
    assert_true(fv_query_nbuckets(&q) <= 300);

    parse_ok(FV_QUERY_TOP, "", &q);
    assert_int_equal(q.limit, 10);
    assert_int_equal(q.group, FV_GROUP_NONE);
}

static void test_times_are_unix_seconds_or_rfc3339_in_any_offset(void **state)
{
    static const char *const same[] = {
        "start=1700000000",
        "start=2023-11-14T22:13:20Z",
        "start=2023-11-14t22:13:20z",
        "start=2023-11-14T22:13:20.999Z",
        "start=2023-11-14T23:13:20%2B01:00",
        "start=2023-11-14T23:13:20+01:00", /* '+' arrives as a space */
        "start=2023-11-14%2023:43:20%2B01:30",
        "start=2023-11-14T20:13:20-02:00",
    };
    struct fv_query q;

    (void)state;
    for (size_t i = 0; i < sizeof(same) / sizeof(same[0]); i++) {
        parse_ok(FV_QUERY_FLOWS, same[i], &q);
        if (q.start != T0)
            fail_msg("%s: %lld", same[i], (long long)q.start);
        assert_int_equal(q.end, NOW); /* end defaults to now */
    }
    parse_ok(FV_QUERY_FLOWS, "start=2024-02-29T00:00:00Z&end=2024-03-01T00:00:00Z", &q);
    assert_int_equal(q.start, 1709164800);
    assert_int_equal(q.end, 1709251200);
    parse_ok(FV_QUERY_FLOWS, "start=0&end=1", &q);
    assert_int_equal(q.start, 0);
    parse_ok(FV_QUERY_FLOWS, "end=1700000000", &q); /* start: 15 minutes before end */
    assert_int_equal(q.start, T0 - 900);
    parse_ok(FV_QUERY_FLOWS, "since=1h30m", &q);
    assert_int_equal(q.start, NOW - 5400);
    assert_int_equal(q.end, NOW);
    parse_ok(FV_QUERY_FLOWS, "since=400d", &q);
    assert_int_equal(q.start, NOW - 400 * 86400);
    parse_ok(FV_QUERY_FLOWS, "start=4294967294&end=4294967295", &q);
    assert_int_equal(q.end, 4294967295LL);
}

static void test_auto_step_keeps_at_most_300_buckets(void **state)
{
    static const struct {
        const char *range;
        uint32_t step;
    } cases[] = {
        {"since=1m", 1},      {"since=5m", 1},        {"since=15m", 5},
        {"since=1h", 15},     {"since=1d", 300},      {"since=7d", 3600},
        {"since=30d", 10800}, {"since=400d", 172800}, {"start=1700000000&end=1700000600", 2},
    };
    struct fv_query q;

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        parse_ok(FV_QUERY_SERIES, cases[i].range, &q);
        if (q.step != cases[i].step)
            fail_msg("%s: step %u, want %u", cases[i].range, q.step, cases[i].step);
        assert_true(fv_query_nbuckets(&q) <= 300);
    }
    /* Buckets are aligned to the epoch: the first may start before start. */
    parse_ok(FV_QUERY_SERIES, RANGE "&step=60", &q);
    assert_int_equal(fv_query_first_bucket(&q), T0 - 20);
    assert_int_equal(fv_query_nbuckets(&q), 11);
    parse_ok(FV_QUERY_SERIES, "start=1700000000&end=1700000001&step=86400", &q);
    assert_int_equal(fv_query_nbuckets(&q), 1);
}

static void test_where_clauses_resolve_columns_aliases_and_operators(void **state)
{
    struct fv_query q;

    (void)state;
    parse_ok(FV_QUERY_FLOWS,
             "where=namespace=web&where=srcport!=80&where=pod~front&where=proto=UDP"
             "&where=sourceIP=10.0.0.1&where=flowStartSeconds=2023-11-14T22:14:40Z"
             "&where=pod=web/frontend-1&where=destinationServicePortName=&where=flowType=3",
             &q);
    assert_int_equal(q.nwhere, 9);
    assert_int_equal(q.where[0].ncols, 2);
    assert_int_equal(q.where[0].col[0], FV_C_SRC_NS);
    assert_int_equal(q.where[0].col[1], FV_C_DST_NS);
    assert_int_equal(q.where[0].op, FV_QUERY_EQ);
    assert_int_equal(q.where[1].op, FV_QUERY_NE);
    assert_true(q.where[1].numeric);
    assert_int_equal(q.where[1].num, 80);
    assert_int_equal(q.where[2].op, FV_QUERY_SUB);
    assert_false(q.where[2].split);
    assert_int_equal(q.where[3].num, 17);
    assert_int_equal(q.where[4].col[0], FV_C_SRC_IP);
    assert_int_equal(q.where[4].ncols, 1);
    assert_int_equal(q.where[5].num, T0 + 80);
    assert_true(q.where[6].split);
    assert_int_equal(q.where[6].nslen, 3);
    assert_int_equal(q.where[7].len, 0);
    assert_int_equal(q.where[8].num, 3);
}

/* ------------------------------------------------------------------------
 * Parsing: every error path
 * ------------------------------------------------------------------------ */

static void test_bad_times_and_ranges_are_refused_naming_the_parameter(void **state)
{
    (void)state;
    parse_bad(FV_QUERY_FLOWS, "start=abc", "start: 'abc' is not unix seconds or an RFC 3339");
    parse_bad(FV_QUERY_FLOWS, "end=yesterday", "end: 'yesterday'");
    parse_bad(FV_QUERY_FLOWS, "start=", "start: ''");
    parse_bad(FV_QUERY_FLOWS, "start=-5", "start: '-5'");
    parse_bad(FV_QUERY_FLOWS, "start=%2B5", "start: '+5'");
    parse_bad(FV_QUERY_FLOWS, "start=1.5", "start: '1.5'");
    parse_bad(FV_QUERY_FLOWS, "end=4294967296", "end: '4294967296'");
    parse_bad(FV_QUERY_FLOWS, "end=99999999999", "end: '99999999999'");
    parse_bad(FV_QUERY_FLOWS, "start=2026-13-01T00:00:00Z", "start:");
    parse_bad(FV_QUERY_FLOWS, "start=2026-02-29T00:00:00Z", "start:"); /* not a leap year */
    parse_bad(FV_QUERY_FLOWS, "start=2026-04-31T00:00:00Z", "start:");
    parse_bad(FV_QUERY_FLOWS, "start=2026-11-21T24:00:00Z", "start:");
    parse_bad(FV_QUERY_FLOWS, "start=2026-11-21T10:00:00", "start:"); /* no zone */
    parse_bad(FV_QUERY_FLOWS, "start=2026-11-21T10:00:00ZZ", "start:");
    parse_bad(FV_QUERY_FLOWS, "start=2026-11-21T10:00:00.Z", "start:");
    parse_bad(FV_QUERY_FLOWS, "start=2026-11-21", "start:");
    parse_bad(FV_QUERY_FLOWS, "start=1969-12-31T23:59:59Z", "start:");
    parse_bad(FV_QUERY_FLOWS, "start=2106-02-07T06:28:16Z", "start:");
    parse_bad(FV_QUERY_FLOWS, "start=200&end=100", "end: the range is empty or inverted");
    parse_bad(FV_QUERY_FLOWS, "start=100&end=100", "the range is empty or inverted");
    parse_bad(FV_QUERY_FLOWS, "start=1800000000", "start: the range is empty or inverted");
    parse_bad(FV_QUERY_FLOWS, "start=0&end=34560001", "the range is longer than 400 days");
    parse_bad(FV_QUERY_FLOWS, "since=15x", "since: '15x' is not a duration");
    parse_bad(FV_QUERY_FLOWS, "since=15", "since: '15'");
    parse_bad(FV_QUERY_FLOWS, "since=m", "since: 'm'");
    parse_bad(FV_QUERY_FLOWS, "since=0m", "since: '0m'");
    parse_bad(FV_QUERY_FLOWS, "since=", "since: ''");
    parse_bad(FV_QUERY_FLOWS, "since=-5m", "since: '-5m'");
    parse_bad(FV_QUERY_FLOWS, "since=1.5h", "since: '1.5h'");
    parse_bad(FV_QUERY_FLOWS, "since=401d", "since: '401d' is longer than 400 days");
    parse_bad(FV_QUERY_FLOWS, "since=99999999999999999999s", "longer than 400 days");
    parse_bad(FV_QUERY_FLOWS, "since=15m&start=1", "since: give either since or start/end");
    parse_bad(FV_QUERY_FLOWS, "since=15m&end=1", "since: give either");
}

static void test_bad_limits_steps_and_names_are_refused(void **state)
{
    (void)state;
    parse_bad(FV_QUERY_FLOWS, "limit=0", "limit: '0' is not an integer from 1 to 10000");
    parse_bad(FV_QUERY_FLOWS, "limit=10001", "limit: '10001'");
    parse_bad(FV_QUERY_FLOWS, "limit=-1", "limit: '-1'");
    parse_bad(FV_QUERY_FLOWS, "limit=1e3", "limit: '1e3'");
    parse_bad(FV_QUERY_FLOWS, "limit=%2010", "limit: ' 10'");
    parse_bad(FV_QUERY_FLOWS, "limit=18446744073709551617", "limit:");
    parse_bad(FV_QUERY_FLOWS, "offset=1000001", "offset: '1000001' is not an integer from 0");
    parse_bad(FV_QUERY_FLOWS, "sort=nope", "sort: unknown column 'nope'");
    parse_bad(FV_QUERY_FLOWS, "sort=flowendseconds", "sort: unknown column"); /* exact names */
    parse_bad(FV_QUERY_FLOWS, "order=up", "order: 'up' is not asc or desc");
    parse_bad(FV_QUERY_FLOWS, "order=ASC", "order: 'ASC'");
    parse_bad(FV_QUERY_FLOWS, "columns=sourceIP,nope", "columns: unknown column 'nope'");
    parse_bad(FV_QUERY_FLOWS, "columns=sourceIP,,destinationIP", "columns: an empty name");
    parse_bad(FV_QUERY_FLOWS, "columns=", "columns: an empty name");
    parse_bad(FV_QUERY_FLOWS, "columns=sourceIP,sourceIP", "columns: 'sourceIP' is named twice");
    parse_bad(FV_QUERY_SERIES, "start=1700000000&end=1700002001&step=1",
              "step: 1 s makes 2001 buckets over the range, more than 2000");
    parse_bad(FV_QUERY_SERIES, "since=1h&step=1", "step: 1 s makes 3600 buckets");
    parse_bad(FV_QUERY_SERIES, "step=0", "step: '0' is not an integer from 1");
    parse_bad(FV_QUERY_SERIES, "step=1m", "step: '1m'");
    parse_bad(FV_QUERY_SERIES, "metric=Bytes", "metric: 'Bytes' is not one of bytes,");
    parse_bad(FV_QUERY_SERIES, "metric=", "metric: ''");
    parse_bad(FV_QUERY_TOP, "metric=octets", "metric: 'octets'");
    parse_bad(FV_QUERY_SERIES, "group=pods", "group: 'pods' is not one of none,");
    parse_bad(FV_QUERY_TOP, "group=POD_PAIR", "group: 'POD_PAIR'");
    parse_bad(FV_QUERY_SERIES, "top=0", "top: '0' is not an integer from 1 to 50");
    parse_bad(FV_QUERY_SERIES, "top=51", "top: '51'");
    parse_bad(FV_QUERY_TOP, "limit=1001", "limit: '1001' is not an integer from 1 to 1000");
}

static void test_unknown_repeated_and_misplaced_parameters_are_refused(void **state)
{
    char many[2048] = "";

    (void)state;
    parse_bad(FV_QUERY_FLOWS, "foo=1", "unknown parameter 'foo' for /api/v1/flows");
    parse_bad(FV_QUERY_FLOWS, "Limit=1", "unknown parameter 'Limit'");
    parse_bad(FV_QUERY_FLOWS, "step=60", "unknown parameter 'step' for /api/v1/flows");
    parse_bad(FV_QUERY_FLOWS, "group=pod_pair", "unknown parameter 'group'");
    parse_bad(FV_QUERY_SERIES, "limit=5", "unknown parameter 'limit' for /api/v1/series");
    parse_bad(FV_QUERY_TOP, "top=5", "unknown parameter 'top' for /api/v1/top");
    parse_bad(FV_QUERY_TOP, "sort=sourceIP", "unknown parameter 'sort' for /api/v1/top");
    parse_bad(FV_QUERY_FLOWS, "limit=1&limit=2", "limit: given more than once");
    parse_bad(FV_QUERY_SERIES, "since=1h&since=2h", "since: given more than once");
    parse_bad(FV_QUERY_FLOWS, "limit", "limit: ''"); /* no '=': an empty value */
    for (int i = 0; i < 65; i++)
        strcat(many, i ? "&order=asc" : "order=asc");
    parse_bad(FV_QUERY_FLOWS, many, "more than 64 query parameters");
}

static void test_bad_where_clauses_are_refused_naming_the_key(void **state)
{
    char many[2048] = "";

    (void)state;
    parse_bad(FV_QUERY_FLOWS, "where=nope=1", "where: unknown key 'nope'");
    parse_bad(FV_QUERY_FLOWS, "where=Namespace=web", "where: unknown key 'Namespace'");
    parse_bad(FV_QUERY_FLOWS, "where=srcport=http", "where: srcport: 'http' is not an integer");
    parse_bad(FV_QUERY_FLOWS, "where=srcport=70000",
              "where: srcport: '70000' is not an integer "
              "from 0 to 65535");
    parse_bad(FV_QUERY_FLOWS, "where=flowType=1.5", "where: flowType: '1.5'");
    parse_bad(FV_QUERY_FLOWS, "where=flowType=256", "from 0 to 255");
    parse_bad(FV_QUERY_FLOWS, "where=flowType=", "where: flowType: ''");
    parse_bad(FV_QUERY_FLOWS, "where=flowType=-1", "where: flowType: '-1'");
    parse_bad(FV_QUERY_FLOWS, "where=proto=gre",
              "where: proto: 'gre' is not an integer from 0 "
              "to 255 or tcp, udp");
    parse_bad(FV_QUERY_FLOWS, "where=octetDeltaCount=9223372036854775808", "octetDeltaCount:");
    parse_bad(FV_QUERY_FLOWS, "where=flowEndSeconds=today",
              "where: flowEndSeconds: 'today' is "
              "not unix seconds");
    parse_bad(FV_QUERY_FLOWS, "where=srcport~80", "where: srcport is a number column; ~ needs");
    parse_bad(FV_QUERY_FLOWS, "where=namespace", "where: 'namespace' is not key=value");
    parse_bad(FV_QUERY_FLOWS, "where=namespace<web", "is not key=value, key!=value or key~value");
    parse_bad(FV_QUERY_FLOWS, "where=namespace%20=web", "is not key=value");
    parse_bad(FV_QUERY_FLOWS, "where==web", "where: '=web' has no key");
    parse_bad(FV_QUERY_FLOWS, "where=", "where: '' is not key=value");
    parse_bad(FV_QUERY_FLOWS, "where=!=x", "has no key");
    for (int i = 0; i < 17; i++)
        strcat(many, i ? "&where=namespace=a" : "where=namespace=a");
    parse_bad(FV_QUERY_FLOWS, many, "where: more than 16 clauses");
    many[strlen(many) - strlen("&where=namespace=a")] = '\0';
    parse_ok(FV_QUERY_FLOWS, many, &(struct fv_query){0});
}

static void test_long_values_and_nul_bytes_are_refused(void **state)
{
    static const char *const keys[] = {"start",  "end",  "since", "where",  "limit",
                                       "offset", "sort", "order", "columns"};
    char *text = malloc(4096);
    struct fv_query q;
    char err[256];

    (void)state;
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        snprintf(text, 4096, "%s=a%%00b", keys[i]);
        assert_int_equal(tparse(FV_QUERY_FLOWS, text, &q, err), -EINVAL);
        assert_non_null(strstr(err, "the value holds a NUL byte"));
        assert_non_null(strstr(err, keys[i]));
    }
    parse_bad(FV_QUERY_FLOWS, "where=namespace=web%00x", "where: the value holds a NUL byte");
    parse_bad(FV_QUERY_SERIES, "group=pod_pair%00", "group: the value holds a NUL byte");
    /* A value of 1024 bytes is taken, 1025 is not. */
    strcpy(text, "where=namespace=");
    memset(text + 16, 'a', 1024 - 10);
    text[16 + 1024 - 10] = '\0';
    assert_int_equal(tparse(FV_QUERY_FLOWS, text, &q, err), 0);
    strcat(text, "a");
    parse_bad(FV_QUERY_FLOWS, text, "where: the value is longer than 1024 bytes");
    /* A long name is shown cut short. */
    memset(text, 'k', 3000);
    strcpy(text + 3000, "=1");
    assert_int_equal(tparse(FV_QUERY_FLOWS, text, &q, err), -EINVAL);
    assert_non_null(strstr(err, "unknown parameter 'kkkk"));
    assert_non_null(strstr(err, "...'"));
    assert_true(strlen(err) < 120);
    free(text);
}

/* ------------------------------------------------------------------------
 * SQL for both dialects
 * ------------------------------------------------------------------------ */

static void assert_args(const struct fv_sql *s, const char *want)
{
    struct fv_sbuf b;

    fv_sbuf_init(&b, 1 << 16);
    fv_sbuf_puts(&b, "");
    for (int i = 0; i < s->nargs; i++) {
        if (i)
            fv_sbuf_putc(&b, '|');
        if (s->args[i].type == FV_SQL_INT)
            fv_sbuf_put_i64(&b, s->args[i].i);
        else
            fv_sbuf_printf(&b, "'%.*s'", (int)s->args[i].len, s->args[i].s);
    }
    assert_string_equal(b.p, want);
    fv_sbuf_fini(&b);
}

static void test_flows_sql_for_both_dialects(void **state)
{
    struct fv_query q;
    struct fv_sql s;

    (void)state;
    parse_ok(FV_QUERY_FLOWS,
             RANGE "&where=namespace=web&where=srcport!=80&where=pod~fr&where=flowStartSeconds="
                   "1700000080&where=pod=web/frontend-1&columns=flowEndSeconds,sourceIP"
                   "&sort=octetDeltaCount&order=asc&limit=5&offset=10",
             &q);
    fv_sql_init(&s);
    build(&q, FV_SQL_SQLITE, W_FLOWS, &s);
    assert_string_equal(
        s.text.p,
        "SELECT flowEndSeconds, sourceIP FROM flows WHERE flowEndSeconds >= ? AND "
        "flowEndSeconds < ? AND (sourcePodNamespace = ? OR destinationPodNamespace = ?) AND "
        "(sourceTransportPort != ?) AND (instr(sourcePodName, ?) > 0 OR "
        "instr(destinationPodName, ?) > 0) AND (flowStartSeconds = ?) AND "
        "((sourcePodNamespace = ? AND sourcePodName = ?) OR (destinationPodNamespace = ? AND "
        "destinationPodName = ?)) ORDER BY octetDeltaCount ASC, flowEndSeconds ASC, sourceIP, "
        "destinationIP, sourceTransportPort, destinationTransportPort, protocolIdentifier "
        "LIMIT ?, ?");
    assert_args(&s, "1700000000|1700000600|'web'|'web'|80|'fr'|'fr'|1700000080|'web'|"
                    "'frontend-1'|'web'|'frontend-1'|10|5");
    fv_sql_reset(&s);
    build(&q, FV_SQL_CLICKHOUSE, W_FLOWS, &s);
    assert_string_equal(
        s.text.p,
        "SELECT toUInt32(flowEndSeconds), sourceIP FROM flows WHERE flowEndSeconds >= "
        "toDateTime(?) AND flowEndSeconds < toDateTime(?) AND (sourcePodNamespace = ? OR "
        "destinationPodNamespace = ?) AND (sourceTransportPort != ?) AND "
        "(position(sourcePodName, ?) > 0 OR position(destinationPodName, ?) > 0) AND "
        "(flowStartSeconds = toDateTime(?)) AND ((sourcePodNamespace = ? AND sourcePodName = "
        "?) OR (destinationPodNamespace = ? AND destinationPodName = ?)) ORDER BY "
        "octetDeltaCount ASC, flowEndSeconds ASC, sourceIP, destinationIP, "
        "sourceTransportPort, destinationTransportPort, protocolIdentifier LIMIT ?, ?");
    assert_args(&s, "1700000000|1700000600|'web'|'web'|80|'fr'|'fr'|1700000080|'web'|"
                    "'frontend-1'|'web'|'frontend-1'|10|5");
    fv_sql_reset(&s);
    build(&q, FV_SQL_CLICKHOUSE, W_COUNT, &s);
    assert_true(strncmp(s.text.p,
                        "SELECT count(*) FROM flows WHERE flowEndSeconds >= "
                        "toDateTime(?)",
                        60) == 0);
    assert_int_equal(s.nargs, 12);
    fv_sql_fini(&s);

    /* != over two columns: neither side; a pod without '/' is a name. */
    parse_ok(FV_QUERY_FLOWS, RANGE "&where=namespace!=web&where=pod!=db/pg&where=pod=x", &q);
    fv_sql_init(&s);
    fv_query_sql_count(&q, FV_SQL_SQLITE, &s);
    assert_string_equal(s.text.p,
                        "SELECT count(*) FROM flows WHERE flowEndSeconds >= ? AND "
                        "flowEndSeconds < ? AND (sourcePodNamespace != ? AND "
                        "destinationPodNamespace != ?) AND (NOT (sourcePodNamespace = ? AND "
                        "sourcePodName = ?) AND NOT (destinationPodNamespace = ? AND "
                        "destinationPodName = ?)) AND (sourcePodName = ? OR "
                        "destinationPodName = ?)");
    assert_args(&s, "1700000000|1700000600|'web'|'web'|'db'|'pg'|'db'|'pg'|'x'|'x'");
    fv_sql_fini(&s);
}

static void test_series_and_top_sql_for_both_dialects(void **state)
{
    struct fv_query q;
    struct fv_sql s;

    (void)state;
    parse_ok(FV_QUERY_SERIES, RANGE "&step=60&group=flow_type&metric=flows", &q);
    fv_sql_init(&s);
    build(&q, FV_SQL_SQLITE, W_SERIES, &s);
    assert_string_equal(
        s.text.p,
        "SELECT flowEndSeconds - flowEndSeconds % ? AS fv_t, CASE WHEN (flowType) = ? THEN 1 "
        "WHEN (flowType) = ? THEN 2 ELSE 0 END AS fv_g, count(DISTINCT sourceIP || char(124) "
        "|| destinationIP || char(124) || (sourceTransportPort * 16777216 + "
        "destinationTransportPort * 256 + protocolIdentifier)) AS fv_v FROM flows WHERE "
        "flowEndSeconds >= ? AND flowEndSeconds < ? GROUP BY fv_t, fv_g");
    assert_args(&s, "60|2|2|1700000000|1700000600");
    fv_sql_reset(&s);
    build(&q, FV_SQL_CLICKHOUSE, W_SERIES, &s);
    assert_string_equal(
        s.text.p,
        "SELECT toUInt32(flowEndSeconds) - toUInt32(flowEndSeconds) % ? AS fv_t, CASE WHEN "
        "(flowType) = ? THEN 1 WHEN (flowType) = ? THEN 2 ELSE 0 END AS fv_g, "
        "uniqExact(sourceIP, destinationIP, sourceTransportPort, destinationTransportPort, "
        "protocolIdentifier) AS fv_v FROM flows WHERE flowEndSeconds >= toDateTime(?) AND "
        "flowEndSeconds < toDateTime(?) GROUP BY fv_t, fv_g");
    fv_sql_reset(&s);

    parse_ok(FV_QUERY_SERIES, RANGE "&step=60&metric=throughput", &q);
    build(&q, FV_SQL_SQLITE, W_SERIES, &s);
    assert_string_equal(s.text.p, "SELECT flowEndSeconds - flowEndSeconds % ? AS fv_t, 0 AS "
                                  "fv_g, sum(octetDeltaCount) AS fv_v FROM flows WHERE "
                                  "flowEndSeconds >= ? AND flowEndSeconds < ? GROUP BY fv_t");
    fv_sql_reset(&s);

    parse_ok(FV_QUERY_TOP, RANGE "&group=pod_pair&metric=reversePackets&where=node=n1", &q);
    build(&q, FV_SQL_CLICKHOUSE, W_GROUPS, &s);
    assert_string_equal(
        s.text.p,
        "SELECT sourcePodNamespace AS fv_k0, CASE WHEN length(sourcePodName) = 0 THEN "
        "sourceIP ELSE sourcePodName END AS fv_k1, destinationPodNamespace AS fv_k2, CASE WHEN "
        "length(destinationPodName) = 0 THEN destinationIP ELSE destinationPodName END AS "
        "fv_k3, sum(reversePacketDeltaCount) AS fv_v, sum(packetDeltaCount) AS fv_r FROM "
        "flows WHERE flowEndSeconds >= toDateTime(?) AND flowEndSeconds < toDateTime(?) AND "
        "(sourceNodeName = ? OR destinationNodeName = ?) GROUP BY fv_k0, fv_k1, fv_k2, fv_k3 "
        "ORDER BY fv_v DESC, fv_k0, fv_k1, fv_k2, fv_k3 LIMIT ?");
    assert_args(&s, "1700000000|1700000600|'n1'|'n1'|10");
    fv_sql_reset(&s);
    build(&q, FV_SQL_SQLITE, W_TOTAL, &s);
    assert_string_equal(s.text.p, "SELECT count(*), coalesce(sum(reversePacketDeltaCount), 0), "
                                  "coalesce(sum(packetDeltaCount), 0) FROM flows WHERE "
                                  "flowEndSeconds >= ? AND flowEndSeconds < ? AND "
                                  "(sourceNodeName = ? OR destinationNodeName = ?)");
    fv_sql_fini(&s);
}

/* Every statement of every endpoint, in both dialects: no quote anywhere
 * in the text (values are arguments) and one argument per placeholder. */
static void test_every_statement_has_no_literal_and_one_argument_per_placeholder(void **state)
{
    static const char *const reqs[] = {
        RANGE "&where=namespace=a&where=pod=b/c&where=pod!=d&where=srcport=1&where=node~e",
        RANGE "&where=flowEndSeconds!=5&where=policy=p&where=service~s&where=dstip=1.2.3.4",
    };
    struct fv_sql s;
    struct fv_query q;

    (void)state;
    for (int g = 0; g < FV_GROUP_COUNT_; g++)
        for (int m = 0; m < FV_METRIC_COUNT_; m++)
            for (size_t r = 0; r < 2; r++)
                for (int d = 0; d < 2; d++)
                    for (int w = W_FLOWS; w <= W_SERIES; w++) {
                        char text[512];
                        size_t marks = 0;
                        snprintf(text, sizeof(text), "%s&group=%s&metric=%s", reqs[r],
                                 fv_query_group_name(g), fv_query_metric_name(m));
                        parse_ok(FV_QUERY_SERIES, text, &q);
                        if (w == W_FLOWS || w == W_COUNT) {
                            q.ncols = FV_FLOW_NCOLS;
                            for (int c = 0; c < FV_FLOW_NCOLS; c++)
                                q.cols[c] = c;
                            q.limit = 1;
                        }
                        if (w == W_GROUPS && g == FV_GROUP_NONE)
                            continue;
                        fv_sql_init(&s);
                        build(&q, (enum fv_sql_dialect)d, (enum which)w, &s);
                        assert_null(strchr(s.text.p, '\''));
                        assert_null(strchr(s.text.p, '"'));
                        assert_null(strchr(s.text.p, ';'));
                        for (const char *p = s.text.p; *p; p++)
                            marks += *p == '?';
                        assert_int_equal(marks, (size_t)s.nargs);
                        fv_sql_fini(&s);
                    }
}

/* ------------------------------------------------------------------------
 * SQL injection
 * ------------------------------------------------------------------------ */

static const char *const payloads[] = {
    "'; DROP TABLE flows; --",
    "x' OR '1'='1",
    "x\" OR \"1\"=\"1",
    "1 OR 1=1",
    "1; DELETE FROM flows",
    "sourceIP) OR (1=1",
    "flowEndSeconds DESC; DROP TABLE flows",
    "' UNION SELECT sql FROM sqlite_master --",
    "\\",
    "\\'",
    "\\\\' OR 1=1 --",
    "%",
    "_",
    "?",
    "`x`",
    "/* comment */",
    "\xc3\xa9\xe6\xbc\xa2\xf0\x9f\x99\x82", /* é漢🙂 */
    "\xff\xfe invalid UTF-8",
    "\r\n\t",
    "%27%3B%20DROP%20TABLE%20flows", /* already-escaped text, taken literally */
};

/* Percent-encodes s into a request's value. */
static const char *enc(const char *s, char *buf, size_t n)
{
    size_t k = 0;

    for (const unsigned char *p = (const unsigned char *)s; *p && k + 4 < n; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9'))
            buf[k++] = (char)*p;
        else
            k += (size_t)snprintf(buf + k, n - k, "%%%02X", *p);
    }
    buf[k] = '\0';
    return buf;
}

static void test_injection_through_any_non_value_parameter_is_refused(void **state)
{
    static const struct {
        enum fv_query_kind kind;
        const char *pre, *post; /* around the payload */
    } places[] = {
        {FV_QUERY_FLOWS, "start=", ""},
        {FV_QUERY_FLOWS, "end=", ""},
        {FV_QUERY_FLOWS, "since=", ""},
        {FV_QUERY_FLOWS, "limit=", ""},
        {FV_QUERY_FLOWS, "offset=", ""},
        {FV_QUERY_FLOWS, "sort=", ""},
        {FV_QUERY_FLOWS, "order=", ""},
        {FV_QUERY_FLOWS, "columns=", ""},
        {FV_QUERY_FLOWS, "columns=sourceIP,", ""},
        {FV_QUERY_FLOWS, "where=", ""},
        {FV_QUERY_FLOWS, "where=", "=1"},
        {FV_QUERY_FLOWS, "where=srcport=", ""},
        {FV_QUERY_FLOWS, "where=flowType!=", ""},
        {FV_QUERY_FLOWS, "where=flowEndSeconds=", ""},
        {FV_QUERY_FLOWS, "", "=1"},
        {FV_QUERY_SERIES, "step=", ""},
        {FV_QUERY_SERIES, "metric=", ""},
        {FV_QUERY_SERIES, "group=", ""},
        {FV_QUERY_SERIES, "top=", ""},
        {FV_QUERY_TOP, "group=", ""},
        {FV_QUERY_TOP, "metric=", ""},
        {FV_QUERY_TOP, "limit=", ""},
    };
    char *text = malloc(16384), *e = malloc(8192), *longp = malloc(3001);
    struct fv_query q;
    char err[256];

    (void)state;
    memset(longp, 'A', 3000);
    memcpy(longp + 2980, "' OR '1'='1", 11);
    longp[3000] = '\0';
    for (size_t p = 0; p < sizeof(places) / sizeof(places[0]); p++)
        for (size_t i = 0; i <= sizeof(payloads) / sizeof(payloads[0]); i++) {
            const char *payload = i < sizeof(payloads) / sizeof(payloads[0]) ? payloads[i] : longp;
            snprintf(text, 16384, "%s%s%s", places[p].pre, enc(payload, e, 8192), places[p].post);
            if (tparse(places[p].kind, text, &q, err) != -EINVAL)
                fail_msg("accepted: %s", text);
        }
    /* Nothing reached the database, which is whole. */
    assert_int_equal(g_db.queries, 0);
    assert_db_intact();
    free(text);
    free(e);
    free(longp);
}

/* Where values are the only place request text goes, and there it is an
 * argument: the SQL text is the same whatever the value, the argument is
 * the value byte for byte, and running it harms nothing. */
static void test_injection_through_where_values_only_ever_becomes_an_argument(void **state)
{
    static const char *const keys[] = {"sourcePodName", "namespace", "pod",   "service",
                                       "srcip",         "tcpState",  "policy"};
    static const enum fv_query_kind kinds[] = {FV_QUERY_FLOWS, FV_QUERY_SERIES, FV_QUERY_TOP};
    char *text = malloc(16384), *e = malloc(8192), *longp = malloc(1001);
    struct fv_sql s, ref;
    struct fv_query q, qref;
    struct fv_sbuf out;
    char err[512];

    (void)state;
    memset(longp, '\'', 1000);
    longp[1000] = '\0';
    fv_sbuf_init(&out, 64u << 20);
    for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
        for (size_t i = 0; i <= sizeof(payloads) / sizeof(payloads[0]); i++)
            for (size_t n = 0; n < 3; n++) {
                const char *payload =
                    i < sizeof(payloads) / sizeof(payloads[0]) ? payloads[i] : longp;
                const char *ops[] = {"=", "!=", "~"};
                for (int o = 0; o < 3; o++) {
                    bool split = strcmp(keys[k], "pod") == 0 && o < 2 && strchr(payload, '/');
                    const char *pre = kinds[n] == FV_QUERY_FLOWS ? RANGE : RANGE "&group=pod_pair";
                    snprintf(text, 16384, "%s&where=%s%s%s", pre, keys[k], ops[o],
                             enc(payload, e, 8192));
                    if (tparse2(0, kinds[n], text, &q, err) != 0)
                        fail_msg("%s: %s", text, err);
                    snprintf(text, 16384, "%s&where=%s%s%s", pre, keys[k], ops[o],
                             split ? "a/b" : "x");
                    assert_int_equal(tparse2(1, kinds[n], text, &qref, err), 0);
                    for (int d = 0; d < 2; d++) {
                        fv_sql_init(&s);
                        fv_sql_init(&ref);
                        build(&q, (enum fv_sql_dialect)d,
                              kinds[n] == FV_QUERY_FLOWS ? W_FLOWS : W_GROUPS, &s);
                        build(&qref, (enum fv_sql_dialect)d,
                              kinds[n] == FV_QUERY_FLOWS ? W_FLOWS : W_GROUPS, &ref);
                        assert_string_equal(s.text.p, ref.text.p);
                        assert_int_equal(s.nargs, ref.nargs);
                        if (!split) {
                            assert_int_equal(s.args[2].type, FV_SQL_TEXT);
                            assert_int_equal(s.args[2].len, strlen(payload));
                            assert_memory_equal(s.args[2].s, payload, strlen(payload));
                        }
                        fv_sql_fini(&s);
                        fv_sql_fini(&ref);
                    }
                    fv_sbuf_reset(&out);
                    if (fv_query_run(&q, &g_store, &out, err, sizeof(err)) != 0)
                        fail_msg("%s: %s", text, err);
                }
            }
    assert_db_intact();
    fv_sbuf_fini(&out);
    free(text);
    free(e);
    free(longp);
}

/* ------------------------------------------------------------------------
 * Answers over the fixture
 * ------------------------------------------------------------------------ */

/* A value in a JSON object at a path of members (arrays by index). */
static const json_t *group_by_key(const json_t *doc, const char *array, const char *key)
{
    const json_t *a = json_object_get(doc, array), *g;
    size_t i;

    json_array_foreach(a, i, g)
    {
        if (strcmp(jstr(g, "key"), key) == 0)
            return g;
    }
    fail_msg("no group '%s'", key);
    return NULL;
}

static void test_flows_pages_sorted_and_counted(void **state)
{
    json_t *doc, *rows, *r;

    (void)state;
    doc = run(FV_QUERY_FLOWS, RANGE "&sort=octetDeltaCount&limit=3");
    assert_int_equal(jint(doc, "start"), T0);
    assert_int_equal(jint(doc, "end"), T0 + 600);
    assert_int_equal(jint(doc, "total"), ALL_RECORDS);
    assert_int_equal(jint(doc, "limit"), 3);
    assert_int_equal(jint(doc, "offset"), 0);
    rows = json_object_get(doc, "rows");
    assert_int_equal(json_array_size(rows), 3);
    /* Records 14, 8 and 3: 10000, 4000, 3000 bytes. */
    assert_int_equal(jint(json_array_get(rows, 0), "octetDeltaCount"), 10000);
    assert_int_equal(jint(json_array_get(rows, 1), "octetDeltaCount"), 4000);
    assert_int_equal(jint(json_array_get(rows, 2), "octetDeltaCount"), 3000);
    r = json_array_get(rows, 0);
    assert_int_equal(json_object_size(r), FV_FLOW_NCOLS);
    assert_int_equal(jint(r, "flowEndSeconds"), T0 + 400);
    assert_int_equal(jint(r, "flowStartSeconds"), T0 + 390);
    assert_string_equal(jstr(r, "sourceIP"), "10.0.0.1");
    assert_string_equal(jstr(r, "destinationPodName"), "postgres-0");
    assert_int_equal(jint(r, "destinationTransportPort"), 5432);
    assert_string_equal(jstr(r, "tcpState"), "");
    json_decref(doc);

    doc = run(FV_QUERY_FLOWS, RANGE "&sort=octetDeltaCount&limit=2&offset=1&columns="
                                    "octetDeltaCount,sourcePodName");
    rows = json_object_get(doc, "rows");
    assert_int_equal(json_array_size(rows), 2);
    assert_int_equal(json_object_size(json_array_get(rows, 0)), 2);
    assert_int_equal(jint(json_array_get(rows, 0), "octetDeltaCount"), 4000);
    assert_string_equal(jstr(json_array_get(rows, 1), "sourcePodName"), "frontend-1");
    assert_int_equal(jint(doc, "total"), ALL_RECORDS);
    json_decref(doc);

    /* Default order: the newest first; the range excludes records 18 and 19. */
    doc = run(FV_QUERY_FLOWS, RANGE "&columns=flowEndSeconds&limit=10000");
    rows = json_object_get(doc, "rows");
    assert_int_equal(json_array_size(rows), ALL_RECORDS);
    assert_int_equal(jint(json_array_get(rows, 0), "flowEndSeconds"), T0 + 599);
    assert_int_equal(jint(json_array_get(rows, ALL_RECORDS - 1), "flowEndSeconds"), T0 + 10);
    json_decref(doc);

    doc = run(FV_QUERY_FLOWS, RANGE "&columns=flowEndSeconds&order=asc&offset=18");
    rows = json_object_get(doc, "rows");
    assert_int_equal(json_array_size(rows), 1);
    assert_int_equal(jint(json_array_get(rows, 0), "flowEndSeconds"), T0 + 599);
    json_decref(doc);

    /* Strings with quotes and backslashes come back as they are. */
    doc = run(FV_QUERY_FLOWS, RANGE "&where=sourcePodNamespace=it's&columns=sourcePodName");
    rows = json_object_get(doc, "rows");
    assert_int_equal(json_array_size(rows), 1);
    assert_string_equal(jstr(json_array_get(rows, 0), "sourcePodName"), "o'brien\\x%_y");
    json_decref(doc);

    doc = run(FV_QUERY_FLOWS, "start=1800000000&end=1800000001");
    assert_int_equal(jint(doc, "total"), 0);
    assert_int_equal(json_array_size(json_object_get(doc, "rows")), 0);
    json_decref(doc);
}

/* The bytes of the records a where clause selects, by /top with group none. */
static json_int_t bytes_where(const char *where)
{
    char text[1024];
    json_t *doc;
    json_int_t v;

    snprintf(text, sizeof(text), RANGE "&%s", where);
    doc = run(FV_QUERY_TOP, text);
    v = jint(doc, "total");
    json_decref(doc);
    return v;
}

static void test_where_selects_the_records_worked_out_by_hand(void **state)
{
    (void)state;
    /* Records 6, 7, 15: 100 + 120 + 60. */
    assert_int_equal(bytes_where("where=namespace=kube-system"), 280);
    /* Neither side in web: records 11, 15, 20: 50 + 60 + 7. */
    assert_int_equal(bytes_where("where=namespace!=web"), 117);
    /* %, _ and \ are plain characters: only record 20 has them. */
    assert_int_equal(bytes_where("where=pod~%25"), 7);
    assert_int_equal(bytes_where("where=pod~_"), 7);
    assert_int_equal(bytes_where("where=pod~%5C"), 7);
    assert_int_equal(bytes_where("where=pod~'brien"), 7);
    /* Case-sensitive. */
    assert_int_equal(bytes_where("where=pod~FRONTEND"), 0);
    /* Records 4, 5, 7, 10, 13, 21: 500 + 700 + 120 + 300 + 900 + 11. */
    assert_int_equal(bytes_where("where=pod=web/frontend-2"), 2531);
    assert_int_equal(bytes_where("where=pod=frontend-2"), 2531);
    assert_int_equal(bytes_where("where=pod=db/frontend-2"), 0);
    assert_int_equal(bytes_where("where=pod!=web/frontend-2"), ALL_BYTES - 2531);
    assert_int_equal(bytes_where("where=proto=udp"), 280);
    assert_int_equal(bytes_where("where=proto=17"), 280);
    /* Records 8, 9, 10, 11, 21. */
    assert_int_equal(bytes_where("where=dstport=443"), 5361);
    assert_int_equal(bytes_where("where=sourcePodName=o'brien%5Cx%25_y"), 7);
    /* Records 8, 9, 10, 11, 15, 21. */
    assert_int_equal(bytes_where("where=flowType=3"), 5421);
    assert_int_equal(bytes_where("where=srcip=fd00::2"), 11);
    assert_int_equal(bytes_where("where=flowStartSeconds=1700000080"), 4000);
    assert_int_equal(bytes_where("where=flowStartSeconds=2023-11-14T22:14:40Z"), 4000);
    /* Records 1, 2, 3. */
    assert_int_equal(bytes_where("where=service~postgres&where=srcport=40001"), 6000);
    /* Records 8 and 9: allow-egress is their egress policy. */
    assert_int_equal(bytes_where("where=policy~allow-e&where=node=node-a"), 5000);
    assert_int_equal(bytes_where("where=policy=allow-http"), 1700);
    /* The empty service: records 8-13, 15, 17, 20, 21. */
    assert_int_equal(bytes_where("where=service="),
                     4000 + 1000 + 300 + 50 + 800 + 900 + 60 + 1 + 7 + 11);
}

static void test_top_groups_other_and_total(void **state)
{
    const json_t *g;
    json_t *doc;

    (void)state;
    doc = run(FV_QUERY_TOP, RANGE "&group=pod_pair&limit=3");
    assert_string_equal(jstr(doc, "metric"), "bytes");
    assert_string_equal(jstr(doc, "group"), "pod_pair");
    assert_int_equal(jint(doc, "total"), ALL_BYTES);
    /* 24569 - 16020 - 5000 - 1200 */
    assert_int_equal(jint(doc, "other"), 2349);
    assert_int_equal(json_array_size(json_object_get(doc, "groups")), 3);
    g = json_array_get(json_object_get(doc, "groups"), 0);
    /* Records 1, 2, 3, 14, 16. */
    assert_string_equal(jstr(g, "key"), "web/frontend-1 -> db/postgres-0");
    assert_string_equal(jstr(json_object_get(g, "labels"), "source"), "web/frontend-1");
    assert_string_equal(jstr(json_object_get(g, "labels"), "destination"), "db/postgres-0");
    assert_int_equal(jint(g, "value"), 16020);
    assert_int_equal(jint(g, "reverse"), 18110);
    /* Pod to external: the address is the destination. */
    g = json_array_get(json_object_get(doc, "groups"), 1);
    assert_string_equal(jstr(g, "key"), "web/frontend-1 -> 93.184.216.34");
    assert_string_equal(jstr(json_object_get(g, "labels"), "destination"), "93.184.216.34");
    assert_int_equal(jint(g, "value"), 5000);
    assert_int_equal(jint(g, "reverse"), 49000);
    g = json_array_get(json_object_get(doc, "groups"), 2);
    assert_string_equal(jstr(g, "key"), "web/frontend-2 -> db/postgres-0");
    assert_int_equal(jint(g, "value"), 1200);
    json_decref(doc);

    doc = run(FV_QUERY_TOP, RANGE "&group=pod_pair&limit=1000");
    assert_int_equal(json_array_size(json_object_get(doc, "groups")), 13);
    assert_int_equal(jint(doc, "other"), 0);
    g = group_by_key(doc, "groups", "203.0.113.9 -> web/frontend-2");
    assert_int_equal(jint(g, "value"), 900);
    g = group_by_key(doc, "groups", "it's/o'brien\\x%_y -> db/postgres-0");
    assert_int_equal(jint(g, "value"), 7);
    g = group_by_key(doc, "groups", "web/frontend-2 -> 2001:db8::1");
    assert_int_equal(jint(g, "value"), 11);
    json_decref(doc);

    /* packets by flow type: inter-node 175 (reverse 97), to-external 56
     * (82), from-external 17 (19), intra-node 2 (2). */
    doc = run(FV_QUERY_TOP, RANGE "&group=flow_type&metric=packets");
    assert_int_equal(jint(doc, "total"), 250);
    assert_int_equal(json_array_size(json_object_get(doc, "groups")), 4);
    g = json_array_get(json_object_get(doc, "groups"), 0);
    assert_string_equal(jstr(g, "key"), "inter-node");
    assert_string_equal(jstr(json_object_get(g, "labels"), "flowType"), "inter-node");
    assert_int_equal(jint(g, "value"), 175);
    assert_int_equal(jint(g, "reverse"), 97);
    g = json_array_get(json_object_get(doc, "groups"), 3);
    assert_string_equal(jstr(g, "key"), "intra-node");
    assert_int_equal(jint(g, "value"), 2);
    json_decref(doc);

    /* Distinct 5-tuples: 14 in the range, 5 of them inter-node ones
     * (40001, 40002, 40003, record 17's and record 20's). */
    doc = run(FV_QUERY_TOP, RANGE "&group=flow_type&metric=flows&limit=1");
    assert_int_equal(jint(doc, "total"), 14);
    g = json_array_get(json_object_get(doc, "groups"), 0);
    assert_int_equal(jint(g, "value"), 5);
    assert_true(json_is_null(json_object_get(g, "reverse")));
    assert_int_equal(jint(doc, "other"), 9);
    json_decref(doc);

    /* Group none: one group, everything. */
    doc = run(FV_QUERY_TOP, RANGE "&metric=reverseBytes");
    g = json_array_get(json_object_get(doc, "groups"), 0);
    assert_string_equal(jstr(g, "key"), "all");
    assert_int_equal(json_object_size(json_object_get(g, "labels")), 0);
    assert_int_equal(jint(g, "reverse"), ALL_BYTES);
    json_decref(doc);
    doc = run(FV_QUERY_TOP, "start=1800000000&end=1800000001&group=pod_pair");
    assert_int_equal(json_array_size(json_object_get(doc, "groups")), 0);
    assert_int_equal(jint(doc, "total"), 0);
    json_decref(doc);
    doc = run(FV_QUERY_TOP, "start=1800000000&end=1800000001");
    assert_int_equal(json_array_size(json_object_get(doc, "groups")), 0);
    json_decref(doc);

    /* Throughput over the 600 s range: 24569 * 8 / 600 = 327.58 -> 327. */
    doc = run(FV_QUERY_TOP, RANGE "&metric=throughput&group=source_namespace&limit=1");
    assert_int_equal(jint(doc, "total"), 327);
    g = json_array_get(json_object_get(doc, "groups"), 0);
    /* web: everything but records 11, 15, 17, 20 and the external
     * sources 12, 13: 24569 - 50 - 60 - 1 - 7 - 800 - 900 = 22751. */
    assert_string_equal(jstr(g, "key"), "web");
    assert_int_equal(jint(g, "value"), 22751 * 8 / 600);
    json_decref(doc);
}

static void test_top_labels_for_policies_services_and_nodes(void **state)
{
    const json_t *g, *l;
    json_t *doc;

    (void)state;
    doc = run(FV_QUERY_TOP, RANGE "&group=policy_pair&limit=1000");
    assert_int_equal(json_array_size(json_object_get(doc, "groups")), 6);
    /* Records 1-5, 14, 16: no egress policy, ingress db/allow-web. */
    g = json_array_get(json_object_get(doc, "groups"), 0);
    assert_string_equal(jstr(g, "key"), " -> db/allow-web (allow)");
    assert_int_equal(jint(g, "value"), 17220);
    l = json_object_get(g, "labels");
    assert_string_equal(jstr(l, "source"), "");
    assert_string_equal(jstr(l, "egressAction"), "");
    assert_string_equal(jstr(l, "destination"), "db/allow-web");
    assert_string_equal(jstr(l, "ingressAction"), "allow");
    g = group_by_key(doc, "groups", "web/deny-external (drop) -> ");
    assert_int_equal(jint(g, "value"), 300);
    assert_string_equal(jstr(json_object_get(g, "labels"), "egressAction"), "drop");
    g = group_by_key(doc, "groups", "db/deny-all (reject) -> ");
    assert_int_equal(jint(g, "value"), 50);
    g = group_by_key(doc, "groups", "web/allow-egress (allow) -> ");
    assert_int_equal(jint(g, "value"), 5000);
    g = group_by_key(doc, "groups", " -> web/allow-http (allow)");
    assert_int_equal(jint(g, "value"), 1700);
    g = group_by_key(doc, "groups", " -> ");
    assert_int_equal(jint(g, "value"), 299);
    json_decref(doc);

    doc = run(FV_QUERY_TOP, RANGE "&group=pod_service_pair&limit=2");
    g = json_array_get(json_object_get(doc, "groups"), 0);
    assert_string_equal(jstr(g, "key"), "web/frontend-1 -> db/postgres:5432");
    assert_int_equal(jint(g, "value"), 16020);
    json_decref(doc);

    doc = run(FV_QUERY_TOP, RANGE "&group=service&where=service!=");
    assert_int_equal(json_array_size(json_object_get(doc, "groups")), 2);
    g = group_by_key(doc, "groups", "kube-system/kube-dns:dns");
    assert_string_equal(jstr(json_object_get(g, "labels"), "service"), "kube-system/kube-dns:dns");
    assert_int_equal(jint(g, "value"), 220);
    json_decref(doc);

    /* node-b: records 11 and 17 (postgres-0 as the source). */
    doc = run(FV_QUERY_TOP, RANGE "&group=node_pair&where=sourceNodeName=node-b");
    assert_int_equal(jint(doc, "total"), 51);
    g = group_by_key(doc, "groups", "node-b -> ");
    assert_int_equal(jint(g, "value"), 50);
    g = group_by_key(doc, "groups", "node-b -> node-a");
    assert_int_equal(jint(g, "value"), 1);
    json_decref(doc);

    doc = run(FV_QUERY_TOP, RANGE "&group=ingress_policy&limit=1");
    g = json_array_get(json_object_get(doc, "groups"), 0);
    assert_string_equal(jstr(json_object_get(g, "labels"), "policy"), "db/allow-web");
    json_decref(doc);
}

/* The points of one series as "t:v" pairs for the buckets with data. */
static void assert_points(const json_t *series, const char *want)
{
    const json_t *points = json_object_get(series, "points"), *pt;
    struct fv_sbuf b;
    size_t i;

    fv_sbuf_init(&b, 1 << 16);
    fv_sbuf_puts(&b, "");
    json_array_foreach(points, i, pt)
    {
        json_int_t t = json_integer_value(json_array_get(pt, 0));
        json_int_t v = json_integer_value(json_array_get(pt, 1));
        if (v != 0)
            fv_sbuf_printf(&b, "%s%lld:%lld", b.len ? " " : "", (long long)(t - (T0 - 20)) / 60,
                           (long long)v);
    }
    if (strcmp(b.p, want) != 0)
        fail_msg("points (bucket:value) '%s', want '%s'", b.p, want);
    fv_sbuf_fini(&b);
}

static void test_series_buckets_top_groups_and_other(void **state)
{
    const json_t *series, *s, *pts;
    json_t *doc;

    (void)state;
    /* Buckets of 60 s from T0 - 20: a record at T0 + off is in bucket
     * (off + 20) / 60. */
    doc = run(FV_QUERY_SERIES, RANGE "&step=60&group=pod_pair&top=2");
    assert_int_equal(jint(doc, "step"), 60);
    assert_string_equal(jstr(doc, "group"), "pod_pair");
    series = json_object_get(doc, "series");
    assert_int_equal(json_array_size(series), 3);
    s = json_array_get(series, 0);
    assert_string_equal(jstr(s, "key"), "web/frontend-1 -> db/postgres-0");
    assert_true(json_is_false(json_object_get(s, "other")));
    /* Zero-filled: 11 buckets, the first at T0 - 20. */
    pts = json_object_get(s, "points");
    assert_int_equal(json_array_size(pts), 11);
    assert_int_equal(json_integer_value(json_array_get(json_array_get(pts, 0), 0)), T0 - 20);
    assert_int_equal(json_integer_value(json_array_get(json_array_get(pts, 10), 0)), T0 + 580);
    /* Records 1 (10), 2 (70), 3 (130), 14 (400), 16 (590). */
    assert_points(s, "0:1000 1:2000 2:3000 7:10000 10:20");
    s = json_array_get(series, 1);
    assert_string_equal(jstr(s, "key"), "web/frontend-1 -> 93.184.216.34");
    assert_points(s, "1:4000 2:1000");
    s = json_array_get(series, 2);
    assert_string_equal(jstr(s, "key"), "other");
    assert_true(json_is_true(json_object_get(s, "other")));
    assert_int_equal(json_object_size(json_object_get(s, "labels")), 0);
    /* b0: records 4, 6, 7 (500 + 100 + 120); b1: 5; b2: 20; b3: 10; b4: 11;
     * b5: 12 + 13; b7: 15; b8: 21; b10: 17. */
    assert_points(s, "0:720 1:700 2:7 3:300 4:50 5:1700 7:60 8:11 10:1");
    json_decref(doc);

    /* No other when there are no more groups than top. */
    doc = run(FV_QUERY_SERIES, RANGE "&step=60&group=flow_type&metric=packets");
    series = json_object_get(doc, "series");
    assert_int_equal(json_array_size(series), 4);
    s = json_array_get(series, 3);
    assert_string_equal(jstr(s, "key"), "intra-node");
    assert_points(s, "0:2");
    json_decref(doc);

    /* Distinct 5-tuples per bucket. */
    doc = run(FV_QUERY_SERIES, RANGE "&step=60&metric=flows");
    series = json_object_get(doc, "series");
    assert_int_equal(json_array_size(series), 1);
    s = json_array_get(series, 0);
    assert_string_equal(jstr(s, "key"), "all");
    assert_points(s, "0:4 1:3 2:3 3:1 4:1 5:2 7:2 8:1 10:2");
    json_decref(doc);

    /* Throughput: bucket bytes * 8 / 60; b0 1720 * 8 / 60 = 229.3. */
    doc = run(FV_QUERY_SERIES, RANGE "&step=60&metric=throughput&where=namespace=web");
    s = json_array_get(json_object_get(doc, "series"), 0);
    pts = json_object_get(s, "points");
    assert_int_equal(json_integer_value(json_array_get(json_array_get(pts, 0), 1)), 229);
    json_decref(doc);

    /* Reverse bytes by destination namespace, top 1: external ("", records
     * 8-11, 15, 21: 52142) beats db (records 1-5, 14, 16, 20: 18510). */
    doc = run(FV_QUERY_SERIES, RANGE "&step=300&group=destination_namespace&top=1"
                                     "&metric=reverseBytes");
    series = json_object_get(doc, "series");
    assert_int_equal(json_array_size(series), 2);
    s = json_array_get(series, 0);
    assert_string_equal(jstr(s, "key"), "");
    json_decref(doc);

    /* Nothing in the range: no series for groups, a zero series for none. */
    doc = run(FV_QUERY_SERIES, "start=1800000000&end=1800000600&group=pod_pair");
    assert_int_equal(json_array_size(json_object_get(doc, "series")), 0);
    json_decref(doc);
    doc = run(FV_QUERY_SERIES, "start=1800000000&end=1800000600&step=60");
    s = json_array_get(json_object_get(doc, "series"), 0);
    assert_int_equal(json_array_size(json_object_get(s, "points")), 10);
    assert_points(s, "");
    json_decref(doc);
}

/* Sums of every series equal the total of /top, for every group and
 * metric (no record lost or counted twice between top and other). */
static void test_series_sum_to_the_total_for_every_group_and_metric(void **state)
{
    (void)state;
    for (int g = 0; g < FV_GROUP_COUNT_; g++)
        for (int m = 0; m < FV_METRIC_COUNT_; m++) {
            char text[256];
            json_t *series, *top;
            const json_t *s, *pt;
            json_int_t sum = 0;
            size_t i, j;

            if (m == FV_METRIC_FLOWS || m == FV_METRIC_THROUGHPUT || m == FV_METRIC_REV_THROUGHPUT)
                continue; /* not additive over buckets / rounded per bucket */
            snprintf(text, sizeof(text), RANGE "&step=60&top=2&group=%s&metric=%s",
                     fv_query_group_name(g), fv_query_metric_name(m));
            series = run(FV_QUERY_SERIES, text);
            snprintf(text, sizeof(text), RANGE "&metric=%s", fv_query_metric_name(m));
            top = run(FV_QUERY_TOP, text);
            json_array_foreach(json_object_get(series, "series"), i, s)
            {
                json_array_foreach(json_object_get(s, "points"), j, pt) sum +=
                    json_integer_value(json_array_get(pt, 1));
            }
            if (sum != jint(top, "total"))
                fail_msg("group %s metric %s: series sum %lld, total %lld", fv_query_group_name(g),
                         fv_query_metric_name(m), (long long)sum, (long long)jint(top, "total"));
            json_decref(series);
            json_decref(top);
        }
}

static void test_store_failure_and_argument_limit_are_reported(void **state)
{
    struct fv_query q;
    struct fv_sbuf out;
    char err[512];
    int rc;

    (void)state;
    fv_sbuf_init(&out, 1 << 20);
    parse_ok(FV_QUERY_TOP, RANGE "&group=pod_pair", &q);
    g_db.fail = true;
    rc = fv_query_run(&q, &g_store, &out, err, sizeof(err));
    g_db.fail = false;
    assert_int_equal(rc, -EIO);
    assert_string_equal(err, "store sqlite-test: disk on fire");

    /* The 6 policy pairs of the fixture need 6 * 6 key arguments, plus 3
     * and 32 for 16 two-column clauses: more than a query can carry
     * (unless FV_SQL_MAX_ARGS is raised), refused before anything runs. */
    parse_ok(FV_QUERY_SERIES,
             RANGE "&step=60&group=policy_pair&top=50&where=namespace!=a&where=namespace!=b"
                   "&where=namespace!=c&where=namespace!=d&where=namespace!=e&where=namespace!=f"
                   "&where=namespace!=g&where=namespace!=h&where=namespace!=i&where=node!=a"
                   "&where=node!=b&where=node!=c&where=node!=d&where=node!=e&where=node!=f"
                   "&where=node!=g",
             &q);
    fv_sbuf_reset(&out);
    g_db.queries = 0;
    rc = fv_query_run(&q, &g_store, &out, err, sizeof(err));
    if (6 * 6 + 3 + 32 > FV_SQL_MAX_ARGS) {
        assert_int_equal(rc, -E2BIG);
        assert_non_null(strstr(err, "use fewer where clauses or a lower top"));
        assert_int_equal(g_db.queries, 1); /* the top keys, not the series */
    } else {
        assert_int_equal(rc, 0);
    }
    fv_sbuf_fini(&out);
}

/* ------------------------------------------------------------------------
 * The HTTP handlers
 * ------------------------------------------------------------------------ */

static void test_http_endpoints_answer_json_and_errors(void **state)
{
    static struct fv_query_http_ctx with = {&g_store, NOW}, without = {NULL, NOW};
    static const struct fv_http_route routes[] = {
        {"/api/v1/flows", fv_query_http_flows, &with, false, false},
        {"/api/v1/series", fv_query_http_series, &with, false, false},
        {"/api/v1/top", fv_query_http_top, &with, false, false},
        {"/none/flows", fv_query_http_flows, &without, false, false},
    };
    struct fv_http_server_cfg cfg = {.routes = routes, .nroutes = 4};
    struct fv_sbuf body;
    struct tu_http h;
    json_t *doc;

    (void)state;
    tu_http_start(&h, &cfg);
    fv_sbuf_init(&body, 64u << 20);

    assert_int_equal(tu_http_get(&h, "/api/v1/top?" RANGE "&group=pod_pair&limit=1", &body), 200);
    doc = json_loads(body.p, 0, NULL);
    assert_non_null(doc);
    assert_int_equal(jint(doc, "total"), ALL_BYTES);
    json_decref(doc);

    /* Repeated where= are all applied: records 1, 2, 3. */
    assert_int_equal(
        tu_http_get(&h, "/api/v1/top?" RANGE "&where=srcport=40001&where=namespace=db", &body),
        200);
    doc = json_loads(body.p, 0, NULL);
    assert_int_equal(jint(doc, "total"), 6000);
    json_decref(doc);

    /* An unescaped '+' arrives as a space, which is taken for it. */
    assert_int_equal(
        tu_http_get(&h, "/api/v1/flows?start=2023-11-14T23:13:20+01:00&limit=1", &body), 200);
    doc = json_loads(body.p, 0, NULL);
    assert_int_equal(jint(doc, "start"), T0);
    json_decref(doc);

    assert_int_equal(tu_http_get(&h, "/api/v1/series?" RANGE "&step=60", &body), 200);
    assert_int_equal(tu_http_get(&h, "/api/v1/flows?" RANGE "&limit=1", &body), 200);
    doc = json_loads(body.p, 0, NULL);
    assert_int_equal(json_array_size(json_object_get(doc, "rows")), 1);
    json_decref(doc);

    assert_int_equal(tu_http_get(&h, "/api/v1/flows?limit=0", &body), 400);
    assert_string_equal(body.p, "{\"error\":\"limit: '0' is not an integer from 1 to 10000\"}\n");
    assert_int_equal(tu_http_get(&h, "/api/v1/flows?where=namespace%3Dweb%00%27", &body), 400);
    assert_non_null(strstr(body.p, "NUL byte"));
    assert_int_equal(tu_http_get(&h, "/api/v1/series?where=bogus%3D1", &body), 400);
    assert_non_null(strstr(body.p, "unknown key 'bogus'"));
    assert_int_equal(tu_http_get(&h, "/api/v1/top?start=2026-11-21T10:00:00%2B01:00&end=1", &body),
                     400);
    assert_non_null(strstr(body.p, "inverted"));
    assert_int_equal(
        tu_http_get(&h, "/api/v1/flows?sort=x%27%3B%20DROP%20TABLE%20flows%3B--", &body), 400);
    assert_non_null(strstr(body.p, "sort: unknown column 'x'; DROP TABLE flows;--'"));

    assert_int_equal(tu_http_get(&h, "/none/flows", &body), 503);
    assert_non_null(strstr(body.p, "no store is enabled"));
    assert_int_equal(tu_http_get(&h, "/none/flows?limit=x", &body), 400);

    g_db.fail = true;
    assert_int_equal(tu_http_get(&h, "/api/v1/series", &body), 500);
    g_db.fail = false;
    assert_string_equal(body.p, "{\"error\":\"store sqlite-test: disk on fire\"}\n");

    assert_db_intact();
    fv_sbuf_fini(&body);
    fv_http_server_stop(h.srv);
}

#define TEST(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(test_defaults_are_the_last_15_minutes_and_documented_values),
        TEST(test_times_are_unix_seconds_or_rfc3339_in_any_offset),
        TEST(test_auto_step_keeps_at_most_300_buckets),
        TEST(test_where_clauses_resolve_columns_aliases_and_operators),
        TEST(test_bad_times_and_ranges_are_refused_naming_the_parameter),
        TEST(test_bad_limits_steps_and_names_are_refused),
        TEST(test_unknown_repeated_and_misplaced_parameters_are_refused),
        TEST(test_bad_where_clauses_are_refused_naming_the_key),
        TEST(test_long_values_and_nul_bytes_are_refused),
        TEST(test_flows_sql_for_both_dialects),
        TEST(test_series_and_top_sql_for_both_dialects),
        TEST(test_every_statement_has_no_literal_and_one_argument_per_placeholder),
        TEST(test_injection_through_any_non_value_parameter_is_refused),
        TEST(test_injection_through_where_values_only_ever_becomes_an_argument),
        TEST(test_flows_pages_sorted_and_counted),
        TEST(test_where_selects_the_records_worked_out_by_hand),
        TEST(test_top_groups_other_and_total),
        TEST(test_top_labels_for_policies_services_and_nodes),
        TEST(test_series_buckets_top_groups_and_other),
        TEST(test_series_sum_to_the_total_for_every_group_and_metric),
        TEST(test_store_failure_and_argument_limit_are_reported),
        TEST(test_http_endpoints_answer_json_and_errors),
    };
    int rc;

    curl_global_init(CURL_GLOBAL_DEFAULT);
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
