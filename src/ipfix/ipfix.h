/*
 * ipfix.h - the IPFIX codec (RFC 7011): message, set and record decoding,
 * templates per (transport session, observation domain), sequence
 * accounting, and message encoding.
 *
 * This is flowvis' hot path.  Decoding allocates nothing per record: the
 * caller owns the message bytes, iterators are caller-allocated structs,
 * and a decoded record is a view (pointers into the message) that is valid
 * only during the callback that receives it.  Templates are allocated when
 * they arrive and are owned by the session.  The codec does not log; it
 * returns codes and keeps counters for the caller to report.
 *
 * Thread rules: a session is used by one thread at a time.
 *
 * Decoding a stream (one session per TCP connection or UDP exporter):
 *
 *     struct fv_ipfix_session s;
 *     fv_ipfix_session_init(&s, FV_IPFIX_UDP_TEMPLATE_LIFETIME_S);
 *     struct fv_ipfix_handler h = {.on_record = print_record, .ctx = out};
 *     int rc = fv_ipfix_session_decode(&s, buf, len, fv_clock_mono_ms(), &h);
 *     if (rc < 0) ... message malformed: counted in s's domain, skipped ...
 *     fv_ipfix_session_fini(&s);
 *
 * Encoding (see struct fv_ipfix_writer below):
 *
 *     fv_ipfix_writer_init(&w, buf, 1400);
 *     fv_ipfix_writer_add_template(&w, &tmpl);
 *     fv_ipfix_writer_record_begin(&w, 256);
 *     fv_ipfix_put_u32(&w, start); ... fv_ipfix_put_string(&w, "pod-a", 5);
 *     if (fv_ipfix_writer_record_end(&w) == -FV_ENOSPACE) ... send, restart ...
 *     len = fv_ipfix_writer_finish(&w, export_time, seq, domain);
 */
#ifndef FV_IPFIX_IPFIX_H
#define FV_IPFIX_IPFIX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ipfix/ie.h"

#define FV_IPFIX_VERSION 10
#define FV_IPFIX_HEADER_LEN 16
#define FV_IPFIX_SET_HEADER_LEN 4
#define FV_IPFIX_SET_TEMPLATE 2
#define FV_IPFIX_SET_OPTIONS_TEMPLATE 3
#define FV_IPFIX_MIN_DATA_SET 256
#define FV_IPFIX_MAX_MESSAGE 65535
#define FV_IPFIX_UDP_TEMPLATE_LIFETIME_S 1800 /* SPEC section 2 default */
#define FV_IPFIX_MAX_FIELDS 512               /* larger templates are rejected (FV_ELIMIT) */
#define FV_IPFIX_MAX_TEMPLATES 4096           /* per observation domain */
#define FV_IPFIX_MAX_DOMAINS 1024             /* per transport session */

/* One field specifier of a template. */
struct fv_ipfix_field {
    uint32_t pen;           /* enterprise number, 0 for IANA */
    uint16_t id;            /* element id without the enterprise bit */
    uint16_t length;        /* encoded length, FV_IE_VARLEN for variable */
    const struct fv_ie *ie; /* registry entry; NULL for unknown elements */
};

/* A template or options template, as received.  Owned by the session. */
struct fv_ipfix_template {
    uint16_t id;                    /* template id, >= 256 */
    uint16_t field_count;           /* number of entries in fields[] */
    uint16_t scope_count;           /* scope fields, > 0 only for options templates */
    uint16_t min_len;               /* shortest possible record (var-len fields count 1) */
    uint16_t varlen_count;          /* fields with FV_IE_VARLEN */
    uint32_t serial;                /* unique per definition in this process, for caches */
    uint64_t expires_ms;            /* monotonic expiry for UDP sessions, 0 = never */
    struct fv_ipfix_field fields[]; /* field_count specifiers, in order */
};

/* A message header, validated by fv_ipfix_msg_open(). */
struct fv_ipfix_msg {
    const uint8_t *buf;   /* the message, borrowed */
    uint16_t length;      /* total length from the header */
    uint32_t export_time; /* seconds since the epoch */
    uint32_t seq;         /* sequence number */
    uint32_t domain;      /* observation domain id */
};

/* One set of a message. */
struct fv_ipfix_set {
    uint16_t id;         /* 2, 3 or a template id >= 256 */
    uint16_t length;     /* including the 4-byte set header */
    const uint8_t *body; /* the set's content after its header, borrowed */
};

/* A field value inside a record: a view into the message. */
struct fv_ipfix_value {
    const uint8_t *p; /* first byte of the value */
    uint16_t len;     /* encoded length (after var-len prefix) */
};

/* One data record. */
struct fv_ipfix_rec {
    const struct fv_ipfix_template *tmpl; /* its template, borrowed */
    const uint8_t *data;                  /* first byte of the record */
    uint16_t len;                         /* record length */
};

struct fv_ipfix_set_iter {
    const uint8_t *p;   /* next set header */
    const uint8_t *end; /* end of the message */
};

struct fv_ipfix_rec_iter {
    const struct fv_ipfix_template *tmpl; /* template of the set */
    const uint8_t *p;                     /* next record */
    const uint8_t *end;                   /* end of the set */
};

/* Validates a message header: version 10, 16 <= length <= len.  Bytes
 * after the message's length are not part of it. */
int fv_ipfix_msg_open(const uint8_t *buf, size_t len, struct fv_ipfix_msg *msg);

void fv_ipfix_set_iter_init(struct fv_ipfix_set_iter *it, const struct fv_ipfix_msg *msg);
/* 0 with *set filled, -FV_EEND after the last set, -FV_ELENGTH or
 * -FV_ESETID for a set that cannot be framed (the rest is unusable). */
int fv_ipfix_set_iter_next(struct fv_ipfix_set_iter *it, struct fv_ipfix_set *set);

void fv_ipfix_rec_iter_init(struct fv_ipfix_rec_iter *it, const struct fv_ipfix_template *tmpl,
                            const struct fv_ipfix_set *set);
/* 0 with *rec filled and, when values is not NULL, values[i] set for each
 * of the template's fields; -FV_EEND when only padding remains;
 * -FV_ERECORD when a record runs past the set. */
int fv_ipfix_rec_iter_next(struct fv_ipfix_rec_iter *it, struct fv_ipfix_rec *rec,
                           struct fv_ipfix_value *values);

/* Decodes the value of an unsigned or signed integer, boolean or
 * date-time field of any (reduced) length up to 8 bytes. */
uint64_t fv_ipfix_value_uint(const struct fv_ipfix_value *v);

/* ---- Sessions, observation domains, templates and sequence accounting ---- */

/* Counters for one observation domain of one transport session. */
struct fv_ipfix_domain_stats {
    uint64_t messages;         /* messages decoded without error */
    uint64_t records;          /* data records delivered */
    uint64_t templates;        /* template and options template records accepted */
    uint64_t withdrawals;      /* template withdrawals applied */
    uint64_t malformed;        /* messages rejected (whole or in part) */
    uint64_t missing_template; /* data sets skipped: template unknown or expired */
    uint64_t lost;             /* records missing according to sequence numbers */
    uint64_t reordered;        /* records that arrived after later ones */
};

struct fv_ipfix_tmap; /* template id -> template, private to the codec */

struct fv_ipfix_domain {
    uint32_t id;                        /* observation domain id */
    bool seq_valid;                     /* next_seq holds an expectation */
    uint32_t next_seq;                  /* expected sequence number of the next message */
    struct fv_ipfix_domain_stats stats; /* counters */
    struct fv_ipfix_tmap *templates;    /* owned */
};

struct fv_ipfix_session {
    uint32_t template_lifetime_s;    /* 0 for TCP/TLS: templates never expire */
    uint32_t domain_count;           /* used entries of domains */
    uint32_t domain_cap;             /* allocated entries */
    struct fv_ipfix_domain *domains; /* owned array */
    int last_error;                  /* code of the last malformed message */
    uint32_t last_error_domain;      /* its domain */
};

/* Callbacks of fv_ipfix_session_decode().  on_record returning a positive
 * value stops decoding of the message; the value is returned to the caller. */
struct fv_ipfix_handler {
    int (*on_record)(void *ctx, const struct fv_ipfix_msg *msg, const struct fv_ipfix_rec *rec,
                     const struct fv_ipfix_value *values);
    /* Optional: a template was defined (withdrawn == false) or withdrawn. */
    void (*on_template)(void *ctx, const struct fv_ipfix_msg *msg,
                        const struct fv_ipfix_template *tmpl, bool withdrawn);
    void *ctx;
};

/* template_lifetime_s: FV_IPFIX_UDP_TEMPLATE_LIFETIME_S (or the configured
 * value) for UDP, 0 for TCP/TLS. */
void fv_ipfix_session_init(struct fv_ipfix_session *s, uint32_t template_lifetime_s);
void fv_ipfix_session_fini(struct fv_ipfix_session *s);

/* Decodes one message: applies its templates, delivers its data records,
 * accounts its sequence number.  Returns 0, or a negative code when the
 * message (or a set of it) was malformed; then it is counted in the
 * domain's `malformed` and the rest of it skipped.  Records delivered
 * before the faulty part stay delivered. */
int fv_ipfix_session_decode(struct fv_ipfix_session *s, const uint8_t *buf, size_t len,
                            uint64_t now_ms, const struct fv_ipfix_handler *h);

/* The domain's state, or NULL if the session has not seen it. */
struct fv_ipfix_domain *fv_ipfix_session_domain(struct fv_ipfix_session *s, uint32_t id);

/* The current template, or NULL (unknown or expired at now_ms). */
const struct fv_ipfix_template *fv_ipfix_domain_template(struct fv_ipfix_domain *d, uint16_t id,
                                                         uint64_t now_ms);

/* Parses one template record body (after the set header) starting at p:
 * used by the session and by tests.  On success *out is a new template
 * (caller frees with free()) or NULL for a withdrawal, and *used is the
 * number of bytes consumed. */
int fv_ipfix_template_parse(const uint8_t *p, size_t len, bool options,
                            struct fv_ipfix_template **out, uint16_t *withdraw_id, size_t *used);

/* ---- Encoding ---- */

/* A message being built in a caller-owned buffer.  Records are written
 * field by field; a record that does not fit is rolled back by
 * fv_ipfix_writer_record_end() so the message stays valid. */
struct fv_ipfix_writer {
    uint8_t *buf;     /* message buffer, borrowed */
    size_t cap;       /* bytes usable: the MTU budget or 65535 */
    size_t len;       /* bytes written so far */
    size_t set_off;   /* offset of the open set header, 0 when none */
    uint16_t set_id;  /* id of the open set */
    size_t rec_off;   /* start of the record being written */
    bool overflow;    /* the current record ran out of room */
    uint32_t records; /* data records in this message */
};

/* A template to send: borrowed field list. */
struct fv_ipfix_template_def {
    uint16_t id;                         /* >= 256 */
    uint16_t field_count;                /* entries of fields */
    const struct fv_ipfix_field *fields; /* pen, id and length are used */
};

/* cap is clamped to 65535. */
void fv_ipfix_writer_init(struct fv_ipfix_writer *w, uint8_t *buf, size_t cap);
/* Starts an empty message (keeps the buffer). */
void fv_ipfix_writer_reset(struct fv_ipfix_writer *w);
/* Appends a template record (in a template set); -FV_ENOSPACE if it does
 * not fit. */
int fv_ipfix_writer_add_template(struct fv_ipfix_writer *w, const struct fv_ipfix_template_def *t);
void fv_ipfix_writer_record_begin(struct fv_ipfix_writer *w, uint16_t template_id);
int fv_ipfix_writer_record_end(struct fv_ipfix_writer *w);
/* Closes the open set, writes the header; returns the message length. */
size_t fv_ipfix_writer_finish(struct fv_ipfix_writer *w, uint32_t export_time, uint32_t seq,
                              uint32_t domain);

void fv_ipfix_put_u8(struct fv_ipfix_writer *w, uint8_t v);
void fv_ipfix_put_u16(struct fv_ipfix_writer *w, uint16_t v);
void fv_ipfix_put_u32(struct fv_ipfix_writer *w, uint32_t v);
void fv_ipfix_put_u64(struct fv_ipfix_writer *w, uint64_t v);
/* Fixed-length bytes (addresses, MACs). */
void fv_ipfix_put_bytes(struct fv_ipfix_writer *w, const void *p, size_t n);
/* Variable-length value: 1-byte length, or 255 and a 2-byte length. */
void fv_ipfix_put_varlen(struct fv_ipfix_writer *w, const void *p, size_t n);

#endif
