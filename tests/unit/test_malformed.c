/*
 * test_malformed.c - a table of malformed messages, each rejected with
 * its exact code, counted once in `malformed` of the right domain, with
 * nothing delivered and nothing applied, and the session still usable.
 */
#include "testutil.h"

#define DOMAIN 21
#define TMPL 300 /* defined before every case: ingressInterface, interfaceName */

/* ---- Builders: each writes one whole message ---- */

static void header_only(struct tu_msg *m)
{
    tu_msg_begin(m, 0, DOMAIN);
    tu_msg_end(m);
}

static void truncated_header(struct tu_msg *m)
{
    header_only(m);
    m->len = 10;
}

static void empty_buffer(struct tu_msg *m)
{
    m->len = 0;
}

/* A message with one valid data record, for variants of its header. */
static void one_record(struct tu_msg *m)
{
    size_t set;

    tu_msg_begin(m, 0, DOMAIN);
    set = tu_set_begin(m, TMPL);
    tu_u32(m, 1);
    tu_bytes(m, "\002ok", 3);
    tu_set_end(m, set);
    tu_msg_end(m);
}

static void length_past_buffer(struct tu_msg *m)
{
    one_record(m);
    fv_store_be16(m->buf + 2, (uint16_t)(m->len + 10));
}

static void length_below_16(struct tu_msg *m)
{
    one_record(m);
    fv_store_be16(m->buf + 2, 12);
}

static void length_zero(struct tu_msg *m)
{
    one_record(m);
    fv_store_be16(m->buf + 2, 0);
}

static void version_9(struct tu_msg *m)
{
    one_record(m);
    fv_store_be16(m->buf, 9);
}

static void version_0(struct tu_msg *m)
{
    one_record(m);
    fv_store_be16(m->buf, 0);
}

static void set_length(struct tu_msg *m, uint16_t len)
{
    one_record(m);
    fv_store_be16(m->buf + 18, len);
}

static void set_length_0(struct tu_msg *m)
{
    set_length(m, 0);
}

static void set_length_3(struct tu_msg *m)
{
    set_length(m, 3);
}

static void set_past_message(struct tu_msg *m)
{
    set_length(m, (uint16_t)(m->len - 16 + 1));
}

static void partial_set_header_at_end(struct tu_msg *m)
{
    one_record(m);
    tu_u16(m, TMPL);
    tu_msg_end(m);
}

static void set_id(struct tu_msg *m, uint16_t id)
{
    one_record(m);
    fv_store_be16(m->buf + 16, id);
}

static void set_id_0(struct tu_msg *m)
{
    set_id(m, 0);
}

static void set_id_1(struct tu_msg *m)
{
    set_id(m, 1);
}

static void set_id_4(struct tu_msg *m)
{
    set_id(m, 4);
}

static void set_id_255(struct tu_msg *m)
{
    set_id(m, 255);
}

/* A message whose only set is a template set (or options template set)
 * holding what `body` writes. */
static void template_set(struct tu_msg *m, uint16_t id, void (*body)(struct tu_msg *m))
{
    size_t set;

    tu_msg_begin(m, 0, DOMAIN);
    set = tu_set_begin(m, id);
    body(m);
    tu_set_end(m, set);
    tu_msg_end(m);
}

static void all_fields_length_0_body(struct tu_msg *m)
{
    tu_u16(m, 301);
    tu_u16(m, 2);
    tu_field(m, 0, 1, 0);
    tu_field(m, 0, 2, 0);
}

static void zero_length_template(struct tu_msg *m)
{
    template_set(m, FV_IPFIX_SET_TEMPLATE, all_fields_length_0_body);
}

static void count_lies_body(struct tu_msg *m)
{
    tu_u16(m, 301);
    tu_u16(m, 5); /* five fields announced, two present */
    tu_field(m, 0, 1, 8);
    tu_field(m, 0, 2, 8);
}

static void field_count_lies(struct tu_msg *m)
{
    template_set(m, FV_IPFIX_SET_TEMPLATE, count_lies_body);
}

static void pen_cut_off_body(struct tu_msg *m)
{
    tu_u16(m, 301);
    tu_u16(m, 1);
    tu_u16(m, 0x8000 | 101);
    tu_u16(m, FV_IE_VARLEN); /* the 4-byte PEN is missing */
}

static void enterprise_number_cut_off(struct tu_msg *m)
{
    template_set(m, FV_IPFIX_SET_TEMPLATE, pen_cut_off_body);
}

static void record_header_cut_body(struct tu_msg *m)
{
    tu_u16(m, 301);
    tu_u16(m, 1);
    tu_u8(m, 0); /* 5 bytes: more than padding, less than a field */
}

static void template_record_cut_off(struct tu_msg *m)
{
    template_set(m, FV_IPFIX_SET_TEMPLATE, record_header_cut_body);
}

static void id_255_body(struct tu_msg *m)
{
    tu_u16(m, 255);
    tu_u16(m, 1);
    tu_field(m, 0, 1, 8);
}

static void template_id_below_256(struct tu_msg *m)
{
    template_set(m, FV_IPFIX_SET_TEMPLATE, id_255_body);
}

static void id_2_with_fields_body(struct tu_msg *m)
{
    tu_u16(m, FV_IPFIX_SET_TEMPLATE);
    tu_u16(m, 1);
    tu_field(m, 0, 1, 8);
}

static void template_id_2_with_fields(struct tu_msg *m)
{
    template_set(m, FV_IPFIX_SET_TEMPLATE, id_2_with_fields_body);
}

static void withdraw_id_0_body(struct tu_msg *m)
{
    tu_u16(m, 0);
    tu_u16(m, 0);
}

static void withdrawal_of_id_0(struct tu_msg *m)
{
    template_set(m, FV_IPFIX_SET_TEMPLATE, withdraw_id_0_body);
}

static void count_513_body(struct tu_msg *m)
{
    tu_u16(m, 301);
    tu_u16(m, FV_IPFIX_MAX_FIELDS + 1);
    for (int i = 0; i < FV_IPFIX_MAX_FIELDS + 1; i++)
        tu_field(m, 0, 1, 1);
}

static void field_count_over_limit(struct tu_msg *m)
{
    template_set(m, FV_IPFIX_SET_TEMPLATE, count_513_body);
}

static void count_65535_body(struct tu_msg *m)
{
    tu_u16(m, 301);
    tu_u16(m, 65535);
    tu_field(m, 0, 1, 8);
}

static void field_count_65535(struct tu_msg *m)
{
    template_set(m, FV_IPFIX_SET_TEMPLATE, count_65535_body);
}

static void options_count_513_body(struct tu_msg *m)
{
    tu_u16(m, 401);
    tu_u16(m, FV_IPFIX_MAX_FIELDS + 1);
    tu_u16(m, 1);
    for (int i = 0; i < FV_IPFIX_MAX_FIELDS + 1; i++)
        tu_field(m, 0, 1, 1);
}

static void options_field_count_over_limit(struct tu_msg *m)
{
    template_set(m, FV_IPFIX_SET_OPTIONS_TEMPLATE, options_count_513_body);
}

static void too_long_body(struct tu_msg *m)
{
    tu_u16(m, 301);
    tu_u16(m, 2);
    tu_field(m, 0, 1, 40000);
    tu_field(m, 0, 2, 40000);
}

static void template_record_longer_than_any_message(struct tu_msg *m)
{
    template_set(m, FV_IPFIX_SET_TEMPLATE, too_long_body);
}

static void options_scope(struct tu_msg *m, uint16_t scope)
{
    size_t set;

    tu_msg_begin(m, 0, DOMAIN);
    set = tu_set_begin(m, FV_IPFIX_SET_OPTIONS_TEMPLATE);
    tu_u16(m, 401);
    tu_u16(m, 2);
    tu_u16(m, scope);
    tu_field(m, 0, 149, 4);
    tu_field(m, 0, 41, 8);
    tu_set_end(m, set);
    tu_msg_end(m);
}

static void options_scope_0(struct tu_msg *m)
{
    options_scope(m, 0);
}

static void options_scope_over_field_count(struct tu_msg *m)
{
    options_scope(m, 3);
}

static void options_no_scope_body(struct tu_msg *m)
{
    tu_u16(m, 401);
    tu_u16(m, 2); /* a record header and nothing else */
}

static void options_scope_count_missing(struct tu_msg *m)
{
    template_set(m, FV_IPFIX_SET_OPTIONS_TEMPLATE, options_no_scope_body);
}

/* A data set of TMPL with the given bytes after the 4-byte first field. */
static void data_tail(struct tu_msg *m, const char *tail, size_t n)
{
    size_t set;

    tu_msg_begin(m, 0, DOMAIN);
    set = tu_set_begin(m, TMPL);
    tu_u32(m, 1);
    tu_bytes(m, tail, n);
    tu_set_end(m, set);
    tu_msg_end(m);
}

static void varlen_past_set(struct tu_msg *m)
{
    data_tail(m, "\012abc", 4);
}

static void varlen_long_prefix_cut(struct tu_msg *m)
{
    data_tail(m, "\xff\x00", 2);
}

static void varlen_long_length_past_set(struct tu_msg *m)
{
    data_tail(m, "\xff\x01\000abc", 6);
}

/* A good template set, then a set that cannot be framed: the whole
 * message goes, the template too. */
static void bad_set_after_good_template(struct tu_msg *m)
{
    size_t set;

    tu_msg_begin(m, 0, DOMAIN);
    set = tu_set_begin(m, FV_IPFIX_SET_TEMPLATE);
    tu_u16(m, 301);
    tu_u16(m, 1);
    tu_field(m, 0, 1, 8);
    tu_set_end(m, set);
    set = tu_set_begin(m, 1);
    tu_u32(m, 0);
    tu_set_end(m, set);
    tu_msg_end(m);
}

struct bad_case {
    const char *name;
    void (*build)(struct tu_msg *m);
    int rc;
    uint32_t domain; /* where it is counted: DOMAIN, or 0 when the header is unusable */
};

static const struct bad_case cases[] = {
    {"empty buffer", empty_buffer, -FV_ETRUNC, 0},
    {"truncated header", truncated_header, -FV_ETRUNC, 0},
    {"message length larger than the buffer", length_past_buffer, -FV_ELENGTH, 0},
    {"message length below 16", length_below_16, -FV_ELENGTH, 0},
    {"message length 0", length_zero, -FV_ELENGTH, 0},
    {"version 9", version_9, -FV_EVERSION, 0},
    {"version 0", version_0, -FV_EVERSION, 0},
    {"set length 0", set_length_0, -FV_ELENGTH, DOMAIN},
    {"set length 3", set_length_3, -FV_ELENGTH, DOMAIN},
    {"set longer than the message", set_past_message, -FV_ELENGTH, DOMAIN},
    {"partial set header at the end", partial_set_header_at_end, -FV_ELENGTH, DOMAIN},
    {"set id 0", set_id_0, -FV_ESETID, DOMAIN},
    {"set id 1", set_id_1, -FV_ESETID, DOMAIN},
    {"set id 4", set_id_4, -FV_ESETID, DOMAIN},
    {"set id 255", set_id_255, -FV_ESETID, DOMAIN},
    {"bad set after a good template set", bad_set_after_good_template, -FV_ESETID, DOMAIN},
    {"template with all fields of length 0", zero_length_template, -FV_ETEMPLATE, DOMAIN},
    {"template field count larger than its fields", field_count_lies, -FV_ETEMPLATE, DOMAIN},
    {"enterprise number cut off", enterprise_number_cut_off, -FV_ETEMPLATE, DOMAIN},
    {"template record cut off", template_record_cut_off, -FV_ETEMPLATE, DOMAIN},
    {"template id 255", template_id_below_256, -FV_ETEMPLATE, DOMAIN},
    {"template id 2 with fields", template_id_2_with_fields, -FV_ETEMPLATE, DOMAIN},
    {"withdrawal of template id 0", withdrawal_of_id_0, -FV_ETEMPLATE, DOMAIN},
    {"field count over FV_IPFIX_MAX_FIELDS", field_count_over_limit, -FV_ELIMIT, DOMAIN},
    {"field count 65535", field_count_65535, -FV_ELIMIT, DOMAIN},
    {"options field count over FV_IPFIX_MAX_FIELDS", options_field_count_over_limit, -FV_ELIMIT,
     DOMAIN},
    {"template record longer than any message", template_record_longer_than_any_message,
     -FV_ETEMPLATE, DOMAIN},
    {"options template scope count 0", options_scope_0, -FV_ETEMPLATE, DOMAIN},
    {"options template scope count over field count", options_scope_over_field_count, -FV_ETEMPLATE,
     DOMAIN},
    {"options template scope count missing", options_scope_count_missing, -FV_ETEMPLATE, DOMAIN},
    {"var-len value past the end of the set", varlen_past_set, -FV_ERECORD, DOMAIN},
    {"var-len 3-byte prefix cut off", varlen_long_prefix_cut, -FV_ERECORD, DOMAIN},
    {"var-len 3-byte length past the end of the set", varlen_long_length_past_set, -FV_ERECORD,
     DOMAIN},
};

static void define_template(struct fv_ipfix_session *s, struct tu_capture *cap)
{
    struct tu_msg *m = malloc(sizeof(*m));
    size_t set;

    assert_non_null(m);
    tu_msg_begin(m, 0, DOMAIN);
    set = tu_set_begin(m, FV_IPFIX_SET_TEMPLATE);
    tu_u16(m, TMPL);
    tu_u16(m, 2);
    tu_field(m, 0, 10, 4);
    tu_field(m, 0, 82, FV_IE_VARLEN);
    tu_set_end(m, set);
    tu_msg_end(m);
    assert_int_equal(tu_decode(s, m, 0, cap), 0);
    free(m);
}

/* Snapshot of a domain's counters, zero when the domain is unknown. */
static struct fv_ipfix_domain_stats stats_of(struct fv_ipfix_session *s, uint32_t domain)
{
    struct fv_ipfix_domain *d = fv_ipfix_session_domain(s, domain);
    struct fv_ipfix_domain_stats zero = {0};

    return d ? d->stats : zero;
}

static void check_case(const struct bad_case *c, struct tu_msg *m)
{
    struct fv_ipfix_session s;
    struct tu_capture cap;
    struct fv_ipfix_domain_stats before, after;
    int rc;

    tu_capture_init(&cap);
    fv_ipfix_session_init(&s, FV_IPFIX_UDP_TEMPLATE_LIFETIME_S);
    define_template(&s, &cap);
    tu_capture_reset(&cap);
    before = stats_of(&s, DOMAIN);

    c->build(m);
    rc = tu_decode(&s, m, 0, &cap);
    if (rc != c->rc)
        fail_msg("%s: expected %s, got %d (%s)", c->name, fv_strerror(c->rc), rc, fv_strerror(rc));
    after = stats_of(&s, c->domain);
    if (after.malformed != 1)
        fail_msg("%s: malformed %llu in domain %u", c->name, (unsigned long long)after.malformed,
                 c->domain);
    assert_int_equal(s.last_error, c->rc);
    assert_int_equal(s.last_error_domain, c->domain);

    /* Nothing delivered, nothing applied, nothing else counted. */
    after = stats_of(&s, DOMAIN);
    assert_int_equal(cap.records, 0);
    assert_int_equal(cap.defined + cap.withdrawn, 0);
    assert_int_equal(after.messages, before.messages);
    assert_int_equal(after.templates, before.templates);
    assert_int_equal(after.records, before.records);
    assert_null(fv_ipfix_domain_template(fv_ipfix_session_domain(&s, DOMAIN), 301, 0));

    /* The session goes on: the template still decodes the next message. */
    one_record(m);
    assert_int_equal(tu_decode(&s, m, 0, &cap), 0);
    assert_string_equal(cap.json.p, "{\"ingressInterface\":1,\"interfaceName\":\"ok\"}\n");
    fv_ipfix_session_fini(&s);
    tu_capture_fini(&cap);
}

static void test_malformed_messages_are_rejected_with_their_code(void **state)
{
    struct tu_msg *m = malloc(sizeof(*m));

    (void)state;
    assert_non_null(m);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        check_case(&cases[i], m);
    free(m);
}

/* Records before the faulty part of a message stay delivered, and the
 * sequence number is still accounted. */
static void test_records_before_a_faulty_set_stay_delivered(void **state)
{
    struct fv_ipfix_session s;
    struct tu_capture cap;
    struct tu_msg *m = malloc(sizeof(*m));
    size_t set;

    (void)state;
    assert_non_null(m);
    tu_capture_init(&cap);
    fv_ipfix_session_init(&s, 0);
    define_template(&s, &cap);
    tu_msg_begin(m, 0, DOMAIN);
    set = tu_set_begin(m, TMPL);
    tu_u32(m, 1);
    tu_bytes(m, "\001a", 2);
    tu_set_end(m, set);
    set = tu_set_begin(m, TMPL);
    tu_u32(m, 2);
    tu_bytes(m, "\011b", 2); /* runs past the set */
    tu_set_end(m, set);
    tu_msg_end(m);

    assert_int_equal(tu_decode(&s, m, 0, &cap), -FV_ERECORD);
    assert_string_equal(cap.json.p, "{\"ingressInterface\":1,\"interfaceName\":\"a\"}\n");
    assert_int_equal(tu_stats(&s, DOMAIN)->malformed, 1);
    assert_int_equal(tu_stats(&s, DOMAIN)->records, 1);
    assert_int_equal(tu_stats(&s, DOMAIN)->messages, 1); /* the template message */
    assert_int_equal(fv_ipfix_session_domain(&s, DOMAIN)->next_seq, 1);
    fv_ipfix_session_fini(&s);
    tu_capture_fini(&cap);
    free(m);
}

/* A data set shorter than the shortest record is all padding: not an
 * error (RFC 7011 section 3.3.1). */
static void test_data_set_shorter_than_a_record_is_padding(void **state)
{
    struct fv_ipfix_session s;
    struct tu_capture cap;
    struct tu_msg *m = malloc(sizeof(*m));

    (void)state;
    assert_non_null(m);
    tu_capture_init(&cap);
    fv_ipfix_session_init(&s, 0);
    define_template(&s, &cap);
    tu_msg_begin(m, 0, DOMAIN);
    tu_u16(m, TMPL);
    tu_u16(m, 4 + 4); /* 4 bytes; the shortest record is 5 */
    tu_u32(m, 1);
    tu_msg_end(m);
    assert_int_equal(tu_decode(&s, m, 0, &cap), 0);
    assert_int_equal(cap.records, 0);
    assert_int_equal(tu_stats(&s, DOMAIN)->malformed, 0);
    fv_ipfix_session_fini(&s);
    tu_capture_fini(&cap);
    free(m);
}

static void test_iterators_stop_cleanly_on_every_truncation(void **state)
{
    static const struct fv_ipfix_field f[] = {TU_F(0, 10, 4), TU_F(0, 82, FV_IE_VARLEN)};
    static const struct fv_ipfix_template_def t = {TMPL, 2, f};
    static uint8_t buf[256];
    struct fv_ipfix_writer w;
    struct fv_ipfix_session s;
    struct tu_capture cap;
    size_t len;

    (void)state;
    /* A valid message, then every prefix of it claiming the full length
     * (rejected) and claiming its own length (framing fails or succeeds,
     * never reads past the prefix; ASan builds check the reads). */
    fv_ipfix_writer_init(&w, buf, sizeof(buf));
    assert_int_equal(fv_ipfix_writer_add_template(&w, &t), 0);
    fv_ipfix_writer_record_begin(&w, TMPL);
    fv_ipfix_put_u32(&w, 5);
    fv_ipfix_put_varlen(&w, "eth0", 4);
    assert_int_equal(fv_ipfix_writer_record_end(&w), 0);
    len = fv_ipfix_writer_finish(&w, 0, 0, DOMAIN);

    tu_capture_init(&cap);
    for (size_t cut = 0; cut < len; cut++) {
        uint8_t *copy = malloc(cut ? cut : 1);
        assert_non_null(copy);
        memcpy(copy, buf, cut);
        fv_ipfix_session_init(&s, 0);
        assert_true(tu_decode_bytes(&s, copy, cut, 0, &cap) < 0);
        if (cut >= 4) {
            fv_store_be16(copy + 2, (uint16_t)cut);
            (void)tu_decode_bytes(&s, copy, cut, 0, &cap);
        }
        fv_ipfix_session_fini(&s);
        free(copy);
    }
    tu_capture_fini(&cap);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_malformed_messages_are_rejected_with_their_code),
        cmocka_unit_test(test_records_before_a_faulty_set_stay_delivered),
        cmocka_unit_test(test_data_set_shorter_than_a_record_is_padding),
        cmocka_unit_test(test_iterators_stop_cleanly_on_every_truncation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
