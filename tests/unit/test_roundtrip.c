/*
 * test_roundtrip.c - every abstract data type survives encoding with the
 * writer and decoding with a session, with exact integer values and
 * exact JSON.
 */
#include "testutil.h"

#include <math.h>

#define DOMAIN 1

/* One template with a field of each type the registry has, some of them
 * in reduced-size encoding (RFC 7011 section 6.2). */
static const struct fv_ipfix_field all_types_fields[] = {
    TU_F(0, 4, 1),                /* protocolIdentifier, unsigned8 */
    TU_F(0, 7, 2),                /* sourceTransportPort, unsigned16 */
    TU_F(0, 10, 4),               /* ingressInterface, unsigned32 */
    TU_F(0, 1, 8),                /* octetDeltaCount, unsigned64 */
    TU_F(0, 2, 4),                /* packetDeltaCount, unsigned64 in 4 bytes */
    TU_F(0, 85, 2),               /* octetTotalCount, unsigned64 in 2 bytes */
    TU_F(0, 23, 3),               /* postOctetDeltaCount, unsigned64 in 3 bytes */
    TU_F(FV_PEN_ANTREA, 116, 4),  /* ingressNetworkPolicyRulePriority, signed32 */
    TU_F(FV_PEN_ANTREA, 119, 1),  /* egressNetworkPolicyRulePriority, signed32 in 1 byte */
    TU_F(0, 150, 4),              /* flowStartSeconds, dateTimeSeconds */
    TU_F(0, 152, 8),              /* flowStartMilliseconds, dateTimeMilliseconds */
    TU_F(0, 8, 4),                /* sourceIPv4Address */
    TU_F(0, 27, 16),              /* sourceIPv6Address */
    TU_F(0, 56, 6),               /* sourceMacAddress */
    TU_F(0, 82, FV_IE_VARLEN),    /* interfaceName, string */
    TU_F(0, 95, FV_IE_VARLEN),    /* applicationId, octetArray */
    TU_F(FV_PEN_ANTREA, 159, 16), /* sourcePodUUID, fixed-length octetArray */
};

static const struct fv_ipfix_template_def all_types = {
    300, sizeof(all_types_fields) / sizeof(all_types_fields[0]), all_types_fields};

static const uint8_t v6[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
static const uint8_t mac[6] = {0x00, 0x1a, 0x2b, 0x3c, 0x4d, 0x5e};
static const uint8_t uuid[16] = {0xde, 0xad, 0xbe, 0xef, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};

static void put_all_types(struct fv_ipfix_writer *w, int variant)
{
    const uint8_t v4[4] = {10, 0, 0, (uint8_t)(1 + variant)};
    const uint8_t appid[3] = {0x01, 0x02, 0xff};

    fv_ipfix_writer_record_begin(w, 300);
    fv_ipfix_put_u8(w, variant ? 255 : 6);
    fv_ipfix_put_u16(w, variant ? 65535 : 443);
    fv_ipfix_put_u32(w, variant ? 0xffffffffu : 4000000000u);
    fv_ipfix_put_u64(w, variant ? UINT64_MAX : 0);
    fv_ipfix_put_u32(w, 123456789);
    fv_ipfix_put_u16(w, 65535);
    fv_ipfix_put_bytes(w, "\x01\x02\x03", 3);
    fv_ipfix_put_u32(w, variant ? (uint32_t)INT32_MIN : (uint32_t)-2);
    fv_ipfix_put_u8(w, variant ? 0x7f : 0x80);
    fv_ipfix_put_u32(w, 1700000000u);
    fv_ipfix_put_u64(w, 1700000000123ull);
    fv_ipfix_put_bytes(w, v4, 4);
    fv_ipfix_put_bytes(w, v6, 16);
    fv_ipfix_put_bytes(w, mac, 6);
    fv_ipfix_put_varlen(w, "eth0", 4);
    fv_ipfix_put_varlen(w, appid, 3);
    fv_ipfix_put_bytes(w, uuid, 16);
    assert_int_equal(fv_ipfix_writer_record_end(w), 0);
}

static void test_every_registry_type_round_trips_to_exact_json(void **state)
{
    static uint8_t buf[FV_IPFIX_MAX_MESSAGE];
    struct fv_ipfix_writer w;
    struct fv_ipfix_session s;
    struct tu_capture cap;
    size_t len;

    (void)state;
    fv_ipfix_writer_init(&w, buf, sizeof(buf));
    assert_int_equal(fv_ipfix_writer_add_template(&w, &all_types), 0);
    put_all_types(&w, 0);
    put_all_types(&w, 1);
    len = fv_ipfix_writer_finish(&w, 1700000000, 0, DOMAIN);

    tu_capture_init(&cap);
    fv_ipfix_session_init(&s, FV_IPFIX_UDP_TEMPLATE_LIFETIME_S);
    assert_int_equal(tu_decode_bytes(&s, buf, len, 1000, &cap), 0);
    assert_int_equal(cap.records, 2);
    assert_string_equal(
        cap.json.p,
        "{\"protocolIdentifier\":6,\"sourceTransportPort\":443,\"ingressInterface\":4000000000,"
        "\"octetDeltaCount\":0,\"packetDeltaCount\":123456789,\"octetTotalCount\":65535,"
        "\"postOctetDeltaCount\":66051,\"ingressNetworkPolicyRulePriority\":-2,"
        "\"egressNetworkPolicyRulePriority\":-128,\"flowStartSeconds\":1700000000,"
        "\"flowStartMilliseconds\":1700000000123,\"sourceIPv4Address\":\"10.0.0.1\","
        "\"sourceIPv6Address\":\"2001:db8::1\",\"sourceMacAddress\":\"00:1a:2b:3c:4d:5e\","
        "\"interfaceName\":\"eth0\",\"applicationId\":\"0102ff\","
        "\"sourcePodUUID\":\"deadbeef000102030405060708090a0b\"}\n"
        "{\"protocolIdentifier\":255,\"sourceTransportPort\":65535,"
        "\"ingressInterface\":4294967295,\"octetDeltaCount\":18446744073709551615,"
        "\"packetDeltaCount\":123456789,\"octetTotalCount\":65535,"
        "\"postOctetDeltaCount\":66051,\"ingressNetworkPolicyRulePriority\":-2147483648,"
        "\"egressNetworkPolicyRulePriority\":127,\"flowStartSeconds\":1700000000,"
        "\"flowStartMilliseconds\":1700000000123,\"sourceIPv4Address\":\"10.0.0.2\","
        "\"sourceIPv6Address\":\"2001:db8::1\",\"sourceMacAddress\":\"00:1a:2b:3c:4d:5e\","
        "\"interfaceName\":\"eth0\",\"applicationId\":\"0102ff\","
        "\"sourcePodUUID\":\"deadbeef000102030405060708090a0b\"}\n");

    /* fv_ipfix_value_uint() of each integer field, at its encoded length. */
    assert_int_equal(cap.uint[0][0], 6);
    assert_int_equal(cap.uint[0][1], 443);
    assert_int_equal(cap.uint[0][2], 4000000000u);
    assert_int_equal(cap.uint[1][3], UINT64_MAX);
    assert_int_equal(cap.len[0][4], 4);
    assert_int_equal(cap.uint[0][4], 123456789);
    assert_int_equal(cap.len[0][5], 2);
    assert_int_equal(cap.uint[0][5], 65535);
    assert_int_equal(cap.len[0][6], 3);
    assert_int_equal(cap.uint[0][6], 0x010203);
    assert_int_equal(cap.uint[0][7], 0xfffffffeu);
    assert_int_equal(cap.uint[0][8], 0x80);
    assert_int_equal(cap.uint[0][9], 1700000000u);
    assert_int_equal(cap.uint[0][10], 1700000000123ull);
    assert_int_equal(cap.len[0][14], 4);
    assert_int_equal(cap.len[0][15], 3);

    assert_int_equal(tu_stats(&s, DOMAIN)->records, 2);
    assert_int_equal(tu_stats(&s, DOMAIN)->templates, 1);
    assert_int_equal(tu_stats(&s, DOMAIN)->malformed, 0);
    fv_ipfix_session_fini(&s);
    tu_capture_fini(&cap);
}

static void test_value_uint_reads_every_reduced_length(void **state)
{
    const uint8_t b[9] = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09};
    const uint64_t want[9] = {0,
                              0x01,
                              0x0102,
                              0x010203,
                              0x01020304,
                              0x0102030405,
                              0x010203040506,
                              0x01020304050607,
                              0x0102030405060708};

    (void)state;
    for (uint16_t n = 0; n <= 8; n++) {
        struct fv_ipfix_value v = {b, n};
        assert_int_equal(fv_ipfix_value_uint(&v), want[n]);
    }
    /* Longer than any integer: not a number. */
    struct fv_ipfix_value v9 = {b, 9};
    assert_int_equal(fv_ipfix_value_uint(&v9), 0);
}

/* Formats one value of a field whose registry entry is `ie`. */
static const char *fmt_json(struct fv_sbuf *sb, const struct fv_ie *ie, const void *p, uint16_t n)
{
    struct fv_ipfix_field f = {ie ? ie->pen : 0, ie ? ie->id : 999, n, ie};
    struct fv_ipfix_value v = {p, n};

    fv_sbuf_reset(sb);
    assert_int_equal(fv_ipfix_fmt_json_value(sb, &f, &v), 0);
    return sb->p;
}

static const char *fmt_text(struct fv_sbuf *sb, const struct fv_ie *ie, const void *p, uint16_t n)
{
    struct fv_ipfix_field f = {ie ? ie->pen : 0, ie ? ie->id : 999, n, ie};
    struct fv_ipfix_value v = {p, n};

    fv_sbuf_reset(sb);
    assert_int_equal(fv_ipfix_fmt_text_value(sb, &f, &v), 0);
    return sb->p;
}

/* The registry has no float or boolean elements, so these types are
 * checked through the formatter with stand-in registry entries, after a
 * trip through the writer and the decoder as unknown elements. */
static const struct fv_ie ie_f32 = {0, 60001, FV_IE_F32, 4, "testFloat32", 11};
static const struct fv_ie ie_f64 = {0, 60002, FV_IE_F64, 8, "testFloat64", 11};
static const struct fv_ie ie_bool = {0, 60003, FV_IE_BOOL, 1, "testBoolean", 11};

static const struct fv_ipfix_field float_bool_fields[] = {TU_F(0, 30001, 4), TU_F(0, 30002, 8),
                                                          TU_F(0, 30003, 1), TU_F(0, 30003, 1)};
static const struct fv_ipfix_template_def float_bool = {301, 4, float_bool_fields};

struct float_bool_ctx {
    struct fv_sbuf out;
    unsigned records;
};

static int float_bool_record(void *ctx, const struct fv_ipfix_msg *msg,
                             const struct fv_ipfix_rec *rec, const struct fv_ipfix_value *values)
{
    static const struct fv_ie *const as[4] = {&ie_f32, &ie_f64, &ie_bool, &ie_bool};
    struct float_bool_ctx *c = ctx;

    (void)msg;
    for (uint16_t i = 0; i < rec->tmpl->field_count; i++) {
        struct fv_ipfix_field f = rec->tmpl->fields[i];
        assert_null(f.ie); /* unknown to the registry */
        f.ie = as[i];
        fv_sbuf_putc(&c->out, i ? ',' : '{');
        fv_ipfix_fmt_name(&c->out, &f);
        fv_sbuf_putc(&c->out, ':');
        assert_int_equal(fv_ipfix_fmt_json_value(&c->out, &f, &values[i]), 0);
    }
    fv_sbuf_puts(&c->out, "}\n");
    c->records++;
    return 0;
}

static void put_float_bool(struct fv_ipfix_writer *w, float f, double d, uint8_t b1, uint8_t b2)
{
    uint32_t fu;
    uint64_t du;

    /* The writer has no float helpers: floats travel as their IEEE bits. */
    memcpy(&fu, &f, 4);
    memcpy(&du, &d, 8);
    fv_ipfix_writer_record_begin(w, 301);
    fv_ipfix_put_u32(w, fu);
    fv_ipfix_put_u64(w, du);
    fv_ipfix_put_u8(w, b1);
    fv_ipfix_put_u8(w, b2);
    assert_int_equal(fv_ipfix_writer_record_end(w), 0);
}

static void test_float_and_boolean_values_round_trip(void **state)
{
    uint8_t buf[512];
    struct fv_ipfix_writer w;
    struct fv_ipfix_session s;
    struct float_bool_ctx c = {.records = 0};
    struct fv_ipfix_handler h = {.on_record = float_bool_record, .ctx = &c};
    size_t len;

    (void)state;
    fv_sbuf_init(&c.out, 4096);
    fv_ipfix_writer_init(&w, buf, sizeof(buf));
    assert_int_equal(fv_ipfix_writer_add_template(&w, &float_bool), 0);
    put_float_bool(&w, 1.5f, 0.1, 1, 2);
    put_float_bool(&w, -0.25f, -1e300, 2, 3);
    len = fv_ipfix_writer_finish(&w, 0, 0, DOMAIN);
    fv_ipfix_session_init(&s, 0);
    assert_int_equal(fv_ipfix_session_decode(&s, buf, len, 0, &h), 0);
    assert_int_equal(c.records, 2);
    /* A boolean other than 1 (true) or 2 (false) is shown as hex. */
    assert_string_equal(c.out.p, "{testFloat32:1.5,testFloat64:0.10000000000000001,"
                                 "testBoolean:true,testBoolean:false}\n"
                                 "{testFloat32:-0.25,testFloat64:-1.0000000000000001e+300,"
                                 "testBoolean:false,testBoolean:\"03\"}\n");
    fv_ipfix_session_fini(&s);
    fv_sbuf_fini(&c.out);
}

static void test_non_finite_floats_format_as_json_strings(void **state)
{
    struct fv_sbuf sb;
    uint8_t b[8];

    (void)state;
    fv_sbuf_init(&sb, 1024);
    /* JSON has no NaN or infinity literals: bare nan/inf would make the
     * whole record unparseable. */
    fv_store_be32(b, 0x7fc00000u);
    assert_string_equal(fmt_json(&sb, &ie_f32, b, 4), "\"nan\"");
    fv_store_be32(b, 0xff800000u);
    assert_string_equal(fmt_json(&sb, &ie_f32, b, 4), "\"-inf\"");
    fv_store_be64(b, 0x7ff0000000000000ull);
    assert_string_equal(fmt_json(&sb, &ie_f64, b, 8), "\"inf\"");
    assert_string_equal(fmt_text(&sb, &ie_f64, b, 8), "inf");
    fv_sbuf_fini(&sb);
}

static void test_value_with_length_unfit_for_its_type_formats_as_hex(void **state)
{
    const uint8_t b[16] = {0x0a, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07};
    struct fv_sbuf sb;

    (void)state;
    fv_sbuf_init(&sb, 1024);
    assert_string_equal(fmt_json(&sb, fv_ie_find(0, 8), b, 2), "\"0a00\"");      /* ipv4 */
    assert_string_equal(fmt_json(&sb, fv_ie_find(0, 27), b, 4), "\"0a000102\""); /* ipv6 */
    assert_string_equal(fmt_json(&sb, fv_ie_find(0, 56), b, 3), "\"0a0001\"");   /* mac */
    assert_string_equal(fmt_json(&sb, fv_ie_find(0, 1), b, 9), "\"0a000102030405060"
                                                               "7\"");
    assert_string_equal(fmt_json(&sb, fv_ie_find(0, 1), b, 0), "\"\"");
    assert_string_equal(fmt_json(&sb, &ie_f32, b, 2), "\"0a00\"");
    assert_string_equal(fmt_json(&sb, &ie_bool, b, 2), "\"0a00\"");
    /* Text rendering drops only the quotes. */
    assert_string_equal(fmt_text(&sb, fv_ie_find(0, 8), b, 2), "0a00");
    fv_sbuf_fini(&sb);
}

static void test_text_values_are_unquoted_but_escaped(void **state)
{
    struct fv_sbuf sb;
    const uint8_t v4[4] = {192, 168, 1, 7};

    (void)state;
    fv_sbuf_init(&sb, 1024);
    assert_string_equal(fmt_text(&sb, fv_ie_find(0, 82), "a\"b\n", 4), "a\\\"b\\u000a");
    assert_string_equal(fmt_json(&sb, fv_ie_find(0, 82), "a\"b\n", 4), "\"a\\\"b\\u000a\"");
    assert_string_equal(fmt_text(&sb, fv_ie_find(0, 8), v4, 4), "192.168.1.7");
    assert_string_equal(fmt_text(&sb, fv_ie_find(0, 1), "\x00\x00\x01\x00", 4), "256");
    fv_sbuf_fini(&sb);
}

/* dateTimeMicroseconds and dateTimeNanoseconds are NTP timestamps (RFC
 * 7011 section 6.1.9: seconds since 1900 and a binary fraction), which
 * JSON shows as micro- and nanoseconds since the Unix epoch. */
static void test_ntp_date_times_format_as_unix_micro_and_nanoseconds(void **state)
{
    const uint32_t ntp_unix_offset = 2208988800u;
    struct fv_sbuf sb;
    uint8_t b[8];

    (void)state;
    fv_sbuf_init(&sb, 1024);
    /* 1700000000.5 s since the Unix epoch. */
    fv_store_be32(b, 1700000000u + ntp_unix_offset);
    fv_store_be32(b + 4, 0x80000000u);
    assert_string_equal(fmt_json(&sb, fv_ie_find(0, 154), b, 8), "1700000000500000");
    assert_string_equal(fmt_json(&sb, fv_ie_find(0, 156), b, 8), "1700000000500000000");
    /* The Unix epoch itself, and a time before it. */
    fv_store_be32(b, ntp_unix_offset);
    fv_store_be32(b + 4, 0);
    assert_string_equal(fmt_json(&sb, fv_ie_find(0, 325), b, 8), "0");
    fv_store_be32(b, ntp_unix_offset - 1);
    assert_string_equal(fmt_json(&sb, fv_ie_find(0, 324), b, 8), "-1000000");
    /* Not 8 bytes: not a timestamp. */
    assert_string_equal(fmt_json(&sb, fv_ie_find(0, 154), b, 4), "\"83aa7e7f\"");
    fv_sbuf_fini(&sb);
}

/* A record that does not fit the caller's buffer is an error the caller
 * sees, and the buffer never grows past its maximum. */
static void test_json_record_past_the_buffer_max_reports_elimit(void **state)
{
    uint8_t buf[512];
    struct fv_ipfix_writer w;
    struct fv_ipfix_msg msg;
    struct fv_ipfix_set_iter sit;
    struct fv_ipfix_set set;
    struct fv_ipfix_template *t;
    struct fv_ipfix_rec_iter rit;
    struct fv_ipfix_rec rec;
    struct fv_ipfix_value values[32];
    struct fv_sbuf sb;
    uint16_t withdraw_id;
    size_t len, used;

    (void)state;
    fv_ipfix_writer_init(&w, buf, sizeof(buf));
    assert_int_equal(fv_ipfix_writer_add_template(&w, &all_types), 0);
    put_all_types(&w, 0);
    len = fv_ipfix_writer_finish(&w, 0, 0, DOMAIN);

    /* Decode by hand with the iterators this time. */
    assert_int_equal(fv_ipfix_msg_open(buf, len, &msg), 0);
    fv_ipfix_set_iter_init(&sit, &msg);
    assert_int_equal(fv_ipfix_set_iter_next(&sit, &set), 0);
    assert_int_equal(
        fv_ipfix_template_parse(set.body, set.length - 4, false, &t, &withdraw_id, &used), 0);
    assert_int_equal(fv_ipfix_set_iter_next(&sit, &set), 0);
    fv_ipfix_rec_iter_init(&rit, t, &set);
    assert_int_equal(fv_ipfix_rec_iter_next(&rit, &rec, values), 0);
    assert_int_equal(fv_ipfix_rec_iter_next(&rit, &rec, NULL), -FV_EEND);
    assert_int_equal(fv_ipfix_set_iter_next(&sit, &set), -FV_EEND);

    fv_sbuf_init(&sb, 100);
    assert_int_equal(fv_ipfix_fmt_json_record(&sb, &rec, values), -FV_ELIMIT);
    assert_true(sb.len <= 100);
    fv_sbuf_fini(&sb);
    fv_sbuf_init(&sb, 1 << 16);
    assert_int_equal(fv_ipfix_fmt_json_record(&sb, &rec, values), 0);
    assert_memory_equal(sb.p, "{\"protocolIdentifier\":6,", 24);
    fv_sbuf_fini(&sb);
    free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_registry_type_round_trips_to_exact_json),
        cmocka_unit_test(test_value_uint_reads_every_reduced_length),
        cmocka_unit_test(test_float_and_boolean_values_round_trip),
        cmocka_unit_test(test_non_finite_floats_format_as_json_strings),
        cmocka_unit_test(test_value_with_length_unfit_for_its_type_formats_as_hex),
        cmocka_unit_test(test_text_values_are_unquoted_but_escaped),
        cmocka_unit_test(test_ntp_date_times_format_as_unix_micro_and_nanoseconds),
        cmocka_unit_test(test_json_record_past_the_buffer_max_reports_elimit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
