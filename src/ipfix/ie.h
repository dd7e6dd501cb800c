/*
 * ie.h - the registry of IPFIX information elements (IEs) flowvis knows.
 *
 * The registry is data (ie_table.def): the IANA elements flowvis uses or
 * commonly receives from routers and exporters, their RFC 5103 reverse
 * counterparts under PEN 29305 (derived at start-up, same ids, names
 * prefixed with "reverse"), and the Antrea elements under PEN 56506.
 * Lookups are by (PEN, id), used when a template arrives, and by name,
 * used when configuration or tests name a field.  An element missing from
 * the registry is not an error anywhere: the decoder keeps it as an
 * octet array named ie<pen>_<id>.
 *
 * Entries are immutable and live for the whole process; lookups are
 * thread-safe (the table is built once, under pthread_once).
 *
 *     const struct fv_ie *ie = fv_ie_find(FV_PEN_ANTREA, 101);
 *     // ie->name == "sourcePodName", ie->type == FV_IE_STRING
 */
#ifndef FV_IPFIX_IE_H
#define FV_IPFIX_IE_H

#include <stdint.h>

#define FV_PEN_IANA 0u
#define FV_PEN_REVERSE 29305u /* RFC 5103 reverse information elements */
#define FV_PEN_ANTREA 56506u  /* Antrea; flowvis is wire-compatible */

/* Abstract data types, numbered as in the IANA registry (RFC 7012). */
enum fv_ie_type {
    FV_IE_OCTETS = 0,
    FV_IE_U8 = 1,
    FV_IE_U16 = 2,
    FV_IE_U32 = 3,
    FV_IE_U64 = 4,
    FV_IE_I8 = 5,
    FV_IE_I16 = 6,
    FV_IE_I32 = 7,
    FV_IE_I64 = 8,
    FV_IE_F32 = 9,
    FV_IE_F64 = 10,
    FV_IE_BOOL = 11,
    FV_IE_MAC = 12,
    FV_IE_STRING = 13,
    FV_IE_DT_S = 14,
    FV_IE_DT_MS = 15,
    FV_IE_DT_US = 16,
    FV_IE_DT_NS = 17,
    FV_IE_IPV4 = 18,
    FV_IE_IPV6 = 19,
    FV_IE_BASICLIST = 20,
    FV_IE_STL = 21,
    FV_IE_STML = 22,
};

#define FV_IE_VARLEN 65535u /* field length meaning "variable" in a template */

struct fv_ie {
    uint32_t pen;     /* private enterprise number, 0 for IANA */
    uint16_t id;      /* element id, without the enterprise bit */
    uint8_t type;     /* enum fv_ie_type */
    uint16_t length;  /* natural encoded length, FV_IE_VARLEN if variable */
    const char *name; /* camelCase name as in the registry */
    uint8_t name_len; /* strlen(name), so formatting needs no strlen */
};

/* The element with this (pen, id), or NULL when the registry lacks it. */
const struct fv_ie *fv_ie_find(uint32_t pen, uint16_t id);

/* The element with this name, or NULL. */
const struct fv_ie *fv_ie_find_name(const char *name);

/* Natural length of a type: 1..16, or FV_IE_VARLEN for strings, octet
 * arrays and lists. */
uint16_t fv_ie_type_length(enum fv_ie_type type);

/* Name of the abstract data type ("unsigned64", "string", ...). */
const char *fv_ie_type_name(enum fv_ie_type type);

/* Calls fn for every entry, in (pen, id) order; for docs and tests. */
void fv_ie_foreach(void (*fn)(const struct fv_ie *ie, void *arg), void *arg);

#endif
