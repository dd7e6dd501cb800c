/*
 * clickhouse.c - the ClickHouse sink (store.h): batches of RowBinary rows
 * inserted over HTTP, a disk spool for when the server is away, the
 * schema's versioned migrations, retention by partition, and query().
 *
 * Threads and who owns what:
 *   - the producer (push) appends rows to the current batch, under mu;
 *   - the writer thread seals the current batch every commitInterval,
 *     creates or migrates the schema, sends spooled batches (oldest first)
 *     and then the memory queue, retries with backoff, and runs the
 *     retention step every minute;
 *   - the spill thread moves the oldest sealed batches (or the current
 *     one, sealed early) to the spool while the memory queue is over 3/4
 *     of its cap, so that push() keeps finding room (it refuses only when
 *     memory and spool are both full, or while the disk lags);
 *   - query() runs on the caller's thread with a libcurl handle of its own.
 * A batch is in exactly one place at a time: the current batch, the sealed
 * list, the writer's hands (in flight) or the spiller's hands (being
 * written), and its bytes count in mem_bytes until it leaves memory.
 *
 * Partitions: PARTITION BY intDiv(toUInt32(timeInserted), 3600), one
 * partition per hour of insertion time, which 18.16 and current releases
 * both accept; retention and the size cap drop whole hours, in flows and
 * in the views alike.  The cap is per server (each shard of a cluster its
 * own) and counts the views' tables; the current hour is never dropped.
 *
 * What can still go wrong, and is counted: an insert whose connection
 * breaks after the whole body went out (the server stopping mid-insert, a
 * network cut) may or may not have been written, and its retry may write
 * it twice (batches_ambiguous).  A batch the server keeps refusing (a
 * flows table with other columns, say) is retried for ever, not dropped:
 * the queue and the spool fill and the aggregator applies backpressure.
 */
#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/clock.h"
#include "base/err.h"
#include "base/log.h"
#include "base/sbuf.h"
#include "store/chhttp.h"
#include "store/row.h"
#include "store/spool.h"
#include "store/store.h"

#define PARTITION_EXPR "intDiv(toUInt32(timeInserted), 3600)"
#define PARTITION_SECONDS 3600
#define BACKOFF_MIN_MS 1000
#define BACKOFF_MAX_MS 10000
#define FAIL_LOG_EVERY_MS 30000
#define MAINT_FIRST_MS 5000
#define MAINT_EVERY_MS 60000
#define SPOOL_RETRY_MS 5000
#define GZIP_LEVEL 1 /* fast: the writer must keep up with the input */
#define BATCH_MIN_BYTES (64u << 10)
#define BATCH_MAX_BYTES (64u << 20)
#define SPOOL_READ_MAX (1ull << 30)
#define QUERY_MAX_RESULT (64u << 20)
#define QUERY_TIMEOUT_MS 60000
#define STMT_RESP_MAX (1u << 20)
#define SCHEMA_VERSION 1 /* the newest migration */

/* ClickHouse error codes that mean the schema is gone (dropped by hand). */
#define CH_UNKNOWN_TABLE 60
#define CH_UNKNOWN_DATABASE 81

/* ---- The views (SPEC section 5), as in the reference ---- */

struct view_def {
    const char *name;        /* e.g. "flows_pod_view" */
    const char *const *keys; /* grouping columns after the time columns */
};

static const char *const view_times[] = {"timeInserted", "flowEndSeconds",
                                         "flowEndSecondsFromSourceNode",
                                         "flowEndSecondsFromDestinationNode", NULL};
static const char *const view_sums[] = {"octetDeltaCount",
                                        "reverseOctetDeltaCount",
                                        "throughput",
                                        "reverseThroughput",
                                        "throughputFromSourceNode",
                                        "throughputFromDestinationNode",
                                        "reverseThroughputFromSourceNode",
                                        "reverseThroughputFromDestinationNode",
                                        NULL};
static const char *const pod_keys[] = {
    "sourcePodName",          "destinationPodName",         "destinationIP",
    "destinationServicePort", "destinationServicePortName", "flowType",
    "sourcePodNamespace",     "destinationPodNamespace",    NULL};
static const char *const node_keys[] = {"sourceNodeName", "destinationNodeName",
                                        "sourcePodNamespace", "destinationPodNamespace", NULL};
static const char *const policy_keys[] = {"egressNetworkPolicyName",
                                          "egressNetworkPolicyNamespace",
                                          "egressNetworkPolicyRuleAction",
                                          "ingressNetworkPolicyName",
                                          "ingressNetworkPolicyNamespace",
                                          "ingressNetworkPolicyRuleAction",
                                          "sourcePodNamespace",
                                          "sourcePodName",
                                          "destinationPodNamespace",
                                          "destinationPodName",
                                          "destinationIP",
                                          "destinationServicePortName",
                                          "flowType",
                                          NULL};
static const struct view_def views[] = {{"flows_pod_view", pod_keys},
                                        {"flows_node_view", node_keys},
                                        {"flows_policy_view", policy_keys}};
#define NVIEWS (sizeof(views) / sizeof(views[0]))

/* ---- The sink ---- */

struct batch {
    struct batch *next;  /* the next newer sealed batch */
    struct fv_sbuf rows; /* RowBinary rows, back to back */
    uint32_t nrows;      /* how many */
};

struct shard {
    char *url;      /* a server the schema and retention run on */
    bool schema_ok; /* migrated since the last error that said otherwise */
    bool recheck;   /* an insert said a table is missing: run every migration again */
};

struct chs {
    /* Configuration, owned copies. */
    struct fv_ch_cfg cfg;            /* numbers and flags; its strings are not used */
    char *url;                       /* inserts and queries go here */
    char *db;                        /* database name */
    char *cluster;                   /* NULL without a cluster */
    char *user, *password, *ca_file; /* credentials and CA file, or NULL */
    struct shard *shards; /* the servers that get the schema (url alone without cluster) */
    int nshards;
    char *insert_sql;           /* INSERT INTO `db`.flows (...) FORMAT RowBinary */
    struct fv_chhttp_conn conn; /* points into the strings above */
    size_t batch_cap;           /* a batch is sealed at this many bytes */
    uint64_t spill_mark;        /* the spiller works while mem_bytes is above this */

    pthread_mutex_t mu;        /* guards the fields marked "under mu" */
    pthread_cond_t wake;       /* the writer: sealed batch, stop */
    pthread_cond_t spill_wake; /* the spiller: over the mark, room in the spool, stop */
    /* Under mu: */
    struct batch *cur;         /* the batch push() appends to, or NULL */
    uint64_t cur_first_ms;     /* when its first row came */
    struct batch *head, *tail; /* sealed batches, oldest first */
    uint64_t mem_bytes;        /* row bytes in memory (current, sealed, in hands) */
    uint64_t mem_rows;         /* rows in memory */
    bool stopping;             /* stop() was called */
    bool spiller_exit;         /* the spiller must return */
    bool spool_blocked;        /* the last spill failed (full or I/O); retried later */
    uint64_t stop_deadline_ms; /* the writer gives up sending at this time */
    struct fv_store_stats st;  /* counters; the gauges are computed in stats() */

    struct fv_spool *spool;               /* NULL without a spool dir */
    _Atomic uint64_t abort_at_ms;         /* the writer's transfers give up at this time */
    pthread_t writer, spiller;            /* the two threads */
    bool writer_started, spiller_started; /* ...when they run (for stop) */

    /* The writer thread's own: */
    struct fv_chhttp http;     /* inserts, schema and retention statements */
    struct fv_sbuf gz;         /* the compressed body of the batch being sent */
    struct fv_spool_batch sb;  /* the spooled batch being sent */
    uint64_t backoff_ms;       /* the current retry delay; 0 after a success */
    uint64_t retry_at_ms;      /* no attempt before this time */
    uint64_t next_maint_ms;    /* the next retention step */
    uint64_t failures;         /* failed attempts since the last success */
    uint64_t first_fail_ms;    /* when the first of them happened */
    uint64_t next_fail_log_ms; /* the next "still failing" line */

    /* The spill thread's own: */
    struct fv_sbuf spill_gz; /* the compressed body of the batch being spilled */
};

/* ---- Small helpers ---- */

static uint64_t min_u64(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}

static char *dup_or_null(const char *s)
{
    return s && s[0] ? strdup(s) : NULL;
}

/* Waits on cond until signalled or the monotonic time deadline_ms. */
static void wait_until(pthread_cond_t *cond, pthread_mutex_t *mu, uint64_t deadline_ms)
{
    if (deadline_ms == UINT64_MAX) {
        pthread_cond_wait(cond, mu);
        return;
    }
    struct timespec ts = {.tv_sec = (time_t)(deadline_ms / 1000),
                          .tv_nsec = (long)(deadline_ms % 1000) * 1000000L};
    pthread_cond_timedwait(cond, mu, &ts);
}

static int cond_init_mono(pthread_cond_t *c)
{
    pthread_condattr_t a;
    int rc;

    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    rc = pthread_cond_init(c, &a);
    pthread_condattr_destroy(&a);
    return -rc;
}

/* "http://h:p" from cfg's URL: http(s) as given (without trailing '/'),
 * tcp://HOST[:PORT] (the reference's native-protocol form) as HTTP on
 * HOST:8123, with a warning.  -FV_ECONFIG for anything else. */
static int normalize_url(const char *in, char **out)
{
    char buf[1024];
    size_t n;

    *out = NULL;
    while (*in == ' ')
        in++;
    n = strcspn(in, " ");
    if (n == 0 || n >= sizeof(buf) - 16)
        return -FV_ECONFIG;
    if (strncmp(in, "tcp://", 6) == 0) {
        const char *h = in + 6, *end = h + strcspn(h, "/?# ");
        const char *colon = *h == '[' ? strchr(h, ']') : memchr(h, ':', (size_t)(end - h));
        size_t hl = (size_t)((colon && colon < end ? colon + (*h == '[') : end) - h);
        if (hl == 0)
            return -FV_ECONFIG;
        snprintf(buf, sizeof(buf), "http://%.*s:8123", (int)hl, h);
        FV_LOG_WARN("clickhouse url=%.*s: flowvis talks to ClickHouse over HTTP, using url=%s "
                    "(set clickHouse.databaseURL to http://HOST:8123 to silence this)",
                    (int)n, in, buf);
    } else if (strncmp(in, "http://", 7) == 0 || strncmp(in, "https://", 8) == 0) {
        if (memchr(in, '?', n) || memchr(in, '#', n))
            return -FV_ECONFIG;
        while (n > 0 && in[n - 1] == '/')
            n--;
        snprintf(buf, sizeof(buf), "%.*s", (int)n, in);
    } else {
        return -FV_ECONFIG;
    }
    *out = strdup(buf);
    return *out ? 0 : -ENOMEM;
}

/* Names go into SQL between backquotes (identifiers) or quotes (in
 * Distributed()); refuse what would need escaping. */
static bool name_ok(const char *s)
{
    if (s == NULL || s[0] == '\0' || strlen(s) > 200)
        return false;
    for (const char *p = s; *p; p++)
        if (*p == '`' || *p == '\'' || *p == '\\' || (unsigned char)*p < 0x20)
            return false;
    return true;
}

/* ---- Schema SQL ---- */

/* Appends ", "-separated names. */
static void put_list(struct fv_sbuf *b, const char *const *names, bool first)
{
    for (int i = 0; names[i]; i++)
        fv_sbuf_printf(b, "%s%s", first && i == 0 ? "" : ", ", names[i]);
}

static void sql_flows_table(struct fv_sbuf *b, const char *db, const char *table)
{
    fv_sbuf_printf(b, "CREATE TABLE IF NOT EXISTS `%s`.%s (\n", db, table);
    for (int c = 0; c < FV_FLOW_NCOLS; c++)
        fv_sbuf_printf(b, "    %s %s%s\n", fv_flow_cols[c].name,
                       fv_col_type_ch(fv_flow_cols[c].type), c + 1 < FV_FLOW_NCOLS ? "," : "");
    fv_sbuf_printf(b, ") ENGINE = MergeTree\nPARTITION BY " PARTITION_EXPR
                      "\nORDER BY (timeInserted, flowEndSeconds)");
}

static void sql_view(struct fv_sbuf *b, const char *db, const struct view_def *v,
                     const char *suffix, const char *from)
{
    fv_sbuf_printf(b,
                   "CREATE MATERIALIZED VIEW IF NOT EXISTS `%s`.%s%s\nENGINE = SummingMergeTree((",
                   db, v->name, suffix);
    put_list(b, view_sums, true);
    fv_sbuf_puts(b, "))\nPARTITION BY " PARTITION_EXPR "\nORDER BY (");
    put_list(b, view_times, true);
    put_list(b, v->keys, false);
    fv_sbuf_puts(b, ")\nAS SELECT\n    ");
    put_list(b, view_times, true);
    put_list(b, v->keys, false);
    for (int i = 0; view_sums[i]; i++)
        fv_sbuf_printf(b, ",\n    sum(%s) AS %s", view_sums[i], view_sums[i]);
    fv_sbuf_printf(b, "\nFROM `%s`.%s\nGROUP BY ", db, from);
    put_list(b, view_times, true);
    put_list(b, v->keys, false);
}

static void sql_distributed(struct fv_sbuf *b, const char *db, const char *cluster,
                            const char *name, const char *local)
{
    fv_sbuf_printf(b,
                   "CREATE TABLE IF NOT EXISTS `%s`.%s AS `%s`.%s\n"
                   "ENGINE = Distributed('%s', '%s', '%s', rand())",
                   db, name, db, local, cluster, db, local);
}

/* Appends statement i (from 0) of migration version to b; false when
 * there is no such statement.  Migration 0 is the bootstrap that every
 * contact runs: the database and the migrations table. */
static bool migration_stmt(const char *db, const char *cluster, int version, int i,
                           struct fv_sbuf *b)
{
    fv_sbuf_reset(b);
    if (version == 0) {
        if (i == 0)
            fv_sbuf_printf(b, "CREATE DATABASE IF NOT EXISTS `%s`", db);
        else if (i == 1)
            fv_sbuf_printf(b,
                           "CREATE TABLE IF NOT EXISTS `%s`.flowvis_schema_migrations "
                           "(version UInt32, applied DateTime) ENGINE = MergeTree ORDER BY version",
                           db);
        return i < 2;
    }
    if (version != 1)
        return false;
    /* Migration 1: flows and its three views (each server's own tables in
     * a cluster: flows_local and *_view_local, with Distributed tables
     * named flows and *_view over them). */
    const char *base = cluster ? "flows_local" : "flows";
    const char *suffix = cluster ? "_local" : "";
    int nv = (int)NVIEWS;
    if (i == 0) {
        sql_flows_table(b, db, base);
    } else if (i <= nv) {
        sql_view(b, db, &views[i - 1], suffix, base);
    } else if (cluster && i == nv + 1) {
        sql_distributed(b, db, cluster, "flows", "flows_local");
    } else if (cluster && i <= 2 * nv + 1) {
        char local[64];
        snprintf(local, sizeof(local), "%s_local", views[i - nv - 2].name);
        sql_distributed(b, db, cluster, views[i - nv - 2].name, local);
    } else {
        return false;
    }
    return true;
}

void fv_ch_schema_print(const struct fv_ch_cfg *cfg, FILE *out)
{
    const char *db = cfg->database && cfg->database[0] ? cfg->database : "default";
    const char *cluster = cfg->cluster && cfg->cluster[0] ? cfg->cluster : NULL;
    struct fv_sbuf b;

    fv_sbuf_init(&b, 1 << 20);
    fprintf(out, "-- flowvis ClickHouse schema, database %s%s%s.\n", db,
            cluster ? ", cluster " : "", cluster ? cluster : "");
    fprintf(out, "-- Run on every contact (idempotent):\n\n");
    for (int i = 0; migration_stmt(db, cluster, 0, i, &b); i++)
        fprintf(out, "%s;\n\n", b.p);
    for (int v = 1; v <= SCHEMA_VERSION; v++) {
        fprintf(
            out,
            "-- Migration %d, applied when max(version) in flowvis_schema_migrations < %d%s:\n\n",
            v, v, cluster ? ", on every shard" : "");
        for (int i = 0; migration_stmt(db, cluster, v, i, &b); i++)
            fprintf(out, "%s;\n\n", b.p);
        fprintf(out, "INSERT INTO `%s`.flowvis_schema_migrations VALUES (%d, now());\n\n", db, v);
    }
    fv_sbuf_fini(&b);
}

/* ---- Failures and backoff (writer thread) ---- */

static void describe(const struct fv_chhttp_res *res, char *buf, size_t n)
{
    if (res->status)
        snprintf(buf, n, "status=%ld error=\"%s\"", res->status, res->error);
    else
        snprintf(buf, n, "error=\"%s\"", res->error);
}

static void note_failure(struct chs *s, const char *what, const char *url, uint32_t rows,
                         const struct fv_chhttp_res *res)
{
    uint64_t now = fv_clock_mono_ms();
    char why[400];

    describe(res, why, sizeof(why));
    s->failures++;
    s->backoff_ms = s->backoff_ms ? min_u64(s->backoff_ms * 2, BACKOFF_MAX_MS) : BACKOFF_MIN_MS;
    s->retry_at_ms = now + s->backoff_ms;
    if (s->failures == 1) {
        s->first_fail_ms = now;
        s->next_fail_log_ms = now + FAIL_LOG_EVERY_MS;
        FV_LOG_WARN("clickhouse %s failed url=%s rows=%" PRIu32 " %s; rows are kept and retried",
                    what, url, rows, why);
    } else if (now >= s->next_fail_log_ms) {
        s->next_fail_log_ms = now + FAIL_LOG_EVERY_MS;
        pthread_mutex_lock(&s->mu);
        uint64_t queued = s->mem_rows;
        pthread_mutex_unlock(&s->mu);
        FV_LOG_WARN("clickhouse still failing url=%s failures=%" PRIu64 " for=%" PRIu64
                    "s rows_in_memory=%" PRIu64 " last: %s %s",
                    url, s->failures, (now - s->first_fail_ms) / 1000, queued, what, why);
    }
}

static void note_success(struct chs *s, const char *url)
{
    if (s->failures)
        FV_LOG_INFO("clickhouse back up url=%s after %" PRIu64 " failures in %" PRIu64 "s", url,
                    s->failures, (fv_clock_mono_ms() - s->first_fail_ms) / 1000);
    s->failures = 0;
    s->backoff_ms = 0;
    s->retry_at_ms = 0;
}

/* ---- Statements (writer thread) ---- */

/* Runs one statement; on failure the caller gets the result in res. */
static int exec_sql(struct chs *s, const char *url, const char *sql, struct fv_chhttp_res *res)
{
    return fv_chhttp_exec(&s->http, url, sql, strlen(sql), res);
}

static int max_version_row(void *arg, const struct fv_sql_val *cells, int n)
{
    int64_t *v = arg;

    if (n >= 1 && cells[0].type == FV_SQL_INT)
        *v = cells[0].i;
    return 0;
}

/* A schema attempt that failed while rows wait counts as a failed batch
 * attempt: no batch can be written before it succeeds. */
static void count_schema_failure(struct chs *s)
{
    struct fv_spool_stats sst = {0};

    if (s->spool)
        fv_spool_stats(s->spool, &sst);
    pthread_mutex_lock(&s->mu);
    s->st.up = false;
    if (s->mem_rows > 0 || sst.rows > 0)
        s->st.batches_failed++;
    pthread_mutex_unlock(&s->mu);
}

/* The bootstrap, then the highest version applied (0 for none) into *have. */
static int read_version(struct chs *s, struct shard *sh, struct fv_sbuf *b, int64_t *have,
                        struct fv_chhttp_res *res)
{
    char err[256];
    int rc = 0;

    for (int i = 0; rc == 0 && migration_stmt(s->db, s->cluster, 0, i, b); i++)
        rc = exec_sql(s, sh->url, b->p, res);
    if (rc < 0)
        return rc;
    fv_sbuf_reset(b);
    fv_sbuf_printf(b,
                   "SELECT max(version) FROM `%s`.flowvis_schema_migrations "
                   "FORMAT TabSeparatedWithNamesAndTypes",
                   s->db);
    rc = exec_sql(s, sh->url, b->p, res);
    if (rc < 0)
        return rc;
    *have = 0;
    if (fv_chhttp_tsv_rows(s->http.resp.p, s->http.resp.len, max_version_row, have, err,
                           sizeof(err)) < 0) {
        snprintf(res->error, sizeof(res->error), "migrations table: %.200s", err);
        return -EIO;
    }
    return 0;
}

/* Applies the migrations above the recorded version.  After an error
 * that said a table is missing (recheck), the statements of the applied
 * ones run again too: each is IF NOT EXISTS, so only what is gone comes
 * back. */
static int migrate_shard(struct chs *s, struct shard *sh)
{
    struct fv_chhttp_res res;
    struct fv_sbuf b;
    int64_t have = 0;
    int rc;

    fv_sbuf_init(&b, 1 << 20);
    rc = read_version(s, sh, &b, &have, &res);
    for (int v = sh->recheck ? 1 : (int)have + 1; rc == 0 && v <= SCHEMA_VERSION; v++) {
        for (int i = 0; rc == 0 && migration_stmt(s->db, s->cluster, v, i, &b); i++)
            rc = exec_sql(s, sh->url, b.p, &res);
        if (v <= have)
            continue;
        fv_sbuf_reset(&b);
        fv_sbuf_printf(&b, "INSERT INTO `%s`.flowvis_schema_migrations VALUES (%d, now())", s->db,
                       v);
        if (rc == 0)
            rc = exec_sql(s, sh->url, b.p, &res);
        if (rc == 0)
            FV_LOG_INFO("clickhouse applied migration url=%s database=%s version=%d", sh->url,
                        s->db, v);
    }
    fv_sbuf_fini(&b);
    if (rc < 0) {
        note_failure(s, "schema", sh->url, 0, &res);
        count_schema_failure(s);
        return rc;
    }
    if (have >= SCHEMA_VERSION)
        FV_LOG_INFO("clickhouse schema %s url=%s database=%s version=%d",
                    sh->recheck ? "checked again" : "up to date", sh->url, s->db, SCHEMA_VERSION);
    sh->schema_ok = true;
    sh->recheck = false;
    return 0;
}

static void job_schema(struct chs *s)
{
    for (int i = 0; i < s->nshards; i++) {
        if (!s->shards[i].schema_ok && migrate_shard(s, &s->shards[i]) < 0)
            return;
    }
    note_success(s, s->url);
    s->next_maint_ms = fv_clock_mono_ms() + MAINT_FIRST_MS;
}

/* ---- Inserts (writer thread) ---- */

/* Sends one batch; counts and logs the outcome.  0 or a negative code. */
static int send_rows(struct chs *s, const char *body, size_t len, uint32_t rows, bool is_gz)
{
    struct fv_chhttp_res res;
    int rc;

    if (!is_gz && s->cfg.compress && fv_chhttp_gzip(body, len, GZIP_LEVEL, &s->gz) == 0) {
        body = s->gz.p;
        len = s->gz.len;
        is_gz = true;
    }
    rc = fv_chhttp_insert(&s->http, s->url, s->insert_sql, body, len, is_gz, &res);
    pthread_mutex_lock(&s->mu);
    if (rc == 0) {
        s->st.batches_written++;
        s->st.rows_written += rows;
        s->st.up = true;
    } else {
        s->st.batches_failed++;
        if (res.status == 0 && res.sent_all)
            s->st.batches_ambiguous++;
        s->st.up = false;
    }
    pthread_mutex_unlock(&s->mu);
    if (rc == 0) {
        note_success(s, s->url);
        return 0;
    }
    note_failure(s, "insert", s->url, rows, &res);
    if (res.code == CH_UNKNOWN_TABLE || res.code == CH_UNKNOWN_DATABASE) {
        /* Someone dropped the tables: create them again before retrying. */
        for (int i = 0; i < s->nshards; i++) {
            s->shards[i].schema_ok = false;
            s->shards[i].recheck = true;
        }
    }
    return rc;
}

static void job_spool(struct chs *s)
{
    int rc = fv_spool_peek(s->spool, &s->sb);

    if (rc == -FV_EEND)
        return;
    if (rc < 0) {
        struct fv_chhttp_res res = {0};
        snprintf(res.error, sizeof(res.error), "reading the spool: %s", fv_strerror(rc));
        note_failure(s, "spool replay", s->url, 0, &res);
        return;
    }
    if (send_rows(s, s->sb.body.p, s->sb.body.len, s->sb.rows, s->sb.flags & FV_SPOOL_GZIP) < 0)
        return;
    rc = fv_spool_ack(s->spool, s->sb.id);
    if (rc < 0)
        FV_LOG_ERROR("clickhouse spool: cannot delete sent batch id=%" PRIu64 ": %s", s->sb.id,
                     fv_strerror(rc));
    pthread_mutex_lock(&s->mu);
    s->spool_blocked = false;
    pthread_cond_signal(&s->spill_wake);
    pthread_mutex_unlock(&s->mu);
}

/* Called with mu held; returns with mu held. */
static void job_memory(struct chs *s)
{
    struct batch *b = s->head;

    s->head = b->next;
    if (s->head == NULL)
        s->tail = NULL;
    pthread_mutex_unlock(&s->mu);
    int rc = send_rows(s, b->rows.p, b->rows.len, b->nrows, false);
    pthread_mutex_lock(&s->mu);
    if (rc == 0) {
        s->mem_bytes -= b->rows.len;
        s->mem_rows -= b->nrows;
        fv_sbuf_fini(&b->rows);
        free(b);
        return;
    }
    /* Back in front: retried first, or spilled first. */
    b->next = s->head;
    s->head = b;
    if (s->tail == NULL)
        s->tail = b;
}

/* ---- Retention (writer thread) ---- */

struct part {
    uint64_t hour;  /* partition value: hours since the epoch */
    uint64_t bytes; /* on disk, flows and the views together */
    uint64_t rows;  /* rows of flows in it */
};

struct parts {
    struct part *v;
    size_t n, cap;
};

static int part_row(void *arg, const struct fv_sql_val *c, int n)
{
    struct parts *ps = arg;
    char *end;

    if (n < 3 || c[0].type != FV_SQL_TEXT || c[0].len == 0 || c[0].len > 20)
        return 0;
    char num[24];
    memcpy(num, c[0].s, c[0].len);
    num[c[0].len] = '\0';
    uint64_t hour = strtoull(num, &end, 10);
    if (*end != '\0')
        return 0; /* not our partitioning */
    if (ps->n == ps->cap) {
        size_t cap = ps->cap ? ps->cap * 2 : 64;
        struct part *v = realloc(ps->v, cap * sizeof(*v));
        if (v == NULL)
            return -ENOMEM;
        ps->v = v;
        ps->cap = cap;
    }
    ps->v[ps->n++] = (struct part){hour, (uint64_t)c[1].i, (uint64_t)c[2].i};
    return 0;
}

static int cmp_part(const void *a, const void *b)
{
    const struct part *x = a, *y = b;
    return x->hour < y->hour ? -1 : x->hour > y->hour;
}

static int list_parts(struct chs *s, const char *url, struct parts *ps, char *err, size_t errlen)
{
    const char *base = s->cluster ? "flows_local" : "flows";
    const char *suffix = s->cluster ? "_local" : "";
    struct fv_chhttp_res res;
    struct fv_sbuf q;
    int rc;

    fv_sbuf_init(&q, 1 << 16);
    /* bytes_on_disk: 18.16 and current releases both have it.  The views'
     * tables are ".inner.<view>" (Ordinary databases) or ".inner_id.<uuid>"
     * (Atomic, the default since 20.10). */
    fv_sbuf_printf(&q,
                   "SELECT partition, sum(bytes_on_disk), sum(if(table = '%s', rows, 0)) "
                   "FROM system.parts WHERE active AND database = '%s' AND (table = '%s'",
                   base, s->db, base);
    for (size_t v = 0; v < NVIEWS; v++)
        fv_sbuf_printf(&q, " OR table = '.inner.%s%s'", views[v].name, suffix);
    fv_sbuf_puts(&q, " OR table LIKE '.inner_id.%') GROUP BY partition "
                     "FORMAT TabSeparatedWithNamesAndTypes");
    rc = fv_chhttp_exec(&s->http, url, q.p, q.len, &res);
    fv_sbuf_fini(&q);
    if (rc < 0) {
        describe(&res, err, errlen);
        return rc;
    }
    rc = fv_chhttp_tsv_rows(s->http.resp.p, s->http.resp.len, part_row, ps, err, errlen);
    if (rc == 0)
        qsort(ps->v, ps->n, sizeof(*ps->v), cmp_part);
    return rc;
}

static int drop_part(struct chs *s, const char *url, const struct part *p, const char *why)
{
    const char *suffix = s->cluster ? "_local" : "";
    struct fv_chhttp_res res;
    char sql[512], hour[32];
    int rc;

    snprintf(sql, sizeof(sql), "ALTER TABLE `%s`.%s DROP PARTITION %" PRIu64, s->db,
             s->cluster ? "flows_local" : "flows", p->hour);
    rc = exec_sql(s, url, sql, &res);
    /* A materialized view passes DROP PARTITION on to its table. */
    for (size_t v = 0; rc == 0 && v < NVIEWS; v++) {
        snprintf(sql, sizeof(sql), "ALTER TABLE `%s`.%s%s DROP PARTITION %" PRIu64, s->db,
                 views[v].name, suffix, p->hour);
        rc = exec_sql(s, url, sql, &res);
    }
    fv_clock_rfc3339(p->hour * PARTITION_SECONDS, hour);
    if (rc < 0) {
        char e[400];
        describe(&res, e, sizeof(e));
        FV_LOG_WARN("clickhouse cannot drop partition url=%s partition=%" PRIu64 " (%s) %s", url,
                    p->hour, hour, e);
        return rc;
    }
    FV_LOG_INFO("clickhouse dropped partition url=%s partition=%" PRIu64
                " hour=%s reason=%s rows=%" PRIu64 " bytes=%" PRIu64,
                url, p->hour, hour, why, p->rows, p->bytes);
    pthread_mutex_lock(&s->mu);
    s->st.partitions_dropped++;
    s->st.rows_deleted += p->rows;
    pthread_mutex_unlock(&s->mu);
    return 0;
}

/* Drops the hours older than the retention, then the oldest ones while
 * the total is over the cap (never the newest hour). */
static void retention_shard(struct chs *s, const char *url)
{
    struct parts ps = {0};
    uint64_t total = 0, now = fv_clock_wall_s();
    size_t i = 0;
    char err[400];

    if (list_parts(s, url, &ps, err, sizeof(err)) < 0) {
        FV_LOG_WARN("clickhouse retention: cannot list partitions url=%s %s", url, err);
        goto out;
    }
    for (size_t k = 0; k < ps.n; k++)
        total += ps.v[k].bytes;
    for (; s->cfg.retention_s && i < ps.n; i++) {
        if ((ps.v[i].hour + 1) * PARTITION_SECONDS + s->cfg.retention_s > now)
            break;
        if (drop_part(s, url, &ps.v[i], "retention") < 0)
            goto out;
        total -= ps.v[i].bytes;
    }
    for (; s->cfg.max_bytes && total > s->cfg.max_bytes && i + 1 < ps.n; i++) {
        if (drop_part(s, url, &ps.v[i], "size") < 0)
            goto out;
        total -= ps.v[i].bytes;
    }
    if (s->cfg.max_bytes && total > s->cfg.max_bytes)
        FV_LOG_WARN("clickhouse size cap: url=%s bytes=%" PRIu64 " max=%" PRIu64
                    " with only the current hour left",
                    url, total, s->cfg.max_bytes);
out:
    free(ps.v);
}

static void job_maintenance(struct chs *s)
{
    for (int i = 0; i < s->nshards; i++)
        retention_shard(s, s->shards[i].url);
    s->next_maint_ms = fv_clock_mono_ms() + MAINT_EVERY_MS;
}

/* ---- The writer thread ---- */

/* Moves the current batch to the sealed list.  mu held. */
static void seal(struct chs *s)
{
    struct batch *b = s->cur;

    if (b == NULL || b->nrows == 0)
        return;
    s->cur = NULL;
    if (s->tail)
        s->tail->next = b;
    else
        s->head = b;
    s->tail = b;
    pthread_cond_signal(&s->wake);
}

enum job { JOB_NONE, JOB_SCHEMA, JOB_SPOOL, JOB_MEMORY, JOB_MAINT };

static bool schema_ready(const struct chs *s)
{
    for (int i = 0; i < s->nshards; i++)
        if (!s->shards[i].schema_ok)
            return false;
    return true;
}

/* What to do next.  mu held. */
static enum job pick(struct chs *s, uint64_t now)
{
    if (!schema_ready(s))
        return JOB_SCHEMA;
    /* When stopping, memory first: the spool outlives the process. */
    if (s->stopping)
        return s->head ? JOB_MEMORY : JOB_NONE;
    if (s->spool) {
        struct fv_spool_stats sst;
        fv_spool_stats(s->spool, &sst);
        if (sst.files > 0)
            return JOB_SPOOL;
    }
    if (s->head)
        return JOB_MEMORY;
    if ((s->cfg.retention_s || s->cfg.max_bytes) && now >= s->next_maint_ms)
        return JOB_MAINT;
    return JOB_NONE;
}

/* The next time the writer has something to do by itself.  mu held. */
static uint64_t next_wake(const struct chs *s)
{
    uint64_t t = UINT64_MAX;

    if (s->cur && s->cur->nrows)
        t = s->cur_first_ms + s->cfg.commit_ms;
    if (s->retry_at_ms)
        t = min_u64(t, s->retry_at_ms);
    if (s->stopping)
        t = min_u64(t, s->stop_deadline_ms);
    else if (s->cfg.retention_s || s->cfg.max_bytes)
        t = min_u64(t, s->next_maint_ms);
    return t;
}

static void *writer_main(void *arg)
{
    struct chs *s = arg;

    pthread_mutex_lock(&s->mu);
    for (;;) {
        uint64_t now = fv_clock_mono_ms();
        if (s->stopping && now >= s->stop_deadline_ms)
            break;
        if (s->cur && s->cur->nrows && (s->stopping || now >= s->cur_first_ms + s->cfg.commit_ms))
            seal(s);
        enum job job = now >= s->retry_at_ms ? pick(s, now) : JOB_NONE;
        if (job == JOB_NONE) {
            if (s->stopping && s->head == NULL)
                break; /* everything in memory is written */
            wait_until(&s->wake, &s->mu, next_wake(s));
            continue;
        }
        if (job == JOB_MEMORY) {
            job_memory(s);
            continue;
        }
        pthread_mutex_unlock(&s->mu);
        if (job == JOB_SCHEMA)
            job_schema(s);
        else if (job == JOB_SPOOL)
            job_spool(s);
        else
            job_maintenance(s);
        pthread_mutex_lock(&s->mu);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* ---- The spill thread ---- */

static int spill(struct chs *s, const struct batch *b, struct fv_sbuf *gz)
{
    const void *body = b->rows.p;
    size_t len = b->rows.len;
    uint32_t flags = 0;

    if (s->cfg.compress && fv_chhttp_gzip(body, len, GZIP_LEVEL, gz) == 0) {
        body = gz->p;
        len = gz->len;
        flags = FV_SPOOL_GZIP;
    }
    return fv_spool_put(s->spool, body, len, b->nrows, flags);
}

static bool spill_wanted(const struct chs *s)
{
    return (s->head || (s->cur && s->cur->nrows)) && s->mem_bytes > s->spill_mark &&
           !s->spool_blocked;
}

static void *spiller_main(void *arg)
{
    struct chs *s = arg;
    struct fv_ratelimit rl = {.interval_ms = FAIL_LOG_EVERY_MS};

    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (!s->spiller_exit && !spill_wanted(s)) {
            if (s->spool_blocked) {
                /* Full or failing: look again later, or when the writer acks. */
                wait_until(&s->spill_wake, &s->mu, fv_clock_mono_ms() + SPOOL_RETRY_MS);
                s->spool_blocked = false;
            } else {
                pthread_cond_wait(&s->spill_wake, &s->mu);
            }
        }
        if (s->spiller_exit)
            break;
        if (s->head == NULL)
            seal(s); /* the writer holds the rest: the current batch goes */
        struct batch *b = s->head;
        s->head = b->next;
        if (s->head == NULL)
            s->tail = NULL;
        pthread_mutex_unlock(&s->mu);
        int rc = spill(s, b, &s->spill_gz);
        pthread_mutex_lock(&s->mu);
        if (rc == 0) {
            s->mem_bytes -= b->rows.len;
            s->mem_rows -= b->nrows;
            s->st.rows_spilled += b->nrows;
            fv_sbuf_fini(&b->rows);
            free(b);
            continue;
        }
        b->next = s->head;
        s->head = b;
        if (s->tail == NULL)
            s->tail = b;
        s->spool_blocked = true;
        uint64_t supp;
        if (rc != -EAGAIN && fv_ratelimit_allow(&rl, fv_clock_mono_ms(), &supp))
            FV_LOG_ERROR("clickhouse spool: cannot write dir=%s rows=%" PRIu32 ": %s",
                         s->cfg.spool_dir, b->nrows, fv_strerror(rc));
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* ---- Store operations ---- */

static struct batch *batch_new(const struct chs *s)
{
    struct batch *b = calloc(1, sizeof(*b));

    if (b == NULL)
        return NULL;
    /* No hard limit here: push() checks the queue's cap first. */
    fv_sbuf_init(&b->rows, SIZE_MAX / 2);
    if (fv_sbuf_reserve(&b->rows, min_u64(s->batch_cap, 1u << 20)) < 0) {
        free(b);
        return NULL;
    }
    return b;
}

static int ch_push(void *impl, const void *row, size_t len)
{
    struct chs *s = impl;

    pthread_mutex_lock(&s->mu);
    /* A row bigger than the whole cap still goes in when memory is empty. */
    if (s->mem_bytes > 0 && s->mem_bytes + len > s->cfg.queue_bytes)
        goto refuse;
    if (s->cur == NULL) {
        s->cur = batch_new(s);
        if (s->cur == NULL)
            goto refuse;
        s->cur_first_ms = fv_clock_mono_ms();
        pthread_cond_signal(&s->wake); /* it has a new sealing deadline */
    }
    if (fv_sbuf_append(&s->cur->rows, row, len) < 0)
        goto refuse;
    s->cur->nrows++;
    s->mem_bytes += len;
    s->mem_rows++;
    s->st.rows_received++;
    if (s->cur->nrows >= s->cfg.batch_rows || s->cur->rows.len >= s->batch_cap)
        seal(s);
    if (s->spool && s->mem_bytes > s->spill_mark)
        pthread_cond_signal(&s->spill_wake);
    pthread_mutex_unlock(&s->mu);
    return 0;
refuse:
    s->st.rows_refused++;
    if (s->spool)
        pthread_cond_signal(&s->spill_wake);
    pthread_mutex_unlock(&s->mu);
    return -EAGAIN;
}

static void ch_stats(void *impl, struct fv_store_stats *st)
{
    struct chs *s = impl;
    struct fv_spool_stats sst = {0};

    if (s->spool)
        fv_spool_stats(s->spool, &sst);
    pthread_mutex_lock(&s->mu);
    *st = s->st;
    st->queue_bytes = s->mem_bytes;
    st->rows_queued = s->mem_rows + sst.rows;
    st->spool_bytes = sst.bytes;
    pthread_mutex_unlock(&s->mu);
}

static int ch_query(void *impl, const struct fv_sql *q, fv_sql_row_fn fn, void *arg, char *err,
                    size_t errlen)
{
    struct chs *s = impl;
    struct fv_chhttp h;
    struct fv_chhttp_res res;
    struct fv_sbuf sql;
    int rc;

    fv_sbuf_init(&sql, 2u << 20);
    rc = fv_sql_render_ch(q, &sql);
    if (rc == 0)
        rc = fv_sbuf_puts(&sql, " FORMAT TabSeparatedWithNamesAndTypes");
    if (rc < 0) {
        snprintf(err, errlen, "cannot render the query: %s", fv_strerror(rc));
        fv_sbuf_fini(&sql);
        return rc;
    }
    /* The query layer names tables without a database: make the
     * configured one the default for this request. */
    char query_url[1024];
    char *db = curl_easy_escape(NULL, s->db, 0);
    snprintf(query_url, sizeof(query_url), "%s%sdatabase=%s", s->url,
             strchr(s->url, '?') ? "&" : "?", db ? db : "default");
    curl_free(db);
    rc = fv_chhttp_init(&h, &s->conn, QUERY_MAX_RESULT);
    if (rc == 0) {
        h.timeout_ms = QUERY_TIMEOUT_MS;
        rc = fv_chhttp_exec(&h, query_url, sql.p, sql.len, &res);
        if (rc < 0)
            snprintf(err, errlen, "clickhouse: %s", res.error);
        else
            rc = fv_chhttp_tsv_rows(h.resp.p, h.resp.len, fn, arg, err, errlen);
    } else {
        snprintf(err, errlen, "out of memory");
    }
    fv_chhttp_fini(&h);
    fv_sbuf_fini(&sql);
    return rc;
}

static void free_batches(struct batch *b)
{
    while (b) {
        struct batch *next = b->next;
        fv_sbuf_fini(&b->rows);
        free(b);
        b = next;
    }
}

static void chs_free(struct chs *s)
{
    free_batches(s->head);
    free_batches(s->cur);
    fv_spool_free(s->spool);
    fv_chhttp_fini(&s->http);
    fv_sbuf_fini(&s->gz);
    fv_sbuf_fini(&s->spill_gz);
    fv_spool_batch_fini(&s->sb);
    for (int i = 0; i < s->nshards; i++)
        free(s->shards[i].url);
    free(s->shards);
    free(s->url);
    free(s->db);
    free(s->cluster);
    free(s->user);
    free(s->password);
    free(s->ca_file);
    free((char *)s->cfg.spool_dir);
    free(s->insert_sql);
    pthread_cond_destroy(&s->wake);
    pthread_cond_destroy(&s->spill_wake);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

/* Writes what is still in memory to the spool; the rest is lost (and said
 * so).  After the threads are gone. */
static void keep_leftovers(struct chs *s)
{
    uint64_t kept = 0, lost = 0;

    seal(s);
    for (struct batch *b = s->head; b; b = b->next) {
        if (s->spool && spill(s, b, &s->spill_gz) == 0) {
            kept += b->nrows;
            s->st.rows_spilled += b->nrows;
        } else {
            lost += b->nrows;
        }
        s->mem_bytes -= b->rows.len;
        s->mem_rows -= b->nrows;
    }
    if (kept)
        FV_LOG_INFO("clickhouse: rows=%" PRIu64 " not yet written are in the spool dir=%s", kept,
                    s->cfg.spool_dir);
    if (lost)
        FV_LOG_ERROR("clickhouse: rows=%" PRIu64 " could not be written%s", lost,
                     s->spool ? " nor spooled" : " and there is no spool (clickHouse.spoolDir)");
}

static void ch_stop(void *impl, uint64_t flush_ms)
{
    struct chs *s = impl;
    struct fv_store_stats st;

    pthread_mutex_lock(&s->mu);
    s->stopping = true;
    s->stop_deadline_ms = fv_clock_mono_ms() + flush_ms;
    atomic_store(&s->abort_at_ms, s->stop_deadline_ms);
    seal(s);
    pthread_cond_broadcast(&s->wake);
    pthread_mutex_unlock(&s->mu);
    if (s->writer_started)
        pthread_join(s->writer, NULL);
    pthread_mutex_lock(&s->mu);
    s->spiller_exit = true;
    pthread_cond_broadcast(&s->spill_wake);
    pthread_mutex_unlock(&s->mu);
    if (s->spiller_started)
        pthread_join(s->spiller, NULL);
    keep_leftovers(s);
    ch_stats(s, &st);
    FV_LOG_INFO("clickhouse stopped url=%s received=%" PRIu64 " written=%" PRIu64
                " batches=%" PRIu64 " failed=%" PRIu64 " spilled=%" PRIu64
                " rows_in_spool=%" PRIu64,
                s->url, st.rows_received, st.rows_written, st.batches_written, st.batches_failed,
                st.rows_spilled, st.rows_queued);
    chs_free(s);
}

static const struct fv_store_ops ch_ops = {
    .name = "clickhouse",
    .dialect = FV_SQL_CLICKHOUSE,
    .push = ch_push,
    .query = ch_query,
    .stats = ch_stats,
    .stop = ch_stop,
};

/* ---- Construction ---- */

static int add_shard(struct chs *s, const char *url)
{
    struct shard *v = realloc(s->shards, (size_t)(s->nshards + 1) * sizeof(*v));
    int rc;

    if (v == NULL)
        return -ENOMEM;
    s->shards = v;
    v[s->nshards] = (struct shard){0};
    rc = normalize_url(url, &v[s->nshards].url);
    if (rc < 0) {
        FV_LOG_ERROR("clickhouse: bad shard URL '%s' (want http[s]://HOST[:PORT])", url);
        return rc;
    }
    s->nshards++;
    return 0;
}

static int set_shards(struct chs *s, const struct fv_ch_cfg *cfg)
{
    char *list, *save = NULL;
    int rc = 0;

    if (cfg->cluster == NULL || cfg->cluster[0] == '\0' || cfg->shard_urls == NULL ||
        cfg->shard_urls[0] == '\0')
        return add_shard(s, s->url);
    list = strdup(cfg->shard_urls);
    if (list == NULL)
        return -ENOMEM;
    for (char *tok = strtok_r(list, ",", &save); tok && rc == 0; tok = strtok_r(NULL, ",", &save))
        if (strspn(tok, " ") < strlen(tok))
            rc = add_shard(s, tok);
    free(list);
    if (rc == 0 && s->nshards == 0)
        rc = add_shard(s, s->url);
    return rc;
}

static int build_insert_sql(struct chs *s)
{
    struct fv_sbuf b;

    fv_sbuf_init(&b, 1 << 16);
    fv_sbuf_printf(&b, "INSERT INTO `%s`.flows (", s->db);
    for (int c = 0; c < FV_FLOW_NCOLS; c++)
        fv_sbuf_printf(&b, "%s%s", c ? ", " : "", fv_flow_cols[c].name);
    fv_sbuf_puts(&b, ") FORMAT RowBinary");
    if (b.err) {
        fv_sbuf_fini(&b);
        return -ENOMEM;
    }
    s->insert_sql = b.p; /* the sbuf's allocation is ours now */
    return 0;
}

static int configure(struct chs *s, const struct fv_ch_cfg *cfg)
{
    const char *db = cfg->database && cfg->database[0] ? cfg->database : "default";
    int rc;

    if (cfg->url == NULL || normalize_url(cfg->url, &s->url) < 0) {
        FV_LOG_ERROR("clickhouse: bad URL '%s' (want http[s]://HOST[:PORT])",
                     cfg->url ? cfg->url : "");
        return -FV_ECONFIG;
    }
    if (!name_ok(db) || (cfg->cluster && cfg->cluster[0] && !name_ok(cfg->cluster))) {
        FV_LOG_ERROR("clickhouse: database and cluster names must not contain quotes, "
                     "backslashes or control characters");
        return -FV_ECONFIG;
    }
    s->cfg = *cfg;
    /* Only the numbers and flags are kept from cfg: the strings are ours. */
    s->cfg.url = s->cfg.database = s->cfg.user = s->cfg.password = s->cfg.ca_file = NULL;
    s->cfg.cluster = s->cfg.shard_urls = s->cfg.spool_dir = NULL;
    if (s->cfg.commit_ms < 1000)
        s->cfg.commit_ms = 1000;
    if (s->cfg.batch_rows == 0)
        s->cfg.batch_rows = 200000;
    if (s->cfg.queue_bytes == 0)
        s->cfg.queue_bytes = 256u << 20;
    /* Half the queue at most: when memory is over 3/4 of its cap, there is
     * always a sealed batch, or a current one of 1/4 or more, to spill. */
    s->batch_cap = (size_t)min_u64(s->cfg.queue_bytes / 2, BATCH_MAX_BYTES);
    if (s->batch_cap < BATCH_MIN_BYTES)
        s->batch_cap = BATCH_MIN_BYTES;
    s->spill_mark = s->cfg.queue_bytes / 4 * 3;
    s->db = strdup(db);
    s->cluster = dup_or_null(cfg->cluster);
    s->user = dup_or_null(cfg->user);
    s->password = dup_or_null(cfg->password);
    s->ca_file = dup_or_null(cfg->ca_file);
    s->cfg.spool_dir = dup_or_null(cfg->spool_dir);
    if (s->db == NULL || (cfg->spool_dir && cfg->spool_dir[0] && s->cfg.spool_dir == NULL))
        return -ENOMEM;
    s->conn = (struct fv_chhttp_conn){.user = s->user ? s->user : (s->password ? "default" : NULL),
                                      .password = s->password,
                                      .ca_file = s->ca_file,
                                      .insecure = cfg->insecure,
                                      .debug = cfg->debug};
    rc = set_shards(s, cfg);
    if (rc == 0)
        rc = build_insert_sql(s);
    return rc;
}

static int open_spool(struct chs *s)
{
    struct fv_spool_stats sst;
    int rc;

    if (s->cfg.spool_dir == NULL)
        return 0;
    rc = fv_spool_new(s->cfg.spool_dir, s->cfg.spool_bytes, &s->spool);
    if (rc < 0) {
        FV_LOG_ERROR("clickhouse: cannot use spool dir=%s: %s (set clickHouse.spoolDir to "
                     "a writable directory, or to \"\" for no spool)",
                     s->cfg.spool_dir, fv_strerror(rc));
        return rc;
    }
    fv_spool_stats(s->spool, &sst);
    if (sst.files)
        FV_LOG_INFO("clickhouse spool dir=%s holds batches=%" PRIu64 " rows=%" PRIu64
                    " bytes=%" PRIu64 " from an earlier run; they are sent first",
                    s->cfg.spool_dir, sst.files, sst.rows, sst.bytes);
    return 0;
}

static int start_threads(struct chs *s)
{
    int rc = -pthread_create(&s->writer, NULL, writer_main, s);

    if (rc < 0)
        return rc;
    s->writer_started = true;
    if (s->spool) {
        rc = -pthread_create(&s->spiller, NULL, spiller_main, s);
        if (rc < 0)
            return rc;
        s->spiller_started = true;
    }
    return 0;
}

int fv_ch_store_new(const struct fv_ch_cfg *cfg, struct fv_store *out)
{
    struct chs *s = calloc(1, sizeof(*s));
    int rc;

    if (s == NULL)
        return -ENOMEM;
    pthread_mutex_init(&s->mu, NULL);
    cond_init_mono(&s->wake);
    cond_init_mono(&s->spill_wake);
    atomic_store(&s->abort_at_ms, UINT64_MAX);
    fv_sbuf_init(&s->gz, SIZE_MAX / 2);
    fv_sbuf_init(&s->spill_gz, SIZE_MAX / 2);
    fv_spool_batch_init(&s->sb, SPOOL_READ_MAX);
    rc = configure(s, cfg);
    if (rc == 0)
        rc = open_spool(s);
    if (rc == 0)
        rc = fv_chhttp_init(&s->http, &s->conn, STMT_RESP_MAX);
    if (rc == 0) {
        s->http.abort_at_ms = &s->abort_at_ms;
        rc = start_threads(s);
    }
    if (rc < 0) {
        if (s->writer_started)
            ch_stop(s, 0);
        else
            chs_free(s);
        return rc;
    }
    FV_LOG_INFO("clickhouse sink url=%s database=%s%s%s shards=%d commit_ms=%" PRIu64
                " batch_rows=%" PRIu32 " queue_bytes=%" PRIu64 " spool=%s compress=%s",
                s->url, s->db, s->cluster ? " cluster=" : "", s->cluster ? s->cluster : "",
                s->nshards, s->cfg.commit_ms, s->cfg.batch_rows, s->cfg.queue_bytes,
                s->cfg.spool_dir ? s->cfg.spool_dir : "none", s->cfg.compress ? "gzip" : "none");
    out->ops = &ch_ops;
    out->impl = s;
    return 0;
}
