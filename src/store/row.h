/*
 * row.h - one row of the `flows` table (SPEC section 5), the unit every
 * store takes.
 *
 * The columns are the reference's, in the reference's order, so existing
 * dashboards and queries work unchanged.  fv_flow_cols[] names them and
 * gives their ClickHouse type; every store builds its schema from it.
 *
 * A row travels between threads and onto disk in ClickHouse's RowBinary
 * encoding (columns in order; DateTime as UInt32 and integers little
 * endian; String as a LEB128 length and the bytes).  The ClickHouse sink
 * appends these bytes to its batch as they are; the SQLite store parses
 * them back with fv_flow_row_parse.  One encoding means the memory queue,
 * the disk spool and the insert body are the same bytes.
 *
 *     struct fv_flow_row row;
 *     fv_flow_row_from_rec(&row, rec, now_s);
 *     fv_flow_row_encode(&row, &buf);           // RowBinary
 *     ...
 *     fv_flow_row_parse(buf.p, buf.len, &row);  // strings point into buf
 *
 * Thread rules: plain data; fv_flow_cols is constant.
 */
#ifndef FV_STORE_ROW_H
#define FV_STORE_ROW_H

#include <stddef.h>
#include <stdint.h>

#include "aggregator/record.h"
#include "base/sbuf.h"

enum fv_col_type {
    FV_COL_DATETIME, /* DateTime: seconds since the epoch, UInt32 */
    FV_COL_U8,
    FV_COL_U16,
    FV_COL_U64,
    FV_COL_STRING
};

struct fv_col {
    const char *name;      /* column name, as in the reference */
    enum fv_col_type type; /* its type */
};

/* The columns, in table order.  X(ENUM, "name", TYPE). */
#define FV_FLOW_COLUMNS(X)                                                                         \
    X(FV_C_TIME_INSERTED, "timeInserted", FV_COL_DATETIME)                                         \
    X(FV_C_FLOW_START, "flowStartSeconds", FV_COL_DATETIME)                                        \
    X(FV_C_FLOW_END, "flowEndSeconds", FV_COL_DATETIME)                                            \
    X(FV_C_FLOW_END_SRC, "flowEndSecondsFromSourceNode", FV_COL_DATETIME)                          \
    X(FV_C_FLOW_END_DST, "flowEndSecondsFromDestinationNode", FV_COL_DATETIME)                     \
    X(FV_C_FLOW_END_REASON, "flowEndReason", FV_COL_U8)                                            \
    X(FV_C_SRC_IP, "sourceIP", FV_COL_STRING)                                                      \
    X(FV_C_DST_IP, "destinationIP", FV_COL_STRING)                                                 \
    X(FV_C_SRC_PORT, "sourceTransportPort", FV_COL_U16)                                            \
    X(FV_C_DST_PORT, "destinationTransportPort", FV_COL_U16)                                       \
    X(FV_C_PROTO, "protocolIdentifier", FV_COL_U8)                                                 \
    X(FV_C_PKT_TOTAL, "packetTotalCount", FV_COL_U64)                                              \
    X(FV_C_OCT_TOTAL, "octetTotalCount", FV_COL_U64)                                               \
    X(FV_C_PKT_DELTA, "packetDeltaCount", FV_COL_U64)                                              \
    X(FV_C_OCT_DELTA, "octetDeltaCount", FV_COL_U64)                                               \
    X(FV_C_RPKT_TOTAL, "reversePacketTotalCount", FV_COL_U64)                                      \
    X(FV_C_ROCT_TOTAL, "reverseOctetTotalCount", FV_COL_U64)                                       \
    X(FV_C_RPKT_DELTA, "reversePacketDeltaCount", FV_COL_U64)                                      \
    X(FV_C_ROCT_DELTA, "reverseOctetDeltaCount", FV_COL_U64)                                       \
    X(FV_C_SRC_POD, "sourcePodName", FV_COL_STRING)                                                \
    X(FV_C_SRC_NS, "sourcePodNamespace", FV_COL_STRING)                                            \
    X(FV_C_SRC_NODE, "sourceNodeName", FV_COL_STRING)                                              \
    X(FV_C_DST_POD, "destinationPodName", FV_COL_STRING)                                           \
    X(FV_C_DST_NS, "destinationPodNamespace", FV_COL_STRING)                                       \
    X(FV_C_DST_NODE, "destinationNodeName", FV_COL_STRING)                                         \
    X(FV_C_CLUSTER_IP, "destinationClusterIP", FV_COL_STRING)                                      \
    X(FV_C_SVC_PORT, "destinationServicePort", FV_COL_U16)                                         \
    X(FV_C_SVC_NAME, "destinationServicePortName", FV_COL_STRING)                                  \
    X(FV_C_IN_POLICY, "ingressNetworkPolicyName", FV_COL_STRING)                                   \
    X(FV_C_IN_POLICY_NS, "ingressNetworkPolicyNamespace", FV_COL_STRING)                           \
    X(FV_C_IN_RULE, "ingressNetworkPolicyRuleName", FV_COL_STRING)                                 \
    X(FV_C_IN_ACTION, "ingressNetworkPolicyRuleAction", FV_COL_U8)                                 \
    X(FV_C_IN_TYPE, "ingressNetworkPolicyType", FV_COL_U8)                                         \
    X(FV_C_EG_POLICY, "egressNetworkPolicyName", FV_COL_STRING)                                    \
    X(FV_C_EG_POLICY_NS, "egressNetworkPolicyNamespace", FV_COL_STRING)                            \
    X(FV_C_EG_RULE, "egressNetworkPolicyRuleName", FV_COL_STRING)                                  \
    X(FV_C_EG_ACTION, "egressNetworkPolicyRuleAction", FV_COL_U8)                                  \
    X(FV_C_EG_TYPE, "egressNetworkPolicyType", FV_COL_U8)                                          \
    X(FV_C_TCP_STATE, "tcpState", FV_COL_STRING)                                                   \
    X(FV_C_FLOW_TYPE, "flowType", FV_COL_U8)                                                       \
    X(FV_C_SRC_LABELS, "sourcePodLabels", FV_COL_STRING)                                           \
    X(FV_C_DST_LABELS, "destinationPodLabels", FV_COL_STRING)                                      \
    X(FV_C_THR, "throughput", FV_COL_U64)                                                          \
    X(FV_C_RTHR, "reverseThroughput", FV_COL_U64)                                                  \
    X(FV_C_THR_SRC, "throughputFromSourceNode", FV_COL_U64)                                        \
    X(FV_C_THR_DST, "throughputFromDestinationNode", FV_COL_U64)                                   \
    X(FV_C_RTHR_SRC, "reverseThroughputFromSourceNode", FV_COL_U64)                                \
    X(FV_C_RTHR_DST, "reverseThroughputFromDestinationNode", FV_COL_U64)                           \
    X(FV_C_TRUSTED, "trusted", FV_COL_U8)

enum fv_flow_col {
#define FV_COL_ENUM(e, name, type) e,
    FV_FLOW_COLUMNS(FV_COL_ENUM)
#undef FV_COL_ENUM
        FV_FLOW_NCOLS
};

extern const struct fv_col fv_flow_cols[FV_FLOW_NCOLS];

/* The column named name (exact, case-sensitive), or -1. */
int fv_flow_col_find(const char *name);

/* The ClickHouse type name of t ("DateTime", "UInt8", "String", ...). */
const char *fv_col_type_ch(enum fv_col_type t);

/* One row: v[] holds every integer and DateTime column, s[]/slen[] every
 * string column (not NUL-terminated; borrowed from the record or the
 * parsed buffer, or from ipbuf for the addresses). */
struct fv_flow_row {
    uint64_t v[FV_FLOW_NCOLS];
    const char *s[FV_FLOW_NCOLS];
    uint32_t slen[FV_FLOW_NCOLS];
    char ipbuf[3][46]; /* sourceIP, destinationIP, destinationClusterIP */
};

/* Fills row from an exported aggregated record; time_inserted is the wall
 * clock in seconds.  Strings borrow from rec (and from row->ipbuf).
 * trusted is 0: flowvis has no notion of untrusted records yet. */
void fv_flow_row_from_rec(struct fv_flow_row *row, const struct fv_agg_rec *rec,
                          uint32_t time_inserted);

/* Appends the row in RowBinary.  0 or the sbuf's error. */
int fv_flow_row_encode(const struct fv_flow_row *row, struct fv_sbuf *out);

/* Parses one RowBinary row at p (len bytes available).  Returns the bytes
 * it used, or -FV_ETRUNC when the row is cut short.  Strings point into p. */
int fv_flow_row_parse(const void *p, size_t len, struct fv_flow_row *row);

#endif
