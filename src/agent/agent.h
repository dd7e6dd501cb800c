/*
 * agent.h - `flowvis agent`: conntrack to IPFIX with Kubernetes identity.
 *
 * One main thread polls conntrack (a full dump every poll interval) and
 * listens to its NEW and DESTROY events, keeps the connection store
 * (store.h), enriches each export with the inventory (Pods, Nodes,
 * Services) and queues it for the sender thread (sender.h).  Metrics are
 * served by libmicrohttpd's thread.  The record path:
 *
 *   dump/event -> filter -> fv_agent_store_update/destroy -> (deadline) emit
 *   -> enrich (inventory) -> fv_sender_push -> sender thread -> IPFIX
 *
 * Identity comes from an inventory: a file, or the Kubernetes API watched
 * by a background thread (k8s/watch.h); the main thread picks up each new
 * snapshot between polls.  With an inventory, each record also names the
 * NetworkPolicies that admit it (k8s/policy.h: egress for a local source
 * Pod, ingress for a local destination Pod).  Packets the datapath refuses
 * and logs to NFLOG (nflog.h) are counted per 5-tuple in the denied store
 * (denied.h) and exported with action drop or reject.
 *
 * Without an inventory nor Pod CIDRs the agent runs in host mode: it
 * exports every connection but loopback, with empty Pod fields.
 */
#ifndef FV_AGENT_AGENT_H
#define FV_AGENT_AGENT_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "config/config.h"

/* The agent's configuration; see cmd/agent.c for the table (keys, defaults,
 * limits) that fills it. */
struct fv_agent_cfg {
    char *node_name;                      /* nodeName */
    char *collector;                      /* flowCollectorAddr, HOST[:PORT][:PROTO] */
    uint64_t poll_interval_ms;            /* flowPollInterval */
    uint64_t active_timeout_ms;           /* activeFlowExportTimeout */
    uint64_t idle_timeout_ms;             /* idleFlowExportTimeout */
    char *tls_ca, *tls_cert, *tls_key;    /* tls.caCert, tls.clientCert, tls.clientKey */
    char *inventory_file;                 /* inventory.file */
    bool inventory_kube;                  /* inventory.kubernetes: watch the API */
    char *kubeconfig;                     /* inventory.kubeconfig; NULL = service account */
    bool all_pods;                        /* inventory.allPods: not only this Node's */
    struct fv_cfg_strlist nflog_groups;   /* deniedFlows.nflogGroups: "GROUP[:reject]" */
    uint32_t max_denied;                  /* deniedFlows.maxConnections */
    struct fv_cfg_cidrlist pod_cidrs;     /* podCIDRs: this Node's Pod CIDRs */
    struct fv_cfg_cidrlist cluster_cidrs; /* clusterCIDRs: every Node's Pod CIDRs */
    struct fv_cfg_cidrlist exclude_cidrs; /* filters.excludeCIDRs */
    struct fv_cfg_strlist zones;          /* filters.zones: only these conntrack zones */
    uint32_t mark, mark_mask;             /* filters.mark / filters.markMask */
    char *metrics_address;                /* metricsAddress; NULL = off */
    uint32_t queue_size;                  /* exportQueueSize, records */
    uint32_t max_conns;                   /* maxConnections */
    uint32_t mtu;                         /* udpMessageSize */
    int log_level;                        /* logLevel (enum fv_log_level) */
};

/* Runs until *stop becomes non-zero.  Returns 0, or a negative code when it
 * could not start (the reason is logged). */
int fv_agent_run(const struct fv_agent_cfg *cfg, volatile sig_atomic_t *stop);

/* 32-bit FNV-1 of the node name: the agent's observation domain id. */
uint32_t fv_agent_domain_id(const char *node_name);

#endif
