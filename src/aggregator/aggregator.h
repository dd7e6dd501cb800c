/*
 * aggregator.h - `flowvis aggregator`: the collecting process, the sharded
 * flow tables, the outputs and the HTTP API.
 *
 * Threads and the path of a record:
 *
 *   main (libevent): listeners (UDP/TCP/TLS) -> IPFIX decode -> fv_agg_in
 *       -> by key hash, into one shard's input queue (lock-free SPSC)
 *   shard i (one per worker): fv_ftab_apply / fv_ftab_expire every 100 ms
 *       -> exported records into the shard's output queue (SPSC)
 *   output: drains the shards' output queues, fills sides and Pod labels
 *       from the inventory, hands each record to every enabled output
 *       (IPFIX sender, JSON sender); a full output stops the drain, the
 *       shard queues fill and the tables keep the flows (backpressure,
 *       nothing dropped)
 *   senders: one thread per output, reconnecting with backoff
 *   http (libmicrohttpd, a pool of HTTP_THREADS): /flowrecords (asks every
 *       shard, one request at a time), /recordmetrics, /metrics, /healthz,
 *       /readyz, the query API over the store (/api/v1/...) and the web UI
 *       (/ and /assets/)
 *
 * A shard is the only thread that touches its table; queries from the API
 * are handed to it and answered between batches.
 */
#ifndef FV_AGGREGATOR_AGGREGATOR_H
#define FV_AGGREGATOR_AGGREGATOR_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "http/assets.h"

#define FV_AGG_MAX_EXCLUDED_NS 8 /* ui.excludeNamespaces: each costs the UI a where clause */

/* The aggregator's configuration; cmd/aggregator.c holds the table (keys,
 * defaults, limits, help) that fills it. */
struct fv_agg_cfg {
    char *listen_address;                /* listenAddress, HOST[:PORT] */
    char *transports;                    /* aggregatorTransportProtocol: tls|tcp|udp, or a list */
    char *aggregator_address;            /* flowAggregatorAddress: SAN of the generated cert */
    uint64_t active_ms;                  /* activeFlowRecordTimeout */
    uint64_t inactive_ms;                /* inactiveFlowRecordTimeout */
    uint64_t corr_wait_ms;               /* correlationWait; 0 = 2 x active */
    uint32_t max_flows;                  /* maxFlows */
    bool pod_labels;                     /* recordContents.podLabels */
    char *tls_dir;                       /* tls.dir: generated material */
    bool tls_generate;                   /* tls.generate */
    char *tls_ca, *tls_cert, *tls_key;   /* tls.caCert, tls.serverCert, tls.serverKey */
    uint32_t api_port;                   /* apiServer.apiPort */
    char *api_bind;                      /* apiServer.bindAddress */
    char *api_token_file;                /* apiServer.tokenFile */
    char *api_tls_cert, *api_tls_key;    /* apiServer.tlsCert, apiServer.tlsKey */
    bool fc_enable;                      /* flowCollector.enable */
    char *fc_address;                    /* flowCollector.address */
    uint32_t fc_domain;                  /* flowCollector.observationDomainID; 0 = derived */
    int fc_format;                       /* flowCollector.recordFormat: FV_AGG_FORMAT_* */
    uint32_t fc_mtu;                     /* flowCollector.udpMessageSize */
    char *fc_ca, *fc_cert, *fc_key;      /* flowCollector.tls.{caCert,clientCert,clientKey} */
    char *inventory_file;                /* inventory.file */
    bool inventory_kube;                 /* inventory.kubernetes: watch the API */
    char *kubeconfig;                    /* inventory.kubeconfig; NULL/"" = service account */
    uint32_t workers;                    /* workers: shards; 0 = one per CPU */
    uint32_t queue_records;              /* outputQueueSize */
    bool ch_enable;                      /* clickHouse.enable */
    char *ch_database, *ch_url;          /* clickHouse.database, clickHouse.databaseURL */
    bool ch_debug, ch_compress;          /* clickHouse.debug, clickHouse.compress */
    uint64_t ch_commit_ms;               /* clickHouse.commitInterval */
    uint32_t ch_batch_rows;              /* clickHouse.batchRows */
    uint32_t ch_queue_mb;                /* clickHouse.queueSizeMB */
    char *ch_spool_dir;                  /* clickHouse.spoolDir; "" = no spool */
    uint32_t ch_spool_mb;                /* clickHouse.spoolSizeMB */
    uint64_t ch_retention_ms;            /* clickHouse.retention; 0 = keep */
    uint32_t ch_max_mb;                  /* clickHouse.maxSizeMB; 0 = no cap */
    char *ch_cluster;                    /* clickHouse.cluster; "" = one server */
    char *ch_shard_urls;                 /* clickHouse.shardURLs */
    char *ch_ca;                         /* clickHouse.tls.caCert */
    bool ch_insecure;                    /* clickHouse.tls.insecureSkipVerify */
    bool sq_enable;                      /* sqlite.enable */
    char *sq_path;                       /* sqlite.path */
    uint64_t sq_commit_ms;               /* sqlite.commitInterval */
    uint32_t sq_batch_rows;              /* sqlite.batchRows */
    uint32_t sq_queue_mb;                /* sqlite.queueSizeMB */
    uint64_t sq_retention_ms;            /* sqlite.retention; 0 = keep */
    uint32_t sq_max_mb;                  /* sqlite.maxSizeMB; 0 = no cap */
    bool ui_enable;                      /* ui.enable */
    char *ui_dir;                        /* ui.dir: serve the UI from here; NULL = embedded */
    struct fv_cfg_strlist ui_exclude_ns; /* ui.excludeNamespaces */
    int log_level;                       /* logLevel */
    /* Not keys: the web UI's embedded files (cmd/aggregator.c sets them
     * from the generated table; none in tests). Borrowed. */
    const struct fv_http_asset *ui_files;
    size_t ui_nfiles;
};

#define FV_AGG_FORMAT_IPFIX 0
#define FV_AGG_FORMAT_JSON 1

/* Checks what the config table cannot check key by key (keys that only
 * make sense together).  0, or -1 with a sentence naming the keys in why. */
int fv_agg_cfg_check(const struct fv_agg_cfg *cfg, char *why, size_t n);

/* Runs until *stop becomes non-zero; then exports what the tables hold
 * and drains the outputs.  Returns 0, or a negative code when it could not
 * start (the reason is logged). */
int fv_agg_run(const struct fv_agg_cfg *cfg, volatile sig_atomic_t *stop);

#endif
