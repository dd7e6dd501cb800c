/*
 * test_sets.c - messages with many records and many sets, the writer's
 * size budget (MTU) and its rollback, and set padding.
 */
#include "testutil.h"

#include <stdio.h>

#define DOMAIN 5

static const struct fv_ipfix_field u64_field[] = {TU_F(0, 1, 8)}; /* octetDeltaCount */
static const struct fv_ipfix_template_def t_u64 = {300, 1, u64_field};

static const struct fv_ipfix_field port_name_fields[] = {
    TU_F(0, 7, 2), TU_F(FV_PEN_ANTREA, 101, FV_IE_VARLEN)}; /* sourcePodName */
static const struct fv_ipfix_template_def t_port_name = {301, 2, port_name_fields};

static void put_u64_record(struct fv_ipfix_writer *w, uint64_t v, int want)
{
    fv_ipfix_writer_record_begin(w, 300);
    fv_ipfix_put_u64(w, v);
    assert_int_equal(fv_ipfix_writer_record_end(w), want);
}

static void put_port_name_record(struct fv_ipfix_writer *w, uint16_t port, const char *name)
{
    fv_ipfix_writer_record_begin(w, 301);
    fv_ipfix_put_u16(w, port);
    fv_ipfix_put_varlen(w, name, strlen(name));
    assert_int_equal(fv_ipfix_writer_record_end(w), 0);
}

static void test_many_records_share_one_data_set(void **state)
{
    static uint8_t buf[FV_IPFIX_MAX_MESSAGE];
    struct fv_ipfix_writer w;
    struct fv_ipfix_session s;
    struct tu_capture cap;
    char line[64];
    size_t len, off = 0;
    uint16_t id = 0;

    (void)state;
    fv_ipfix_writer_init(&w, buf, sizeof(buf));
    assert_int_equal(fv_ipfix_writer_add_template(&w, &t_u64), 0);
    for (uint64_t i = 0; i < 1000; i++)
        put_u64_record(&w, i * 1000003, 0);
    assert_int_equal(w.records, 1000);
    len = fv_ipfix_writer_finish(&w, 0, 0, DOMAIN);
    assert_int_equal(len, 16 + 12 + 4 + 1000 * 8);
    assert_int_equal(tu_count_sets(buf, len, 1, &id), 2);
    assert_int_equal(id, 300);

    tu_capture_init(&cap);
    fv_ipfix_session_init(&s, 0);
    assert_int_equal(tu_decode_bytes(&s, buf, len, 0, &cap), 0);
    assert_int_equal(cap.records, 1000);
    assert_int_equal(tu_stats(&s, DOMAIN)->records, 1000);
    for (unsigned i = 0; i < 1000; i++) {
        int n = snprintf(line, sizeof(line), "{\"octetDeltaCount\":%llu}\n",
                         (unsigned long long)i * 1000003);
        assert_memory_equal(cap.json.p + off, line, (size_t)n);
        off += (size_t)n;
        if (i < TU_MAX_RECORDS)
            assert_int_equal(cap.uint[i][0], (uint64_t)i * 1000003);
    }
    assert_int_equal(off, cap.json.len);
    fv_ipfix_session_fini(&s);
    tu_capture_fini(&cap);
}

static void test_template_set_and_two_data_sets_in_one_message(void **state)
{
    uint8_t buf[1400];
    struct fv_ipfix_writer w;
    struct fv_ipfix_session s;
    struct tu_capture cap;
    size_t len;
    uint16_t id;

    (void)state;
    fv_ipfix_writer_init(&w, buf, sizeof(buf));
    assert_int_equal(fv_ipfix_writer_add_template(&w, &t_u64), 0);
    assert_int_equal(fv_ipfix_writer_add_template(&w, &t_port_name), 0);
    put_u64_record(&w, 1, 0);
    put_u64_record(&w, 2, 0);
    put_u64_record(&w, 3, 0);
    put_port_name_record(&w, 53, "dns");
    put_port_name_record(&w, 443, "web-0");
    len = fv_ipfix_writer_finish(&w, 1700000000, 0, DOMAIN);

    /* Both templates share one template set; each template its data set. */
    assert_int_equal(tu_count_sets(buf, len, 0, &id), 3);
    assert_int_equal(id, FV_IPFIX_SET_TEMPLATE);
    tu_count_sets(buf, len, 1, &id);
    assert_int_equal(id, 300);
    tu_count_sets(buf, len, 2, &id);
    assert_int_equal(id, 301);

    tu_capture_init(&cap);
    fv_ipfix_session_init(&s, 0);
    assert_int_equal(tu_decode_bytes(&s, buf, len, 0, &cap), 0);
    assert_string_equal(cap.json.p, "{\"octetDeltaCount\":1}\n"
                                    "{\"octetDeltaCount\":2}\n"
                                    "{\"octetDeltaCount\":3}\n"
                                    "{\"sourceTransportPort\":53,\"sourcePodName\":\"dns\"}\n"
                                    "{\"sourceTransportPort\":443,\"sourcePodName\":\"web-0\"}\n");
    assert_int_equal(cap.tmpl_id[2], 300);
    assert_int_equal(cap.tmpl_id[3], 301);
    assert_int_equal(tu_stats(&s, DOMAIN)->templates, 2);
    assert_int_equal(tu_stats(&s, DOMAIN)->records, 5);
    assert_int_equal(tu_stats(&s, DOMAIN)->messages, 1);
    fv_ipfix_session_fini(&s);
    tu_capture_fini(&cap);
}

static void test_alternating_templates_open_a_new_set_each_time(void **state)
{
    uint8_t buf[1400];
    struct fv_ipfix_writer w;
    struct fv_ipfix_session s;
    struct tu_capture cap;
    size_t len;
    uint16_t id;

    (void)state;
    fv_ipfix_writer_init(&w, buf, sizeof(buf));
    assert_int_equal(fv_ipfix_writer_add_template(&w, &t_u64), 0);
    assert_int_equal(fv_ipfix_writer_add_template(&w, &t_port_name), 0);
    put_u64_record(&w, 7, 0);
    put_port_name_record(&w, 22, "ssh");
    put_u64_record(&w, 8, 0);
    len = fv_ipfix_writer_finish(&w, 0, 0, DOMAIN);
    assert_int_equal(tu_count_sets(buf, len, 3, &id), 4);
    assert_int_equal(id, 300);

    tu_capture_init(&cap);
    fv_ipfix_session_init(&s, 0);
    assert_int_equal(tu_decode_bytes(&s, buf, len, 0, &cap), 0);
    assert_string_equal(cap.json.p, "{\"octetDeltaCount\":7}\n"
                                    "{\"sourceTransportPort\":22,\"sourcePodName\":\"ssh\"}\n"
                                    "{\"octetDeltaCount\":8}\n");
    fv_ipfix_session_fini(&s);
    tu_capture_fini(&cap);
}

/* Header 16 + template set 12 = 28; data set header 4; 8 records of 8
 * bytes fill a 100-byte budget exactly to 96: the ninth does not fit. */
static void test_record_past_the_mtu_is_rolled_back_and_message_stays_valid(void **state)
{
    uint8_t buf[100];
    struct fv_ipfix_writer w;
    struct fv_ipfix_session s;
    struct tu_capture cap;
    size_t len;

    (void)state;
    fv_ipfix_writer_init(&w, buf, sizeof(buf));
    assert_int_equal(fv_ipfix_writer_add_template(&w, &t_u64), 0);
    for (uint64_t i = 0; i < 8; i++)
        put_u64_record(&w, i, 0);
    assert_int_equal(w.len, 96);
    put_u64_record(&w, 8, -FV_ENOSPACE);
    assert_int_equal(w.len, 96);
    assert_int_equal(w.records, 8);
    /* A record that fails once keeps failing: nothing was left half-written. */
    put_u64_record(&w, 8, -FV_ENOSPACE);
    len = fv_ipfix_writer_finish(&w, 0, 0, DOMAIN);
    assert_int_equal(len, 96);
    assert_int_equal(fv_load_be16(buf + 2), 96);

    tu_capture_init(&cap);
    fv_ipfix_session_init(&s, 0);
    assert_int_equal(tu_decode_bytes(&s, buf, len, 0, &cap), 0);
    assert_int_equal(cap.records, 8);
    assert_int_equal(cap.uint[7][0], 7);
    assert_int_equal(tu_stats(&s, DOMAIN)->malformed, 0);

    /* The caller sends, resets and writes the record into the next message. */
    fv_ipfix_writer_reset(&w);
    put_u64_record(&w, 8, 0);
    len = fv_ipfix_writer_finish(&w, 0, 8, DOMAIN);
    assert_int_equal(len, 16 + 4 + 8);
    tu_capture_reset(&cap);
    assert_int_equal(tu_decode_bytes(&s, buf, len, 0, &cap), 0);
    assert_string_equal(cap.json.p, "{\"octetDeltaCount\":8}\n");
    assert_int_equal(tu_stats(&s, DOMAIN)->lost, 0);
    fv_ipfix_session_fini(&s);
    tu_capture_fini(&cap);
}

/* A set header opened for a record that then does not fit goes away with
 * the record: the message must not end in an empty data set. */
static void test_rolled_back_record_takes_its_new_set_header_with_it(void **state)
{
    uint8_t buf[36];
    struct fv_ipfix_writer w;
    struct fv_ipfix_session s;
    struct tu_capture cap;
    size_t len;

    (void)state;
    fv_ipfix_writer_init(&w, buf, sizeof(buf)); /* 28 + 4 + 8 = 40 > 36 */
    assert_int_equal(fv_ipfix_writer_add_template(&w, &t_u64), 0);
    put_u64_record(&w, 1, -FV_ENOSPACE);
    assert_int_equal(w.len, 28);
    len = fv_ipfix_writer_finish(&w, 0, 0, DOMAIN);
    assert_int_equal(len, 28);
    assert_int_equal(tu_count_sets(buf, len, 0, NULL), 1);

    tu_capture_init(&cap);
    fv_ipfix_session_init(&s, 0);
    assert_int_equal(tu_decode_bytes(&s, buf, len, 0, &cap), 0);
    assert_int_equal(cap.records, 0);
    assert_int_equal(tu_stats(&s, DOMAIN)->templates, 1);
    fv_ipfix_session_fini(&s);
    tu_capture_fini(&cap);
}

static void test_record_whose_set_header_does_not_fit_is_rolled_back(void **state)
{
    uint8_t buf[30];
    struct fv_ipfix_writer w;

    (void)state;
    fv_ipfix_writer_init(&w, buf, sizeof(buf)); /* 28 + 4 > 30 */
    assert_int_equal(fv_ipfix_writer_add_template(&w, &t_u64), 0);
    put_u64_record(&w, 1, -FV_ENOSPACE);
    assert_int_equal(fv_ipfix_writer_finish(&w, 0, 0, DOMAIN), 28);
    assert_int_equal(tu_count_sets(buf, 28, 0, NULL), 1);
}

/* A rolled-back record of another template leaves what was written
 * before it intact; the next record of the first template starts a new
 * set, because opening the rolled-back record's set closed the old one. */
static void test_rollback_keeps_the_previous_set_intact(void **state)
{
    uint8_t buf[52];
    struct fv_ipfix_writer w;
    struct fv_ipfix_session s;
    struct tu_capture cap;
    size_t len;

    (void)state;
    fv_ipfix_writer_init(&w, buf, sizeof(buf));
    assert_int_equal(fv_ipfix_writer_add_template(&w, &t_u64), 0); /* 28 */
    put_u64_record(&w, 1, 0);                                      /* 40 */
    fv_ipfix_writer_record_begin(&w, 301);                         /* 44 */
    fv_ipfix_put_u16(&w, 80);                                      /* 46 */
    fv_ipfix_put_varlen(&w, "long-name", 9);                       /* 56 > 52 */
    assert_int_equal(fv_ipfix_writer_record_end(&w), -FV_ENOSPACE);
    assert_int_equal(w.len, 40);
    put_u64_record(&w, 2, 0); /* 52: a set header and the record */
    len = fv_ipfix_writer_finish(&w, 0, 0, DOMAIN);
    assert_int_equal(len, 52);
    assert_int_equal(tu_count_sets(buf, len, 0, NULL), 3);

    tu_capture_init(&cap);
    fv_ipfix_session_init(&s, 0);
    assert_int_equal(tu_decode_bytes(&s, buf, len, 0, &cap), 0);
    assert_string_equal(cap.json.p, "{\"octetDeltaCount\":1}\n{\"octetDeltaCount\":2}\n");
    fv_ipfix_session_fini(&s);
    tu_capture_fini(&cap);
}

static void test_template_past_the_mtu_is_rolled_back(void **state)
{
    uint8_t buf[40];
    struct fv_ipfix_writer w;

    (void)state;
    fv_ipfix_writer_init(&w, buf, sizeof(buf));
    assert_int_equal(fv_ipfix_writer_add_template(&w, &t_u64), 0); /* 28 */
    put_u64_record(&w, 1, 0);                                      /* 40 */
    /* 301 needs a new template set (4) and 4 + 4 + 8 bytes. */
    assert_int_equal(fv_ipfix_writer_add_template(&w, &t_port_name), -FV_ENOSPACE);
    assert_int_equal(w.len, 40);
    assert_int_equal(fv_ipfix_writer_finish(&w, 0, 0, DOMAIN), 40);
    assert_int_equal(tu_count_sets(buf, 40, 0, NULL), 2);
}

static void test_writer_cap_is_clamped_to_65535(void **state)
{
    static uint8_t buf[100000];
    struct fv_ipfix_writer w;

    (void)state;
    fv_ipfix_writer_init(&w, buf, sizeof(buf));
    assert_int_equal(w.cap, FV_IPFIX_MAX_MESSAGE);
}

/* A template for one 4-byte field and a data set of two records plus
 * `pad` bytes of padding. */
static void build_padded(struct tu_msg *m, size_t pad)
{
    size_t set;

    tu_msg_begin(m, 0, DOMAIN);
    set = tu_set_begin(m, FV_IPFIX_SET_TEMPLATE);
    tu_u16(m, 300);
    tu_u16(m, 1);
    tu_field(m, 0, 10, 4); /* ingressInterface */
    tu_zeros(m, 3);        /* template set padding, shorter than a record header */
    tu_set_end(m, set);
    set = tu_set_begin(m, 300);
    tu_u32(m, 11);
    tu_u32(m, 22);
    tu_zeros(m, pad);
    tu_set_end(m, set);
    tu_msg_end(m);
}

static void test_set_padding_after_the_last_record_is_ignored(void **state)
{
    struct fv_ipfix_session s;
    struct tu_capture cap;
    struct tu_msg m;

    (void)state;
    tu_capture_init(&cap);
    for (size_t pad = 0; pad < 4; pad++) {
        build_padded(&m, pad);
        fv_ipfix_session_init(&s, 0);
        tu_capture_reset(&cap);
        assert_int_equal(tu_decode(&s, &m, 0, &cap), 0);
        assert_string_equal(cap.json.p, "{\"ingressInterface\":11}\n{\"ingressInterface\":22}\n");
        assert_int_equal(tu_stats(&s, DOMAIN)->malformed, 0);
        assert_int_equal(tu_stats(&s, DOMAIN)->messages, 1);
        fv_ipfix_session_fini(&s);
    }
    /* Four bytes are a third record, not padding. */
    build_padded(&m, 4);
    fv_ipfix_session_init(&s, 0);
    tu_capture_reset(&cap);
    assert_int_equal(tu_decode(&s, &m, 0, &cap), 0);
    assert_int_equal(cap.records, 3);
    fv_ipfix_session_fini(&s);
    tu_capture_fini(&cap);
}

static void test_padding_shorter_than_the_shortest_varlen_record_is_ignored(void **state)
{
    struct fv_ipfix_session s;
    struct tu_capture cap;
    struct tu_msg m;
    size_t set;

    (void)state;
    tu_msg_begin(&m, 0, DOMAIN);
    set = tu_set_begin(&m, FV_IPFIX_SET_TEMPLATE);
    tu_u16(&m, 301);
    tu_u16(&m, 2);
    tu_field(&m, 0, 10, 4);            /* ingressInterface */
    tu_field(&m, 0, 82, FV_IE_VARLEN); /* interfaceName: shortest record is 5 bytes */
    tu_set_end(&m, set);
    set = tu_set_begin(&m, 301);
    tu_u32(&m, 1);
    tu_bytes(&m, "\002ab", 3);
    tu_zeros(&m, 4);
    tu_set_end(&m, set);
    tu_msg_end(&m);

    tu_capture_init(&cap);
    fv_ipfix_session_init(&s, 0);
    assert_int_equal(tu_decode(&s, &m, 0, &cap), 0);
    assert_string_equal(cap.json.p, "{\"ingressInterface\":1,\"interfaceName\":\"ab\"}\n");
    fv_ipfix_session_fini(&s);
    tu_capture_fini(&cap);
}

/* Sets are applied in order: a data set before its template's set finds
 * no template, the one after it does. */
static void test_data_set_before_its_template_in_the_message_is_missing(void **state)
{
    struct fv_ipfix_session s;
    struct tu_capture cap;
    struct tu_msg m;
    size_t set;

    (void)state;
    tu_msg_begin(&m, 0, DOMAIN);
    set = tu_set_begin(&m, 300);
    tu_u32(&m, 1);
    tu_set_end(&m, set);
    set = tu_set_begin(&m, FV_IPFIX_SET_TEMPLATE);
    tu_u16(&m, 300);
    tu_u16(&m, 1);
    tu_field(&m, 0, 10, 4);
    tu_set_end(&m, set);
    set = tu_set_begin(&m, 300);
    tu_u32(&m, 2);
    tu_set_end(&m, set);
    tu_msg_end(&m);

    tu_capture_init(&cap);
    fv_ipfix_session_init(&s, 0);
    assert_int_equal(tu_decode(&s, &m, 0, &cap), 0);
    assert_string_equal(cap.json.p, "{\"ingressInterface\":2}\n");
    assert_int_equal(tu_stats(&s, DOMAIN)->missing_template, 1);
    assert_int_equal(tu_stats(&s, DOMAIN)->malformed, 0);
    fv_ipfix_session_fini(&s);
    tu_capture_fini(&cap);
}

static void test_handler_returning_positive_stops_the_message(void **state)
{
    uint8_t buf[200];
    struct fv_ipfix_writer w;
    struct fv_ipfix_session s;
    struct tu_capture cap;
    size_t len;

    (void)state;
    fv_ipfix_writer_init(&w, buf, sizeof(buf));
    assert_int_equal(fv_ipfix_writer_add_template(&w, &t_u64), 0);
    for (uint64_t i = 0; i < 5; i++)
        put_u64_record(&w, i, 0);
    len = fv_ipfix_writer_finish(&w, 0, 0, DOMAIN);

    tu_capture_init(&cap);
    cap.stop_after = 2;
    fv_ipfix_session_init(&s, 0);
    assert_int_equal(tu_decode_bytes(&s, buf, len, 0, &cap), 1);
    assert_int_equal(cap.records, 2);
    assert_int_equal(tu_stats(&s, DOMAIN)->records, 2);
    assert_int_equal(tu_stats(&s, DOMAIN)->messages, 0);
    assert_int_equal(tu_stats(&s, DOMAIN)->malformed, 0);
    fv_ipfix_session_fini(&s);
    tu_capture_fini(&cap);
}

/* Bytes after the header's length are not part of the message. */
static void test_bytes_after_the_message_length_are_not_decoded(void **state)
{
    struct fv_ipfix_session s;
    struct tu_capture cap;
    struct tu_msg m;

    (void)state;
    build_padded(&m, 0);
    tu_bytes(&m, "\xff\xff\xff\xff\xff", 5); /* garbage past the message */

    tu_capture_init(&cap);
    fv_ipfix_session_init(&s, 0);
    assert_int_equal(tu_decode(&s, &m, 0, &cap), 0);
    assert_int_equal(cap.records, 2);
    fv_ipfix_session_fini(&s);
    tu_capture_fini(&cap);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_many_records_share_one_data_set),
        cmocka_unit_test(test_template_set_and_two_data_sets_in_one_message),
        cmocka_unit_test(test_alternating_templates_open_a_new_set_each_time),
        cmocka_unit_test(test_record_past_the_mtu_is_rolled_back_and_message_stays_valid),
        cmocka_unit_test(test_rolled_back_record_takes_its_new_set_header_with_it),
        cmocka_unit_test(test_record_whose_set_header_does_not_fit_is_rolled_back),
        cmocka_unit_test(test_rollback_keeps_the_previous_set_intact),
        cmocka_unit_test(test_template_past_the_mtu_is_rolled_back),
        cmocka_unit_test(test_writer_cap_is_clamped_to_65535),
        cmocka_unit_test(test_set_padding_after_the_last_record_is_ignored),
        cmocka_unit_test(test_padding_shorter_than_the_shortest_varlen_record_is_ignored),
        cmocka_unit_test(test_data_set_before_its_template_in_the_message_is_missing),
        cmocka_unit_test(test_handler_returning_positive_stops_the_message),
        cmocka_unit_test(test_bytes_after_the_message_length_are_not_decoded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
