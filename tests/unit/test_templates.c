/*
 * test_templates.c - template management per (session, observation
 * domain): withdrawal of one and of all, options templates, unknown
 * elements, redefinition, UDP expiry, and the limits.
 */
#include "testutil.h"

#define DOMAIN 9

/* Appends a template record with one IANA field to an open template set. */
static void tmpl_one_field(struct tu_msg *m, uint16_t id, uint16_t ie, uint16_t len)
{
    tu_u16(m, id);
    tu_u16(m, 1);
    tu_field(m, 0, ie, len);
}

/* A template set defining 300 (ingressInterface) and 301
 * (sourceTransportPort), and an options template set defining 400. */
static void build_definitions(struct tu_msg *m, uint32_t seq)
{
    size_t set;

    tu_msg_begin(m, seq, DOMAIN);
    set = tu_set_begin(m, FV_IPFIX_SET_TEMPLATE);
    tmpl_one_field(m, 300, 10, 4);
    tmpl_one_field(m, 301, 7, 2);
    tu_set_end(m, set);
    set = tu_set_begin(m, FV_IPFIX_SET_OPTIONS_TEMPLATE);
    tu_u16(m, 400);
    tu_u16(m, 3);
    tu_u16(m, 1);           /* scope count */
    tu_field(m, 0, 149, 4); /* scope: observationDomainId */
    tu_field(m, 0, 41, 8);  /* exportedMessageTotalCount */
    tu_field(m, 0, 42, 8);  /* exportedFlowRecordTotalCount */
    tu_set_end(m, set);
    tu_msg_end(m);
}

/* A message with one record of each of 300, 301 and 400. */
static void build_data(struct tu_msg *m, uint32_t seq)
{
    size_t set;

    tu_msg_begin(m, seq, DOMAIN);
    set = tu_set_begin(m, 300);
    tu_u32(m, 7);
    tu_set_end(m, set);
    set = tu_set_begin(m, 301);
    tu_u16(m, 8080);
    tu_set_end(m, set);
    set = tu_set_begin(m, 400);
    tu_u32(m, DOMAIN);
    tu_u64(m, 12);
    tu_u64(m, 3456);
    tu_set_end(m, set);
    tu_msg_end(m);
}

#define JSON_300 "{\"ingressInterface\":7}\n"
#define JSON_301 "{\"sourceTransportPort\":8080}\n"
#define JSON_400                                                                                   \
    "{\"observationDomainId\":9,\"exportedMessageTotalCount\":12,"                                 \
    "\"exportedFlowRecordTotalCount\":3456}\n"

/* A message whose template set (or options template set) withdraws id. */
static void build_withdrawal(struct tu_msg *m, uint16_t set_id, uint16_t id)
{
    size_t set;

    tu_msg_begin(m, 0, DOMAIN);
    set = tu_set_begin(m, set_id);
    tu_u16(m, id);
    tu_u16(m, 0);
    tu_set_end(m, set);
    tu_msg_end(m);
}

struct fixture {
    struct fv_ipfix_session s;
    struct tu_capture cap;
    struct tu_msg m;
};

static int setup(void **state)
{
    struct fixture *f = malloc(sizeof(*f));

    assert_non_null(f);
    fv_ipfix_session_init(&f->s, 0);
    tu_capture_init(&f->cap);
    build_definitions(&f->m, 0);
    assert_int_equal(tu_decode(&f->s, &f->m, 0, &f->cap), 0);
    assert_int_equal(f->cap.defined, 3);
    tu_capture_reset(&f->cap);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    fv_ipfix_session_fini(&f->s);
    tu_capture_fini(&f->cap);
    free(f);
    return 0;
}

static void decode_data(struct fixture *f)
{
    tu_capture_reset(&f->cap);
    build_data(&f->m, 0);
    assert_int_equal(tu_decode(&f->s, &f->m, 0, &f->cap), 0);
}

static void test_options_template_keeps_its_scope_count(void **state)
{
    struct fixture *f = *state;
    struct fv_ipfix_domain *d = fv_ipfix_session_domain(&f->s, DOMAIN);
    const struct fv_ipfix_template *t;

    assert_non_null(d);
    t = fv_ipfix_domain_template(d, 400, 0);
    assert_non_null(t);
    assert_int_equal(t->field_count, 3);
    assert_int_equal(t->scope_count, 1);
    assert_int_equal(t->min_len, 20);
    assert_string_equal(t->fields[0].ie->name, "observationDomainId");
    t = fv_ipfix_domain_template(d, 300, 0);
    assert_non_null(t);
    assert_int_equal(t->scope_count, 0);
    assert_int_equal(d->stats.templates, 3);

    decode_data(f);
    assert_string_equal(f->cap.json.p, JSON_300 JSON_301 JSON_400);
}

static void test_withdrawal_removes_only_the_named_template(void **state)
{
    struct fixture *f = *state;

    build_withdrawal(&f->m, FV_IPFIX_SET_TEMPLATE, 300);
    assert_int_equal(tu_decode(&f->s, &f->m, 0, &f->cap), 0);
    assert_int_equal(f->cap.withdrawn, 1);
    assert_int_equal(f->cap.last_withdrawn, 300);
    assert_int_equal(tu_stats(&f->s, DOMAIN)->withdrawals, 1);

    decode_data(f);
    assert_string_equal(f->cap.json.p, JSON_301 JSON_400);
    assert_int_equal(tu_stats(&f->s, DOMAIN)->missing_template, 1);
}

static void test_options_template_withdrawal_in_options_set(void **state)
{
    struct fixture *f = *state;

    build_withdrawal(&f->m, FV_IPFIX_SET_OPTIONS_TEMPLATE, 400);
    assert_int_equal(tu_decode(&f->s, &f->m, 0, &f->cap), 0);
    assert_int_equal(f->cap.last_withdrawn, 400);
    decode_data(f);
    assert_string_equal(f->cap.json.p, JSON_300 JSON_301);
}

static void test_withdraw_all_with_id_2_keeps_options_templates(void **state)
{
    struct fixture *f = *state;

    build_withdrawal(&f->m, FV_IPFIX_SET_TEMPLATE, FV_IPFIX_SET_TEMPLATE);
    assert_int_equal(tu_decode(&f->s, &f->m, 0, &f->cap), 0);
    assert_int_equal(tu_stats(&f->s, DOMAIN)->withdrawals, 1);
    /* Each withdrawn template is reported, as for a single withdrawal. */
    assert_int_equal(f->cap.withdrawn, 2);

    decode_data(f);
    assert_string_equal(f->cap.json.p, JSON_400);
    assert_int_equal(tu_stats(&f->s, DOMAIN)->missing_template, 2);
}

static void test_withdraw_all_with_id_3_keeps_templates(void **state)
{
    struct fixture *f = *state;

    build_withdrawal(&f->m, FV_IPFIX_SET_OPTIONS_TEMPLATE, FV_IPFIX_SET_OPTIONS_TEMPLATE);
    assert_int_equal(tu_decode(&f->s, &f->m, 0, &f->cap), 0);
    assert_int_equal(f->cap.withdrawn, 1);
    assert_int_equal(f->cap.last_withdrawn, 400);

    decode_data(f);
    assert_string_equal(f->cap.json.p, JSON_300 JSON_301);
    assert_int_equal(tu_stats(&f->s, DOMAIN)->missing_template, 1);
}

static void test_withdrawn_template_can_be_defined_again(void **state)
{
    struct fixture *f = *state;

    build_withdrawal(&f->m, FV_IPFIX_SET_TEMPLATE, FV_IPFIX_SET_TEMPLATE);
    assert_int_equal(tu_decode(&f->s, &f->m, 0, &f->cap), 0);
    build_definitions(&f->m, 0);
    assert_int_equal(tu_decode(&f->s, &f->m, 0, &f->cap), 0);
    decode_data(f);
    assert_string_equal(f->cap.json.p, JSON_300 JSON_301 JSON_400);
}

static void test_template_redefinition_takes_effect(void **state)
{
    struct fixture *f = *state;
    struct fv_ipfix_domain *d = fv_ipfix_session_domain(&f->s, DOMAIN);
    uint32_t serial = fv_ipfix_domain_template(d, 300, 0)->serial;
    size_t set;

    /* 300 becomes two ports: the same 4 bytes now mean something else. */
    tu_msg_begin(&f->m, 0, DOMAIN);
    set = tu_set_begin(&f->m, FV_IPFIX_SET_TEMPLATE);
    tu_u16(&f->m, 300);
    tu_u16(&f->m, 2);
    tu_field(&f->m, 0, 7, 2);
    tu_field(&f->m, 0, 11, 2);
    tu_set_end(&f->m, set);
    set = tu_set_begin(&f->m, 300);
    tu_u16(&f->m, 80);
    tu_u16(&f->m, 443);
    tu_set_end(&f->m, set);
    tu_msg_end(&f->m);
    assert_int_equal(tu_decode(&f->s, &f->m, 0, &f->cap), 0);
    assert_string_equal(f->cap.json.p,
                        "{\"sourceTransportPort\":80,\"destinationTransportPort\":443}\n");
    assert_int_equal(f->cap.defined, 1);
    assert_int_equal(tu_stats(&f->s, DOMAIN)->templates, 4);
    assert_int_equal(fv_ipfix_domain_template(d, 300, 0)->field_count, 2);
    assert_int_not_equal(fv_ipfix_domain_template(d, 300, 0)->serial, serial);
}

static void test_unknown_elements_are_named_by_pen_and_id_with_hex_values(void **state)
{
    struct fixture *f = *state;
    size_t set;

    tu_msg_begin(&f->m, 0, DOMAIN);
    set = tu_set_begin(&f->m, FV_IPFIX_SET_TEMPLATE);
    tu_u16(&f->m, 302);
    tu_u16(&f->m, 6);
    tu_field(&f->m, 0, 999, 2);                        /* IANA id not in the registry */
    tu_field(&f->m, 12345, 7, 3);                      /* unknown enterprise */
    tu_field(&f->m, 12345, 8, FV_IE_VARLEN);           /* unknown, variable length */
    tu_field(&f->m, FV_PEN_REVERSE, 148, 8);           /* flowId has no reverse form */
    tu_field(&f->m, 4294967295u, 32767, 1);            /* largest PEN and id */
    tu_field(&f->m, FV_PEN_ANTREA, 101, FV_IE_VARLEN); /* known, for contrast */
    tu_set_end(&f->m, set);
    set = tu_set_begin(&f->m, 302);
    tu_bytes(&f->m, "\xbe\xef", 2);
    tu_bytes(&f->m, "\x0a\x0b\x0c", 3);
    tu_bytes(&f->m, "\x05hello", 6);
    tu_u64(&f->m, 0x0102030405060708ull);
    tu_u8(&f->m, 0);
    tu_bytes(&f->m, "\x01p", 2);
    tu_set_end(&f->m, set);
    tu_msg_end(&f->m);

    assert_int_equal(tu_decode(&f->s, &f->m, 0, &f->cap), 0);
    assert_string_equal(f->cap.json.p, "{\"ie0_999\":\"beef\",\"ie12345_7\":\"0a0b0c\","
                                       "\"ie12345_8\":\"68656c6c6f\","
                                       "\"ie29305_148\":\"0102030405060708\","
                                       "\"ie4294967295_32767\":\"00\",\"sourcePodName\":\"p\"}\n");
    assert_int_equal(tu_stats(&f->s, DOMAIN)->malformed, 0);
}

static void test_udp_template_expires_after_its_lifetime(void **state)
{
    struct fv_ipfix_session s;
    struct tu_capture cap;
    struct tu_msg m;
    struct fv_ipfix_domain *d;

    (void)state;
    tu_capture_init(&cap);
    fv_ipfix_session_init(&s, 10); /* seconds */
    build_definitions(&m, 0);
    assert_int_equal(tu_decode(&s, &m, 1000, &cap), 0);
    d = fv_ipfix_session_domain(&s, DOMAIN);
    assert_int_equal(fv_ipfix_domain_template(d, 300, 1000)->expires_ms, 11000);

    build_data(&m, 0);
    assert_int_equal(tu_decode(&s, &m, 10999, &cap), 0);
    assert_int_equal(cap.records, 3);
    assert_int_equal(tu_stats(&s, DOMAIN)->missing_template, 0);

    tu_capture_reset(&cap);
    build_data(&m, 3);
    assert_int_equal(tu_decode(&s, &m, 11000, &cap), 0);
    assert_int_equal(cap.records, 0);
    assert_int_equal(tu_stats(&s, DOMAIN)->missing_template, 3);
    assert_int_equal(tu_stats(&s, DOMAIN)->malformed, 0);
    assert_null(fv_ipfix_domain_template(d, 300, 11000));
    fv_ipfix_session_fini(&s);
    tu_capture_fini(&cap);
}

static void test_udp_template_resent_before_expiry_lives_on(void **state)
{
    struct fv_ipfix_session s;
    struct tu_capture cap;
    struct tu_msg m;

    (void)state;
    tu_capture_init(&cap);
    fv_ipfix_session_init(&s, 10);
    build_definitions(&m, 0);
    assert_int_equal(tu_decode(&s, &m, 1000, &cap), 0);
    assert_int_equal(tu_decode(&s, &m, 9000, &cap), 0);
    build_data(&m, 0);
    assert_int_equal(tu_decode(&s, &m, 18999, &cap), 0);
    assert_int_equal(cap.records, 3);
    assert_int_equal(tu_stats(&s, DOMAIN)->missing_template, 0);
    fv_ipfix_session_fini(&s);
    tu_capture_fini(&cap);
}

static void test_tcp_templates_never_expire(void **state)
{
    struct fixture *f = *state;
    struct fv_ipfix_domain *d = fv_ipfix_session_domain(&f->s, DOMAIN);

    assert_int_equal(fv_ipfix_domain_template(d, 300, 0)->expires_ms, 0);
    tu_capture_reset(&f->cap);
    build_data(&f->m, 0);
    assert_int_equal(tu_decode(&f->s, &f->m, UINT64_MAX - 1, &f->cap), 0);
    assert_int_equal(f->cap.records, 3);
}

static void test_templates_belong_to_their_observation_domain(void **state)
{
    struct fixture *f = *state;
    size_t set;

    tu_msg_begin(&f->m, 0, DOMAIN + 1);
    set = tu_set_begin(&f->m, 300);
    tu_u32(&f->m, 1);
    tu_set_end(&f->m, set);
    tu_msg_end(&f->m);
    assert_int_equal(tu_decode(&f->s, &f->m, 0, &f->cap), 0);
    assert_int_equal(f->cap.records, 0);
    assert_int_equal(tu_stats(&f->s, DOMAIN + 1)->missing_template, 1);
    assert_int_equal(tu_stats(&f->s, DOMAIN)->missing_template, 0);
}

static void test_template_parse_reads_enterprise_fields(void **state)
{
    struct tu_msg m = {.len = 0};
    struct fv_ipfix_template *t;
    uint16_t withdraw_id = 0;
    size_t used = 0;

    (void)state;
    tu_u16(&m, 256);
    tu_u16(&m, 3);
    tu_field(&m, FV_PEN_ANTREA, 101, FV_IE_VARLEN);
    tu_field(&m, FV_PEN_REVERSE, 1, 8);
    tu_field(&m, 0, 4, 1);
    tu_zeros(&m, 2); /* not part of the record */
    assert_int_equal(fv_ipfix_template_parse(m.buf, m.len, false, &t, &withdraw_id, &used), 0);
    assert_non_null(t);
    assert_int_equal(used, 4 + 8 + 8 + 4);
    assert_int_equal(t->id, 256);
    assert_int_equal(t->field_count, 3);
    assert_int_equal(t->varlen_count, 1);
    assert_int_equal(t->min_len, 1 + 8 + 1);
    assert_int_equal(t->fields[0].pen, FV_PEN_ANTREA);
    assert_int_equal(t->fields[0].id, 101);
    assert_string_equal(t->fields[0].ie->name, "sourcePodName");
    assert_string_equal(t->fields[1].ie->name, "reverseOctetDeltaCount");
    assert_string_equal(t->fields[2].ie->name, "protocolIdentifier");
    free(t);

    /* A withdrawal yields no template, only the id. */
    assert_int_equal(fv_ipfix_template_parse((const uint8_t *)"\x01\x2c\x00\x00", 4, true, &t,
                                             &withdraw_id, &used),
                     0);
    assert_null(t);
    assert_int_equal(withdraw_id, 300);
    assert_int_equal(used, 4);
}

/* Fills a template set with `count` one-field templates from first_id on. */
static void build_many_templates(struct tu_msg *m, uint16_t first_id, unsigned count)
{
    size_t set;

    tu_msg_begin(m, 0, DOMAIN);
    set = tu_set_begin(m, FV_IPFIX_SET_TEMPLATE);
    for (unsigned i = 0; i < count; i++)
        tmpl_one_field(m, (uint16_t)(first_id + i), 10, 4);
    tu_set_end(m, set);
    tu_msg_end(m);
}

static void test_domain_holds_at_most_4096_templates(void **state)
{
    static struct tu_msg m;
    struct fv_ipfix_session s;
    struct tu_capture cap;
    struct fv_ipfix_domain *d;

    (void)state;
    tu_capture_init(&cap);
    fv_ipfix_session_init(&s, 0);
    build_many_templates(&m, 1000, FV_IPFIX_MAX_TEMPLATES);
    assert_int_equal(tu_decode(&s, &m, 0, &cap), 0);
    d = fv_ipfix_session_domain(&s, DOMAIN);
    for (unsigned i = 0; i < FV_IPFIX_MAX_TEMPLATES; i++)
        assert_non_null(fv_ipfix_domain_template(d, (uint16_t)(1000 + i), 0));
    /* Redefining one that exists is fine when the table is full ... */
    build_many_templates(&m, 1000, 1);
    assert_int_equal(tu_decode(&s, &m, 0, &cap), 0);
    /* ... a new one is not. */
    build_many_templates(&m, 999, 1);
    assert_int_equal(tu_decode(&s, &m, 0, &cap), -FV_ELIMIT);
    assert_int_equal(d->stats.malformed, 1);
    assert_null(fv_ipfix_domain_template(d, 999, 0));
    fv_ipfix_session_fini(&s);
    tu_capture_fini(&cap);
}

/* Withdrawing from the open-addressing table must not lose the templates
 * that shared a probe run with the withdrawn ones. */
static void test_withdrawing_every_other_template_keeps_the_rest(void **state)
{
    static struct tu_msg m;
    struct fv_ipfix_session s;
    struct tu_capture cap;
    struct fv_ipfix_domain *d;
    size_t set;

    (void)state;
    tu_capture_init(&cap);
    fv_ipfix_session_init(&s, 0);
    build_many_templates(&m, 256, 2000);
    assert_int_equal(tu_decode(&s, &m, 0, &cap), 0);

    tu_msg_begin(&m, 0, DOMAIN);
    set = tu_set_begin(&m, FV_IPFIX_SET_TEMPLATE);
    for (unsigned i = 0; i < 2000; i += 2) {
        tu_u16(&m, (uint16_t)(256 + i));
        tu_u16(&m, 0);
    }
    tu_set_end(&m, set);
    tu_msg_end(&m);
    assert_int_equal(tu_decode(&s, &m, 0, &cap), 0);
    assert_int_equal(cap.withdrawn, 1000);

    d = fv_ipfix_session_domain(&s, DOMAIN);
    assert_int_equal(d->stats.withdrawals, 1000);
    for (unsigned i = 0; i < 2000; i++) {
        const struct fv_ipfix_template *t = fv_ipfix_domain_template(d, (uint16_t)(256 + i), 0);
        if (i % 2)
            assert_non_null(t);
        else
            assert_null(t);
    }

    build_withdrawal(&m, FV_IPFIX_SET_TEMPLATE, FV_IPFIX_SET_TEMPLATE);
    assert_int_equal(tu_decode(&s, &m, 0, &cap), 0);
    for (unsigned i = 0; i < 2000; i++)
        assert_null(fv_ipfix_domain_template(d, (uint16_t)(256 + i), 0));
    fv_ipfix_session_fini(&s);
    tu_capture_fini(&cap);
}

static void test_session_holds_at_most_1024_domains(void **state)
{
    struct fv_ipfix_session s;
    struct tu_capture cap;
    struct tu_msg m;

    (void)state;
    tu_capture_init(&cap);
    fv_ipfix_session_init(&s, 0);
    for (uint32_t dom = 1; dom <= FV_IPFIX_MAX_DOMAINS; dom++) {
        tu_msg_begin(&m, 0, dom);
        tu_msg_end(&m);
        assert_int_equal(tu_decode(&s, &m, 0, &cap), 0);
    }
    assert_int_equal(s.domain_count, FV_IPFIX_MAX_DOMAINS);
    tu_msg_begin(&m, 0, FV_IPFIX_MAX_DOMAINS + 1);
    tu_msg_end(&m);
    assert_int_equal(tu_decode(&s, &m, 0, &cap), -FV_ELIMIT);
    assert_int_equal(s.last_error, -FV_ELIMIT);
    assert_null(fv_ipfix_session_domain(&s, FV_IPFIX_MAX_DOMAINS + 1));
    fv_ipfix_session_fini(&s);
    tu_capture_fini(&cap);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_options_template_keeps_its_scope_count, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_withdrawal_removes_only_the_named_template, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_options_template_withdrawal_in_options_set, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_withdraw_all_with_id_2_keeps_options_templates, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_withdraw_all_with_id_3_keeps_templates, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_withdrawn_template_can_be_defined_again, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_template_redefinition_takes_effect, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_unknown_elements_are_named_by_pen_and_id_with_hex_values, setup, teardown),
        cmocka_unit_test(test_udp_template_expires_after_its_lifetime),
        cmocka_unit_test(test_udp_template_resent_before_expiry_lives_on),
        cmocka_unit_test_setup_teardown(test_tcp_templates_never_expire, setup, teardown),
        cmocka_unit_test_setup_teardown(test_templates_belong_to_their_observation_domain, setup,
                                        teardown),
        cmocka_unit_test(test_template_parse_reads_enterprise_fields),
        cmocka_unit_test(test_domain_holds_at_most_4096_templates),
        cmocka_unit_test(test_withdrawing_every_other_template_keeps_the_rest),
        cmocka_unit_test(test_session_holds_at_most_1024_domains),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
