/*
 * fuzz_decode.c - libFuzzer target for the IPFIX decoder and formatter.
 *
 * The input is a stream of messages framed the way a TCP collector frames
 * them: by the length in each header.  Where a header's length cannot
 * frame a message, the rest of the input is one last message.  Every
 * message is copied into a buffer of exactly its size, so ASan sees any
 * read past it, and decoded on one UDP-lifetime session, so templates,
 * withdrawals, expiry (the clock is the messages' export time) and
 * sequence state carry over from message to message.
 *
 * Each delivered record is checked three ways:
 *   - every value lies inside the record and the record inside the message;
 *   - fv_ipfix_fmt_json_record() produces strictly valid JSON;
 *   - re-encoding the record with the writer and decoding it on a fresh
 *     session gives the same JSON (the encoder and decoder agree).
 * A failed check aborts, which libFuzzer reports as a crash.
 *
 *   make fuzz FUZZ_SECONDS=60      # fuzz, new inputs in build-fuzz/corpus
 *   make fuzz-replay               # run the seed corpus once
 *   (tests/fuzz/make_corpus.c regenerates tests/fuzz/corpus/decode/)
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/bytes.h"
#include "base/err.h"
#include "base/sbuf.h"
#include "ipfix/fmt.h"
#include "ipfix/ipfix.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);               \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* ---- A strict JSON checker for what fv_ipfix_fmt_json_record writes ---- */

struct js {
    const unsigned char *p, *end;
};

static bool js_digits(struct js *j)
{
    const unsigned char *start = j->p;
    while (j->p < j->end && *j->p >= '0' && *j->p <= '9')
        j->p++;
    return j->p > start;
}

static bool js_number(struct js *j)
{
    if (j->p < j->end && *j->p == '-')
        j->p++;
    if (j->p < j->end && *j->p == '0')
        j->p++;
    else if (!js_digits(j))
        return false;
    if (j->p < j->end && *j->p == '.') {
        j->p++;
        if (!js_digits(j))
            return false;
    }
    if (j->p < j->end && (*j->p == 'e' || *j->p == 'E')) {
        j->p++;
        if (j->p < j->end && (*j->p == '+' || *j->p == '-'))
            j->p++;
        if (!js_digits(j))
            return false;
    }
    return true;
}

/* Length of a well-formed UTF-8 sequence at p, 0 if there is none. */
static size_t js_utf8(const unsigned char *p, const unsigned char *end)
{
    size_t n = (size_t)(end - p), len;
    uint32_t cp;

    if (p[0] >= 0xc2 && p[0] <= 0xdf) {
        len = 2;
        cp = p[0] & 0x1f;
    } else if (p[0] >= 0xe0 && p[0] <= 0xef) {
        len = 3;
        cp = p[0] & 0x0f;
    } else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
        len = 4;
        cp = p[0] & 0x07;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (p[i] & 0x3f);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

static bool js_string(struct js *j)
{
    if (j->p >= j->end || *j->p != '"')
        return false;
    j->p++;
    while (j->p < j->end && *j->p != '"') {
        unsigned char c = *j->p;
        if (c < 0x20)
            return false;
        if (c == '\\') {
            if (j->end - j->p < 2)
                return false;
            if (j->p[1] == 'u') {
                if (j->end - j->p < 6)
                    return false;
                for (int i = 2; i < 6; i++)
                    if (!strchr("0123456789abcdefABCDEF", j->p[i]) || j->p[i] == 0)
                        return false;
                j->p += 6;
            } else if (strchr("\"\\/bfnrt", j->p[1]) && j->p[1] != 0) {
                j->p += 2;
            } else {
                return false;
            }
        } else if (c < 0x80) {
            j->p++;
        } else {
            size_t len = js_utf8(j->p, j->end);
            if (len == 0)
                return false;
            j->p += len;
        }
    }
    if (j->p >= j->end)
        return false;
    j->p++;
    return true;
}

static bool js_literal(struct js *j, const char *lit)
{
    size_t n = strlen(lit);
    if ((size_t)(j->end - j->p) < n || memcmp(j->p, lit, n) != 0)
        return false;
    j->p += n;
    return true;
}

static bool js_value(struct js *j)
{
    if (j->p >= j->end)
        return false;
    if (*j->p == '"')
        return js_string(j);
    if (*j->p == 't')
        return js_literal(j, "true");
    if (*j->p == 'f')
        return js_literal(j, "false");
    if (*j->p == 'n')
        return js_literal(j, "null");
    return js_number(j);
}

/* A flat object of `fields` members and nothing after it. */
static bool json_object_ok(const char *s, size_t len, unsigned fields)
{
    struct js j = {(const unsigned char *)s, (const unsigned char *)s + len};

    if (!js_literal(&j, "{"))
        return false;
    for (unsigned i = 0; i < fields; i++) {
        if (i && !js_literal(&j, ","))
            return false;
        if (!js_string(&j) || !js_literal(&j, ":") || !js_value(&j))
            return false;
    }
    return js_literal(&j, "}") && j.p == j.end;
}

/* ---- Re-encoding a record: the writer and decoder must agree ---- */

struct again {
    struct fv_sbuf *json;
    unsigned records;
};

static int again_record(void *ctx, const struct fv_ipfix_msg *msg, const struct fv_ipfix_rec *rec,
                        const struct fv_ipfix_value *values)
{
    struct again *a = ctx;

    (void)msg;
    a->records++;
    CHECK(fv_ipfix_fmt_json_record(a->json, rec, values) == 0);
    return 0;
}

static void check_reencode(const struct fv_ipfix_rec *rec, const struct fv_ipfix_value *values,
                           const struct fv_sbuf *want)
{
    static uint8_t buf[FV_IPFIX_MAX_MESSAGE];
    static struct fv_sbuf got;
    const struct fv_ipfix_template *t = rec->tmpl;
    struct fv_ipfix_template_def def = {t->id, t->field_count, t->fields};
    struct fv_ipfix_writer w;
    struct fv_ipfix_session s;
    struct again a = {&got, 0};
    struct fv_ipfix_handler h = {.on_record = again_record, .ctx = &a};
    size_t len;

    if (got.max == 0)
        fv_sbuf_init(&got, 8u << 20);
    fv_sbuf_reset(&got);
    fv_ipfix_writer_init(&w, buf, sizeof(buf));
    if (fv_ipfix_writer_add_template(&w, &def) < 0)
        return; /* a huge template and a huge record do not fit one message */
    fv_ipfix_writer_record_begin(&w, t->id);
    for (uint16_t i = 0; i < t->field_count; i++) {
        if (t->fields[i].length == FV_IE_VARLEN)
            fv_ipfix_put_varlen(&w, values[i].p, values[i].len);
        else
            fv_ipfix_put_bytes(&w, values[i].p, values[i].len);
    }
    if (fv_ipfix_writer_record_end(&w) < 0)
        return;
    len = fv_ipfix_writer_finish(&w, 0, 0, 1);

    fv_ipfix_session_init(&s, 0);
    CHECK(fv_ipfix_session_decode(&s, buf, len, 0, &h) == 0);
    CHECK(a.records == 1);
    CHECK(got.len == want->len && memcmp(got.p, want->p, got.len) == 0);
    fv_ipfix_session_fini(&s);
}

/* ---- The target ---- */

static struct fv_sbuf json, text;

static int on_record(void *ctx, const struct fv_ipfix_msg *msg, const struct fv_ipfix_rec *rec,
                     const struct fv_ipfix_value *values)
{
    const struct fv_ipfix_template *t = rec->tmpl;

    (void)ctx;
    CHECK(rec->data >= msg->buf && rec->len <= msg->length &&
          (size_t)(rec->data - msg->buf) <= (size_t)msg->length - rec->len);
    CHECK(rec->len >= t->min_len);
    for (uint16_t i = 0; i < t->field_count; i++) {
        CHECK(values[i].p >= rec->data && values[i].len <= rec->len &&
              (size_t)(values[i].p - rec->data) <= (size_t)rec->len - values[i].len);
        if (t->fields[i].length != FV_IE_VARLEN)
            CHECK(values[i].len == t->fields[i].length);
    }

    fv_sbuf_reset(&json);
    CHECK(fv_ipfix_fmt_json_record(&json, rec, values) == 0);
    CHECK(json_object_ok(json.p, json.len, t->field_count));

    for (uint16_t i = 0; i < t->field_count; i++) {
        fv_sbuf_reset(&text);
        CHECK(fv_ipfix_fmt_text_value(&text, &t->fields[i], &values[i]) == 0);
        (void)fv_ipfix_value_uint(&values[i]);
    }

    check_reencode(rec, values, &json);
    return 0;
}

static void on_template(void *ctx, const struct fv_ipfix_msg *msg,
                        const struct fv_ipfix_template *tmpl, bool withdrawn)
{
    uint32_t min_len = 0;

    (void)ctx;
    (void)msg;
    (void)withdrawn;
    /* Touch every field so ASan sees a template used after it was freed. */
    for (uint16_t i = 0; i < tmpl->field_count; i++)
        min_len += tmpl->fields[i].length == FV_IE_VARLEN ? 1 : tmpl->fields[i].length;
    CHECK(tmpl->id >= FV_IPFIX_MIN_DATA_SET);
    CHECK(min_len == tmpl->min_len);
    CHECK(tmpl->scope_count <= tmpl->field_count);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fv_ipfix_session s;
    struct fv_ipfix_handler h = {.on_record = on_record, .on_template = on_template};
    uint64_t now_ms = 0;
    size_t off = 0;

    if (json.max == 0) {
        fv_sbuf_init(&json, 8u << 20);
        fv_sbuf_init(&text, 8u << 20);
    }
    fv_ipfix_session_init(&s, FV_IPFIX_UDP_TEMPLATE_LIFETIME_S);
    while (off < size) {
        size_t left = size - off, len = left;
        uint8_t *msg;
        int rc;

        if (left >= FV_IPFIX_HEADER_LEN) {
            size_t framed = fv_load_be16(data + off + 2);
            uint64_t export_ms = (uint64_t)fv_load_be32(data + off + 4) * 1000u;
            if (framed >= FV_IPFIX_HEADER_LEN && framed <= left)
                len = framed;
            /* The clock is monotonic: it follows export times forward only. */
            if (export_ms > now_ms)
                now_ms = export_ms;
        }
        msg = malloc(len);
        CHECK(msg != NULL);
        memcpy(msg, data + off, len);
        rc = fv_ipfix_session_decode(&s, msg, len, now_ms, &h);
        CHECK(rc <= 0); /* on_record never asks to stop */
        CHECK(fv_strerror(rc) != NULL);
        if (rc < 0)
            CHECK(s.last_error == rc);
        free(msg);
        off += len;
    }
    fv_ipfix_session_fini(&s);
    return 0;
}
