/*
 * chhttp.h - ClickHouse's HTTP interface through libcurl: statements,
 * RowBinary inserts (gzip bodies), and TabSeparatedWithNamesAndTypes
 * results turned into typed cells.
 *
 * Works with ClickHouse 18.16 (Debian's) and current releases: a
 * statement is POSTed as the body; an insert puts its INSERT ... FORMAT
 * RowBinary in the `query` URL parameter and the rows in the body, which
 * the server decompresses when it carries Content-Encoding: gzip.
 * Credentials go as HTTP basic authentication, which both accept.
 *
 * A struct fv_chhttp is one libcurl handle and its response buffer; it
 * belongs to one thread.  Every request opens a connection of its own
 * (set_common() in chhttp.c says why).  A transfer
 * gives up when the connection cannot be made in 5 s, when nothing moves
 * for 60 s, after timeout_ms when set, or as soon as the monotonic clock
 * reaches *abort_at_ms (the sink's stop deadline).
 *
 *     struct fv_chhttp h;
 *     struct fv_chhttp_res res;
 *     fv_chhttp_init(&h, &conn, 1 << 20);
 *     if (fv_chhttp_exec(&h, "http://127.0.0.1:8123", "SELECT 1", &res) < 0)
 *         log("%s", res.error);
 *     fv_chhttp_fini(&h);
 *
 * Thread rules: one struct fv_chhttp per thread; curl_global_init must
 * have run (fv_chhttp_global_init).
 */
#ifndef FV_STORE_CHHTTP_H
#define FV_STORE_CHHTTP_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/sbuf.h"
#include "store/sql.h"

/* How to reach the server; borrowed for the handle's lifetime. */
struct fv_chhttp_conn {
    const char *user;     /* basic auth user, or NULL */
    const char *password; /* its password, or NULL */
    const char *ca_file;  /* CA bundle for https, or NULL for the system's */
    bool insecure;        /* https without verification */
    bool debug;           /* log every statement at info (else at debug) */
};

/* What came back from one request. */
struct fv_chhttp_res {
    long status;     /* HTTP status; 0 when the server did not answer */
    int code;        /* ClickHouse's error code ("Code: N"), 0 when none */
    bool sent_all;   /* the whole request body was sent (a failure is ambiguous) */
    char error[256]; /* the server's message (first line) or libcurl's */
};

struct fv_chhttp {
    void *curl;                          /* CURL *, owned */
    const struct fv_chhttp_conn *conn;   /* borrowed */
    struct fv_sbuf resp;                 /* the last response's body */
    const _Atomic uint64_t *abort_at_ms; /* abort transfers at this monotonic time; NULL = never */
    uint64_t timeout_ms;                 /* whole-transfer limit; 0 = none */
    char curl_err[256];                  /* libcurl's error buffer */
};

/* curl_global_init, once per process (thread-safe). */
void fv_chhttp_global_init(void);

/* max_resp bounds the response body kept (a bigger one fails).  0 or
 * -ENOMEM. */
int fv_chhttp_init(struct fv_chhttp *h, const struct fv_chhttp_conn *conn, size_t max_resp);
void fv_chhttp_fini(struct fv_chhttp *h);

/* POSTs sql to url; the answer's body is in h->resp.  0 on HTTP 200;
 * -EIO when the server answered an error (res->status, code, error);
 * -ECONNREFUSED, -ETIMEDOUT, -ECANCELED (aborted) or -EIO when it did not
 * answer. */
int fv_chhttp_exec(struct fv_chhttp *h, const char *url, const char *sql, size_t sql_len,
                   struct fv_chhttp_res *res);

/* POSTs body to url?query=<sql> (an INSERT ... FORMAT ...), with
 * Content-Encoding: gzip when gzip.  Returns as fv_chhttp_exec. */
int fv_chhttp_insert(struct fv_chhttp *h, const char *url, const char *sql, const void *body,
                     size_t len, bool gzip, struct fv_chhttp_res *res);

/* Replaces out's content with the gzip (RFC 1952) of in.  0, -FV_ELIMIT,
 * -ENOMEM or -EIO. */
int fv_chhttp_gzip(const void *in, size_t len, int level, struct fv_sbuf *out);

/* Parses a TabSeparatedWithNamesAndTypes body and calls fn per row with
 * its cells: (U)Int* as INT, Float* and Decimal* as REAL, anything else
 * as TEXT (unescaped); Nullable(...) is unwrapped and \N is 0 or "".
 * Cells and their text live until fn returns.  0, fn's non-zero return,
 * or -FV_ETRUNC / -ENOMEM with a message in err. */
int fv_chhttp_tsv_rows(const char *p, size_t len, fv_sql_row_fn fn, void *arg, char *err,
                       size_t errlen);

#endif
