/*
 * agent.c - the agent's main loop, filters and enrichment (see agent.h).
 */
#include "agent/agent.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "ipfix/sender.h"
#include "ipfix/templates.h"
#include "agent/denied.h"
#include "agent/nflog.h"
#include "agent/store.h"
#include "base/addr.h"
#include "base/clock.h"
#include "base/err.h"
#include "base/log.h"
#include "conntrack/conntrack.h"
#include "k8s/inventory.h"
#include "k8s/policy.h"
#include "k8s/watch.h"
#include "metrics/metrics.h"

#define MAX_ZONES 64
#define LOOP_MAX_WAIT_MS 500
#define DRAIN_ON_EXIT_MS 5000
/* How long start-up waits for the first inventory from the Kubernetes API
 * before it goes on without (records then lack identity until it comes). */
#define KUBE_FIRST_SYNC_MS 15000

static struct fv_metric m_ct_total =
    FV_GAUGE("flowvis_agent_conntrack_total_connections",
             "Connections in the conntrack table at the last poll.");
static struct fv_metric m_tracked =
    FV_GAUGE("flowvis_agent_tracked_connections", "Connections the agent tracks and exports.");
static struct fv_metric m_denied =
    FV_GAUGE("flowvis_agent_denied_connections",
             "Denied connections tracked (packets the datapath refused and logged to NFLOG).");
static struct fv_metric m_denied_packets =
    FV_COUNTER("flowvis_agent_denied_packets_total", "Refused packets read from NFLOG.");
static struct fv_metric m_denied_untracked =
    FV_COUNTER("flowvis_agent_denied_untracked_total",
               "Refused packets of new connections not tracked: deniedFlows.maxConnections.");
static struct fv_metric m_nflog_overruns =
    FV_COUNTER("flowvis_agent_nflog_overruns_total",
               "NFLOG socket overruns: refused packets the kernel could not deliver.");
static struct fv_metric m_kube_synced =
    FV_GAUGE("flowvis_agent_kubernetes_synced",
             "1 once every watched kind was listed from the Kubernetes API.");
static struct fv_metric m_kube_events =
    FV_COUNTER("flowvis_agent_kubernetes_events_total", "Watch events applied.");
static struct fv_metric m_kube_relists =
    FV_COUNTER("flowvis_agent_kubernetes_relists_total",
               "Full relists after 410 Gone (resource version too old).");
static struct fv_metric m_kube_errors =
    FV_COUNTER("flowvis_agent_kubernetes_errors_total",
               "Failed Kubernetes API requests (retried with backoff).");
static struct fv_metric m_ct_max =
    FV_GAUGE("flowvis_agent_conntrack_max", "The kernel's nf_conntrack_max.");
static struct fv_metric m_reconnects =
    FV_COUNTER("flowvis_agent_reconnections_total", "Reconnections to the flow collector.");
static struct fv_metric m_exported =
    FV_COUNTER("flowvis_agent_records_exported_total", "Flow records sent to the collector.");
static struct fv_metric m_dropped =
    FV_COUNTER("flowvis_agent_records_dropped_total",
               "Flow records lost because they are larger than an IPFIX message.");
static struct fv_metric m_untracked =
    FV_GAUGE("flowvis_agent_untracked_connections",
             "Connections of the last poll not tracked (so not exported): maxConnections reached.");
static struct fv_metric m_queue_full =
    FV_COUNTER("flowvis_agent_export_queue_full_total",
               "Times a record met a full export queue; it stays in the store and is retried.");
static struct fv_metric m_queue =
    FV_GAUGE("flowvis_agent_export_queue_records", "Records waiting in the export queue.");
static struct fv_metric m_connected =
    FV_GAUGE("flowvis_agent_collector_connected", "1 while connected to the flow collector.");
static struct fv_metric m_connect_failures =
    FV_COUNTER("flowvis_agent_collector_connect_failures_total",
               "Failed attempts to connect to the flow collector (TCP, TLS handshake).");
static struct fv_metric m_poll_us =
    FV_GAUGE("flowvis_agent_poll_duration_microseconds", "Wall time of the last conntrack poll.");
static struct fv_metric m_polls =
    FV_COUNTER("flowvis_agent_polls_total", "Conntrack dumps completed.");
static struct fv_metric m_overruns =
    FV_COUNTER("flowvis_agent_conntrack_event_overruns_total",
               "Conntrack event overruns (the buffer grew and a resync dump followed).");
static struct fv_metric m_events =
    FV_COUNTER("flowvis_agent_conntrack_events_total", "Conntrack NEW and DESTROY events read.");

struct agent {
    const struct fv_agent_cfg *cfg;
    struct fv_ct *ct;
    struct fv_agent_store *store;
    struct fv_sender *sender;
    struct fv_metrics reg;
    struct fv_metrics_server *msrv;
    bool have_inv_src;
    struct fv_k8s_file_source inv_src;
    struct fv_k8s_watch *watch; /* inventory.kubernetes: the API watch thread */
    struct fv_k8s_inventory *inv;
    struct fv_nflog *nflog;    /* deniedFlows.nflogGroups, or NULL */
    struct fv_denied *denied;  /* refused connections, with nflog */
    struct fv_ip collector_ip; /* our own export connection is not a flow */
    uint16_t collector_port;
    uint16_t zones[MAX_ZONES];
    size_t nzones;
    bool k8s_mode; /* Pod CIDRs known: export only Pod traffic */
    uint64_t dump_entries;
    uint64_t too_large; /* records larger than a message: lost */
    bool was_connected;
    uint64_t connect_failures; /* as last logged */
    uint64_t connect_warned_ms;
};

/* While the collector cannot be reached, say so at once and then every so
 * often; the sender retries with backoff and keeps the records queued. */
#define CONNECT_WARN_EVERY_MS 30000

uint32_t fv_agent_domain_id(const char *node_name)
{
    uint32_t h = 2166136261u;
    for (const char *p = node_name; *p; p++)
        h = (h * 16777619u) ^ (uint8_t)*p;
    return h;
}

static bool in_list(const struct fv_cfg_cidrlist *l, const struct fv_ip *ip)
{
    for (size_t i = 0; i < l->n; i++)
        if (fv_cidr_contains(&l->items[i], ip))
            return true;
    return false;
}

/* A Pod IP anywhere in the cluster. */
static bool in_cluster(const struct agent *a, const struct fv_ip *ip)
{
    if (a->inv && fv_k8s_ip_in_pod_cidrs(a->inv, ip))
        return true;
    return in_list(&a->cfg->cluster_cidrs, ip) || in_list(&a->cfg->pod_cidrs, ip);
}

/* A Pod on this Node: known by the inventory, or inside this Node's CIDRs. */
static const struct fv_k8s_pod *local_pod(const struct agent *a, const struct fv_ip *ip,
                                          bool *local)
{
    const struct fv_k8s_pod *pod = a->inv ? fv_k8s_pod_by_ip(a->inv, ip) : NULL;

    if (pod) {
        *local = strcmp(pod->node_name, a->cfg->node_name) == 0;
        return *local ? pod : NULL;
    }
    *local = in_list(&a->cfg->pod_cidrs, ip);
    if (!*local && a->inv) {
        const struct fv_k8s_node *n = fv_k8s_node_by_pod_cidr(a->inv, ip);
        *local = n && strcmp(n->name, a->cfg->node_name) == 0;
    }
    return NULL;
}

static bool is_loopback(const struct fv_ip *ip)
{
    static const uint8_t v6lo[16] = {[15] = 1};
    if (ip->family == AF_INET)
        return ip->a[0] == 127;
    return memcmp(ip->a, v6lo, 16) == 0;
}

/* Whether a conntrack entry is a flow this agent reports. */
static bool wanted(const struct agent *a, const struct fv_ct_entry *e)
{
    const struct fv_agent_cfg *c = a->cfg;

    if (is_loopback(&e->orig.src) || is_loopback(&e->reply.src))
        return false;
    if ((fv_ip_equal(&e->orig.dst, &a->collector_ip) && e->orig.dport == a->collector_port) ||
        (fv_ip_equal(&e->orig.src, &a->collector_ip) && e->orig.sport == a->collector_port))
        return false;
    if (a->nzones) {
        size_t i = 0;
        while (i < a->nzones && a->zones[i] != e->zone)
            i++;
        if (i == a->nzones)
            return false;
    }
    if (c->mark_mask && (e->mark & c->mark_mask) != c->mark)
        return false;
    if (in_list(&c->exclude_cidrs, &e->orig.src) || in_list(&c->exclude_cidrs, &e->reply.src))
        return false;
    if (a->k8s_mode)
        return in_cluster(a, &e->orig.src) || in_cluster(a, &e->reply.src) ||
               in_cluster(a, &e->orig.dst);
    return true;
}

/* Fills the Service fields when the connection was DNATed from a ClusterIP. */
static bool enrich_service(const struct agent *a, const struct fv_conn_report *r,
                           struct fv_agent_rec *rec)
{
    const struct fv_k8s_service *svc;
    const struct fv_k8s_service_port *port;

    if (a->inv == NULL || (fv_ip_equal(&r->dst, &r->endpoint) && r->dport == r->endpoint_port))
        return false;
    if (fv_k8s_service_by_cluster_ip(a->inv, &r->dst, r->dport, r->proto, &svc, &port) != 0 ||
        svc == NULL || port == NULL)
        return false;
    memcpy(rec->cluster_ip, r->dst.a, 16);
    rec->svc_port = r->dport;
    rec->svc_port_name = port->ref;
    return true;
}

/* Fills one direction's policy fields from an evaluation result: the
 * policy that admitted the flow, or with action drop/reject the policy
 * that isolates the Pod. */
static void set_policy(const struct fv_np_result *res, uint8_t action, bool ingress,
                       struct fv_agent_rec *rec)
{
    const char *name = res->policy ? res->policy->name : "";
    const char *ns = res->policy ? res->policy->ns : "";
    uint8_t type = res->policy ? FV_POLICY_TYPE_K8S : 0;

    if (ingress) {
        rec->in_policy = name;
        rec->in_policy_ns = ns;
        rec->in_policy_type = type;
        rec->in_rule = res->rule_name ? res->rule_name : "";
        rec->in_action = action;
    } else {
        rec->eg_policy = name;
        rec->eg_policy_ns = ns;
        rec->eg_policy_type = type;
        rec->eg_rule = res->rule_name ? res->rule_name : "";
        rec->eg_action = action;
    }
}

/* Names the admitting policy of each side whose Pod is local. */
static void name_admitting(const struct fv_np_result *in, const struct fv_np_result *eg,
                           bool src_pod, bool dst_pod, struct fv_agent_rec *rec)
{
    if (dst_pod && in->verdict == FV_NP_ALLOWED)
        set_policy(in, FV_ACTION_ALLOW, true, rec);
    if (src_pod && eg->verdict == FV_NP_ALLOWED)
        set_policy(eg, FV_ACTION_ALLOW, false, rec);
}

/*
 * NetworkPolicy attribution for a connection the datapath let through: the
 * egress side when the source is a local Pod, the ingress side when the
 * destination is (each node reports its own Pods; the aggregator joins the
 * two halves).  Only an admitting policy is named: a verdict of "denied"
 * for a connection that exists means the datapath does not enforce that
 * policy, and "unknown" (a peer Pod this agent does not know) names nothing.
 */
static void enrich_policy(const struct agent *a, const struct fv_np_flow *f, bool src_pod,
                          bool dst_pod, struct fv_agent_rec *rec)
{
    struct fv_np_result in, eg;

    if (a->inv == NULL || (!src_pod && !dst_pod))
        return;
    fv_k8s_policy_evaluate(a->inv, f, &in, &eg);
    name_admitting(&in, &eg, src_pod, dst_pod, rec);
}

/* Where a connection's two ends are, as far as this Node knows. */
struct ends {
    const struct fv_k8s_pod *sp, *dp; /* the local Pods, or NULL */
    bool src_local, dst_local;        /* an address of a Pod on this Node */
};

/*
 * Finds the ends of a connection that are Pods on this Node, puts their
 * names and this Node's name in rec, and sets the flowType (SPEC section 3:
 * from where the two ends are; to_service: the destination was a ClusterIP).
 */
static void enrich_ends(const struct agent *a, const struct fv_ip *src, const struct fv_ip *dst,
                        bool to_service, struct fv_agent_rec *rec, struct ends *e)
{
    bool src_pod;

    e->sp = local_pod(a, src, &e->src_local);
    e->dp = local_pod(a, dst, &e->dst_local);
    if (e->sp) {
        rec->src_pod = e->sp->name;
        rec->src_ns = e->sp->ns;
        rec->src_node = a->cfg->node_name;
    }
    if (e->dp) {
        rec->dst_pod = e->dp->name;
        rec->dst_ns = e->dp->ns;
        rec->dst_node = a->cfg->node_name;
    }
    src_pod = in_cluster(a, src);
    if (src_pod && (to_service || in_cluster(a, dst)))
        rec->flow_type = e->src_local && e->dst_local ? FV_FLOW_INTRA_NODE : FV_FLOW_INTER_NODE;
    else if (src_pod)
        rec->flow_type = FV_FLOW_TO_EXTERNAL;
    else if (e->dst_local)
        rec->flow_type = FV_FLOW_FROM_EXTERNAL;
}

static void enrich(const struct agent *a, const struct fv_conn_report *r, struct fv_agent_rec *rec)
{
    struct ends e;
    struct fv_np_flow f = {r->src, r->endpoint, r->endpoint_port, r->proto};
    bool svc = enrich_service(a, r, rec);

    enrich_ends(a, &r->src, &r->endpoint, svc, rec, &e);
    enrich_policy(a, &f, e.sp != NULL, e.dp != NULL, rec);
}

/* Queues an encoded record; -1 when the queue is full (the caller's store
 * keeps the counters and retries), else 0 (a record too large for a
 * message is counted and lost). */
static int push(struct agent *a, const struct fv_agent_rec *rec)
{
    int rc = fv_sender_push(a->sender, rec->ipv6 ? FV_TMPL_AGENT_V6 : FV_TMPL_AGENT_V4,
                            fv_agent_rec_encode, rec);

    if (rc == -FV_ENOSPACE) {
        fv_metric_add(&m_queue_full, 1);
        return -1;
    }
    if (rc < 0)
        a->too_large++;
    return 0;
}

static int emit(void *ctx, const struct fv_conn_report *r)
{
    struct agent *a = ctx;
    struct fv_agent_rec rec;

    memset(&rec, 0, sizeof(rec));
    rec.ipv6 = r->src.family == AF_INET6;
    rec.flow_start = r->start_s;
    rec.flow_end = r->end_s;
    rec.end_reason = r->end_reason;
    rec.src_port = r->sport;
    rec.dst_port = r->endpoint_port;
    rec.proto = r->proto;
    rec.packets_total = r->packets;
    rec.octets_total = r->octets;
    rec.packets_delta = r->d_packets;
    rec.octets_delta = r->d_octets;
    rec.rev_packets_total = r->rev_packets;
    rec.rev_octets_total = r->rev_octets;
    rec.rev_packets_delta = r->d_rev_packets;
    rec.rev_octets_delta = r->d_rev_octets;
    memcpy(rec.src_addr, r->src.a, 16);
    memcpy(rec.dst_addr, r->endpoint.a, 16);
    rec.tcp_state = r->proto == 6 ? fv_ct_tcp_state_name(r->tcp_state) : "";
    enrich(a, r, &rec);
    return push(a, &rec);
}

/*
 * A connection the datapath refused, from the denied store.  The policy
 * that refused it is the one the evaluator finds isolating the local Pod:
 * ingress when the destination is a local Pod whose ingress is denied,
 * else egress when the source is a local Pod whose egress is denied; when
 * neither can be named (no inventory, or the datapath enforces something
 * the inventory does not show), the action still goes on the side of the
 * local Pod, without a policy name.  The other direction keeps its
 * admitting policy, if any.
 */
static void enrich_denied(const struct agent *a, const struct fv_denied_report *d,
                          struct fv_agent_rec *rec)
{
    static const struct fv_np_result unnamed = {FV_NP_DENIED, NULL, -1, ""};
    struct ends e;
    struct fv_np_flow f = {d->src, d->dst, d->dport, d->proto};
    struct fv_np_result in = {FV_NP_NOT_ISOLATED, NULL, -1, ""}, eg = in;

    enrich_ends(a, &d->src, &d->dst, false, rec, &e);
    if (a->inv)
        fv_k8s_policy_evaluate(a->inv, &f, &in, &eg);
    if (e.dp && in.verdict == FV_NP_DENIED)
        set_policy(&in, d->action, true, rec);
    else if (e.sp && eg.verdict == FV_NP_DENIED)
        set_policy(&eg, d->action, false, rec);
    else
        set_policy(&unnamed, d->action, e.dst_local && !e.src_local, rec);
    name_admitting(&in, &eg, e.sp != NULL, e.dp != NULL, rec);
}

static int emit_denied(void *ctx, const struct fv_denied_report *d)
{
    struct agent *a = ctx;
    struct fv_agent_rec rec;

    memset(&rec, 0, sizeof(rec));
    rec.ipv6 = d->src.family == AF_INET6;
    rec.flow_start = d->start_s;
    rec.flow_end = d->end_s;
    rec.end_reason = d->end_reason;
    rec.src_port = d->sport;
    rec.dst_port = d->dport;
    rec.proto = d->proto;
    rec.packets_total = d->packets;
    rec.octets_total = d->octets;
    rec.packets_delta = d->d_packets;
    rec.octets_delta = d->d_octets;
    memcpy(rec.src_addr, d->src.a, 16);
    memcpy(rec.dst_addr, d->dst.a, 16);
    rec.tcp_state = "";
    rec.in_policy = rec.in_policy_ns = rec.in_rule = "";
    rec.eg_policy = rec.eg_policy_ns = rec.eg_rule = "";
    enrich_denied(a, d, &rec);
    return push(a, &rec);
}

static void on_nflog_packet(void *ctx, const struct fv_nflog_packet *p)
{
    struct agent *a = ctx;

    fv_denied_add(a->denied, p, fv_clock_mono_ms(), fv_clock_wall_s());
}

static void read_nflog(struct agent *a)
{
    int rc = fv_nflog_read(a->nflog, on_nflog_packet, a);

    if (rc < 0)
        FV_LOG_WARN("nflog node=%s: %s", a->cfg->node_name, fv_strerror(rc));
}

static int on_dump_entry(void *ctx, const struct fv_ct_entry *e)
{
    struct agent *a = ctx;

    a->dump_entries++;
    if (wanted(a, e))
        fv_agent_store_update(a->store, e, fv_clock_mono_ms(), fv_clock_wall_s(), emit, a);
    return 0;
}

static int on_event(void *ctx, enum fv_ct_event type, const struct fv_ct_entry *e)
{
    struct agent *a = ctx;
    uint64_t now = fv_clock_mono_ms();

    fv_metric_add(&m_events, 1);
    if (!wanted(a, e))
        return 0;
    if (type == FV_CT_DESTROY)
        fv_agent_store_destroy(a->store, e, now, fv_clock_wall_s(), emit, a);
    else
        fv_agent_store_update(a->store, e, now, fv_clock_wall_s(), emit, a);
    return 0;
}

/* Reads pending events; true when they overran and a resync is due. */
static bool read_events(struct agent *a)
{
    int rc = fv_ct_events_read(a->ct, on_event, a);

    if (rc == -FV_ELIMIT) {
        fv_metric_add(&m_overruns, 1);
        FV_LOG_WARN("conntrack events overran node=%s: buffer now %d bytes, resyncing",
                    a->cfg->node_name, fv_ct_event_rcvbuf(a->ct));
        return true;
    }
    if (rc < 0)
        FV_LOG_WARN("conntrack events node=%s: %s", a->cfg->node_name, fv_strerror(rc));
    return false;
}

/* Takes a new snapshot when the file changed or the API watch built one;
 * this thread is the only reader of a->inv, so the old one goes at once. */
static void reload_inventory(struct agent *a)
{
    struct fv_k8s_inventory *fresh;

    if (a->have_inv_src)
        fv_k8s_file_source_update(&a->inv_src, &a->inv);
    if (a->watch && fv_k8s_watch_take(a->watch, &fresh) == 1) {
        const struct fv_k8s_inventory_stats *st = fv_k8s_inventory_stats(fresh);
        FV_LOG_DEBUG("inventory from the Kubernetes API pods=%zu services=%zu nodes=%zu "
                     "namespaces=%zu policies=%zu",
                     st->pods, st->services, st->nodes, st->namespaces, st->policies);
        fv_k8s_inventory_free(a->inv);
        a->inv = fresh;
    }
}

static void do_poll(struct agent *a)
{
    uint64_t t0 = fv_clock_mono_ns();
    int rc;

    struct fv_agent_store_stats before, after;

    reload_inventory(a);
    a->dump_entries = 0;
    fv_agent_store_begin_sweep(a->store);
    fv_agent_store_stats(a->store, &before);
    rc = fv_ct_dump(a->ct, on_dump_entry, a);
    if (rc < 0) {
        /* An incomplete dump must not make connections look gone. */
        FV_LOG_WARN("conntrack dump failed node=%s: %s", a->cfg->node_name, fv_strerror(rc));
        return;
    }
    /* Events queued during the dump first: a DESTROY among them carries the
     * exact final counters, better than the sweep's last-seen ones. */
    /* A dump sees every connection once: those it could not track are
     * the ones maxConnections keeps out now. */
    fv_agent_store_stats(a->store, &after);
    fv_metric_set(&m_untracked, after.untracked_full - before.untracked_full);
    read_events(a);
    fv_agent_store_end_sweep(a->store, fv_clock_mono_ms(), fv_clock_wall_s(), emit, a);
    fv_metric_set(&m_poll_us, (fv_clock_mono_ns() - t0) / 1000);
    fv_metric_set(&m_ct_total, a->dump_entries);
    fv_metric_add(&m_polls, 1);
}

static void update_gauges(struct agent *a)
{
    struct fv_agent_store_stats st;
    struct fv_sender_stats ss;

    fv_agent_store_stats(a->store, &st);
    fv_sender_stats(a->sender, &ss);
    fv_metric_set(&m_tracked, st.tracked);
    fv_metric_set(&m_dropped, a->too_large);
    fv_metric_set(&m_connect_failures, ss.connect_failures);
    fv_metric_set(&m_queue, ss.queued);
    fv_metric_set(&m_exported, ss.sent);
    fv_metric_set(&m_reconnects, ss.reconnects);
    fv_metric_set(&m_connected, ss.connected);
    if (ss.connected != a->was_connected)
        FV_LOG_INFO("collector %s address=%s", ss.connected ? "connected" : "disconnected",
                    a->cfg->collector);
    a->was_connected = ss.connected;
    if (a->denied) {
        struct fv_denied_stats ds;
        struct fv_nflog_stats ns;
        fv_denied_stats(a->denied, &ds);
        fv_nflog_stats(a->nflog, &ns);
        fv_metric_set(&m_denied, ds.entries);
        fv_metric_set(&m_denied_untracked, ds.untracked_full);
        fv_metric_set(&m_denied_packets, ns.packets);
        fv_metric_set(&m_nflog_overruns, ns.overruns);
    }
    if (a->watch) {
        struct fv_k8s_watch_stats ws;
        fv_k8s_watch_stats(a->watch, &ws);
        fv_metric_set(&m_kube_synced, ws.synced);
        fv_metric_set(&m_kube_events, ws.events);
        fv_metric_set(&m_kube_relists, ws.relists);
        fv_metric_set(&m_kube_errors, ws.errors);
    }
    if (!ss.connected && ss.connect_failures > a->connect_failures) {
        uint64_t now = fv_clock_mono_ms();
        if (a->connect_warned_ms == 0 || now - a->connect_warned_ms >= CONNECT_WARN_EVERY_MS) {
            FV_LOG_WARN("cannot connect to the collector address=%s failures=%" PRIu64
                        " queued=%" PRIu64 " (retrying with backoff; records are kept)",
                        a->cfg->collector, ss.connect_failures, ss.queued);
            a->connect_warned_ms = now;
            a->connect_failures = ss.connect_failures;
        }
    }
    if (ss.connected)
        a->connect_warned_ms = 0;
}

static int setup_filters(struct agent *a)
{
    for (size_t i = 0; i < a->cfg->zones.n; i++) {
        char *end;
        long z = strtol(a->cfg->zones.items[i], &end, 10);
        if (*end || z < 0 || z > 65535 || a->nzones == MAX_ZONES) {
            FV_LOG_ERROR("filters.zones: '%s' is not a conntrack zone (0-65535)",
                         a->cfg->zones.items[i]);
            return -FV_ECONFIG;
        }
        a->zones[a->nzones++] = (uint16_t)z;
    }
    a->k8s_mode = a->cfg->inventory_file || a->cfg->inventory_kube || a->cfg->pod_cidrs.n ||
                  a->cfg->cluster_cidrs.n;
    return 0;
}

/* inventory.kubernetes: the watch thread, and a bounded wait for its first
 * inventory so that the first poll already has identity. */
static int start_watch(struct agent *a)
{
    struct fv_k8s_watch_cfg wc = {.kubeconfig = a->cfg->kubeconfig};
    char err[512];
    int rc;

    if (!a->cfg->all_pods)
        wc.node_name = a->cfg->node_name;
    rc = fv_k8s_watch_start(&wc, &a->watch, err, sizeof(err));
    if (rc < 0) {
        FV_LOG_ERROR("inventory.kubernetes: %s", err);
        return -FV_ECONFIG;
    }
    if (fv_k8s_watch_wait(a->watch, KUBE_FIRST_SYNC_MS) < 0) {
        struct fv_k8s_watch_stats ws;
        fv_k8s_watch_stats(a->watch, &ws);
        FV_LOG_WARN("inventory.kubernetes: no inventory after %d s (%s); starting without, "
                    "records lack identity until it comes",
                    KUBE_FIRST_SYNC_MS / 1000, ws.last_error[0] ? ws.last_error : "still listing");
    }
    reload_inventory(a);
    return 0;
}

/* deniedFlows.nflogGroups: the NFLOG listener and the denied store. */
static int start_nflog(struct agent *a)
{
    struct fv_nflog_group groups[32];
    struct fv_denied_cfg dc = {a->cfg->active_timeout_ms, a->cfg->idle_timeout_ms, 1000,
                               a->cfg->max_denied};
    size_t n = 0;
    int rc;

    for (size_t i = 0; i < a->cfg->nflog_groups.n && n < 32; i++) {
        char why[128];
        if (fv_nflog_group_parse(a->cfg->nflog_groups.items[i], &groups[n], why, sizeof(why)) < 0) {
            FV_LOG_ERROR("deniedFlows.nflogGroups: %s", why);
            return -FV_ECONFIG;
        }
        n++;
    }
    rc = fv_nflog_open(groups, n, &a->nflog);
    if (rc < 0)
        return rc; /* the reason is logged */
    return fv_denied_new(&dc, &a->denied);
}

static int setup(struct agent *a, struct fv_sender_cfg *scfg)
{
    struct fv_metric *all[] = {&m_ct_total,
                               &m_tracked,
                               &m_denied,
                               &m_ct_max,
                               &m_reconnects,
                               &m_exported,
                               &m_dropped,
                               &m_queue_full,
                               &m_queue,
                               &m_connected,
                               &m_connect_failures,
                               &m_untracked,
                               &m_poll_us,
                               &m_polls,
                               &m_overruns,
                               &m_events,
                               &m_denied_packets,
                               &m_denied_untracked,
                               &m_nflog_overruns,
                               &m_kube_synced,
                               &m_kube_events,
                               &m_kube_relists,
                               &m_kube_errors};
    struct fv_agent_store_cfg stcfg = {a->cfg->active_timeout_ms, a->cfg->idle_timeout_ms,
                                       a->cfg->max_conns};
    long long ctmax;
    int rc;

    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        fv_metrics_register(&a->reg, all[i]);
    rc = fv_ct_enable_accounting();
    if (rc < 0)
        FV_LOG_WARN("cannot enable nf_conntrack_acct/timestamp: %s (counters may be zero)",
                    fv_strerror(rc));
    if (fv_ct_read_sysctl("net/netfilter/nf_conntrack_max", &ctmax) == 0)
        fv_metric_set(&m_ct_max, (uint64_t)ctmax);
    rc = setup_filters(a);
    if (rc < 0)
        return rc;
    rc = fv_ct_open(true, &a->ct);
    if (rc < 0) {
        FV_LOG_ERROR("cannot open conntrack: %s (needs CAP_NET_ADMIN)", fv_strerror(rc));
        return rc;
    }
    rc = fv_agent_store_new(&stcfg, &a->store);
    if (rc < 0)
        return rc;
    if (a->cfg->inventory_file) {
        rc = fv_k8s_file_source_init(&a->inv_src, a->cfg->inventory_file);
        if (rc < 0)
            return rc;
        a->have_inv_src = true;
        reload_inventory(a);
        if (a->inv == NULL) {
            FV_LOG_ERROR("inventory.file: %s", a->inv_src.err);
            return -FV_ECONFIG;
        }
    }
    if (a->cfg->inventory_kube) {
        rc = start_watch(a);
        if (rc < 0)
            return rc;
    }
    if (a->cfg->nflog_groups.n) {
        rc = start_nflog(a);
        if (rc < 0)
            return rc;
    }
    rc = fv_sender_start(scfg, &a->sender);
    if (rc < 0) {
        FV_LOG_ERROR("cannot start the exporter for %s: %s", a->cfg->collector, fv_strerror(rc));
        return rc;
    }
    if (a->cfg->metrics_address) {
        rc = fv_metrics_serve(&a->reg, a->cfg->metrics_address, &a->msrv);
        if (rc < 0) {
            FV_LOG_ERROR("metricsAddress: cannot serve on %s: %s", a->cfg->metrics_address,
                         fv_strerror(rc));
            return rc;
        }
    }
    return 0;
}

static void loop(struct agent *a, volatile sig_atomic_t *stop)
{
    uint64_t next_poll = fv_clock_mono_ms();

    while (!*stop) {
        uint64_t now = fv_clock_mono_ms();
        uint64_t wait = next_poll > now ? next_poll - now : 0;
        uint64_t due = fv_agent_store_next_deadline(a->store, now);
        struct pollfd p[2] = {{.fd = fv_ct_event_fd(a->ct), .events = POLLIN},
                              {.fd = a->nflog ? fv_nflog_fd(a->nflog) : -1, .events = POLLIN}};
        bool resync = false;

        if (due < wait)
            wait = due;
        if (a->denied) {
            due = fv_denied_next_deadline(a->denied, now);
            if (due < wait)
                wait = due;
        }
        if (wait > LOOP_MAX_WAIT_MS)
            wait = LOOP_MAX_WAIT_MS;
        if (poll(p, a->nflog ? 2 : 1, (int)wait) > 0) {
            if (p[0].revents)
                resync = read_events(a);
            if (a->nflog && p[1].revents)
                read_nflog(a);
        }
        now = fv_clock_mono_ms();
        if (now >= next_poll || resync) {
            do_poll(a);
            next_poll += a->cfg->poll_interval_ms;
            if (next_poll <= now)
                next_poll = now + a->cfg->poll_interval_ms;
        }
        fv_agent_store_expire(a->store, fv_clock_mono_ms(), fv_clock_wall_s(), emit, a);
        if (a->denied)
            fv_denied_expire(a->denied, fv_clock_mono_ms(), fv_clock_wall_s(), emit_denied, a);
        update_gauges(a);
    }
}

int fv_agent_run(const struct fv_agent_cfg *cfg, volatile sig_atomic_t *stop)
{
    struct agent a = {.cfg = cfg};
    static const struct fv_ipfix_template_def *const tmpls[] = {&fv_tmpl_agent_v4,
                                                                &fv_tmpl_agent_v6};
    struct fv_sender_cfg scfg = {.max_records = cfg->queue_size, .tmpls = tmpls, .ntmpl = 2};
    struct sockaddr_storage ss;
    socklen_t sslen;
    int rc;

    scfg.exporter.domain = fv_agent_domain_id(cfg->node_name);
    scfg.exporter.mtu = cfg->mtu;
    scfg.exporter.tls.ca = cfg->tls_ca;
    scfg.exporter.tls.cert = cfg->tls_cert;
    scfg.exporter.tls.key = cfg->tls_key;
    rc = fv_addr_parse(cfg->collector, 4739, FV_PROTO_TLS, &scfg.exporter.addr);
    if (rc < 0) {
        FV_LOG_ERROR("flowCollectorAddr: '%s' is not HOST[:PORT][:PROTO]", cfg->collector);
        return rc;
    }
    /* Our own export connection must not be reported as a flow. */
    if (fv_addr_resolve(&scfg.exporter.addr, &ss, &sslen) == 0) {
        char ip[FV_IP_STRLEN];
        fv_sockaddr_ip((struct sockaddr *)&ss, ip, sizeof(ip));
        fv_ip_parse(ip, &a.collector_ip);
        a.collector_port = scfg.exporter.addr.port;
    }
    rc = setup(&a, &scfg);
    if (rc == 0) {
        FV_LOG_INFO("agent started node=%s domain=%u collector=%s transport=%s mode=%s "
                    "inventory=%s denied=%s",
                    cfg->node_name, scfg.exporter.domain, cfg->collector,
                    fv_proto_name(scfg.exporter.addr.proto), a.k8s_mode ? "kubernetes" : "host",
                    cfg->inventory_kube   ? "api"
                    : cfg->inventory_file ? "file"
                                          : "none",
                    a.nflog ? "nflog" : "off");
        loop(&a, stop);
        /* What changed since the last export still goes out (reason 4). */
        fv_agent_store_flush(a.store, fv_clock_mono_ms(), fv_clock_wall_s(), emit, &a);
        if (a.denied)
            fv_denied_flush(a.denied, fv_clock_mono_ms(), fv_clock_wall_s(), emit_denied, &a);
        FV_LOG_INFO("agent stopping node=%s", cfg->node_name);
    }
    fv_sender_stop(a.sender, DRAIN_ON_EXIT_MS);
    fv_metrics_server_stop(a.msrv);
    fv_agent_store_free(a.store);
    fv_denied_free(a.denied);
    fv_nflog_close(a.nflog);
    fv_k8s_watch_stop(a.watch);
    fv_ct_close(a.ct);
    if (a.have_inv_src)
        fv_k8s_file_source_fini(&a.inv_src);
    fv_k8s_inventory_free(a.inv);
    return rc;
}
