/*
 * store.h - where exported aggregated records are kept: ClickHouse (over
 * its HTTP interface) and the embedded SQLite store.  SPEC section 5.
 *
 * A store is a handle with an operations table.  The aggregator's output
 * thread hands every exported record, as one RowBinary row (store/row.h),
 * to every enabled store with push(); each store writes on threads of its
 * own.  The HTTP query endpoints (store/query.c) run SQL on the preferred
 * store (ClickHouse when both are enabled) with query().
 *
 * Nothing is lost on the way in:
 *   - push() never drops.  When a store cannot take the row now (its
 *     memory queue and, for ClickHouse, its disk spool are full) it returns
 *     -EAGAIN; the output thread keeps the record and retries, the shard
 *     queues fill and the flow tables keep their flows (backpressure, as
 *     for the other outputs).  Every such refusal is counted.
 *   - ClickHouse: rows are gathered into batches (commitInterval or
 *     batchRows, whichever first).  A batch that cannot be inserted (server
 *     down, slow, or answering an error) stays queued and is retried with
 *     backoff; when the memory queue is over its cap, sealed batches spill
 *     to files in the spool directory, which are sent (oldest first) once
 *     the server is back, and which survive a restart of the aggregator.
 *     A batch is at most one ClickHouse insert block, so an insert is all
 *     or nothing; only a connection lost after the server accepted the
 *     whole body can make a retry insert twice (counted as ambiguous).
 *   - The aggregator starts whether or not ClickHouse is up: the schema is
 *     created (or migrated) when the server is first reached.
 *
 * Thread rules: push() is called from one thread (the output thread);
 * query() and stats() from any thread; stop() once, last.
 */
#ifndef FV_STORE_STORE_H
#define FV_STORE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "store/sql.h"

/* Counters of one store, for /metrics.  Rows are counted once each. */
struct fv_store_stats {
    uint64_t rows_received;      /* rows taken by push() */
    uint64_t rows_written;       /* rows the database confirmed */
    uint64_t rows_queued;        /* rows taken but not yet confirmed (memory + disk) */
    uint64_t rows_refused;       /* push() calls answered -EAGAIN (backpressure) */
    uint64_t rows_deleted;       /* rows removed by retention or the size cap (SQLite) */
    uint64_t queue_bytes;        /* bytes in the memory queue */
    uint64_t spool_bytes;        /* bytes in the disk spool (ClickHouse) */
    uint64_t rows_spilled;       /* rows ever written to the disk spool */
    uint64_t batches_written;    /* inserts/transactions that succeeded */
    uint64_t batches_failed;     /* attempts that failed (each retry counts) */
    uint64_t batches_ambiguous;  /* failures after the whole body was sent */
    uint64_t partitions_dropped; /* by retention or the size cap (ClickHouse) */
    bool up;                     /* the last attempt succeeded */
};

struct fv_store_ops {
    const char *name; /* "clickhouse" or "sqlite" */
    enum fv_sql_dialect dialect;
    /* Takes one RowBinary row (copied).  0, or -EAGAIN when full. */
    int (*push)(void *impl, const void *row, size_t len);
    /* Runs q; fn is called for every result row.  0, fn's non-zero
     * return, or a negative code with a message in err. */
    int (*query)(void *impl, const struct fv_sql *q, fv_sql_row_fn fn, void *arg, char *err,
                 size_t errlen);
    void (*stats)(void *impl, struct fv_store_stats *st);
    /* Writes what it still holds (ClickHouse: for up to flush_ms, then the
     * rest goes to the spool), stops its threads and frees everything. */
    void (*stop)(void *impl, uint64_t flush_ms);
};

struct fv_store {
    const struct fv_store_ops *ops;
    void *impl;
};

/* ---- ClickHouse ---- */

struct fv_ch_cfg {
    const char *url;        /* http[s]://host:port; tcp://host:9000 is mapped to :8123 */
    const char *database;   /* database of the tables; created if missing */
    const char *user;       /* CH_USERNAME, or NULL */
    const char *password;   /* CH_PASSWORD, or NULL */
    const char *ca_file;    /* CA for https, or NULL for the system's */
    bool insecure;          /* https without verification (tests only) */
    bool compress;          /* gzip request bodies */
    bool debug;             /* log every statement and response */
    uint64_t commit_ms;     /* commitInterval (>= 1000) */
    uint32_t batch_rows;    /* a batch is sent when it has this many rows */
    uint64_t queue_bytes;   /* memory queue cap */
    const char *spool_dir;  /* disk spool directory; NULL or "" = none */
    uint64_t spool_bytes;   /* disk spool cap */
    uint64_t retention_s;   /* drop partitions older than this; 0 = keep */
    uint64_t max_bytes;     /* drop oldest partitions above this size; 0 = no cap */
    const char *cluster;    /* write through a Distributed table over this cluster, or NULL */
    const char *shard_urls; /* with cluster: comma list of every shard's URL for the schema */
};

/* Starts the sink: threads, the spool (replaying files left by an earlier
 * run).  It does not need the server to be up.  0 or a negative code (the
 * reason is logged). */
int fv_ch_store_new(const struct fv_ch_cfg *cfg, struct fv_store *out);

/* The schema as SQL statements, for `--print-schema` and docs: the
 * versioned migrations the sink applies, one statement per line group. */
void fv_ch_schema_print(const struct fv_ch_cfg *cfg, FILE *out);

/* ---- SQLite ---- */

struct fv_sqlite_cfg {
    const char *path;     /* database file; its directory is created */
    uint64_t commit_ms;   /* a transaction at least this often */
    uint32_t batch_rows;  /* ...or when it has this many rows */
    uint64_t queue_bytes; /* memory queue cap */
    uint64_t retention_s; /* delete rows older than this; 0 = keep */
    uint64_t max_bytes;   /* delete oldest rows above this file size; 0 = no cap */
};

int fv_sqlite_store_new(const struct fv_sqlite_cfg *cfg, struct fv_store *out);

#endif
