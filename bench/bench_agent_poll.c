/*
 * bench_agent_poll.c - the agent's conntrack poll against a bare
 * libnetfilter_conntrack dump of the same table, and the store's memory
 * per connection.
 *
 * Run it as root inside a fresh network namespace (bench/run.sh does):
 *
 *     ip netns exec bench build/bench/bench_agent_poll 200000
 *
 * It fills the namespace's conntrack table with N TCP entries through
 * libnetfilter_conntrack (NFCT_Q_CREATE), then measures, several times
 * each, the CPU time of
 *   - a bare dump: nfct_query(NFCT_Q_DUMP) with a callback that only counts
 *     (what any conntrack reader pays at least);
 *   - one agent poll: fv_ct_dump feeding fv_agent_store_update for every entry,
 *     then the sweep (what `flowvis agent` does every flowPollInterval);
 * and prints the best of each, their ratio (target <= 1.25) and the store's
 * bytes per tracked connection (target <= 200).
 */
#include <arpa/inet.h>
#include <libnetfilter_conntrack/libnetfilter_conntrack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent/store.h"
#include "conntrack/conntrack.h"

#define RUNS 5

static double cpu_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int fill(struct nfct_handle *h, unsigned n)
{
    struct nf_conntrack *ct = nfct_new();
    unsigned made = 0;

    for (unsigned i = 0; i < n; i++) {
        nfct_set_attr_u8(ct, ATTR_L3PROTO, AF_INET);
        nfct_set_attr_u32(ct, ATTR_IPV4_SRC, htonl(0x0AF40000u | (i >> 8 & 0xFFFF)));
        nfct_set_attr_u32(ct, ATTR_IPV4_DST, htonl(0x0AF50000u | (i & 0xFF)));
        nfct_set_attr_u8(ct, ATTR_L4PROTO, IPPROTO_TCP);
        nfct_set_attr_u16(ct, ATTR_PORT_SRC, htons((uint16_t)(10000 + i % 50000)));
        nfct_set_attr_u16(ct, ATTR_PORT_DST, htons(80));
        nfct_setobjopt(ct, NFCT_SOPT_SETUP_REPLY);
        nfct_set_attr_u8(ct, ATTR_TCP_STATE, 3); /* ESTABLISHED */
        nfct_set_attr_u32(ct, ATTR_TIMEOUT, 3600);
        if (nfct_query(h, NFCT_Q_CREATE, ct) == 0)
            made++;
    }
    nfct_destroy(ct);
    return (int)made;
}

static int count_cb(enum nf_conntrack_msg_type type, struct nf_conntrack *ct, void *data)
{
    (void)type;
    (void)ct;
    (*(unsigned long *)data)++;
    return NFCT_CB_CONTINUE;
}

static int emit_nothing(void *ctx, const struct fv_conn_report *r)
{
    (void)ctx;
    (void)r;
    return 0;
}

struct poll_ctx {
    struct fv_agent_store *store;
    unsigned long entries;
};

static int on_entry(void *arg, const struct fv_ct_entry *e)
{
    struct poll_ctx *p = arg;
    p->entries++;
    fv_agent_store_update(p->store, e, 1000, 1, emit_nothing, NULL);
    return 0;
}

int main(int argc, char **argv)
{
    unsigned n = argc > 1 ? (unsigned)strtoul(argv[1], NULL, 10) : 200000;
    struct fv_agent_store_cfg cfg = {.active_timeout_ms = 30000, .idle_timeout_ms = 15000};
    struct nfct_handle *h = nfct_open(CONNTRACK, 0);
    double bare = 1e9, agent = 1e9;
    unsigned long bare_count = 0;
    struct poll_ctx p = {0};
    struct fv_ct *ct;
    int made;

    if (h == NULL || fv_ct_open(false, &ct) < 0 || fv_agent_store_new(&cfg, &p.store) < 0) {
        fprintf(stderr, "bench_agent_poll: needs root (CAP_NET_ADMIN) and conntrack\n");
        return 1;
    }
    made = fill(h, n);
    fprintf(stderr, "conntrack entries created: %d of %u\n", made, n);
    nfct_callback_register(h, NFCT_T_ALL, count_cb, &bare_count);
    for (int run = 0; run < RUNS; run++) {
        uint32_t family = AF_UNSPEC;
        double t0 = cpu_seconds();
        bare_count = 0;
        nfct_query(h, NFCT_Q_DUMP, &family);
        double t = cpu_seconds() - t0;
        bare = t < bare ? t : bare;

        t0 = cpu_seconds();
        p.entries = 0;
        fv_agent_store_begin_sweep(p.store);
        fv_ct_dump(ct, on_entry, &p);
        fv_agent_store_end_sweep(p.store, 1000, 1, emit_nothing, NULL);
        t = cpu_seconds() - t0;
        agent = t < agent ? t : agent;
    }
    struct fv_agent_store_stats st;
    fv_agent_store_stats(p.store, &st);
    printf("agent poll: %lu entries; bare libnetfilter_conntrack dump %.1f ms CPU, "
           "agent poll (dump + store) %.1f ms CPU, ratio %.2f (target <= 1.25)\n",
           p.entries, bare * 1e3, agent * 1e3, agent / bare);
    printf("agent poll: %llu connections tracked, store %.0f bytes per connection "
           "(target <= 200)\n",
           (unsigned long long)st.tracked,
           st.tracked ? (double)fv_agent_store_memory(p.store) / (double)st.tracked : 0.0);
    printf("agent poll: bare dump saw %lu entries\n", bare_count);
    fv_agent_store_free(p.store);
    fv_ct_close(ct);
    nfct_close(h);
    return 0;
}
