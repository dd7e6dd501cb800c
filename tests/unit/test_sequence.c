/*
 * test_sequence.c - sequence number accounting (RFC 7011 section 3.1: the
 * sequence number counts the data records sent before the message, per
 * observation domain, modulo 2^32).
 */
#include "testutil.h"

#define DOMAIN 11

struct fixture {
    struct fv_ipfix_session s;
    struct tu_capture cap;
    struct tu_msg m;
};

/* A message of `records` data records (of template 300) in `domain`. */
static void send_in(struct fixture *f, uint32_t domain, uint32_t seq, unsigned records)
{
    size_t set;

    tu_msg_begin(&f->m, seq, domain);
    if (records) {
        set = tu_set_begin(&f->m, 300);
        for (unsigned i = 0; i < records; i++)
            tu_u32(&f->m, seq + i);
        tu_set_end(&f->m, set);
    }
    tu_msg_end(&f->m);
    assert_int_equal(tu_decode(&f->s, &f->m, 0, &f->cap), 0);
}

static void send(struct fixture *f, uint32_t seq, unsigned records)
{
    send_in(f, DOMAIN, seq, records);
}

static void define_template(struct fixture *f, uint32_t domain, uint32_t seq)
{
    size_t set;

    tu_msg_begin(&f->m, seq, domain);
    set = tu_set_begin(&f->m, FV_IPFIX_SET_TEMPLATE);
    tu_u16(&f->m, 300);
    tu_u16(&f->m, 1);
    tu_field(&f->m, 0, 10, 4);
    tu_set_end(&f->m, set);
    tu_msg_end(&f->m);
    assert_int_equal(tu_decode(&f->s, &f->m, 0, &f->cap), 0);
}

static int setup(void **state)
{
    struct fixture *f = malloc(sizeof(*f));

    assert_non_null(f);
    fv_ipfix_session_init(&f->s, 0);
    tu_capture_init(&f->cap);
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

static void test_in_order_messages_count_no_loss(void **state)
{
    struct fixture *f = *state;

    define_template(f, DOMAIN, 100);
    send(f, 100, 5);
    send(f, 105, 1);
    send(f, 106, 0); /* no data records: the next one has the same number */
    send(f, 106, 3);
    assert_int_equal(tu_stats(&f->s, DOMAIN)->lost, 0);
    assert_int_equal(tu_stats(&f->s, DOMAIN)->reordered, 0);
    assert_int_equal(tu_stats(&f->s, DOMAIN)->records, 9);
    assert_int_equal(tu_stats(&f->s, DOMAIN)->messages, 5);
}

static void test_first_message_sets_the_expectation_without_loss(void **state)
{
    struct fixture *f = *state;

    define_template(f, DOMAIN, 123456);
    send(f, 123456, 2);
    assert_int_equal(tu_stats(&f->s, DOMAIN)->lost, 0);
    assert_true(fv_ipfix_session_domain(&f->s, DOMAIN)->seq_valid);
    assert_int_equal(fv_ipfix_session_domain(&f->s, DOMAIN)->next_seq, 123458);
}

static void test_sequence_gap_counts_exactly_the_missing_records(void **state)
{
    struct fixture *f = *state;

    define_template(f, DOMAIN, 0);
    send(f, 0, 5);  /* expects 5 next */
    send(f, 12, 3); /* 5..11 missing */
    assert_int_equal(tu_stats(&f->s, DOMAIN)->lost, 7);
    send(f, 15, 1);
    send(f, 1016, 1); /* 16..1015 missing */
    assert_int_equal(tu_stats(&f->s, DOMAIN)->lost, 1007);
    assert_int_equal(tu_stats(&f->s, DOMAIN)->reordered, 0);
}

static void test_late_message_counts_reordered_and_reduces_lost(void **state)
{
    struct fixture *f = *state;

    define_template(f, DOMAIN, 0);
    send(f, 0, 5);
    send(f, 12, 3); /* lost 7, expects 15 */
    send(f, 5, 4);  /* 5..8 arrive late */
    assert_int_equal(tu_stats(&f->s, DOMAIN)->reordered, 4);
    assert_int_equal(tu_stats(&f->s, DOMAIN)->lost, 3);
    /* The expectation stays where the newest message put it. */
    assert_int_equal(fv_ipfix_session_domain(&f->s, DOMAIN)->next_seq, 15);
    send(f, 15, 1);
    assert_int_equal(tu_stats(&f->s, DOMAIN)->lost, 3);
    send(f, 9, 3); /* the rest of the gap */
    assert_int_equal(tu_stats(&f->s, DOMAIN)->lost, 0);
    assert_int_equal(tu_stats(&f->s, DOMAIN)->reordered, 7);
}

static void test_late_message_never_drives_lost_below_zero(void **state)
{
    struct fixture *f = *state;

    define_template(f, DOMAIN, 0);
    send(f, 0, 5);
    send(f, 6, 1); /* lost 1 */
    send(f, 0, 5); /* a duplicate of the first */
    assert_int_equal(tu_stats(&f->s, DOMAIN)->lost, 0);
    assert_int_equal(tu_stats(&f->s, DOMAIN)->reordered, 5);
}

static void test_sequence_wraps_around_at_2_32(void **state)
{
    struct fixture *f = *state;

    define_template(f, DOMAIN, 0xfffffffeu);
    send(f, 0xfffffffeu, 5); /* 0xfffffffe .. 2 */
    assert_int_equal(fv_ipfix_session_domain(&f->s, DOMAIN)->next_seq, 3);
    send(f, 3, 2);
    assert_int_equal(tu_stats(&f->s, DOMAIN)->lost, 0);
    assert_int_equal(tu_stats(&f->s, DOMAIN)->reordered, 0);
}

static void test_gap_across_the_wrap_counts_lost_exactly(void **state)
{
    struct fixture *f = *state;

    define_template(f, DOMAIN, 0xfffffff0u);
    send(f, 0xfffffff0u, 4); /* expects 0xfffffff4 */
    send(f, 10, 1);          /* 12 before the wrap + 10 after */
    assert_int_equal(tu_stats(&f->s, DOMAIN)->lost, 22);
    send(f, 0xfffffffau, 2); /* late, from before the wrap */
    assert_int_equal(tu_stats(&f->s, DOMAIN)->lost, 20);
    assert_int_equal(tu_stats(&f->s, DOMAIN)->reordered, 2);
}

static void test_sequence_is_accounted_per_observation_domain(void **state)
{
    struct fixture *f = *state;

    define_template(f, 1, 0);
    define_template(f, 2, 500);
    send_in(f, 1, 0, 3);
    send_in(f, 2, 500, 3);
    send_in(f, 1, 3, 1);
    send_in(f, 2, 510, 1);
    assert_int_equal(tu_stats(&f->s, 1)->lost, 0);
    assert_int_equal(tu_stats(&f->s, 2)->lost, 7);
}

/* Records of a data set whose template is unknown were still sent: the
 * next message's number shows them as lost, which they are to us. */
static void test_records_without_template_show_up_as_lost(void **state)
{
    struct fixture *f = *state;

    send(f, 0, 4); /* no template yet: skipped, not counted */
    assert_int_equal(tu_stats(&f->s, DOMAIN)->missing_template, 1);
    define_template(f, DOMAIN, 4);
    assert_int_equal(tu_stats(&f->s, DOMAIN)->lost, 4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_in_order_messages_count_no_loss, setup, teardown),
        cmocka_unit_test_setup_teardown(test_first_message_sets_the_expectation_without_loss, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_sequence_gap_counts_exactly_the_missing_records, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_late_message_counts_reordered_and_reduces_lost, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_late_message_never_drives_lost_below_zero, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_sequence_wraps_around_at_2_32, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gap_across_the_wrap_counts_lost_exactly, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_sequence_is_accounted_per_observation_domain, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_records_without_template_show_up_as_lost, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
