/* row.c - the flows table's columns and their RowBinary encoding (row.h). */
#include "store/row.h"

#include <arpa/inet.h>
#include <string.h>

#include "base/err.h"

const struct fv_col fv_flow_cols[FV_FLOW_NCOLS] = {
#define FV_COL_ROW(e, name, type) [e] = {name, type},
    FV_FLOW_COLUMNS(FV_COL_ROW)
#undef FV_COL_ROW
};

int fv_flow_col_find(const char *name)
{
    for (int i = 0; i < FV_FLOW_NCOLS; i++)
        if (strcmp(fv_flow_cols[i].name, name) == 0)
            return i;
    return -1;
}

const char *fv_col_type_ch(enum fv_col_type t)
{
    switch (t) {
    case FV_COL_DATETIME:
        return "DateTime";
    case FV_COL_U8:
        return "UInt8";
    case FV_COL_U16:
        return "UInt16";
    case FV_COL_U64:
        return "UInt64";
    case FV_COL_STRING:
        break;
    }
    return "String";
}

static void set_str(struct fv_flow_row *row, int col, const char *s)
{
    row->s[col] = s ? s : "";
    row->slen[col] = s ? (uint32_t)strlen(s) : 0;
}

/* Formats a 4- or 16-byte address into the row's buffer; an all-zero
 * address becomes "" (no Service, say). */
static void set_ip(struct fv_flow_row *row, int col, int slot, const uint8_t *a, bool v6,
                   bool zero_empty)
{
    static const uint8_t zero[16];
    char *buf = row->ipbuf[slot];

    buf[0] = '\0';
    if (!(zero_empty && memcmp(a, zero, v6 ? 16 : 4) == 0))
        inet_ntop(v6 ? AF_INET6 : AF_INET, a, buf, sizeof(row->ipbuf[slot]));
    set_str(row, col, buf);
}

void fv_flow_row_from_rec(struct fv_flow_row *row, const struct fv_agg_rec *rec,
                          uint32_t time_inserted)
{
    const struct fv_agent_rec *a = &rec->a;
    uint64_t *v = row->v;

    memset(v, 0, sizeof(row->v));
    v[FV_C_TIME_INSERTED] = time_inserted;
    v[FV_C_FLOW_START] = a->flow_start;
    v[FV_C_FLOW_END] = a->flow_end;
    v[FV_C_FLOW_END_SRC] = rec->end_side[0];
    v[FV_C_FLOW_END_DST] = rec->end_side[1];
    v[FV_C_FLOW_END_REASON] = a->end_reason;
    set_ip(row, FV_C_SRC_IP, 0, a->src_addr, a->ipv6, false);
    set_ip(row, FV_C_DST_IP, 1, a->dst_addr, a->ipv6, false);
    v[FV_C_SRC_PORT] = a->src_port;
    v[FV_C_DST_PORT] = a->dst_port;
    v[FV_C_PROTO] = a->proto;
    v[FV_C_PKT_TOTAL] = a->packets_total;
    v[FV_C_OCT_TOTAL] = a->octets_total;
    v[FV_C_PKT_DELTA] = a->packets_delta;
    v[FV_C_OCT_DELTA] = a->octets_delta;
    v[FV_C_RPKT_TOTAL] = a->rev_packets_total;
    v[FV_C_ROCT_TOTAL] = a->rev_octets_total;
    v[FV_C_RPKT_DELTA] = a->rev_packets_delta;
    v[FV_C_ROCT_DELTA] = a->rev_octets_delta;
    set_str(row, FV_C_SRC_POD, a->src_pod);
    set_str(row, FV_C_SRC_NS, a->src_ns);
    set_str(row, FV_C_SRC_NODE, a->src_node);
    set_str(row, FV_C_DST_POD, a->dst_pod);
    set_str(row, FV_C_DST_NS, a->dst_ns);
    set_str(row, FV_C_DST_NODE, a->dst_node);
    set_ip(row, FV_C_CLUSTER_IP, 2, a->cluster_ip, a->ipv6, true);
    v[FV_C_SVC_PORT] = a->svc_port;
    set_str(row, FV_C_SVC_NAME, a->svc_port_name);
    set_str(row, FV_C_IN_POLICY, a->in_policy);
    set_str(row, FV_C_IN_POLICY_NS, a->in_policy_ns);
    set_str(row, FV_C_IN_RULE, a->in_rule);
    v[FV_C_IN_ACTION] = a->in_action;
    v[FV_C_IN_TYPE] = a->in_policy_type;
    set_str(row, FV_C_EG_POLICY, a->eg_policy);
    set_str(row, FV_C_EG_POLICY_NS, a->eg_policy_ns);
    set_str(row, FV_C_EG_RULE, a->eg_rule);
    v[FV_C_EG_ACTION] = a->eg_action;
    v[FV_C_EG_TYPE] = a->eg_policy_type;
    set_str(row, FV_C_TCP_STATE, a->tcp_state);
    v[FV_C_FLOW_TYPE] = a->flow_type;
    set_str(row, FV_C_SRC_LABELS, rec->src_labels);
    set_str(row, FV_C_DST_LABELS, rec->dst_labels);
    v[FV_C_THR] = rec->thr;
    v[FV_C_RTHR] = rec->rthr;
    v[FV_C_THR_SRC] = rec->thr_side[0];
    v[FV_C_THR_DST] = rec->thr_side[1];
    v[FV_C_RTHR_SRC] = rec->rthr_side[0];
    v[FV_C_RTHR_DST] = rec->rthr_side[1];
    v[FV_C_TRUSTED] = 0;
}

static size_t col_width(enum fv_col_type t)
{
    switch (t) {
    case FV_COL_DATETIME:
        return 4;
    case FV_COL_U8:
        return 1;
    case FV_COL_U16:
        return 2;
    case FV_COL_U64:
        return 8;
    case FV_COL_STRING:
        break;
    }
    return 0;
}

int fv_flow_row_encode(const struct fv_flow_row *row, struct fv_sbuf *out)
{
    uint8_t tmp[16];

    for (int c = 0; c < FV_FLOW_NCOLS; c++) {
        enum fv_col_type t = fv_flow_cols[c].type;
        int rc;
        if (t == FV_COL_STRING) {
            uint32_t n = row->slen[c];
            size_t k = 0;
            do {
                tmp[k++] = (uint8_t)((n & 0x7f) | (n > 0x7f ? 0x80 : 0));
                n >>= 7;
            } while (n);
            rc = fv_sbuf_append(out, tmp, k);
            if (rc == 0)
                rc = fv_sbuf_append(out, row->s[c], row->slen[c]);
        } else {
            size_t w = col_width(t);
            uint64_t x = row->v[c];
            for (size_t i = 0; i < w; i++, x >>= 8)
                tmp[i] = (uint8_t)x;
            rc = fv_sbuf_append(out, tmp, w);
        }
        if (rc < 0)
            return rc;
    }
    return 0;
}

int fv_flow_row_parse(const void *p, size_t len, struct fv_flow_row *row)
{
    const uint8_t *b = p;
    size_t off = 0;

    for (int c = 0; c < FV_FLOW_NCOLS; c++) {
        enum fv_col_type t = fv_flow_cols[c].type;
        if (t == FV_COL_STRING) {
            uint64_t n = 0;
            unsigned shift = 0;
            for (;;) {
                if (off >= len || shift > 28)
                    return -FV_ETRUNC;
                uint8_t byte = b[off++];
                n |= (uint64_t)(byte & 0x7f) << shift;
                shift += 7;
                if (!(byte & 0x80))
                    break;
            }
            if (n > len - off)
                return -FV_ETRUNC;
            row->s[c] = (const char *)b + off;
            row->slen[c] = (uint32_t)n;
            row->v[c] = 0;
            off += n;
        } else {
            size_t w = col_width(t);
            uint64_t x = 0;
            if (w > len - off)
                return -FV_ETRUNC;
            for (size_t i = 0; i < w; i++)
                x |= (uint64_t)b[off + i] << (8 * i);
            row->v[c] = x;
            row->s[c] = NULL;
            row->slen[c] = 0;
            off += w;
        }
    }
    return (int)off;
}
