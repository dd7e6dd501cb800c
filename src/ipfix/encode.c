/*
 * encode.c - building IPFIX messages in a caller-owned buffer.
 *
 * Records of the same template written one after another share one data
 * set; a template or a record of another template closes the set.  A
 * value that does not fit marks the record as overflowed; record_end then
 * rolls the message back to where the record began, so a full message is
 * always well-formed and the caller sends it and writes the record again
 * into a fresh one.
 */
#include <string.h>

#include "base/bytes.h"
#include "base/err.h"
#include "ipfix/ipfix.h"

void fv_ipfix_writer_init(struct fv_ipfix_writer *w, uint8_t *buf, size_t cap)
{
    w->buf = buf;
    w->cap = cap > FV_IPFIX_MAX_MESSAGE ? FV_IPFIX_MAX_MESSAGE : cap;
    fv_ipfix_writer_reset(w);
}

void fv_ipfix_writer_reset(struct fv_ipfix_writer *w)
{
    w->len = FV_IPFIX_HEADER_LEN;
    w->set_off = 0;
    w->set_id = 0;
    w->rec_off = 0;
    w->overflow = false;
    w->records = 0;
}

static void close_set(struct fv_ipfix_writer *w)
{
    if (w->set_off == 0)
        return;
    fv_store_be16(w->buf + w->set_off + 2, (uint16_t)(w->len - w->set_off));
    w->set_off = 0;
    w->set_id = 0;
}

/* Makes sure a set with this id is open; false if its header does not fit. */
static bool open_set(struct fv_ipfix_writer *w, uint16_t id)
{
    if (w->set_off != 0 && w->set_id == id)
        return true;
    close_set(w);
    if (w->len + FV_IPFIX_SET_HEADER_LEN > w->cap)
        return false;
    w->set_off = w->len;
    w->set_id = id;
    fv_store_be16(w->buf + w->len, id);
    w->len += FV_IPFIX_SET_HEADER_LEN;
    return true;
}

int fv_ipfix_writer_add_template(struct fv_ipfix_writer *w, const struct fv_ipfix_template_def *t)
{
    size_t need = 4;
    size_t save_len = w->len, save_set = w->set_off;
    uint16_t save_id = w->set_id;

    for (uint16_t i = 0; i < t->field_count; i++)
        need += t->fields[i].pen ? 8 : 4;
    if (!open_set(w, FV_IPFIX_SET_TEMPLATE) || w->len + need > w->cap) {
        w->len = save_len;
        w->set_off = save_set;
        w->set_id = save_id;
        return -FV_ENOSPACE;
    }
    fv_store_be16(w->buf + w->len, t->id);
    fv_store_be16(w->buf + w->len + 2, t->field_count);
    w->len += 4;
    for (uint16_t i = 0; i < t->field_count; i++) {
        const struct fv_ipfix_field *f = &t->fields[i];
        fv_store_be16(w->buf + w->len, (uint16_t)(f->id | (f->pen ? 0x8000u : 0)));
        fv_store_be16(w->buf + w->len + 2, f->length);
        w->len += 4;
        if (f->pen) {
            fv_store_be32(w->buf + w->len, f->pen);
            w->len += 4;
        }
    }
    return 0;
}

void fv_ipfix_writer_record_begin(struct fv_ipfix_writer *w, uint16_t template_id)
{
    /* Remember the state before the set header too, for the rollback. */
    w->rec_off = w->len;
    w->overflow = false;
    if (w->set_off == 0 || w->set_id != template_id) {
        size_t before = w->len;
        if (!open_set(w, template_id))
            w->overflow = true;
        w->rec_off = before;
    }
}

int fv_ipfix_writer_record_end(struct fv_ipfix_writer *w)
{
    if (w->overflow) {
        /* Roll back the record and a set header opened for it alone. */
        if (w->set_off == w->rec_off) {
            w->set_off = 0;
            w->set_id = 0;
        }
        w->len = w->rec_off;
        w->overflow = false;
        return -FV_ENOSPACE;
    }
    w->records++;
    return 0;
}

size_t fv_ipfix_writer_finish(struct fv_ipfix_writer *w, uint32_t export_time, uint32_t seq,
                              uint32_t domain)
{
    close_set(w);
    fv_store_be16(w->buf, FV_IPFIX_VERSION);
    fv_store_be16(w->buf + 2, (uint16_t)w->len);
    fv_store_be32(w->buf + 4, export_time);
    fv_store_be32(w->buf + 8, seq);
    fv_store_be32(w->buf + 12, domain);
    return w->len;
}

static inline uint8_t *room(struct fv_ipfix_writer *w, size_t n)
{
    uint8_t *p;

    if (w->overflow || w->len + n > w->cap) {
        w->overflow = true;
        return NULL;
    }
    p = w->buf + w->len;
    w->len += n;
    return p;
}

void fv_ipfix_put_u8(struct fv_ipfix_writer *w, uint8_t v)
{
    uint8_t *p = room(w, 1);
    if (p)
        *p = v;
}

void fv_ipfix_put_u16(struct fv_ipfix_writer *w, uint16_t v)
{
    uint8_t *p = room(w, 2);
    if (p)
        fv_store_be16(p, v);
}

void fv_ipfix_put_u32(struct fv_ipfix_writer *w, uint32_t v)
{
    uint8_t *p = room(w, 4);
    if (p)
        fv_store_be32(p, v);
}

void fv_ipfix_put_u64(struct fv_ipfix_writer *w, uint64_t v)
{
    uint8_t *p = room(w, 8);
    if (p)
        fv_store_be64(p, v);
}

void fv_ipfix_put_bytes(struct fv_ipfix_writer *w, const void *src, size_t n)
{
    uint8_t *p = room(w, n);
    if (p && n)
        memcpy(p, src, n);
}

void fv_ipfix_put_varlen(struct fv_ipfix_writer *w, const void *src, size_t n)
{
    uint8_t *p;

    if (n > FV_IPFIX_MAX_MESSAGE) {
        w->overflow = true;
        return;
    }
    if (n < 255) {
        p = room(w, 1 + n);
        if (p == NULL)
            return;
        *p++ = (uint8_t)n;
    } else {
        p = room(w, 3 + n);
        if (p == NULL)
            return;
        *p++ = 255;
        fv_store_be16(p, (uint16_t)n);
        p += 2;
    }
    if (n)
        memcpy(p, src, n);
}
