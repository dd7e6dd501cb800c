/*
 * sender.h - the agent's export path: a bounded queue of encoded records
 * and a thread that sends them over IPFIX, reconnecting with backoff.
 *
 * The agent's main thread encodes each record (agent template 256/257)
 * into the queue and never blocks on the network.  The sender thread owns
 * the fv_ipfix_exporter: it connects, packs queued records into messages,
 * and when the collector is unreachable it retries with exponential
 * backoff (100 ms doubling to 30 s, +-20 % jitter) while records wait in
 * the queue.  A record leaves the queue only once the exporter has taken
 * it; a message whose send failed stays in the exporter and goes first
 * after the reconnect.  When the queue is full, new records are refused
 * and counted (never dropped silently).
 *
 *     fv_sender_start(&cfg, &snd);
 *     fv_sender_push(snd, &rec);         // -FV_ENOSPACE when full
 *     fv_sender_stop(snd, 5000);         // drain for up to 5 s, then stop
 *
 * Thread rules: push from one producer thread; stats from any thread.
 */
#ifndef FV_AGENT_SENDER_H
#define FV_AGENT_SENDER_H

#include <stdbool.h>
#include <stdint.h>

#include "ipfix/templates.h"
#include "ipfix/transport.h"

struct fv_sender_cfg {
    struct fv_ipfix_exporter_cfg exporter; /* collector, TLS, domain */
    uint32_t max_records;                  /* queue bound in records (default 100000) */
};

struct fv_sender_stats {
    uint64_t queued;     /* records in the queue now */
    uint64_t sent;       /* records handed to the collector */
    uint64_t refused;    /* records refused because the queue was full */
    uint64_t reconnects; /* successful connects after the first */
    uint64_t connect_failures;
    bool connected;
};

struct fv_sender;

int fv_sender_start(const struct fv_sender_cfg *cfg, struct fv_sender **out);
/* Encodes and queues one record; -FV_ENOSPACE when the queue is full. */
int fv_sender_push(struct fv_sender *s, const struct fv_agent_rec *rec);
/* Sends what is queued for up to drain_ms, then stops and frees.  NULL ok. */
void fv_sender_stop(struct fv_sender *s, uint64_t drain_ms);
void fv_sender_stats(struct fv_sender *s, struct fv_sender_stats *out);

#endif
