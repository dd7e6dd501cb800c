/*
 * bench_decode.c - how fast the codec decodes, and formats as JSON, the
 * records that flowvis agents send.
 *
 * The stream is built in memory from a small simulated cluster: 3 nodes,
 * each an exporter with its own observation domain and transport session;
 * pods in four namespaces with Deployment-style names; one flow in five
 * IPv6; Services, NetworkPolicy names, and inter-node flows reported by
 * both nodes, like the agent.  Records are encoded with the agent
 * templates (256/257) and packed twice: into messages of at most 1400
 * bytes (UDP) and of at most 65535 bytes (TCP/TLS).  Messages of the three
 * exporters are interleaved, as they reach a collector.  Each exporter's
 * templates travel in a message of their own that is decoded before the
 * timed passes, so the passes measure data records only.
 *
 * A case decodes the stream with fv_ipfix_session_decode() on one pinned
 * core, pass after pass, with the sequence numbers rewritten between
 * passes so that the sessions see one long, lossless stream.  Two stream
 * sizes are measured: "hot" (about 1 MiB, in cache like a batch the
 * collector has just received) and "cold" (about 50 MiB, larger than the
 * last-level cache, so every message comes from DRAM).  The decode
 * handler reads what a consumer reads - octetDeltaCount through
 * fv_ipfix_value_uint, the pod names' lengths and first bytes, the
 * template id - into a checksum that is compared with one computed from
 * the encoder's side, so nothing is optimised away and a decoding bug
 * fails the benchmark.  The JSON case formats every record with
 * fv_ipfix_fmt_json_record into an fv_sbuf emptied at 256 KiB, as the
 * collector does.  Times are CLOCK_THREAD_CPUTIME_ID, so another process
 * that takes the core away for a while does not count.
 *
 *     bench_decode [--records N] [--cold-records N] [--reps N] [--passes N]
 *                  [--case all|decode|json] [--stream all|udp|tcp] [--cpu N]
 *
 * Output is a table for people and one "RESULT key=value ..." line per
 * case for scripts (bench/run.sh).  Exit status 1: the decoded records
 * differ from the encoded ones, or some were lost; the figures are void.
 */
#include <getopt.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/bytes.h"
#include "base/sbuf.h"
#include "ipfix/fmt.h"
#include "ipfix/ipfix.h"
#include "ipfix/templates.h"

#define NODES 3
#define PODS_PER_NODE 12
#define NAMESPACES 4
#define UDP_MTU 1400
#define TCP_MTU 65535
#define EXPORT_TIME 1767225600u    /* 2026-01-01T00:00:00Z */
#define JSON_FLUSH_AT (256 * 1024) /* the collector's FLUSH_AT */
#define DECODE_RECORDS_PER_REP 400000
#define JSON_RECORDS_PER_REP 50000
#define TARGET_RECORDS_PER_S 5e6
/* go-ipfix BenchmarkCollectingProcess_DecodeDataRecord after
 * vmware/go-ipfix#395 (i9-9980HK): 3494 ns for a message of one record. */
#define GO_IPFIX_NS_PER_RECORD 3494.0

/* One message of a stream. */
struct msg_ref {
    uint32_t off;     /* offset in stream.buf */
    uint32_t seq;     /* sequence number as encoded (first pass) */
    uint16_t len;     /* message length */
    uint8_t exporter; /* index of the sending node */
};

/* Messages packed for one transport, back to back in one buffer: first
 * one template message per exporter, then the data messages. */
struct stream {
    const char *name;     /* "udp-1400" or "tcp-64k" */
    size_t mtu;           /* message budget */
    uint8_t *buf;         /* all messages; owned */
    size_t len, cap;      /* bytes used / allocated in buf */
    struct msg_ref *msgs; /* owned */
    size_t nmsgs, msgs_cap;
};

/* The message being filled for one exporter on one stream. */
struct packer {
    struct fv_ipfix_writer w;
    uint8_t buf[TCP_MTU];
    uint32_t seq; /* records sent before the current message */
};

struct node {
    char name[64];       /* node name, as Kubernetes reports it */
    uint32_t domain;     /* observation domain id */
    uint64_t records;    /* records this exporter sends per pass */
    struct packer pk[2]; /* one per stream */
};

struct pod {
    char name[64];
    const char *ns;
    int node;
    uint8_t ip4[4], ip6[16];
};

/* A simulated cluster, its records and their two packings. */
struct bench {
    const char *label; /* "hot" or "cold" */
    struct node nodes[NODES];
    struct pod pods[NODES * PODS_PER_NODE];
    struct stream streams[2];
    uint64_t rng;
    uint64_t records; /* records per pass */
    uint64_t ipv6;    /* of which IPv6 */
    uint64_t sum;     /* what on_record_decode must sum per pass, from the encoder's side */
};

static void die(const char *what)
{
    fprintf(stderr, "bench_decode: %s\n", what);
    exit(1);
}

static void *xrealloc(void *p, size_t n)
{
    p = realloc(p, n);
    if (p == NULL)
        die("out of memory");
    return p;
}

static uint32_t rnd(struct bench *b)
{
    /* xorshift64*: deterministic, so every run decodes the same bytes. */
    b->rng ^= b->rng >> 12;
    b->rng ^= b->rng << 25;
    b->rng ^= b->rng >> 27;
    return (uint32_t)((b->rng * 2685821657736338717ull) >> 32);
}

/* ---- Building the stream ---- */

static void stream_add(struct stream *s, const uint8_t *msg, size_t len, int exporter)
{
    while (s->len + len > s->cap) {
        s->cap = s->cap ? s->cap * 2 : 1 << 20;
        s->buf = xrealloc(s->buf, s->cap);
    }
    if (s->nmsgs == s->msgs_cap) {
        s->msgs_cap = s->msgs_cap ? s->msgs_cap * 2 : 1024;
        s->msgs = xrealloc(s->msgs, s->msgs_cap * sizeof(s->msgs[0]));
    }
    memcpy(s->buf + s->len, msg, len);
    s->msgs[s->nmsgs++] = (struct msg_ref){.off = (uint32_t)s->len,
                                           .seq = fv_load_be32(msg + 8),
                                           .len = (uint16_t)len,
                                           .exporter = (uint8_t)exporter};
    s->len += len;
}

/* Closes the exporter's current message onto the stream, if it holds anything. */
static void packer_flush(struct packer *p, struct stream *s, const struct node *n, int exporter)
{
    if (p->w.len == FV_IPFIX_HEADER_LEN)
        return;
    size_t len = fv_ipfix_writer_finish(&p->w, EXPORT_TIME, p->seq, n->domain);
    stream_add(s, p->buf, len, exporter);
    p->seq += p->w.records;
    fv_ipfix_writer_reset(&p->w);
}

static void packer_add(struct packer *p, struct stream *s, const struct node *n, int exporter,
                       const struct fv_agent_rec *r)
{
    uint16_t tid = r->ipv6 ? FV_TMPL_AGENT_V6 : FV_TMPL_AGENT_V4;

    for (int attempt = 0; attempt < 2; attempt++) {
        fv_ipfix_writer_record_begin(&p->w, tid);
        fv_agent_rec_encode(&p->w, r);
        if (fv_ipfix_writer_record_end(&p->w) == 0)
            return;
        packer_flush(p, s, n, exporter);
    }
    die("a record does not fit an empty message");
}

/* A Deployment pod name: <app>-<replicaset hash>-<5 random characters>. */
static void pod_name(struct bench *b, char *out, size_t cap, const char *app)
{
    static const char alnum[] = "bcdfghjklmnpqrstvwxz2456789";
    char rs[11], id[6];

    for (int i = 0; i < 10; i++)
        rs[i] = alnum[rnd(b) % (sizeof(alnum) - 1)];
    for (int i = 0; i < 5; i++)
        id[i] = alnum[rnd(b) % (sizeof(alnum) - 1)];
    rs[10] = id[5] = '\0';
    snprintf(out, cap, "%s-%s-%s", app, rs, id);
}

/* Nodes, pods, and each exporter's template message at the head of both streams. */
static void build_cluster(struct bench *b)
{
    static const char *const ns[NAMESPACES] = {"frontend", "backend", "batch-jobs", "kube-system"};
    static const char *const app[NAMESPACES] = {"web-frontend", "orders-api", "report-worker",
                                                "coredns"};

    b->rng = 0x9E3779B97F4A7C15ull;
    for (int i = 0; i < NODES; i++) {
        struct node *n = &b->nodes[i];
        snprintf(n->name, sizeof(n->name), "ip-10-0-%d-%d.eu-west-1.compute.internal", i + 1,
                 17 + i * 40);
        n->domain = 0x5eed0000u + (uint32_t)i;
        for (int k = 0; k < 2; k++) {
            struct packer *p = &n->pk[k];
            fv_ipfix_writer_init(&p->w, p->buf, b->streams[k].mtu);
            if (fv_ipfix_writer_add_template(&p->w, &fv_tmpl_agent_v4) < 0 ||
                fv_ipfix_writer_add_template(&p->w, &fv_tmpl_agent_v6) < 0)
                die("the templates do not fit a message");
            packer_flush(p, &b->streams[k], n, i);
        }
    }
    for (int i = 0; i < NODES * PODS_PER_NODE; i++) {
        struct pod *p = &b->pods[i];
        int k = i / NODES;
        p->node = i % NODES;
        p->ns = ns[k % NAMESPACES];
        pod_name(b, p->name, sizeof(p->name), app[k % NAMESPACES]);
        memcpy(p->ip4, (uint8_t[4]){10, 244, (uint8_t)(p->node + 1), (uint8_t)(10 + k)}, 4);
        p->ip6[0] = 0xfd, p->ip6[7] = (uint8_t)(p->node + 1), p->ip6[15] = (uint8_t)(10 + k);
    }
}

/* Fills r with flow number f between pods s and d; every 5th flow is IPv6. */
static void make_record(struct bench *b, uint64_t f, const struct pod *s, const struct pod *d,
                        struct fv_agent_rec *r)
{
    static const char *const states[] = {"ESTABLISHED", "TIME_WAIT", "SYN_SENT", "CLOSE_WAIT"};
    uint64_t pk = 1 + rnd(b) % 200, rpk = 1 + rnd(b) % 100;

    memset(r, 0, sizeof(*r));
    r->ipv6 = f % 5 == 4;
    r->flow_start = EXPORT_TIME - 600 + (uint32_t)(f % 600);
    r->flow_end = EXPORT_TIME;
    r->end_reason = f % 11 == 0 ? 3 : 2;
    r->proto = f % 7 == 6 ? 17 : 6;
    r->src_port = (uint16_t)(32768 + f % 28000);
    r->dst_port = r->proto == 17 ? 53 : (f % 3 == 0 ? 443 : 8080);
    r->packets_delta = pk;
    r->octets_delta = pk * (60 + rnd(b) % 1400);
    r->packets_total = pk * (1 + f % 50);
    r->octets_total = r->octets_delta * (1 + f % 50);
    r->rev_packets_delta = rpk;
    r->rev_octets_delta = rpk * (60 + rnd(b) % 600);
    r->rev_packets_total = rpk * (1 + f % 50);
    r->rev_octets_total = r->rev_octets_delta * (1 + f % 50);
    memcpy(r->src_addr, r->ipv6 ? s->ip6 : s->ip4, r->ipv6 ? 16 : 4);
    memcpy(r->dst_addr, r->ipv6 ? d->ip6 : d->ip4, r->ipv6 ? 16 : 4);
    r->src_pod = s->name, r->src_ns = s->ns, r->src_node = "";
    r->dst_pod = d->name, r->dst_ns = d->ns, r->dst_node = "";
    r->svc_port_name = r->in_policy = r->in_policy_ns = r->in_rule = "";
    r->eg_policy = r->eg_policy_ns = r->eg_rule = "";
    r->tcp_state = r->proto == 6 ? states[f % 4] : "";
    if (f % 4 == 1) { /* pod to Service */
        r->svc_port = r->proto == 17 ? 53 : 80;
        r->svc_port_name = r->proto == 17 ? "kube-system/kube-dns:dns" : "backend/orders-api:http";
        r->cluster_ip[0] = 10, r->cluster_ip[1] = 96, r->cluster_ip[3] = 10;
    }
    if (f % 3 == 0) { /* a NetworkPolicy let it in */
        r->in_policy = "allow-frontend-to-backend", r->in_policy_ns = d->ns;
        r->in_policy_type = 1, r->in_rule = "ingress-rule-0", r->in_action = 1;
    }
}

/* The decode handler's checksum term for a record, from the encoder's side. */
static uint64_t record_sum(const struct fv_agent_rec *r)
{
    uint64_t sl = strlen(r->src_pod), dl = strlen(r->dst_pod);

    return r->octets_delta + (sl << 32 | dl << 40) + (uint8_t)r->src_pod[0] +
           (uint8_t)r->dst_pod[0] + (r->ipv6 ? FV_TMPL_AGENT_V6 : FV_TMPL_AGENT_V4);
}

static void emit(struct bench *b, int node, const struct fv_agent_rec *r)
{
    struct node *n = &b->nodes[node];

    for (int k = 0; k < 2; k++)
        packer_add(&n->pk[k], &b->streams[k], n, node, r);
    n->records++;
    b->records++;
    b->ipv6 += r->ipv6;
    b->sum += record_sum(r);
}

/* One flow report: one record, or two for an inter-node flow (each node
 * knows only its own pod, as in the agent). */
static void add_flow(struct bench *b, uint64_t f)
{
    const struct pod *s = &b->pods[rnd(b) % (NODES * PODS_PER_NODE)];
    const struct pod *d = &b->pods[rnd(b) % (NODES * PODS_PER_NODE)];
    struct fv_agent_rec r;

    make_record(b, f, s, d, &r);
    r.src_node = b->nodes[s->node].name;
    if (s->node == d->node) {
        r.flow_type = 1;
        r.dst_node = b->nodes[d->node].name;
        emit(b, s->node, &r);
        return;
    }
    r.flow_type = 2;
    r.dst_pod = r.dst_ns = "";
    emit(b, s->node, &r);
    r.src_pod = r.src_ns = r.src_node = "";
    r.dst_pod = d->name, r.dst_ns = d->ns, r.dst_node = b->nodes[d->node].name;
    emit(b, d->node, &r);
}

static struct bench *bench_new(const char *label, uint64_t nrec)
{
    struct bench *b = calloc(1, sizeof(*b));

    if (b == NULL)
        die("out of memory");
    b->label = label;
    b->streams[0] = (struct stream){.name = "udp-1400", .mtu = UDP_MTU};
    b->streams[1] = (struct stream){.name = "tcp-64k", .mtu = TCP_MTU};
    build_cluster(b);
    for (uint64_t f = 0; b->records < nrec; f++)
        add_flow(b, f);
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < NODES; i++)
            packer_flush(&b->nodes[i].pk[k], &b->streams[k], &b->nodes[i], i);
    return b;
}

static void bench_free(struct bench *b)
{
    if (b == NULL)
        return;
    for (int k = 0; k < 2; k++) {
        free(b->streams[k].buf);
        free(b->streams[k].msgs);
    }
    free(b);
}

/* ---- Decoding ---- */

struct decode_ctx {
    uint64_t records;
    uint64_t sum; /* checksum of what the handler looked at */
    struct fv_sbuf json;
    uint64_t json_bytes; /* JSON produced */
};

static int on_record_decode(void *arg, const struct fv_ipfix_msg *msg,
                            const struct fv_ipfix_rec *rec, const struct fv_ipfix_value *values)
{
    struct decode_ctx *d = arg;
    const struct fv_ipfix_value *sp = &values[FV_AGENT_SRC_POD], *dp = &values[FV_AGENT_DST_POD];
    (void)msg;

    d->records++;
    d->sum += fv_ipfix_value_uint(&values[FV_AGENT_OCTETS_DELTA]);
    d->sum += (uint64_t)sp->len << 32 | (uint64_t)dp->len << 40;
    d->sum += (sp->len ? sp->p[0] : 0u) + (dp->len ? dp->p[0] : 0u) + rec->tmpl->id;
    return 0;
}

static int on_record_json(void *arg, const struct fv_ipfix_msg *msg, const struct fv_ipfix_rec *rec,
                          const struct fv_ipfix_value *values)
{
    struct decode_ctx *d = arg;
    (void)msg;

    d->records++;
    if (fv_ipfix_fmt_json_record(&d->json, rec, values) < 0)
        die("JSON formatting failed");
    fv_sbuf_putc(&d->json, '\n');
    if (d->json.len >= JSON_FLUSH_AT) {
        d->json_bytes += d->json.len;
        d->sum += (uint8_t)d->json.p[d->json.len / 2];
        fv_sbuf_reset(&d->json);
    }
    return 0;
}

/* Decodes the data messages once; returns the number of malformed ones.
 * Not inlined: callgrind collects by its name. */
__attribute__((noinline)) static uint64_t
decode_pass(const struct stream *s, struct fv_ipfix_session *sess, const struct fv_ipfix_handler *h)
{
    uint64_t bad = 0;

    for (size_t m = NODES; m < s->nmsgs; m++) {
        const struct msg_ref *r = &s->msgs[m];
        if (fv_ipfix_session_decode(&sess[r->exporter], s->buf + r->off, r->len, 1000, h) < 0)
            bad++;
    }
    return bad;
}

/* The same, under the name callgrind collects for the JSON case. */
__attribute__((noinline)) static uint64_t
json_pass(const struct stream *s, struct fv_ipfix_session *sess, const struct fv_ipfix_handler *h)
{
    return decode_pass(s, sess, h);
}

/* Numbers pass p's messages as if passes 0..p-1 had come before. */
static void renumber(struct stream *s, const struct bench *b, uint64_t pass)
{
    for (size_t m = NODES; m < s->nmsgs; m++) {
        const struct msg_ref *r = &s->msgs[m];
        uint32_t seq = r->seq + (uint32_t)(pass * b->nodes[r->exporter].records);
        fv_store_be32(s->buf + r->off + 8, seq);
    }
}

static uint64_t cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Anything but a clean, complete stream in the sessions' counters. */
static uint64_t session_problems(struct fv_ipfix_session *sess)
{
    uint64_t bad = 0;

    for (int i = 0; i < NODES; i++)
        for (uint32_t k = 0; k < sess[i].domain_count; k++) {
            const struct fv_ipfix_domain_stats *st = &sess[i].domains[k].stats;
            bad += st->lost + st->reordered + st->malformed + st->missing_template;
        }
    return bad;
}

/* One repetition: fresh sessions, templates, then `passes` timed passes.
 * Returns CPU nanoseconds; dies when the records are not what was sent. */
static uint64_t run_rep(struct bench *b, struct stream *s, bool json, uint64_t passes,
                        struct decode_ctx *d)
{
    struct fv_ipfix_session sess[NODES];
    struct fv_ipfix_handler h = {json ? on_record_json : on_record_decode, NULL, d};
    uint64_t t = 0, bad = 0, sum0 = d->sum, rec0 = d->records;

    for (int i = 0; i < NODES; i++) {
        fv_ipfix_session_init(&sess[i], FV_IPFIX_UDP_TEMPLATE_LIFETIME_S);
        const struct msg_ref *r = &s->msgs[i];
        bad += fv_ipfix_session_decode(&sess[r->exporter], s->buf + r->off, r->len, 1000, &h) < 0;
    }
    /* Renumbering right after a pass, not right before the next, keeps it
     * from warming the cache for the cold stream. */
    renumber(s, b, 0);
    for (uint64_t p = 0; p < passes; p++) {
        uint64_t t0 = cpu_ns();
        bad += json ? json_pass(s, sess, &h) : decode_pass(s, sess, &h);
        t += cpu_ns() - t0;
        renumber(s, b, p + 1);
    }
    bad += session_problems(sess);
    if (!json && d->sum - sum0 != passes * b->sum)
        bad++;
    if (bad || d->records - rec0 != passes * b->records) {
        fprintf(stderr,
                "bench_decode: %s %s: decoded %llu of %llu records, %llu problems (loss, "
                "reordering, malformed messages, missing templates or wrong values)\n",
                s->name, b->label, (unsigned long long)(d->records - rec0),
                (unsigned long long)(passes * b->records), (unsigned long long)bad);
        exit(1);
    }
    for (int i = 0; i < NODES; i++)
        fv_ipfix_session_fini(&sess[i]);
    return t;
}

/* ---- Cases and reporting ---- */

struct result {
    double best, median; /* ns per record */
    double json_bytes;   /* JSON bytes per record */
};

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void run_case(struct bench *b, int k, bool json, int reps, uint64_t passes,
                     struct result *out)
{
    double *t = calloc((size_t)reps, sizeof(*t));
    struct decode_ctx d = {0};

    if (t == NULL)
        die("out of memory");
    fv_sbuf_init(&d.json, 16u << 20);
    for (int i = 0; i < reps; i++) {
        uint64_t ns = run_rep(b, &b->streams[k], json, passes, &d);
        t[i] = (double)ns / (double)(passes * b->records);
    }
    qsort(t, (size_t)reps, sizeof(*t), cmp_double);
    out->best = t[0];
    out->median = t[reps / 2];
    out->json_bytes = (double)(d.json_bytes + d.json.len) / (double)(d.records ? d.records : 1);
    fv_sbuf_fini(&d.json);
    free(t);
}

static void print_result(const char *kind, const struct bench *b, int k, uint64_t passes,
                         const struct result *r)
{
    const struct stream *s = &b->streams[k];

    printf("  %-6s %-8s %-4s %6.1f MiB %9.1f %9.1f %9.2f %10.2f %10.0fx\n", kind, s->name, b->label,
           (double)s->len / 1048576.0, r->best, r->median, 1e3 / r->best, 1e3 / r->median,
           GO_IPFIX_NS_PER_RECORD / r->median);
    printf("RESULT case=%s stream=%s data=%s records=%llu passes=%llu best_ns_per_record=%.1f "
           "median_ns_per_record=%.1f best_records_per_s=%.0f median_records_per_s=%.0f\n",
           kind, s->name, b->label, (unsigned long long)b->records, (unsigned long long)passes,
           r->best, r->median, 1e9 / r->best, 1e9 / r->median);
}

struct opts {
    unsigned long records, cold_records, passes;
    int reps, cpu;
    bool decode, json;
    bool streams[2]; /* udp-1400, tcp-64k */
};

static void usage(FILE *out)
{
    fprintf(out, "usage: bench_decode [--records N] [--cold-records N] [--reps N] [--passes N]\n"
                 "                    [--case all|decode|json] [--stream all|udp|tcp] [--cpu N]\n"
                 "  --records N       records in the cache-hot stream (default 4000)\n"
                 "  --cold-records N  records in the DRAM-sized stream, 0 = skip (default 200000)\n"
                 "  --reps N          repetitions per case; best and median are printed "
                 "(default 9)\n"
                 "  --passes N        passes over the stream per repetition (default: enough\n"
                 "                    for 400000 records when decoding, 50000 for JSON)\n"
                 "  --cpu N           core to pin to (default: the one it starts on)\n");
}

static void parse_args(int argc, char **argv, struct opts *o)
{
    static const struct option longopts[] = {
        {"records", required_argument, NULL, 'n'},
        {"cold-records", required_argument, NULL, 'C'},
        {"reps", required_argument, NULL, 'r'},
        {"passes", required_argument, NULL, 'P'},
        {"case", required_argument, NULL, 'c'},
        {"stream", required_argument, NULL, 's'},
        {"cpu", required_argument, NULL, 'p'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int opt;

    while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'n':
            o->records = strtoul(optarg, NULL, 10);
            break;
        case 'C':
            o->cold_records = strtoul(optarg, NULL, 10);
            break;
        case 'r':
            o->reps = atoi(optarg);
            break;
        case 'P':
            o->passes = strtoul(optarg, NULL, 10);
            break;
        case 'p':
            o->cpu = atoi(optarg);
            break;
        case 'c':
            o->decode = strcmp(optarg, "json") != 0;
            o->json = strcmp(optarg, "decode") != 0;
            break;
        case 's':
            o->streams[0] = strcmp(optarg, "tcp") != 0;
            o->streams[1] = strcmp(optarg, "udp") != 0;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            exit(2);
        }
    }
    if (o->records < 100 || o->records > 10000000 || o->cold_records > 10000000 || o->reps < 1 ||
        o->reps > 1000 || o->passes > 100000) {
        usage(stderr);
        exit(2);
    }
}

/* One core, so the figure is per core and not disturbed by migrations.
 * By default the one the scheduler chose, likely the least busy. */
static int pin(int cpu)
{
    cpu_set_t set;

    if (cpu < 0)
        cpu = sched_getcpu();
    if (cpu < 0)
        cpu = 0;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(0, sizeof(set), &set) < 0)
        printf("  (could not pin to cpu %d: running unpinned)\n", cpu);
    return cpu;
}

static void describe(const struct bench *b)
{
    printf("  %-4s stream: %llu agent records from %d exporters, %.1f%% IPv6\n", b->label,
           (unsigned long long)b->records, NODES, 100.0 * (double)b->ipv6 / (double)b->records);
    for (int k = 0; k < 2; k++) {
        const struct stream *s = &b->streams[k];
        size_t n = s->nmsgs - NODES;
        printf("    %-8s %7zu data messages, %5.0f bytes/message, %5.1f records/message, "
               "%5.1f bytes/record\n",
               s->name, n, (double)(s->len - s->msgs[NODES].off) / (double)n,
               (double)b->records / (double)n,
               (double)(s->len - s->msgs[NODES].off) / (double)b->records);
    }
}

static uint64_t passes_for(const struct opts *o, const struct bench *b, uint64_t per_rep)
{
    if (o->passes)
        return o->passes;
    return (per_rep + b->records - 1) / b->records;
}

static void print_summary(const struct opts *o, const struct result *hot_udp,
                          const struct result *json_udp)
{
    if (o->decode && o->streams[0])
        printf("  target: decode >= %.0f M records/s on one core (udp-1400 hot, median): "
               "%.2f M/s, %s\n",
               TARGET_RECORDS_PER_S / 1e6, 1e3 / hot_udp->median,
               1e9 / hot_udp->median >= TARGET_RECORDS_PER_S ? "met" : "NOT MET");
    if (o->json && o->streams[0])
        printf("  json: %.0f bytes/record; %.2f M records/s on one core (udp-1400 hot, median)\n",
               json_udp->json_bytes, 1e3 / json_udp->median);
    printf("  vs go-ipfix = %.0f ns / flowvis median (go-ipfix BenchmarkCollectingProcess_"
           "DecodeDataRecord,\n    vmware/go-ipfix#395, one record per message, i9-9980HK)\n",
           GO_IPFIX_NS_PER_RECORD);
    printf("  checksums: every pass decoded exactly the records that were encoded\n");
}

int main(int argc, char **argv)
{
    struct opts o = {.records = 4000,
                     .cold_records = 200000,
                     .reps = 9,
                     .cpu = -1,
                     .decode = true,
                     .json = true,
                     .streams = {true, true}};
    struct result dec[2][2] = {{{0}}}, js[2] = {{0}};
    struct bench *sets[2] = {NULL, NULL}; /* hot, cold */

    parse_args(argc, argv, &o);
    printf("bench_decode: IPFIX decoding of agent records, one core\n");
    sets[0] = bench_new("hot", o.records);
    describe(sets[0]);
    if (o.cold_records && o.decode) {
        sets[1] = bench_new("cold", o.cold_records);
        describe(sets[1]);
    }
    printf("  pinned to cpu %d, %d repetitions per case, CPU time of this thread\n\n", pin(o.cpu),
           o.reps);
    printf("  %-6s %-8s %-4s %10s %9s %9s %9s %10s %11s\n", "case", "stream", "data", "size",
           "best ns", "median ns", "best M/s", "median M/s", "vs go-ipfix");
    for (int c = 0; c < 2 && o.decode; c++)
        for (int k = 0; k < 2 && sets[c]; k++) {
            if (!o.streams[k])
                continue;
            uint64_t passes = passes_for(&o, sets[c], DECODE_RECORDS_PER_REP);
            run_case(sets[c], k, false, o.reps, passes, &dec[c][k]);
            print_result("decode", sets[c], k, passes, &dec[c][k]);
        }
    for (int k = 0; k < 2 && o.json; k++) {
        if (!o.streams[k])
            continue;
        uint64_t passes = passes_for(&o, sets[0], JSON_RECORDS_PER_REP);
        run_case(sets[0], k, true, o.reps, passes, &js[k]);
        print_result("json", sets[0], k, passes, &js[k]);
    }
    printf("\n");
    print_summary(&o, &dec[0][0], &js[0]);
    bench_free(sets[0]);
    bench_free(sets[1]);
    return 0;
}
