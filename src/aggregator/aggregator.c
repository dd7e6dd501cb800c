/*
 * aggregator.c - the aggregator's threads and their queues (aggregator.h).
 */
#include "aggregator/aggregator.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "aggregator/certs.h"
#include "aggregator/flowtab.h"
#include "aggregator/jsonout.h"
#include "aggregator/record.h"
#include "base/addr.h"
#include "base/clock.h"
#include "base/err.h"
#include "base/log.h"
#include "base/spsc.h"
#include "http/server.h"
#include "ipfix/sender.h"
#include "ipfix/transport.h"
#include "k8s/inventory.h"
#include "k8s/policy.h"
#include "k8s/watch.h"
#include "metrics/metrics.h"
#include "store/query.h"
#include "store/row.h"
#include "store/store.h"

#define MAX_SHARDS 64
#define MAX_EXPORTERS 65536
#define IN_QUEUE_BYTES (4u << 20)  /* ~13k records; a full one holds up decoding */
#define OUT_QUEUE_BYTES (4u << 20) /* a full one makes the table keep its flows */
#define COMMIT_RECORDS 256         /* publish to the shards at least this often */
#define COMMIT_MS 5                /* ...or after this long */
#define TICK_MS 100
#define BATCH 4096
#define BLOB_CAP 8192
#define DRAIN_ON_EXIT_MS 5000
/* HTTP handlers at once: a dashboard asks ~10 queries in parallel, and the
 * SQLite store has four read connections. */
#define HTTP_THREADS 4
#define QUERY_LIMIT_DEFAULT 10000
#define QUERY_LIMIT_MAX 1000000

/* ---- Metrics ---- */

static struct fv_metric m_received = FV_COUNTER("flowvis_aggregator_records_received_total",
                                                "Flow records received from exporters.");
static struct fv_metric m_exported = FV_COUNTER("flowvis_aggregator_records_exported_total",
                                                "Aggregated records handed to every output.");
static struct fv_metric m_dropped = FV_COUNTER(
    "flowvis_aggregator_records_dropped_total",
    "Records dropped: no flow key in the template, table full and nothing evictable, or a "
    "row a store cannot take.");
static struct fv_metric m_stale = FV_COUNTER("flowvis_aggregator_records_stale_total",
                                             "Records ignored as older than their side's last.");
static struct fv_metric m_uncorrelated =
    FV_COUNTER("flowvis_aggregator_flows_uncorrelated_total",
               "Inter-node flows exported with one half after the correlation wait.");
static struct fv_metric m_correlated = FV_COUNTER("flowvis_aggregator_flows_correlated_total",
                                                  "Inter-node flows whose two halves merged.");
static struct fv_metric m_evicted = FV_COUNTER("flowvis_aggregator_flows_evicted_total",
                                               "Flows exported early and evicted (maxFlows).");
static struct fv_metric m_flows =
    FV_GAUGE("flowvis_aggregator_flows", "Flows held in the flow tables.");
static struct fv_metric m_memory =
    FV_GAUGE("flowvis_aggregator_flow_table_bytes", "Memory held by the flow tables.");
static struct fv_metric m_exporters =
    FV_GAUGE("flowvis_aggregator_exporters_connected", "Exporters (sessions) connected now.");
static struct fv_metric m_seq_lost = FV_COUNTER("flowvis_aggregator_sequence_lost_total",
                                                "Records missing according to sequence numbers.");
static struct fv_metric m_no_template =
    FV_COUNTER("flowvis_aggregator_sets_missing_template_total",
               "Data sets skipped because their template is unknown (e.g. after a restart, until "
               "the exporter sends it again).");
static struct fv_metric m_malformed = FV_COUNTER("flowvis_aggregator_messages_malformed_total",
                                                 "IPFIX messages rejected as malformed.");
static struct fv_metric m_udp_drops = FV_COUNTER("flowvis_aggregator_udp_kernel_drops_total",
                                                 "Datagrams the kernel dropped before reading.");
static struct fv_metric m_ingest_stalls = FV_COUNTER(
    "flowvis_aggregator_ingest_stalls_total", "Times decoding waited for a full shard queue.");
static struct fv_metric m_q_ipfix =
    FV_GAUGE("flowvis_aggregator_output_queue_ipfix", "Records waiting for the IPFIX output.");
static struct fv_metric m_q_json =
    FV_GAUGE("flowvis_aggregator_output_queue_json", "Records waiting for the JSON output.");
static struct fv_metric m_q_shards =
    FV_GAUGE("flowvis_aggregator_output_queue_shards_bytes",
             "Bytes of exported records between shards and outputs.");
static struct fv_metric m_out_sent =
    FV_COUNTER("flowvis_aggregator_output_records_sent_total", "Records the outputs delivered.");
static struct fv_metric m_out_connected = FV_GAUGE(
    "flowvis_aggregator_output_connected", "Outputs connected now (IPFIX and JSON collectors).");
static struct fv_metric m_reconnects =
    FV_COUNTER("flowvis_aggregator_output_reconnects_total", "Reconnections of the outputs.");

/* Per store: the same figures for ClickHouse and for SQLite. */
struct store_metrics {
    struct fv_metric received, written, queued, refused, deleted, queue_bytes, spool_bytes, spilled,
        batches, failed, ambiguous, partitions, up;
};

#define STORE_METRICS(p, what)                                                                     \
    {                                                                                              \
        FV_COUNTER("flowvis_aggregator_" p "_rows_received_total", "Rows taken by " what "."),     \
            FV_COUNTER("flowvis_aggregator_" p "_rows_written_total",                              \
                       "Rows " what " confirmed written."),                                        \
            FV_GAUGE("flowvis_aggregator_" p "_rows_queued",                                       \
                     "Rows taken but not yet written to " what " (memory and disk)."),             \
            FV_COUNTER("flowvis_aggregator_" p "_rows_refused_total",                              \
                       "Times " what " was full and the output waited (backpressure)."),           \
            FV_COUNTER("flowvis_aggregator_" p "_rows_deleted_total",                              \
                       "Rows deleted from " what " by retention or the size cap."),                \
            FV_GAUGE("flowvis_aggregator_" p "_queue_bytes", "Bytes in " what "'s memory queue."), \
            FV_GAUGE("flowvis_aggregator_" p "_spool_bytes", "Bytes in " what "'s disk spool."),   \
            FV_COUNTER("flowvis_aggregator_" p "_rows_spilled_total",                              \
                       "Rows written to " what "'s disk spool."),                                  \
            FV_COUNTER("flowvis_aggregator_" p "_batches_written_total",                           \
                       "Batches (inserts, transactions) " what " accepted."),                      \
            FV_COUNTER("flowvis_aggregator_" p "_batches_failed_total",                            \
                       "Batch attempts that failed (each retry counts)."),                         \
            FV_COUNTER("flowvis_aggregator_" p "_batches_ambiguous_total",                         \
                       "Failures after the whole batch was sent (a retry may duplicate it)."),     \
            FV_COUNTER("flowvis_aggregator_" p "_partitions_dropped_total",                        \
                       "Partitions dropped by retention or the size cap."),                        \
            FV_GAUGE("flowvis_aggregator_" p "_up", "1 when the last write succeeded."),           \
    }

static struct store_metrics m_ch = STORE_METRICS("clickhouse", "ClickHouse");
static struct store_metrics m_sq = STORE_METRICS("sqlite", "SQLite");

/* ---- Exporters: (address, domain) -> 16-bit index, append-only ---- */

struct exporter {
    uint8_t ip[16];
    bool v6;
    uint32_t domain;
};

struct exporters {
    struct exporter e[MAX_EXPORTERS];
    _Atomic uint32_t n; /* published count; entries below it are immutable */
};

/* ---- Shards ---- */

struct query {
    struct fv_ftab_filter filter;
    uint64_t limit, matched, written;
    struct fv_sbuf *out;
    const struct fv_agg_templates *t;
    bool done;
};

struct shard {
    struct agg *agg;
    pthread_t thread;
    struct fv_spsc in;  /* decoded records from the main thread */
    struct fv_spsc out; /* exported records to the output thread */
    struct fv_ftab *tab;
    bool in_dirty; /* main thread: reserved but not committed */
    pthread_mutex_t qlock;
    pthread_cond_t qcond;
    struct query *_Atomic query; /* posted by the API thread */
    pthread_mutex_t slock;
    struct fv_ftab_stats stats; /* published every tick, under slock */
};

struct peer_state {
    struct fv_agg_in_map maps[2]; /* last two templates seen */
    int next_map;
    uint32_t last_domain;
    int last_exporter;     /* index for last_domain, -1 = none */
    uint64_t lost_seen;    /* sequence losses already added to the metric */
    uint64_t no_tmpl_seen; /* missing-template sets already added */
    struct fv_ratelimit rl;
};

struct agg {
    const struct fv_agg_cfg *cfg;
    volatile sig_atomic_t *stop;
    struct event_base *base;
    struct fv_ipfix_listener *listeners[3];
    int nlisteners;
    int nshards;
    struct shard shards[MAX_SHARDS];
    struct exporters *exps;
    _Atomic bool shards_stop; /* the main thread has fed everything */
    _Atomic bool out_stop;    /* the shards have flushed everything */
    _Atomic bool ready;
    uint32_t uncommitted;    /* main thread: records reserved, not published */
    uint64_t last_commit_ms; /* main thread */
    pthread_t out_thread;
    struct fv_agg_templates tmpl;
    struct fv_sender *ipfix_out, *json_out;
    struct fv_store stores[2]; /* ClickHouse first when enabled, then SQLite */
    struct store_metrics *store_m[2];
    int nstores;
    struct fv_k8s_file_source inv_src;
    bool have_inv_src;
    struct fv_k8s_watch *watch;   /* inventory.kubernetes */
    struct fv_k8s_inventory *inv; /* owned by the output thread after start */
    struct fv_metrics reg;
    struct fv_http_server *http;
    struct fv_http_route routes[12];
    struct fv_query_http_ctx qctx;    /* the store the query API reads */
    struct fv_http_assets ui;         /* the web UI's files */
    pthread_mutex_t flowrecords_lock; /* one /flowrecords query at a time (shard->query) */
    char *token;
    char blob[BLOB_CAP];
};

static uint32_t shard_of(const struct agg *a, const struct fv_agg_key *k)
{
    uint64_t w[5], h = 0;

    memcpy(w, k, sizeof(w));
    for (int i = 0; i < 5; i++)
        h = (h + w[i]) * 0x9e3779b97f4a7c15ull;
    return (uint32_t)((h >> 40) % (uint64_t)a->nshards);
}

static void exporter_lookup(void *ctx, uint16_t idx, struct fv_agg_rec *rec)
{
    struct exporters *x = ctx;

    if (idx >= atomic_load_explicit(&x->n, memory_order_acquire))
        return;
    memcpy(rec->exporter, x->e[idx].ip, 16);
    rec->exporter_v6 = x->e[idx].v6;
    rec->domain = x->e[idx].domain;
}

/* Main thread only: the index of (peer address, domain). */
static int exporter_index(struct agg *a, const struct fv_ipfix_peer *peer, uint32_t domain)
{
    struct exporters *x = a->exps;
    uint32_t n = atomic_load_explicit(&x->n, memory_order_relaxed);
    struct exporter e = {.domain = domain};

    if (inet_pton(AF_INET, peer->ip, e.ip) != 1) {
        if (inet_pton(AF_INET6, peer->ip, e.ip) == 1)
            e.v6 = true;
    }
    for (uint32_t i = n; i-- > 0;)
        if (x->e[i].domain == domain && x->e[i].v6 == e.v6 && memcmp(x->e[i].ip, e.ip, 16) == 0)
            return (int)i;
    if (n >= MAX_EXPORTERS)
        return 0;
    x->e[n] = e;
    atomic_store_explicit(&x->n, n + 1, memory_order_release);
    return (int)n;
}

/* ---- Main thread: decode and dispatch ---- */

struct decode_ctx {
    struct agg *a;
    struct fv_ipfix_peer *peer;
};

static const struct fv_agg_in_map *map_for(struct peer_state *ps, const struct fv_ipfix_template *t)
{
    for (int i = 0; i < 2; i++)
        if (ps->maps[i].serial == t->serial && ps->maps[i].field_count == t->field_count)
            return &ps->maps[i];
    struct fv_agg_in_map *m = &ps->maps[ps->next_map];
    ps->next_map ^= 1;
    fv_agg_in_map_build(m, t);
    return m;
}

static int on_record(void *ctx, const struct fv_ipfix_msg *msg, const struct fv_ipfix_rec *rec,
                     const struct fv_ipfix_value *values)
{
    struct decode_ctx *d = ctx;
    struct agg *a = d->a;
    struct peer_state *ps = d->peer->user;
    const struct fv_agg_in_map *m;
    struct fv_agg_in in;
    struct shard *sh;
    void *slot;
    int used;

    fv_metric_add(&m_received, 1);
    if (rec->tmpl->scope_count)
        return 0; /* options records carry no flows */
    m = map_for(ps, rec->tmpl);
    used = m->usable ? fv_agg_in_decode(m, values, &in, a->blob, sizeof(a->blob)) : -FV_ERECORD;
    if (used < 0) {
        fv_metric_add(&m_dropped, 1);
        return 0;
    }
    if (ps->last_exporter < 0 || ps->last_domain != msg->domain) {
        ps->last_domain = msg->domain;
        ps->last_exporter = exporter_index(a, d->peer, msg->domain);
    }
    in.exporter = (uint16_t)ps->last_exporter;
    sh = &a->shards[shard_of(a, &in.key)];
    while ((slot = fv_spsc_reserve(&sh->in, sizeof(in) + (size_t)used)) == NULL) {
        /* The shard is behind: publish what we have and wait for room.
         * TCP exporters feel this as backpressure; nothing is dropped. */
        fv_spsc_commit(&sh->in);
        sh->in_dirty = false;
        fv_metric_add(&m_ingest_stalls, 1);
        fv_spsc_wait_space(&sh->in, 10);
    }
    memcpy(slot, &in, sizeof(in));
    memcpy((char *)slot + sizeof(in), a->blob, (size_t)used);
    sh->in_dirty = true;
    a->uncommitted++;
    return 0;
}

/* Publishes what the main thread queued.  Called in batches, not per
 * message: each publish may wake a sleeping shard, and waking threads
 * cost more than the records themselves at a few hundred thousand a
 * second. */
static void commit_all(struct agg *a)
{
    a->uncommitted = 0;
    a->last_commit_ms = fv_clock_mono_ms();
    for (int i = 0; i < a->nshards; i++) {
        if (a->shards[i].in_dirty) {
            fv_spsc_commit(&a->shards[i].in);
            a->shards[i].in_dirty = false;
        }
    }
}

static void note_lost(struct peer_state *ps, struct fv_ipfix_peer *peer)
{
    uint64_t lost = 0, no_tmpl = 0;

    for (uint32_t i = 0; i < peer->session.domain_count; i++) {
        lost += peer->session.domains[i].stats.lost;
        no_tmpl += peer->session.domains[i].stats.missing_template;
    }
    if (lost > ps->lost_seen) {
        fv_metric_add(&m_seq_lost, lost - ps->lost_seen);
        ps->lost_seen = lost;
    }
    if (no_tmpl > ps->no_tmpl_seen) {
        fv_metric_add(&m_no_template, no_tmpl - ps->no_tmpl_seen);
        ps->no_tmpl_seen = no_tmpl;
    }
}

static void on_message(void *ctx, struct fv_ipfix_peer *peer, const uint8_t *buf, size_t len)
{
    struct agg *a = ctx;
    struct peer_state *ps = peer->user;
    struct decode_ctx d = {a, peer};
    struct fv_ipfix_handler h = {on_record, NULL, &d};
    uint64_t now = fv_clock_mono_ms(), suppressed;
    int rc;

    if (ps == NULL)
        return;
    rc = fv_ipfix_session_decode(&peer->session, buf, len, now, &h);
    if (a->uncommitted >= COMMIT_RECORDS || now - a->last_commit_ms >= COMMIT_MS)
        commit_all(a);
    if (rc < 0) {
        fv_metric_add(&m_malformed, 1);
        if (fv_ratelimit_allow(&ps->rl, now, &suppressed))
            FV_LOG_WARN("malformed message exporter=%s domain=%u length=%zu: %s "
                        "(%llu more suppressed)",
                        peer->name, peer->session.last_error_domain, len, fv_strerror(rc),
                        (unsigned long long)suppressed);
    }
    note_lost(ps, peer);
}

static void on_peer_open(void *ctx, struct fv_ipfix_peer *peer)
{
    struct peer_state *ps = calloc(1, sizeof(*ps));
    (void)ctx;

    if (ps) {
        ps->rl.interval_ms = 60000;
        ps->last_exporter = -1;
    }
    peer->user = ps;
    fv_metric_add(&m_exporters, 1);
    FV_LOG_INFO("exporter connected exporter=%s transport=%s", peer->name,
                fv_proto_name(peer->proto));
}

static void on_peer_close(void *ctx, struct fv_ipfix_peer *peer, int reason)
{
    (void)ctx;
    if (peer->user)
        note_lost(peer->user, peer);
    atomic_fetch_sub_explicit(&m_exporters.value, 1, memory_order_relaxed);
    if (reason < 0)
        FV_LOG_WARN("exporter session ended exporter=%s: %s", peer->name, fv_strerror(reason));
    else if (peer->proto != FV_PROTO_UDP)
        FV_LOG_INFO("exporter disconnected exporter=%s", peer->name);
    free(peer->user);
    peer->user = NULL;
}

/* ---- Shards ---- */

static int emit_to_queue(void *ctx, const struct fv_agg_rec *rec)
{
    struct shard *sh = ctx;
    size_t n = fv_agg_rec_packed_size(rec);
    void *slot = fv_spsc_reserve(&sh->out, n);

    if (slot == NULL)
        return -FV_ENOSPACE; /* the table keeps the flow and retries */
    fv_agg_rec_pack(rec, slot);
    return 0;
}

static int query_one(void *ctx, const struct fv_agg_rec *rec)
{
    struct query *q = ctx;

    if (q->written++)
        fv_sbuf_putc(q->out, ',');
    fv_agg_rec_json_fields(q->t, rec, q->out);
    return 0;
}

static void serve_query(struct shard *sh)
{
    struct query *q = atomic_load_explicit(&sh->query, memory_order_acquire);

    if (q == NULL)
        return;
    q->matched = fv_ftab_query(sh->tab, &q->filter, q->limit, query_one, q);
    pthread_mutex_lock(&sh->qlock);
    q->done = true;
    atomic_store_explicit(&sh->query, NULL, memory_order_release);
    pthread_cond_broadcast(&sh->qcond);
    pthread_mutex_unlock(&sh->qlock);
}

static void publish_stats(struct shard *sh)
{
    pthread_mutex_lock(&sh->slock);
    fv_ftab_stats(sh->tab, &sh->stats);
    pthread_mutex_unlock(&sh->slock);
}

static void *shard_run(void *arg)
{
    struct shard *sh = arg;
    struct agg *a = sh->agg;
    uint64_t next_tick = fv_clock_mono_ms() + TICK_MS;

    for (;;) {
        struct fv_agg_in *in;
        size_t len;
        int n = 0;
        uint64_t now = fv_clock_mono_ms();

        while (n < BATCH && (in = fv_spsc_peek(&sh->in, &len)) != NULL) {
            in->blob = (const char *)(in + 1);
            fv_ftab_apply(sh->tab, in, now, emit_to_queue, sh);
            fv_spsc_pop(&sh->in);
            n++;
        }
        now = fv_clock_mono_ms();
        if (now >= next_tick) {
            fv_ftab_expire(sh->tab, now, emit_to_queue, sh);
            publish_stats(sh);
            next_tick = now + TICK_MS;
        }
        fv_spsc_commit(&sh->out);
        serve_query(sh);
        if (n == 0) {
            if (atomic_load(&a->shards_stop) && fv_spsc_peek(&sh->in, &len) == NULL)
                break;
            fv_spsc_wait(&sh->in, TICK_MS / 2);
        }
    }
    /* Export what the table holds; wait for room while the output drains. */
    for (int tries = 0; tries < 600; tries++) {
        uint64_t refused = fv_ftab_flush(sh->tab, emit_to_queue, sh);
        fv_spsc_commit(&sh->out);
        if (refused == 0)
            break;
        fv_spsc_wait_space(&sh->out, 50);
    }
    publish_stats(sh);
    serve_query(sh);
    return NULL;
}

/* ---- Output thread ---- */

static void fill_side(const struct fv_k8s_inventory *inv, const uint8_t *addr, bool v6,
                      const char **pod, const char **ns, const char **node)
{
    struct fv_ip ip = {0};
    const struct fv_k8s_pod *p;

    if ((*pod)[0] != '\0')
        return;
    ip.family = v6 ? AF_INET6 : AF_INET;
    memcpy(ip.a, addr, v6 ? 16 : 4);
    p = fv_k8s_pod_by_ip(inv, &ip);
    if (p == NULL)
        return;
    *pod = p->name;
    *ns = p->ns;
    if ((*node)[0] == '\0')
        *node = p->node_name;
}

static const char *labels_of(const struct fv_k8s_inventory *inv, const char *ns, const char *name,
                             struct fv_sbuf *b)
{
    const struct fv_k8s_pod *p;

    if (name[0] == '\0' || inv == NULL)
        return "";
    p = fv_k8s_pod_by_name(inv, ns, name);
    if (p == NULL)
        return "";
    fv_sbuf_reset(b);
    if (fv_k8s_pod_labels_json(p, b) < 0 || b->p == NULL)
        return "";
    return b->p;
}

/*
 * Completes NetworkPolicy attribution that the agents could not make: an
 * agent that watches only its own Node's Pods does not know a remote peer's
 * labels.  For a record the datapath let through, an empty side whose Pod
 * is known gets the policy that the cluster-wide inventory says admits it.
 */
static void fill_policy(const struct fv_k8s_inventory *inv, struct fv_agent_rec *r)
{
    struct fv_np_flow f = {{0}, {0}, r->dst_port, r->proto};
    struct fv_np_result in, eg;
    bool need_in = r->in_policy[0] == '\0' && r->dst_pod[0] != '\0';
    bool need_eg = r->eg_policy[0] == '\0' && r->src_pod[0] != '\0';

    if ((!need_in && !need_eg) || r->in_action >= FV_ACTION_DROP || r->eg_action >= FV_ACTION_DROP)
        return;
    f.src.family = f.dst.family = r->ipv6 ? AF_INET6 : AF_INET;
    memcpy(f.src.a, r->src_addr, r->ipv6 ? 16 : 4);
    memcpy(f.dst.a, r->dst_addr, r->ipv6 ? 16 : 4);
    fv_k8s_policy_evaluate(inv, &f, &in, &eg);
    if (need_in && in.verdict == FV_NP_ALLOWED) {
        r->in_policy = in.policy->name;
        r->in_policy_ns = in.policy->ns;
        r->in_rule = in.rule_name;
        r->in_policy_type = FV_POLICY_TYPE_K8S;
        r->in_action = FV_ACTION_ALLOW;
    }
    if (need_eg && eg.verdict == FV_NP_ALLOWED) {
        r->eg_policy = eg.policy->name;
        r->eg_policy_ns = eg.policy->ns;
        r->eg_rule = eg.rule_name;
        r->eg_policy_type = FV_POLICY_TYPE_K8S;
        r->eg_action = FV_ACTION_ALLOW;
    }
}

/* The output thread is the only reader of a->inv: the old one goes at once. */
static void reload_inventory(struct agg *a)
{
    struct fv_k8s_inventory *fresh;

    if (a->have_inv_src)
        fv_k8s_file_source_update(&a->inv_src, &a->inv);
    if (a->watch && fv_k8s_watch_take(a->watch, &fresh) == 1) {
        fv_k8s_inventory_free(a->inv);
        a->inv = fresh;
    }
}

/* Hands rec to the outputs not yet in *taken; true when all took it. */
static bool deliver(struct agg *a, const struct fv_agg_rec *rec, unsigned *taken,
                    struct fv_sbuf *line)
{
    if (a->ipfix_out && !(*taken & 1)) {
        struct fv_agg_encode_arg ea = {&a->tmpl, rec};
        int rc = fv_sender_push(a->ipfix_out, rec->a.ipv6 ? FV_TMPL_AGG_V6 : FV_TMPL_AGG_V4,
                                fv_agg_rec_encode, &ea);
        if (rc == 0 || rc == -FV_ELIMIT)
            *taken |= 1;
    }
    if (a->json_out && !(*taken & 2)) {
        fv_sbuf_reset(line);
        if (fv_agg_rec_json(&a->tmpl, rec, fv_clock_wall_s(), line) < 0) {
            *taken |= 2;
        } else {
            int rc = fv_sender_push_raw(a->json_out, 1, line->p, line->len);
            if (rc == 0 || rc == -FV_ELIMIT)
                *taken |= 2;
        }
    }
    if (a->nstores > 0 && (*taken >> 2) != (1u << a->nstores) - 1) {
        struct fv_flow_row row;
        fv_flow_row_from_rec(&row, rec, (uint32_t)fv_clock_wall_s());
        fv_sbuf_reset(line);
        if (fv_flow_row_encode(&row, line) < 0) {
            *taken |= ((1u << a->nstores) - 1) << 2; /* cannot happen: rows are bounded */
        }
        for (int i = 0; i < a->nstores; i++) {
            unsigned bit = 1u << (2 + i);
            if (*taken & bit)
                continue;
            int rc = a->stores[i].ops->push(a->stores[i].impl, line->p, line->len);
            if (rc == -EAGAIN)
                continue;
            /* Anything but "full, try later" will not change on a retry:
             * count it rather than hold every later record behind it. */
            if (rc < 0) {
                fv_metric_add(&m_dropped, 1);
                FV_LOG_ERROR("store %s refused a row: %s", a->stores[i].ops->name, fv_strerror(rc));
            }
            *taken |= bit;
        }
    }
    return (!a->ipfix_out || (*taken & 1)) && (!a->json_out || (*taken & 2)) &&
           (*taken >> 2) == (1u << a->nstores) - 1;
}

static void *output_run(void *arg)
{
    struct agg *a = arg;
    struct fv_sbuf line, lsrc, ldst;
    unsigned taken[MAX_SHARDS] = {0};
    uint64_t next_reload = 0;

    fv_sbuf_init(&line, 1 << 20);
    fv_sbuf_init(&lsrc, 1 << 16);
    fv_sbuf_init(&ldst, 1 << 16);
    for (;;) {
        bool any = false, blocked = false;
        uint64_t now = fv_clock_mono_ms();

        if (now >= next_reload) {
            reload_inventory(a);
            next_reload = now + 2000;
        }
        for (int i = 0; i < a->nshards; i++) {
            struct shard *sh = &a->shards[i];
            void *e;
            size_t len;
            int n = 0;
            while (n < BATCH && (e = fv_spsc_peek(&sh->out, &len)) != NULL) {
                struct fv_agg_rec rec;
                fv_agg_rec_unpack(e, &rec);
                if (a->inv) {
                    fill_side(a->inv, rec.a.src_addr, rec.a.ipv6, &rec.a.src_pod, &rec.a.src_ns,
                              &rec.a.src_node);
                    fill_side(a->inv, rec.a.dst_addr, rec.a.ipv6, &rec.a.dst_pod, &rec.a.dst_ns,
                              &rec.a.dst_node);
                    fill_policy(a->inv, &rec.a);
                }
                if (a->cfg->pod_labels) {
                    rec.src_labels = labels_of(a->inv, rec.a.src_ns, rec.a.src_pod, &lsrc);
                    rec.dst_labels = labels_of(a->inv, rec.a.dst_ns, rec.a.dst_pod, &ldst);
                }
                if (!deliver(a, &rec, &taken[i], &line)) {
                    blocked = true;
                    break;
                }
                taken[i] = 0;
                fv_metric_add(&m_exported, 1);
                fv_spsc_pop(&sh->out);
                n++;
                any = true;
            }
        }
        if (!any) {
            bool empty = true;
            for (int i = 0; i < a->nshards; i++) {
                size_t len;
                if (fv_spsc_peek(&a->shards[i].out, &len))
                    empty = false;
            }
            if (empty && atomic_load(&a->out_stop))
                break;
            if (blocked || empty)
                usleep(blocked ? 10000 : 5000);
        }
    }
    fv_sbuf_fini(&line);
    fv_sbuf_fini(&lsrc);
    fv_sbuf_fini(&ldst);
    return NULL;
}

/* ---- HTTP API ---- */

static int parse_ip_filter(const char *s, bool *has, uint8_t *out, bool *v6)
{
    if (s == NULL || *s == '\0')
        return 0;
    memset(out, 0, 16);
    if (inet_pton(AF_INET, s, out) == 1) {
        *v6 = false;
    } else if (inet_pton(AF_INET6, s, out) == 1) {
        *v6 = true;
    } else {
        return -1;
    }
    *has = true;
    return 0;
}

static int parse_num(const char *s, long max, int *out)
{
    char *end;
    long v;

    if (s == NULL || *s == '\0')
        return 0;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || *end || v < 0 || v > max)
        return -1;
    *out = (int)v;
    return 0;
}

static int parse_proto(const char *s, int *out)
{
    static const struct {
        const char *name;
        int num;
    } names[] = {{"tcp", 6}, {"udp", 17}, {"sctp", 132}, {"icmp", 1}, {"icmpv6", 58}};

    if (s == NULL || *s == '\0')
        return 0;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcasecmp(s, names[i].name) == 0) {
            *out = names[i].num;
            return 0;
        }
    return parse_num(s, 255, out);
}

static int h_flowrecords(void *ctx, struct fv_http_req *req, struct fv_sbuf *out)
{
    struct agg *a = ctx;
    struct query q = {.filter = {.proto = -1, .sport = -1, .dport = -1},
                      .limit = QUERY_LIMIT_DEFAULT,
                      .out = out,
                      .t = &a->tmpl};
    struct fv_ftab_filter *f = &q.filter;
    const char *lim = fv_http_query(req, "limit");
    uint64_t matched = 0;
    int limit = QUERY_LIMIT_DEFAULT;

    if (parse_ip_filter(fv_http_query(req, "srcip"), &f->has_src, f->src, &f->src_v6) < 0)
        return fv_http_error(out, 400, "srcip: not an IPv4 or IPv6 address");
    if (parse_ip_filter(fv_http_query(req, "dstip"), &f->has_dst, f->dst, &f->dst_v6) < 0)
        return fv_http_error(out, 400, "dstip: not an IPv4 or IPv6 address");
    if (parse_proto(fv_http_query(req, "proto"), &f->proto) < 0)
        return fv_http_error(out, 400, "proto: not a protocol name or number 0-255");
    if (parse_num(fv_http_query(req, "srcport"), 65535, &f->sport) < 0)
        return fv_http_error(out, 400, "srcport: not a port 0-65535");
    if (parse_num(fv_http_query(req, "dstport"), 65535, &f->dport) < 0)
        return fv_http_error(out, 400, "dstport: not a port 0-65535");
    if (lim && parse_num(lim, QUERY_LIMIT_MAX, &limit) < 0)
        return fv_http_error(out, 400, "limit: not a number 0-1000000");
    /* Each shard has one query slot: requests take turns. */
    pthread_mutex_lock(&a->flowrecords_lock);
    fv_sbuf_puts(out, "{\"flowrecords\":[");
    for (int i = 0; i < a->nshards; i++) {
        struct shard *sh = &a->shards[i];
        q.limit = (uint64_t)limit > q.written ? (uint64_t)limit - q.written : 0;
        q.done = false;
        q.matched = 0;
        pthread_mutex_lock(&sh->qlock);
        atomic_store_explicit(&sh->query, &q, memory_order_release);
        while (!q.done)
            pthread_cond_wait(&sh->qcond, &sh->qlock);
        pthread_mutex_unlock(&sh->qlock);
        matched += q.matched;
    }
    pthread_mutex_unlock(&a->flowrecords_lock);
    fv_sbuf_printf(out, "],\"count\":%llu,\"truncated\":%s}\n", (unsigned long long)q.written,
                   matched > q.written ? "true" : "false");
    return 200;
}

static void totals(struct agg *a, struct fv_ftab_stats *t)
{
    memset(t, 0, sizeof(*t));
    for (int i = 0; i < a->nshards; i++) {
        struct shard *sh = &a->shards[i];
        pthread_mutex_lock(&sh->slock);
        t->flows += sh->stats.flows;
        t->stale += sh->stats.stale;
        t->correlated += sh->stats.correlated;
        t->uncorrelated += sh->stats.uncorrelated;
        t->evicted += sh->stats.evicted;
        t->dropped += sh->stats.dropped;
        t->memory += sh->stats.memory;
        pthread_mutex_unlock(&sh->slock);
    }
}

/* Main thread only (its timer): folds the shards' and outputs' counters
 * into the metrics. */
static void update_metrics(struct agg *a)
{
    struct fv_ftab_stats t;
    struct fv_sender_stats ss;
    uint64_t sent = 0, conn = 0, rec = 0, shq = 0;
    static uint64_t last_dropped, last_reconnects;

    totals(a, &t);
    fv_metric_set(&m_flows, t.flows);
    fv_metric_set(&m_memory, t.memory);
    fv_metric_set(&m_stale, t.stale);
    fv_metric_set(&m_correlated, t.correlated);
    fv_metric_set(&m_uncorrelated, t.uncorrelated);
    fv_metric_set(&m_evicted, t.evicted);
    if (t.dropped > last_dropped) {
        fv_metric_add(&m_dropped, t.dropped - last_dropped);
        last_dropped = t.dropped;
    }
    if (a->ipfix_out) {
        fv_sender_stats(a->ipfix_out, &ss);
        fv_metric_set(&m_q_ipfix, ss.queued);
        sent += ss.sent;
        conn += ss.connected;
        rec += ss.reconnects;
    }
    if (a->json_out) {
        fv_sender_stats(a->json_out, &ss);
        fv_metric_set(&m_q_json, ss.queued);
        sent += ss.sent;
        conn += ss.connected;
        rec += ss.reconnects;
    }
    for (int i = 0; i < a->nstores; i++) {
        struct fv_store_stats st;
        struct store_metrics *m = a->store_m[i];
        a->stores[i].ops->stats(a->stores[i].impl, &st);
        fv_metric_set(&m->received, st.rows_received);
        fv_metric_set(&m->written, st.rows_written);
        fv_metric_set(&m->queued, st.rows_queued);
        fv_metric_set(&m->refused, st.rows_refused);
        fv_metric_set(&m->deleted, st.rows_deleted);
        fv_metric_set(&m->queue_bytes, st.queue_bytes);
        fv_metric_set(&m->spool_bytes, st.spool_bytes);
        fv_metric_set(&m->spilled, st.rows_spilled);
        fv_metric_set(&m->batches, st.batches_written);
        fv_metric_set(&m->failed, st.batches_failed);
        fv_metric_set(&m->ambiguous, st.batches_ambiguous);
        fv_metric_set(&m->partitions, st.partitions_dropped);
        fv_metric_set(&m->up, st.up);
    }
    for (int i = 0; i < a->nshards; i++)
        shq += fv_spsc_used(&a->shards[i].out);
    fv_metric_set(&m_q_shards, shq);
    fv_metric_set(&m_out_sent, sent);
    fv_metric_set(&m_out_connected, conn);
    if (rec > last_reconnects) {
        fv_metric_add(&m_reconnects, rec - last_reconnects);
        last_reconnects = rec;
    }
    for (int i = 0; i < a->nlisteners; i++) {
        struct fv_ipfix_listener_stats ls;
        fv_ipfix_listener_stats(a->listeners[i], &ls);
        if (ls.udp_kernel_drops > fv_metric_get(&m_udp_drops))
            fv_metric_set(&m_udp_drops, ls.udp_kernel_drops);
    }
}

static int h_recordmetrics(void *ctx, struct fv_http_req *req, struct fv_sbuf *out)
{
    struct agg *a = ctx;
    struct fv_ftab_stats t;
    (void)req;

    totals(a, &t);
    fv_sbuf_printf(out,
                   "{\"numRecordsExported\":%llu,\"numRecordsReceived\":%llu,"
                   "\"numRecordsDropped\":%llu,\"numFlows\":%llu,\"numConnToCollector\":%llu,"
                   "\"numRecordsStale\":%llu,\"numFlowsCorrelated\":%llu,"
                   "\"numFlowsUncorrelated\":%llu,\"numFlowsEvicted\":%llu}\n",
                   (unsigned long long)fv_metric_get(&m_exported),
                   (unsigned long long)fv_metric_get(&m_received),
                   (unsigned long long)fv_metric_get(&m_dropped), (unsigned long long)t.flows,
                   (unsigned long long)fv_metric_get(&m_exporters), (unsigned long long)t.stale,
                   (unsigned long long)t.correlated, (unsigned long long)t.uncorrelated,
                   (unsigned long long)t.evicted);
    return 200;
}

static int h_readyz(void *ctx, struct fv_http_req *req, struct fv_sbuf *out)
{
    struct agg *a = ctx;

    req->ctype = "text/plain";
    if (!atomic_load(&a->ready)) {
        fv_sbuf_puts(out, "not ready\n");
        return 503;
    }
    fv_sbuf_puts(out, "ok\n");
    return 200;
}

/* GET /api/v1/ui: what the web UI needs to know of this aggregator. */
static int h_ui_config(void *ctx, struct fv_http_req *req, struct fv_sbuf *out)
{
    struct agg *a = ctx;
    const struct fv_cfg_strlist *ex = &a->cfg->ui_exclude_ns;
    (void)req;

    fv_sbuf_puts(out, "{\"excludeNamespaces\":[");
    for (size_t i = 0; i < ex->n; i++) {
        if (i)
            fv_sbuf_putc(out, ',');
        fv_sbuf_put_json_str(out, ex->items[i], strlen(ex->items[i]));
    }
    fv_sbuf_puts(out, "],\"store\":");
    if (a->qctx.store)
        fv_sbuf_printf(out, "\"%s\"", a->qctx.store->ops->name);
    else
        fv_sbuf_puts(out, "null");
    fv_sbuf_puts(out, "}\n");
    return 200;
}

/* ---- Setup ---- */

static char *read_token(const char *path)
{
    FILE *f = fopen(path, "r");
    char buf[4096];
    size_t n;

    if (f == NULL)
        return NULL;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
        buf[--n] = '\0';
    return n ? strdup(buf) : NULL;
}

static bool is_loopback_name(const char *host)
{
    return strncmp(host, "127.", 4) == 0 || strcmp(host, "::1") == 0 ||
           strcmp(host, "localhost") == 0;
}

int fv_agg_cfg_check(const struct fv_agg_cfg *c, char *why, size_t n)
{
    char list[64], *save = NULL;
    bool tcp = false, tls = false;
    struct fv_addr addr;

    snprintf(list, sizeof(list), "%s", c->transports);
    for (char *t = strtok_r(list, ", ", &save); t; t = strtok_r(NULL, ", ", &save)) {
        tcp |= strcmp(t, "tcp") == 0;
        tls |= strcmp(t, "tls") == 0;
    }
    if (tcp && tls) {
        snprintf(why, n,
                 "aggregatorTransportProtocol: tcp and tls cannot share one port; use "
                 "udp,tcp or udp,tls");
        return -1;
    }
    if (c->inventory_kube && c->inventory_file) {
        snprintf(why, n, "inventory.file and inventory.kubernetes exclude each other");
        return -1;
    }
    if (c->kubeconfig && c->kubeconfig[0] && !c->inventory_kube) {
        snprintf(why, n, "inventory.kubeconfig needs inventory.kubernetes: true");
        return -1;
    }
    if (c->api_port && !is_loopback_name(c->api_bind) &&
        (c->api_token_file == NULL || c->api_tls_cert == NULL)) {
        snprintf(why, n,
                 "apiServer.bindAddress %s is not loopback: set apiServer.tokenFile, "
                 "apiServer.tlsCert and apiServer.tlsKey to expose the API",
                 c->api_bind);
        return -1;
    }
    if (c->fc_enable && c->fc_format == FV_AGG_FORMAT_JSON &&
        fv_addr_parse(c->fc_address, 4739, FV_PROTO_TCP, &addr) == 0 &&
        addr.proto == FV_PROTO_TLS) {
        snprintf(why, n, "flowCollector.address: JSON goes over tcp or udp, not tls");
        return -1;
    }
    if ((c->tls_cert == NULL) != (c->tls_key == NULL) ||
        (c->fc_cert == NULL) != (c->fc_key == NULL) ||
        (c->api_tls_cert == NULL) != (c->api_tls_key == NULL)) {
        snprintf(why, n,
                 "a certificate and its key go together (tls.serverCert/tls.serverKey, "
                 "apiServer.tlsCert/apiServer.tlsKey, flowCollector.tls.clientCert/clientKey)");
        return -1;
    }
    if (c->sq_enable && (c->sq_path == NULL || c->sq_path[0] == '\0')) {
        snprintf(why, n, "sqlite.path: name the database file, or set sqlite.enable: false");
        return -1;
    }
    if (c->ch_enable && c->ch_cluster[0] == '\0' && c->ch_shard_urls[0] != '\0') {
        snprintf(why, n, "clickHouse.shardURLs needs clickHouse.cluster");
        return -1;
    }
    return 0;
}

static int start_api(struct agg *a)
{
    const struct fv_agg_cfg *c = a->cfg;
    char addr[300];
    struct fv_http_server_cfg hc = {.address = addr};
    int rc;

    if (c->api_port == 0)
        return 0;
    if (strchr(c->api_bind, ':'))
        snprintf(addr, sizeof(addr), "[%s]:%u", c->api_bind, c->api_port);
    else
        snprintf(addr, sizeof(addr), "%s:%u", c->api_bind, c->api_port);
    if (c->api_token_file) {
        a->token = read_token(c->api_token_file);
        if (a->token == NULL) {
            FV_LOG_ERROR("apiServer.tokenFile: cannot read a token from %s", c->api_token_file);
            return -FV_ECONFIG;
        }
    }
    a->routes[0] = (struct fv_http_route){"/flowrecords", h_flowrecords, a, false, false};
    a->routes[1] = (struct fv_http_route){"/recordmetrics", h_recordmetrics, a, false, false};
    /* Gauges are refreshed by the main thread's timer (every 20 ms). */
    a->routes[2] =
        (struct fv_http_route){"/metrics", fv_metrics_http_handler, &a->reg, false, false};
    a->routes[3] = (struct fv_http_route){"/healthz", fv_http_ok_handler, NULL, true, false};
    a->routes[4] = (struct fv_http_route){"/readyz", h_readyz, a, true, false};
    /* The query API reads the preferred store (ClickHouse when enabled);
     * without a store it answers 503. */
    a->qctx.store = a->nstores > 0 ? &a->stores[0] : NULL;
    a->routes[5] =
        (struct fv_http_route){"/api/v1/flows", fv_query_http_flows, &a->qctx, false, false};
    a->routes[6] =
        (struct fv_http_route){"/api/v1/series", fv_query_http_series, &a->qctx, false, false};
    a->routes[7] = (struct fv_http_route){"/api/v1/top", fv_query_http_top, &a->qctx, false, false};
    hc.nroutes = 8;
    if (c->ui_enable) {
        /* The UI's files are open: they hold nothing secret, and the page
         * asks for the token that the API calls then carry. */
        a->ui = (struct fv_http_assets){c->ui_files, c->ui_nfiles, c->ui_dir};
        a->routes[8] = (struct fv_http_route){"/api/v1/ui", h_ui_config, a, false, false};
        a->routes[9] = (struct fv_http_route){"/", fv_http_assets_handler, &a->ui, true, false};
        a->routes[10] =
            (struct fv_http_route){"/index.html", fv_http_assets_handler, &a->ui, true, false};
        a->routes[11] =
            (struct fv_http_route){"/assets/", fv_http_assets_handler, &a->ui, true, true};
        hc.nroutes = 12;
    }
    hc.routes = a->routes;
    hc.threads = HTTP_THREADS;
    hc.token = a->token;
    hc.tls_cert = c->api_tls_cert;
    hc.tls_key = c->api_tls_key;
    rc = fv_http_server_start(&hc, &a->http);
    if (rc < 0)
        FV_LOG_ERROR("apiServer: %s", fv_http_server_error());
    return rc;
}

static int start_outputs(struct agg *a)
{
    const struct fv_agg_cfg *c = a->cfg;
    static const struct fv_ipfix_template_def *tmpls[2];
    struct fv_sender_cfg sc = {.max_records = c->queue_records};
    struct fv_addr addr;
    int rc;

    if (!c->fc_enable)
        return 0;
    rc = fv_addr_parse(c->fc_address, 4739, FV_PROTO_TCP, &addr);
    if (rc < 0) {
        FV_LOG_ERROR("flowCollector.address: '%s' is not HOST[:PORT][:PROTO]", c->fc_address);
        return -FV_ECONFIG;
    }
    if (c->fc_format == FV_AGG_FORMAT_JSON) {
        void *tp;
        rc = fv_jsonout_new(&addr, &tp);
        if (rc < 0)
            return rc;
        sc.ops = &fv_jsonout_ops;
        sc.transport = tp;
        sc.avg_record_bytes = 2048;
        return fv_sender_start(&sc, &a->json_out);
    }
    tmpls[0] = &a->tmpl.def[0];
    tmpls[1] = &a->tmpl.def[1];
    sc.exporter.addr = addr;
    sc.exporter.domain = c->fc_domain;
    sc.exporter.mtu = c->fc_mtu;
    sc.exporter.tls.ca = c->fc_ca;
    sc.exporter.tls.cert = c->fc_cert;
    sc.exporter.tls.key = c->fc_key;
    sc.tmpls = tmpls;
    sc.ntmpl = 2;
    sc.avg_record_bytes = 512;
    return fv_sender_start(&sc, &a->ipfix_out);
}

static void register_store_metrics(struct agg *a, struct store_metrics *m)
{
    struct fv_metric *all[] = {&m->received, &m->written,     &m->queued,      &m->refused,
                               &m->deleted,  &m->queue_bytes, &m->spool_bytes, &m->spilled,
                               &m->batches,  &m->failed,      &m->ambiguous,   &m->partitions,
                               &m->up};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        fv_metrics_register(&a->reg, all[i]);
}

/* Starts the enabled stores; neither needs its database server up. */
static int start_stores(struct agg *a)
{
    const struct fv_agg_cfg *c = a->cfg;
    const uint64_t mib = 1u << 20;
    int rc;

    if (c->ch_enable) {
        struct fv_ch_cfg cc = {
            .url = c->ch_url,
            .database = c->ch_database,
            .user = getenv("CH_USERNAME"),
            .password = getenv("CH_PASSWORD"),
            .ca_file = c->ch_ca,
            .insecure = c->ch_insecure,
            .compress = c->ch_compress,
            .debug = c->ch_debug,
            .commit_ms = c->ch_commit_ms,
            .batch_rows = c->ch_batch_rows,
            .queue_bytes = c->ch_queue_mb * mib,
            .spool_dir = c->ch_spool_dir,
            .spool_bytes = c->ch_spool_mb * mib,
            .retention_s = c->ch_retention_ms / 1000,
            .max_bytes = c->ch_max_mb * mib,
            .cluster = c->ch_cluster[0] ? c->ch_cluster : NULL,
            .shard_urls = c->ch_shard_urls[0] ? c->ch_shard_urls : NULL,
        };
        rc = fv_ch_store_new(&cc, &a->stores[a->nstores]);
        if (rc < 0)
            return rc;
        a->store_m[a->nstores++] = &m_ch;
        register_store_metrics(a, &m_ch);
    }
    if (c->sq_enable) {
        struct fv_sqlite_cfg sc = {
            .path = c->sq_path,
            .commit_ms = c->sq_commit_ms,
            .batch_rows = c->sq_batch_rows,
            .queue_bytes = c->sq_queue_mb * mib,
            .retention_s = c->sq_retention_ms / 1000,
            .max_bytes = c->sq_max_mb * mib,
        };
        rc = fv_sqlite_store_new(&sc, &a->stores[a->nstores]);
        if (rc < 0)
            return rc;
        a->store_m[a->nstores++] = &m_sq;
        register_store_metrics(a, &m_sq);
    }
    return 0;
}

static int start_listeners(struct agg *a)
{
    const struct fv_agg_cfg *c = a->cfg;
    struct fv_ipfix_listener_ops ops = {on_peer_open, on_message, on_peer_close};
    struct fv_ipfix_listener_cfg lc = {0};
    char list[64], *save = NULL, *tok;
    char ca[4096], cert[4096], key[4096];
    bool want[3] = {false};

    snprintf(list, sizeof(list), "%s", c->transports);
    for (tok = strtok_r(list, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
        enum fv_proto p;
        if (fv_proto_parse(tok, &p) < 0) {
            FV_LOG_ERROR("aggregatorTransportProtocol: '%s' is not tls, tcp or udp", tok);
            return -FV_ECONFIG;
        }
        want[p] = true;
    }
    if (fv_addr_parse(c->listen_address, 4739, FV_PROTO_TCP, &lc.addr) < 0) {
        FV_LOG_ERROR("listenAddress: '%s' is not HOST[:PORT]", c->listen_address);
        return -FV_ECONFIG;
    }
    if (want[FV_PROTO_TLS]) {
        if (c->tls_cert || c->tls_key) {
            lc.tls.ca = c->tls_ca;
            lc.tls.cert = c->tls_cert;
            lc.tls.key = c->tls_key;
        } else if (c->tls_generate) {
            struct fv_certs_req req = {c->tls_dir, c->aggregator_address, 0};
            char err[512];
            if (fv_certs_ensure(&req, err, sizeof(err)) < 0) {
                FV_LOG_ERROR("tls.dir: %s", err);
                return -FV_ETLS;
            }
            snprintf(ca, sizeof(ca), "%s/%s", c->tls_dir, FV_CERTS_CA_CERT);
            snprintf(cert, sizeof(cert), "%s/%s", c->tls_dir, FV_CERTS_SERVER_CERT);
            snprintf(key, sizeof(key), "%s/%s", c->tls_dir, FV_CERTS_SERVER_KEY);
            lc.tls.ca = ca;
            lc.tls.cert = cert;
            lc.tls.key = key;
            FV_LOG_INFO("TLS material in %s (agents use ca.crt, client.crt, client.key)",
                        c->tls_dir);
        } else {
            FV_LOG_ERROR("tls: set tls.serverCert and tls.serverKey, or tls.generate: true");
            return -FV_ECONFIG;
        }
    }
    for (int p = 0; p < 3; p++) {
        if (!want[p])
            continue;
        lc.addr.proto = (enum fv_proto)p;
        int rc = fv_ipfix_listener_new(a->base, &lc, &ops, a, &a->listeners[a->nlisteners]);
        if (rc < 0) {
            FV_LOG_ERROR("cannot listen on %s:%u/%s: %s %s", lc.addr.host, lc.addr.port,
                         fv_proto_name(lc.addr.proto), fv_strerror(rc), fv_ipfix_transport_error());
            return rc;
        }
        FV_LOG_INFO("collecting on %s:%u transport=%s", lc.addr.host,
                    fv_ipfix_listener_port(a->listeners[a->nlisteners]),
                    fv_proto_name(lc.addr.proto));
        a->nlisteners++;
    }
    return 0;
}

static void on_signal(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    event_base_loopbreak(arg);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct agg *a = arg;
    (void)fd;
    (void)what;
    if (*a->stop)
        event_base_loopbreak(a->base);
    commit_all(a); /* the tail of a burst does not wait for the next message */
    update_metrics(a);
}

static int start_shards(struct agg *a)
{
    struct fv_ftab_cfg fc = {.active_ms = (uint32_t)a->cfg->active_ms,
                             .inactive_ms = (uint32_t)a->cfg->inactive_ms,
                             .corr_wait_ms = (uint32_t)a->cfg->corr_wait_ms,
                             .exporter = exporter_lookup,
                             .exporter_ctx = a->exps};
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    int rc;

    a->nshards = a->cfg->workers ? (int)a->cfg->workers : (int)(cpus > 0 ? cpus : 1);
    if (a->nshards > MAX_SHARDS)
        a->nshards = MAX_SHARDS;
    /* maxFlows is for the whole aggregator: each shard holds its share. */
    if (a->cfg->max_flows)
        fc.max_flows = (a->cfg->max_flows + (uint32_t)a->nshards - 1) / (uint32_t)a->nshards;
    for (int i = 0; i < a->nshards; i++) {
        struct shard *sh = &a->shards[i];
        sh->agg = a;
        pthread_mutex_init(&sh->qlock, NULL);
        pthread_cond_init(&sh->qcond, NULL);
        pthread_mutex_init(&sh->slock, NULL);
        rc = fv_spsc_init(&sh->in, IN_QUEUE_BYTES);
        if (rc == 0)
            rc = fv_spsc_init(&sh->out, OUT_QUEUE_BYTES);
        if (rc == 0)
            rc = fv_ftab_new(&fc, &sh->tab);
        if (rc == 0)
            rc = -pthread_create(&sh->thread, NULL, shard_run, sh);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int fv_agg_run(const struct fv_agg_cfg *cfg, volatile sig_atomic_t *stop)
{
    struct agg *a = calloc(1, sizeof(*a));
    struct fv_metric *all[] = {&m_received,     &m_exported,   &m_dropped,       &m_stale,
                               &m_uncorrelated, &m_correlated, &m_evicted,       &m_flows,
                               &m_memory,       &m_exporters,  &m_seq_lost,      &m_no_template,
                               &m_malformed,    &m_udp_drops,  &m_ingest_stalls, &m_q_ipfix,
                               &m_q_json,       &m_q_shards,   &m_out_sent,      &m_out_connected,
                               &m_reconnects};
    struct event *sigint = NULL, *sigterm = NULL, *timer = NULL;
    struct timeval tv = {0, 20000};
    int rc, nstarted;

    char why[256];

    if (fv_agg_cfg_check(cfg, why, sizeof(why)) < 0) {
        FV_LOG_ERROR("%s", why);
        free(a);
        return -FV_ECONFIG;
    }
    if (a == NULL)
        return -ENOMEM;
    a->cfg = cfg;
    a->stop = stop;
    pthread_mutex_init(&a->flowrecords_lock, NULL);
    a->exps = calloc(1, sizeof(*a->exps));
    if (a->exps == NULL) {
        free(a);
        return -ENOMEM;
    }
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        fv_metrics_register(&a->reg, all[i]);
    rc = fv_agg_templates_init(&a->tmpl, cfg->pod_labels);
    if (rc == 0 && cfg->inventory_file) {
        rc = fv_k8s_file_source_init(&a->inv_src, cfg->inventory_file);
        if (rc == 0) {
            a->have_inv_src = true;
            reload_inventory(a);
            if (a->inv == NULL) {
                FV_LOG_ERROR("inventory.file: %s", a->inv_src.err);
                rc = -FV_ECONFIG;
            }
        }
    }
    if (rc == 0 && cfg->inventory_kube) {
        struct fv_k8s_watch_cfg wc = {.kubeconfig = cfg->kubeconfig};
        char err[512];
        rc = fv_k8s_watch_start(&wc, &a->watch, err, sizeof(err));
        if (rc < 0) {
            FV_LOG_ERROR("inventory.kubernetes: %s", err);
            rc = -FV_ECONFIG;
        }
        /* No wait: records that arrive before the first inventory go out
         * with what the agents said; the output thread takes it when it
         * comes. */
    }
    a->base = rc == 0 ? event_base_new() : NULL;
    if (rc == 0 && a->base == NULL)
        rc = -ENOMEM;
    if (rc == 0)
        rc = start_listeners(a);
    if (rc == 0)
        rc = start_outputs(a);
    if (rc < 0 && rc != -FV_ECONFIG && a->nlisteners > 0 && !a->ipfix_out && !a->json_out)
        FV_LOG_ERROR("cannot start the output to %s: %s", cfg->fc_address, fv_strerror(rc));
    if (rc == 0)
        rc = start_stores(a);
    if (rc == 0)
        rc = start_shards(a);
    nstarted = a->nshards;
    if (rc == 0)
        rc = -pthread_create(&a->out_thread, NULL, output_run, a);
    if (rc == 0)
        rc = start_api(a);
    if (rc == 0) {
        sigint = evsignal_new(a->base, SIGINT, on_signal, a->base);
        sigterm = evsignal_new(a->base, SIGTERM, on_signal, a->base);
        timer = event_new(a->base, -1, EV_PERSIST, on_timer, a);
        evsignal_add(sigint, NULL);
        evsignal_add(sigterm, NULL);
        event_add(timer, &tv);
        atomic_store(&a->ready, true);
        FV_LOG_INFO("aggregator running workers=%d active=%llums inactive=%llums api=%s:%u "
                    "output=%s",
                    a->nshards, (unsigned long long)cfg->active_ms,
                    (unsigned long long)cfg->inactive_ms, cfg->api_bind, cfg->api_port,
                    cfg->fc_enable ? cfg->fc_address : "none");
        event_base_dispatch(a->base);
        FV_LOG_INFO("stopping: exporting the flows held");
    }
    atomic_store(&a->ready, false);
    /* Stop intake first, then let every stage drain into the next. */
    for (int i = 0; i < a->nlisteners; i++)
        fv_ipfix_listener_free(a->listeners[i]);
    commit_all(a);
    atomic_store(&a->shards_stop, true);
    for (int i = 0; i < a->nshards; i++)
        if (a->shards[i].tab && a->shards[i].thread)
            pthread_join(a->shards[i].thread, NULL);
    atomic_store(&a->out_stop, true);
    if (a->out_thread)
        pthread_join(a->out_thread, NULL);
    fv_http_server_stop(a->http);
    fv_sender_stop(a->ipfix_out, DRAIN_ON_EXIT_MS);
    fv_sender_stop(a->json_out, DRAIN_ON_EXIT_MS);
    for (int i = 0; i < a->nstores; i++)
        a->stores[i].ops->stop(a->stores[i].impl, DRAIN_ON_EXIT_MS);
    if (rc == 0) {
        struct fv_ftab_stats t;
        totals(a, &t);
        FV_LOG_INFO("stopped received=%llu exported=%llu correlated=%llu uncorrelated=%llu "
                    "stale=%llu dropped=%llu",
                    (unsigned long long)fv_metric_get(&m_received),
                    (unsigned long long)fv_metric_get(&m_exported),
                    (unsigned long long)t.correlated, (unsigned long long)t.uncorrelated,
                    (unsigned long long)t.stale, (unsigned long long)fv_metric_get(&m_dropped));
    }
    for (int i = 0; i < nstarted; i++) {
        fv_ftab_free(a->shards[i].tab);
        fv_spsc_fini(&a->shards[i].in);
        fv_spsc_fini(&a->shards[i].out);
    }
    if (sigint)
        event_free(sigint);
    if (sigterm)
        event_free(sigterm);
    if (timer)
        event_free(timer);
    if (a->base)
        event_base_free(a->base);
    if (a->have_inv_src)
        fv_k8s_file_source_fini(&a->inv_src);
    fv_k8s_watch_stop(a->watch);
    fv_k8s_inventory_free(a->inv);
    fv_agg_templates_fini(&a->tmpl);
    free(a->token);
    free(a->exps);
    pthread_mutex_destroy(&a->flowrecords_lock);
    free(a);
    return rc;
}
