/* sbuf.c - see sbuf.h. */
#include "base/sbuf.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"

void fv_sbuf_init(struct fv_sbuf *b, size_t max)
{
    memset(b, 0, sizeof(*b));
    b->max = max;
}

void fv_sbuf_fini(struct fv_sbuf *b)
{
    free(b->p);
    memset(b, 0, sizeof(*b));
}

void fv_sbuf_reset(struct fv_sbuf *b)
{
    b->len = 0;
    b->err = 0;
    if (b->p)
        b->p[0] = '\0';
}

int fv_sbuf_reserve(struct fv_sbuf *b, size_t n)
{
    size_t need = b->len + n + 1;
    size_t cap;
    char *p;

    /* The limit first: room left over from growing does not raise it. */
    if (b->len + n > b->max) {
        b->err = b->err ? b->err : -FV_ELIMIT;
        return -FV_ELIMIT;
    }
    if (need <= b->cap)
        return 0;
    cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap *= 2;
    if (cap - 1 > b->max) /* no allocation past what max can use */
        cap = b->max + 1;
    p = realloc(b->p, cap);
    if (p == NULL) {
        b->err = b->err ? b->err : -ENOMEM;
        return -ENOMEM;
    }
    b->p = p;
    b->cap = cap;
    return 0;
}

int fv_sbuf_append_slow(struct fv_sbuf *b, const void *p, size_t n)
{
    int rc = fv_sbuf_reserve(b, n);
    if (rc < 0)
        return rc;
    memcpy(b->p + b->len, p, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

int fv_sbuf_puts(struct fv_sbuf *b, const char *s)
{
    return fv_sbuf_append(b, s, strlen(s));
}

int fv_sbuf_putc(struct fv_sbuf *b, char c)
{
    return fv_sbuf_append(b, &c, 1);
}

int fv_sbuf_printf(struct fv_sbuf *b, const char *fmt, ...)
{
    va_list ap;
    int n, rc;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -EINVAL;
    rc = fv_sbuf_reserve(b, (size_t)n);
    if (rc < 0)
        return rc;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

int fv_sbuf_put_u64(struct fv_sbuf *b, uint64_t v)
{
    static const char pairs[] = "00010203040506070809101112131415161718192021222324"
                                "25262728293031323334353637383940414243444546474849"
                                "50515253545556575859606162636465666768697071727374"
                                "75767778798081828384858687888990919293949596979899";
    char tmp[20];
    int i = 20;

    /* Two digits per division: counters are most of a record's text. */
    while (v >= 100) {
        unsigned r = (unsigned)(v % 100);
        v /= 100;
        i -= 2;
        memcpy(tmp + i, pairs + 2 * r, 2);
    }
    if (v >= 10) {
        i -= 2;
        memcpy(tmp + i, pairs + 2 * v, 2);
    } else {
        tmp[--i] = (char)('0' + v);
    }
    return fv_sbuf_append(b, tmp + i, (size_t)(20 - i));
}

int fv_sbuf_put_i64(struct fv_sbuf *b, int64_t v)
{
    if (v < 0) {
        int rc = fv_sbuf_putc(b, '-');
        if (rc < 0)
            return rc;
        return fv_sbuf_put_u64(b, (uint64_t)0 - (uint64_t)v);
    }
    return fv_sbuf_put_u64(b, (uint64_t)v);
}

int fv_sbuf_put_hex(struct fv_sbuf *b, const uint8_t *p, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    int rc = fv_sbuf_reserve(b, n * 2);
    char *o;

    if (rc < 0)
        return rc;
    o = b->p + b->len;
    for (size_t i = 0; i < n; i++) {
        *o++ = digits[p[i] >> 4];
        *o++ = digits[p[i] & 15];
    }
    b->len += n * 2;
    b->p[b->len] = '\0';
    return 0;
}

/* Length of the valid UTF-8 sequence at s (n bytes left), 0 if invalid. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    size_t len;
    uint32_t cp;

    if (s[0] < 0x80)
        return 1;
    if ((s[0] & 0xE0) == 0xC0) {
        len = 2;
        cp = s[0] & 0x1F;
    } else if ((s[0] & 0xF0) == 0xE0) {
        len = 3;
        cp = s[0] & 0x0F;
    } else if ((s[0] & 0xF8) == 0xF0) {
        len = 4;
        cp = s[0] & 0x07;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3F);
    }
    /* Reject overlong forms, surrogates and values past U+10FFFF. */
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF)
        return 0;
    return len;
}

/* Bytes the JSON form of the character at s takes; *in gets the bytes
 * of s it consumes. */
static size_t json_char_len(const unsigned char *s, size_t n, size_t *in)
{
    size_t len;

    *in = 1;
    if (*s == '"' || *s == '\\')
        return 2;
    if (*s < 0x20)
        return 6;
    if (*s < 0x80)
        return 1;
    len = utf8_len(s, n);
    if (len == 0)
        return 6; /* \ufffd */
    *in = len;
    return len;
}

int fv_sbuf_put_json_str(struct fv_sbuf *b, const char *str, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s = (const unsigned char *)str;
    size_t out = 2, in;
    char *o;
    int rc;

    /* Measure, then reserve once: the limit applies to what is written,
     * not to the worst case of 6 bytes for every byte. */
    for (size_t i = 0; i < n; i += in)
        out += json_char_len(s + i, n - i, &in);
    rc = fv_sbuf_reserve(b, out);
    if (rc < 0)
        return rc;
    o = b->p + b->len;
    *o++ = '"';
    for (size_t i = 0; i < n;) {
        unsigned char c = s[i];
        if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
            *o++ = (char)c;
            i++;
            continue;
        }
        if (c == '"' || c == '\\') {
            *o++ = '\\';
            *o++ = (char)c;
            i++;
            continue;
        }
        if (c < 0x20) {
            memcpy(o, "\\u00", 4);
            o[4] = hex[c >> 4];
            o[5] = hex[c & 15];
            o += 6;
            i++;
            continue;
        }
        size_t len = utf8_len(s + i, n - i);
        if (len == 0) {
            memcpy(o, "\\ufffd", 6);
            o += 6;
            i++;
        } else {
            memcpy(o, s + i, len);
            o += len;
            i += len;
        }
    }
    *o++ = '"';
    b->len = (size_t)(o - b->p);
    b->p[b->len] = '\0';
    return 0;
}
