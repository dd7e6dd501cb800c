/*
 * sender.h - an export path that never blocks its producer: a bounded
 * queue of encoded records and a thread that sends them, reconnecting
 * with backoff.  The agent sends its IPFIX this way, and the aggregator
 * its IPFIX and JSON outputs.
 *
 * The producer encodes each record into the queue and never blocks on the
 * network.  The sender thread owns the transport (by default an
 * fv_ipfix_exporter; any struct fv_sender_ops): it connects, packs queued
 * records into messages,
 * and when the collector is unreachable it retries with exponential
 * backoff (100 ms doubling to 30 s, +-20 % jitter) while records wait in
 * the queue.  A record leaves the queue only once the exporter has taken
 * it; a message whose send failed stays in the exporter and goes first
 * after the reconnect.  When the queue is full, new records are refused
 * and counted (never dropped silently).
 *
 *     fv_sender_start(&cfg, &snd);
 *     fv_sender_push(snd, 256, fv_agent_rec_encode, &rec);  // -FV_ENOSPACE when full
 *     fv_sender_stop(snd, 5000);         // drain for up to 5 s, then stop
 *
 * Thread rules: push from one producer thread; stats from any thread.
 */
#ifndef FV_IPFIX_SENDER_H
#define FV_IPFIX_SENDER_H

#include <stdbool.h>
#include <stdint.h>

#include "ipfix/transport.h"

/* A transport the sender thread drives; every call is on that thread. */
struct fv_sender_ops {
    int (*connect)(void *tp); /* 0 or a negative code */
    bool (*connected)(void *tp);
    /* Takes one queued entry: 0, -FV_ELIMIT when this entry can never be
     * sent (it is dropped and counted), other negative codes when the
     * connection failed (the entry is kept and goes first after the
     * reconnect). */
    int (*add)(void *tp, uint16_t tag, const uint8_t *p, size_t len);
    int (*flush)(void *tp);     /* sends what add() buffered */
    bool (*check)(void *tp);    /* an idle connection is still up */
    uint64_t (*sent)(void *tp); /* entries delivered so far */
    void (*free)(void *tp);
};

struct fv_sender_cfg {
    struct fv_ipfix_exporter_cfg exporter;            /* collector, TLS, domain (IPFIX transport) */
    const struct fv_ipfix_template_def *const *tmpls; /* templates, borrowed (IPFIX) */
    size_t ntmpl;
    const struct fv_sender_ops *ops; /* NULL = IPFIX over exporter; else this transport */
    void *transport;                 /* for ops; owned by the sender from start on */
    uint32_t max_records;            /* queue bound in records (default 100000) */
    uint32_t avg_record_bytes;       /* sizes the byte ring (default 384) */
};

struct fv_sender_stats {
    uint64_t queued;     /* records in the queue now */
    uint64_t sent;       /* records handed to the collector */
    uint64_t refused;    /* records refused because the queue was full */
    uint64_t unsendable; /* records the transport could never send (too large) */
    uint64_t reconnects; /* successful connects after the first */
    uint64_t connect_failures;
    bool connected;
};

struct fv_sender;

/* On failure a cfg->transport is freed with cfg->ops->free. */
int fv_sender_start(const struct fv_sender_cfg *cfg, struct fv_sender **out);
/* Encodes one IPFIX record of template tmpl and queues it; -FV_ENOSPACE
 * when the queue is full, -FV_ELIMIT when it is larger than a message. */
int fv_sender_push(struct fv_sender *s, uint16_t tmpl, fv_ipfix_encode_fn encode, const void *arg);
/* Queues len bytes (at most 65535) under tag (non-zero); -FV_ENOSPACE when full. */
int fv_sender_push_raw(struct fv_sender *s, uint16_t tag, const void *p, size_t len);
/* Sends what is queued for up to drain_ms, then stops and frees.  NULL ok. */
void fv_sender_stop(struct fv_sender *s, uint64_t drain_ms);
void fv_sender_stats(struct fv_sender *s, struct fv_sender_stats *out);

#endif
