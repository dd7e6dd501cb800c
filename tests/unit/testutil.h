/*
 * testutil.h - helpers shared by the codec's unit tests.
 *
 * Two ways to make IPFIX bytes: the codec's own writer (for round trips)
 * and struct tu_msg below, a byte-level builder that computes lengths only
 * when asked, so a test can write exactly the malformed message it means.
 * struct tu_capture is a decoding handler that records what the decoder
 * delivered (every record as one JSON line, the integer value of each
 * field, template events) so tests can assert exact results.
 *
 * Everything is `static inline` so each test program compiles only what
 * it uses without unused-function warnings.
 *
 *     struct tu_msg m;
 *     tu_msg_begin(&m, seq, domain);
 *     size_t set = tu_set_begin(&m, 2);
 *     tu_u16(&m, 300); tu_u16(&m, 1); tu_u16(&m, 1); tu_u16(&m, 8);
 *     tu_set_end(&m, set);
 *     tu_msg_end(&m);
 *     rc = tu_decode(&session, &m, now_ms, &cap);
 */
#ifndef FV_TESTS_UNIT_TESTUTIL_H
#define FV_TESTS_UNIT_TESTUTIL_H

#include <setjmp.h> /* cmocka.h needs these first */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "base/bytes.h"
#include "base/err.h"
#include "base/sbuf.h"
#include "ipfix/fmt.h"
#include "ipfix/ipfix.h"

/* ---- Byte-level message builder ---- */

struct tu_msg {
    uint8_t buf[FV_IPFIX_MAX_MESSAGE + 64]; /* room to write past 65535 on purpose */
    size_t len;                             /* bytes written */
};

static inline void tu_u8(struct tu_msg *m, uint8_t v)
{
    assert_true(m->len + 1 <= sizeof(m->buf));
    m->buf[m->len++] = v;
}

static inline void tu_u16(struct tu_msg *m, uint16_t v)
{
    assert_true(m->len + 2 <= sizeof(m->buf));
    fv_store_be16(m->buf + m->len, v);
    m->len += 2;
}

static inline void tu_u32(struct tu_msg *m, uint32_t v)
{
    assert_true(m->len + 4 <= sizeof(m->buf));
    fv_store_be32(m->buf + m->len, v);
    m->len += 4;
}

static inline void tu_u64(struct tu_msg *m, uint64_t v)
{
    assert_true(m->len + 8 <= sizeof(m->buf));
    fv_store_be64(m->buf + m->len, v);
    m->len += 8;
}

static inline void tu_bytes(struct tu_msg *m, const void *p, size_t n)
{
    assert_true(m->len + n <= sizeof(m->buf));
    memcpy(m->buf + m->len, p, n);
    m->len += n;
}

static inline void tu_zeros(struct tu_msg *m, size_t n)
{
    assert_true(m->len + n <= sizeof(m->buf));
    memset(m->buf + m->len, 0, n);
    m->len += n;
}

/* Writes a header with length 0; tu_msg_end() fills the length in. */
static inline void tu_msg_begin(struct tu_msg *m, uint32_t seq, uint32_t domain)
{
    m->len = 0;
    tu_u16(m, FV_IPFIX_VERSION);
    tu_u16(m, 0);
    tu_u32(m, 1700000000); /* export time */
    tu_u32(m, seq);
    tu_u32(m, domain);
}

/* Sets the header's length to the bytes written so far. */
static inline void tu_msg_end(struct tu_msg *m)
{
    fv_store_be16(m->buf + 2, (uint16_t)m->len);
}

/* Opens a set with length 0; returns its offset for tu_set_end(). */
static inline size_t tu_set_begin(struct tu_msg *m, uint16_t id)
{
    size_t off = m->len;
    tu_u16(m, id);
    tu_u16(m, 0);
    return off;
}

static inline void tu_set_end(struct tu_msg *m, size_t off)
{
    fv_store_be16(m->buf + off + 2, (uint16_t)(m->len - off));
}

/* A field specifier; the enterprise bit and PEN are added when pen != 0. */
static inline void tu_field(struct tu_msg *m, uint32_t pen, uint16_t id, uint16_t len)
{
    tu_u16(m, (uint16_t)(id | (pen ? 0x8000u : 0)));
    tu_u16(m, len);
    if (pen)
        tu_u32(m, pen);
}

/* ---- Hex ---- */

/* Decodes hex digits into out, skipping spaces; returns the byte count. */
static inline size_t tu_unhex(const char *hex, uint8_t *out, size_t cap)
{
    size_t n = 0;
    int hi = -1;

    for (const char *c = hex; *c; c++) {
        int v;
        if (*c == ' ')
            continue;
        if (*c >= '0' && *c <= '9')
            v = *c - '0';
        else if (*c >= 'a' && *c <= 'f')
            v = *c - 'a' + 10;
        else if (*c >= 'A' && *c <= 'F')
            v = *c - 'A' + 10;
        else
            fail_msg("bad hex digit '%c' in \"%s\"", *c, hex);
        if (hi < 0) {
            hi = v;
            continue;
        }
        assert_true(n < cap);
        out[n++] = (uint8_t)(hi << 4 | v);
        hi = -1;
    }
    assert_true(hi < 0);
    return n;
}

/* Lowercase hex of n bytes into out (2n + 1 bytes). */
static inline char *tu_hex(const uint8_t *p, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    out[2 * n] = '\0';
    return out;
}

/* ---- Capturing decoder handler ---- */

#define TU_MAX_RECORDS 256
#define TU_MAX_FIELDS 40

struct tu_capture {
    struct fv_sbuf json;                          /* one JSON object + '\n' per record */
    unsigned records;                             /* records delivered */
    uint16_t tmpl_id[TU_MAX_RECORDS];             /* template of each record */
    uint16_t len[TU_MAX_RECORDS][TU_MAX_FIELDS];  /* value lengths of each record */
    uint64_t uint[TU_MAX_RECORDS][TU_MAX_FIELDS]; /* fv_ipfix_value_uint() of each value */
    unsigned defined;                             /* on_template(withdrawn == false) calls */
    unsigned withdrawn;                           /* on_template(withdrawn == true) calls */
    uint16_t last_withdrawn;                      /* id of the last withdrawn template */
    unsigned stop_after;                          /* return 1 after this many records; 0 = never */
};

static inline void tu_capture_init(struct tu_capture *c)
{
    memset(c, 0, sizeof(*c));
    fv_sbuf_init(&c->json, 1 << 22);
}

static inline void tu_capture_fini(struct tu_capture *c)
{
    fv_sbuf_fini(&c->json);
}

/* Forgets what was captured (keeps stop_after). */
static inline void tu_capture_reset(struct tu_capture *c)
{
    unsigned stop_after = c->stop_after;
    struct fv_sbuf json = c->json;

    memset(c, 0, sizeof(*c));
    c->json = json;
    c->stop_after = stop_after;
    fv_sbuf_reset(&c->json);
}

static inline int tu_on_record(void *ctx, const struct fv_ipfix_msg *msg,
                               const struct fv_ipfix_rec *rec, const struct fv_ipfix_value *values)
{
    struct tu_capture *c = ctx;
    unsigned r = c->records;

    /* The record and its values must lie inside the message. */
    assert_true(rec->data >= msg->buf && rec->data + rec->len <= msg->buf + msg->length);
    for (uint16_t i = 0; i < rec->tmpl->field_count; i++)
        assert_true(values[i].p >= rec->data &&
                    values[i].p + values[i].len <= rec->data + rec->len);
    assert_int_equal(fv_ipfix_fmt_json_record(&c->json, rec, values), 0);
    assert_int_equal(fv_sbuf_putc(&c->json, '\n'), 0);
    if (r < TU_MAX_RECORDS) {
        c->tmpl_id[r] = rec->tmpl->id;
        for (uint16_t i = 0; i < rec->tmpl->field_count && i < TU_MAX_FIELDS; i++) {
            c->len[r][i] = values[i].len;
            c->uint[r][i] = fv_ipfix_value_uint(&values[i]);
        }
    }
    c->records++;
    return c->stop_after != 0 && c->records >= c->stop_after ? 1 : 0;
}

static inline void tu_on_template(void *ctx, const struct fv_ipfix_msg *msg,
                                  const struct fv_ipfix_template *tmpl, bool withdrawn)
{
    struct tu_capture *c = ctx;

    (void)msg;
    if (withdrawn) {
        c->withdrawn++;
        c->last_withdrawn = tmpl->id;
    } else {
        c->defined++;
    }
}

static inline struct fv_ipfix_handler tu_handler(struct tu_capture *c)
{
    struct fv_ipfix_handler h = {
        .on_record = tu_on_record, .on_template = tu_on_template, .ctx = c};
    return h;
}

static inline int tu_decode_bytes(struct fv_ipfix_session *s, const uint8_t *buf, size_t len,
                                  uint64_t now_ms, struct tu_capture *c)
{
    struct fv_ipfix_handler h = tu_handler(c);
    return fv_ipfix_session_decode(s, buf, len, now_ms, &h);
}

static inline int tu_decode(struct fv_ipfix_session *s, const struct tu_msg *m, uint64_t now_ms,
                            struct tu_capture *c)
{
    return tu_decode_bytes(s, m->buf, m->len, now_ms, c);
}

/* The stats of a domain the session must have seen. */
static inline const struct fv_ipfix_domain_stats *tu_stats(struct fv_ipfix_session *s,
                                                           uint32_t domain)
{
    struct fv_ipfix_domain *d = fv_ipfix_session_domain(s, domain);
    assert_non_null(d);
    return &d->stats;
}

/* ---- Writer shortcuts ---- */

/* A field of a template definition: IANA when pen is 0. */
#define TU_F(pen, id, len)                                                                         \
    {                                                                                              \
        (pen), (id), (len), NULL                                                                   \
    }

/* Number of sets in a well-formed message, and the id of set `index`. */
static inline unsigned tu_count_sets(const uint8_t *buf, size_t len, unsigned index, uint16_t *id)
{
    struct fv_ipfix_msg msg;
    struct fv_ipfix_set_iter it;
    struct fv_ipfix_set set;
    unsigned n = 0;
    int rc;

    assert_int_equal(fv_ipfix_msg_open(buf, len, &msg), 0);
    fv_ipfix_set_iter_init(&it, &msg);
    while ((rc = fv_ipfix_set_iter_next(&it, &set)) == 0) {
        if (n == index && id != NULL)
            *id = set.id;
        n++;
    }
    assert_int_equal(rc, -FV_EEND);
    return n;
}

#endif
