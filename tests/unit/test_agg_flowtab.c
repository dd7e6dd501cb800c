/*
 * test_agg_flowtab.c - the aggregator's flow table (SPEC section 4):
 * correlation of the two halves of inter-node flows in either order,
 * prompt export of complete, denied and ended flows, per-side and common
 * counters and throughputs, stale records, the active, inactive and
 * correlation deadlines, refused exports, max_flows eviction, queries and
 * flushing.  Time is passed in explicitly; the table works in 100 ms
 * ticks, so every time here is a multiple of 100 ms.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "aggregator/flowtab.h"
#include "base/err.h"

#define ACTIVE 10000   /* ms */
#define INACTIVE 60000 /* ms */
#define S0 1700000000u /* a flowStartSeconds */

/* ---- Capturing emitter ---- */

#define MAX_CAPTURED 64
#define STR_CAP 64

/* Where each string of enum fv_agg_str sits in an exported record. */
static const size_t str_field[FV_AGG_STR_COUNT] = {
    [FV_AGG_SRC_POD] = offsetof(struct fv_agent_rec, src_pod),
    [FV_AGG_SRC_NS] = offsetof(struct fv_agent_rec, src_ns),
    [FV_AGG_SRC_NODE] = offsetof(struct fv_agent_rec, src_node),
    [FV_AGG_DST_POD] = offsetof(struct fv_agent_rec, dst_pod),
    [FV_AGG_DST_NS] = offsetof(struct fv_agent_rec, dst_ns),
    [FV_AGG_DST_NODE] = offsetof(struct fv_agent_rec, dst_node),
    [FV_AGG_SVC_NAME] = offsetof(struct fv_agent_rec, svc_port_name),
    [FV_AGG_IN_POLICY] = offsetof(struct fv_agent_rec, in_policy),
    [FV_AGG_IN_POLICY_NS] = offsetof(struct fv_agent_rec, in_policy_ns),
    [FV_AGG_IN_RULE] = offsetof(struct fv_agent_rec, in_rule),
    [FV_AGG_EG_POLICY] = offsetof(struct fv_agent_rec, eg_policy),
    [FV_AGG_EG_POLICY_NS] = offsetof(struct fv_agent_rec, eg_policy_ns),
    [FV_AGG_EG_RULE] = offsetof(struct fv_agent_rec, eg_rule),
    [FV_AGG_TCP_STATE] = offsetof(struct fv_agent_rec, tcp_state),
};

/* A copy of an emitted record whose string pointers point at its own
 * copies of the strings, so it outlives the emit call. */
struct cap {
    struct fv_agg_rec r;
    char str[FV_AGG_STR_COUNT][STR_CAP];
};

/* Everything emitted, in order. */
struct sink {
    struct cap rec[MAX_CAPTURED];
    int n;      /* records taken */
    int calls;  /* emit calls, refused ones included */
    int refuse; /* emit returns -1 while this is set */
};

static const char **str_slot(struct fv_agg_rec *r, int s)
{
    return (const char **)((char *)&r->a + str_field[s]);
}

static void capture(struct cap *c, const struct fv_agg_rec *r)
{
    c->r = *r;
    for (int s = 0; s < FV_AGG_STR_COUNT; s++) {
        const char **p = str_slot(&c->r, s);
        assert_non_null(*p);
        assert_true(strlen(*p) < STR_CAP);
        strcpy(c->str[s], *p);
        *p = c->str[s];
    }
    c->r.src_labels = c->r.dst_labels = NULL; /* not used by the table */
}

static int emit(void *ctx, const struct fv_agg_rec *r)
{
    struct sink *k = ctx;

    k->calls++;
    if (k->refuse)
        return -1;
    assert_true(k->n < MAX_CAPTURED);
    capture(&k->rec[k->n++], r);
    return 0;
}

static struct sink *sink_new(void)
{
    struct sink *k = calloc(1, sizeof(*k));
    assert_non_null(k);
    return k;
}

/* ---- Building records ---- */

/* An agent record with its string blob. */
struct rin {
    struct fv_agg_in in;
    char blob[1024];
    size_t used;
};

/* The IPv4 key 10.0.0.<a>:<sport> -> 10.0.1.<b>:<dport>. */
static struct fv_agg_key key4(uint8_t a, uint16_t sport, uint8_t b, uint16_t dport, uint8_t proto)
{
    struct fv_agg_key k;

    memset(&k, 0, sizeof(k));
    k.src[0] = 10, k.src[3] = a;
    k.dst[0] = 10, k.dst[2] = 1, k.dst[3] = b;
    k.sport = sport;
    k.dport = dport;
    k.proto = proto;
    return k;
}

/* The IPv6 key fd00::<a>:<sport> -> fd00::<b>:<dport>. */
static struct fv_agg_key key6(uint8_t a, uint16_t sport, uint8_t b, uint16_t dport, uint8_t proto)
{
    struct fv_agg_key k;

    memset(&k, 0, sizeof(k));
    k.src[0] = 0xfd, k.src[15] = a;
    k.dst[0] = 0xfd, k.dst[15] = b;
    k.sport = sport;
    k.dport = dport;
    k.proto = proto;
    k.v6 = 1;
    return k;
}

static void rin_init(struct rin *r, const struct fv_agg_key *k, uint8_t flow_type, uint32_t start,
                     uint32_t end, uint8_t reason)
{
    memset(r, 0, sizeof(*r));
    r->in.key = *k;
    r->in.flow_type = flow_type;
    r->in.flow_start = start;
    r->in.flow_end = end;
    r->in.end_reason = reason;
    r->in.blob = r->blob;
    r->used = 1; /* offset 0 is the empty string */
}

static void rin_str(struct rin *r, enum fv_agg_str s, const char *v)
{
    size_t n = strlen(v);

    assert_true(r->used + n <= sizeof(r->blob));
    memcpy(r->blob + r->used, v, n);
    r->in.str_off[s] = (uint16_t)r->used;
    r->in.str_len[s] = (uint16_t)n;
    r->used += n;
}

/* Sets all eight counters: totals and deltas, forward and reverse. */
static void rin_ctr(struct rin *r, uint64_t pkts, uint64_t octs, uint64_t d_pkts, uint64_t d_octs,
                    uint64_t r_pkts, uint64_t r_octs, uint64_t rd_pkts, uint64_t rd_octs)
{
    uint64_t *c = r->in.ctr;

    c[FV_AGG_PKT_TOTAL] = pkts, c[FV_AGG_OCT_TOTAL] = octs;
    c[FV_AGG_PKT_DELTA] = d_pkts, c[FV_AGG_OCT_DELTA] = d_octs;
    c[FV_AGG_RPKT_TOTAL] = r_pkts, c[FV_AGG_ROCT_TOTAL] = r_octs;
    c[FV_AGG_RPKT_DELTA] = rd_pkts, c[FV_AGG_ROCT_DELTA] = rd_octs;
}

/* Octets only (packets = octets / 100, reverse = half). */
static void rin_oct(struct rin *r, uint64_t octs, uint64_t d_octs)
{
    rin_ctr(r, octs / 100, octs, d_octs / 100, d_octs, octs / 200, octs / 2, d_octs / 200,
            d_octs / 2);
}

/* The identity digest, as fv_agg_in_decode computes one: anything that
 * changes when a string, a policy or a service field changes will do. */
static void rin_seal(struct rin *r)
{
    struct fv_agg_in *in = &r->in;
    uint32_t h = 2166136261u;
    uint8_t small[24] = {in->in_type,          in->in_action, in->eg_type,
                         in->eg_action,        in->flow_type, (uint8_t)(in->svc_port >> 8),
                         (uint8_t)in->svc_port};

    memcpy(small + 8, in->cluster_ip, 16);
    for (int s = 0; s < FV_AGG_STR_COUNT; s++) {
        h = (h ^ (uint8_t)s) * 16777619u;
        for (uint16_t i = 0; i < in->str_len[s]; i++)
            h = (h ^ (uint8_t)r->blob[in->str_off[s] + i]) * 16777619u;
    }
    for (size_t i = 0; i < sizeof(small); i++)
        h = (h ^ small[i]) * 16777619u;
    in->ident_hash = h;
}

/* The source node's half of an inter-node flow: client-1 in team-a on
 * node-a, through the ClusterIP 10.96.0.10:80 of team-b/web:http, allowed
 * by an egress policy.  The destination Pod is not named (another node's). */
static void src_half(struct rin *r, const struct fv_agg_key *k, uint32_t end, uint8_t reason)
{
    rin_init(r, k, FV_FLOW_INTER_NODE, S0, end, reason);
    rin_str(r, FV_AGG_SRC_POD, "client-1");
    rin_str(r, FV_AGG_SRC_NS, "team-a");
    rin_str(r, FV_AGG_SRC_NODE, "node-a");
    rin_str(r, FV_AGG_SVC_NAME, "team-b/web:http");
    rin_str(r, FV_AGG_EG_POLICY, "allow-egress");
    rin_str(r, FV_AGG_EG_POLICY_NS, "team-a");
    rin_str(r, FV_AGG_EG_RULE, "to-web");
    rin_str(r, FV_AGG_TCP_STATE, "ESTABLISHED");
    r->in.svc_port = 80;
    r->in.cluster_ip[0] = 10, r->in.cluster_ip[1] = 96, r->in.cluster_ip[3] = 10;
    r->in.eg_type = 1;
    r->in.eg_action = FV_ACTION_ALLOW;
}

/* The destination node's half: web-1 in team-b on node-b, admitted by an
 * ingress policy.  The source Pod is not named. */
static void dst_half(struct rin *r, const struct fv_agg_key *k, uint32_t end, uint8_t reason)
{
    rin_init(r, k, FV_FLOW_INTER_NODE, S0, end, reason);
    rin_str(r, FV_AGG_DST_POD, "web-1");
    rin_str(r, FV_AGG_DST_NS, "team-b");
    rin_str(r, FV_AGG_DST_NODE, "node-b");
    rin_str(r, FV_AGG_IN_POLICY, "allow-web");
    rin_str(r, FV_AGG_IN_POLICY_NS, "team-b");
    rin_str(r, FV_AGG_IN_RULE, "from-a");
    rin_str(r, FV_AGG_TCP_STATE, "ESTABLISHED");
    r->in.in_type = 1;
    r->in.in_action = FV_ACTION_ALLOW;
}

/* A record that is complete on arrival (intra-node, to-external...). */
static void local_rec(struct rin *r, const struct fv_agg_key *k, uint8_t flow_type, uint32_t end,
                      uint8_t reason)
{
    rin_init(r, k, flow_type, S0, end, reason);
    rin_str(r, FV_AGG_SRC_POD, "client-1");
    rin_str(r, FV_AGG_SRC_NS, "team-a");
    rin_str(r, FV_AGG_SRC_NODE, "node-a");
    if (flow_type == FV_FLOW_INTRA_NODE) {
        rin_str(r, FV_AGG_DST_POD, "web-2");
        rin_str(r, FV_AGG_DST_NS, "team-b");
        rin_str(r, FV_AGG_DST_NODE, "node-a");
    }
    rin_str(r, FV_AGG_TCP_STATE, "ESTABLISHED");
}

/* ---- Table helpers ---- */

static struct fv_ftab *tab_new(uint32_t active, uint32_t inactive, uint32_t max_flows)
{
    struct fv_ftab_cfg cfg = {.active_ms = active, .inactive_ms = inactive, .max_flows = max_flows};
    struct fv_ftab *t;

    assert_int_equal(fv_ftab_new(&cfg, &t), 0);
    return t;
}

static int apply(struct fv_ftab *t, struct rin *r, uint64_t now, struct sink *k)
{
    rin_seal(r);
    return fv_ftab_apply(t, &r->in, now, emit, k);
}

static void expire(struct fv_ftab *t, uint64_t now, struct sink *k)
{
    fv_ftab_expire(t, now, emit, k);
}

static struct fv_ftab_stats stats(const struct fv_ftab *t)
{
    struct fv_ftab_stats st;
    fv_ftab_stats(t, &st);
    return st;
}

/* A filter naming all five fields of k. */
static struct fv_ftab_filter exact(const struct fv_agg_key *k)
{
    struct fv_ftab_filter f = {.has_src = true, .has_dst = true, .proto = k->proto};

    f.src_v6 = f.dst_v6 = k->v6;
    f.sport = k->sport;
    f.dport = k->dport;
    memcpy(f.src, k->src, 16);
    memcpy(f.dst, k->dst, 16);
    return f;
}

/* The current state of the flow with key k (fails unless there is one). */
static struct cap *state_of(struct fv_ftab *t, const struct fv_agg_key *k, struct sink *into)
{
    struct fv_ftab_filter f = exact(k);
    int before = into->n;

    assert_int_equal(fv_ftab_query(t, &f, 10, emit, into), 1);
    assert_int_equal(into->n, before + 1);
    return &into->rec[before];
}

static bool has_flow(struct fv_ftab *t, const struct fv_agg_key *k)
{
    struct fv_ftab_filter f = exact(k);
    return fv_ftab_query(t, &f, 0, emit, NULL) == 1;
}

static bool same_key(const struct fv_agg_rec *r, const struct fv_agg_key *k)
{
    return r->a.ipv6 == (bool)k->v6 && memcmp(r->a.src_addr, k->src, 16) == 0 &&
           memcmp(r->a.dst_addr, k->dst, 16) == 0 && r->a.src_port == k->sport &&
           r->a.dst_port == k->dport && r->a.proto == k->proto;
}

/* A correlated inter-node record carries both halves' identity. */
static void assert_both_halves(const struct cap *c)
{
    static const uint8_t cip[16] = {10, 96, 0, 10};
    const struct fv_agent_rec *a = &c->r.a;

    assert_true(c->r.correlated);
    assert_int_equal(a->flow_type, FV_FLOW_INTER_NODE);
    assert_string_equal(a->src_pod, "client-1");
    assert_string_equal(a->src_ns, "team-a");
    assert_string_equal(a->src_node, "node-a");
    assert_string_equal(a->dst_pod, "web-1");
    assert_string_equal(a->dst_ns, "team-b");
    assert_string_equal(a->dst_node, "node-b");
    assert_memory_equal(a->cluster_ip, cip, 16);
    assert_int_equal(a->svc_port, 80);
    assert_string_equal(a->svc_port_name, "team-b/web:http");
    assert_string_equal(a->in_policy, "allow-web");
    assert_string_equal(a->in_policy_ns, "team-b");
    assert_string_equal(a->in_rule, "from-a");
    assert_int_equal(a->in_policy_type, 1);
    assert_int_equal(a->in_action, FV_ACTION_ALLOW);
    assert_string_equal(a->eg_policy, "allow-egress");
    assert_string_equal(a->eg_policy_ns, "team-a");
    assert_string_equal(a->eg_rule, "to-web");
    assert_int_equal(a->eg_policy_type, 1);
    assert_int_equal(a->eg_action, FV_ACTION_ALLOW);
    assert_string_equal(a->tcp_state, "ESTABLISHED");
}

/* ---- Correlation ---- */

static void correlate(bool src_first)
{
    struct fv_ftab *t = tab_new(ACTIVE, INACTIVE, 0);
    struct sink *k = sink_new();
    struct fv_agg_key key = key4(1, 40000, 2, 8080, 6);
    struct rin a, b;

    if (src_first)
        src_half(&a, &key, S0 + 5, 2);
    else
        dst_half(&a, &key, S0 + 5, 2);
    rin_oct(&a, 10000, 10000);
    assert_int_equal(apply(t, &a, 0, k), 0);
    /* One half alone is not exported, not even at its active deadline. */
    for (uint64_t now = 0; now <= 12000; now += 1000)
        expire(t, now, k);
    assert_int_equal(k->calls, 0);
    assert_int_equal(stats(t).correlated, 0);

    if (src_first)
        dst_half(&b, &key, S0 + 6, 2);
    else
        src_half(&b, &key, S0 + 6, 2);
    rin_oct(&b, 10200, 10200);
    assert_int_equal(apply(t, &b, 12000, k), 0);
    assert_int_equal(stats(t).correlated, 1);
    assert_int_equal(k->calls, 0); /* exports happen in expire */
    expire(t, 12000, k);
    assert_int_equal(k->n, 1);
    assert_both_halves(&k->rec[0]);
    assert_true(same_key(&k->rec[0].r, &key));
    assert_int_equal(k->rec[0].r.a.flow_start, S0);
    assert_int_equal(k->rec[0].r.a.flow_end, S0 + 6);
    assert_int_equal(k->rec[0].r.a.octets_total, 10200);
    assert_int_equal(k->rec[0].r.a.octets_delta, 10200);
    int s = src_first ? 0 : 1; /* the side of the first half */
    assert_int_equal(k->rec[0].r.side[s][FV_AGG_OCT_TOTAL], 10000);
    assert_int_equal(k->rec[0].r.side[1 - s][FV_AGG_OCT_TOTAL], 10200);
    assert_int_equal(k->rec[0].r.end_side[s], S0 + 5);
    assert_int_equal(k->rec[0].r.end_side[1 - s], S0 + 6);

    /* Nothing new: nothing more, whatever the time. */
    for (uint64_t now = 12100; now <= 50000; now += 100)
        expire(t, now, k);
    assert_int_equal(k->calls, 1);
    struct fv_ftab_stats st = stats(t);
    assert_int_equal(st.correlated, 1);
    assert_int_equal(st.uncorrelated, 0);
    assert_int_equal(st.exported, 1);
    assert_int_equal(st.records, 2);
    assert_int_equal(st.flows, 1);
    fv_ftab_free(t);
    free(k);
}

static void test_inter_node_halves_source_first_are_exported_once_correlated(void **state)
{
    (void)state;
    correlate(true);
}

static void test_inter_node_halves_destination_first_are_exported_once_correlated(void **state)
{
    (void)state;
    correlate(false);
}

static void test_denied_inter_node_flows_are_exported_without_waiting(void **state)
{
    struct fv_ftab *t = tab_new(ACTIVE, INACTIVE, 0);
    struct sink *k = sink_new();
    struct fv_agg_key drop = key4(1, 40001, 2, 8080, 6);
    struct fv_agg_key reject = key4(1, 40002, 2, 8080, 6);
    struct rin a, b;
    (void)state;

    /* Dropped by the source node's egress rule: the destination never sees it. */
    src_half(&a, &drop, S0 + 1, 2);
    a.in.eg_action = FV_ACTION_DROP;
    rin_oct(&a, 120, 120);
    assert_int_equal(apply(t, &a, 1000, k), 0);
    /* Rejected by the destination node's ingress rule. */
    dst_half(&b, &reject, S0 + 1, 2);
    b.in.in_action = FV_ACTION_REJECT;
    rin_oct(&b, 60, 60);
    assert_int_equal(apply(t, &b, 1000, k), 0);
    expire(t, 1000, k);
    assert_int_equal(k->n, 2);
    assert_true(same_key(&k->rec[0].r, &drop));
    assert_false(k->rec[0].r.correlated);
    assert_int_equal(k->rec[0].r.a.eg_action, FV_ACTION_DROP);
    assert_string_equal(k->rec[0].r.a.src_pod, "client-1");
    assert_string_equal(k->rec[0].r.a.dst_pod, "");
    assert_int_equal(k->rec[0].r.a.octets_delta, 120);
    assert_true(same_key(&k->rec[1].r, &reject));
    assert_false(k->rec[1].r.correlated);
    assert_int_equal(k->rec[1].r.a.in_action, FV_ACTION_REJECT);
    assert_int_equal(k->rec[1].r.side[1][FV_AGG_OCT_TOTAL], 60);
    struct fv_ftab_stats st = stats(t);
    assert_int_equal(st.correlated, 0);
    assert_int_equal(st.uncorrelated, 0);
    assert_int_equal(st.exported, 2);
    fv_ftab_free(t);
    free(k);
}

static void test_intra_node_and_external_flows_are_exported_on_the_first_expire(void **state)
{
    struct fv_ftab *t = tab_new(ACTIVE, INACTIVE, 0);
    struct sink *k = sink_new();
    struct fv_agg_key intra = key4(1, 40000, 3, 80, 6);
    struct fv_agg_key ext = key4(1, 40001, 200, 443, 6);
    struct fv_agg_key from_ext = key4(9, 40002, 3, 80, 6);
    struct rin a, b, c;
    (void)state;

    local_rec(&a, &intra, FV_FLOW_INTRA_NODE, S0 + 2, 2);
    rin_oct(&a, 1000, 1000);
    local_rec(&b, &ext, FV_FLOW_TO_EXTERNAL, S0 + 2, 2);
    rin_oct(&b, 2000, 2000);
    rin_init(&c, &from_ext, FV_FLOW_FROM_EXTERNAL, S0, S0 + 2, 2);
    rin_str(&c, FV_AGG_DST_POD, "web-2");
    rin_oct(&c, 3000, 3000);
    assert_int_equal(apply(t, &a, 500, k), 0);
    assert_int_equal(apply(t, &b, 500, k), 0);
    assert_int_equal(apply(t, &c, 500, k), 0);
    assert_int_equal(k->calls, 0);
    expire(t, 500, k);
    assert_int_equal(k->n, 3);
    assert_true(same_key(&k->rec[0].r, &intra));
    assert_int_equal(k->rec[0].r.a.flow_type, FV_FLOW_INTRA_NODE);
    assert_string_equal(k->rec[0].r.a.dst_pod, "web-2");
    assert_false(k->rec[0].r.correlated);
    assert_int_equal(k->rec[0].r.a.octets_total, 1000);
    assert_int_equal(k->rec[0].r.side[0][FV_AGG_OCT_TOTAL], 1000);
    /* One node sees both ends: its report fills both sides, as the
     * reference aggregator does. */
    assert_int_equal(k->rec[0].r.side[1][FV_AGG_OCT_TOTAL], 1000);
    assert_int_equal(k->rec[0].r.side[1][FV_AGG_OCT_DELTA], 1000);
    assert_int_equal(k->rec[0].r.end_side[1], k->rec[0].r.end_side[0]);
    assert_int_equal(k->rec[0].r.thr_side[1], k->rec[0].r.thr_side[0]);
    assert_true(same_key(&k->rec[1].r, &ext));
    assert_int_equal(k->rec[1].r.a.flow_type, FV_FLOW_TO_EXTERNAL);
    assert_int_equal(k->rec[1].r.a.octets_total, 2000);
    /* A record naming only the destination Pod is the destination node's. */
    assert_true(same_key(&k->rec[2].r, &from_ext));
    assert_int_equal(k->rec[2].r.side[1][FV_AGG_OCT_TOTAL], 3000);
    assert_int_equal(k->rec[2].r.side[0][FV_AGG_OCT_TOTAL], 3000);
    assert_int_equal(k->rec[2].r.a.octets_total, 3000);
    assert_int_equal(k->rec[2].r.end_side[1], S0 + 2);
    assert_int_equal(k->rec[2].r.end_side[0], S0 + 2);
    expire(t, 600, k);
    assert_int_equal(k->calls, 3);
    assert_int_equal(stats(t).correlated, 0);
    fv_ftab_free(t);
    free(k);
}

/* ---- Aggregation ---- */

static void test_counters_and_throughputs_aggregate_per_side_and_in_common(void **state)
{
    struct fv_ftab *t = tab_new(ACTIVE, INACTIVE, 0);
    struct sink *k = sink_new(), *q = sink_new();
    struct fv_agg_key key = key4(1, 40000, 2, 8080, 6);
    struct rin r;
    struct cap *c;
    (void)state;

    /* src: totals 100/10000/50/5000, but the aggregator saw only part of
     * them as deltas (the agent exported once before). */
    src_half(&r, &key, S0 + 10, 2);
    rin_ctr(&r, 100, 10000, 60, 6000, 50, 5000, 30, 3000);
    assert_int_equal(apply(t, &r, 1000, k), 0);
    c = state_of(t, &key, q);
    assert_int_equal(c->r.thr_side[0], 10000 * 8 / 10); /* first record: over end - start */
    assert_int_equal(c->r.rthr_side[0], 5000 * 8 / 10);
    assert_int_equal(c->r.thr, 8000);
    assert_int_equal(c->r.rthr, 4000);

    dst_half(&r, &key, S0 + 12, 2);
    rin_ctr(&r, 110, 11000, 110, 11000, 55, 5500, 55, 5500);
    assert_int_equal(apply(t, &r, 2000, k), 0);
    c = state_of(t, &key, q);
    assert_int_equal(c->r.thr_side[1], 11000 * 8 / 12);
    assert_int_equal(c->r.rthr_side[1], 5500 * 8 / 12);
    assert_int_equal(c->r.thr, 11000 * 8 / 12); /* the latest side's */
    assert_int_equal(c->r.rthr, 5500 * 8 / 12);
    assert_int_equal(c->r.thr_side[0], 8000);

    src_half(&r, &key, S0 + 20, 2);
    rin_ctr(&r, 300, 30000, 200, 20000, 150, 15000, 100, 10000);
    assert_int_equal(apply(t, &r, 3000, k), 0);
    c = state_of(t, &key, q);
    assert_int_equal(c->r.thr_side[0], (30000 - 10000) * 8 / (20 - 10));
    assert_int_equal(c->r.thr, 16000);
    assert_int_equal(c->r.rthr, 8000);

    dst_half(&r, &key, S0 + 22, 2);
    rin_ctr(&r, 320, 32000, 210, 21000, 160, 16000, 105, 10500);
    assert_int_equal(apply(t, &r, 4000, k), 0);
    assert_int_equal(k->calls, 0);

    expire(t, 4000, k);
    assert_int_equal(k->n, 1);
    const struct fv_agg_rec *e = &k->rec[0].r;
    static const uint64_t side0[FV_AGG_CTR_COUNT] = {300, 30000, 260, 26000,
                                                     150, 15000, 130, 13000};
    static const uint64_t side1[FV_AGG_CTR_COUNT] = {320, 32000, 320, 32000,
                                                     160, 16000, 160, 16000};
    for (int i = 0; i < FV_AGG_CTR_COUNT; i++) {
        assert_int_equal(e->side[0][i], side0[i]);
        assert_int_equal(e->side[1][i], side1[i]);
    }
    assert_int_equal(e->a.packets_total, 320);
    assert_int_equal(e->a.octets_total, 32000);
    assert_int_equal(e->a.rev_packets_total, 160);
    assert_int_equal(e->a.rev_octets_total, 16000);
    /* The first record's totals include 40/4000/20/2000 that the agent had
     * exported before (to an earlier aggregator): not counted again. */
    assert_int_equal(e->a.packets_delta, 280);
    assert_int_equal(e->a.octets_delta, 28000);
    assert_int_equal(e->a.rev_packets_delta, 140);
    assert_int_equal(e->a.rev_octets_delta, 14000);
    assert_int_equal(e->a.flow_start, S0);
    assert_int_equal(e->a.flow_end, S0 + 22);
    assert_int_equal(e->end_side[0], S0 + 20);
    assert_int_equal(e->end_side[1], S0 + 22);
    assert_int_equal(e->thr_side[0], 16000);
    assert_int_equal(e->rthr_side[0], 8000);
    assert_int_equal(e->thr_side[1], (32000 - 11000) * 8 / 10);
    assert_int_equal(e->rthr_side[1], (16000 - 5500) * 8 / 10);
    assert_int_equal(e->thr, 16800);
    assert_int_equal(e->rthr, 8400);
    assert_true(e->correlated);

    /* After the export: deltas and throughputs are zero, totals kept. */
    c = state_of(t, &key, q);
    for (int i = 0; i < FV_AGG_CTR_COUNT; i++) {
        bool total = i == FV_AGG_PKT_TOTAL || i == FV_AGG_OCT_TOTAL || i == FV_AGG_RPKT_TOTAL ||
                     i == FV_AGG_ROCT_TOTAL;
        assert_int_equal(c->r.side[0][i], total ? side0[i] : 0);
        assert_int_equal(c->r.side[1][i], total ? side1[i] : 0);
    }
    assert_int_equal(c->r.a.octets_total, 32000);
    assert_int_equal(c->r.a.octets_delta, 0);
    assert_int_equal(c->r.a.rev_packets_delta, 0);
    assert_int_equal(c->r.thr, 0);
    assert_int_equal(c->r.rthr, 0);
    assert_int_equal(c->r.thr_side[0] + c->r.thr_side[1] + c->r.rthr_side[0] + c->r.rthr_side[1],
                     0);

    /* Second round: the destination's report lags behind the source's,
     * so the common totals are the source's and the common delta is the
     * growth of the common totals, not either side's delta. */
    src_half(&r, &key, S0 + 30, 2);
    rin_ctr(&r, 500, 50000, 200, 20000, 250, 25000, 100, 10000);
    assert_int_equal(apply(t, &r, 9000, k), 0);
    dst_half(&r, &key, S0 + 31, 2);
    rin_ctr(&r, 480, 48000, 160, 16000, 240, 24000, 80, 8000);
    assert_int_equal(apply(t, &r, 10000, k), 0);
    expire(t, 10000, k);
    expire(t, 13900, k);
    assert_int_equal(k->n, 1);
    expire(t, 14000, k); /* the active deadline: 4000 + ACTIVE */
    assert_int_equal(k->n, 2);
    e = &k->rec[1].r;
    static const uint64_t side0b[FV_AGG_CTR_COUNT] = {500, 50000, 200, 20000,
                                                      250, 25000, 100, 10000};
    static const uint64_t side1b[FV_AGG_CTR_COUNT] = {480, 48000, 160, 16000, 240, 24000, 80, 8000};
    for (int i = 0; i < FV_AGG_CTR_COUNT; i++) {
        assert_int_equal(e->side[0][i], side0b[i]);
        assert_int_equal(e->side[1][i], side1b[i]);
    }
    assert_int_equal(e->a.packets_total, 500);
    assert_int_equal(e->a.octets_total, 50000);
    assert_int_equal(e->a.rev_packets_total, 250);
    assert_int_equal(e->a.rev_octets_total, 25000);
    assert_int_equal(e->a.packets_delta, 500 - 320);
    assert_int_equal(e->a.octets_delta, 50000 - 32000);
    assert_int_equal(e->a.rev_packets_delta, 250 - 160);
    assert_int_equal(e->a.rev_octets_delta, 25000 - 16000);
    assert_int_equal(e->a.flow_end, S0 + 31);
    assert_int_equal(e->end_side[0], S0 + 30);
    assert_int_equal(e->end_side[1], S0 + 31);
    assert_int_equal(e->thr_side[0], (50000 - 30000) * 8 / 10);
    assert_int_equal(e->rthr_side[0], (25000 - 15000) * 8 / 10);
    assert_int_equal(e->thr_side[1], (48000 - 32000) * 8 / 9);
    assert_int_equal(e->rthr_side[1], (24000 - 16000) * 8 / 9);
    assert_int_equal(e->thr, (48000 - 32000) * 8 / 9);
    assert_int_equal(e->rthr, (24000 - 16000) * 8 / 9);
    /* The exported deltas add up to the final totals, less what the agent
     * had exported before the first record (4000 octets, 20 reverse packets). */
    assert_int_equal(k->rec[0].r.a.octets_delta + k->rec[1].r.a.octets_delta,
                     e->a.octets_total - 4000);
    assert_int_equal(k->rec[0].r.a.rev_packets_delta + k->rec[1].r.a.rev_packets_delta,
                     e->a.rev_packets_total - 20);
    assert_int_equal(stats(t).records, 6);
    fv_ftab_free(t);
    free(k);
    free(q);
}

static void test_first_record_throughput_is_zero_when_end_is_not_after_start(void **state)
{
    struct fv_ftab *t = tab_new(ACTIVE, INACTIVE, 0);
    struct sink *k = sink_new();
    struct fv_agg_key key = key4(1, 40000, 200, 443, 6);
    struct rin r;
    (void)state;

    local_rec(&r, &key, FV_FLOW_TO_EXTERNAL, S0, 2);
    rin_oct(&r, 4000, 4000);
    assert_int_equal(apply(t, &r, 0, k), 0);
    expire(t, 0, k);
    assert_int_equal(k->n, 1);
    assert_int_equal(k->rec[0].r.thr, 0);
    assert_int_equal(k->rec[0].r.thr_side[0], 0);
    /* The next one is over the growth of flowEndSeconds. */
    local_rec(&r, &key, FV_FLOW_TO_EXTERNAL, S0 + 4, 2);
    rin_oct(&r, 6000, 2000);
    assert_int_equal(apply(t, &r, 4000, k), 0);
    expire(t, ACTIVE, k);
    assert_int_equal(k->n, 2);
    assert_int_equal(k->rec[1].r.thr, 2000 * 8 / 4);
    assert_int_equal(k->rec[1].r.rthr, 1000 * 8 / 4);
    fv_ftab_free(t);
    free(k);
}

static void test_stale_records_are_ignored_and_counted(void **state)
{
    struct fv_ftab *t = tab_new(ACTIVE, INACTIVE, 0);
    struct sink *k = sink_new(), *q = sink_new();
    struct fv_agg_key key = key4(1, 40000, 3, 80, 6);
    struct fv_agg_key inter = key4(1, 40001, 2, 8080, 6);
    struct rin r;
    struct cap *c;
    (void)state;

    local_rec(&r, &key, FV_FLOW_INTRA_NODE, S0 + 10, 2);
    rin_oct(&r, 1000, 1000);
    assert_int_equal(apply(t, &r, 0, k), 0);
    /* Older end, even with bigger counters: stale. */
    local_rec(&r, &key, FV_FLOW_INTRA_NODE, S0 + 9, 2);
    rin_oct(&r, 900000, 900000);
    assert_int_equal(apply(t, &r, 100, k), 1);
    /* Same end, no counter grown: stale (a duplicate). */
    local_rec(&r, &key, FV_FLOW_INTRA_NODE, S0 + 10, 2);
    rin_oct(&r, 1000, 1000);
    assert_int_equal(apply(t, &r, 200, k), 1);
    struct fv_ftab_stats st = stats(t);
    assert_int_equal(st.stale, 2);
    assert_int_equal(st.records, 1);
    c = state_of(t, &key, q);
    assert_int_equal(c->r.a.octets_total, 1000);
    assert_int_equal(c->r.side[0][FV_AGG_OCT_DELTA], 1000);
    assert_int_equal(c->r.a.flow_end, S0 + 10);

    /* Same end with grown counters: not stale. */
    local_rec(&r, &key, FV_FLOW_INTRA_NODE, S0 + 10, 2);
    rin_oct(&r, 1400, 400);
    assert_int_equal(apply(t, &r, 300, k), 0);
    st = stats(t);
    assert_int_equal(st.stale, 2);
    assert_int_equal(st.records, 2);
    expire(t, 300, k);
    assert_int_equal(k->n, 1);
    assert_int_equal(k->rec[0].r.a.octets_total, 1400);
    assert_int_equal(k->rec[0].r.a.octets_delta, 1400);
    assert_int_equal(k->rec[0].r.side[0][FV_AGG_OCT_DELTA], 1400);
    assert_int_equal(k->rec[0].r.end_side[0], S0 + 10);

    /* Staleness is per side: a destination half older than the source's
     * last end is news. */
    src_half(&r, &inter, S0 + 20, 2);
    rin_oct(&r, 5000, 5000);
    assert_int_equal(apply(t, &r, 400, k), 0);
    dst_half(&r, &inter, S0 + 15, 2);
    rin_oct(&r, 4000, 4000);
    assert_int_equal(apply(t, &r, 500, k), 0);
    dst_half(&r, &inter, S0 + 14, 2);
    rin_oct(&r, 4100, 100);
    assert_int_equal(apply(t, &r, 600, k), 1);
    st = stats(t);
    assert_int_equal(st.stale, 3);
    assert_int_equal(st.records, 4);
    assert_int_equal(st.correlated, 1);
    expire(t, 600, k);
    assert_int_equal(k->n, 2);
    assert_int_equal(k->rec[1].r.end_side[0], S0 + 20);
    assert_int_equal(k->rec[1].r.end_side[1], S0 + 15);
    assert_int_equal(k->rec[1].r.a.flow_end, S0 + 20);
    assert_int_equal(k->rec[1].r.side[1][FV_AGG_OCT_TOTAL], 4000);
    fv_ftab_free(t);
    free(k);
    free(q);
}

/* ---- Deadlines ---- */

static void test_no_reexport_without_news_then_export_at_the_next_active_deadline(void **state)
{
    struct fv_ftab *t = tab_new(ACTIVE, INACTIVE, 0);
    struct sink *k = sink_new();
    struct fv_agg_key key = key4(1, 40000, 200, 443, 6);
    struct rin r;
    (void)state;

    local_rec(&r, &key, FV_FLOW_TO_EXTERNAL, S0 + 1, 2);
    rin_oct(&r, 1000, 1000);
    assert_int_equal(apply(t, &r, 0, k), 0);
    expire(t, 0, k);
    assert_int_equal(k->n, 1);
    /* Four active timeouts pass without a record. */
    for (uint64_t now = 100; now <= 44900; now += 100)
        expire(t, now, k);
    assert_int_equal(k->calls, 1);
    /* One new record: out at the next active deadline (50000), not before. */
    local_rec(&r, &key, FV_FLOW_TO_EXTERNAL, S0 + 45, 2);
    rin_oct(&r, 1500, 500);
    assert_int_equal(apply(t, &r, 45000, k), 0);
    for (uint64_t now = 45000; now <= 49900; now += 100)
        expire(t, now, k);
    assert_int_equal(k->calls, 1);
    expire(t, 50000, k);
    assert_int_equal(k->n, 2);
    assert_int_equal(k->rec[1].r.a.octets_total, 1500);
    assert_int_equal(k->rec[1].r.a.octets_delta, 500);
    assert_int_equal(k->rec[1].r.side[0][FV_AGG_OCT_DELTA], 500);
    assert_int_equal(k->rec[1].r.a.end_reason, 2);
    assert_int_equal(stats(t).exported, 2);
    assert_int_equal(stats(t).flows, 1);
    fv_ftab_free(t);
    free(k);
}

static void test_idle_report_without_growth_is_not_exported_alone(void **state)
{
    struct fv_ftab *t = tab_new(ACTIVE, INACTIVE, 0);
    struct sink *k = sink_new();
    struct fv_agg_key key = key4(1, 40000, 200, 443, 6);
    struct rin r;
    (void)state;

    local_rec(&r, &key, FV_FLOW_TO_EXTERNAL, S0 + 1, 2);
    rin_oct(&r, 1000, 1000);
    assert_int_equal(apply(t, &r, 0, k), 0);
    expire(t, 0, k);
    assert_int_equal(k->n, 1);
    /* The agent's idle report: later end, same totals, zero deltas. */
    local_rec(&r, &key, FV_FLOW_TO_EXTERNAL, S0 + 20, 1);
    rin_oct(&r, 1000, 0);
    assert_int_equal(apply(t, &r, 20000, k), 0);
    for (uint64_t now = 20000; now <= 60000; now += 100)
        expire(t, now, k);
    assert_int_equal(k->calls, 1);
    assert_int_equal(stats(t).flows, 1);
    /* It still pushed the inactive deadline back: gone INACTIVE after it,
     * without another (zero-delta) row. */
    for (uint64_t now = 60000; now <= 110000; now += 100)
        expire(t, now, k);
    assert_int_equal(k->calls, 1);
    assert_int_equal(stats(t).flows, 0);
    fv_ftab_free(t);
    free(k);
}

static void test_lone_half_is_exported_once_after_the_correlation_wait(void **state)
{
    struct fv_ftab *t = tab_new(ACTIVE, INACTIVE, 0);
    struct sink *k = sink_new();
    struct fv_agg_key key = key4(1, 40000, 2, 8080, 6);
    struct rin r;
    (void)state;

    src_half(&r, &key, S0 + 1, 2);
    rin_oct(&r, 1000, 1000);
    assert_int_equal(apply(t, &r, 0, k), 0);
    /* The correlation wait is 2 x ACTIVE by default. */
    for (uint64_t now = 0; now < 2 * ACTIVE; now += 100)
        expire(t, now, k);
    assert_int_equal(k->calls, 0);
    expire(t, 2 * ACTIVE, k);
    assert_int_equal(k->n, 1);
    assert_false(k->rec[0].r.correlated);
    assert_string_equal(k->rec[0].r.a.src_pod, "client-1");
    assert_string_equal(k->rec[0].r.a.dst_pod, "");
    assert_string_equal(k->rec[0].r.a.svc_port_name, "team-b/web:http");
    assert_int_equal(k->rec[0].r.a.octets_delta, 1000);
    struct fv_ftab_stats st = stats(t);
    assert_int_equal(st.uncorrelated, 1);
    assert_int_equal(st.correlated, 0);
    for (uint64_t now = 2 * ACTIVE + 100; now <= 35000; now += 100)
        expire(t, now, k);
    assert_int_equal(k->calls, 1);

    /* The other half comes late: merged, and exported with the news. */
    dst_half(&r, &key, S0 + 35, 2);
    rin_oct(&r, 3000, 3000);
    assert_int_equal(apply(t, &r, 35000, k), 0);
    expire(t, 35000, k);
    assert_int_equal(k->n, 2);
    assert_both_halves(&k->rec[1]);
    assert_int_equal(k->rec[1].r.a.octets_total, 3000);
    assert_int_equal(k->rec[1].r.a.octets_delta, 2000);
    assert_int_equal(k->rec[1].r.side[1][FV_AGG_OCT_DELTA], 3000);
    assert_int_equal(k->rec[1].r.side[0][FV_AGG_OCT_DELTA], 0);
    st = stats(t);
    assert_int_equal(st.uncorrelated, 1);
    assert_int_equal(st.correlated, 1);
    assert_int_equal(st.exported, 2);
    for (uint64_t now = 35100; now <= 60000; now += 100)
        expire(t, now, k);
    assert_int_equal(k->calls, 2);
    fv_ftab_free(t);
    free(k);
}

static void test_inactive_flows_are_exported_if_they_have_news_and_deleted(void **state)
{
    /* Inactive before active, so the inactive deadline is what fires. */
    struct fv_ftab *t = tab_new(30000, 15000, 0);
    struct sink *k = sink_new();
    struct fv_agg_key news = key4(1, 40000, 200, 443, 6);
    struct fv_agg_key quiet = key4(1, 40001, 200, 443, 6);
    struct rin r;
    (void)state;

    local_rec(&r, &news, FV_FLOW_TO_EXTERNAL, S0 + 1, 2);
    rin_oct(&r, 1000, 1000);
    assert_int_equal(apply(t, &r, 0, k), 0);
    local_rec(&r, &quiet, FV_FLOW_TO_EXTERNAL, S0 + 1, 2);
    rin_oct(&r, 700, 700);
    assert_int_equal(apply(t, &r, 0, k), 0);
    expire(t, 0, k);
    assert_int_equal(k->n, 2);
    /* news gets a record that pushes its inactive deadline to 20000. */
    local_rec(&r, &news, FV_FLOW_TO_EXTERNAL, S0 + 5, 1);
    rin_oct(&r, 1200, 200);
    assert_int_equal(apply(t, &r, 5000, k), 0);

    for (uint64_t now = 100; now < 15000; now += 100)
        expire(t, now, k);
    assert_int_equal(stats(t).flows, 2);
    expire(t, 15000, k); /* quiet: deleted without an export */
    assert_int_equal(k->calls, 2);
    assert_int_equal(stats(t).flows, 1);
    assert_int_equal(stats(t).expired, 1);
    assert_false(has_flow(t, &quiet));
    for (uint64_t now = 15100; now < 20000; now += 100)
        expire(t, now, k);
    assert_int_equal(k->calls, 2);
    expire(t, 20000, k); /* news: exported, then deleted */
    assert_int_equal(k->n, 3);
    assert_true(same_key(&k->rec[2].r, &news));
    assert_int_equal(k->rec[2].r.a.octets_delta, 200);
    assert_int_equal(k->rec[2].r.a.end_reason, 1);
    struct fv_ftab_stats st = stats(t);
    assert_int_equal(st.flows, 0);
    assert_int_equal(st.expired, 2);
    assert_int_equal(st.exported, 3);
    assert_false(has_flow(t, &news));
    /* A record for the key now starts a new flow; its first delta is the
     * record's own (the rest of the total went out with the old entry). */
    local_rec(&r, &news, FV_FLOW_TO_EXTERNAL, S0 + 30, 2);
    rin_oct(&r, 1300, 100);
    assert_int_equal(apply(t, &r, 30000, k), 0);
    expire(t, 30000, k);
    assert_int_equal(k->n, 4);
    assert_int_equal(k->rec[3].r.a.octets_total, 1300);
    assert_int_equal(k->rec[3].r.a.octets_delta, 100);
    assert_int_equal(stats(t).flows, 1);
    fv_ftab_free(t);
    free(k);
}

static void test_flows_come_out_in_deadline_order(void **state)
{
    struct fv_ftab *t = tab_new(ACTIVE, INACTIVE, 0);
    struct sink *k = sink_new();
    struct fv_agg_key keys[5];
    /* Created in this order, 700 ms apart; updated in the reverse order. */
    static const int created[5] = {3, 0, 4, 1, 2};
    struct rin r;
    (void)state;

    for (int i = 0; i < 5; i++)
        keys[i] = key4(1, (uint16_t)(41000 + i), 200, 443, 6);
    for (int n = 0; n < 5; n++) {
        local_rec(&r, &keys[created[n]], FV_FLOW_TO_EXTERNAL, S0 + 1, 2);
        rin_oct(&r, 100, 100);
        assert_int_equal(apply(t, &r, (uint64_t)n * 700, k), 0);
        expire(t, (uint64_t)n * 700, k);
    }
    assert_int_equal(k->n, 5);
    for (int n = 4; n >= 0; n--) {
        local_rec(&r, &keys[created[n]], FV_FLOW_TO_EXTERNAL, S0 + 5, 2);
        rin_oct(&r, 200, 100);
        assert_int_equal(apply(t, &r, 5000, k), 0);
    }
    expire(t, 5000, k);
    assert_int_equal(k->n, 5);
    expire(t, 20000, k); /* all five deadlines (10000..12800) have passed */
    assert_int_equal(k->n, 10);
    for (int n = 0; n < 5; n++)
        assert_true(same_key(&k->rec[5 + n].r, &keys[created[n]]));
    fv_ftab_free(t);
    free(k);
}

static void test_refused_exports_keep_their_deltas_and_are_retried(void **state)
{
    struct fv_ftab *t = tab_new(ACTIVE, INACTIVE, 0);
    struct sink *k = sink_new();
    struct fv_agg_key key = key4(1, 40000, 200, 443, 6);
    struct rin r;
    (void)state;

    /* A prompt export refused. */
    k->refuse = 1;
    local_rec(&r, &key, FV_FLOW_TO_EXTERNAL, S0 + 1, 2);
    rin_oct(&r, 1000, 1000);
    assert_int_equal(apply(t, &r, 0, k), 0);
    expire(t, 0, k);
    assert_int_equal(k->calls, 1);
    assert_int_equal(stats(t).refused, 1);
    local_rec(&r, &key, FV_FLOW_TO_EXTERNAL, S0 + 2, 2);
    rin_oct(&r, 1500, 500);
    assert_int_equal(apply(t, &r, 500, k), 0);
    /* Retried after retry_ms (1000), not at every tick. */
    for (uint64_t now = 100; now < 1000; now += 100)
        expire(t, now, k);
    assert_int_equal(k->calls, 1);
    expire(t, 1000, k);
    assert_int_equal(k->calls, 2);
    assert_int_equal(k->n, 0);
    k->refuse = 0;
    expire(t, 1900, k);
    assert_int_equal(k->calls, 2);
    expire(t, 2000, k);
    assert_int_equal(k->n, 1);
    assert_int_equal(k->rec[0].r.a.octets_total, 1500);
    assert_int_equal(k->rec[0].r.a.octets_delta, 1500);
    assert_int_equal(k->rec[0].r.side[0][FV_AGG_OCT_DELTA], 1500);
    assert_int_equal(k->rec[0].r.side[0][FV_AGG_ROCT_DELTA], 750);
    struct fv_ftab_stats st = stats(t);
    assert_int_equal(st.refused, 2);
    assert_int_equal(st.exported, 1);

    /* An active-deadline export refused (its deadline is 2000 + ACTIVE). */
    local_rec(&r, &key, FV_FLOW_TO_EXTERNAL, S0 + 3, 2);
    rin_oct(&r, 1800, 300);
    assert_int_equal(apply(t, &r, 3000, k), 0);
    k->refuse = 1;
    for (uint64_t now = 3000; now <= 12000; now += 100)
        expire(t, now, k);
    assert_int_equal(k->calls, 4);
    local_rec(&r, &key, FV_FLOW_TO_EXTERNAL, S0 + 12, 2);
    rin_oct(&r, 2000, 200);
    assert_int_equal(apply(t, &r, 12000, k), 0);
    for (uint64_t now = 12100; now <= 13900; now += 100)
        expire(t, now, k);
    assert_int_equal(k->calls, 5); /* 12000, 13000 */
    k->refuse = 0;
    expire(t, 14000, k);
    assert_int_equal(k->calls, 6);
    assert_int_equal(k->n, 2);
    assert_int_equal(k->rec[1].r.a.octets_total, 2000);
    assert_int_equal(k->rec[1].r.a.octets_delta, 500);
    assert_int_equal(k->rec[1].r.side[0][FV_AGG_OCT_DELTA], 500);
    /* Accepted: the next one is a full active timeout later. */
    local_rec(&r, &key, FV_FLOW_TO_EXTERNAL, S0 + 15, 2);
    rin_oct(&r, 2100, 100);
    assert_int_equal(apply(t, &r, 15000, k), 0);
    for (uint64_t now = 14100; now < 24000; now += 100)
        expire(t, now, k);
    assert_int_equal(k->calls, 6);
    expire(t, 24000, k);
    assert_int_equal(k->n, 3);
    assert_int_equal(k->rec[2].r.a.octets_delta, 100);
    st = stats(t);
    assert_int_equal(st.refused, 4);
    assert_int_equal(st.exported, 3);
    assert_int_equal(st.flows, 1);
    fv_ftab_free(t);
    free(k);
}

static void test_refused_export_at_the_inactive_deadline_is_retried_not_lost(void **state)
{
    struct fv_ftab *t = tab_new(30000, 15000, 0);
    struct sink *k = sink_new();
    struct fv_agg_key key = key4(1, 40000, 200, 443, 6);
    struct rin r;
    (void)state;

    local_rec(&r, &key, FV_FLOW_TO_EXTERNAL, S0 + 1, 2);
    rin_oct(&r, 1000, 1000);
    assert_int_equal(apply(t, &r, 0, k), 0);
    expire(t, 0, k);
    local_rec(&r, &key, FV_FLOW_TO_EXTERNAL, S0 + 2, 1);
    rin_oct(&r, 1100, 100);
    assert_int_equal(apply(t, &r, 1000, k), 0);
    k->refuse = 1;
    expire(t, 16000, k);
    assert_int_equal(k->calls, 2);
    assert_int_equal(stats(t).flows, 1);
    expire(t, 16900, k);
    assert_int_equal(k->calls, 2);
    k->refuse = 0;
    expire(t, 17000, k);
    assert_int_equal(k->n, 2);
    assert_int_equal(k->rec[1].r.a.octets_delta, 100);
    struct fv_ftab_stats st = stats(t);
    assert_int_equal(st.flows, 0);
    assert_int_equal(st.expired, 1);
    assert_int_equal(st.refused, 1);
    fv_ftab_free(t);
    free(k);
}

static void test_refused_export_of_a_lone_half_is_retried(void **state)
{
    struct fv_ftab *t = tab_new(ACTIVE, INACTIVE, 0);
    struct sink *k = sink_new();
    struct fv_agg_key key = key4(1, 40000, 2, 8080, 6);
    struct rin r;
    (void)state;

    dst_half(&r, &key, S0 + 1, 2);
    rin_oct(&r, 1000, 1000);
    assert_int_equal(apply(t, &r, 0, k), 0);
    k->refuse = 1;
    expire(t, 2 * ACTIVE, k);
    assert_int_equal(k->calls, 1);
    expire(t, 2 * ACTIVE + 900, k);
    assert_int_equal(k->calls, 1);
    k->refuse = 0;
    expire(t, 2 * ACTIVE + 1000, k);
    assert_int_equal(k->n, 1);
    assert_string_equal(k->rec[0].r.a.dst_pod, "web-1");
    assert_int_equal(k->rec[0].r.side[1][FV_AGG_OCT_DELTA], 1000);
    assert_int_equal(stats(t).uncorrelated, 1);
    fv_ftab_free(t);
    free(k);
}

/* ---- Limits ---- */

static void test_max_flows_evicts_the_nearest_deadline_or_drops_when_refused(void **state)
{
    struct fv_ftab *t = tab_new(ACTIVE, INACTIVE, 3);
    struct sink *k = sink_new();
    struct fv_agg_key keys[5];
    struct rin r;
    (void)state;

    for (int i = 0; i < 5; i++)
        keys[i] = key4(1, (uint16_t)(42000 + i), 200, 443, 6);
    for (int i = 0; i < 3; i++) {
        local_rec(&r, &keys[i], FV_FLOW_TO_EXTERNAL, S0 + 1, 2);
        rin_oct(&r, 1000, 1000);
        assert_int_equal(apply(t, &r, (uint64_t)i * 1000, k), 0);
        expire(t, (uint64_t)i * 1000, k);
    }
    assert_int_equal(k->n, 3);
    /* All three get news; keys[0] last, but its active deadline is the nearest. */
    for (int i = 2; i >= 0; i--) {
        local_rec(&r, &keys[i], FV_FLOW_TO_EXTERNAL, S0 + 4, 2);
        rin_oct(&r, 1000 + 100 * (uint64_t)(i + 1), 100 * (uint64_t)(i + 1));
        assert_int_equal(apply(t, &r, 4000, k), 0);
    }
    local_rec(&r, &keys[3], FV_FLOW_TO_EXTERNAL, S0 + 5, 2);
    rin_oct(&r, 500, 500);
    assert_int_equal(apply(t, &r, 5000, k), 0);
    assert_int_equal(k->n, 4);
    assert_true(same_key(&k->rec[3].r, &keys[0]));
    assert_int_equal(k->rec[3].r.a.octets_delta, 100);
    struct fv_ftab_stats st = stats(t);
    assert_int_equal(st.evicted, 1);
    assert_int_equal(st.flows, 3);
    assert_int_equal(st.dropped, 0);
    assert_false(has_flow(t, &keys[0]));
    assert_true(has_flow(t, &keys[3]));

    /* Refused: the new record is dropped and nothing else changes. */
    k->refuse = 1;
    local_rec(&r, &keys[4], FV_FLOW_TO_EXTERNAL, S0 + 5, 2);
    rin_oct(&r, 500, 500);
    assert_int_equal(apply(t, &r, 5000, k), -FV_ELIMIT);
    st = stats(t);
    assert_int_equal(st.dropped, 1);
    assert_int_equal(st.evicted, 1);
    assert_int_equal(st.flows, 3);
    assert_false(has_flow(t, &keys[4]));
    assert_true(has_flow(t, &keys[1]));
    /* Records of flows already in the table are still taken. */
    local_rec(&r, &keys[3], FV_FLOW_TO_EXTERNAL, S0 + 6, 2);
    rin_oct(&r, 600, 100);
    assert_int_equal(apply(t, &r, 6000, k), 0);
    k->refuse = 0;
    /* Nothing was lost: keys[1] still carries its news. */
    expire(t, 6000, k);
    assert_true(same_key(&k->rec[4].r, &keys[3]));
    assert_int_equal(k->rec[4].r.a.octets_delta, 600);
    fv_ftab_flush(t, emit, k);
    bool seen1 = false;
    for (int i = 5; i < k->n; i++) {
        if (same_key(&k->rec[i].r, &keys[1])) {
            seen1 = true;
            assert_int_equal(k->rec[i].r.a.octets_delta, 200);
        }
    }
    assert_true(seen1);
    fv_ftab_free(t);
    free(k);
}

/* ---- Queries ---- */

struct keyset {
    struct fv_agg_key k[8];
    int n;
};

static int collect(void *ctx, const struct fv_agg_rec *r)
{
    struct keyset *s = ctx;
    struct fv_agg_key *k = &s->k[s->n++];

    memset(k, 0, sizeof(*k));
    memcpy(k->src, r->a.src_addr, 16);
    memcpy(k->dst, r->a.dst_addr, 16);
    k->sport = r->a.src_port;
    k->dport = r->a.dst_port;
    k->proto = r->a.proto;
    k->v6 = r->a.ipv6;
    return 0;
}

/* The query returns exactly the flows in want (a bit set over keys). */
static void assert_query(struct fv_ftab *t, const struct fv_ftab_filter *f,
                         const struct fv_agg_key *keys, int nkeys, unsigned want)
{
    struct keyset s = {.n = 0};
    unsigned got = 0;

    uint64_t matched = fv_ftab_query(t, f, 8, collect, &s);
    assert_int_equal(matched, (uint64_t)s.n);
    for (int i = 0; i < s.n; i++) {
        int found = -1;
        for (int j = 0; j < nkeys; j++)
            if (memcmp(&s.k[i], &keys[j], sizeof(keys[j])) == 0)
                found = j;
        assert_true(found >= 0);
        assert_false(got & (1u << found));
        got |= 1u << found;
    }
    assert_int_equal(got, want);
}

static void test_query_matches_exact_and_partial_filters(void **state)
{
    struct fv_ftab *t = tab_new(ACTIVE, INACTIVE, 0);
    struct sink *k = sink_new();
    struct fv_agg_key keys[6];
    struct rin r;
    (void)state;

    keys[0] = key4(1, 1000, 1, 80, 6);
    keys[1] = key4(1, 1001, 2, 443, 6);
    keys[2] = key4(2, 1000, 1, 53, 17);
    keys[3] = key6(1, 1000, 2, 80, 6);
    /* An IPv6 flow whose addresses start with the bytes of 10.0.0.1 and
     * 10.0.1.1: a filter on the IPv4 addresses must not match it. */
    keys[4] = key4(1, 1000, 1, 8080, 6);
    keys[4].v6 = 1;
    keys[4].src[15] = 1;
    keys[5] = key6(3, 2000, 2, 53, 17);
    for (int i = 0; i < 6; i++) {
        local_rec(&r, &keys[i], FV_FLOW_TO_EXTERNAL, S0 + 1, 2);
        rin_oct(&r, 100, 100);
        assert_int_equal(apply(t, &r, 0, k), 0);
    }

    struct fv_ftab_filter any = {.proto = -1, .sport = -1, .dport = -1};
    assert_query(t, &any, keys, 6, 0x3f);

    struct fv_ftab_filter f = any;
    /* Exact, all five. */
    f.has_src = f.has_dst = true;
    memcpy(f.src, keys[1].src, 16);
    memcpy(f.dst, keys[1].dst, 16);
    f.proto = 6, f.sport = 1001, f.dport = 443;
    assert_query(t, &f, keys, 6, 1u << 1);
    f.dport = 444;
    assert_query(t, &f, keys, 6, 0);
    f = any;
    f.has_src = f.has_dst = true;
    f.src_v6 = f.dst_v6 = true;
    memcpy(f.src, keys[3].src, 16);
    memcpy(f.dst, keys[3].dst, 16);
    f.proto = 6, f.sport = 1000, f.dport = 80;
    assert_query(t, &f, keys, 6, 1u << 3);

    /* Source address only, by family. */
    f = any;
    f.has_src = true;
    memcpy(f.src, keys[0].src, 16);
    assert_query(t, &f, keys, 6, 1u << 0 | 1u << 1);
    f.src_v6 = true;
    memcpy(f.src, keys[4].src, 16);
    assert_query(t, &f, keys, 6, 1u << 4);
    memcpy(f.src, keys[3].src, 16);
    assert_query(t, &f, keys, 6, 1u << 3);

    /* Destination address only. */
    f = any;
    f.has_dst = true;
    memcpy(f.dst, keys[0].dst, 16);
    assert_query(t, &f, keys, 6, 1u << 0 | 1u << 2);

    /* Ports and protocol. */
    f = any;
    f.dport = 80;
    assert_query(t, &f, keys, 6, 1u << 0 | 1u << 3);
    f = any;
    f.sport = 1000;
    assert_query(t, &f, keys, 6, 1u << 0 | 1u << 2 | 1u << 3 | 1u << 4);
    f = any;
    f.proto = 17;
    assert_query(t, &f, keys, 6, 1u << 2 | 1u << 5);
    f.dport = 53;
    f.has_src = true;
    f.src_v6 = true;
    memcpy(f.src, keys[5].src, 16);
    assert_query(t, &f, keys, 6, 1u << 5);

    /* The limit bounds the calls, not the count. */
    struct keyset s = {.n = 0};
    assert_int_equal(fv_ftab_query(t, &any, 2, collect, &s), 6);
    assert_int_equal(s.n, 2);
    /* A query does not export or change anything. */
    expire(t, 0, k);
    assert_int_equal(k->n, 6);
    assert_int_equal(k->rec[0].r.a.octets_delta, 100);
    fv_ftab_free(t);
    free(k);
}

/* ---- End of flow, flush ---- */

static void test_end_of_flow_is_exported_promptly_and_its_reason_kept(void **state)
{
    struct fv_ftab *t = tab_new(ACTIVE, INACTIVE, 0);
    struct sink *k = sink_new();
    struct fv_agg_key key = key4(1, 40000, 2, 8080, 6);
    struct rin r;
    (void)state;

    src_half(&r, &key, S0 + 1, 2);
    rin_oct(&r, 1000, 1000);
    assert_int_equal(apply(t, &r, 0, k), 0);
    dst_half(&r, &key, S0 + 1, 2);
    rin_oct(&r, 1000, 1000);
    assert_int_equal(apply(t, &r, 0, k), 0);
    expire(t, 0, k);
    assert_int_equal(k->n, 1);
    assert_int_equal(k->rec[0].r.a.end_reason, 2);

    /* The source node sees the connection end: out at once, before the
     * active deadline (10000). */
    src_half(&r, &key, S0 + 3, FV_END_OF_FLOW);
    rin_str(&r, FV_AGG_TCP_STATE, "TIME_WAIT");
    rin_oct(&r, 1300, 300);
    assert_int_equal(apply(t, &r, 3000, k), 0);
    expire(t, 3000, k);
    assert_int_equal(k->n, 2);
    assert_int_equal(k->rec[1].r.a.end_reason, FV_END_OF_FLOW);
    assert_int_equal(k->rec[1].r.a.octets_delta, 300);

    /* A later active-timeout report from the other node does not undo it. */
    dst_half(&r, &key, S0 + 4, 2);
    rin_oct(&r, 1350, 350);
    assert_int_equal(apply(t, &r, 4000, k), 0);
    for (uint64_t now = 3100; now < 13000; now += 100)
        expire(t, now, k);
    assert_int_equal(k->n, 2);
    expire(t, 13000, k);
    assert_int_equal(k->n, 3);
    assert_int_equal(k->rec[2].r.a.end_reason, FV_END_OF_FLOW);
    assert_int_equal(k->rec[2].r.a.octets_delta, 50);
    fv_ftab_free(t);
    free(k);
}

static void test_end_of_flow_with_same_end_and_counters_is_not_stale(void **state)
{
    struct fv_ftab *t = tab_new(ACTIVE, INACTIVE, 0);
    struct sink *k = sink_new();
    struct fv_agg_key key = key4(1, 40000, 3, 80, 6);
    struct rin r;
    (void)state;

    local_rec(&r, &key, FV_FLOW_INTRA_NODE, S0 + 1, 2);
    rin_oct(&r, 1000, 1000);
    assert_int_equal(apply(t, &r, 0, k), 0);
    expire(t, 0, k);
    /* DESTROY in the same second, nothing more counted. */
    local_rec(&r, &key, FV_FLOW_INTRA_NODE, S0 + 1, FV_END_OF_FLOW);
    rin_oct(&r, 1000, 0);
    assert_int_equal(apply(t, &r, 500, k), 0);
    expire(t, 500, k);
    assert_int_equal(k->n, 2);
    assert_int_equal(k->rec[1].r.a.end_reason, FV_END_OF_FLOW);
    assert_int_equal(k->rec[1].r.a.octets_delta, 0);
    /* Repeated: now stale. */
    assert_int_equal(apply(t, &r, 600, k), 1);
    assert_int_equal(stats(t).stale, 1);
    fv_ftab_free(t);
    free(k);
}

static void test_tcp_state_comes_from_the_latest_record(void **state)
{
    struct fv_ftab *t = tab_new(ACTIVE, INACTIVE, 0);
    struct sink *k = sink_new(), *q = sink_new();
    struct fv_agg_key key = key4(1, 40000, 2, 8080, 6);
    struct rin r;
    (void)state;

    src_half(&r, &key, S0 + 1, 2);
    rin_oct(&r, 100, 100);
    assert_int_equal(apply(t, &r, 0, k), 0);
    dst_half(&r, &key, S0 + 1, 2);
    rin_oct(&r, 100, 100);
    assert_int_equal(apply(t, &r, 0, k), 0);
    src_half(&r, &key, S0 + 2, 2);
    r.in.str_len[FV_AGG_TCP_STATE] = 0;
    rin_str(&r, FV_AGG_TCP_STATE, "FIN_WAIT");
    rin_oct(&r, 200, 100);
    assert_int_equal(apply(t, &r, 1000, k), 0);
    assert_string_equal(state_of(t, &key, q)->r.a.tcp_state, "FIN_WAIT");
    /* The destination repeats its identity unchanged, but is the latest. */
    dst_half(&r, &key, S0 + 2, 2);
    rin_oct(&r, 200, 100);
    assert_int_equal(apply(t, &r, 1000, k), 0);
    assert_string_equal(state_of(t, &key, q)->r.a.tcp_state, "ESTABLISHED");
    /* Everything else of both halves is still there. */
    assert_both_halves(state_of(t, &key, q));
    fv_ftab_free(t);
    free(k);
    free(q);
}

static void test_flush_exports_everything_with_news_and_empties_the_table(void **state)
{
    struct fv_ftab *t = tab_new(ACTIVE, INACTIVE, 0);
    struct sink *k = sink_new();
    struct fv_agg_key done = key4(1, 40000, 200, 443, 6);
    struct fv_agg_key busy = key4(1, 40001, 200, 443, 6);
    struct fv_agg_key lone = key4(1, 40002, 2, 8080, 6);
    struct rin r;
    (void)state;

    local_rec(&r, &done, FV_FLOW_TO_EXTERNAL, S0 + 1, 2);
    rin_oct(&r, 100, 100);
    assert_int_equal(apply(t, &r, 0, k), 0);
    local_rec(&r, &busy, FV_FLOW_TO_EXTERNAL, S0 + 1, 2);
    rin_oct(&r, 200, 200);
    assert_int_equal(apply(t, &r, 0, k), 0);
    expire(t, 0, k);
    assert_int_equal(k->n, 2);
    local_rec(&r, &busy, FV_FLOW_TO_EXTERNAL, S0 + 2, 2);
    rin_oct(&r, 250, 50);
    assert_int_equal(apply(t, &r, 1000, k), 0);
    src_half(&r, &lone, S0 + 2, 2);
    rin_oct(&r, 300, 300);
    assert_int_equal(apply(t, &r, 1000, k), 0);

    assert_int_equal(fv_ftab_flush(t, emit, k), 0);
    assert_int_equal(k->n, 4);
    bool seen_busy = false, seen_lone = false;
    for (int i = 2; i < 4; i++) {
        if (same_key(&k->rec[i].r, &busy)) {
            seen_busy = true;
            assert_int_equal(k->rec[i].r.a.octets_delta, 50);
        }
        if (same_key(&k->rec[i].r, &lone)) {
            seen_lone = true;
            assert_false(k->rec[i].r.correlated);
            assert_int_equal(k->rec[i].r.a.octets_delta, 300);
        }
    }
    assert_true(seen_busy && seen_lone);
    struct fv_ftab_stats st = stats(t);
    assert_int_equal(st.flows, 0);
    assert_int_equal(st.uncorrelated, 1);
    assert_int_equal(st.strings, 0);
    struct fv_ftab_filter any = {.proto = -1, .sport = -1, .dport = -1};
    assert_int_equal(fv_ftab_query(t, &any, 10, emit, k), 0);
    /* Nothing fires later, and the table is usable again. */
    expire(t, 100000, k);
    assert_int_equal(k->calls, 4);
    local_rec(&r, &busy, FV_FLOW_TO_EXTERNAL, S0 + 200, 2);
    rin_oct(&r, 400, 150);
    assert_int_equal(apply(t, &r, 200000, k), 0);
    expire(t, 200000, k);
    assert_int_equal(k->n, 5);
    assert_int_equal(k->rec[4].r.a.octets_delta, 150);

    /* A refused flush reports how many records were not taken. */
    k->refuse = 1;
    assert_int_equal(fv_ftab_flush(t, emit, k), 0); /* nothing with news */
    local_rec(&r, &busy, FV_FLOW_TO_EXTERNAL, S0 + 201, 2);
    rin_oct(&r, 500, 100);
    assert_int_equal(apply(t, &r, 201000, k), 0);
    local_rec(&r, &done, FV_FLOW_TO_EXTERNAL, S0 + 201, 2);
    rin_oct(&r, 500, 100);
    assert_int_equal(apply(t, &r, 201000, k), 0);
    assert_int_equal(fv_ftab_flush(t, emit, k), 2);
    assert_int_equal(stats(t).flows, 0);
    fv_ftab_free(t);
    free(k);
}

/* ---- Scale ---- */

static int emit_count(void *ctx, const struct fv_agg_rec *r)
{
    (void)r;
    (*(uint64_t *)ctx)++;
    return 0;
}

static void test_many_flows_grow_the_table_and_all_expire(void **state)
{
    enum { N = 20000 };
    struct fv_ftab *t = tab_new(ACTIVE, INACTIVE, 0);
    struct sink *k = sink_new();
    struct rin r;
    char pod[32];
    (void)state;

    for (int i = 0; i < N; i++) {
        struct fv_agg_key key = key4((uint8_t)(i % 250 + 1), (uint16_t)(10000 + i / 250), 9, 80, 6);
        rin_init(&r, &key, FV_FLOW_INTER_NODE, S0, S0 + 1, 2);
        snprintf(pod, sizeof(pod), "client-%d", i % 1000);
        rin_str(&r, FV_AGG_SRC_POD, pod);
        rin_str(&r, FV_AGG_SRC_NS, "team-a");
        rin_oct(&r, 100, 100);
        assert_int_equal(apply(t, &r, 0, k), 0);
    }
    struct fv_ftab_stats st = stats(t);
    assert_int_equal(st.flows, N);
    assert_int_equal(st.strings, 1001);
    struct fv_ftab_filter f = {.proto = -1, .sport = -1, .dport = -1, .has_src = true};
    f.src[0] = 10, f.src[3] = 7;
    assert_int_equal(fv_ftab_query(t, &f, 0, emit, k), N / 250);
    /* All are lone halves: exported at the correlation wait, then deleted
     * at the inactive deadline. */
    expire(t, 2 * ACTIVE - 100, k);
    assert_int_equal(k->calls, 0);
    k->refuse = 1;
    expire(t, 2 * ACTIVE, k);
    assert_int_equal(stats(t).refused, N);
    k->refuse = 0;
    /* The sink holds MAX_CAPTURED records: count the rest. */
    uint64_t counted = 0;
    for (uint64_t now = 2 * ACTIVE + 100; now <= INACTIVE; now += 100)
        fv_ftab_expire(t, now, emit_count, &counted);
    assert_int_equal(counted, N);
    st = stats(t);
    assert_int_equal(st.exported, N);
    assert_int_equal(st.uncorrelated, N);
    assert_int_equal(st.flows, 0);
    assert_int_equal(st.expired, N);
    assert_int_equal(st.strings, 0);
    fv_ftab_free(t);
    free(k);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_inter_node_halves_source_first_are_exported_once_correlated),
        cmocka_unit_test(test_inter_node_halves_destination_first_are_exported_once_correlated),
        cmocka_unit_test(test_denied_inter_node_flows_are_exported_without_waiting),
        cmocka_unit_test(test_intra_node_and_external_flows_are_exported_on_the_first_expire),
        cmocka_unit_test(test_counters_and_throughputs_aggregate_per_side_and_in_common),
        cmocka_unit_test(test_first_record_throughput_is_zero_when_end_is_not_after_start),
        cmocka_unit_test(test_stale_records_are_ignored_and_counted),
        cmocka_unit_test(test_no_reexport_without_news_then_export_at_the_next_active_deadline),
        cmocka_unit_test(test_idle_report_without_growth_is_not_exported_alone),
        cmocka_unit_test(test_lone_half_is_exported_once_after_the_correlation_wait),
        cmocka_unit_test(test_inactive_flows_are_exported_if_they_have_news_and_deleted),
        cmocka_unit_test(test_flows_come_out_in_deadline_order),
        cmocka_unit_test(test_refused_exports_keep_their_deltas_and_are_retried),
        cmocka_unit_test(test_refused_export_at_the_inactive_deadline_is_retried_not_lost),
        cmocka_unit_test(test_refused_export_of_a_lone_half_is_retried),
        cmocka_unit_test(test_max_flows_evicts_the_nearest_deadline_or_drops_when_refused),
        cmocka_unit_test(test_query_matches_exact_and_partial_filters),
        cmocka_unit_test(test_end_of_flow_is_exported_promptly_and_its_reason_kept),
        cmocka_unit_test(test_end_of_flow_with_same_end_and_counters_is_not_stale),
        cmocka_unit_test(test_tcp_state_comes_from_the_latest_record),
        cmocka_unit_test(test_flush_exports_everything_with_news_and_empties_the_table),
        cmocka_unit_test(test_many_flows_grow_the_table_and_all_expire),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
