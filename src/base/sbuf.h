/*
 * sbuf.h - a growable byte/string buffer with a maximum size.
 *
 * The maximum is the point: anything whose size is driven by input (a
 * record formatted as JSON, a line read from a peer) grows only up to a
 * bound the caller chose, and an append past it fails with -FV_ELIMIT
 * instead of exhausting memory.  The content is always NUL-terminated.
 *
 *     struct fv_sbuf b;
 *     fv_sbuf_init(&b, 1 << 20);
 *     fv_sbuf_append(&b, "{", 1);
 *     ...
 *     fwrite(b.p, 1, b.len, stdout);
 *     fv_sbuf_fini(&b);
 */
#ifndef FV_BASE_SBUF_H
#define FV_BASE_SBUF_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct fv_sbuf {
    char *p;    /* content, NUL-terminated; owned; NULL until first append */
    size_t len; /* bytes of content */
    size_t cap; /* allocated bytes */
    size_t max; /* largest len allowed */
    int err;    /* first error of an append since the last reset, or 0 */
};

void fv_sbuf_init(struct fv_sbuf *b, size_t max);
void fv_sbuf_fini(struct fv_sbuf *b);
/* Empties the content and clears err; keeps the allocation. */
void fv_sbuf_reset(struct fv_sbuf *b);
/* Ensures room for n more bytes (+ NUL).  0, -FV_ELIMIT or -ENOMEM. */
int fv_sbuf_reserve(struct fv_sbuf *b, size_t n);
int fv_sbuf_append_slow(struct fv_sbuf *b, const void *p, size_t n);

/* Inline when the bytes fit the allocation: formatting appends a few
 * bytes at a time, and a call per append was a third of the JSON cost. */
static inline int fv_sbuf_append(struct fv_sbuf *b, const void *p, size_t n)
{
    if (b->len + n < b->cap && b->len + n <= b->max) {
        memcpy(b->p + b->len, p, n);
        b->len += n;
        b->p[b->len] = '\0';
        return 0;
    }
    return fv_sbuf_append_slow(b, p, n);
}
int fv_sbuf_puts(struct fv_sbuf *b, const char *s);
int fv_sbuf_putc(struct fv_sbuf *b, char c);
int fv_sbuf_printf(struct fv_sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int fv_sbuf_put_u64(struct fv_sbuf *b, uint64_t v);
int fv_sbuf_put_i64(struct fv_sbuf *b, int64_t v);
/* Appends n bytes as lowercase hex. */
int fv_sbuf_put_hex(struct fv_sbuf *b, const uint8_t *p, size_t n);
/* Appends a JSON string literal (with quotes); invalid UTF-8 becomes U+FFFD. */
int fv_sbuf_put_json_str(struct fv_sbuf *b, const char *s, size_t n);

#endif
