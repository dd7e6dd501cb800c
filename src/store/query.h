/*
 * query.h - the query layer over the stores for the web UI and the CLI:
 * GET /api/v1/flows (records, paged), /api/v1/series (time buckets, top-N
 * groups plus "other") and /api/v1/top (top-N groups for Sankey diagrams
 * and pies).  docs/api.md is the reference of the HTTP API.
 *
 * A request goes through three steps, each usable on its own:
 *   1. fv_query_parse() checks the request's parameters (every name, every
 *      value, the time range, the limits) into a struct fv_query, or says
 *      which parameter is wrong.  Nothing is looked up in a store yet.
 *   2. fv_query_sql_*() build the SQL for one dialect (SQLite or ClickHouse)
 *      as a struct fv_sql.  Column names, functions and keywords come only
 *      from tables in query.c; every value of the request (filter values,
 *      times, limits, group keys) is an argument of the fv_sql, never text
 *      of the SQL.
 *   3. fv_query_run() runs those statements on a store and writes the JSON
 *      answer.
 *
 * The HTTP handlers below do all three.  The aggregator registers them on
 * its API server (same token and TLS as the other routes):
 *
 *     static struct fv_query_http_ctx qctx;   // outlives the server
 *     qctx.store = preferred_store;           // ClickHouse when enabled, else
 *                                             // SQLite; NULL: none (503)
 *     {"/api/v1/flows", fv_query_http_flows, &qctx, false},
 *     {"/api/v1/series", fv_query_http_series, &qctx, false},
 *     {"/api/v1/top", fv_query_http_top, &qctx, false},
 *
 * Ownership: a struct fv_query borrows the parameter strings it was parsed
 * from (for HTTP, the request's); they must outlive the query and its SQL.
 * Thread rules: no state of its own; the handlers run on the HTTP server's
 * thread and call the store's query(), which may be called from any thread.
 */
#ifndef FV_STORE_QUERY_H
#define FV_STORE_QUERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/sbuf.h"
#include "http/server.h"
#include "store/row.h"
#include "store/sql.h"
#include "store/store.h"

#define FV_QUERY_MAX_PARAMS 64        /* query parameters in one request */
#define FV_QUERY_MAX_WHERE 16         /* where= clauses */
#define FV_QUERY_MAX_VALUE 1024       /* bytes of one parameter's value */
#define FV_QUERY_MAX_RANGE 34560000   /* end - start: 400 days */
#define FV_QUERY_DEFAULT_RANGE 900    /* the last 15 minutes */
#define FV_QUERY_MAX_ROWS 10000       /* /flows limit */
#define FV_QUERY_MAX_OFFSET 1000000   /* /flows offset */
#define FV_QUERY_AUTO_BUCKETS 300     /* /series without step: at most this many buckets */
#define FV_QUERY_MAX_BUCKETS 2000     /* /series with step: at most this many */
#define FV_QUERY_MAX_TOP 50           /* /series top */
#define FV_QUERY_MAX_GROUPS 1000      /* /top limit */
#define FV_QUERY_MAX_KEYS 6           /* SQL columns of one group key */
#define FV_QUERY_MAX_TIME 4294967295u /* largest DateTime (2106-02-07) */

enum fv_query_kind { FV_QUERY_FLOWS, FV_QUERY_SERIES, FV_QUERY_TOP };

/* One parameter of a request (decoded); strings borrowed, NUL-terminated
 * at their length, possibly with NUL bytes inside (which are refused). */
struct fv_query_param {
    const char *key;
    size_t klen;
    const char *val;
    size_t vlen;
};

enum fv_query_op {
    FV_QUERY_EQ,  /* key=value */
    FV_QUERY_NE,  /* key!=value */
    FV_QUERY_SUB, /* key~value: contains value (case-sensitive), text columns only */
};

/* One where= clause.  An alias over two columns (namespace, pod, node,
 * policy) matches when either column matches (=, ~) or when neither does
 * (!=). */
struct fv_query_where {
    enum fv_query_op op;
    int ncols;       /* 1 or 2 */
    int col[2];      /* enum fv_flow_col of the compared columns */
    int nscol[2];    /* pod=ns/name: the namespace column beside col[i] */
    bool numeric;    /* integer or DateTime column: compare num */
    int64_t num;     /* numeric: the value */
    const char *val; /* text: the value (borrowed) */
    size_t len;      /* its length */
    bool split;      /* pod=ns/name: ns is val[0..nslen), the name follows */
    size_t nslen;    /* split: bytes of the namespace */
};

enum fv_query_metric {
    FV_METRIC_BYTES,
    FV_METRIC_REV_BYTES,
    FV_METRIC_PACKETS,
    FV_METRIC_REV_PACKETS,
    FV_METRIC_THROUGHPUT,
    FV_METRIC_REV_THROUGHPUT,
    FV_METRIC_FLOWS,
    FV_METRIC_COUNT_
};

enum fv_query_group {
    FV_GROUP_NONE,
    FV_GROUP_FLOW_TYPE,
    FV_GROUP_SOURCE_POD,
    FV_GROUP_DESTINATION_POD,
    FV_GROUP_POD_PAIR,
    FV_GROUP_SOURCE_NAMESPACE,
    FV_GROUP_DESTINATION_NAMESPACE,
    FV_GROUP_NAMESPACE_PAIR,
    FV_GROUP_SOURCE_NODE,
    FV_GROUP_DESTINATION_NODE,
    FV_GROUP_NODE_PAIR,
    FV_GROUP_SERVICE,
    FV_GROUP_POD_SERVICE_PAIR,
    FV_GROUP_INGRESS_POLICY,
    FV_GROUP_EGRESS_POLICY,
    FV_GROUP_POLICY_PAIR,
    FV_GROUP_COUNT_
};

/* A checked request. */
struct fv_query {
    enum fv_query_kind kind;
    int64_t start, end; /* start <= flowEndSeconds < end, unix seconds */
    struct fv_query_where where[FV_QUERY_MAX_WHERE];
    int nwhere;
    /* /flows */
    uint32_t limit;          /* rows per page; /top: groups */
    uint32_t offset;         /* rows skipped */
    int sort;                /* enum fv_flow_col to order by */
    bool asc;                /* order asc (else desc) */
    int cols[FV_FLOW_NCOLS]; /* columns returned, in this order */
    int ncols;
    /* /series, /top */
    enum fv_query_metric metric;
    enum fv_query_group group;
    uint32_t step; /* /series: bucket width, seconds */
    uint32_t top;  /* /series: groups with a series of their own */
};

/* Checks the parameters of a request for endpoint kind into q; now is the
 * wall clock (unix seconds) for since= and the defaults.  0, or -EINVAL
 * with a message naming the parameter in err. */
int fv_query_parse(enum fv_query_kind kind, const struct fv_query_param *params, size_t n,
                   int64_t now, struct fv_query *q, char *err, size_t errlen);

/* The first bucket of a series (start rounded down to a multiple of the
 * step) and the number of buckets up to end. */
int64_t fv_query_first_bucket(const struct fv_query *q);
uint32_t fv_query_nbuckets(const struct fv_query *q);

/* Names of metrics and groups, as in the API ("bytes", "pod_pair"). */
const char *fv_query_metric_name(enum fv_query_metric m);
const char *fv_query_group_name(enum fv_query_group g);
/* SQL columns of g's key (0 for none). */
int fv_query_group_nkeys(enum fv_query_group g);

/* ---- SQL ---- */

/* The SQL builders append to an initialised struct fv_sql; errors are in
 * out->err (sticky), e.g. -FV_ELIMIT when a request needs more arguments
 * than FV_SQL_MAX_ARGS.  Group none has no groups: use fv_query_sql_total. */

/* /flows: the page of records (cells: q->cols in order) and their count. */
void fv_query_sql_flows(const struct fv_query *q, enum fv_sql_dialect d, struct fv_sql *out);
void fv_query_sql_count(const struct fv_query *q, enum fv_sql_dialect d, struct fv_sql *out);

/* The total of the metric over the matching records.  Cells: count of
 * records, metric, reverse metric (0 for flows). */
void fv_query_sql_total(const struct fv_query *q, enum fv_sql_dialect d, struct fv_sql *out);

/* The `limit` largest groups, largest first.  Cells: the group's key
 * columns (fv_query_group_nkeys), metric, reverse metric. */
void fv_query_sql_groups(const struct fv_query *q, enum fv_sql_dialect d, uint32_t limit,
                         struct fv_sql *out);

/* A group key as read back from fv_query_sql_groups: the key cells (text
 * borrowed from the caller's storage). */
struct fv_query_key {
    struct fv_sql_val cell[FV_QUERY_MAX_KEYS];
};

/* /series: cells bucket start, group index, metric.  The group index is
 * i + 1 for a record whose key equals keys[i], 0 for any other ("other");
 * with group none (nkeys 0) it is always 0. */
void fv_query_sql_series(const struct fv_query *q, enum fv_sql_dialect d,
                         const struct fv_query_key *keys, size_t nkeys, struct fv_sql *out);

/* ---- Running ---- */

/* Runs q on store and appends the JSON answer (docs/api.md) to out.
 * 0; -E2BIG when the request needs more SQL arguments than a query can
 * carry (a 400: fewer where clauses or a lower top); another negative
 * code when the store or the output failed.  err says why; out may then
 * hold part of an answer (the HTTP handlers reset it). */
int fv_query_run(const struct fv_query *q, struct fv_store *store, struct fv_sbuf *out, char *err,
                 size_t errlen);

/* ---- HTTP ---- */

struct fv_query_http_ctx {
    struct fv_store *store; /* borrowed; NULL when no store is enabled (503) */
    int64_t now;            /* tests: a fixed wall clock, unix seconds; 0 = the real one */
};

/* fv_http_handler_fn for GET /api/v1/flows, /api/v1/series, /api/v1/top:
 * 200 with the answer, 400 {"error"} naming the bad parameter, 503 when
 * ctx->store is NULL, 500 with the store's message when it fails. */
int fv_query_http_flows(void *ctx, struct fv_http_req *req, struct fv_sbuf *out);
int fv_query_http_series(void *ctx, struct fv_http_req *req, struct fv_sbuf *out);
int fv_query_http_top(void *ctx, struct fv_http_req *req, struct fv_sbuf *out);

#endif
