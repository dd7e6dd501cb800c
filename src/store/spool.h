/*
 * spool.h - a bounded queue of sealed batches on disk, oldest first.
 *
 * The ClickHouse sink spills batches here when its memory queue is over
 * its cap (the server is down or slower than the input) and at shutdown,
 * and sends them back, oldest first, when the server answers again.  The
 * files outlive the process: a new spool on the same directory finds the
 * batches an earlier run left.
 *
 * One file per batch, named by a sequence number (20 decimal digits, so
 * that name order is age order), with a 32-byte header (magic, rows,
 * flags, body length, CRC-32 of the body) and the body.  A batch is
 * written to "<seq>.tmp", fsync'ed, renamed to "<seq>.batch" and the
 * directory fsync'ed, so a crash leaves either the whole batch or a
 * temporary file, which the next open deletes.  A file whose header,
 * length or CRC is wrong is deleted when found and counted (discarded):
 * the spool never hands out bytes that were not written whole.
 *
 * The cap counts files with their headers; a put that would go over it
 * fails with -EAGAIN and changes nothing.
 *
 *     struct fv_spool *sp;
 *     fv_spool_new("/var/lib/flowvis/clickhouse-spool", 4ull << 30, &sp);
 *     fv_spool_put(sp, body, len, rows, 0);          // -EAGAIN when full
 *     struct fv_spool_batch b;
 *     fv_spool_batch_init(&b, 1 << 30);
 *     while (fv_spool_peek(sp, &b) == 0) {           // -FV_EEND when empty
 *         if (send(b.body.p, b.body.len) == 0)
 *             fv_spool_ack(sp, b.id);
 *     }
 *     fv_spool_batch_fini(&b);
 *     fv_spool_free(sp);
 *
 * Thread rules: every function may be called from any thread (one mutex
 * inside, not held during file I/O).  One consumer at a time may
 * peek/ack; puts may come from other threads meanwhile.
 */
#ifndef FV_STORE_SPOOL_H
#define FV_STORE_SPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/sbuf.h"

/* Bytes of the header in front of every batch's body. */
#define FV_SPOOL_HEADER 32

/* Flags stored with a batch, for the caller (the spool does not look). */
#define FV_SPOOL_GZIP 1u /* the body is gzip-compressed */

struct fv_spool;

/* One batch read back by fv_spool_peek(). */
struct fv_spool_batch {
    uint64_t id;         /* sequence number, for fv_spool_ack() */
    uint32_t rows;       /* rows in the body, as given to put */
    uint32_t flags;      /* flags, as given to put */
    struct fv_sbuf body; /* the body; its max bounds what peek reads */
};

struct fv_spool_stats {
    uint64_t files;     /* batches on disk now */
    uint64_t bytes;     /* their size, headers included */
    uint64_t rows;      /* rows in them */
    uint64_t put;       /* batches ever put by this process */
    uint64_t rows_put;  /* rows ever put by this process */
    uint64_t discarded; /* temporary or corrupt files deleted */
};

/* Opens (creating it and its parents, mode 0700) the spool directory,
 * deletes temporary files and indexes the batches found.  max_bytes caps
 * the spool.  0 or -errno (the reason is logged). */
int fv_spool_new(const char *dir, uint64_t max_bytes, struct fv_spool **out);

/* Closes the spool; the files stay.  NULL is a no-op. */
void fv_spool_free(struct fv_spool *sp);

/* True when a body of len bytes fits under the cap now. */
bool fv_spool_fits(struct fv_spool *sp, size_t len);

/* Writes one batch durably (fsync) as the newest.  0, -EAGAIN when it
 * would exceed the cap, or -errno on I/O failure (nothing is left). */
int fv_spool_put(struct fv_spool *sp, const void *body, size_t len, uint32_t rows, uint32_t flags);

/* Reads the oldest batch into b (replacing b's content).  0, -FV_EEND
 * when the spool is empty, -FV_ELIMIT when the body is longer than
 * b->body.max (the batch stays), or -errno.  Corrupt files on the way are
 * deleted, counted and skipped. */
int fv_spool_peek(struct fv_spool *sp, struct fv_spool_batch *b);

/* Deletes the batch id (as read by peek).  0 or -errno; -ENOENT when id
 * is not in the spool. */
int fv_spool_ack(struct fv_spool *sp, uint64_t id);

void fv_spool_stats(struct fv_spool *sp, struct fv_spool_stats *st);

void fv_spool_batch_init(struct fv_spool_batch *b, size_t max_body);
void fv_spool_batch_fini(struct fv_spool_batch *b);

#endif
