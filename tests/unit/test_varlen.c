/*
 * test_varlen.c - variable-length fields (RFC 7011 section 7): the 1-byte
 * length below 255, the 3-byte form (255 and a 16-bit length) from 255
 * on, empty values, and the largest value a message can carry.
 */
#include "testutil.h"

#define DOMAIN 3
#define TMPL 310

/* applicationId (octetArray) so that any bytes come back as hex. */
static const struct fv_ipfix_field octets_field[] = {TU_F(0, 95, FV_IE_VARLEN)};
static const struct fv_ipfix_template_def octets_tmpl = {TMPL, 1, octets_field};

static uint8_t buf[FV_IPFIX_MAX_MESSAGE];
static uint8_t value[FV_IPFIX_MAX_MESSAGE];

/* Writes one data record holding a value of n bytes (no template in the
 * message) and returns the message length, or 0 when it did not fit. */
static size_t write_value(size_t n, size_t cap)
{
    struct fv_ipfix_writer w;

    for (size_t i = 0; i < n; i++)
        value[i] = (uint8_t)(i * 7 + 1);
    fv_ipfix_writer_init(&w, buf, cap);
    fv_ipfix_writer_record_begin(&w, TMPL);
    fv_ipfix_put_varlen(&w, value, n);
    if (fv_ipfix_writer_record_end(&w) < 0)
        return 0;
    return fv_ipfix_writer_finish(&w, 0, 0, DOMAIN);
}

/* Decodes the template and then the message in buf; checks that the one
 * record's value is `value[0..n)`. */
static void decode_value(size_t len, size_t n)
{
    static uint8_t tbuf[64];
    struct fv_ipfix_writer w;
    struct fv_ipfix_session s;
    struct tu_capture cap;
    size_t tlen;

    fv_ipfix_writer_init(&w, tbuf, sizeof(tbuf));
    assert_int_equal(fv_ipfix_writer_add_template(&w, &octets_tmpl), 0);
    tlen = fv_ipfix_writer_finish(&w, 0, 0, DOMAIN);

    tu_capture_init(&cap);
    fv_ipfix_session_init(&s, 0);
    assert_int_equal(tu_decode_bytes(&s, tbuf, tlen, 0, &cap), 0);
    assert_int_equal(tu_decode_bytes(&s, buf, len, 0, &cap), 0);
    assert_int_equal(cap.records, 1);
    assert_int_equal(cap.len[0][0], n);

    /* The JSON holds the value as hex, which pins down every byte. */
    char *hex = malloc(2 * n + 1);
    assert_non_null(hex);
    tu_hex(value, n, hex);
    assert_int_equal(cap.json.len, strlen("{\"applicationId\":\"\"}\n") + 2 * n);
    assert_memory_equal(cap.json.p, "{\"applicationId\":\"", 18);
    assert_memory_equal(cap.json.p + 18, hex, 2 * n);
    assert_string_equal(cap.json.p + 18 + 2 * n, "\"}\n");
    free(hex);
    fv_ipfix_session_fini(&s);
    tu_capture_fini(&cap);
}

static void test_varlen_0_uses_one_byte_prefix(void **state)
{
    size_t len;

    (void)state;
    len = write_value(0, sizeof(buf));
    assert_int_equal(len, FV_IPFIX_HEADER_LEN + 4 + 1);
    assert_int_equal(buf[FV_IPFIX_HEADER_LEN + 4], 0);
    decode_value(len, 0);
}

static void test_varlen_254_uses_one_byte_prefix(void **state)
{
    size_t len;

    (void)state;
    len = write_value(254, sizeof(buf));
    assert_int_equal(len, FV_IPFIX_HEADER_LEN + 4 + 1 + 254);
    assert_int_equal(buf[FV_IPFIX_HEADER_LEN + 4], 254);
    decode_value(len, 254);
}

static void test_varlen_255_uses_three_byte_prefix(void **state)
{
    size_t len;

    (void)state;
    len = write_value(255, sizeof(buf));
    assert_int_equal(len, FV_IPFIX_HEADER_LEN + 4 + 3 + 255);
    assert_int_equal(buf[FV_IPFIX_HEADER_LEN + 4], 255);
    assert_int_equal(fv_load_be16(buf + FV_IPFIX_HEADER_LEN + 5), 255);
    decode_value(len, 255);
}

static void test_varlen_largest_value_fills_a_65535_byte_message(void **state)
{
    /* Header, set header and the 3-byte prefix leave 65512 bytes. */
    const size_t largest = FV_IPFIX_MAX_MESSAGE - FV_IPFIX_HEADER_LEN - 4 - 3;
    size_t len;

    (void)state;
    len = write_value(largest, sizeof(buf));
    assert_int_equal(len, FV_IPFIX_MAX_MESSAGE);
    assert_int_equal(fv_load_be16(buf + 2), FV_IPFIX_MAX_MESSAGE);
    assert_int_equal(fv_load_be16(buf + FV_IPFIX_HEADER_LEN + 2), FV_IPFIX_MAX_MESSAGE - 16);
    assert_int_equal(fv_load_be16(buf + FV_IPFIX_HEADER_LEN + 5), largest);
    decode_value(len, largest);
}

static void test_varlen_one_byte_too_large_for_message_is_rolled_back(void **state)
{
    const size_t too_large = FV_IPFIX_MAX_MESSAGE - FV_IPFIX_HEADER_LEN - 4 - 3 + 1;

    (void)state;
    assert_int_equal(write_value(too_large, sizeof(buf)), 0);
}

static void test_varlen_longer_than_65535_overflows_the_record(void **state)
{
    static uint8_t big[70000];
    struct fv_ipfix_writer w;

    (void)state;
    fv_ipfix_writer_init(&w, buf, sizeof(buf));
    fv_ipfix_writer_record_begin(&w, TMPL);
    fv_ipfix_put_varlen(&w, big, sizeof(big));
    assert_int_equal(fv_ipfix_writer_record_end(&w), -FV_ENOSPACE);
    assert_int_equal(fv_ipfix_writer_finish(&w, 0, 0, DOMAIN), FV_IPFIX_HEADER_LEN);
}

/* RFC 7011 section 7 allows the 3-byte form for short values too. */
static void test_three_byte_prefix_for_short_value_is_accepted(void **state)
{
    struct fv_ipfix_session s;
    struct tu_capture cap;
    struct tu_msg m;
    size_t set;

    (void)state;
    tu_msg_begin(&m, 0, DOMAIN);
    set = tu_set_begin(&m, FV_IPFIX_SET_TEMPLATE);
    tu_u16(&m, TMPL);
    tu_u16(&m, 2);
    tu_field(&m, 0, 82, FV_IE_VARLEN); /* interfaceName */
    tu_field(&m, 0, 4, 1);             /* protocolIdentifier */
    tu_set_end(&m, set);
    set = tu_set_begin(&m, TMPL);
    tu_bytes(&m, "\xff\x00\003abc", 6);
    tu_u8(&m, 17);
    tu_bytes(&m, "\xff\x00\x00", 3); /* empty, in the long form */
    tu_u8(&m, 6);
    tu_set_end(&m, set);
    tu_msg_end(&m);

    tu_capture_init(&cap);
    fv_ipfix_session_init(&s, 0);
    assert_int_equal(tu_decode(&s, &m, 0, &cap), 0);
    assert_string_equal(cap.json.p, "{\"interfaceName\":\"abc\",\"protocolIdentifier\":17}\n"
                                    "{\"interfaceName\":\"\",\"protocolIdentifier\":6}\n");
    fv_ipfix_session_fini(&s);
    tu_capture_fini(&cap);
}

static void test_varlen_fields_mixed_with_fixed_fields_keep_their_order(void **state)
{
    static const struct fv_ipfix_field fields[] = {
        TU_F(0, 7, 2), TU_F(FV_PEN_ANTREA, 101, FV_IE_VARLEN), TU_F(0, 11, 2),
        TU_F(FV_PEN_ANTREA, 100, FV_IE_VARLEN)};
    static const struct fv_ipfix_template_def t = {311, 4, fields};
    static char ns[300];
    struct fv_ipfix_writer w;
    struct fv_ipfix_session s;
    struct tu_capture cap;
    size_t len;

    (void)state;
    memset(ns, 'n', sizeof(ns));
    fv_ipfix_writer_init(&w, buf, sizeof(buf));
    assert_int_equal(fv_ipfix_writer_add_template(&w, &t), 0);
    fv_ipfix_writer_record_begin(&w, 311);
    fv_ipfix_put_u16(&w, 1234);
    fv_ipfix_put_varlen(&w, "pod-a", 5);
    fv_ipfix_put_u16(&w, 80);
    fv_ipfix_put_varlen(&w, ns, 300);
    assert_int_equal(fv_ipfix_writer_record_end(&w), 0);
    len = fv_ipfix_writer_finish(&w, 0, 0, DOMAIN);

    tu_capture_init(&cap);
    fv_ipfix_session_init(&s, 0);
    assert_int_equal(tu_decode_bytes(&s, buf, len, 0, &cap), 0);
    assert_int_equal(cap.records, 1);
    assert_int_equal(cap.uint[0][0], 1234);
    assert_int_equal(cap.len[0][1], 5);
    assert_int_equal(cap.uint[0][2], 80);
    assert_int_equal(cap.len[0][3], 300);
    assert_memory_equal(cap.json.p,
                        "{\"sourceTransportPort\":1234,\"sourcePodName\":\"pod-a\","
                        "\"destinationTransportPort\":80,"
                        "\"sourcePodNamespace\":\"nnn",
                        strlen("{\"sourceTransportPort\":1234,\"sourcePodName\":\"pod-a\","
                               "\"destinationTransportPort\":80,\"sourcePodNamespace\":\"nnn"));
    fv_ipfix_session_fini(&s);
    tu_capture_fini(&cap);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_varlen_0_uses_one_byte_prefix),
        cmocka_unit_test(test_varlen_254_uses_one_byte_prefix),
        cmocka_unit_test(test_varlen_255_uses_three_byte_prefix),
        cmocka_unit_test(test_varlen_largest_value_fills_a_65535_byte_message),
        cmocka_unit_test(test_varlen_one_byte_too_large_for_message_is_rolled_back),
        cmocka_unit_test(test_varlen_longer_than_65535_overflows_the_record),
        cmocka_unit_test(test_three_byte_prefix_for_short_value_is_accepted),
        cmocka_unit_test(test_varlen_fields_mixed_with_fixed_fields_keep_their_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
