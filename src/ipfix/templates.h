/*
 * templates.h - the templates flowvis sends, field order as SPEC section 2.
 *
 * The agent template carries one connection as seen by one node: times,
 * end reason, 5-tuple, forward and reverse counters (RFC 5103), and the
 * Kubernetes identity (Antrea elements, PEN 56506).  Id 256 is the IPv4
 * form, 257 the IPv6 form (addresses 27/28 and ClusterIP 107 instead of
 * 8/12 and 106).  The FV_AGENT_* indexes name the position of each field
 * so producers and consumers of the template agree on one list.
 */
#ifndef FV_IPFIX_TEMPLATES_H
#define FV_IPFIX_TEMPLATES_H

#include <stdbool.h>
#include <stdint.h>

#include "ipfix/ipfix.h"

/* flowType, rule action and policy type values (SPEC section 2). */
#define FV_FLOW_INTRA_NODE 1
#define FV_FLOW_INTER_NODE 2
#define FV_FLOW_TO_EXTERNAL 3
#define FV_FLOW_FROM_EXTERNAL 4
#define FV_ACTION_NONE 0
#define FV_ACTION_ALLOW 1
#define FV_ACTION_DROP 2
#define FV_ACTION_REJECT 3
#define FV_POLICY_TYPE_K8S 1 /* a Kubernetes NetworkPolicy */

#define FV_TMPL_AGENT_V4 256
#define FV_TMPL_AGENT_V6 257

enum fv_agent_field {
    FV_AGENT_FLOW_START,
    FV_AGENT_FLOW_END,
    FV_AGENT_END_REASON,
    FV_AGENT_SRC_PORT,
    FV_AGENT_DST_PORT,
    FV_AGENT_PROTO,
    FV_AGENT_PACKETS_TOTAL,
    FV_AGENT_OCTETS_TOTAL,
    FV_AGENT_PACKETS_DELTA,
    FV_AGENT_OCTETS_DELTA,
    FV_AGENT_SRC_ADDR,
    FV_AGENT_DST_ADDR,
    FV_AGENT_REV_PACKETS_TOTAL,
    FV_AGENT_REV_OCTETS_TOTAL,
    FV_AGENT_REV_PACKETS_DELTA,
    FV_AGENT_REV_OCTETS_DELTA,
    FV_AGENT_SRC_POD,
    FV_AGENT_SRC_NS,
    FV_AGENT_SRC_NODE,
    FV_AGENT_DST_POD,
    FV_AGENT_DST_NS,
    FV_AGENT_DST_NODE,
    FV_AGENT_SVC_PORT,
    FV_AGENT_SVC_PORT_NAME,
    FV_AGENT_IN_POLICY,
    FV_AGENT_IN_POLICY_NS,
    FV_AGENT_IN_POLICY_TYPE,
    FV_AGENT_IN_RULE,
    FV_AGENT_IN_ACTION,
    FV_AGENT_EG_POLICY,
    FV_AGENT_EG_POLICY_NS,
    FV_AGENT_EG_POLICY_TYPE,
    FV_AGENT_EG_RULE,
    FV_AGENT_EG_ACTION,
    FV_AGENT_TCP_STATE,
    FV_AGENT_FLOW_TYPE,
    FV_AGENT_CLUSTER_IP,
    FV_AGENT_FIELD_COUNT
};

extern const struct fv_ipfix_template_def fv_tmpl_agent_v4;
extern const struct fv_ipfix_template_def fv_tmpl_agent_v6;

/* One agent-format record, ready to encode.  Strings are borrowed,
 * NUL-terminated, "" when absent; addresses are in network order (4 bytes
 * used when !ipv6). */
struct fv_agent_rec {
    bool ipv6;           /* template 257 instead of 256 */
    uint32_t flow_start; /* flowStartSeconds */
    uint32_t flow_end;   /* flowEndSeconds */
    uint8_t end_reason;  /* flowEndReason: 1 idle, 2 active, 3 end of flow ... */
    uint16_t src_port, dst_port;
    uint8_t proto; /* protocolIdentifier */
    uint64_t packets_total, octets_total, packets_delta, octets_delta;
    uint64_t rev_packets_total, rev_octets_total, rev_packets_delta, rev_octets_delta;
    uint8_t src_addr[16], dst_addr[16], cluster_ip[16];
    const char *src_pod, *src_ns, *src_node;
    const char *dst_pod, *dst_ns, *dst_node;
    uint16_t svc_port;         /* destinationServicePort */
    const char *svc_port_name; /* "namespace/name:port" */
    const char *in_policy, *in_policy_ns, *in_rule;
    uint8_t in_policy_type, in_action;
    const char *eg_policy, *eg_policy_ns, *eg_rule;
    uint8_t eg_policy_type, eg_action;
    const char *tcp_state; /* conntrack TCP state name, "" for non-TCP */
    uint8_t flow_type;     /* 1 intra-node, 2 inter-node, 3 to-external, 4 from-external */
};

/* Writes rec (a const struct fv_agent_rec *) in template field order; an
 * fv_ipfix_encode_fn.  The template id is FV_TMPL_AGENT_V4/V6 by rec->ipv6. */
void fv_agent_rec_encode(struct fv_ipfix_writer *w, const void *rec);

#endif
