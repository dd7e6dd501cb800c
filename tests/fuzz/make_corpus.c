/*
 * make_corpus.c - writes the seed corpus of fuzz_decode into a directory.
 *
 * Each file is a stream of IPFIX messages (fuzz_decode frames them by
 * their header length): valid agent-format messages with templates and
 * data, options templates, withdrawals, redefinitions, template expiry,
 * sequence gaps, var-len edge cases, padding, several domains, and a few
 * malformed messages.  Valid messages come from the codec's writer; the
 * others are built byte by byte.
 *
 *   cc -std=c11 -D_GNU_SOURCE -Isrc -o build/make_corpus tests/fuzz/make_corpus.c \
 *       build/libflowvis.a -lpthread
 *   rm -rf tests/fuzz/corpus/decode && mkdir tests/fuzz/corpus/decode
 *   build/make_corpus tests/fuzz/corpus/decode
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/bytes.h"
#include "ipfix/ipfix.h"
#include "ipfix/templates.h"

#define EXPORT_TIME 1700000000u

/* ---- An output stream of messages ---- */

struct stream {
    uint8_t buf[1 << 18]; /* concatenated messages */
    size_t len;           /* bytes used */
};

static struct stream out;
static const char *out_dir;
static unsigned files;

static void emit(const char *name)
{
    char path[512];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", out_dir, name);
    f = fopen(path, "wb");
    if (f == NULL || fwrite(out.buf, 1, out.len, f) != out.len || fclose(f) != 0) {
        perror(path);
        exit(1);
    }
    files++;
    out.len = 0;
}

static void append(const uint8_t *p, size_t n)
{
    if (out.len + n > sizeof(out.buf)) {
        fprintf(stderr, "stream too long\n");
        exit(1);
    }
    memcpy(out.buf + out.len, p, n);
    out.len += n;
}

/* ---- Messages from the writer ---- */

static uint8_t wbuf[FV_IPFIX_MAX_MESSAGE];
static struct fv_ipfix_writer w;

static void msg_begin(size_t cap)
{
    fv_ipfix_writer_init(&w, wbuf, cap);
}

static void msg_end(uint32_t export_time, uint32_t seq, uint32_t domain)
{
    append(wbuf, fv_ipfix_writer_finish(&w, export_time, seq, domain));
}

static void must(int rc, const char *what)
{
    if (rc != 0) {
        fprintf(stderr, "%s failed: %d\n", what, rc);
        exit(1);
    }
}

static void agent_record(uint16_t tmpl, int i)
{
    static const uint8_t v6a[16] = {0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 5};
    static const uint8_t v6b[16] = {0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 9};
    const uint8_t v4a[4] = {10, 244, 1, (uint8_t)i};
    const uint8_t v4b[4] = {10, 244, 2, 9};
    const uint8_t cip[4] = {10, 96, 0, 10};
    size_t alen = tmpl == FV_TMPL_AGENT_V4 ? 4 : 16;

    fv_ipfix_writer_record_begin(&w, tmpl);
    fv_ipfix_put_u32(&w, EXPORT_TIME - 60);
    fv_ipfix_put_u32(&w, EXPORT_TIME);
    fv_ipfix_put_u8(&w, (uint8_t)(i % 5));
    fv_ipfix_put_u16(&w, (uint16_t)(40000 + i));
    fv_ipfix_put_u16(&w, 8080);
    fv_ipfix_put_u8(&w, i % 2 ? 17 : 6);
    fv_ipfix_put_u64(&w, 100 + (uint64_t)i);
    fv_ipfix_put_u64(&w, 150000);
    fv_ipfix_put_u64(&w, 10);
    fv_ipfix_put_u64(&w, 15000);
    fv_ipfix_put_bytes(&w, alen == 4 ? v4a : v6a, alen);
    fv_ipfix_put_bytes(&w, alen == 4 ? v4b : v6b, alen);
    fv_ipfix_put_u64(&w, 90);
    fv_ipfix_put_u64(&w, 5000000);
    fv_ipfix_put_u64(&w, 9);
    fv_ipfix_put_u64(&w, 500000);
    fv_ipfix_put_varlen(&w, "client-7f9c", 11);
    fv_ipfix_put_varlen(&w, "default", 7);
    fv_ipfix_put_varlen(&w, "node-a", 6);
    fv_ipfix_put_varlen(&w, "web-0", 5);
    fv_ipfix_put_varlen(&w, "shop", 4);
    fv_ipfix_put_varlen(&w, "node-b", 6);
    fv_ipfix_put_u16(&w, 80);
    fv_ipfix_put_varlen(&w, "shop/web:http", 13);
    fv_ipfix_put_varlen(&w, "allow-web", 9);
    fv_ipfix_put_varlen(&w, "shop", 4);
    fv_ipfix_put_u8(&w, 1);
    fv_ipfix_put_varlen(&w, "rule-1", 6);
    fv_ipfix_put_u8(&w, 1);
    fv_ipfix_put_varlen(&w, "", 0);
    fv_ipfix_put_varlen(&w, "", 0);
    fv_ipfix_put_u8(&w, 0);
    fv_ipfix_put_varlen(&w, "", 0);
    fv_ipfix_put_u8(&w, 0);
    fv_ipfix_put_varlen(&w, "ESTABLISHED", 11);
    fv_ipfix_put_u8(&w, 2);
    fv_ipfix_put_bytes(&w, alen == 4 ? cip : v6b, alen);
    must(fv_ipfix_writer_record_end(&w), "agent record");
}

static void corpus_agent(void)
{
    msg_begin(1400);
    must(fv_ipfix_writer_add_template(&w, &fv_tmpl_agent_v4), "template");
    agent_record(FV_TMPL_AGENT_V4, 1);
    agent_record(FV_TMPL_AGENT_V4, 2);
    msg_end(EXPORT_TIME, 0, 1);
    msg_begin(1400);
    for (int i = 3; i < 6; i++)
        agent_record(FV_TMPL_AGENT_V4, i);
    msg_end(EXPORT_TIME + 1, 2, 1);
    emit("agent_v4");

    msg_begin(1400);
    must(fv_ipfix_writer_add_template(&w, &fv_tmpl_agent_v6), "template");
    agent_record(FV_TMPL_AGENT_V6, 1);
    msg_end(EXPORT_TIME, 0, 1);
    emit("agent_v6");

    msg_begin(FV_IPFIX_MAX_MESSAGE);
    must(fv_ipfix_writer_add_template(&w, &fv_tmpl_agent_v4), "template");
    must(fv_ipfix_writer_add_template(&w, &fv_tmpl_agent_v6), "template");
    agent_record(FV_TMPL_AGENT_V6, 1);
    agent_record(FV_TMPL_AGENT_V4, 2);
    agent_record(FV_TMPL_AGENT_V4, 3);
    msg_end(EXPORT_TIME, 7, 42);
    emit("agent_v4_v6_one_message");
}

/* ---- Byte-level messages ---- */

struct raw {
    uint8_t buf[FV_IPFIX_MAX_MESSAGE];
    size_t len;
};

static struct raw r;

static void r_u8(uint8_t v)
{
    r.buf[r.len++] = v;
}

static void r_u16(uint16_t v)
{
    fv_store_be16(r.buf + r.len, v);
    r.len += 2;
}

static void r_u32(uint32_t v)
{
    fv_store_be32(r.buf + r.len, v);
    r.len += 4;
}

static void r_u64(uint64_t v)
{
    fv_store_be64(r.buf + r.len, v);
    r.len += 8;
}

static void r_bytes(const void *p, size_t n)
{
    memcpy(r.buf + r.len, p, n);
    r.len += n;
}

static void r_begin(uint32_t export_time, uint32_t seq, uint32_t domain)
{
    r.len = 0;
    r_u16(FV_IPFIX_VERSION);
    r_u16(0);
    r_u32(export_time);
    r_u32(seq);
    r_u32(domain);
}

/* Sets the message length and appends the message to the stream. */
static void r_end(void)
{
    fv_store_be16(r.buf + 2, (uint16_t)r.len);
    append(r.buf, r.len);
}

static size_t r_set(uint16_t id)
{
    size_t off = r.len;
    r_u16(id);
    r_u16(0);
    return off;
}

static void r_set_end(size_t off)
{
    fv_store_be16(r.buf + off + 2, (uint16_t)(r.len - off));
}

static void r_field(uint32_t pen, uint16_t id, uint16_t len)
{
    r_u16((uint16_t)(id | (pen ? 0x8000u : 0)));
    r_u16(len);
    if (pen)
        r_u32(pen);
}

static void r_varlen(const void *p, size_t n)
{
    if (n < 255) {
        r_u8((uint8_t)n);
    } else {
        r_u8(255);
        r_u16((uint16_t)n);
    }
    r_bytes(p, n);
}

/* Template 300: ingressInterface (4); 301: sourceTransportPort (2) and
 * interfaceName (var-len); options 400: observationDomainId scope and
 * two counters. */
static void r_definitions(void)
{
    size_t set = r_set(FV_IPFIX_SET_TEMPLATE);
    r_u16(300);
    r_u16(1);
    r_field(0, 10, 4);
    r_u16(301);
    r_u16(2);
    r_field(0, 7, 2);
    r_field(0, 82, FV_IE_VARLEN);
    r_set_end(set);
    set = r_set(FV_IPFIX_SET_OPTIONS_TEMPLATE);
    r_u16(400);
    r_u16(3);
    r_u16(1);
    r_field(0, 149, 4);
    r_field(0, 41, 8);
    r_field(0, 42, 8);
    r_set_end(set);
}

static void r_data(uint32_t v)
{
    size_t set = r_set(300);
    r_u32(v);
    r_u32(v + 1);
    r_set_end(set);
    set = r_set(301);
    r_u16(443);
    r_varlen("eth0", 4);
    r_set_end(set);
    set = r_set(400);
    r_u32(1);
    r_u64(12);
    r_u64(3456);
    r_set_end(set);
}

static void r_withdraw(uint16_t set_id, uint16_t id)
{
    size_t set = r_set(set_id);
    r_u16(id);
    r_u16(0);
    r_set_end(set);
}

static void corpus_templates(void)
{
    r_begin(EXPORT_TIME, 0, 1);
    r_definitions();
    r_data(1);
    r_end();
    emit("options_template");

    r_begin(EXPORT_TIME, 0, 1);
    r_definitions();
    r_end();
    r_begin(EXPORT_TIME, 0, 1);
    r_withdraw(FV_IPFIX_SET_TEMPLATE, 300);
    r_data(2);
    r_end();
    emit("withdraw_one");

    r_begin(EXPORT_TIME, 0, 1);
    r_definitions();
    r_end();
    r_begin(EXPORT_TIME, 0, 1);
    r_withdraw(FV_IPFIX_SET_TEMPLATE, FV_IPFIX_SET_TEMPLATE);
    r_data(3);
    r_end();
    r_begin(EXPORT_TIME, 2, 1);
    r_withdraw(FV_IPFIX_SET_OPTIONS_TEMPLATE, FV_IPFIX_SET_OPTIONS_TEMPLATE);
    r_definitions();
    r_data(4);
    r_end();
    emit("withdraw_all");

    /* 300 redefined as two ports within one message. */
    r_begin(EXPORT_TIME, 0, 1);
    r_definitions();
    r_data(5);
    size_t set = r_set(FV_IPFIX_SET_TEMPLATE);
    r_u16(300);
    r_u16(2);
    r_field(0, 7, 2);
    r_field(0, 11, 2);
    r_set_end(set);
    r_data(6);
    r_end();
    emit("redefine");

    /* Expiry: the fuzz target's clock follows the export time. */
    r_begin(EXPORT_TIME, 0, 1);
    r_definitions();
    r_end();
    r_begin(EXPORT_TIME + 1000, 0, 1);
    r_data(7);
    r_end();
    r_begin(EXPORT_TIME + 3000, 4, 1);
    r_data(8);
    r_end();
    emit("template_expiry");

    /* Sequence numbers: a gap, a late message, a wrap. */
    r_begin(EXPORT_TIME, 0xfffffff0u, 1);
    r_definitions();
    r_data(9);
    r_end();
    r_begin(EXPORT_TIME, 0xfffffffcu, 1);
    r_data(10);
    r_end();
    r_begin(EXPORT_TIME, 0xfffffff4u, 1);
    r_data(11);
    r_end();
    r_begin(EXPORT_TIME, 3, 1);
    r_data(12);
    r_end();
    emit("sequence");

    /* Enough templates to grow the template table, ids spread out, then
     * withdrawals from the middle of its probe runs. */
    r_begin(EXPORT_TIME, 0, 1);
    size_t tset = r_set(FV_IPFIX_SET_TEMPLATE);
    for (unsigned i = 0; i < 40; i++) {
        r_u16((uint16_t)(256 + i * 997 % 4096));
        r_u16(1);
        r_field(0, 10, 4);
    }
    r_set_end(tset);
    r_end();
    r_begin(EXPORT_TIME, 0, 1);
    tset = r_set(FV_IPFIX_SET_TEMPLATE);
    for (unsigned i = 0; i < 40; i += 3) {
        r_u16((uint16_t)(256 + i * 997 % 4096));
        r_u16(0);
    }
    r_set_end(tset);
    for (unsigned i = 0; i < 6; i++) {
        tset = r_set((uint16_t)(256 + i * 997 % 4096));
        r_u32(i);
        r_set_end(tset);
    }
    r_end();
    emit("many_templates");

    /* Two observation domains, templates in one only. */
    r_begin(EXPORT_TIME, 0, 1);
    r_definitions();
    r_end();
    r_begin(EXPORT_TIME, 0, 2);
    r_data(13);
    r_end();
    r_begin(EXPORT_TIME, 0, 1);
    r_data(14);
    r_end();
    emit("domains");
}

static void corpus_types(void)
{
    static const uint8_t v6[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    /* UTF-8, quotes, a backslash, control characters and a bad byte. */
    static const char nasty[] = "caf\xc3\xa9 \"q\" \\ \n\x01\xff";
    size_t set;

    r_begin(EXPORT_TIME, 0, 1);
    set = r_set(FV_IPFIX_SET_TEMPLATE);
    r_u16(310);
    r_u16(20);
    r_field(0, 4, 1);                /* unsigned8 */
    r_field(0, 1, 8);                /* unsigned64 */
    r_field(0, 2, 3);                /* unsigned64 in 3 bytes */
    r_field(56506, 116, 4);          /* signed32 */
    r_field(56506, 119, 1);          /* signed32 in 1 byte */
    r_field(0, 150, 4);              /* dateTimeSeconds */
    r_field(0, 152, 8);              /* dateTimeMilliseconds */
    r_field(0, 154, 8);              /* dateTimeMicroseconds (NTP) */
    r_field(0, 156, 8);              /* dateTimeNanoseconds (NTP) */
    r_field(0, 8, 4);                /* ipv4Address */
    r_field(0, 27, 16);              /* ipv6Address */
    r_field(0, 56, 6);               /* macAddress */
    r_field(0, 82, FV_IE_VARLEN);    /* string */
    r_field(0, 95, FV_IE_VARLEN);    /* octetArray */
    r_field(0, 999, 2);              /* unknown IANA */
    r_field(12345, 7, FV_IE_VARLEN); /* unknown enterprise */
    r_field(29305, 1, 8);            /* reverseOctetDeltaCount */
    r_field(0, 291, FV_IE_VARLEN);   /* basicList, shown as hex */
    r_field(0, 8, 2);                /* ipv4 of the wrong length */
    r_field(0, 1, 0);                /* a zero-length field */
    r_set_end(set);
    set = r_set(310);
    for (int i = 0; i < 2; i++) {
        r_u8(6);
        r_u64(UINT64_MAX);
        r_bytes("\x01\x02\x03", 3);
        r_u32((uint32_t)-2);
        r_u8(0x80);
        r_u32(EXPORT_TIME);
        r_u64(1700000000123ull);
        r_u64(((uint64_t)(EXPORT_TIME + 2208988800u) << 32) | 0x80000000u);
        r_u64((uint64_t)i << 63);
        r_bytes("\x0a\x00\x00\x01", 4);
        r_bytes(v6, 16);
        r_bytes("\x00\x1a\x2b\x3c\x4d\x5e", 6);
        if (i)
            r_varlen(nasty, sizeof(nasty) - 1);
        else
            r_varlen("eth0", 4);
        r_varlen("\x00\xff", 2);
        r_u16(0xbeef);
        r_varlen("x", 1);
        r_u64(42);
        r_varlen("\x01\x02", 2);
        r_u16(0x0a00);
    }
    r_set_end(set);
    r_end();
    emit("all_types");
}

static void corpus_varlen(void)
{
    static uint8_t big[2000];
    size_t set;

    memset(big, 'v', sizeof(big));
    r_begin(EXPORT_TIME, 0, 1);
    set = r_set(FV_IPFIX_SET_TEMPLATE);
    r_u16(320);
    r_u16(2);
    r_field(56506, 101, FV_IE_VARLEN);
    r_field(0, 95, FV_IE_VARLEN);
    r_set_end(set);
    set = r_set(320);
    r_varlen("", 0);
    r_varlen(big, 254);
    r_varlen(big, 255);
    r_varlen(big, 0);
    r_varlen(big, sizeof(big));
    r_varlen(big, 1);
    r_u8(255); /* the 3-byte form for a short value */
    r_u16(3);
    r_bytes("abc", 3);
    r_varlen("", 0);
    r_set_end(set);
    r_end();
    emit("varlen_edges");

    /* Padding after the last record of a data set and of a template set. */
    r_begin(EXPORT_TIME, 0, 1);
    set = r_set(FV_IPFIX_SET_TEMPLATE);
    r_u16(300);
    r_u16(1);
    r_field(0, 10, 4);
    r_bytes("\0\0\0", 3);
    r_set_end(set);
    set = r_set(300);
    r_u32(1);
    r_u32(2);
    r_bytes("\0\0\0", 3);
    r_set_end(set);
    r_end();
    emit("padding");
}

/* Malformed: one bad message after a good one, so state exists. */
static void corpus_malformed(void)
{
    size_t set;

    r_begin(EXPORT_TIME, 0, 1);
    r_definitions();
    r_end();
    append(r.buf, 10); /* a header cut short */
    emit("bad_truncated_header");

    r_begin(EXPORT_TIME, 0, 1);
    r_data(1);
    fv_store_be16(r.buf, 9);
    fv_store_be16(r.buf + 2, (uint16_t)r.len);
    append(r.buf, r.len);
    emit("bad_version");

    r_begin(EXPORT_TIME, 0, 1);
    r_definitions();
    set = r_set(1);
    r_u32(0);
    r_set_end(set);
    r_end();
    emit("bad_set_id");

    r_begin(EXPORT_TIME, 0, 1);
    r_definitions();
    r_u16(300);
    r_u16(0); /* set length 0 */
    r_end();
    emit("bad_set_length_0");

    r_begin(EXPORT_TIME, 0, 1);
    set = r_set(FV_IPFIX_SET_TEMPLATE);
    r_u16(301);
    r_u16(5); /* five fields, two present */
    r_field(0, 1, 8);
    r_field(0, 2, 8);
    r_set_end(set);
    r_end();
    emit("bad_field_count");

    r_begin(EXPORT_TIME, 0, 1);
    set = r_set(FV_IPFIX_SET_TEMPLATE);
    r_u16(301);
    r_u16(2);
    r_field(0, 1, 0);
    r_field(0, 2, 0);
    r_set_end(set);
    r_end();
    emit("bad_zero_length_template");

    r_begin(EXPORT_TIME, 0, 1);
    set = r_set(FV_IPFIX_SET_TEMPLATE);
    r_u16(301);
    r_u16(FV_IPFIX_MAX_FIELDS + 1);
    for (int i = 0; i < FV_IPFIX_MAX_FIELDS + 1; i++)
        r_field(0, 4, 1);
    r_set_end(set);
    r_end();
    emit("bad_too_many_fields");

    r_begin(EXPORT_TIME, 0, 1);
    set = r_set(FV_IPFIX_SET_OPTIONS_TEMPLATE);
    r_u16(401);
    r_u16(2);
    r_u16(0); /* scope count 0 */
    r_field(0, 149, 4);
    r_field(0, 41, 8);
    r_set_end(set);
    r_end();
    emit("bad_options_scope_0");

    r_begin(EXPORT_TIME, 0, 1);
    r_definitions();
    set = r_set(301);
    r_u16(443);
    r_u8(200); /* 200 bytes announced, 3 present */
    r_bytes("abc", 3);
    r_set_end(set);
    r_end();
    emit("bad_varlen_past_set");

    r_begin(EXPORT_TIME, 0, 1);
    set = r_set(FV_IPFIX_SET_TEMPLATE);
    r_u16(255); /* template id below 256 */
    r_u16(1);
    r_field(0, 1, 8);
    r_set_end(set);
    r_end();
    emit("bad_template_id");
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }
    out_dir = argv[1];
    corpus_agent();
    corpus_templates();
    corpus_types();
    corpus_varlen();
    corpus_malformed();
    printf("%u files written to %s\n", files, out_dir);
    return 0;
}
