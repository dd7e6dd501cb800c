/*
 * test_agent_store.c - the agent's connection store: deltas, the active,
 * idle and end-of-flow export rules, sweeps, DESTROY events, counter
 * resets and the expiry order.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "agent/store.h"

#define ACTIVE 30000
#define IDLE 15000

/* Everything emitted, in order. */
struct sink {
    struct fv_conn_report r[64];
    int n;
    int fail; /* emit returns -1 while this is set */
};

static int emit(void *ctx, const struct fv_conn_report *r)
{
    struct sink *k = ctx;
    if (k->fail)
        return -1;
    assert_true(k->n < 64);
    k->r[k->n++] = *r;
    return 0;
}

static struct fv_agent_store *new_store(void)
{
    struct fv_agent_store_cfg cfg = {.active_timeout_ms = ACTIVE, .idle_timeout_ms = IDLE};
    struct fv_agent_store *s;
    assert_int_equal(fv_agent_store_new(&cfg, &s), 0);
    return s;
}

/* A TCP entry 10.0.0.<a>:<sport> -> 10.96.0.1:80 DNATed to 10.0.1.5:8080. */
static struct fv_ct_entry tcp_entry(int a, uint16_t sport, uint64_t bytes, uint8_t state)
{
    struct fv_ct_entry e;
    memset(&e, 0, sizeof(e));
    uint8_t src[4] = {10, 0, 0, (uint8_t)a}, dst[4] = {10, 96, 0, 1}, ep[4] = {10, 0, 1, 5};
    fv_ip_from_bytes(src, 4, &e.orig.src);
    fv_ip_from_bytes(dst, 4, &e.orig.dst);
    fv_ip_from_bytes(ep, 4, &e.reply.src);
    fv_ip_from_bytes(src, 4, &e.reply.dst);
    e.orig.sport = sport;
    e.orig.dport = 80;
    e.reply.sport = 8080;
    e.reply.dport = sport;
    e.proto = 6;
    e.tcp_state = state;
    e.orig_packets = bytes / 100;
    e.orig_bytes = bytes;
    e.reply_packets = bytes / 200;
    e.reply_bytes = bytes / 2;
    return e;
}

static void poll_once(struct fv_agent_store *s, struct fv_ct_entry *e, int n, uint64_t now,
                      struct sink *k)
{
    fv_agent_store_begin_sweep(s);
    for (int i = 0; i < n; i++)
        fv_agent_store_update(s, &e[i], now, (uint32_t)(now / 1000), emit, k);
    fv_agent_store_end_sweep(s, now, (uint32_t)(now / 1000), emit, k);
    fv_agent_store_expire(s, now, (uint32_t)(now / 1000), emit, k);
}

static void test_active_connection_is_exported_at_active_timeout_with_deltas(void **state)
{
    struct fv_agent_store *s = new_store();
    struct sink k = {0};
    struct fv_ct_entry e = tcp_entry(1, 40000, 1000, 3);
    (void)state;

    poll_once(s, &e, 1, 1000, &k);
    assert_int_equal(k.n, 0);
    /* Keep it active: it grows every 5 s, so the idle deadline never comes. */
    for (uint64_t t = 6000; t < 31000; t += 5000) {
        e = tcp_entry(1, 40000, 1000 + t, 3);
        poll_once(s, &e, 1, t, &k);
    }
    assert_int_equal(k.n, 0);
    e = tcp_entry(1, 40000, 40000, 3);
    poll_once(s, &e, 1, 31000, &k);
    assert_int_equal(k.n, 1);
    assert_int_equal(k.r[0].end_reason, FV_END_ACTIVE);
    assert_int_equal(k.r[0].octets, 40000);
    assert_int_equal(k.r[0].d_octets, 40000);
    assert_int_equal(k.r[0].d_rev_octets, 20000);
    assert_int_equal(k.r[0].endpoint_port, 8080);
    assert_int_equal(k.r[0].dport, 80);
    /* The next export carries only the growth. */
    for (uint64_t t = 36000; t <= 61000; t += 5000) {
        e = tcp_entry(1, 40000, 40000 + (t - 31000), 3);
        poll_once(s, &e, 1, t, &k);
    }
    assert_int_equal(k.n, 2);
    assert_int_equal(k.r[1].end_reason, FV_END_ACTIVE);
    assert_int_equal(k.r[1].octets, 70000);
    assert_int_equal(k.r[1].d_octets, 30000);
    fv_agent_store_free(s);
}

static void test_idle_connection_is_exported_once_then_again_after_a_change(void **state)
{
    struct fv_agent_store *s = new_store();
    struct sink k = {0};
    struct fv_ct_entry e = tcp_entry(2, 40001, 500, 3);
    (void)state;

    poll_once(s, &e, 1, 0, &k);
    for (uint64_t t = 5000; t <= 60000; t += 5000)
        poll_once(s, &e, 1, t, &k);
    assert_int_equal(k.n, 1);
    assert_int_equal(k.r[0].end_reason, FV_END_IDLE);
    assert_int_equal(k.r[0].d_octets, 500);
    e = tcp_entry(2, 40001, 800, 3);
    poll_once(s, &e, 1, 65000, &k);
    for (uint64_t t = 70000; t <= 100000; t += 5000)
        poll_once(s, &e, 1, t, &k);
    /* Its last export is older than the active timeout: the change goes
     * out at once as active, then the connection is reported idle again. */
    assert_int_equal(k.n, 3);
    assert_int_equal(k.r[1].end_reason, FV_END_ACTIVE);
    assert_int_equal(k.r[1].d_octets, 300);
    assert_int_equal(k.r[2].end_reason, FV_END_IDLE);
    assert_int_equal(k.r[2].d_octets, 0);
    fv_agent_store_free(s);
}

static void test_time_wait_is_exported_at_once_and_only_once(void **state)
{
    struct fv_agent_store *s = new_store();
    struct sink k = {0};
    struct fv_ct_entry e = tcp_entry(3, 40002, 100, 3);
    (void)state;

    poll_once(s, &e, 1, 0, &k);
    e = tcp_entry(3, 40002, 900, 7); /* TIME_WAIT */
    poll_once(s, &e, 1, 5000, &k);
    assert_int_equal(k.n, 1);
    assert_int_equal(k.r[0].end_reason, FV_END_OF_FLOW);
    assert_int_equal(k.r[0].d_octets, 900);
    assert_int_equal(k.r[0].tcp_state, 7);
    /* Still in the table for a while: silent; then gone: silent too. */
    poll_once(s, &e, 1, 10000, &k);
    poll_once(s, &e, 1, 60000, &k);
    poll_once(s, NULL, 0, 65000, &k);
    assert_int_equal(k.n, 1);
    struct fv_agent_store_stats st;
    fv_agent_store_stats(s, &st);
    assert_int_equal(st.tracked, 0);
    fv_agent_store_free(s);
}

static void test_connection_gone_from_dump_is_exported_with_end_of_flow(void **state)
{
    struct fv_agent_store *s = new_store();
    struct sink k = {0};
    struct fv_ct_entry e = tcp_entry(4, 40003, 1234, 3);
    (void)state;

    poll_once(s, &e, 1, 0, &k);
    poll_once(s, NULL, 0, 5000, &k);
    assert_int_equal(k.n, 1);
    assert_int_equal(k.r[0].end_reason, FV_END_OF_FLOW);
    assert_int_equal(k.r[0].d_octets, 1234);
    fv_agent_store_free(s);
}

static void test_destroy_of_unseen_connection_exports_exact_final_counters(void **state)
{
    struct fv_agent_store *s = new_store();
    struct sink k = {0};
    struct fv_ct_entry e = tcp_entry(5, 40004, 4321, 7);
    (void)state;

    e.stop_ns = 1234ull * 1000000000u;
    fv_agent_store_destroy(s, &e, 100, 1, emit, &k);
    assert_int_equal(k.n, 1);
    assert_int_equal(k.r[0].end_reason, FV_END_OF_FLOW);
    assert_int_equal(k.r[0].octets, 4321);
    assert_int_equal(k.r[0].d_octets, 4321);
    assert_int_equal(k.r[0].end_s, 1234);
    struct fv_agent_store_stats st;
    fv_agent_store_stats(s, &st);
    assert_int_equal(st.tracked, 0);
    fv_agent_store_free(s);
}

static void test_destroy_after_active_export_sends_only_the_rest(void **state)
{
    struct fv_agent_store *s = new_store();
    struct sink k = {0};
    struct fv_ct_entry e = tcp_entry(6, 40005, 1000, 3);
    (void)state;

    poll_once(s, &e, 1, 0, &k);
    for (uint64_t t = 5000; t <= 30000; t += 5000) {
        e = tcp_entry(6, 40005, 1000 + t, 3);
        poll_once(s, &e, 1, t, &k);
    }
    assert_int_equal(k.n, 1);
    e = tcp_entry(6, 40005, 50000, 8);
    fv_agent_store_destroy(s, &e, 32000, 32, emit, &k);
    assert_int_equal(k.n, 2);
    assert_int_equal(k.r[1].d_octets, 50000 - k.r[0].octets);
    assert_int_equal(k.r[0].d_octets + k.r[1].d_octets, 50000);
    fv_agent_store_free(s);
}

static void test_counter_reset_starts_a_new_connection(void **state)
{
    struct fv_agent_store *s = new_store();
    struct sink k = {0};
    struct fv_ct_entry e = tcp_entry(7, 40006, 9000, 3);
    (void)state;

    e.id = 1;
    poll_once(s, &e, 1, 0, &k);
    e = tcp_entry(7, 40006, 200, 3);
    e.id = 2; /* the kernel's new connection on the same tuple */
    poll_once(s, &e, 1, 5000, &k);
    for (uint64_t t = 10000; t <= 40000; t += 5000)
        poll_once(s, &e, 1, t, &k);
    assert_int_equal(k.n, 1);
    assert_int_equal(k.r[0].octets, 200);
    assert_int_equal(k.r[0].d_octets, 200);
    struct fv_agent_store_stats st;
    fv_agent_store_stats(s, &st);
    assert_int_equal(st.counter_resets, 1);
    fv_agent_store_free(s);
}

static void test_stale_new_event_after_the_final_export_changes_nothing(void **state)
{
    struct fv_agent_store *s = new_store();
    struct sink k = {0};
    struct fv_ct_entry e = tcp_entry(9, 40008, 600, 7);  /* seen in TIME_WAIT by a dump */
    struct fv_ct_entry born = tcp_entry(9, 40008, 0, 1); /* its NEW event, read later */
    (void)state;

    e.id = born.id = 77;
    fv_agent_store_begin_sweep(s);
    fv_agent_store_update(s, &e, 1000, 1, emit, &k);
    fv_agent_store_update(s, &born, 1000, 1, emit, &k);
    fv_agent_store_end_sweep(s, 1000, 1, emit, &k);
    assert_int_equal(k.n, 1);
    for (uint64_t t = 2000; t <= 40000; t += 1000)
        poll_once(s, &e, 1, t, &k);
    assert_int_equal(k.n, 1);
    assert_int_equal(k.r[0].d_octets, 600);
    fv_agent_store_free(s);
}

static void test_failed_emit_keeps_the_deltas_for_the_retry(void **state)
{
    struct fv_agent_store *s = new_store();
    struct sink k = {0};
    struct fv_ct_entry e = tcp_entry(8, 40007, 700, 3);
    (void)state;

    poll_once(s, &e, 1, 0, &k);
    k.fail = 1;
    poll_once(s, &e, 1, 16000, &k); /* idle deadline: emit fails */
    assert_int_equal(k.n, 0);
    k.fail = 0;
    poll_once(s, &e, 1, 17000, &k);
    assert_int_equal(k.n, 1);
    assert_int_equal(k.r[0].d_octets, 700);
    fv_agent_store_free(s);
}

static void test_deadlines_fire_in_order(void **state)
{
    struct fv_agent_store *s = new_store();
    struct sink k = {0};
    struct fv_ct_entry e[20];
    (void)state;

    /* Connection i is first seen at i*100 ms; all go idle in that order. */
    for (int i = 0; i < 20; i++) {
        e[i] = tcp_entry(20 + i, (uint16_t)(41000 + i), 100 + (uint64_t)i, 3);
        fv_agent_store_update(s, &e[i], (uint64_t)i * 100, 0, emit, &k);
    }
    for (uint64_t t = 0; t <= 20000; t += 50)
        fv_agent_store_expire(s, t, 0, emit, &k);
    assert_int_equal(k.n, 20);
    for (int i = 0; i < 20; i++)
        assert_int_equal(k.r[i].sport, 41000 + i);
    assert_int_equal(fv_agent_store_next_deadline(s, 20000), UINT64_MAX);
    fv_agent_store_free(s);
}

static void test_many_connections_and_removals_keep_the_index_consistent(void **state)
{
    struct fv_agent_store *s = new_store();
    struct sink k = {0};
    (void)state;

    /* Insert 5000, destroy every other one, then look all up again. */
    for (int i = 0; i < 5000; i++) {
        struct fv_ct_entry e = tcp_entry(1 + i % 200, (uint16_t)(1000 + i), 10, 3);
        fv_agent_store_update(s, &e, 0, 0, emit, &k);
    }
    for (int i = 0; i < 5000; i += 2) {
        struct fv_ct_entry e = tcp_entry(1 + i % 200, (uint16_t)(1000 + i), 10, 3);
        k.n = 0;
        fv_agent_store_destroy(s, &e, 1, 0, emit, &k);
        assert_int_equal(k.n, 1);
        assert_int_equal(k.r[0].sport, 1000 + i);
    }
    struct fv_agent_store_stats st;
    fv_agent_store_stats(s, &st);
    assert_int_equal(st.tracked, 2500);
    for (int i = 1; i < 5000; i += 2) {
        struct fv_ct_entry e = tcp_entry(1 + i % 200, (uint16_t)(1000 + i), 10, 3);
        k.n = 0;
        fv_agent_store_destroy(s, &e, 2, 0, emit, &k);
        assert_int_equal(k.n, 1);
        assert_int_equal(k.r[0].d_octets, 10); /* found: not a fresh entry */
    }
    fv_agent_store_stats(s, &st);
    assert_int_equal(st.tracked, 0);
    fv_agent_store_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_active_connection_is_exported_at_active_timeout_with_deltas),
        cmocka_unit_test(test_idle_connection_is_exported_once_then_again_after_a_change),
        cmocka_unit_test(test_time_wait_is_exported_at_once_and_only_once),
        cmocka_unit_test(test_connection_gone_from_dump_is_exported_with_end_of_flow),
        cmocka_unit_test(test_destroy_of_unseen_connection_exports_exact_final_counters),
        cmocka_unit_test(test_destroy_after_active_export_sends_only_the_rest),
        cmocka_unit_test(test_counter_reset_starts_a_new_connection),
        cmocka_unit_test(test_stale_new_event_after_the_final_export_changes_nothing),
        cmocka_unit_test(test_failed_emit_keeps_the_deltas_for_the_retry),
        cmocka_unit_test(test_deadlines_fire_in_order),
        cmocka_unit_test(test_many_connections_and_removals_keep_the_index_consistent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
