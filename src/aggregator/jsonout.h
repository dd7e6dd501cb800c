/*
 * jsonout.h - the JSON-lines output transport: one
 * {"@timestamp":...,"ipfix":{...}} object per line, over TCP (a stream of
 * lines, what Logstash's json_lines codec reads) or UDP (one line per
 * datagram).  It plugs into an fv_sender (ipfix/sender.h), which gives it
 * the bounded queue, the thread and the reconnect backoff.
 *
 *     void *tp;
 *     fv_jsonout_new(&addr, &tp);
 *     cfg.ops = &fv_jsonout_ops; cfg.transport = tp;   // the sender owns it
 *     fv_sender_start(&cfg, &snd);
 *     fv_sender_push_raw(snd, 1, line, len);
 *
 * Thread rules: used by the sender's thread only.
 */
#ifndef FV_AGGREGATOR_JSONOUT_H
#define FV_AGGREGATOR_JSONOUT_H

#include "base/addr.h"
#include "ipfix/sender.h"

/* addr->proto must be FV_PROTO_TCP or FV_PROTO_UDP. */
int fv_jsonout_new(const struct fv_addr *addr, void **out);

extern const struct fv_sender_ops fv_jsonout_ops;

#endif
