/*
 * session.c - templates per (transport session, observation domain),
 * sequence accounting, and the message decoding loop.
 *
 * Templates of a domain live in a small open-addressing table keyed by
 * template id (linear probing, backward-shift deletion); the table is
 * touched once per set, never per record.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "ipfix/ipfix.h"

struct fv_ipfix_tmap {
    uint32_t cap;                     /* power of two */
    uint32_t count;                   /* occupied slots */
    struct fv_ipfix_template **slots; /* NULL = empty; templates owned */
};

static uint32_t slot_of(uint32_t cap, uint16_t id)
{
    return ((uint32_t)id * 2654435761u) >> 8 & (cap - 1);
}

static struct fv_ipfix_tmap *tmap_new(void)
{
    struct fv_ipfix_tmap *m = calloc(1, sizeof(*m));
    if (m == NULL)
        return NULL;
    m->cap = 8;
    m->slots = calloc(m->cap, sizeof(m->slots[0]));
    if (m->slots == NULL) {
        free(m);
        return NULL;
    }
    return m;
}

static void tmap_free(struct fv_ipfix_tmap *m)
{
    if (m == NULL)
        return;
    for (uint32_t i = 0; i < m->cap; i++)
        free(m->slots[i]);
    free(m->slots);
    free(m);
}

static uint32_t tmap_find(const struct fv_ipfix_tmap *m, uint16_t id)
{
    uint32_t i = slot_of(m->cap, id);
    while (m->slots[i] != NULL && m->slots[i]->id != id)
        i = (i + 1) & (m->cap - 1);
    return i;
}

static int tmap_grow(struct fv_ipfix_tmap *m)
{
    struct fv_ipfix_tmap bigger = {.cap = m->cap * 2};

    bigger.slots = calloc(bigger.cap, sizeof(bigger.slots[0]));
    if (bigger.slots == NULL)
        return -ENOMEM;
    for (uint32_t i = 0; i < m->cap; i++)
        if (m->slots[i] != NULL)
            bigger.slots[tmap_find(&bigger, m->slots[i]->id)] = m->slots[i];
    free(m->slots);
    m->slots = bigger.slots;
    m->cap = bigger.cap;
    return 0;
}

/* Inserts or replaces; takes ownership of t. */
static int tmap_put(struct fv_ipfix_tmap *m, struct fv_ipfix_template *t)
{
    uint32_t i = tmap_find(m, t->id);

    if (m->slots[i] != NULL) {
        free(m->slots[i]);
        m->slots[i] = t;
        return 0;
    }
    if (m->count >= FV_IPFIX_MAX_TEMPLATES) {
        free(t);
        return -FV_ELIMIT;
    }
    if ((m->count + 1) * 4 > m->cap * 3) {
        int rc = tmap_grow(m);
        if (rc < 0) {
            free(t);
            return rc;
        }
        i = tmap_find(m, t->id);
    }
    m->slots[i] = t;
    m->count++;
    return 0;
}

static void tmap_del_slot(struct fv_ipfix_tmap *m, uint32_t i)
{
    uint32_t mask = m->cap - 1;

    free(m->slots[i]);
    m->slots[i] = NULL;
    m->count--;
    /* Backward-shift: move later members of the probe run into the hole. */
    for (uint32_t j = (i + 1) & mask; m->slots[j] != NULL; j = (j + 1) & mask) {
        uint32_t home = slot_of(m->cap, m->slots[j]->id);
        if (((j - home) & mask) >= ((j - i) & mask)) {
            m->slots[i] = m->slots[j];
            m->slots[j] = NULL;
            i = j;
        }
    }
}

static void tmap_del(struct fv_ipfix_tmap *m, uint16_t id)
{
    uint32_t i = tmap_find(m, id);
    if (m->slots[i] != NULL)
        tmap_del_slot(m, i);
}

/* Withdraws every template (options == false) or options template and
 * tells the handler about each one that had not expired, as a single
 * withdrawal does. */
static void tmap_del_all(struct fv_ipfix_tmap *m, bool options, const struct fv_ipfix_msg *msg,
                         uint64_t now_ms, const struct fv_ipfix_handler *h)
{
    for (uint32_t i = 0; i < m->cap;) {
        struct fv_ipfix_template *t = m->slots[i];
        if (t == NULL || (t->scope_count > 0) != options) {
            i++;
            continue;
        }
        if (h->on_template && (t->expires_ms == 0 || t->expires_ms > now_ms))
            h->on_template(h->ctx, msg, t, true);
        tmap_del_slot(m, i); /* a shifted entry may land in i: look again */
    }
}

void fv_ipfix_session_init(struct fv_ipfix_session *s, uint32_t template_lifetime_s)
{
    memset(s, 0, sizeof(*s));
    s->template_lifetime_s = template_lifetime_s;
}

void fv_ipfix_session_fini(struct fv_ipfix_session *s)
{
    for (uint32_t i = 0; i < s->domain_count; i++)
        tmap_free(s->domains[i].templates);
    free(s->domains);
    memset(s, 0, sizeof(*s));
}

struct fv_ipfix_domain *fv_ipfix_session_domain(struct fv_ipfix_session *s, uint32_t id)
{
    for (uint32_t i = 0; i < s->domain_count; i++)
        if (s->domains[i].id == id)
            return &s->domains[i];
    return NULL;
}

static int domain_get(struct fv_ipfix_session *s, uint32_t id, struct fv_ipfix_domain **out)
{
    struct fv_ipfix_domain *d = fv_ipfix_session_domain(s, id);

    if (d != NULL) {
        *out = d;
        return 0;
    }
    if (s->domain_count >= FV_IPFIX_MAX_DOMAINS)
        return -FV_ELIMIT;
    if (s->domain_count == s->domain_cap) {
        uint32_t cap = s->domain_cap ? s->domain_cap * 2 : 2;
        d = realloc(s->domains, cap * sizeof(*d));
        if (d == NULL)
            return -ENOMEM;
        s->domains = d;
        s->domain_cap = cap;
    }
    d = &s->domains[s->domain_count];
    memset(d, 0, sizeof(*d));
    d->id = id;
    d->templates = tmap_new();
    if (d->templates == NULL)
        return -ENOMEM;
    s->domain_count++;
    *out = d;
    return 0;
}

const struct fv_ipfix_template *fv_ipfix_domain_template(struct fv_ipfix_domain *d, uint16_t id,
                                                         uint64_t now_ms)
{
    uint32_t i = tmap_find(d->templates, id);
    struct fv_ipfix_template *t = d->templates->slots[i];

    if (t != NULL && t->expires_ms != 0 && t->expires_ms <= now_ms) {
        tmap_del_slot(d->templates, i);
        return NULL;
    }
    return t;
}

/* Applies every template record of a template or options template set. */
static int decode_template_set(struct fv_ipfix_session *s, struct fv_ipfix_domain *d,
                               const struct fv_ipfix_msg *msg, const struct fv_ipfix_set *set,
                               uint64_t now_ms, const struct fv_ipfix_handler *h)
{
    bool options = set->id == FV_IPFIX_SET_OPTIONS_TEMPLATE;
    const uint8_t *p = set->body;
    size_t left = set->length - FV_IPFIX_SET_HEADER_LEN;

    /* Fewer than 4 bytes cannot hold a template record header: padding. */
    while (left >= 4) {
        struct fv_ipfix_template *t;
        uint16_t withdraw_id = 0;
        size_t used;
        int rc = fv_ipfix_template_parse(p, left, options, &t, &withdraw_id, &used);
        if (rc < 0)
            return rc;
        p += used;
        left -= used;
        if (t == NULL) {
            if (withdraw_id == FV_IPFIX_SET_TEMPLATE ||
                withdraw_id == FV_IPFIX_SET_OPTIONS_TEMPLATE) {
                tmap_del_all(d->templates, withdraw_id == FV_IPFIX_SET_OPTIONS_TEMPLATE, msg,
                             now_ms, h);
            } else {
                if (h->on_template) {
                    const struct fv_ipfix_template *old =
                        fv_ipfix_domain_template(d, withdraw_id, now_ms);
                    if (old)
                        h->on_template(h->ctx, msg, old, true);
                }
                tmap_del(d->templates, withdraw_id);
            }
            d->stats.withdrawals++;
            continue;
        }
        if (s->template_lifetime_s)
            t->expires_ms = now_ms + (uint64_t)s->template_lifetime_s * 1000u;
        rc = tmap_put(d->templates, t);
        if (rc < 0)
            return rc;
        d->stats.templates++;
        if (h->on_template)
            h->on_template(h->ctx, msg, t, false);
    }
    return 0;
}

static int decode_data_set(struct fv_ipfix_domain *d, const struct fv_ipfix_msg *msg,
                           const struct fv_ipfix_set *set, uint64_t now_ms,
                           const struct fv_ipfix_handler *h, uint32_t *nrec)
{
    const struct fv_ipfix_template *t = fv_ipfix_domain_template(d, set->id, now_ms);
    struct fv_ipfix_value values[FV_IPFIX_MAX_FIELDS];
    struct fv_ipfix_rec_iter it;
    struct fv_ipfix_rec rec;
    int rc;

    if (t == NULL) {
        d->stats.missing_template++;
        return 0;
    }
    fv_ipfix_rec_iter_init(&it, t, set);
    while ((rc = fv_ipfix_rec_iter_next(&it, &rec, values)) == 0) {
        (*nrec)++;
        d->stats.records++;
        if (h->on_record) {
            rc = h->on_record(h->ctx, msg, &rec, values);
            if (rc != 0)
                return rc;
        }
    }
    return rc == -FV_EEND ? 0 : rc;
}

/* RFC 7011: the sequence number counts data records sent before this
 * message, modulo 2^32.  A jump ahead is loss; a message from behind the
 * expectation is a late (reordered) one, which fills part of a gap that
 * was counted as loss before. */
static void account_sequence(struct fv_ipfix_domain *d, uint32_t seq, uint32_t nrec)
{
    if (d->seq_valid) {
        int32_t diff = (int32_t)(seq - d->next_seq);
        if (diff > 0) {
            d->stats.lost += (uint32_t)diff;
        } else if (diff < 0) {
            d->stats.reordered += nrec;
            d->stats.lost -= d->stats.lost < nrec ? d->stats.lost : nrec;
            return; /* the expectation stays where the newest message put it */
        }
    }
    d->seq_valid = true;
    d->next_seq = seq + nrec;
}

int fv_ipfix_session_decode(struct fv_ipfix_session *s, const uint8_t *buf, size_t len,
                            uint64_t now_ms, const struct fv_ipfix_handler *h)
{
    struct fv_ipfix_msg msg;
    struct fv_ipfix_set_iter it;
    struct fv_ipfix_set set;
    struct fv_ipfix_domain *d;
    uint32_t nrec = 0;
    int rc;

    rc = fv_ipfix_msg_open(buf, len, &msg);
    if (rc < 0)
        goto malformed_nodomain;
    rc = domain_get(s, msg.domain, &d);
    if (rc < 0)
        goto malformed_nodomain;
    /* Frame every set before acting on any, so a message whose structure
     * lies is rejected whole. */
    fv_ipfix_set_iter_init(&it, &msg);
    while ((rc = fv_ipfix_set_iter_next(&it, &set)) == 0)
        ;
    if (rc != -FV_EEND)
        goto malformed;
    fv_ipfix_set_iter_init(&it, &msg);
    while (fv_ipfix_set_iter_next(&it, &set) == 0) {
        if (set.id < FV_IPFIX_MIN_DATA_SET)
            rc = decode_template_set(s, d, &msg, &set, now_ms, h);
        else
            rc = decode_data_set(d, &msg, &set, now_ms, h, &nrec);
        if (rc != 0) {
            account_sequence(d, msg.seq, nrec);
            if (rc > 0) /* the handler asked to stop */
                return rc;
            goto malformed;
        }
    }
    account_sequence(d, msg.seq, nrec);
    d->stats.messages++;
    return 0;
malformed:
    d->stats.malformed++;
    s->last_error = rc;
    s->last_error_domain = d->id;
    return rc;
malformed_nodomain:
    /* No trustworthy domain id: count it against domain 0 when possible. */
    if (domain_get(s, 0, &d) == 0)
        d->stats.malformed++;
    s->last_error = rc;
    s->last_error_domain = 0;
    return rc;
}
