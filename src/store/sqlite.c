/*
 * sqlite.c - the embedded SQLite store (store.h, SPEC section 5): the
 * default store, so that the API and the UI work with nothing else
 * installed.
 *
 * Threads and memory:
 *   - push() (the aggregator's output thread) checks the RowBinary row and
 *     copies it into a single-producer single-consumer queue (base/spsc.h)
 *     of at most queue_bytes; when the queue is full it answers -EAGAIN and
 *     the caller keeps the record.  Nothing is dropped.  A row that does
 *     not parse is refused with -EINVAL and one over MAX_ROW with
 *     -FV_ELIMIT; neither comes out of fv_flow_row_encode.
 *   - One writer thread owns the write connection.  It moves rows from the
 *     queue into the batch buffer (`pend`, at most batch_rows rows and
 *     queue_bytes bytes), and every commit_ms, or when the batch is full,
 *     parses them back (fv_flow_row_parse) and inserts them with one
 *     prepared statement inside one transaction.  A transaction that fails
 *     (SQLITE_BUSY, disk full, I/O error) is rolled back and the same rows
 *     are retried with backoff; meanwhile the queue fills up and push()
 *     applies backpressure.
 *   - Between batches the writer runs the maintenance in bounded steps
 *     (transactions of at most CHUNK_ROWS rows, for at most MAINT_SLICE_MS
 *     between two batches, so that inserts are held up briefly but deletes
 *     keep up with them at full rate): retention at start and every minute,
 *     the size cap after every batch and every five seconds, then PRAGMA
 *     incremental_vacuum to give space back.  At full rate the file can
 *     exceed the cap by about a batch's worth of rows before the next check
 *     (bench_store --max-mb 256, 2M rows: 291 MB, 117k rows/s).
 *   - query() runs on read connections from a small pool (WAL lets them
 *     read while the writer writes).  Read connections are opened read-only,
 *     with PRAGMA query_only and an authorizer that allows only reading, and
 *     query() takes a single SELECT only: three fences against a query that
 *     would write, where one would do.
 *
 * Values: SQLite integers are signed 64-bit.  UInt64 columns are stored as
 * the same 64 bits, so a value of 2^63 or more reads back negative (cast
 * it to uint64_t to get it back exactly); counters never get there.
 *
 * Indexes: see `indexes` below.  Retention and the size cap delete in
 * rowid order, which is insertion order and so, but for a wall clock
 * stepping back, timeInserted order: they need no index of their own.
 */
#include "store/store.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include "base/clock.h"
#include "base/err.h"
#include "base/log.h"
#include "base/sbuf.h"
#include "base/spsc.h"
#include "store/row.h"

#define SCHEMA_VERSION 1
/* The largest row push() takes.  A row holds two label strings of at
 * most 64 KiB each (IPFIX variable-length limit) and short strings. */
#define MAX_ROW (256u << 10)
#define MIN_QUEUE_CAP (4u * (MAX_ROW + 64))
#define WRITE_BUSY_MS 1000     /* the writer waits this long for a lock, then retries */
#define READ_BUSY_MS 5000      /* a reader waits this long for a lock */
#define QUERY_TIMEOUT_MS 60000 /* a query running longer is interrupted */
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define NAP_MS 50          /* the writer's longest sleep while a batch fills */
#define CHUNK_ROWS 5000    /* rows per retention/size-cap delete transaction */
#define MAINT_SLICE_MS 200 /* maintenance runs this long between two batches, at most */
#define VACUUM_PAGES 256   /* pages per incremental_vacuum step (4 MiB of WAL) */
#define RETENTION_EVERY_MS 60000
#define SIZE_EVERY_MS 5000
#define POOL_MAX 4 /* idle read connections kept */

/* Writer connection tuning, measured with bench/bench_store. */
#define PAGE_SIZE 16384
#define WRITE_CACHE_KIB 16384
#define READ_CACHE_KIB 8192
#define READ_MMAP_BYTES (256ll << 20)
#define WAL_LIMIT_BYTES (64ll << 20) /* journal_size_limit: the WAL is cut back to this */

/* Indexes of migration 1.  The dashboard queries filter a time range on
 * flowEndSeconds, then group what is in it by Pods, namespaces, nodes,
 * Services or policies; an index on a group-by column would not narrow
 * them (a namespace is a fifth of the table), and costs much more per
 * insert, as its rows land all over its B-tree, while flowEndSeconds grows
 * with time and is appended at the right edge.
 *
 * bench/bench_store --indexes, 1M rows over 24 h, 16 KiB pages, 2 cores
 * shared with other work: CPU of the writer per row, bytes per row.
 *     none                         2.65-2.97 us   479 B
 *     flowEndSeconds               3.17-3.34 us   494 B   kept
 *     timeInserted                 3.15-3.29 us   494 B   (retention goes by rowid)
 *     flowEndSeconds+timeInserted  3.68-3.88 us   509 B
 *     sourcePodNamespace           3.55-3.83 us   498 B
 *     destinationPodNamespace      3.49-3.51 us   497 B
 *     sourceNodeName               3.89-4.53 us   517 B
 *     ingressNetworkPolicyName     3.80-4.37 us   508 B
 *     sourcePodName                6.19-6.35 us   524 B
 *
 * What the time index cannot make fast: over 1M rows, a query of the whole
 * 24 h grouped by Pod pair takes about a second, nearly all of it in the
 * GROUP BY's sort (a sum over the same rows without grouping: 0.25 s).
 * Dashboards that need that over days of data want rollup tables, as the
 * ClickHouse views are; that would be migration 2.
 */
static const char *const indexes[] = {
    "CREATE INDEX flows_flowEndSeconds ON flows(flowEndSeconds)",
};

enum maint_phase {
    M_IDLE,      /* waiting for the next retention or size check */
    M_RETENTION, /* deleting rows older than retention_s */
    M_SIZE,      /* deleting the oldest rows until under the cap */
    M_VACUUM,    /* giving free pages back to the file system */
};

/* A read connection of the pool. */
struct rconn {
    sqlite3 *db;
    uint64_t deadline; /* monotonic ms at which the running query is interrupted */
};

struct sq {
    char *path;             /* database file; owned */
    uint64_t commit_ms;     /* a transaction at least this often */
    uint32_t batch_rows;    /* ...or when the batch has this many rows */
    uint64_t queue_bytes;   /* cap of the queue (and of the batch buffer) */
    uint64_t retention_s;   /* 0 = keep */
    uint64_t max_bytes;     /* 0 = no cap */
    struct fv_spsc q;       /* push() -> writer */
    pthread_t thread;       /* the writer */
    _Atomic bool stopping;  /* stop() was called */
    uint64_t stop_deadline; /* monotonic ms after which failing writes give up */

    /* Owned by the writer thread (by fv_sqlite_store_new before it starts). */
    sqlite3 *db;             /* the write connection */
    sqlite3_stmt *ins;       /* INSERT INTO flows VALUES (?, ...) */
    sqlite3_stmt *del_old;   /* retention chunk */
    sqlite3_stmt *del_first; /* size-cap chunk: the oldest rows */
    struct fv_sbuf pend;     /* rows of the batch, back to back (RowBinary) */
    uint32_t pend_rows;      /* rows in pend */
    uint64_t batch_due;      /* monotonic ms at which the batch is written */
    uint64_t retry_at;       /* no write attempt before this (backoff) */
    uint64_t backoff_ms;     /* next backoff */
    bool failing;            /* the last write attempt failed */
    enum maint_phase phase;  /* maintenance in progress */
    uint64_t next_retention; /* monotonic ms of the next retention pass */
    uint64_t next_size;      /* monotonic ms of the next size check */
    uint64_t size_budget;    /* rows the current size-cap pass may still delete */
    uint64_t row_bytes;      /* estimated bytes per row, for the size cap */
    struct fv_ratelimit rl;  /* failure log lines */

    /* Counters, read by stats() from any thread. */
    _Atomic uint64_t received, written, refused, deleted, batches, failed;
    _Atomic uint64_t pend_bytes; /* pend.len */
    _Atomic bool up;

    pthread_mutex_t pool_lock; /* guards idle[] */
    struct rconn *idle[POOL_MAX];
    int nidle;
};

/* ---- helpers ---- */

/* A negative errno for a SQLite result code. */
static int sq_errno(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return -EBUSY;
    case SQLITE_NOMEM:
        return -ENOMEM;
    case SQLITE_FULL:
        return -ENOSPC;
    case SQLITE_READONLY:
        return -EROFS;
    case SQLITE_PERM:
    case SQLITE_AUTH:
        return -EPERM;
    case SQLITE_CANTOPEN:
        return -ENOENT;
    case SQLITE_INTERRUPT:
        return -ETIMEDOUT;
    case SQLITE_ERROR:
    case SQLITE_RANGE:
    case SQLITE_MISMATCH:
        return -EINVAL;
    default:
        return -EIO;
    }
}

/* Runs SQL without results on the writer; logs a failure with the path. */
static int exec(struct sq *s, const char *sql)
{
    char *msg = NULL;
    int rc = sqlite3_exec(s->db, sql, NULL, NULL, &msg);

    if (rc != SQLITE_OK) {
        FV_LOG_ERROR("sqlite path=%s: %s: %s", s->path, sql, msg ? msg : sqlite3_errstr(rc));
        sqlite3_free(msg);
        return sq_errno(rc);
    }
    return 0;
}

/* The first column of the first row of sql as an integer, or -1. */
static int64_t query_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    int64_t v = -1;

    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

/* The first column of the first row of sql as text into buf ("" on error). */
static void query_text(sqlite3 *db, const char *sql, char *buf, size_t len)
{
    sqlite3_stmt *st = NULL;

    buf[0] = '\0';
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW &&
        sqlite3_column_text(st, 0) != NULL)
        snprintf(buf, len, "%s", (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
}

/* Creates the directory of the file at path and its parents (mkdir -p). */
static int make_parent_dirs(const char *path)
{
    char dir[PATH_MAX];
    char *slash;
    struct stat sb;

    if (snprintf(dir, sizeof(dir), "%s", path) >= (int)sizeof(dir))
        return -ENAMETOOLONG;
    slash = strrchr(dir, '/');
    if (slash == NULL || slash == dir)
        return 0;
    *slash = '\0';
    for (char *p = dir + 1;; p++) {
        char c = *p;
        if (c != '/' && c != '\0')
            continue;
        *p = '\0';
        if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
            int err = -errno;
            FV_LOG_ERROR("sqlite path=%s: cannot create directory %s: %s", path, dir,
                         fv_strerror(err));
            return err;
        }
        *p = c;
        if (c == '\0')
            break;
    }
    if (stat(dir, &sb) < 0 || !S_ISDIR(sb.st_mode)) {
        FV_LOG_ERROR("sqlite path=%s: %s is not a directory", path, dir);
        return -ENOTDIR;
    }
    return 0;
}

/* ---- schema ---- */

/* CREATE TABLE flows (...) from fv_flow_cols. */
static int create_table_sql(struct fv_sbuf *b)
{
    fv_sbuf_puts(b, "CREATE TABLE flows (");
    for (int c = 0; c < FV_FLOW_NCOLS; c++) {
        bool text = fv_flow_cols[c].type == FV_COL_STRING;
        fv_sbuf_printf(b, "%s%s %s NOT NULL", c ? ", " : "", fv_flow_cols[c].name,
                       text ? "TEXT" : "INTEGER");
    }
    fv_sbuf_puts(b, ")");
    return b->err;
}

/* Migration 1: the flows table and its indexes. */
static int migrate_1(struct sq *s)
{
    struct fv_sbuf b;
    int rc;

    fv_sbuf_init(&b, 1 << 16);
    rc = create_table_sql(&b);
    if (rc == 0)
        rc = exec(s, b.p);
    for (size_t i = 0; i < sizeof(indexes) / sizeof(indexes[0]) && rc == 0; i++)
        rc = exec(s, indexes[i]);
    fv_sbuf_fini(&b);
    return rc;
}

/* Brings the schema to SCHEMA_VERSION in one transaction. */
static int migrate(struct sq *s)
{
    int64_t v;
    char sql[64];
    int rc = exec(s, "BEGIN IMMEDIATE");

    if (rc < 0)
        return rc;
    /* Read again under the write lock: another process may have migrated. */
    v = query_int(s->db, "PRAGMA user_version");
    if (v < 0 || v > SCHEMA_VERSION) {
        FV_LOG_ERROR("sqlite path=%s: schema version %lld is newer than this flowvis knows (%d); "
                     "use a newer flowvis or another sqlite.path",
                     s->path, (long long)v, SCHEMA_VERSION);
        rc = -ENOTSUP;
    }
    if (rc == 0 && v < 1)
        rc = migrate_1(s);
    if (rc == 0 && v < SCHEMA_VERSION) {
        snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", SCHEMA_VERSION);
        rc = exec(s, sql);
    }
    if (rc == 0)
        return exec(s, "COMMIT");
    sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

/* Settings of the write connection.  page_size and auto_vacuum take effect
 * only on a database without tables, so they come before WAL and the
 * schema. */
static int configure_writer(struct sq *s)
{
    char sql[256], mode[16];
    int64_t v = query_int(s->db, "PRAGMA user_version");
    int rc;

    if (v > SCHEMA_VERSION) {
        FV_LOG_ERROR("sqlite path=%s: schema version %lld is newer than this flowvis knows (%d); "
                     "use a newer flowvis or another sqlite.path",
                     s->path, (long long)v, SCHEMA_VERSION);
        return -ENOTSUP;
    }
    if (v < 0) {
        FV_LOG_ERROR("sqlite path=%s: not a database: %s", s->path, sqlite3_errmsg(s->db));
        return -EINVAL;
    }
    snprintf(sql, sizeof(sql),
             "PRAGMA page_size = %d; PRAGMA auto_vacuum = INCREMENTAL; "
             "PRAGMA synchronous = NORMAL; PRAGMA cache_size = -%d; "
             "PRAGMA journal_size_limit = %lld; PRAGMA temp_store = MEMORY",
             PAGE_SIZE, WRITE_CACHE_KIB, WAL_LIMIT_BYTES);
    rc = exec(s, sql);
    if (rc < 0)
        return rc;
    query_text(s->db, "PRAGMA journal_mode = WAL", mode, sizeof(mode));
    if (strcasecmp(mode, "wal") != 0) {
        FV_LOG_ERROR("sqlite path=%s: cannot use WAL mode (journal_mode is '%s'): %s", s->path,
                     mode, sqlite3_errmsg(s->db));
        return -EIO;
    }
    return 0;
}

static int prepare(struct sq *s, const char *sql, sqlite3_stmt **st)
{
    int rc = sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL);

    if (rc != SQLITE_OK) {
        FV_LOG_ERROR("sqlite path=%s: %s: %s", s->path, sql, sqlite3_errmsg(s->db));
        return sq_errno(rc);
    }
    return 0;
}

static int prepare_writer(struct sq *s)
{
    struct fv_sbuf b;
    int rc;

    fv_sbuf_init(&b, 1 << 12);
    fv_sbuf_puts(&b, "INSERT INTO flows VALUES (");
    for (int c = 0; c < FV_FLOW_NCOLS; c++)
        fv_sbuf_puts(&b, c ? ",?" : "?");
    fv_sbuf_puts(&b, ")");
    rc = b.err ? b.err : prepare(s, b.p, &s->ins);
    fv_sbuf_fini(&b);
    if (rc == 0)
        rc = prepare(s,
                     "DELETE FROM flows WHERE rowid IN "
                     "(SELECT rowid FROM flows ORDER BY rowid LIMIT ?2) AND timeInserted < ?1",
                     &s->del_old);
    if (rc == 0)
        rc = prepare(s,
                     "DELETE FROM flows WHERE rowid IN "
                     "(SELECT rowid FROM flows ORDER BY rowid LIMIT ?1)",
                     &s->del_first);
    return rc;
}

/* Opens (creating if needed) and migrates the database on s->db. */
static int open_writer(struct sq *s)
{
    int rc = make_parent_dirs(s->path);

    if (rc < 0)
        return rc;
    rc = sqlite3_open_v2(s->path, &s->db,
                         SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        FV_LOG_ERROR("sqlite path=%s: cannot open: %s", s->path,
                     s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
        return sq_errno(rc);
    }
    sqlite3_busy_timeout(s->db, WRITE_BUSY_MS);
    rc = configure_writer(s);
    if (rc == 0)
        rc = migrate(s);
    if (rc == 0)
        rc = prepare_writer(s);
    return rc;
}

static void close_writer(struct sq *s)
{
    sqlite3_finalize(s->ins);
    sqlite3_finalize(s->del_old);
    sqlite3_finalize(s->del_first);
    s->ins = s->del_old = s->del_first = NULL;
    if (s->db) {
        /* Leave the WAL empty so the file alone is the database. */
        sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
        sqlite3_close(s->db);
        s->db = NULL;
    }
}

/* ---- writing ---- */

static void note_failure(struct sq *s, const char *what, int rc, uint64_t now)
{
    uint64_t suppressed = 0;

    if (fv_ratelimit_allow(&s->rl, now, &suppressed))
        FV_LOG_WARN("sqlite path=%s: %s failed: %s (%s); rows kept, retrying (%llu similar "
                    "lines suppressed)",
                    s->path, what, sqlite3_errmsg(s->db), sqlite3_errstr(rc),
                    (unsigned long long)suppressed);
}

static int insert_row(struct sq *s, const struct fv_flow_row *r)
{
    sqlite3_stmt *st = s->ins;
    int rc;

    for (int c = 0; c < FV_FLOW_NCOLS; c++) {
        if (fv_flow_cols[c].type == FV_COL_STRING)
            sqlite3_bind_text(st, c + 1, r->s[c], (int)r->slen[c], SQLITE_STATIC);
        else
            sqlite3_bind_int64(st, c + 1, (sqlite3_int64)r->v[c]);
    }
    rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* Inserts the rows of pend in one transaction.  On failure everything is
 * rolled back and the rows stay in pend for the retry.  0 or -1. */
static int write_batch(struct sq *s, uint64_t now)
{
    struct fv_flow_row row;
    size_t off = 0;
    int rc = sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);

    while (rc == SQLITE_OK && off < s->pend.len) {
        /* push() checked every row, so this parse cannot fail. */
        int n = fv_flow_row_parse(s->pend.p + off, s->pend.len - off, &row);
        if (n <= 0) {
            rc = SQLITE_CORRUPT;
            break;
        }
        off += (size_t)n;
        rc = insert_row(s, &row);
    }
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        note_failure(s, "insert", rc, now);
        if (!sqlite3_get_autocommit(s->db))
            sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        atomic_fetch_add(&s->failed, 1);
        atomic_store(&s->up, false);
        s->failing = true;
        s->retry_at = now + s->backoff_ms;
        s->backoff_ms = s->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : s->backoff_ms * 2;
        return -1;
    }
    atomic_fetch_add(&s->written, s->pend_rows);
    atomic_fetch_add(&s->batches, 1);
    atomic_store(&s->up, true);
    s->failing = false;
    s->backoff_ms = BACKOFF_MIN_MS;
    s->pend_rows = 0;
    fv_sbuf_reset(&s->pend);
    atomic_store(&s->pend_bytes, 0);
    return 0;
}

static bool batch_full(const struct sq *s)
{
    return s->pend_rows >= s->batch_rows || s->pend.len >= s->queue_bytes;
}

/* Moves rows from the queue into the batch until it is full. */
static void drain(struct sq *s, uint64_t now)
{
    void *e;
    size_t len;

    while (!batch_full(s) && (e = fv_spsc_peek(&s->q, &len)) != NULL) {
        if (fv_sbuf_append(&s->pend, e, len) < 0)
            break; /* -ENOMEM: try again on the next round */
        fv_spsc_pop(&s->q);
        if (s->pend_rows++ == 0)
            s->batch_due = now + s->commit_ms;
    }
    atomic_store(&s->pend_bytes, s->pend.len);
}

/* ---- maintenance ---- */

/* Runs one delete chunk; the rows it removed, or -1. */
static int64_t delete_chunk(struct sq *s, sqlite3_stmt *st, uint64_t now)
{
    int rc = sqlite3_step(st);
    int64_t n = rc == SQLITE_DONE ? sqlite3_changes(s->db) : -1;

    sqlite3_reset(st);
    if (n < 0) {
        note_failure(s, "delete", rc, now);
        return -1;
    }
    atomic_fetch_add(&s->deleted, (uint64_t)n);
    return n;
}

/* Bytes of pages in use (free pages excluded). */
static uint64_t used_bytes(struct sq *s)
{
    int64_t pages = query_int(s->db, "PRAGMA page_count");
    int64_t free_pages = query_int(s->db, "PRAGMA freelist_count");
    int64_t psize = query_int(s->db, "PRAGMA page_size");

    if (pages < 0 || free_pages < 0 || psize < 0)
        return 0;
    return (uint64_t)(pages - free_pages) * (uint64_t)psize;
}

/* The size cap works between two marks: above 95% of the cap in use, the
 * oldest rows are deleted down to 90%.  The pages they free are reused by
 * the next rows, so the file stays under the cap without being shrunk and
 * grown again; it is vacuumed only when it is over the cap all the same
 * (a lower cap than before, or a writer that fell behind). */
static uint64_t size_target(const struct sq *s)
{
    return s->max_bytes / 10 * 9;
}

static uint64_t size_high(const struct sq *s)
{
    return s->max_bytes / 20 * 19;
}

/* File size in bytes, or 0 when unknown. */
static uint64_t file_bytes(struct sq *s)
{
    int64_t pages = query_int(s->db, "PRAGMA page_count");
    int64_t psize = query_int(s->db, "PRAGMA page_size");

    return pages < 0 || psize < 0 ? 0 : (uint64_t)pages * (uint64_t)psize;
}

/* Starts a size-cap pass or a vacuum when they are due (see size_target). */
static void check_size(struct sq *s)
{
    uint64_t used = used_bytes(s), rows;
    int64_t est;

    if (used <= size_high(s)) {
        if (file_bytes(s) > s->max_bytes)
            s->phase = M_VACUUM;
        return;
    }
    /* rowids are dense enough for an estimate of the row count. */
    est = query_int(s->db, "SELECT 1 + (SELECT max(rowid) FROM flows) - "
                           "(SELECT min(rowid) FROM flows)");
    rows = est > 0 ? (uint64_t)est : 1;
    s->row_bytes = used / rows + 1;
    /* Delete at most 1.5 times the estimate in this pass; the next check
     * continues if the pages did not come free as expected. */
    s->size_budget = (used - size_target(s)) / s->row_bytes * 3 / 2 + 1;
    s->phase = M_SIZE;
}

/* Deletes the oldest rows, as many as the estimate says are over the
 * target (at most CHUNK_ROWS); the rows deleted, or -1 when none were. */
static int64_t size_step(struct sq *s, uint64_t now)
{
    uint64_t used = used_bytes(s), want;
    int64_t n;

    if (used <= size_target(s))
        return 0;
    want = (used - size_target(s)) / s->row_bytes + 1;
    want = want < CHUNK_ROWS ? want : CHUNK_ROWS;
    want = want < s->size_budget ? want : s->size_budget;
    sqlite3_bind_int64(s->del_first, 1, (int64_t)want);
    n = delete_chunk(s, s->del_first, now);
    if (n <= 0)
        return -1; /* an error, or an empty table */
    s->size_budget -= (uint64_t)n < s->size_budget ? (uint64_t)n : s->size_budget;
    return n;
}

static void vacuum_step(struct sq *s, uint64_t now)
{
    char sql[64];
    int64_t free_pages = query_int(s->db, "PRAGMA freelist_count");
    int rc;

    if (free_pages <= 0) {
        sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
        s->phase = M_IDLE;
        return;
    }
    snprintf(sql, sizeof(sql), "PRAGMA incremental_vacuum(%d)", VACUUM_PAGES);
    rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        note_failure(s, "incremental_vacuum", rc, now);
        s->phase = M_IDLE;
    }
}

/* After retention, vacuum only when much of the file came free: otherwise
 * new rows reuse the free pages and giving them back would be churn. */
static void retention_done(struct sq *s)
{
    int64_t pages = query_int(s->db, "PRAGMA page_count");
    int64_t free_pages = query_int(s->db, "PRAGMA freelist_count");

    s->phase = free_pages > pages / 4 ? M_VACUUM : M_IDLE;
    s->next_size = 0; /* check the cap right away */
}

/* One bounded step of retention, size cap or vacuum. */
static void maint_step(struct sq *s, uint64_t now)
{
    int64_t n;

    switch (s->phase) {
    case M_IDLE:
        if (s->retention_s && now >= s->next_retention) {
            s->next_retention = now + RETENTION_EVERY_MS;
            s->phase = M_RETENTION;
        } else if (s->max_bytes && now >= s->next_size) {
            s->next_size = now + SIZE_EVERY_MS;
            check_size(s);
        }
        break;
    case M_RETENTION:
        sqlite3_bind_int64(s->del_old, 1, (int64_t)fv_clock_wall_s() - (int64_t)s->retention_s);
        sqlite3_bind_int64(s->del_old, 2, CHUNK_ROWS);
        n = delete_chunk(s, s->del_old, now);
        if (n < CHUNK_ROWS)
            retention_done(s);
        break;
    case M_SIZE:
        n = size_step(s, now);
        if (n < 0 || s->size_budget == 0 || used_bytes(s) <= size_target(s))
            s->phase = file_bytes(s) > s->max_bytes ? M_VACUUM : M_IDLE;
        break;
    case M_VACUUM:
        vacuum_step(s, now);
        break;
    }
}

/* Maintenance steps for up to MAINT_SLICE_MS.  Deletes must keep up with
 * inserts at full rate, so one chunk between two batches would be too
 * little; the queue absorbs the pause of a slice. */
static void maint_slice(struct sq *s)
{
    uint64_t now = fv_clock_mono_ms(), end = now + MAINT_SLICE_MS;

    do {
        maint_step(s, now);
        now = fv_clock_mono_ms();
    } while (s->phase != M_IDLE && now < end);
}

/* ---- the writer thread ---- */

static void nap(uint64_t ms)
{
    struct timespec ts = {.tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Sleeps until there is something to do: the first row of a batch, the
 * batch's deadline, a retry, a maintenance timer, or stop(). */
static void wait_for_work(struct sq *s, uint64_t now)
{
    uint64_t until = now + 100;

    if (s->phase != M_IDLE && !s->failing)
        return;
    if (s->retention_s && s->next_retention < until)
        until = s->next_retention;
    if (s->max_bytes && s->next_size < until)
        until = s->next_size;
    if (until <= now)
        return;
    if (s->pend_rows == 0) {
        fv_spsc_wait(&s->q, (unsigned)(until - now));
        return;
    }
    /* A batch is filling: sleep without being woken by every push, and
     * take what came in one go. */
    if (!batch_full(s) && s->batch_due < until)
        until = s->batch_due;
    if (s->failing && s->retry_at < until)
        until = s->retry_at;
    if (until > now + NAP_MS)
        until = now + NAP_MS;
    if (until > now)
        nap(until - now);
}

/* Rows given up at stop() after flush_ms of failures. */
static void give_up(struct sq *s)
{
    uint64_t lost = s->pend_rows;
    size_t len;

    while (fv_spsc_peek(&s->q, &len) != NULL) {
        fv_spsc_pop(&s->q);
        lost++;
    }
    FV_LOG_ERROR("sqlite path=%s: stopping with %llu rows not written: the database kept "
                 "failing",
                 s->path, (unsigned long long)lost);
}

static void *writer_run(void *arg)
{
    struct sq *s = arg;

    for (;;) {
        uint64_t now = fv_clock_mono_ms();
        bool stopping = atomic_load(&s->stopping);
        size_t len;

        drain(s, now);
        if (s->pend_rows > 0 && now >= s->retry_at &&
            (stopping || batch_full(s) || now >= s->batch_due) && write_batch(s, now) == 0 &&
            s->max_bytes && s->phase == M_IDLE && !stopping)
            check_size(s); /* at a high rate, the five-second check would be late */
        if (stopping) {
            if (s->pend_rows == 0 && fv_spsc_peek(&s->q, &len) == NULL)
                break;
            if (s->failing && now >= s->stop_deadline) {
                give_up(s);
                break;
            }
        } else {
            maint_slice(s);
        }
        wait_for_work(s, fv_clock_mono_ms());
    }
    close_writer(s);
    return NULL;
}

/* ---- reading ---- */

/* Only reading: the last fence against a statement that would write. */
static int authorize(void *arg, int action, const char *a, const char *b, const char *c,
                     const char *d)
{
    (void)arg;
    (void)a;
    (void)b;
    (void)c;
    (void)d;
    switch (action) {
    case SQLITE_SELECT:
    case SQLITE_READ:
    case SQLITE_FUNCTION:
    case SQLITE_RECURSIVE:
        return SQLITE_OK;
    default:
        return SQLITE_DENY;
    }
}

static int progress(void *arg)
{
    const struct rconn *rc = arg;
    return fv_clock_mono_ms() > rc->deadline;
}

static void rconn_free(struct rconn *c)
{
    if (c == NULL)
        return;
    sqlite3_close(c->db);
    free(c);
}

static int rconn_open(struct sq *s, struct rconn **out, char *err, size_t errlen)
{
    char sql[160];
    struct rconn *c = calloc(1, sizeof(*c));
    int rc;

    if (c == NULL)
        return -ENOMEM;
    rc = sqlite3_open_v2(s->path, &c->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_busy_timeout(c->db, READ_BUSY_MS);
        snprintf(sql, sizeof(sql),
                 "PRAGMA query_only = 1; PRAGMA cache_size = -%d; PRAGMA mmap_size = %lld",
                 READ_CACHE_KIB, READ_MMAP_BYTES);
        rc = sqlite3_exec(c->db, sql, NULL, NULL, NULL);
    }
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "sqlite path=%s: cannot open for reading: %s", s->path,
                 c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc));
        rconn_free(c);
        return sq_errno(rc);
    }
    sqlite3_set_authorizer(c->db, authorize, NULL);
    sqlite3_progress_handler(c->db, 10000, progress, c);
    *out = c;
    return 0;
}

static int pool_get(struct sq *s, struct rconn **out, char *err, size_t errlen)
{
    pthread_mutex_lock(&s->pool_lock);
    *out = s->nidle > 0 ? s->idle[--s->nidle] : NULL;
    pthread_mutex_unlock(&s->pool_lock);
    return *out ? 0 : rconn_open(s, out, err, errlen);
}

static void pool_put(struct sq *s, struct rconn *c)
{
    pthread_mutex_lock(&s->pool_lock);
    if (s->nidle < POOL_MAX) {
        s->idle[s->nidle++] = c;
        c = NULL;
    }
    pthread_mutex_unlock(&s->pool_lock);
    rconn_free(c);
}

/* True when sql starts with SELECT or WITH (after white space). */
static bool starts_as_select(const char *sql)
{
    while (*sql == ' ' || *sql == '\t' || *sql == '\n' || *sql == '\r')
        sql++;
    return strncasecmp(sql, "SELECT", 6) == 0 || strncasecmp(sql, "WITH", 4) == 0;
}

static bool only_space(const char *p)
{
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
        p++;
    return *p == '\0';
}

static int bind_args(sqlite3_stmt *st, const struct fv_sql *q, char *err, size_t errlen)
{
    int want = sqlite3_bind_parameter_count(st), rc = SQLITE_OK;

    if (want != q->nargs) {
        snprintf(err, errlen, "query has %d placeholders and %d arguments", want, q->nargs);
        return -EINVAL;
    }
    for (int i = 0; i < q->nargs && rc == SQLITE_OK; i++) {
        const struct fv_sql_val *v = &q->args[i];
        if (v->type == FV_SQL_INT)
            rc = sqlite3_bind_int64(st, i + 1, v->i);
        else if (v->type == FV_SQL_REAL)
            rc = sqlite3_bind_double(st, i + 1, v->d);
        else if (v->len > INT_MAX)
            rc = SQLITE_TOOBIG;
        else /* a NULL pointer would bind SQL NULL, which equals nothing */
            rc = sqlite3_bind_text(st, i + 1, v->s ? v->s : "", (int)v->len, SQLITE_STATIC);
    }
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "binding the query's arguments: %s", sqlite3_errstr(rc));
        return sq_errno(rc);
    }
    return 0;
}

/* Prepares q as exactly one SELECT, with its arguments bound. */
static int prepare_query(sqlite3 *db, const struct fv_sql *q, sqlite3_stmt **out, char *err,
                         size_t errlen)
{
    const char *tail = NULL;
    sqlite3_stmt *st = NULL;
    int rc;

    if (q->text.len == 0 || q->text.len > INT_MAX) {
        snprintf(err, errlen, "empty or oversized query");
        return -EINVAL;
    }
    rc = sqlite3_prepare_v2(db, q->text.p, (int)q->text.len, &st, &tail);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "%s", sqlite3_errmsg(db));
        return rc == SQLITE_AUTH ? -EPERM : sq_errno(rc);
    }
    if (st == NULL || (tail && !only_space(tail)) || !sqlite3_stmt_readonly(st) ||
        !starts_as_select(sqlite3_sql(st))) {
        snprintf(err, errlen, "only a single SELECT statement is allowed");
        sqlite3_finalize(st);
        return -EPERM;
    }
    rc = bind_args(st, q, err, errlen);
    if (rc < 0) {
        sqlite3_finalize(st);
        return rc;
    }
    *out = st;
    return 0;
}

static void read_cell(sqlite3_stmt *st, int i, struct fv_sql_val *v)
{
    memset(v, 0, sizeof(*v));
    switch (sqlite3_column_type(st, i)) {
    case SQLITE_INTEGER:
        v->type = FV_SQL_INT;
        v->i = sqlite3_column_int64(st, i);
        break;
    case SQLITE_FLOAT:
        v->type = FV_SQL_REAL;
        v->d = sqlite3_column_double(st, i);
        break;
    case SQLITE_NULL:
        v->type = FV_SQL_TEXT;
        v->s = "";
        break;
    default: /* TEXT, or a BLOB passed on as bytes */
        v->type = FV_SQL_TEXT;
        v->s = (const char *)sqlite3_column_text(st, i);
        v->len = (size_t)sqlite3_column_bytes(st, i);
        if (v->s == NULL)
            v->s = "";
        break;
    }
}

/* Steps st to the end, handing each row to fn. */
static int run_query(sqlite3 *db, sqlite3_stmt *st, fv_sql_row_fn fn, void *arg, char *err,
                     size_t errlen)
{
    int ncols = sqlite3_column_count(st), rc;
    struct fv_sql_val *cells = calloc(ncols > 0 ? (size_t)ncols : 1, sizeof(*cells));

    if (cells == NULL)
        return -ENOMEM;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        for (int i = 0; i < ncols; i++)
            read_cell(st, i, &cells[i]);
        int stop = fn(arg, cells, ncols);
        if (stop != 0) {
            free(cells);
            return stop;
        }
    }
    free(cells);
    if (rc == SQLITE_DONE)
        return 0;
    if ((rc & 0xff) == SQLITE_INTERRUPT)
        snprintf(err, errlen, "query ran longer than %d s", QUERY_TIMEOUT_MS / 1000);
    else
        snprintf(err, errlen, "%s", sqlite3_errmsg(db));
    return sq_errno(rc);
}

static int sq_query(void *impl, const struct fv_sql *q, fv_sql_row_fn fn, void *arg, char *err,
                    size_t errlen)
{
    struct sq *s = impl;
    struct rconn *c = NULL;
    sqlite3_stmt *st = NULL;
    int rc;

    if (errlen > 0)
        err[0] = '\0';
    if (q->err != 0) {
        snprintf(err, errlen, "building the query: %s", fv_strerror(q->err));
        return q->err;
    }
    rc = pool_get(s, &c, err, errlen);
    if (rc < 0)
        return rc;
    c->deadline = fv_clock_mono_ms() + QUERY_TIMEOUT_MS;
    rc = prepare_query(c->db, q, &st, err, errlen);
    if (rc == 0)
        rc = run_query(c->db, st, fn, arg, err, errlen);
    sqlite3_finalize(st);
    pool_put(s, c);
    return rc;
}

/* ---- the store interface ---- */

static int sq_push(void *impl, const void *row, size_t len)
{
    struct sq *s = impl;
    struct fv_flow_row r;
    size_t used;
    void *p;

    if (len > MAX_ROW)
        return -FV_ELIMIT;
    /* A malformed row could never be inserted; refuse it here rather than
     * have the writer retry it forever. */
    if (fv_flow_row_parse(row, len, &r) != (int)len)
        return -EINVAL;
    used = fv_spsc_used(&s->q);
    /* An empty queue takes any row, so a row bigger than the cap still
     * goes through. */
    if (used > 0 && used + len > s->queue_bytes)
        p = NULL;
    else
        p = fv_spsc_reserve(&s->q, len);
    if (p == NULL) {
        atomic_fetch_add_explicit(&s->refused, 1, memory_order_relaxed);
        return -EAGAIN;
    }
    memcpy(p, row, len);
    fv_spsc_commit(&s->q);
    atomic_fetch_add_explicit(&s->received, 1, memory_order_relaxed);
    return 0;
}

static void sq_stats(void *impl, struct fv_store_stats *st)
{
    struct sq *s = impl;
    /* written before received, so that queued never looks negative. */
    uint64_t written = atomic_load(&s->written);
    uint64_t received = atomic_load(&s->received);

    memset(st, 0, sizeof(*st));
    st->rows_received = received;
    st->rows_written = written;
    st->rows_queued = received - written;
    st->rows_refused = atomic_load(&s->refused);
    st->rows_deleted = atomic_load(&s->deleted);
    st->queue_bytes = fv_spsc_used(&s->q) + atomic_load(&s->pend_bytes);
    st->batches_written = atomic_load(&s->batches);
    st->batches_failed = atomic_load(&s->failed);
    st->up = atomic_load(&s->up);
}

static void sq_free(struct sq *s)
{
    for (int i = 0; i < s->nidle; i++)
        rconn_free(s->idle[i]);
    s->nidle = 0;
    close_writer(s);
    fv_sbuf_fini(&s->pend);
    fv_spsc_fini(&s->q);
    pthread_mutex_destroy(&s->pool_lock);
    free(s->path);
    free(s);
}

static void sq_stop(void *impl, uint64_t flush_ms)
{
    struct sq *s = impl;

    /* Readers first, so the writer's connection is the last one and its
     * close leaves no WAL behind. */
    pthread_mutex_lock(&s->pool_lock);
    for (int i = 0; i < s->nidle; i++)
        rconn_free(s->idle[i]);
    s->nidle = 0;
    pthread_mutex_unlock(&s->pool_lock);
    s->stop_deadline = fv_clock_mono_ms() + flush_ms;
    atomic_store(&s->stopping, true);
    /* No push() runs any more, so this thread may wake the writer. */
    fv_spsc_commit(&s->q);
    pthread_join(s->thread, NULL);
    sq_free(s);
}

static const struct fv_store_ops sq_ops = {
    .name = "sqlite",
    .dialect = FV_SQL_SQLITE,
    .push = sq_push,
    .query = sq_query,
    .stats = sq_stats,
    .stop = sq_stop,
};

static struct sq *sq_alloc(const struct fv_sqlite_cfg *cfg)
{
    struct sq *s = calloc(1, sizeof(*s));

    if (s == NULL)
        return NULL;
    pthread_mutex_init(&s->pool_lock, NULL);
    s->path = strdup(cfg->path);
    s->commit_ms = cfg->commit_ms ? cfg->commit_ms : 1000;
    s->batch_rows = cfg->batch_rows ? cfg->batch_rows : 50000;
    s->queue_bytes = cfg->queue_bytes ? cfg->queue_bytes : 64u << 20;
    s->retention_s = cfg->retention_s;
    s->max_bytes = cfg->max_bytes;
    s->backoff_ms = BACKOFF_MIN_MS;
    s->rl.interval_ms = 10000;
    atomic_store(&s->up, true);
    fv_sbuf_init(&s->pend, SIZE_MAX / 2);
    if (s->path == NULL ||
        fv_spsc_init(&s->q, s->queue_bytes > MIN_QUEUE_CAP ? s->queue_bytes : MIN_QUEUE_CAP) < 0) {
        sq_free(s);
        return NULL;
    }
    return s;
}

int fv_sqlite_store_new(const struct fv_sqlite_cfg *cfg, struct fv_store *out)
{
    struct sq *s;
    int rc;

    if (cfg->path == NULL || cfg->path[0] == '\0') {
        FV_LOG_ERROR("sqlite: no database path");
        return -FV_ECONFIG;
    }
    s = sq_alloc(cfg);
    if (s == NULL)
        return -ENOMEM;
    rc = open_writer(s);
    if (rc == 0) {
        rc = -pthread_create(&s->thread, NULL, writer_run, s);
        if (rc == 0)
            pthread_setname_np(s->thread, "fv-sqlite"); /* for top -H and perf */
        if (rc < 0)
            FV_LOG_ERROR("sqlite path=%s: cannot start the writer: %s", s->path, fv_strerror(rc));
    }
    if (rc < 0) {
        sq_free(s);
        return rc;
    }
    FV_LOG_INFO("sqlite path=%s: open (schema version %d, retention %llus, max %llu bytes)",
                s->path, SCHEMA_VERSION, (unsigned long long)s->retention_s,
                (unsigned long long)s->max_bytes);
    out->ops = &sq_ops;
    out->impl = s;
    return 0;
}
