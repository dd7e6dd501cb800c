/*
 * sql.h - a query as SQL text with `?` placeholders and typed arguments,
 * so that no value from a request is ever spliced into SQL unescaped.
 *
 * The query layer (store/query.c) builds a struct fv_sql for one dialect;
 * a store runs it:
 *   - SQLite binds the arguments to the placeholders (sqlite3_bind_*);
 *   - ClickHouse 18.16 has no query parameters over HTTP, so
 *     fv_sql_render_ch() replaces each `?` with a literal: integers in
 *     decimal, text single-quoted with `\` and `'` escaped (and control
 *     bytes as \xHH).  The builder never writes `?` or quotes of its own
 *     outside those placeholders, which keeps the replacement exact.
 *
 * Results come back one row at a time through fv_sql_row_fn, as cells of
 * type INT, REAL or TEXT (the builder selects DateTime columns as
 * integers: toUInt32(x) in ClickHouse, plain in SQLite where they are
 * stored as INTEGER).
 *
 *     struct fv_sql q;
 *     fv_sql_init(&q);
 *     fv_sql_add(&q, "SELECT count() FROM flows WHERE sourcePodNamespace = ?");
 *     fv_sql_arg_text(&q, ns, strlen(ns));
 *     rc = store->ops->query(store->impl, &q, on_row, arg, err, sizeof(err));
 *     fv_sql_fini(&q);
 *
 * Thread rules: one struct fv_sql per thread; text arguments are borrowed
 * and must outlive the query.
 */
#ifndef FV_STORE_SQL_H
#define FV_STORE_SQL_H

#include <stddef.h>
#include <stdint.h>

#include "base/sbuf.h"

enum fv_sql_dialect { FV_SQL_SQLITE, FV_SQL_CLICKHOUSE };

enum fv_sql_type { FV_SQL_INT, FV_SQL_REAL, FV_SQL_TEXT };

struct fv_sql_val {
    enum fv_sql_type type;
    int64_t i;     /* INT */
    double d;      /* REAL */
    const char *s; /* TEXT, not NUL-terminated */
    size_t len;    /* TEXT length */
};

/* The /series "other" query binds every top group's key columns. */
#define FV_SQL_MAX_ARGS 512

struct fv_sql {
    struct fv_sbuf text; /* the SQL, with `?` placeholders */
    struct fv_sql_val args[FV_SQL_MAX_ARGS];
    int nargs;
    int err; /* first error of an add/arg call (sticky); 0 when none */
};

void fv_sql_init(struct fv_sql *q);
void fv_sql_fini(struct fv_sql *q);
void fv_sql_reset(struct fv_sql *q);

/* Appends SQL text (which must not contain quotes or `?`). */
void fv_sql_add(struct fv_sql *q, const char *text);
void fv_sql_addf(struct fv_sql *q, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Appends a `?` and its argument. */
void fv_sql_arg_int(struct fv_sql *q, int64_t v);
void fv_sql_arg_text(struct fv_sql *q, const char *s, size_t len);

/* Writes the SQL with every placeholder replaced by its escaped literal
 * (ClickHouse).  0, or -FV_ELIMIT / the sbuf's error. */
int fv_sql_render_ch(const struct fv_sql *q, struct fv_sbuf *out);

/* Appends s as a ClickHouse string literal: '...' with \\, \' and control
 * bytes escaped. */
int fv_sql_quote_ch(struct fv_sbuf *out, const char *s, size_t len);

/* Called once per result row; a non-zero return stops the query and is
 * returned by the store's query(). */
typedef int (*fv_sql_row_fn)(void *arg, const struct fv_sql_val *cells, int ncells);

#endif
