/* templates.c - field lists of the templates flowvis sends (templates.h). */
#include "ipfix/templates.h"

#include <string.h>

#define IANA(id, len)                                                                              \
    {                                                                                              \
        FV_PEN_IANA, id, len, NULL                                                                 \
    }
#define REV(id, len)                                                                               \
    {                                                                                              \
        FV_PEN_REVERSE, id, len, NULL                                                              \
    }
#define ANTREA(id, len)                                                                            \
    {                                                                                              \
        FV_PEN_ANTREA, id, len, NULL                                                               \
    }
#define S FV_IE_VARLEN

/* Expands to the agent field list with the given address elements. */
#define AGENT_FIELDS(src, dst, alen, cip)                                                          \
    {                                                                                              \
        IANA(150, 4), IANA(151, 4), IANA(136, 1), IANA(7, 2), IANA(11, 2), IANA(4, 1),             \
            IANA(86, 8), IANA(85, 8), IANA(2, 8), IANA(1, 8), IANA(src, alen), IANA(dst, alen),    \
            REV(86, 8), REV(85, 8), REV(2, 8), REV(1, 8), ANTREA(101, S), ANTREA(100, S),          \
            ANTREA(104, S), ANTREA(103, S), ANTREA(102, S), ANTREA(105, S), ANTREA(108, 2),        \
            ANTREA(109, S), ANTREA(110, S), ANTREA(111, S), ANTREA(115, 1), ANTREA(141, S),        \
            ANTREA(139, 1), ANTREA(112, S), ANTREA(113, S), ANTREA(118, 1), ANTREA(142, S),        \
            ANTREA(140, 1), ANTREA(136, S), ANTREA(137, 1), ANTREA(cip, alen),                     \
    }

static const struct fv_ipfix_field agent_v4[FV_AGENT_FIELD_COUNT] = AGENT_FIELDS(8, 12, 4, 106);
static const struct fv_ipfix_field agent_v6[FV_AGENT_FIELD_COUNT] = AGENT_FIELDS(27, 28, 16, 107);

const struct fv_ipfix_template_def fv_tmpl_agent_v4 = {FV_TMPL_AGENT_V4, FV_AGENT_FIELD_COUNT,
                                                       agent_v4};
const struct fv_ipfix_template_def fv_tmpl_agent_v6 = {FV_TMPL_AGENT_V6, FV_AGENT_FIELD_COUNT,
                                                       agent_v6};

static void put_str(struct fv_ipfix_writer *w, const char *s)
{
    fv_ipfix_put_varlen(w, s ? s : "", s ? strlen(s) : 0);
}

void fv_agent_rec_encode(struct fv_ipfix_writer *w, const void *arg)
{
    const struct fv_agent_rec *r = arg;
    size_t alen = r->ipv6 ? 16 : 4;

    fv_ipfix_put_u32(w, r->flow_start);
    fv_ipfix_put_u32(w, r->flow_end);
    fv_ipfix_put_u8(w, r->end_reason);
    fv_ipfix_put_u16(w, r->src_port);
    fv_ipfix_put_u16(w, r->dst_port);
    fv_ipfix_put_u8(w, r->proto);
    fv_ipfix_put_u64(w, r->packets_total);
    fv_ipfix_put_u64(w, r->octets_total);
    fv_ipfix_put_u64(w, r->packets_delta);
    fv_ipfix_put_u64(w, r->octets_delta);
    fv_ipfix_put_bytes(w, r->src_addr, alen);
    fv_ipfix_put_bytes(w, r->dst_addr, alen);
    fv_ipfix_put_u64(w, r->rev_packets_total);
    fv_ipfix_put_u64(w, r->rev_octets_total);
    fv_ipfix_put_u64(w, r->rev_packets_delta);
    fv_ipfix_put_u64(w, r->rev_octets_delta);
    put_str(w, r->src_pod);
    put_str(w, r->src_ns);
    put_str(w, r->src_node);
    put_str(w, r->dst_pod);
    put_str(w, r->dst_ns);
    put_str(w, r->dst_node);
    fv_ipfix_put_u16(w, r->svc_port);
    put_str(w, r->svc_port_name);
    put_str(w, r->in_policy);
    put_str(w, r->in_policy_ns);
    fv_ipfix_put_u8(w, r->in_policy_type);
    put_str(w, r->in_rule);
    fv_ipfix_put_u8(w, r->in_action);
    put_str(w, r->eg_policy);
    put_str(w, r->eg_policy_ns);
    fv_ipfix_put_u8(w, r->eg_policy_type);
    put_str(w, r->eg_rule);
    fv_ipfix_put_u8(w, r->eg_action);
    put_str(w, r->tcp_state);
    fv_ipfix_put_u8(w, r->flow_type);
    fv_ipfix_put_bytes(w, r->cluster_ip, alen);
}
