/*
 * test_ie.c - the information element registry (ipfix/ie.h): IANA rows,
 * the derived RFC 5103 reverse elements and the Antrea elements.
 */
#include "testutil.h"

#include <stdio.h>

static void expect_ie(uint32_t pen, uint16_t id, const char *name, enum fv_ie_type type,
                      uint16_t length)
{
    const struct fv_ie *ie = fv_ie_find(pen, id);

    if (ie == NULL)
        fail_msg("%u/%u (%s) not found", pen, id, name);
    assert_int_equal(ie->pen, pen);
    assert_int_equal(ie->id, id);
    assert_string_equal(ie->name, name);
    assert_int_equal(ie->type, type);
    assert_int_equal(ie->length, length);
    /* And back by name. */
    assert_ptr_equal(fv_ie_find_name(name), ie);
}

static void test_iana_elements_are_found_by_id_and_name(void **state)
{
    (void)state;
    expect_ie(0, 1, "octetDeltaCount", FV_IE_U64, 8);
    expect_ie(0, 4, "protocolIdentifier", FV_IE_U8, 1);
    expect_ie(0, 8, "sourceIPv4Address", FV_IE_IPV4, 4);
    expect_ie(0, 27, "sourceIPv6Address", FV_IE_IPV6, 16);
    expect_ie(0, 56, "sourceMacAddress", FV_IE_MAC, 6);
    expect_ie(0, 82, "interfaceName", FV_IE_STRING, FV_IE_VARLEN);
    expect_ie(0, 150, "flowStartSeconds", FV_IE_DT_S, 4);
    expect_ie(0, 152, "flowStartMilliseconds", FV_IE_DT_MS, 8);
    expect_ie(0, 405, "originalObservationDomainId", FV_IE_U32, 4);
    assert_null(fv_ie_find(0, 0));
    assert_null(fv_ie_find(0, 999));
}

static void test_reverse_elements_have_pen_29305_and_reverse_names(void **state)
{
    (void)state;
    expect_ie(FV_PEN_REVERSE, 1, "reverseOctetDeltaCount", FV_IE_U64, 8);
    expect_ie(FV_PEN_REVERSE, 2, "reversePacketDeltaCount", FV_IE_U64, 8);
    expect_ie(FV_PEN_REVERSE, 85, "reverseOctetTotalCount", FV_IE_U64, 8);
    expect_ie(FV_PEN_REVERSE, 86, "reversePacketTotalCount", FV_IE_U64, 8);
    expect_ie(FV_PEN_REVERSE, 6, "reverseTcpControlBits", FV_IE_U16, 2);
    expect_ie(FV_PEN_REVERSE, 8, "reverseSourceIPv4Address", FV_IE_IPV4, 4);
    expect_ie(FV_PEN_REVERSE, 236, "reverseVRFname", FV_IE_STRING, FV_IE_VARLEN);
}

/* RFC 5103 section 6.1: process and template machinery elements have no
 * reverse counterpart. */
static void test_non_reversible_elements_have_no_reverse_form(void **state)
{
    static const uint16_t never[] = {40,  41,  42,  130, 131, 137, 138, 141, 142, 143, 144, 145,
                                     148, 149, 160, 163, 164, 165, 166, 167, 168, 210, 211, 212,
                                     213, 214, 215, 216, 217, 239, 291, 292, 293, 403, 404, 405};

    (void)state;
    for (size_t i = 0; i < sizeof(never) / sizeof(never[0]); i++) {
        const struct fv_ie *ie = fv_ie_find(0, never[i]);
        char name[96];
        assert_non_null(ie);
        if (fv_ie_find(FV_PEN_REVERSE, never[i]) != NULL)
            fail_msg("%s (%u) must not have a reverse form", ie->name, never[i]);
        snprintf(name, sizeof(name), "reverse%c%s", ie->name[0] - 'a' + 'A', ie->name + 1);
        assert_null(fv_ie_find_name(name));
    }
}

static void test_antrea_elements_100_to_167_are_all_present(void **state)
{
    (void)state;
    for (uint16_t id = 100; id <= 167; id++) {
        const struct fv_ie *ie = fv_ie_find(FV_PEN_ANTREA, id);
        if (ie == NULL)
            fail_msg("Antrea element %u missing", id);
        assert_int_equal(ie->pen, FV_PEN_ANTREA);
        assert_ptr_equal(fv_ie_find_name(ie->name), ie);
    }
    assert_null(fv_ie_find(FV_PEN_ANTREA, 99));
    assert_null(fv_ie_find(FV_PEN_ANTREA, 168));
    expect_ie(FV_PEN_ANTREA, 100, "sourcePodNamespace", FV_IE_STRING, FV_IE_VARLEN);
    expect_ie(FV_PEN_ANTREA, 101, "sourcePodName", FV_IE_STRING, FV_IE_VARLEN);
    expect_ie(FV_PEN_ANTREA, 106, "destinationClusterIPv4", FV_IE_IPV4, 4);
    expect_ie(FV_PEN_ANTREA, 107, "destinationClusterIPv6", FV_IE_IPV6, 16);
    expect_ie(FV_PEN_ANTREA, 108, "destinationServicePort", FV_IE_U16, 2);
    expect_ie(FV_PEN_ANTREA, 116, "ingressNetworkPolicyRulePriority", FV_IE_I32, 4);
    expect_ie(FV_PEN_ANTREA, 137, "flowType", FV_IE_U8, 1);
    expect_ie(FV_PEN_ANTREA, 151, "flowEndSecondsFromSourceNode", FV_IE_DT_S, 4);
    expect_ie(FV_PEN_ANTREA, 167, "egressNodeUUID", FV_IE_OCTETS, FV_IE_VARLEN);
    /* Antrea's own "reverse..." elements are not RFC 5103 ones. */
    expect_ie(FV_PEN_ANTREA, 146, "reverseThroughput", FV_IE_U64, 8);
}

static void test_unknown_names_are_not_found(void **state)
{
    (void)state;
    assert_null(fv_ie_find_name("noSuchElement"));
    assert_null(fv_ie_find_name(""));
    assert_null(fv_ie_find_name("OctetDeltaCount")); /* names are case-sensitive */
    assert_null(fv_ie_find_name("reverseoctetDeltaCount"));
    assert_null(fv_ie_find(FV_PEN_REVERSE, 999));
    assert_null(fv_ie_find(12345, 1));
}

struct walk {
    unsigned count;
    const struct fv_ie *prev;
    const char *names[1024];
};

static void collect(const struct fv_ie *ie, void *arg)
{
    struct walk *w = arg;

    if (w->prev != NULL)
        assert_true(w->prev->pen < ie->pen || (w->prev->pen == ie->pen && w->prev->id < ie->id));
    assert_true(w->count < 1024);
    w->names[w->count++] = ie->name;
    w->prev = ie;
    /* Every entry's length agrees with its type. */
    assert_int_equal(ie->length, fv_ie_type_length((enum fv_ie_type)ie->type));
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void test_registry_is_sorted_with_unique_ids_and_names(void **state)
{
    static struct walk w;

    (void)state;
    fv_ie_foreach(collect, &w);
    assert_true(w.count > 300);
    qsort(w.names, w.count, sizeof(w.names[0]), cmp_str);
    for (unsigned i = 1; i < w.count; i++)
        if (strcmp(w.names[i - 1], w.names[i]) == 0)
            fail_msg("name %s appears twice", w.names[i]);
}

static void test_types_have_registry_names_and_natural_lengths(void **state)
{
    (void)state;
    assert_string_equal(fv_ie_type_name(FV_IE_OCTETS), "octetArray");
    assert_string_equal(fv_ie_type_name(FV_IE_U64), "unsigned64");
    assert_string_equal(fv_ie_type_name(FV_IE_I8), "signed8");
    assert_string_equal(fv_ie_type_name(FV_IE_F32), "float32");
    assert_string_equal(fv_ie_type_name(FV_IE_BOOL), "boolean");
    assert_string_equal(fv_ie_type_name(FV_IE_MAC), "macAddress");
    assert_string_equal(fv_ie_type_name(FV_IE_DT_NS), "dateTimeNanoseconds");
    assert_string_equal(fv_ie_type_name(FV_IE_IPV6), "ipv6Address");
    assert_string_equal(fv_ie_type_name(FV_IE_STML), "subTemplateMultiList");
    assert_string_equal(fv_ie_type_name((enum fv_ie_type)23), "unknown");
    assert_int_equal(fv_ie_type_length(FV_IE_BOOL), 1);
    assert_int_equal(fv_ie_type_length(FV_IE_I16), 2);
    assert_int_equal(fv_ie_type_length(FV_IE_F32), 4);
    assert_int_equal(fv_ie_type_length(FV_IE_DT_S), 4);
    assert_int_equal(fv_ie_type_length(FV_IE_MAC), 6);
    assert_int_equal(fv_ie_type_length(FV_IE_DT_US), 8);
    assert_int_equal(fv_ie_type_length(FV_IE_IPV6), 16);
    assert_int_equal(fv_ie_type_length(FV_IE_STRING), FV_IE_VARLEN);
    assert_int_equal(fv_ie_type_length(FV_IE_BASICLIST), FV_IE_VARLEN);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_iana_elements_are_found_by_id_and_name),
        cmocka_unit_test(test_reverse_elements_have_pen_29305_and_reverse_names),
        cmocka_unit_test(test_non_reversible_elements_have_no_reverse_form),
        cmocka_unit_test(test_antrea_elements_100_to_167_are_all_present),
        cmocka_unit_test(test_unknown_names_are_not_found),
        cmocka_unit_test(test_registry_is_sorted_with_unique_ids_and_names),
        cmocka_unit_test(test_types_have_registry_names_and_natural_lengths),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
