/*
 * record.h - what the aggregator takes in and what it gives out.
 *
 * In: struct fv_agg_in is one agent record (SPEC section 2, agent
 * template), decoded from IPFIX by fv_agg_in_decode() into plain values.
 * Strings are borrowed views (not NUL-terminated) into a blob the caller
 * owns, so the record can be copied through a queue as one block.
 *
 * Out: struct fv_agg_rec is one aggregated record as it is exported: the
 * agent fields plus the per-side counters (Antrea 120-135), the per-side
 * flow ends (151/152), the throughputs (145-150), optionally the Pod
 * labels (143/144), and the original exporter (IANA 403/404/405).
 * Strings are NUL-terminated and borrowed.
 *
 * The aggregated templates (fv_agg_templates_init) have the field order of
 * SPEC section 2: the agent fields, then the additions in the order above.
 * Id 258 is the IPv4 form and 259 the IPv6 form; both carry 403 and 404,
 * because an exporter's address family need not be the flow's.  JSON
 * lines are produced from the same encoding (fv_agg_rec_json), so the
 * two outputs always agree on names and values.
 *
 * Thread rules: a fv_agg_templates is immutable after init and may be
 * shared; everything else is plain data.
 */
#ifndef FV_AGGREGATOR_RECORD_H
#define FV_AGGREGATOR_RECORD_H

#include <stdbool.h>
#include <stdint.h>

#include "base/sbuf.h"
#include "ipfix/ipfix.h"
#include "ipfix/templates.h"

#define FV_TMPL_AGG_V4 258
#define FV_TMPL_AGG_V6 259

/* The flow key: zero-padded so that it compares and hashes as bytes. */
struct fv_agg_key {
    uint8_t src[16];       /* source address; IPv4 in the first 4 bytes */
    uint8_t dst[16];       /* destination address (post-DNAT) */
    uint16_t sport, dport; /* transport ports, host order */
    uint8_t proto;         /* protocolIdentifier */
    uint8_t v6;            /* 1 for IPv6 */
    uint8_t pad[2];        /* always 0 */
};

/* Strings of an agent record, in one array so they can be handled alike. */
enum fv_agg_str {
    FV_AGG_SRC_POD,
    FV_AGG_SRC_NS,
    FV_AGG_SRC_NODE,
    FV_AGG_DST_POD,
    FV_AGG_DST_NS,
    FV_AGG_DST_NODE,
    FV_AGG_SVC_NAME, /* destinationServicePortName */
    FV_AGG_IN_POLICY,
    FV_AGG_IN_POLICY_NS,
    FV_AGG_IN_RULE,
    FV_AGG_EG_POLICY,
    FV_AGG_EG_POLICY_NS,
    FV_AGG_EG_RULE,
    FV_AGG_TCP_STATE,
    FV_AGG_STR_COUNT
};

/* Counters in the order of Antrea elements 120-127 (and 128-135). */
enum fv_agg_ctr {
    FV_AGG_PKT_TOTAL,
    FV_AGG_OCT_TOTAL,
    FV_AGG_PKT_DELTA,
    FV_AGG_OCT_DELTA,
    FV_AGG_RPKT_TOTAL,
    FV_AGG_ROCT_TOTAL,
    FV_AGG_RPKT_DELTA,
    FV_AGG_ROCT_DELTA,
    FV_AGG_CTR_COUNT
};

/* flowType and rule action values: FV_FLOW_* and FV_ACTION_* in
 * ipfix/templates.h. */
#define FV_END_OF_FLOW 3

/* One agent record. */
struct fv_agg_in {
    struct fv_agg_key key;
    uint32_t flow_start, flow_end;  /* seconds */
    uint8_t end_reason;             /* flowEndReason */
    uint8_t flow_type;              /* 0 when the exporter did not say */
    uint8_t in_type, in_action;     /* ingress policy type and rule action */
    uint8_t eg_type, eg_action;     /* egress policy type and rule action */
    uint16_t svc_port;              /* destinationServicePort */
    uint8_t cluster_ip[16];         /* destinationClusterIPv4/v6; zero when none */
    uint64_t ctr[FV_AGG_CTR_COUNT]; /* as received */
    uint16_t exporter;              /* index in the aggregator's exporter table */
    uint32_t ident_hash;            /* digest of strings, policy and service fields */
    const char *blob;               /* the strings, borrowed */
    uint16_t str_off[FV_AGG_STR_COUNT];
    uint16_t str_len[FV_AGG_STR_COUNT];
};

/* A string of an input record (not NUL-terminated; see str_len). */
static inline const char *fv_agg_in_str(const struct fv_agg_in *in, enum fv_agg_str s)
{
    return in->blob + in->str_off[s];
}

/* One aggregated record. */
struct fv_agg_rec {
    struct fv_agent_rec a;               /* common fields, agent template order */
    uint64_t side[2][FV_AGG_CTR_COUNT];  /* [0] from source node, [1] from destination */
    uint32_t end_side[2];                /* flowEndSecondsFrom{Source,Destination}Node */
    uint64_t thr, rthr;                  /* throughput, reverseThroughput (bits/s) */
    uint64_t thr_side[2], rthr_side[2];  /* ...From{Source,Destination}Node */
    const char *src_labels, *dst_labels; /* JSON objects; used when labels are on */
    uint8_t exporter[16];                /* original exporter address */
    bool exporter_v6;                    /* ...is IPv6 (else first 4 bytes) */
    uint32_t domain;                     /* originalObservationDomainId */
    bool correlated;                     /* both halves were merged (not exported) */
};

/* The aggregated templates, built once. */
struct fv_agg_templates {
    bool labels;                         /* 143/144 present */
    struct fv_ipfix_field fields[2][64]; /* [0] IPv4, [1] IPv6 */
    struct fv_ipfix_template_def def[2]; /* ids 258, 259 */
    struct fv_ipfix_template *parsed[2]; /* for formatting JSON; owned */
};

/* Builds the templates; labels adds 143/144.  0 or -ENOMEM. */
int fv_agg_templates_init(struct fv_agg_templates *t, bool labels);
void fv_agg_templates_fini(struct fv_agg_templates *t);

/* Encoder argument: a record and the templates it is written with. */
struct fv_agg_encode_arg {
    const struct fv_agg_templates *t;
    const struct fv_agg_rec *rec;
};
/* An fv_ipfix_encode_fn writing a (const struct fv_agg_encode_arg *). */
void fv_agg_rec_encode(struct fv_ipfix_writer *w, const void *arg);

/* Appends {"@timestamp":"<RFC 3339 of now_s>","ipfix":{...}} and a
 * newline.  0 or the sbuf's error. */
int fv_agg_rec_json(const struct fv_agg_templates *t, const struct fv_agg_rec *rec, uint64_t now_s,
                    struct fv_sbuf *out);

/* Appends the record's fields as one JSON object {"name":value,...}. */
int fv_agg_rec_json_fields(const struct fv_agg_templates *t, const struct fv_agg_rec *rec,
                           struct fv_sbuf *out);

/* Bytes fv_agg_rec_pack needs for rec. */
size_t fv_agg_rec_packed_size(const struct fv_agg_rec *rec);
/* Copies rec and its strings into buf (fv_agg_rec_packed_size bytes), so
 * it can cross a queue; fv_agg_rec_unpack points the strings back into
 * the buffer, which must stay valid while the record is used. */
void fv_agg_rec_pack(const struct fv_agg_rec *rec, void *buf);
void fv_agg_rec_unpack(const void *buf, struct fv_agg_rec *rec);

/* Maps a template's fields to the slots of fv_agg_in (computed once per
 * template and cached by the caller). */
struct fv_agg_in_map {
    uint32_t serial;                   /* template serial this map is for */
    uint16_t field_count;              /* = template field count */
    uint8_t slot[FV_IPFIX_MAX_FIELDS]; /* slot per field, 0 = ignored */
    bool usable;                       /* has addresses and ports */
};
void fv_agg_in_map_build(struct fv_agg_in_map *m, const struct fv_ipfix_template *t);

/* Decodes one record into in, copying its strings into blob (blob_cap
 * bytes; longer strings are cut).  Returns the bytes of blob used, or
 * -FV_ERECORD when the record lacks a flow key. */
int fv_agg_in_decode(const struct fv_agg_in_map *m, const struct fv_ipfix_value *values,
                     struct fv_agg_in *in, char *blob, size_t blob_cap);

#endif
