/*
 * test_agent_template.c - the templates flowvis' agent sends (templates.h)
 * encode and decode with the registry's names: IANA, RFC 5103 reverse
 * and Antrea elements.
 */
#include "testutil.h"

#include "ipfix/templates.h"

#define DOMAIN 42

struct conn {
    const uint8_t *src, *dst, *cluster_ip; /* 4 or 16 bytes each */
    size_t alen;
};

/* Writes one record of the agent template with fixed, distinct values. */
static void put_agent_record(struct fv_ipfix_writer *w, uint16_t tmpl, const struct conn *c)
{
    fv_ipfix_writer_record_begin(w, tmpl);
    fv_ipfix_put_u32(w, 1700000000);               /* flowStartSeconds */
    fv_ipfix_put_u32(w, 1700000060);               /* flowEndSeconds */
    fv_ipfix_put_u8(w, 3);                         /* flowEndReason: end of flow */
    fv_ipfix_put_u16(w, 43210);                    /* sourceTransportPort */
    fv_ipfix_put_u16(w, 8080);                     /* destinationTransportPort */
    fv_ipfix_put_u8(w, 6);                         /* protocolIdentifier */
    fv_ipfix_put_u64(w, 100);                      /* packetTotalCount */
    fv_ipfix_put_u64(w, 150000);                   /* octetTotalCount */
    fv_ipfix_put_u64(w, 10);                       /* packetDeltaCount */
    fv_ipfix_put_u64(w, 15000);                    /* octetDeltaCount */
    fv_ipfix_put_bytes(w, c->src, c->alen);        /* source address */
    fv_ipfix_put_bytes(w, c->dst, c->alen);        /* destination address */
    fv_ipfix_put_u64(w, 90);                       /* reversePacketTotalCount */
    fv_ipfix_put_u64(w, 5000000);                  /* reverseOctetTotalCount */
    fv_ipfix_put_u64(w, 9);                        /* reversePacketDeltaCount */
    fv_ipfix_put_u64(w, 500000);                   /* reverseOctetDeltaCount */
    fv_ipfix_put_varlen(w, "client-7f9c", 11);     /* sourcePodName */
    fv_ipfix_put_varlen(w, "default", 7);          /* sourcePodNamespace */
    fv_ipfix_put_varlen(w, "node-a", 6);           /* sourceNodeName */
    fv_ipfix_put_varlen(w, "web-0", 5);            /* destinationPodName */
    fv_ipfix_put_varlen(w, "shop", 4);             /* destinationPodNamespace */
    fv_ipfix_put_varlen(w, "node-b", 6);           /* destinationNodeName */
    fv_ipfix_put_u16(w, 80);                       /* destinationServicePort */
    fv_ipfix_put_varlen(w, "shop/web:http", 13);   /* destinationServicePortName */
    fv_ipfix_put_varlen(w, "allow-web", 9);        /* ingressNetworkPolicyName */
    fv_ipfix_put_varlen(w, "shop", 4);             /* ingressNetworkPolicyNamespace */
    fv_ipfix_put_u8(w, 1);                         /* ingressNetworkPolicyType */
    fv_ipfix_put_varlen(w, "rule-1", 6);           /* ingressNetworkPolicyRuleName */
    fv_ipfix_put_u8(w, 1);                         /* ingressNetworkPolicyRuleAction */
    fv_ipfix_put_varlen(w, "", 0);                 /* egressNetworkPolicyName */
    fv_ipfix_put_varlen(w, "", 0);                 /* egressNetworkPolicyNamespace */
    fv_ipfix_put_u8(w, 0);                         /* egressNetworkPolicyType */
    fv_ipfix_put_varlen(w, "", 0);                 /* egressNetworkPolicyRuleName */
    fv_ipfix_put_u8(w, 0);                         /* egressNetworkPolicyRuleAction */
    fv_ipfix_put_varlen(w, "TIME_WAIT", 9);        /* tcpState */
    fv_ipfix_put_u8(w, 2);                         /* flowType: inter-node */
    fv_ipfix_put_bytes(w, c->cluster_ip, c->alen); /* destinationClusterIPv4/6 */
    assert_int_equal(fv_ipfix_writer_record_end(w), 0);
}

#define AGENT_JSON_HEAD                                                                            \
    "{\"flowStartSeconds\":1700000000,\"flowEndSeconds\":1700000060,\"flowEndReason\":3,"          \
    "\"sourceTransportPort\":43210,\"destinationTransportPort\":8080,\"protocolIdentifier\":6,"    \
    "\"packetTotalCount\":100,\"octetTotalCount\":150000,\"packetDeltaCount\":10,"                 \
    "\"octetDeltaCount\":15000,"

#define AGENT_JSON_TAIL(cluster)                                                                   \
    "\"reversePacketTotalCount\":90,\"reverseOctetTotalCount\":5000000,"                           \
    "\"reversePacketDeltaCount\":9,\"reverseOctetDeltaCount\":500000,"                             \
    "\"sourcePodName\":\"client-7f9c\",\"sourcePodNamespace\":\"default\","                        \
    "\"sourceNodeName\":\"node-a\",\"destinationPodName\":\"web-0\","                              \
    "\"destinationPodNamespace\":\"shop\",\"destinationNodeName\":\"node-b\","                     \
    "\"destinationServicePort\":80,\"destinationServicePortName\":\"shop/web:http\","              \
    "\"ingressNetworkPolicyName\":\"allow-web\",\"ingressNetworkPolicyNamespace\":\"shop\","       \
    "\"ingressNetworkPolicyType\":1,\"ingressNetworkPolicyRuleName\":\"rule-1\","                  \
    "\"ingressNetworkPolicyRuleAction\":1,\"egressNetworkPolicyName\":\"\","                       \
    "\"egressNetworkPolicyNamespace\":\"\",\"egressNetworkPolicyType\":0,"                         \
    "\"egressNetworkPolicyRuleName\":\"\",\"egressNetworkPolicyRuleAction\":0,"                    \
    "\"tcpState\":\"TIME_WAIT\",\"flowType\":2," cluster "}\n"

static const uint8_t v4_src[4] = {10, 244, 1, 5};
static const uint8_t v4_dst[4] = {10, 244, 2, 9};
static const uint8_t v4_cip[4] = {10, 96, 0, 10};
static const uint8_t v6_src[16] = {0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0x05};
static const uint8_t v6_dst[16] = {0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, 0x09};
static const uint8_t v6_cip[16] = {0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x0a};

static void test_agent_templates_have_every_field_in_the_registry(void **state)
{
    const struct fv_ipfix_template_def *defs[2] = {&fv_tmpl_agent_v4, &fv_tmpl_agent_v6};

    (void)state;
    assert_int_equal(fv_tmpl_agent_v4.id, FV_TMPL_AGENT_V4);
    assert_int_equal(fv_tmpl_agent_v6.id, FV_TMPL_AGENT_V6);
    for (int t = 0; t < 2; t++) {
        assert_int_equal(defs[t]->field_count, FV_AGENT_FIELD_COUNT);
        for (uint16_t i = 0; i < defs[t]->field_count; i++) {
            const struct fv_ipfix_field *f = &defs[t]->fields[i];
            const struct fv_ie *ie = fv_ie_find(f->pen, f->id);
            if (ie == NULL)
                fail_msg("agent template %u field %u (%u/%u) not in the registry", defs[t]->id, i,
                         f->pen, f->id);
            /* Fixed lengths are the type's natural length. */
            assert_int_equal(f->length, ie->length);
        }
    }
    assert_int_equal(fv_tmpl_agent_v4.fields[FV_AGENT_REV_OCTETS_DELTA].pen, FV_PEN_REVERSE);
    assert_int_equal(fv_tmpl_agent_v6.fields[FV_AGENT_CLUSTER_IP].id, 107);
}

static void round_trip(const struct fv_ipfix_template_def *def, const struct conn *c,
                       const char *want_json)
{
    static uint8_t buf[FV_IPFIX_MAX_MESSAGE];
    struct fv_ipfix_writer w;
    struct fv_ipfix_session s;
    struct tu_capture cap;
    size_t len;

    fv_ipfix_writer_init(&w, buf, 1400);
    assert_int_equal(fv_ipfix_writer_add_template(&w, def), 0);
    put_agent_record(&w, def->id, c);
    put_agent_record(&w, def->id, c);
    len = fv_ipfix_writer_finish(&w, 1700000100, 77, DOMAIN);

    tu_capture_init(&cap);
    fv_ipfix_session_init(&s, FV_IPFIX_UDP_TEMPLATE_LIFETIME_S);
    assert_int_equal(tu_decode_bytes(&s, buf, len, 5000, &cap), 0);
    assert_int_equal(cap.records, 2);
    assert_int_equal(cap.tmpl_id[0], def->id);
    assert_int_equal(cap.uint[0][FV_AGENT_OCTETS_DELTA], 15000);
    assert_int_equal(cap.uint[0][FV_AGENT_REV_OCTETS_DELTA], 500000);
    assert_int_equal(cap.uint[0][FV_AGENT_SVC_PORT], 80);
    assert_int_equal(cap.len[0][FV_AGENT_SRC_POD], 11);
    assert_int_equal(cap.len[0][FV_AGENT_CLUSTER_IP], c->alen);
    /* Both records are identical: compare the first line, then the whole. */
    assert_int_equal(cap.json.len, 2 * strlen(want_json));
    assert_memory_equal(cap.json.p, want_json, strlen(want_json));
    assert_string_equal(cap.json.p + strlen(want_json), want_json);
    assert_int_equal(tu_stats(&s, DOMAIN)->templates, 1);
    assert_int_equal(fv_ipfix_session_domain(&s, DOMAIN)->next_seq, 79);
    fv_ipfix_session_fini(&s);
    tu_capture_fini(&cap);
}

static void test_agent_v4_template_round_trips_with_registry_names(void **state)
{
    const struct conn c = {v4_src, v4_dst, v4_cip, 4};

    (void)state;
    round_trip(&fv_tmpl_agent_v4, &c,
               AGENT_JSON_HEAD "\"sourceIPv4Address\":\"10.244.1.5\","
                               "\"destinationIPv4Address\":\"10.244.2.9\"," AGENT_JSON_TAIL(
                                   "\"destinationClusterIPv4\":\"10.96.0.10\""));
}

static void test_agent_v6_template_round_trips_with_registry_names(void **state)
{
    const struct conn c = {v6_src, v6_dst, v6_cip, 16};

    (void)state;
    round_trip(&fv_tmpl_agent_v6, &c,
               AGENT_JSON_HEAD "\"sourceIPv6Address\":\"fd00::105\","
                               "\"destinationIPv6Address\":\"fd00::209\"," AGENT_JSON_TAIL(
                                   "\"destinationClusterIPv6\":\"fd00::a\""));
}

static void test_both_agent_templates_decode_side_by_side(void **state)
{
    static uint8_t buf[FV_IPFIX_MAX_MESSAGE];
    const struct conn c4 = {v4_src, v4_dst, v4_cip, 4};
    const struct conn c6 = {v6_src, v6_dst, v6_cip, 16};
    struct fv_ipfix_writer w;
    struct fv_ipfix_session s;
    struct tu_capture cap;
    size_t len;

    (void)state;
    fv_ipfix_writer_init(&w, buf, 1400);
    assert_int_equal(fv_ipfix_writer_add_template(&w, &fv_tmpl_agent_v4), 0);
    assert_int_equal(fv_ipfix_writer_add_template(&w, &fv_tmpl_agent_v6), 0);
    put_agent_record(&w, FV_TMPL_AGENT_V6, &c6);
    put_agent_record(&w, FV_TMPL_AGENT_V4, &c4);
    len = fv_ipfix_writer_finish(&w, 0, 0, DOMAIN);
    assert_int_equal(tu_count_sets(buf, len, 0, NULL), 3);

    tu_capture_init(&cap);
    fv_ipfix_session_init(&s, 0);
    assert_int_equal(tu_decode_bytes(&s, buf, len, 0, &cap), 0);
    assert_int_equal(cap.records, 2);
    assert_int_equal(cap.tmpl_id[0], FV_TMPL_AGENT_V6);
    assert_int_equal(cap.tmpl_id[1], FV_TMPL_AGENT_V4);
    assert_non_null(strstr(cap.json.p, "\"destinationClusterIPv6\":\"fd00::a\"}\n{"));
    assert_non_null(strstr(cap.json.p, "\"destinationClusterIPv4\":\"10.96.0.10\"}\n"));
    fv_ipfix_session_fini(&s);
    tu_capture_fini(&cap);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_agent_templates_have_every_field_in_the_registry),
        cmocka_unit_test(test_agent_v4_template_round_trips_with_registry_names),
        cmocka_unit_test(test_agent_v6_template_round_trips_with_registry_names),
        cmocka_unit_test(test_both_agent_templates_decode_side_by_side),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
