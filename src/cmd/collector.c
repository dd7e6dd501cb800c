/*
 * collector.c - `flowvis collector`: a standalone IPFIX collector that
 * decodes any IPFIX stream and prints its records, for debugging and
 * interoperability checks.
 *
 * One thread, one libevent loop.  Records are formatted into one output
 * buffer that is written when it grows past FLUSH_AT and on a short timer,
 * so a pipe reader sees records within OUTPUT_FLUSH_MS.  Per-exporter
 * counters live in the codec's sessions; when a session ends its counters
 * are copied into a summary list printed at exit.
 */
#include <errno.h>
#include <event2/event.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/bytes.h"
#include "base/clock.h"
#include "base/err.h"
#include "base/log.h"
#include "base/sbuf.h"
#include "cmd/cmd.h"
#include "ipfix/fmt.h"
#include "ipfix/transport.h"

#define FLUSH_AT (256 * 1024)
#define OUTPUT_FLUSH_MS 100
#define OUTPUT_MAX (64u << 20)

enum format { FMT_JSON, FMT_TEXT, FMT_NONE };

/* Counters of one finished (or still open at exit) session and domain. */
struct summary {
    char exporter[64];
    enum fv_proto proto;
    uint32_t domain;
    struct fv_ipfix_domain_stats stats;
    struct summary *next;
};

struct collector {
    enum format format;
    struct fv_sbuf out;
    int out_fd;
    bool out_failed;
    struct fv_ipfix_listener *listener;
    struct event_base *base;
    struct summary *summaries; /* finished sessions, newest first */
    uint64_t records;          /* records printed */
    uint64_t malformed;        /* malformed messages */
    uint64_t stats_interval_s; /* live summary period, 0 = off */
    uint64_t last_records;     /* records at the previous live summary */
    uint64_t started_ms;
};

/* Per-peer state kept in peer->user. */
struct peer_state {
    struct fv_ratelimit rl; /* malformed-message log lines */
};

static void output_flush(struct collector *c)
{
    size_t off = 0;

    while (off < c->out.len && !c->out_failed) {
        ssize_t n = write(c->out_fd, c->out.p + off, c->out.len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            /* The reader went away: stop printing, keep collecting counters. */
            FV_LOG_ERROR("cannot write records: %s", strerror(errno));
            c->out_failed = true;
            break;
        }
        off += (size_t)n;
    }
    fv_sbuf_reset(&c->out);
}

static int on_record_json(void *ctx, const struct fv_ipfix_msg *msg, const struct fv_ipfix_rec *rec,
                          const struct fv_ipfix_value *values, const char *exporter, const char *ts)
{
    struct collector *c = ctx;

    fv_sbuf_puts(&c->out, "{\"@timestamp\":\"");
    fv_sbuf_puts(&c->out, ts);
    fv_sbuf_puts(&c->out, "\",\"exporterAddress\":\"");
    fv_sbuf_puts(&c->out, exporter);
    fv_sbuf_puts(&c->out, "\",\"observationDomainId\":");
    fv_sbuf_put_u64(&c->out, msg->domain);
    fv_sbuf_puts(&c->out, ",\"templateId\":");
    fv_sbuf_put_u64(&c->out, rec->tmpl->id);
    fv_sbuf_puts(&c->out, ",\"ipfix\":");
    fv_ipfix_fmt_json_record(&c->out, rec, values);
    fv_sbuf_append(&c->out, "}\n", 2);
    return 0;
}

static int on_record_text(void *ctx, const struct fv_ipfix_msg *msg, const struct fv_ipfix_rec *rec,
                          const struct fv_ipfix_value *values)
{
    struct collector *c = ctx;
    const struct fv_ipfix_template *t = rec->tmpl;
    (void)msg;

    fv_sbuf_printf(&c->out, "  record template=%u length=%u\n", t->id, rec->len);
    for (uint16_t i = 0; i < t->field_count; i++) {
        size_t mark = c->out.len;
        fv_sbuf_puts(&c->out, "    ");
        fv_ipfix_fmt_name(&c->out, &t->fields[i]);
        while (c->out.len - mark < 44)
            fv_sbuf_putc(&c->out, ' ');
        fv_ipfix_fmt_text_value(&c->out, &t->fields[i], &values[i]);
        fv_sbuf_putc(&c->out, '\n');
    }
    return 0;
}

/* What every record of one message shares travels with the handler. */
struct decode_ctx {
    struct collector *c;
    const char *exporter;
    char ts[24]; /* the message's export time, formatted once per message */
};

static int on_record(void *ctx, const struct fv_ipfix_msg *msg, const struct fv_ipfix_rec *rec,
                     const struct fv_ipfix_value *values)
{
    struct decode_ctx *d = ctx;

    d->c->records++;
    if (d->c->format == FMT_JSON)
        return on_record_json(d->c, msg, rec, values, d->exporter, d->ts);
    if (d->c->format == FMT_TEXT)
        return on_record_text(d->c, msg, rec, values);
    return 0;
}

static void on_template(void *ctx, const struct fv_ipfix_msg *msg,
                        const struct fv_ipfix_template *t, bool withdrawn)
{
    struct decode_ctx *d = ctx;
    struct fv_sbuf *o = &d->c->out;
    (void)msg;

    if (d->c->format != FMT_TEXT)
        return;
    fv_sbuf_printf(o, "  %s%stemplate id=%u fields=%u", withdrawn ? "withdrawn " : "",
                   t->scope_count ? "options " : "", t->id, t->field_count);
    if (t->scope_count)
        fv_sbuf_printf(o, " scope=%u", t->scope_count);
    fv_sbuf_putc(o, '\n');
    for (uint16_t i = 0; i < t->field_count && !withdrawn; i++) {
        fv_sbuf_puts(o, "    ");
        fv_ipfix_fmt_name(o, &t->fields[i]);
        fv_sbuf_printf(o, " (pen=%u id=%u length=%u%s)\n", t->fields[i].pen, t->fields[i].id,
                       t->fields[i].length, t->fields[i].length == FV_IE_VARLEN ? " variable" : "");
    }
}

static void on_message(void *ctx, struct fv_ipfix_peer *peer, const uint8_t *buf, size_t len)
{
    struct collector *c = ctx;
    struct peer_state *ps = peer->user;
    struct decode_ctx d = {c, peer->ip, "1970-01-01T00:00:00Z"};
    struct fv_ipfix_handler h = {on_record, on_template, &d};
    uint64_t now = fv_clock_mono_ms(), suppressed;
    int rc;

    if (len >= FV_IPFIX_HEADER_LEN)
        fv_clock_rfc3339(fv_load_be32(buf + 4), d.ts);
    if (c->format == FMT_TEXT && len >= FV_IPFIX_HEADER_LEN) {
        struct fv_ipfix_msg m;
        if (fv_ipfix_msg_open(buf, len, &m) == 0) {
            char ts[24];
            fv_clock_rfc3339(m.export_time, ts);
            fv_sbuf_printf(&c->out,
                           "message exporter=%s domain=%u seq=%u export_time=%s length=%u\n",
                           peer->name, m.domain, m.seq, ts, m.length);
        }
    }
    rc = fv_ipfix_session_decode(&peer->session, buf, len, now, &h);
    if (rc < 0) {
        c->malformed++;
        if (ps && fv_ratelimit_allow(&ps->rl, now, &suppressed))
            FV_LOG_WARN("malformed message exporter=%s domain=%u length=%zu: %s "
                        "(%llu more suppressed)",
                        peer->name, peer->session.last_error_domain, len, fv_strerror(rc),
                        (unsigned long long)suppressed);
        if (c->format == FMT_TEXT)
            fv_sbuf_printf(&c->out, "  malformed: %s\n", fv_strerror(rc));
    }
    if (c->out.len >= FLUSH_AT)
        output_flush(c);
}

static void on_peer_open(void *ctx, struct fv_ipfix_peer *peer)
{
    struct peer_state *ps = calloc(1, sizeof(*ps));
    (void)ctx;

    if (ps)
        ps->rl.interval_ms = 60000; /* one line per exporter per minute */
    peer->user = ps;
    FV_LOG_INFO("exporter connected exporter=%s transport=%s", peer->name,
                fv_proto_name(peer->proto));
}

static void on_peer_close(void *ctx, struct fv_ipfix_peer *peer, int reason)
{
    struct collector *c = ctx;

    for (uint32_t i = 0; i < peer->session.domain_count; i++) {
        struct summary *s = calloc(1, sizeof(*s));
        if (s == NULL)
            break;
        snprintf(s->exporter, sizeof(s->exporter), "%s", peer->name);
        s->proto = peer->proto;
        s->domain = peer->session.domains[i].id;
        s->stats = peer->session.domains[i].stats;
        s->next = c->summaries;
        c->summaries = s;
    }
    if (reason < 0)
        FV_LOG_WARN("exporter session ended exporter=%s: %s", peer->name, fv_strerror(reason));
    else if (peer->proto != FV_PROTO_UDP)
        FV_LOG_INFO("exporter disconnected exporter=%s", peer->name);
    free(peer->user);
    peer->user = NULL;
}

static void print_summary(const struct collector *c, const struct fv_ipfix_listener_stats *ls)
{
    struct fv_ipfix_domain_stats tot = {0};
    unsigned exporters = 0;

    fprintf(stderr, "flowvis collector summary\n");
    for (const struct summary *s = c->summaries; s; s = s->next) {
        exporters++;
        fprintf(stderr,
                "  exporter=%s transport=%s domain=%u messages=%llu records=%llu templates=%llu "
                "malformed=%llu missing_template_sets=%llu lost=%llu reordered=%llu\n",
                s->exporter, fv_proto_name(s->proto), s->domain,
                (unsigned long long)s->stats.messages, (unsigned long long)s->stats.records,
                (unsigned long long)s->stats.templates, (unsigned long long)s->stats.malformed,
                (unsigned long long)s->stats.missing_template, (unsigned long long)s->stats.lost,
                (unsigned long long)s->stats.reordered);
        tot.messages += s->stats.messages;
        tot.records += s->stats.records;
        tot.templates += s->stats.templates;
        tot.malformed += s->stats.malformed;
        tot.lost += s->stats.lost;
        tot.missing_template += s->stats.missing_template;
    }
    fprintf(stderr,
            "  total exporters=%u messages=%llu records=%llu templates=%llu malformed=%llu "
            "missing_template_sets=%llu lost=%llu udp_kernel_drops=%llu udp_rcvbuf=%d "
            "framing_errors=%llu tls_failures=%llu\n",
            exporters, (unsigned long long)tot.messages, (unsigned long long)tot.records,
            (unsigned long long)tot.templates, (unsigned long long)tot.malformed,
            (unsigned long long)tot.missing_template, (unsigned long long)tot.lost,
            (unsigned long long)ls->udp_kernel_drops, ls->udp_rcvbuf,
            (unsigned long long)ls->framing_errors, (unsigned long long)ls->tls_failures);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    struct collector *c = arg;
    (void)what;

    FV_LOG_INFO("signal %d: shutting down", (int)sig);
    event_base_loopbreak(c->base);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    struct collector *c = arg;
    uint64_t now = fv_clock_mono_ms();
    (void)fd;
    (void)what;

    if (c->out.len)
        output_flush(c);
    if (c->stats_interval_s && now - c->started_ms >= c->stats_interval_s * 1000u) {
        struct fv_ipfix_listener_stats ls;
        fv_ipfix_listener_stats(c->listener, &ls);
        fprintf(stderr, "collector: records=%llu (+%llu/s) malformed=%llu udp_kernel_drops=%llu\n",
                (unsigned long long)c->records,
                (unsigned long long)((c->records - c->last_records) / c->stats_interval_s),
                (unsigned long long)c->malformed, (unsigned long long)ls.udp_kernel_drops);
        c->last_records = c->records;
        c->started_ms = now;
    }
}

static void usage(FILE *out)
{
    fprintf(
        out,
        "usage: flowvis collector [options]\n\n"
        "Receives IPFIX from any exporter and prints every data record.\n\n"
        "options:\n"
        "  -a, --address HOST[:PORT][:PROTO]  where to listen (default 127.0.0.1:4739:udp;\n"
        "                                     IPv6 hosts in brackets, e.g. [::]:4739)\n"
        "  -t, --transport udp|tcp|tls        transport (overrides PROTO of --address)\n"
        "  -f, --format json|text|none        json: one JSON object per record (default when\n"
        "                                     stdout is not a terminal); text: readable blocks\n"
        "                                     per message (default on a terminal); none: count\n"
        "                                     only\n"
        "      --tls-cert FILE                server certificate (PEM), required for tls\n"
        "      --tls-key FILE                 server private key (PEM), required for tls\n"
        "      --tls-ca FILE                  CA (PEM): require client certificates signed by\n"
        "                                     it (mutual TLS)\n"
        "      --udp-rcvbuf BYTES             UDP socket buffer to request (default 33554432)\n"
        "      --template-lifetime SECONDS    UDP template lifetime (default 1800)\n"
        "      --stats-interval SECONDS       print a live summary on stderr every N seconds\n"
        "      --log-level error|warn|info|debug  (default info)\n"
        "  -h, --help                         this help\n\n"
        "JSON lines look like\n"
        "  {\"@timestamp\":\"2026-01-02T03:04:05Z\",\"exporterAddress\":\"10.0.0.1\",\n"
        "   \"observationDomainId\":1,\"templateId\":256,\"ipfix\":{\"octetDeltaCount\":42,...}}\n"
        "with elements named as in the IANA, RFC 5103 reverse and Antrea registries;\n"
        "unknown elements appear as ie<pen>_<id> with a hex value.\n\n"
        "On SIGINT or SIGTERM it flushes its output, prints a summary per exporter on\n"
        "stderr (messages, records, templates, malformed messages, records lost according\n"
        "to sequence numbers, kernel UDP drops) and exits 0.\n");
}

static int parse_args(int argc, char **argv, struct collector *c, struct fv_ipfix_listener_cfg *cfg)
{
    static const struct option longopts[] = {
        {"address", required_argument, NULL, 'a'},
        {"transport", required_argument, NULL, 't'},
        {"format", required_argument, NULL, 'f'},
        {"tls-cert", required_argument, NULL, 1},
        {"tls-key", required_argument, NULL, 2},
        {"tls-ca", required_argument, NULL, 3},
        {"udp-rcvbuf", required_argument, NULL, 4},
        {"template-lifetime", required_argument, NULL, 5},
        {"stats-interval", required_argument, NULL, 6},
        {"log-level", required_argument, NULL, 7},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *address = "127.0.0.1:4739", *transport = NULL, *format = NULL;
    unsigned long long v;
    int opt;

    while ((opt = getopt_long(argc, argv, "a:t:f:h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'a':
            address = optarg;
            break;
        case 't':
            transport = optarg;
            break;
        case 'f':
            format = optarg;
            break;
        case 1:
            cfg->tls.cert = optarg;
            break;
        case 2:
            cfg->tls.key = optarg;
            break;
        case 3:
            cfg->tls.ca = optarg;
            break;
        case 4:
            if (fv_cmd_parse_u64("--udp-rcvbuf", optarg, 4096, 1u << 30, &v) < 0)
                return 2;
            cfg->udp_rcvbuf = (int)v;
            break;
        case 5:
            if (fv_cmd_parse_u64("--template-lifetime", optarg, 1, 86400 * 7, &v) < 0)
                return 2;
            cfg->udp_template_lifetime_s = (uint32_t)v;
            break;
        case 6:
            if (fv_cmd_parse_u64("--stats-interval", optarg, 1, 86400, &v) < 0)
                return 2;
            c->stats_interval_s = v;
            break;
        case 7:
            if (fv_log_level_parse(optarg, &fv_log_threshold) < 0) {
                fprintf(stderr,
                        "flowvis collector: --log-level: '%s' is not one of "
                        "error, warn, info, debug\n",
                        optarg);
                return 2;
            }
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "flowvis collector: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    if (fv_cmd_parse_addr("collector", "--address", address, transport, FV_PROTO_UDP, &cfg->addr) <
        0)
        return 2;
    if (format == NULL)
        c->format = isatty(STDOUT_FILENO) ? FMT_TEXT : FMT_JSON;
    else if (strcmp(format, "json") == 0)
        c->format = FMT_JSON;
    else if (strcmp(format, "text") == 0)
        c->format = FMT_TEXT;
    else if (strcmp(format, "none") == 0)
        c->format = FMT_NONE;
    else {
        fprintf(stderr, "flowvis collector: --format: '%s' is not json, text or none\n", format);
        return 2;
    }
    if (cfg->addr.proto == FV_PROTO_TLS && (cfg->tls.cert == NULL || cfg->tls.key == NULL)) {
        fprintf(stderr, "flowvis collector: the tls transport needs --tls-cert and --tls-key\n");
        return 2;
    }
    return -1;
}

int fv_cmd_collector(int argc, char **argv)
{
    struct collector c = {0};
    struct fv_ipfix_listener_cfg cfg = {0};
    struct fv_ipfix_listener_ops ops = {on_peer_open, on_message, on_peer_close};
    struct event *sigint = NULL, *sigterm = NULL, *tick = NULL;
    struct timeval tv = {0, OUTPUT_FLUSH_MS * 1000};
    int rc, status = 1;

    rc = parse_args(argc, argv, &c, &cfg);
    if (rc >= 0)
        return rc;
    signal(SIGPIPE, SIG_IGN);
    fv_sbuf_init(&c.out, OUTPUT_MAX);
    c.out_fd = STDOUT_FILENO;
    c.started_ms = fv_clock_mono_ms();
    c.base = event_base_new();
    if (c.base == NULL)
        goto out;
    rc = fv_ipfix_listener_new(c.base, &cfg, &ops, &c, &c.listener);
    if (rc < 0) {
        const char *detail = fv_ipfix_transport_error();
        fprintf(stderr, "flowvis collector: %s\n", detail[0] ? detail : fv_strerror(rc));
        goto out;
    }
    FV_LOG_INFO("listening address=%s:%u transport=%s", cfg.addr.host,
                fv_ipfix_listener_port(c.listener), fv_proto_name(cfg.addr.proto));
    sigint = evsignal_new(c.base, SIGINT, on_signal, &c);
    sigterm = evsignal_new(c.base, SIGTERM, on_signal, &c);
    tick = event_new(c.base, -1, EV_PERSIST, on_tick, &c);
    if (!sigint || !sigterm || !tick)
        goto out;
    evsignal_add(sigint, NULL);
    evsignal_add(sigterm, NULL);
    event_add(tick, &tv);
    event_base_dispatch(c.base);
    status = 0;
out:
    if (c.listener) {
        struct fv_ipfix_listener *l = c.listener;
        struct fv_ipfix_listener_stats ls;
        fv_ipfix_listener_stats(l, &ls);
        /* Close the sessions first so their counters reach the summary. */
        fv_ipfix_listener_free(l);
        c.listener = NULL;
        output_flush(&c);
        print_summary(&c, &ls);
    }
    if (tick)
        event_free(tick);
    if (sigint)
        event_free(sigint);
    if (sigterm)
        event_free(sigterm);
    if (c.base)
        event_base_free(c.base);
    while (c.summaries) {
        struct summary *s = c.summaries;
        c.summaries = s->next;
        free(s);
    }
    fv_sbuf_fini(&c.out);
    return status;
}
