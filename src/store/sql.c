/* sql.c - SQL text with typed placeholders, and ClickHouse literals (sql.h). */
#include "store/sql.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "base/err.h"

#define FV_SQL_MAX_TEXT (1u << 20)

void fv_sql_init(struct fv_sql *q)
{
    memset(q, 0, sizeof(*q));
    fv_sbuf_init(&q->text, FV_SQL_MAX_TEXT);
}

void fv_sql_fini(struct fv_sql *q)
{
    fv_sbuf_fini(&q->text);
}

void fv_sql_reset(struct fv_sql *q)
{
    fv_sbuf_reset(&q->text);
    q->nargs = 0;
    q->err = 0;
}

static void note(struct fv_sql *q, int rc)
{
    if (rc < 0 && q->err == 0)
        q->err = rc;
}

void fv_sql_add(struct fv_sql *q, const char *text)
{
    note(q, fv_sbuf_puts(&q->text, text));
}

void fv_sql_addf(struct fv_sql *q, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(buf)) {
        note(q, -FV_ELIMIT);
        return;
    }
    fv_sql_add(q, buf);
}

static struct fv_sql_val *next_arg(struct fv_sql *q)
{
    if (q->nargs >= FV_SQL_MAX_ARGS) {
        note(q, -FV_ELIMIT);
        return NULL;
    }
    note(q, fv_sbuf_putc(&q->text, '?'));
    return &q->args[q->nargs++];
}

void fv_sql_arg_int(struct fv_sql *q, int64_t v)
{
    struct fv_sql_val *a = next_arg(q);
    if (a)
        *a = (struct fv_sql_val){.type = FV_SQL_INT, .i = v};
}

void fv_sql_arg_text(struct fv_sql *q, const char *s, size_t len)
{
    struct fv_sql_val *a = next_arg(q);
    if (a)
        *a = (struct fv_sql_val){.type = FV_SQL_TEXT, .s = s, .len = len};
}

int fv_sql_quote_ch(struct fv_sbuf *out, const char *s, size_t len)
{
    int rc = fv_sbuf_putc(out, '\'');

    for (size_t i = 0; i < len && rc == 0; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\\' || c == '\'') {
            char esc[2] = {'\\', (char)c};
            rc = fv_sbuf_append(out, esc, 2);
        } else if (c < 0x20 || c == 0x7f) {
            rc = fv_sbuf_printf(out, "\\x%02X", c);
        } else {
            rc = fv_sbuf_putc(out, (char)c);
        }
    }
    if (rc == 0)
        rc = fv_sbuf_putc(out, '\'');
    return rc;
}

int fv_sql_render_ch(const struct fv_sql *q, struct fv_sbuf *out)
{
    int arg = 0, rc = q->err;

    for (size_t i = 0; i < q->text.len && rc == 0; i++) {
        char c = q->text.p[i];
        if (c != '?') {
            rc = fv_sbuf_putc(out, c);
            continue;
        }
        if (arg >= q->nargs)
            return -FV_ELIMIT;
        const struct fv_sql_val *v = &q->args[arg++];
        switch (v->type) {
        case FV_SQL_INT:
            rc = fv_sbuf_put_i64(out, v->i);
            break;
        case FV_SQL_REAL:
            rc = fv_sbuf_printf(out, "%.17g", v->d);
            break;
        case FV_SQL_TEXT:
            rc = fv_sql_quote_ch(out, v->s, v->len);
            break;
        }
    }
    if (rc == 0 && arg != q->nargs)
        rc = -FV_ELIMIT;
    return rc;
}
