/*
 * test_agent_denied.c - the denied-connection store: the first export
 * after the burst delay, active re-exports with deltas, the last idle
 * export and removal, flush, refused emits, the max_entries bound, IPv6
 * keys, reject over drop, and an index that survives many removals.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "agent/denied.h"
#include "agent/store.h"

#define ACTIVE 30000
#define IDLE 15000
#define FIRST 1000

/* Everything emitted, in order. */
struct sink {
    struct fv_denied_report r[64];
    char prefix[64][FV_NFLOG_PREFIX_MAX]; /* r[i].prefix is borrowed: keep a copy */
    int n;
    int calls; /* emit calls, refused ones included */
    int fail;  /* emit returns -1 while this is set */
};

static int emit(void *ctx, const struct fv_denied_report *r)
{
    struct sink *k = ctx;

    k->calls++;
    if (k->fail)
        return -1;
    assert_true(k->n < 64);
    k->r[k->n] = *r;
    snprintf(k->prefix[k->n], sizeof(k->prefix[0]), "%s", r->prefix);
    k->r[k->n].prefix = k->prefix[k->n];
    k->n++;
    return 0;
}

static struct fv_denied *new_store(uint32_t max_entries)
{
    struct fv_denied_cfg cfg = {.active_timeout_ms = ACTIVE,
                                .idle_timeout_ms = IDLE,
                                .first_export_delay_ms = FIRST,
                                .max_entries = max_entries};
    struct fv_denied *d;
    assert_int_equal(fv_denied_new(&cfg, &d), 0);
    return d;
}

/* A logged packet src:sport -> dst:dport; addresses as text. */
static struct fv_nflog_packet pkt(const char *src, uint16_t sport, const char *dst, uint16_t dport,
                                  uint8_t proto, uint32_t len)
{
    struct fv_nflog_packet p;

    memset(&p, 0, sizeof(p));
    assert_int_equal(fv_ip_parse(src, &p.src), 0);
    assert_int_equal(fv_ip_parse(dst, &p.dst), 0);
    p.sport = sport;
    p.dport = dport;
    p.proto = proto;
    p.len = len;
    p.group = 100;
    p.action = FV_NFLOG_DROP;
    snprintf(p.prefix, sizeof(p.prefix), "deny-ingress");
    return p;
}

/* A TCP SYN from 10.0.0.<a>:<sport> to 10.0.1.5:80. */
static struct fv_nflog_packet syn(int a, uint16_t sport)
{
    char src[32];
    snprintf(src, sizeof(src), "10.0.0.%d", a);
    return pkt(src, sport, "10.0.1.5", 80, 6, 60);
}

static void add(struct fv_denied *d, const struct fv_nflog_packet *p, uint64_t ms)
{
    fv_denied_add(d, p, ms, (uint32_t)(1700000000 + ms / 1000));
}

static void expire(struct fv_denied *d, uint64_t ms, struct sink *k)
{
    fv_denied_expire(d, ms, (uint32_t)(1700000000 + ms / 1000), emit, k);
}

static uint64_t entries(const struct fv_denied *d)
{
    struct fv_denied_stats st;
    fv_denied_stats(d, &st);
    return st.entries;
}

static void test_syn_retransmissions_of_the_first_second_land_in_one_first_export(void **state)
{
    struct fv_denied *d = new_store(0);
    struct fv_nflog_packet p = syn(1, 40000);
    struct sink k = {0};
    char ip[FV_IP_STRLEN];
    (void)state;

    add(d, &p, 5000);
    assert_int_equal(fv_denied_next_deadline(d, 5000), FIRST);
    add(d, &p, 5200);
    add(d, &p, 5900);
    expire(d, 5999, &k);
    assert_int_equal(k.n, 0);
    expire(d, 6000, &k);
    assert_int_equal(k.n, 1);
    assert_int_equal(k.r[0].end_reason, FV_END_ACTIVE);
    assert_int_equal(k.r[0].packets, 3);
    assert_int_equal(k.r[0].octets, 180);
    assert_int_equal(k.r[0].d_packets, 3);
    assert_int_equal(k.r[0].d_octets, 180);
    assert_int_equal(k.r[0].start_s, 1700000005);
    assert_int_equal(k.r[0].end_s, 1700000005);
    assert_int_equal(k.r[0].action, FV_NFLOG_DROP);
    assert_int_equal(k.r[0].proto, 6);
    assert_int_equal(k.r[0].sport, 40000);
    assert_int_equal(k.r[0].dport, 80);
    assert_string_equal(fv_ip_str(&k.r[0].src, ip), "10.0.0.1");
    assert_string_equal(fv_ip_str(&k.r[0].dst, ip), "10.0.1.5");
    assert_string_equal(k.r[0].prefix, "deny-ingress");
    /* Nothing new: no second record at the next calls. */
    expire(d, 6100, &k);
    assert_int_equal(k.n, 1);
    fv_denied_free(d);
}

static void
test_growing_denied_connection_is_exported_every_active_timeout_with_deltas(void **state)
{
    struct fv_denied *d = new_store(0);
    struct fv_nflog_packet p = syn(2, 40001);
    struct sink k = {0};
    (void)state;

    /* One packet every 5 s from t=0: never idle. */
    add(d, &p, 0);
    expire(d, 1000, &k); /* the first export */
    assert_int_equal(k.n, 1);
    for (uint64_t t = 5000; t <= 30000; t += 5000) {
        add(d, &p, t);
        expire(d, t, &k);
    }
    assert_int_equal(k.n, 1);
    assert_int_equal(k.r[0].packets, 1);
    /* The active deadline is the first export + 30 s = 31000. */
    expire(d, 30999, &k);
    assert_int_equal(k.n, 1);
    expire(d, 31000, &k);
    assert_int_equal(k.n, 2);
    assert_int_equal(k.r[1].end_reason, FV_END_ACTIVE);
    assert_int_equal(k.r[1].packets, 7);
    assert_int_equal(k.r[1].octets, 420);
    assert_int_equal(k.r[1].d_packets, 6);
    assert_int_equal(k.r[1].d_octets, 360);
    assert_int_equal(k.r[1].start_s, 1700000000);
    assert_int_equal(k.r[1].end_s, 1700000030);
    /* And again 30 s later with only what came since. */
    for (uint64_t t = 35000; t <= 60000; t += 5000) {
        add(d, &p, t);
        expire(d, t, &k);
    }
    assert_int_equal(k.n, 2);
    expire(d, 61000, &k);
    assert_int_equal(k.n, 3);
    assert_int_equal(k.r[2].packets, 13);
    assert_int_equal(k.r[2].d_packets, 6);
    assert_int_equal(k.r[2].d_octets, 360);
    fv_denied_free(d);
}

static void test_idle_denied_connection_is_exported_a_last_time_then_removed(void **state)
{
    struct fv_denied *d = new_store(0);
    struct fv_nflog_packet p = syn(3, 40002);
    struct sink k = {0};
    (void)state;

    add(d, &p, 0);
    expire(d, 1000, &k);
    assert_int_equal(k.n, 1);
    add(d, &p, 3000); /* after the first export: unexported */
    /* Idle 15 s after the last packet, not the first. */
    expire(d, 17999, &k);
    assert_int_equal(k.n, 1);
    assert_int_equal(fv_denied_next_deadline(d, 17999), 1);
    expire(d, 18000, &k);
    assert_int_equal(k.n, 2);
    assert_int_equal(k.r[1].end_reason, FV_END_IDLE);
    assert_int_equal(k.r[1].packets, 2);
    assert_int_equal(k.r[1].d_packets, 1);
    assert_int_equal(k.r[1].d_octets, 60);
    assert_int_equal(k.r[1].end_s, 1700000003);
    assert_int_equal(entries(d), 0);
    assert_int_equal(fv_denied_next_deadline(d, 18000), UINT64_MAX);
    /* The same 5-tuple later is a new denied connection. */
    add(d, &p, 50000);
    expire(d, 51000, &k);
    assert_int_equal(k.n, 3);
    assert_int_equal(k.r[2].packets, 1);
    assert_int_equal(k.r[2].start_s, 1700000050);
    fv_denied_free(d);
}

static void test_idle_denied_connection_with_nothing_new_is_removed_silently(void **state)
{
    struct fv_denied *d = new_store(0);
    struct fv_nflog_packet p = syn(4, 40003);
    struct sink k = {0};
    struct fv_denied_stats st;
    (void)state;

    add(d, &p, 0);
    add(d, &p, 900);
    expire(d, 1000, &k);
    assert_int_equal(k.n, 1);
    expire(d, 15899, &k);
    assert_int_equal(entries(d), 1);
    expire(d, 15900, &k);
    assert_int_equal(k.n, 1);
    assert_int_equal(k.calls, 1);
    fv_denied_stats(d, &st);
    assert_int_equal(st.entries, 0);
    assert_int_equal(st.exported, 1);
    fv_denied_free(d);
}

static void
test_burst_shorter_than_the_first_delay_still_gets_one_record_if_idle_first(void **state)
{
    struct fv_denied_cfg cfg = {
        .active_timeout_ms = ACTIVE, .idle_timeout_ms = 500, .first_export_delay_ms = 2000};
    struct fv_nflog_packet p = syn(5, 40004);
    struct fv_denied *d;
    struct sink k = {0};
    (void)state;

    /* An idle timeout shorter than the delay: the idle export comes first. */
    assert_int_equal(fv_denied_new(&cfg, &d), 0);
    add(d, &p, 0);
    expire(d, 499, &k);
    assert_int_equal(k.n, 0);
    expire(d, 500, &k);
    assert_int_equal(k.n, 1);
    assert_int_equal(k.r[0].end_reason, FV_END_IDLE);
    assert_int_equal(k.r[0].d_packets, 1);
    assert_int_equal(entries(d), 0);
    fv_denied_free(d);
}

static void test_flush_exports_everything_unexported_with_reason_forced(void **state)
{
    struct fv_denied *d = new_store(0);
    struct fv_nflog_packet a = syn(6, 40005), b = syn(7, 40006), c = syn(8, 40007);
    struct sink k = {0};
    (void)state;

    add(d, &a, 0);
    add(d, &b, 0);
    expire(d, 1000, &k); /* a and b exported */
    assert_int_equal(k.n, 2);
    add(d, &a, 2000); /* a grows, b does not, c is new */
    add(d, &c, 2000);
    k.n = 0;
    fv_denied_flush(d, 2500, 1700000002, emit, &k);
    assert_int_equal(k.n, 2);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(k.r[i].end_reason, FV_END_FORCED);
        assert_int_equal(k.r[i].d_packets, 1);
        assert_true(k.r[i].sport == 40005 || k.r[i].sport == 40007);
    }
    assert_int_equal(k.r[0].sport == 40005 ? k.r[0].packets : k.r[1].packets, 2);
    /* A second flush has nothing left to say. */
    fv_denied_flush(d, 2600, 1700000002, emit, &k);
    assert_int_equal(k.n, 2);
    fv_denied_free(d);
}

static void test_refused_emit_keeps_the_counters_and_is_retried_at_the_next_expire(void **state)
{
    struct fv_denied *d = new_store(0);
    struct fv_nflog_packet a = syn(9, 40008), b = syn(10, 40009);
    struct sink k = {0};
    struct fv_denied_stats st;
    (void)state;

    add(d, &a, 0);
    add(d, &b, 10);
    add(d, &a, 20);
    k.fail = 1;
    expire(d, 2000, &k);
    /* The first refusal ends the pass: b is not even tried. */
    assert_int_equal(k.calls, 1);
    assert_int_equal(k.n, 0);
    /* Due, but poll() is not told to spin while the consumer is full. */
    assert_int_equal(fv_denied_next_deadline(d, 2000), 1000);
    k.fail = 0;
    expire(d, 2001, &k);
    assert_int_equal(k.n, 2);
    assert_int_equal(k.r[0].sport, 40008);
    assert_int_equal(k.r[0].d_packets, 2);
    assert_int_equal(k.r[0].d_octets, 120);
    assert_int_equal(k.r[1].d_packets, 1);
    fv_denied_stats(d, &st);
    assert_int_equal(st.exported, 2);
    /* A refused idle export keeps the entry and its unexported packet. */
    add(d, &a, 5000);
    k.fail = 1;
    expire(d, 20000, &k);
    assert_int_equal(entries(d), 1); /* b had nothing new: gone without a record */
    k.fail = 0;
    k.n = 0;
    expire(d, 20001, &k);
    assert_int_equal(k.n, 1);
    assert_int_equal(k.r[0].end_reason, FV_END_IDLE);
    assert_int_equal(k.r[0].d_packets, 1);
    assert_int_equal(k.r[0].packets, 3);
    assert_int_equal(entries(d), 0);
    fv_denied_free(d);
}

static void test_new_keys_beyond_max_entries_are_counted_not_stored(void **state)
{
    struct fv_denied *d = new_store(3);
    struct sink k = {0};
    struct fv_denied_stats st;
    (void)state;

    for (int i = 0; i < 5; i++) {
        struct fv_nflog_packet p = syn(20 + i, 41000);
        add(d, &p, 0);
    }
    /* Known keys still count. */
    struct fv_nflog_packet first = syn(20, 41000);
    add(d, &first, 100);
    fv_denied_stats(d, &st);
    assert_int_equal(st.entries, 3);
    assert_int_equal(st.untracked_full, 2);
    expire(d, 1000, &k);
    assert_int_equal(k.n, 3);
    for (int i = 0; i < 3; i++)
        assert_int_equal(k.r[i].packets, k.r[i].src.a[3] == 20 ? 2 : 1);
    /* Once they are gone there is room again. */
    expire(d, 16000, &k);
    struct fv_nflog_packet late = syn(24, 41000);
    add(d, &late, 16000);
    fv_denied_stats(d, &st);
    assert_int_equal(st.entries, 1);
    assert_int_equal(st.untracked_full, 2);
    fv_denied_free(d);
}

static void test_ipv6_keys_are_distinct_from_ipv4_keys_with_the_same_bytes(void **state)
{
    struct fv_denied *d = new_store(0);
    /* 0a00:0001:: starts with the bytes of 10.0.0.1. */
    struct fv_nflog_packet v4 = pkt("10.0.0.1", 5000, "10.0.1.5", 53, 17, 80);
    struct fv_nflog_packet v6 = pkt("a00:1::", 5000, "a00:105::", 53, 17, 100);
    struct fv_nflog_packet v6b = pkt("fd00:10:244:1::5", 5000, "fd00:10:244:2::9", 53, 17, 100);
    struct sink k = {0};
    char ip[FV_IP_STRLEN];
    int seen = 0;
    (void)state;

    add(d, &v4, 0);
    add(d, &v6, 0);
    add(d, &v6b, 0);
    add(d, &v6b, 1);
    assert_int_equal(entries(d), 3);
    expire(d, 1001, &k);
    assert_int_equal(k.n, 3);
    for (int i = 0; i < 3; i++) {
        if (k.r[i].src.family == AF_INET) {
            assert_int_equal(k.r[i].octets, 80);
            seen |= 1;
        } else if (k.r[i].packets == 2) {
            assert_int_equal(k.r[i].src.family, AF_INET6);
            assert_string_equal(fv_ip_str(&k.r[i].src, ip), "fd00:10:244:1::5");
            assert_string_equal(fv_ip_str(&k.r[i].dst, ip), "fd00:10:244:2::9");
            assert_int_equal(k.r[i].octets, 200);
            seen |= 2;
        } else {
            assert_string_equal(fv_ip_str(&k.r[i].src, ip), "a00:1::");
            seen |= 4;
        }
    }
    assert_int_equal(seen, 7);
    fv_denied_free(d);
}

static void test_reject_wins_over_drop_and_the_first_prefix_stays(void **state)
{
    struct fv_denied *d = new_store(0);
    struct fv_nflog_packet p = syn(30, 42000);
    struct sink k = {0};
    (void)state;

    add(d, &p, 0);
    p.action = FV_NFLOG_REJECT;
    snprintf(p.prefix, sizeof(p.prefix), "reject-egress");
    add(d, &p, 10);
    p.action = FV_NFLOG_DROP;
    snprintf(p.prefix, sizeof(p.prefix), "other");
    add(d, &p, 20);
    expire(d, 1000, &k);
    assert_int_equal(k.n, 1);
    assert_int_equal(k.r[0].action, FV_NFLOG_REJECT);
    assert_string_equal(k.r[0].prefix, "deny-ingress");
    assert_int_equal(k.r[0].packets, 3);
    fv_denied_free(d);
}

static void test_longest_prefix_is_kept_whole(void **state)
{
    struct fv_denied *d = new_store(0);
    struct fv_nflog_packet p = syn(31, 42001);
    struct sink k = {0};
    (void)state;

    memset(p.prefix, 'x', sizeof(p.prefix) - 1);
    p.prefix[sizeof(p.prefix) - 1] = '\0';
    add(d, &p, 0);
    expire(d, 1000, &k);
    assert_int_equal(k.n, 1);
    assert_int_equal(strlen(k.r[0].prefix), FV_NFLOG_PREFIX_MAX - 1);
    fv_denied_free(d);
}

static void test_ports_and_protocol_are_part_of_the_key(void **state)
{
    struct fv_denied *d = new_store(0);
    struct fv_nflog_packet tcp = pkt("10.0.0.1", 1000, "10.0.0.2", 80, 6, 60);
    struct fv_nflog_packet udp = pkt("10.0.0.1", 1000, "10.0.0.2", 80, 17, 60);
    struct fv_nflog_packet tcp443 = pkt("10.0.0.1", 1000, "10.0.0.2", 443, 6, 60);
    struct fv_nflog_packet tcp1001 = pkt("10.0.0.1", 1001, "10.0.0.2", 80, 6, 60);
    struct fv_nflog_packet back = pkt("10.0.0.2", 80, "10.0.0.1", 1000, 6, 60);
    (void)state;

    add(d, &tcp, 0);
    add(d, &udp, 0);
    add(d, &tcp443, 0);
    add(d, &tcp1001, 0);
    add(d, &back, 0);
    add(d, &tcp, 0);
    assert_int_equal(entries(d), 5);
    fv_denied_free(d);
}

static void test_deadlines_fire_in_order_of_first_sight(void **state)
{
    struct fv_denied *d = new_store(0);
    struct sink k = {0};
    (void)state;

    for (int i = 19; i >= 0; i--) {
        struct fv_nflog_packet p = syn(40 + i, (uint16_t)(43000 + i));
        add(d, &p, (uint64_t)i * 100);
    }
    for (uint64_t t = 0; t <= 3000; t += 50)
        expire(d, t, &k);
    assert_int_equal(k.n, 20);
    for (int i = 0; i < 20; i++)
        assert_int_equal(k.r[i].sport, 43000 + i);
    fv_denied_free(d);
}

/* Counts records and sums their deltas. */
struct tally {
    uint64_t records, d_packets;
};

static int emit_tally(void *ctx, const struct fv_denied_report *r)
{
    struct tally *t = ctx;
    t->records++;
    t->d_packets += r->d_packets;
    return 0;
}

static void test_many_keys_and_removals_keep_the_index_consistent(void **state)
{
    struct fv_denied *d = new_store(0);
    struct tally t = {0};
    (void)state;

    /* 5000 keys; the odd ones keep sending, the even ones go idle and are
     * removed; then every survivor must still be found, not duplicated. */
    for (int i = 0; i < 5000; i++) {
        struct fv_nflog_packet p = syn(1 + i % 200, (uint16_t)(1000 + i));
        add(d, &p, 0);
    }
    fv_denied_expire(d, 1000, 0, emit_tally, &t);
    assert_int_equal(t.records, 5000);
    for (int i = 1; i < 5000; i += 2) {
        struct fv_nflog_packet p = syn(1 + i % 200, (uint16_t)(1000 + i));
        add(d, &p, 10000);
    }
    t = (struct tally){0};
    fv_denied_expire(d, 15000, 0, emit_tally, &t);
    assert_int_equal(t.records, 0); /* the even ones had nothing new */
    assert_int_equal(entries(d), 2500);
    for (int i = 1; i < 5000; i += 2) {
        struct fv_nflog_packet p = syn(1 + i % 200, (uint16_t)(1000 + i));
        add(d, &p, 17000);
    }
    assert_int_equal(entries(d), 2500);
    fv_denied_expire(d, 31000, 0, emit_tally, &t); /* active: they stay */
    assert_int_equal(t.records, 2500);
    assert_int_equal(t.d_packets, 5000);
    /* The even keys come back as new entries in the freed slots. */
    for (int i = 0; i < 5000; i += 2) {
        struct fv_nflog_packet p = syn(1 + i % 200, (uint16_t)(1000 + i));
        add(d, &p, 32000);
    }
    assert_int_equal(entries(d), 5000);
    fv_denied_free(d);
}

static void test_zero_timeouts_are_refused_and_zero_limits_take_defaults(void **state)
{
    struct fv_denied_cfg cfg = {.active_timeout_ms = 0, .idle_timeout_ms = IDLE};
    struct fv_nflog_packet p = syn(50, 44000);
    struct fv_denied *d = NULL;
    (void)state;

    assert_int_equal(fv_denied_new(&cfg, &d), -EINVAL);
    cfg.active_timeout_ms = ACTIVE;
    cfg.idle_timeout_ms = 0;
    assert_int_equal(fv_denied_new(&cfg, &d), -EINVAL);
    cfg.idle_timeout_ms = IDLE;
    assert_int_equal(fv_denied_new(&cfg, &d), 0);
    assert_int_equal(fv_denied_next_deadline(d, 0), UINT64_MAX);
    add(d, &p, 0);
    assert_int_equal(fv_denied_next_deadline(d, 0), FV_DENIED_DEFAULT_FIRST_DELAY_MS);
    fv_denied_free(d);
    fv_denied_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_syn_retransmissions_of_the_first_second_land_in_one_first_export),
        cmocka_unit_test(
            test_growing_denied_connection_is_exported_every_active_timeout_with_deltas),
        cmocka_unit_test(test_idle_denied_connection_is_exported_a_last_time_then_removed),
        cmocka_unit_test(test_idle_denied_connection_with_nothing_new_is_removed_silently),
        cmocka_unit_test(
            test_burst_shorter_than_the_first_delay_still_gets_one_record_if_idle_first),
        cmocka_unit_test(test_flush_exports_everything_unexported_with_reason_forced),
        cmocka_unit_test(test_refused_emit_keeps_the_counters_and_is_retried_at_the_next_expire),
        cmocka_unit_test(test_new_keys_beyond_max_entries_are_counted_not_stored),
        cmocka_unit_test(test_ipv6_keys_are_distinct_from_ipv4_keys_with_the_same_bytes),
        cmocka_unit_test(test_reject_wins_over_drop_and_the_first_prefix_stays),
        cmocka_unit_test(test_longest_prefix_is_kept_whole),
        cmocka_unit_test(test_ports_and_protocol_are_part_of_the_key),
        cmocka_unit_test(test_deadlines_fire_in_order_of_first_sight),
        cmocka_unit_test(test_many_keys_and_removals_keep_the_index_consistent),
        cmocka_unit_test(test_zero_timeouts_are_refused_and_zero_limits_take_defaults),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
