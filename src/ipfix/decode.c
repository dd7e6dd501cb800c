/*
 * decode.c - message, set and record iterators and template parsing.
 *
 * Every length read from the wire is checked against the bytes that
 * remain before it is used; nothing here reads past `end`.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "base/bytes.h"
#include "base/err.h"
#include "ipfix/ipfix.h"

#define ENTERPRISE_BIT 0x8000u

int fv_ipfix_msg_open(const uint8_t *buf, size_t len, struct fv_ipfix_msg *msg)
{
    uint16_t version, length;

    if (len < FV_IPFIX_HEADER_LEN)
        return -FV_ETRUNC;
    version = fv_load_be16(buf);
    length = fv_load_be16(buf + 2);
    if (version != FV_IPFIX_VERSION)
        return -FV_EVERSION;
    if (length < FV_IPFIX_HEADER_LEN || length > len)
        return -FV_ELENGTH;
    msg->buf = buf;
    msg->length = length;
    msg->export_time = fv_load_be32(buf + 4);
    msg->seq = fv_load_be32(buf + 8);
    msg->domain = fv_load_be32(buf + 12);
    return 0;
}

void fv_ipfix_set_iter_init(struct fv_ipfix_set_iter *it, const struct fv_ipfix_msg *msg)
{
    it->p = msg->buf + FV_IPFIX_HEADER_LEN;
    it->end = msg->buf + msg->length;
}

int fv_ipfix_set_iter_next(struct fv_ipfix_set_iter *it, struct fv_ipfix_set *set)
{
    size_t left = (size_t)(it->end - it->p);

    if (left == 0)
        return -FV_EEND;
    if (left < FV_IPFIX_SET_HEADER_LEN)
        return -FV_ELENGTH;
    set->id = fv_load_be16(it->p);
    set->length = fv_load_be16(it->p + 2);
    if (set->length < FV_IPFIX_SET_HEADER_LEN || set->length > left)
        return -FV_ELENGTH;
    /* Set ids 0, 1 (NetFlow v9) and 4..255 are reserved in IPFIX. */
    if (set->id != FV_IPFIX_SET_TEMPLATE && set->id != FV_IPFIX_SET_OPTIONS_TEMPLATE &&
        set->id < FV_IPFIX_MIN_DATA_SET)
        return -FV_ESETID;
    set->body = it->p + FV_IPFIX_SET_HEADER_LEN;
    it->p += set->length;
    return 0;
}

void fv_ipfix_rec_iter_init(struct fv_ipfix_rec_iter *it, const struct fv_ipfix_template *tmpl,
                            const struct fv_ipfix_set *set)
{
    it->tmpl = tmpl;
    it->p = set->body;
    it->end = set->body + (set->length - FV_IPFIX_SET_HEADER_LEN);
}

/* Walks a record with variable-length fields; fills values if asked. */
static int walk_varlen(const struct fv_ipfix_template *t, const uint8_t *p, const uint8_t *end,
                       struct fv_ipfix_value *values, uint16_t *reclen)
{
    const uint8_t *start = p;

    for (uint16_t i = 0; i < t->field_count; i++) {
        size_t n = t->fields[i].length;
        if (n == FV_IE_VARLEN) {
            if (p >= end)
                return -FV_ERECORD;
            n = *p++;
            if (n == 255) {
                if (end - p < 2)
                    return -FV_ERECORD;
                n = fv_load_be16(p);
                p += 2;
            }
        }
        if ((size_t)(end - p) < n)
            return -FV_ERECORD;
        if (values) {
            values[i].p = p;
            values[i].len = (uint16_t)n;
        }
        p += n;
    }
    *reclen = (uint16_t)(p - start);
    return 0;
}

int fv_ipfix_rec_iter_next(struct fv_ipfix_rec_iter *it, struct fv_ipfix_rec *rec,
                           struct fv_ipfix_value *values)
{
    const struct fv_ipfix_template *t = it->tmpl;
    size_t left = (size_t)(it->end - it->p);
    uint16_t len;

    /* Anything shorter than the shortest record is padding (RFC 7011 3.3.1). */
    if (left < t->min_len || left == 0)
        return -FV_EEND;
    if (t->varlen_count == 0) {
        len = t->min_len;
        if (values) {
            const uint8_t *p = it->p;
            for (uint16_t i = 0; i < t->field_count; i++) {
                values[i].p = p;
                values[i].len = t->fields[i].length;
                p += t->fields[i].length;
            }
        }
    } else {
        int rc = walk_varlen(t, it->p, it->end, values, &len);
        if (rc < 0)
            return rc;
    }
    rec->tmpl = t;
    rec->data = it->p;
    rec->len = len;
    it->p += len;
    return 0;
}

uint64_t fv_ipfix_value_uint(const struct fv_ipfix_value *v)
{
    switch (v->len) {
    case 1:
        return v->p[0];
    case 2:
        return fv_load_be16(v->p);
    case 4:
        return fv_load_be32(v->p);
    case 8:
        return fv_load_be64(v->p);
    default:
        return v->len <= 8 ? fv_load_uint(v->p, v->len) : 0;
    }
}

static _Atomic uint32_t template_serial;

int fv_ipfix_template_parse(const uint8_t *p, size_t len, bool options,
                            struct fv_ipfix_template **out, uint16_t *withdraw_id, size_t *used)
{
    struct fv_rd rd;
    uint16_t id, count, scope = 0;
    struct fv_ipfix_template *t;
    uint32_t min_len = 0;

    *out = NULL;
    fv_rd_init(&rd, p, len);
    if (fv_rd_u16(&rd, &id) < 0 || fv_rd_u16(&rd, &count) < 0)
        return -FV_ETEMPLATE;
    if (id < FV_IPFIX_MIN_DATA_SET) {
        /* Ids 2 and 3 with a zero count withdraw all templates of a kind. */
        if (count == 0 && (id == FV_IPFIX_SET_TEMPLATE || id == FV_IPFIX_SET_OPTIONS_TEMPLATE)) {
            *withdraw_id = id;
            *used = 4;
            return 0;
        }
        return -FV_ETEMPLATE;
    }
    if (count == 0) {
        *withdraw_id = id;
        *used = 4;
        return 0;
    }
    if (options) {
        if (fv_rd_u16(&rd, &scope) < 0 || scope == 0 || scope > count)
            return -FV_ETEMPLATE;
    }
    if (count > FV_IPFIX_MAX_FIELDS)
        return -FV_ELIMIT;
    /* Each specifier takes at least 4 bytes: reject lying counts early. */
    if (fv_rd_left(&rd) < (size_t)count * 4)
        return -FV_ETEMPLATE;
    t = malloc(sizeof(*t) + (size_t)count * sizeof(t->fields[0]));
    if (t == NULL)
        return -ENOMEM;
    t->id = id;
    t->field_count = count;
    t->scope_count = scope;
    t->varlen_count = 0;
    t->expires_ms = 0;
    for (uint16_t i = 0; i < count; i++) {
        struct fv_ipfix_field *f = &t->fields[i];
        uint16_t ie_id, flen;
        uint32_t pen = 0;
        if (fv_rd_u16(&rd, &ie_id) < 0 || fv_rd_u16(&rd, &flen) < 0)
            goto bad;
        if ((ie_id & ENTERPRISE_BIT) && fv_rd_u32(&rd, &pen) < 0)
            goto bad;
        f->pen = pen;
        f->id = ie_id & ~ENTERPRISE_BIT;
        f->length = flen;
        f->ie = fv_ie_find(pen, f->id);
        if (flen == FV_IE_VARLEN) {
            t->varlen_count++;
            min_len += 1;
        } else {
            min_len += flen;
        }
    }
    /* A record must have at least one byte, and fit in a message. */
    if (min_len == 0 || min_len > FV_IPFIX_MAX_MESSAGE - FV_IPFIX_HEADER_LEN - 4)
        goto bad;
    t->min_len = (uint16_t)min_len;
    t->serial = atomic_fetch_add(&template_serial, 1) + 1;
    *out = t;
    *used = (size_t)(rd.p - p);
    return 0;
bad:
    free(t);
    return -FV_ETEMPLATE;
}
