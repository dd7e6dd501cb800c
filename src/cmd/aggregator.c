/*
 * aggregator.c - `flowvis aggregator`: the command line and the config
 * table of the aggregator.  The table is the single source of its keys:
 * it parses and validates the file, and prints the reference for --help
 * and docs (`flowvis aggregator --print-config markdown`).
 */
#include "aggregator/aggregator.h"

#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/addr.h"
#include "base/log.h"
#include "cmd/cmd.h"
#include "cmd/ui_assets.h"
#include "config/config.h"

#define S struct fv_agg_cfg
#define OFF(field, ctype) FV_CFG_OFFSET(S, field, ctype)

static const char *const log_levels[] = {"error", "warn", "info", "debug", NULL};
static const char *const formats[] = {"IPFIX", "JSON", NULL};

static int check_address(const char *value, char *why, size_t n)
{
    struct fv_addr a;

    if (value[0] == '\0' || fv_addr_parse(value, 4739, FV_PROTO_TCP, &a) == 0)
        return 0;
    snprintf(why, n, "not HOST[:PORT][:PROTO] with PROTO udp, tcp or tls");
    return -1;
}

static int check_transports(const char *value, char *why, size_t n)
{
    char list[64], *save = NULL;
    int count = 0;

    snprintf(list, sizeof(list), "%s", value);
    for (char *t = strtok_r(list, ", ", &save); t; t = strtok_r(NULL, ", ", &save)) {
        enum fv_proto p;
        if (fv_proto_parse(t, &p) < 0) {
            snprintf(why, n, "'%s' is not tls, tcp or udp", t);
            return -1;
        }
        count++;
    }
    if (count == 0) {
        snprintf(why, n, "name at least one of tls, tcp, udp");
        return -1;
    }
    return 0;
}

/* http://, https:// or the reference's tcp:// (mapped to the HTTP port). */
/* A Namespace name: a DNS label (RFC 1123), as Kubernetes requires. */
static int check_namespace(const char *v, char *why, size_t n)
{
    size_t len = strlen(v);

    if (len == 0 || len > 63) {
        snprintf(why, n, "a namespace name has 1 to 63 characters");
        return -1;
    }
    for (size_t i = 0; i < len; i++) {
        char c = v[i];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        if (!alnum && (c != '-' || i == 0 || i == len - 1)) {
            snprintf(why, n, "a namespace name is lowercase letters, digits and inner '-'");
            return -1;
        }
    }
    return 0;
}

static int check_ch_url(const char *value, char *why, size_t n)
{
    static const char *const schemes[] = {"http://", "https://", "tcp://"};

    for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++) {
        size_t len = strlen(schemes[i]);
        if (strncmp(value, schemes[i], len) == 0 && value[len] != '\0')
            return 0;
    }
    snprintf(why, n, "not http[s]://HOST[:PORT] (or tcp://HOST:PORT)");
    return -1;
}

static const struct fv_cfg_opt agg_opts[] = {
    {"listenAddress", FV_CFG_STRING, OFF(listen_address, char *), "0.0.0.0:4739", 0, 0, NULL,
     check_address, "Where the collecting process listens: HOST[:PORT] (IPv6 in brackets)."},
    {"aggregatorTransportProtocol", FV_CFG_STRING, OFF(transports, char *), "tls", 0, 0, NULL,
     check_transports,
     "tls, tcp or udp, or a list such as udp,tls (tcp and tls cannot share the port)."},
    {"flowAggregatorAddress", FV_CFG_STRING, OFF(aggregator_address, char *),
     "flow-aggregator.flow-aggregator.svc", 0, 0, NULL, NULL,
     "DNS name or IP the agents use to reach this aggregator: the generated server "
     "certificate's name."},
    {"activeFlowRecordTimeout", FV_CFG_DURATION, OFF(active_ms, uint64_t), "60s", 1000, 86400000,
     NULL, NULL, "An active flow is exported at least this often (when it has news)."},
    {"inactiveFlowRecordTimeout", FV_CFG_DURATION, OFF(inactive_ms, uint64_t), "90s", 1000,
     86400000, NULL, NULL, "A flow without records for this long is exported and forgotten."},
    {"correlationWait", FV_CFG_DURATION, OFF(corr_wait_ms, uint64_t), "0s", 0, 86400000, NULL, NULL,
     "How long one half of an inter-node flow waits for the other before it is exported "
     "alone; 0 = 2 x activeFlowRecordTimeout."},
    {"maxFlows", FV_CFG_U32, OFF(max_flows, uint32_t), "2000000", 1000, 500000000, NULL, NULL,
     "Flows held at most; beyond it the nearest to expiry are exported early and evicted."},
    {"recordContents.podLabels", FV_CFG_BOOL, OFF(pod_labels, bool), "false", 0, 0, NULL, NULL,
     "Add sourcePodLabels and destinationPodLabels (from the inventory) to every record."},
    {"tls.generate", FV_CFG_BOOL, OFF(tls_generate, bool), "true", 0, 0, NULL, NULL,
     "With tls and no tls.serverCert: generate a CA, a server and a client certificate in "
     "tls.dir (kept and reused)."},
    {"tls.dir", FV_CFG_STRING, OFF(tls_dir, char *), "/var/lib/flowvis/tls", 0, 0, NULL, NULL,
     "Directory of the generated TLS material; agents use its ca.crt, client.crt and "
     "client.key."},
    {"tls.caCert", FV_CFG_STRING, OFF(tls_ca, char *), NULL, 0, 0, NULL, NULL,
     "CA (PEM) that signed the agents' client certificates; with it, agents must present one."},
    {"tls.serverCert", FV_CFG_STRING, OFF(tls_cert, char *), NULL, 0, 0, NULL, NULL,
     "Server certificate (PEM) instead of generated material."},
    {"tls.serverKey", FV_CFG_STRING, OFF(tls_key, char *), NULL, 0, 0, NULL, NULL,
     "Server private key (PEM)."},
    {"apiServer.apiPort", FV_CFG_U32, OFF(api_port, uint32_t), "10348", 0, 65535, NULL, NULL,
     "Port of the HTTP API (/flowrecords, /recordmetrics, /metrics); 0 disables it."},
    {"apiServer.bindAddress", FV_CFG_STRING, OFF(api_bind, char *), "127.0.0.1", 0, 0, NULL, NULL,
     "Address of the HTTP API; anything but loopback needs tokenFile, tlsCert and tlsKey."},
    {"apiServer.tokenFile", FV_CFG_STRING, OFF(api_token_file, char *), NULL, 0, 0, NULL, NULL,
     "File holding the bearer token every API request must present."},
    {"apiServer.tlsCert", FV_CFG_STRING, OFF(api_tls_cert, char *), NULL, 0, 0, NULL, NULL,
     "Certificate (PEM) to serve the API over HTTPS."},
    {"apiServer.tlsKey", FV_CFG_STRING, OFF(api_tls_key, char *), NULL, 0, 0, NULL, NULL,
     "Private key (PEM) for apiServer.tlsCert."},
    {"flowCollector.enable", FV_CFG_BOOL, OFF(fc_enable, bool), "false", 0, 0, NULL, NULL,
     "Export aggregated records to an external IPFIX or JSON collector."},
    {"flowCollector.address", FV_CFG_STRING, OFF(fc_address, char *), "127.0.0.1:4740:tcp", 0, 0,
     NULL, check_address, "The collector: HOST[:PORT][:PROTO]; JSON goes over tcp or udp."},
    {"flowCollector.observationDomainID", FV_CFG_U32, OFF(fc_domain, uint32_t), "0", 0, 0, NULL,
     NULL, "Observation domain id of the IPFIX export."},
    {"flowCollector.recordFormat", FV_CFG_ENUM, OFF(fc_format, int), "IPFIX", 0, 0, formats, NULL,
     "IPFIX, or JSON (one {\"@timestamp\":...,\"ipfix\":{...}} object per line)."},
    {"flowCollector.udpMessageSize", FV_CFG_U32, OFF(fc_mtu, uint32_t), "1400", 576, 65000, NULL,
     NULL, "Largest IPFIX message over UDP, in bytes."},
    {"flowCollector.tls.caCert", FV_CFG_STRING, OFF(fc_ca, char *), NULL, 0, 0, NULL, NULL,
     "CA (PEM) that signed the IPFIX collector's certificate (PROTO tls); enables verification."},
    {"flowCollector.tls.clientCert", FV_CFG_STRING, OFF(fc_cert, char *), NULL, 0, 0, NULL, NULL,
     "Client certificate (PEM) presented to the IPFIX collector for mutual TLS."},
    {"flowCollector.tls.clientKey", FV_CFG_STRING, OFF(fc_key, char *), NULL, 0, 0, NULL, NULL,
     "Private key (PEM) of flowCollector.tls.clientCert."},
    {"inventory.file", FV_CFG_STRING, OFF(inventory_file, char *), NULL, 0, 0, NULL, NULL,
     "Kubernetes objects (kubectl get ... -o json): fills sides no agent reported, Pod "
     "labels and NetworkPolicy names the agents could not; re-read when it changes."},
    {"inventory.kubernetes", FV_CFG_BOOL, OFF(inventory_kube, bool), "false", 0, 0, NULL, NULL,
     "The same from the Kubernetes API (list and watch, every Pod), instead of inventory.file."},
    {"inventory.kubeconfig", FV_CFG_STRING, OFF(kubeconfig, char *), NULL, 0, 0, NULL, NULL,
     "Kubeconfig for inventory.kubernetes; empty: the Pod's service account."},
    {"workers", FV_CFG_U32, OFF(workers, uint32_t), "0", 0, 64, NULL, NULL,
     "Flow table shards, one thread each; 0 = one per CPU."},
    {"outputQueueSize", FV_CFG_U32, OFF(queue_records, uint32_t), "200000", 1000, 10000000, NULL,
     NULL, "Records each output keeps while its collector is unreachable."},
    {"clickHouse.enable", FV_CFG_BOOL, OFF(ch_enable, bool), "false", 0, 0, NULL, NULL,
     "Store every exported record in ClickHouse (table flows and its views; created if "
     "missing). Credentials from the environment: CH_USERNAME, CH_PASSWORD."},
    {"clickHouse.database", FV_CFG_STRING, OFF(ch_database, char *), "default", 0, 0, NULL, NULL,
     "Database of the flows table; created if missing."},
    {"clickHouse.databaseURL", FV_CFG_STRING, OFF(ch_url, char *),
     "tcp://clickhouse-clickhouse.flow-visibility.svc:9000", 0, 0, NULL, check_ch_url,
     "ClickHouse's HTTP interface, http[s]://HOST[:PORT]; the reference's tcp://HOST:9000 "
     "form is accepted and HOST:8123 is used."},
    {"clickHouse.debug", FV_CFG_BOOL, OFF(ch_debug, bool), "false", 0, 0, NULL, NULL,
     "Log every statement sent to ClickHouse and its answer."},
    {"clickHouse.compress", FV_CFG_BOOL, OFF(ch_compress, bool), "true", 0, 0, NULL, NULL,
     "gzip the insert bodies."},
    {"clickHouse.commitInterval", FV_CFG_DURATION, OFF(ch_commit_ms, uint64_t), "8s", 1000, 3600000,
     NULL, NULL, "A batch is inserted at least this often (when it has rows)."},
    {"clickHouse.batchRows", FV_CFG_U32, OFF(ch_batch_rows, uint32_t), "200000", 1000, 1000000,
     NULL, NULL, "...or as soon as it has this many rows (one insert block at most)."},
    {"clickHouse.queueSizeMB", FV_CFG_U32, OFF(ch_queue_mb, uint32_t), "256", 1, 65536, NULL, NULL,
     "Memory for rows not yet inserted; beyond it batches spill to clickHouse.spoolDir."},
    {"clickHouse.spoolDir", FV_CFG_STRING, OFF(ch_spool_dir, char *),
     "/var/lib/flowvis/clickhouse-spool", 0, 0, NULL, NULL,
     "Disk queue for batches while ClickHouse is down or slow; kept across restarts. "
     "\"\" = none (then a full memory queue applies backpressure)."},
    {"clickHouse.spoolSizeMB", FV_CFG_U32, OFF(ch_spool_mb, uint32_t), "4096", 1, 16777216, NULL,
     NULL,
     "Disk queue cap; when it and the memory queue are full, the aggregator applies "
     "backpressure (the flow tables keep their flows)."},
    {"clickHouse.retention", FV_CFG_DURATION, OFF(ch_retention_ms, uint64_t), "0s", 0, 0, NULL,
     NULL, "Drop partitions (one per hour) older than this; 0 = keep everything."},
    {"clickHouse.maxSizeMB", FV_CFG_U32, OFF(ch_max_mb, uint32_t), "0", 0, 0, NULL, NULL,
     "Drop the oldest partitions while the tables are larger than this (system.parts); 0 = "
     "no cap."},
    {"clickHouse.cluster", FV_CFG_STRING, OFF(ch_cluster, char *), "", 0, 0, NULL, NULL,
     "Write through a Distributed table over this cluster (remote_servers); the rows live in "
     "flows_local on every shard."},
    {"clickHouse.shardURLs", FV_CFG_STRING, OFF(ch_shard_urls, char *), "", 0, 0, NULL, NULL,
     "With clickHouse.cluster: every shard's HTTP URL, comma-separated, where the schema is "
     "created; empty = databaseURL only."},
    {"clickHouse.tls.caCert", FV_CFG_STRING, OFF(ch_ca, char *), NULL, 0, 0, NULL, NULL,
     "CA (PEM) that signed ClickHouse's certificate (https URLs); default: the system's."},
    {"clickHouse.tls.insecureSkipVerify", FV_CFG_BOOL, OFF(ch_insecure, bool), "false", 0, 0, NULL,
     NULL, "Do not verify ClickHouse's certificate (testing only)."},
    {"sqlite.enable", FV_CFG_BOOL, OFF(sq_enable, bool), "true", 0, 0, NULL, NULL,
     "Store every exported record in the embedded SQLite database (serves the query API and "
     "the UI when ClickHouse is off)."},
    {"sqlite.path", FV_CFG_STRING, OFF(sq_path, char *), "/var/lib/flowvis/flows.db", 0, 0, NULL,
     NULL, "The SQLite database file (WAL mode); its directory is created."},
    {"sqlite.commitInterval", FV_CFG_DURATION, OFF(sq_commit_ms, uint64_t), "1s", 100, 3600000,
     NULL, NULL, "A transaction is committed at least this often (when it has rows)."},
    {"sqlite.batchRows", FV_CFG_U32, OFF(sq_batch_rows, uint32_t), "50000", 100, 1000000, NULL,
     NULL, "...or as soon as it has this many rows."},
    {"sqlite.queueSizeMB", FV_CFG_U32, OFF(sq_queue_mb, uint32_t), "64", 1, 65536, NULL, NULL,
     "Memory for rows not yet written; when full the aggregator applies backpressure."},
    {"sqlite.retention", FV_CFG_DURATION, OFF(sq_retention_ms, uint64_t), "168h", 0, 0, NULL, NULL,
     "Delete rows older than this; 0 = keep everything."},
    {"sqlite.maxSizeMB", FV_CFG_U32, OFF(sq_max_mb, uint32_t), "4096", 0, 0, NULL, NULL,
     "Delete the oldest rows while the file is larger than this; 0 = no cap."},
    {"ui.enable", FV_CFG_BOOL, OFF(ui_enable, bool), "true", 0, 0, NULL, NULL,
     "Serve the web UI at / on the API port (its files are built into the binary)."},
    {"ui.dir", FV_CFG_STRING, OFF(ui_dir, char *), NULL, 0, 0, NULL, NULL,
     "Serve the UI's files from this directory instead (UI development: the output of "
     "`node ui/build.mjs DIR`)."},
    {"ui.excludeNamespaces", FV_CFG_STRING_LIST, OFF(ui_exclude_ns, struct fv_cfg_strlist),
     "[kube-system, flowvis]", 0, FV_AGG_MAX_EXCLUDED_NS, NULL, check_namespace,
     "Namespaces the dashboards leave out unless 'show excluded namespaces' is ticked "
     "(flows with one of them on either side)."},
    {"logLevel", FV_CFG_ENUM, OFF(log_level, int), "info", 0, 0, log_levels, NULL,
     "error, warn, info or debug."},
};

static void usage(FILE *out)
{
    fprintf(out, "usage: flowvis aggregator [--config FILE] [options]\n\n"
                 "Collects the agents' IPFIX flow records, merges the two halves of inter-node\n"
                 "flows, aggregates per connection (totals, deltas, throughput) and exports the\n"
                 "result to an IPFIX or JSON collector, to the embedded SQLite store (on by\n"
                 "default) and to ClickHouse.  Serves /flowrecords, /recordmetrics, /metrics,\n"
                 "/healthz, /readyz, the query API over the store (/api/v1/flows, /series,\n"
                 "/top) and the web UI (http://127.0.0.1:10348/ by default) on the API port.\n"
                 "Without --config every key has its default.\n\n"
                 "options:\n"
                 "  -c, --config FILE               aggregator configuration (YAML)\n"
                 "      --check                     validate the configuration and exit\n"
                 "      --print-config yaml|markdown  print every key with its default\n"
                 "  -h, --help                      this help\n\n"
                 "configuration keys:\n");
    fv_cfg_print(agg_opts, FV_CFG_COUNT(agg_opts), out, FV_CFG_PRINT_TEXT);
}

static int finish(const char *path, void *arg)
{
    struct fv_agg_cfg *cfg = arg;
    char why[256];

    if (fv_agg_cfg_check(cfg, why, sizeof(why)) < 0) {
        fprintf(stderr, "flowvis aggregator: %s: %s\n", path, why);
        return -1;
    }
    return 0;
}

static int run(const void *cfg, volatile sig_atomic_t *stop)
{
    return fv_agg_run(cfg, stop);
}

int fv_cmd_aggregator(int argc, char **argv)
{
    static const struct fv_cmd_config_spec spec = {
        "aggregator", agg_opts, FV_CFG_COUNT(agg_opts),     usage, false,
        finish,       run,      (int)offsetof(S, log_level)};
    struct fv_agg_cfg cfg = {.ui_files = fv_ui_assets, .ui_nfiles = fv_ui_assets_count};

    return fv_cmd_config_main(&spec, &cfg, argc, argv);
}
