/*
 * agent.c - `flowvis agent`: the command line and the config table of the
 * agent.  The table below is the single source of the agent's keys: it
 * parses and validates the file, and prints the reference for --help and
 * docs (`flowvis agent --print-config markdown`).
 */
#include "agent/agent.h"
#include "agent/nflog.h"

#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/addr.h"
#include "base/err.h"
#include "base/log.h"
#include "cmd/cmd.h"
#include "config/config.h"

#define S struct fv_agent_cfg
#define OFF(field, ctype) FV_CFG_OFFSET(S, field, ctype)

static const char *const log_levels[] = {"error", "warn", "info", "debug", NULL};

/* HOST[:PORT][:PROTO], checked when the file is read so the error names
 * the file and line. */
static int check_address(const char *value, char *why, size_t n)
{
    struct fv_addr a;

    if (value[0] == '\0' || fv_addr_parse(value, 4739, FV_PROTO_TLS, &a) == 0)
        return 0;
    snprintf(why, n, "not HOST[:PORT][:PROTO] with PROTO udp, tcp or tls");
    return -1;
}

/* One deniedFlows.nflogGroups item: GROUP, GROUP:drop or GROUP:reject. */
static int check_nflog_group(const char *value, char *why, size_t n)
{
    struct fv_nflog_group g;

    return fv_nflog_group_parse(value, &g, why, n);
}

static const struct fv_cfg_opt agent_opts[] = {
    {"nodeName", FV_CFG_STRING, OFF(node_name, char *), NULL, 0, 0, NULL, NULL,
     "Name of this Node (default: $NODE_NAME, else the host name)."},
    {"flowCollectorAddr", FV_CFG_STRING, OFF(collector, char *),
     "flow-aggregator.flow-aggregator.svc:4739:tls", 0, 0, NULL, check_address,
     "Where to send flow records: HOST[:PORT][:PROTO], PROTO udp, tcp or tls."},
    {"flowPollInterval", FV_CFG_DURATION, OFF(poll_interval_ms, uint64_t), "5s", 1000, 3600000,
     NULL, NULL, "How often the conntrack table is dumped."},
    {"activeFlowExportTimeout", FV_CFG_DURATION, OFF(active_timeout_ms, uint64_t), "30s", 1000,
     86400000, NULL, NULL, "An active connection is exported at least this often."},
    {"idleFlowExportTimeout", FV_CFG_DURATION, OFF(idle_timeout_ms, uint64_t), "15s", 1000,
     86400000, NULL, NULL, "A connection without new packets for this long is exported as idle."},
    {"tls.caCert", FV_CFG_STRING, OFF(tls_ca, char *), NULL, 0, 0, NULL, NULL,
     "CA (PEM) that signed the collector's certificate; enables verification."},
    {"tls.clientCert", FV_CFG_STRING, OFF(tls_cert, char *), NULL, 0, 0, NULL, NULL,
     "Client certificate (PEM) for mutual TLS."},
    {"tls.clientKey", FV_CFG_STRING, OFF(tls_key, char *), NULL, 0, 0, NULL, NULL,
     "Client private key (PEM) for mutual TLS."},
    {"inventory.file", FV_CFG_STRING, OFF(inventory_file, char *), NULL, 0, 0, NULL, NULL,
     "Kubernetes objects as `kubectl get pods,services,nodes,namespaces,networkpolicies -A -o "
     "json` prints them; re-read when it changes."},
    {"inventory.kubernetes", FV_CFG_BOOL, OFF(inventory_kube, bool), "false", 0, 0, NULL, NULL,
     "List and watch Pods, Services, Nodes, Namespaces and NetworkPolicies in the Kubernetes "
     "API (instead of inventory.file)."},
    {"inventory.kubeconfig", FV_CFG_STRING, OFF(kubeconfig, char *), NULL, 0, 0, NULL, NULL,
     "Kubeconfig for inventory.kubernetes; empty: the Pod's service account."},
    {"inventory.allPods", FV_CFG_BOOL, OFF(all_pods, bool), "false", 0, 0, NULL, NULL,
     "Watch every Pod, not only this Node's (lets policy attribution see remote Pods' "
     "labels; the aggregator completes it otherwise)."},
    {"podCIDRs", FV_CFG_CIDR_LIST, OFF(pod_cidrs, struct fv_cfg_cidrlist), NULL, 0, 64, NULL, NULL,
     "This Node's Pod CIDRs, when no inventory says them."},
    {"clusterCIDRs", FV_CFG_CIDR_LIST, OFF(cluster_cidrs, struct fv_cfg_cidrlist), NULL, 0, 64,
     NULL, NULL, "Every Node's Pod CIDRs, when no inventory says them."},
    {"metricsAddress", FV_CFG_STRING, OFF(metrics_address, char *), "127.0.0.1:9101", 0, 0, NULL,
     check_address, "HOST:PORT of the Prometheus endpoint (/metrics); empty to disable."},
    {"exportQueueSize", FV_CFG_U32, OFF(queue_size, uint32_t), "100000", 1000, 10000000, NULL, NULL,
     "Records kept while the collector is unreachable."},
    {"maxConnections", FV_CFG_U32, OFF(max_conns, uint32_t), "1000000", 1000, 100000000, NULL, NULL,
     "Connections tracked at most; more are counted and not exported."},
    {"udpMessageSize", FV_CFG_U32, OFF(mtu, uint32_t), "1400", 576, 65000, NULL, NULL,
     "Largest IPFIX message over UDP, in bytes."},
    {"filters.excludeCIDRs", FV_CFG_CIDR_LIST, OFF(exclude_cidrs, struct fv_cfg_cidrlist), NULL, 0,
     1024, NULL, NULL, "Connections from or to these prefixes are not exported."},
    {"filters.zones", FV_CFG_STRING_LIST, OFF(zones, struct fv_cfg_strlist), NULL, 0, 64, NULL,
     NULL, "Only connections in these conntrack zones (numbers); empty for all."},
    {"filters.mark", FV_CFG_U32, OFF(mark, uint32_t), "0", 0, 0, NULL, NULL,
     "Only connections whose connmark & markMask equals this."},
    {"filters.markMask", FV_CFG_U32, OFF(mark_mask, uint32_t), "0", 0, 0, NULL, NULL,
     "Mask for filters.mark; 0 disables the mark filter."},
    {"deniedFlows.nflogGroups", FV_CFG_STRING_LIST, OFF(nflog_groups, struct fv_cfg_strlist), NULL,
     0, 32, NULL, check_nflog_group,
     "NFLOG groups where the datapath logs the packets it refuses: GROUP (action drop) or "
     "GROUP:reject; empty: no denied flows."},
    {"deniedFlows.maxConnections", FV_CFG_U32, OFF(max_denied, uint32_t), "100000", 100, 10000000,
     NULL, NULL, "Denied connections tracked at most; more are counted."},
    {"logLevel", FV_CFG_ENUM, OFF(log_level, int), "info", 0, 0, log_levels, NULL,
     "error, warn, info or debug."},
};

static void usage(FILE *out)
{
    fprintf(out, "usage: flowvis agent --config FILE [options]\n\n"
                 "Reads this Node's conntrack table and exports its connections as IPFIX flow\n"
                 "records: with an inventory (a file, or the Kubernetes API) or Pod CIDRs, every\n"
                 "connection of a Pod, with Kubernetes identity and the NetworkPolicies that\n"
                 "admit it; without them (host mode), every connection but loopback.  With\n"
                 "deniedFlows.nflogGroups, also the connections the datapath refused and logged\n"
                 "to NFLOG, with action drop or reject.  Needs CAP_NET_ADMIN.\n\n"
                 "options:\n"
                 "  -c, --config FILE               agent configuration (YAML)\n"
                 "      --check                     validate the configuration and exit\n"
                 "      --print-config yaml|markdown  print every key with its default\n"
                 "  -h, --help                      this help\n\n"
                 "configuration keys:\n");
    fv_cfg_print(agent_opts, FV_CFG_COUNT(agent_opts), out, FV_CFG_PRINT_TEXT);
}

/* Fills what the table cannot: defaults from the environment, and keys
 * that only make sense together. */
static int finish(const char *path, void *arg)
{
    struct fv_agent_cfg *cfg = arg;
    char host[256];

    if (cfg->node_name == NULL || cfg->node_name[0] == '\0') {
        const char *env = getenv("NODE_NAME");
        free(cfg->node_name);
        if (env == NULL && gethostname(host, sizeof(host)) == 0)
            env = host;
        cfg->node_name = strdup(env ? env : "unknown");
    }
    if (cfg->metrics_address && cfg->metrics_address[0] == '\0') {
        free(cfg->metrics_address);
        cfg->metrics_address = NULL;
    }
    if (cfg->kubeconfig && cfg->kubeconfig[0] == '\0') {
        free(cfg->kubeconfig);
        cfg->kubeconfig = NULL;
    }
    if (cfg->inventory_kube && cfg->inventory_file) {
        fprintf(stderr,
                "flowvis agent: %s: inventory.file and inventory.kubernetes exclude each other\n",
                path);
        return -1;
    }
    if (cfg->kubeconfig && !cfg->inventory_kube) {
        fprintf(stderr,
                "flowvis agent: %s: inventory.kubeconfig needs inventory.kubernetes: true\n", path);
        return -1;
    }
    if ((cfg->tls_cert == NULL) != (cfg->tls_key == NULL)) {
        fprintf(stderr, "flowvis agent: %s: tls.clientCert and tls.clientKey go together\n", path);
        return -1;
    }
    return 0;
}

static int run(const void *cfg, volatile sig_atomic_t *stop)
{
    return fv_agent_run(cfg, stop);
}

int fv_cmd_agent(int argc, char **argv)
{
    static const struct fv_cmd_config_spec spec = {
        "agent", agent_opts, FV_CFG_COUNT(agent_opts),   usage, true,
        finish,  run,        (int)offsetof(S, log_level)};
    struct fv_agent_cfg cfg = {0};

    return fv_cmd_config_main(&spec, &cfg, argc, argv);
}
