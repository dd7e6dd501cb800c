/* fmt.c - see fmt.h. */
#include "ipfix/fmt.h"

#include <arpa/inet.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "base/bytes.h"

int fv_ipfix_fmt_name(struct fv_sbuf *b, const struct fv_ipfix_field *f)
{
    if (f->ie != NULL)
        return fv_sbuf_append(b, f->ie->name, f->ie->name_len);
    return fv_sbuf_printf(b, "ie%u_%u", f->pen, f->id);
}

/* Seconds from 1900-01-01 (the NTP era 0 epoch) to 1970-01-01. */
#define NTP_UNIX_OFFSET 2208988800

/* An NTP timestamp (RFC 7011 section 6.1.9: 32 bits of seconds since
 * 1900, 32 bits of binary fraction) in units of 1/per_s s since 1970. */
static int64_t ntp_to_unix(uint64_t ntp, uint32_t per_s)
{
    int64_t s = (int64_t)(ntp >> 32) - NTP_UNIX_OFFSET;
    return s * per_s + (int64_t)(((ntp & 0xffffffffu) * per_s) >> 32);
}

static int64_t sign_extend(uint64_t v, uint16_t len)
{
    unsigned shift = 64u - 8u * len;
    return (int64_t)(v << shift) >> shift;
}

/* Dotted quad by hand: inet_ntop goes through the printf machinery, which
 * was a fifth of the collector's time. */
static int put_ipv4(struct fv_sbuf *b, const uint8_t *a)
{
    char tmp[16], *o = tmp;

    for (int i = 0; i < 4; i++) {
        unsigned x = a[i];
        if (x >= 100)
            *o++ = (char)('0' + x / 100);
        if (x >= 10)
            *o++ = (char)('0' + x / 10 % 10);
        *o++ = (char)('0' + x % 10);
        *o++ = '.';
    }
    return fv_sbuf_append(b, tmp, (size_t)(o - tmp - 1));
}

/* Writes the value without JSON quoting; *quote tells whether a JSON
 * rendering must quote it (and escape it, for strings). */
static int put_value(struct fv_sbuf *b, const struct fv_ipfix_field *f,
                     const struct fv_ipfix_value *v, int *quote)
{
    char tmp[INET6_ADDRSTRLEN + 8];
    int type = f->ie ? f->ie->type : FV_IE_OCTETS;

    *quote = 1;
    switch (type) {
    case FV_IE_U8:
    case FV_IE_U16:
    case FV_IE_U32:
    case FV_IE_U64:
    case FV_IE_DT_S:
    case FV_IE_DT_MS:
        if (v->len < 1 || v->len > 8)
            break;
        *quote = 0;
        return fv_sbuf_put_u64(b, fv_ipfix_value_uint(v));
    case FV_IE_DT_US:
    case FV_IE_DT_NS:
        if (v->len != 8)
            break;
        *quote = 0;
        return fv_sbuf_put_i64(
            b, ntp_to_unix(fv_load_be64(v->p), type == FV_IE_DT_US ? 1000000u : 1000000000u));
    case FV_IE_I8:
    case FV_IE_I16:
    case FV_IE_I32:
    case FV_IE_I64:
        if (v->len < 1 || v->len > 8)
            break;
        *quote = 0;
        return fv_sbuf_put_i64(b, sign_extend(fv_ipfix_value_uint(v), v->len));
    case FV_IE_F32:
    case FV_IE_F64:
        if (v->len == 4) {
            uint32_t u = fv_load_be32(v->p);
            float x;
            memcpy(&x, &u, 4);
            /* JSON has no NaN or infinity: those become strings. */
            *quote = isfinite(x) ? 0 : 1;
            return fv_sbuf_printf(b, "%.9g", (double)x);
        }
        if (v->len == 8) {
            uint64_t u = fv_load_be64(v->p);
            double x;
            memcpy(&x, &u, 8);
            *quote = isfinite(x) ? 0 : 1;
            return fv_sbuf_printf(b, "%.17g", x);
        }
        break;
    case FV_IE_BOOL:
        /* RFC 7011 6.1.5: 1 is true, 2 is false. */
        if (v->len == 1 && (v->p[0] == 1 || v->p[0] == 2)) {
            *quote = 0;
            return fv_sbuf_puts(b, v->p[0] == 1 ? "true" : "false");
        }
        break;
    case FV_IE_IPV4:
        if (v->len == 4)
            return put_ipv4(b, v->p);
        break;
    case FV_IE_IPV6:
        if (v->len == 16) {
            inet_ntop(AF_INET6, v->p, tmp, sizeof(tmp));
            return fv_sbuf_puts(b, tmp);
        }
        break;
    case FV_IE_MAC:
        if (v->len == 6)
            return fv_sbuf_printf(b, "%02x:%02x:%02x:%02x:%02x:%02x", v->p[0], v->p[1], v->p[2],
                                  v->p[3], v->p[4], v->p[5]);
        break;
    case FV_IE_STRING:
        *quote = 2; /* needs escaping */
        return fv_sbuf_append(b, v->p, v->len);
    default:
        break;
    }
    return fv_sbuf_put_hex(b, v->p, v->len);
}

int fv_ipfix_fmt_json_value(struct fv_sbuf *b, const struct fv_ipfix_field *f,
                            const struct fv_ipfix_value *v)
{
    int type = f->ie ? f->ie->type : FV_IE_OCTETS;
    size_t mark;
    int quote, rc;

    if (type == FV_IE_STRING)
        return fv_sbuf_put_json_str(b, (const char *)v->p, v->len);
    /* Most values are strings (addresses, hex): open the quote first, and
     * take it back for the few bare tokens (numbers, true, false), which are
     * at most a couple of dozen bytes to move. */
    rc = fv_sbuf_putc(b, '"');
    if (rc < 0)
        return rc;
    mark = b->len;
    rc = put_value(b, f, v, &quote);
    if (rc < 0)
        return rc;
    if (quote)
        return fv_sbuf_putc(b, '"');
    memmove(b->p + mark - 1, b->p + mark, b->len - mark);
    b->len--;
    b->p[b->len] = '\0';
    return 0;
}

int fv_ipfix_fmt_text_value(struct fv_sbuf *b, const struct fv_ipfix_field *f,
                            const struct fv_ipfix_value *v)
{
    int quote;
    int type = f->ie ? f->ie->type : FV_IE_OCTETS;

    if (type == FV_IE_STRING) {
        /* Escape control characters and bad UTF-8, but drop the quotes. */
        size_t mark = b->len;
        int rc = fv_sbuf_put_json_str(b, (const char *)v->p, v->len);
        if (rc < 0)
            return rc;
        memmove(b->p + mark, b->p + mark + 1, b->len - mark - 2);
        b->len -= 2;
        b->p[b->len] = '\0';
        return 0;
    }
    return put_value(b, f, v, &quote);
}

int fv_ipfix_fmt_json_record(struct fv_sbuf *b, const struct fv_ipfix_rec *rec,
                             const struct fv_ipfix_value *values)
{
    const struct fv_ipfix_template *t = rec->tmpl;

    /* One growth for the whole record (names and values average well
     * under 64 bytes), so the appends below rarely reallocate. */
    fv_sbuf_reserve(b, (size_t)t->field_count * 64 + rec->len * 2);
    fv_sbuf_putc(b, '{');
    for (uint16_t i = 0; i < t->field_count; i++) {
        fv_sbuf_append(b, i ? ",\"" : "\"", i ? 2 : 1);
        fv_ipfix_fmt_name(b, &t->fields[i]);
        fv_sbuf_append(b, "\":", 2);
        fv_ipfix_fmt_json_value(b, &t->fields[i], &values[i]);
    }
    fv_sbuf_putc(b, '}');
    return b->err;
}
