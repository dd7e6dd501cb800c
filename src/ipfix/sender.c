/*
 * sender.c - bounded record queue and the sender thread (see sender.h).
 *
 * The queue is a byte ring of entries [u16 template id][u16 length][record
 * bytes].  An entry never wraps: when it does not fit before the end, a
 * skip marker (template id 0) fills the rest and the entry starts at 0.
 * Only the sender thread removes entries, and only after the exporter has
 * accepted them, so it can read them outside the lock.
 */
#include "ipfix/sender.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/bytes.h"
#include "base/clock.h"
#include "base/err.h"

#define ENTRY_HDR 4
#define AVG_RECORD_BYTES 384
#define BATCH 512
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 30000
#define IDLE_FLUSH_MS 200

struct fv_sender {
    struct fv_sender_cfg cfg;
    const struct fv_sender_ops *ops;
    void *tp; /* the transport, owned */
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond; /* signalled on push and on stop */
    bool stop;
    uint64_t drain_deadline_ms;
    uint8_t *ring;
    size_t cap, head, tail, used; /* bytes; head = oldest entry */
    uint64_t count;               /* entries in the ring */
    struct fv_sender_stats stats; /* under lock */
    uint8_t scratch[FV_IPFIX_MAX_MESSAGE];
};

/* An entry copied out of the ring for sending. */
struct entry {
    uint16_t tmpl, len;
    const uint8_t *p;
};

int fv_sender_push(struct fv_sender *s, uint16_t tmpl, fv_ipfix_encode_fn encode, const void *arg)
{
    struct fv_ipfix_writer w;
    size_t start;

    /* Encode outside the lock: a data set header, then the record. */
    fv_ipfix_writer_init(&w, s->scratch, sizeof(s->scratch));
    fv_ipfix_writer_record_begin(&w, tmpl);
    encode(&w, arg);
    if (fv_ipfix_writer_record_end(&w) < 0)
        return -FV_ELIMIT;
    start = FV_IPFIX_HEADER_LEN + FV_IPFIX_SET_HEADER_LEN;
    return fv_sender_push_raw(s, tmpl, s->scratch + start, w.len - start);
}

int fv_sender_push_raw(struct fv_sender *s, uint16_t tmpl, const void *p, size_t len)
{
    size_t need = ENTRY_HDR + len;
    int rc = 0;

    if (len > UINT16_MAX || tmpl == 0)
        return -FV_ELIMIT;
    pthread_mutex_lock(&s->lock);
    if (s->count >= s->cfg.max_records || s->used + need + ENTRY_HDR > s->cap) {
        s->stats.refused++;
        rc = -FV_ENOSPACE;
        goto out;
    }
    if (s->tail + need > s->cap) {
        /* Not enough room before the end: mark the rest skipped, wrap. */
        if (s->used + (s->cap - s->tail) + need > s->cap) {
            s->stats.refused++;
            rc = -FV_ENOSPACE;
            goto out;
        }
        if (s->cap - s->tail >= ENTRY_HDR)
            fv_store_be16(s->ring + s->tail, 0);
        s->used += s->cap - s->tail;
        s->tail = 0;
    }
    fv_store_be16(s->ring + s->tail, tmpl);
    fv_store_be16(s->ring + s->tail + 2, (uint16_t)len);
    memcpy(s->ring + s->tail + ENTRY_HDR, p, len);
    s->tail += need;
    s->used += need;
    s->count++;
    pthread_cond_signal(&s->cond);
out:
    pthread_mutex_unlock(&s->lock);
    return rc;
}

/* Reads up to max entries from the head without removing them; returns
 * how many. */
static int peek(struct fv_sender *s, struct entry *out, int max)
{
    size_t pos = s->head, seen = 0;
    int n = 0;

    while (n < max && seen < s->used) {
        if (s->cap - pos < ENTRY_HDR || fv_load_be16(s->ring + pos) == 0) {
            seen += s->cap - pos; /* skip marker: continue at the start */
            pos = 0;
            continue;
        }
        out[n].tmpl = fv_load_be16(s->ring + pos);
        out[n].len = fv_load_be16(s->ring + pos + 2);
        out[n].p = s->ring + pos + ENTRY_HDR;
        pos += ENTRY_HDR + out[n].len;
        seen += ENTRY_HDR + out[n].len;
        n++;
    }
    return n;
}

/* Removes the first n entries (which peek returned). */
static void pop(struct fv_sender *s, const struct entry *e, int n)
{
    for (int i = 0; i < n; i++) {
        size_t at = (size_t)(e[i].p - s->ring) - ENTRY_HDR;
        if (at != s->head) { /* a skip marker came first */
            s->used -= s->cap - s->head;
            s->head = 0;
        }
        s->head += ENTRY_HDR + e[i].len;
        s->used -= ENTRY_HDR + e[i].len;
        s->count--;
    }
    if (s->used == 0)
        s->head = s->tail = 0;
}

/* Waits up to ms or until stop; returns true when stopping. */
static bool wait_ms(struct fv_sender *s, uint64_t ms)
{
    struct timespec ts;
    bool stop;

    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += (time_t)(ms / 1000);
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&s->lock);
    if (!s->stop)
        pthread_cond_timedwait(&s->cond, &s->lock, &ts);
    stop = s->stop;
    pthread_mutex_unlock(&s->lock);
    return stop;
}

static bool ensure_connected(struct fv_sender *s, uint64_t *backoff, bool *ever)
{
    if (s->ops->connected(s->tp))
        return true;
    if (s->ops->connect(s->tp) < 0) {
        uint64_t jitter = *backoff / 5;
        uint64_t delay = *backoff - jitter + (uint64_t)rand() % (2 * jitter + 1);
        pthread_mutex_lock(&s->lock);
        s->stats.connect_failures++;
        s->stats.connected = false;
        pthread_mutex_unlock(&s->lock);
        wait_ms(s, delay);
        *backoff = *backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : *backoff * 2;
        return false;
    }
    pthread_mutex_lock(&s->lock);
    if (*ever)
        s->stats.reconnects++;
    s->stats.connected = true;
    pthread_mutex_unlock(&s->lock);
    *ever = true;
    *backoff = BACKOFF_MIN_MS;
    return true;
}

/* Publishes the exporter's count of records sent (this thread owns it). */
static void note_sent(struct fv_sender *s)
{
    uint64_t sent = s->ops->sent(s->tp);

    pthread_mutex_lock(&s->lock);
    s->stats.sent = sent;
    pthread_mutex_unlock(&s->lock);
}

/* Sends one batch; false when the connection failed. */
static bool send_batch(struct fv_sender *s, struct entry *batch, int n)
{
    int added = 0, rc = 0, unsendable = 0;

    while (added < n) {
        rc = s->ops->add(s->tp, batch[added].tmpl, batch[added].p, batch[added].len);
        if (rc < 0 && rc != -FV_ELIMIT)
            break;
        if (rc == -FV_ELIMIT)
            unsendable++; /* larger than a message: it can never go */
        added++;
    }
    pthread_mutex_lock(&s->lock);
    s->stats.unsendable += (uint64_t)unsendable;
    pop(s, batch, added);
    pthread_mutex_unlock(&s->lock);
    note_sent(s);
    return added == n;
}

static void *run(void *arg)
{
    struct fv_sender *s = arg;
    struct entry batch[BATCH];
    uint64_t backoff = BACKOFF_MIN_MS;
    bool ever = false;

    for (;;) {
        int n;
        pthread_mutex_lock(&s->lock);
        bool done = s->stop && (s->count == 0 || fv_clock_mono_ms() >= s->drain_deadline_ms);
        pthread_mutex_unlock(&s->lock);
        if (done)
            break;
        if (!ensure_connected(s, &backoff, &ever))
            continue;
        pthread_mutex_lock(&s->lock);
        n = peek(s, batch, BATCH);
        pthread_mutex_unlock(&s->lock);
        if (n > 0 && !send_batch(s, batch, n))
            continue; /* the exporter closed itself; reconnect */
        if (n < BATCH) {
            /* The queue ran dry: send the partial message, then wait. */
            int rc = s->ops->flush(s->tp);
            note_sent(s);
            if (rc < 0)
                continue;
            if (!s->ops->check(s->tp)) {
                pthread_mutex_lock(&s->lock);
                s->stats.connected = false;
                pthread_mutex_unlock(&s->lock);
                continue;
            }
            pthread_mutex_lock(&s->lock);
            if (s->count == 0 && !s->stop) {
                struct timespec ts;
                clock_gettime(CLOCK_REALTIME, &ts);
                ts.tv_nsec += IDLE_FLUSH_MS * 1000000L;
                ts.tv_sec += ts.tv_nsec / 1000000000L;
                ts.tv_nsec %= 1000000000L;
                pthread_cond_timedwait(&s->cond, &s->lock, &ts);
            }
            pthread_mutex_unlock(&s->lock);
        }
    }
    if (s->ops->connected(s->tp))
        s->ops->flush(s->tp);
    note_sent(s);
    return NULL;
}

/* ---- The IPFIX transport: an fv_ipfix_exporter ---- */

static int ipfix_connect(void *tp)
{
    return fv_ipfix_exporter_connect(tp);
}

static bool ipfix_connected(void *tp)
{
    return fv_ipfix_exporter_connected(tp);
}

struct raw_rec {
    const uint8_t *p;
    size_t len;
};

static void copy_record(struct fv_ipfix_writer *w, const void *arg)
{
    const struct raw_rec *r = arg;
    fv_ipfix_put_bytes(w, r->p, r->len);
}

static int ipfix_add(void *tp, uint16_t tag, const uint8_t *p, size_t len)
{
    struct raw_rec r = {p, len};
    return fv_ipfix_exporter_add(tp, tag, copy_record, &r);
}

static int ipfix_flush(void *tp)
{
    return fv_ipfix_exporter_flush(tp);
}

static bool ipfix_check(void *tp)
{
    return fv_ipfix_exporter_check(tp);
}

static uint64_t ipfix_sent(void *tp)
{
    struct fv_ipfix_exporter_stats es;
    fv_ipfix_exporter_stats(tp, &es);
    return es.records;
}

static void ipfix_free(void *tp)
{
    fv_ipfix_exporter_free(tp);
}

static const struct fv_sender_ops ipfix_ops = {
    ipfix_connect, ipfix_connected, ipfix_add, ipfix_flush, ipfix_check, ipfix_sent, ipfix_free};

int fv_sender_start(const struct fv_sender_cfg *cfg, struct fv_sender **out)
{
    struct fv_sender *s = calloc(1, sizeof(*s));
    int rc = 0;

    if (s == NULL) {
        if (cfg->ops)
            cfg->ops->free(cfg->transport);
        return -ENOMEM;
    }
    s->cfg = *cfg;
    if (s->cfg.max_records == 0)
        s->cfg.max_records = 100000;
    if (s->cfg.avg_record_bytes == 0)
        s->cfg.avg_record_bytes = AVG_RECORD_BYTES;
    s->cap = (size_t)s->cfg.max_records * s->cfg.avg_record_bytes;
    s->ring = malloc(s->cap);
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->cond, NULL);
    if (cfg->ops) {
        s->ops = cfg->ops;
        s->tp = cfg->transport;
    } else {
        struct fv_ipfix_exporter *e = NULL;
        s->ops = &ipfix_ops;
        rc = fv_ipfix_exporter_new(&s->cfg.exporter, cfg->tmpls, cfg->ntmpl, &e);
        s->tp = e;
    }
    if (rc == 0 && s->ring == NULL)
        rc = -ENOMEM;
    if (rc == 0)
        rc = -pthread_create(&s->thread, NULL, run, s);
    if (rc < 0) {
        if (s->tp)
            s->ops->free(s->tp);
        free(s->ring);
        free(s);
        return rc;
    }
    *out = s;
    return 0;
}

void fv_sender_stop(struct fv_sender *s, uint64_t drain_ms)
{
    if (s == NULL)
        return;
    pthread_mutex_lock(&s->lock);
    s->stop = true;
    s->drain_deadline_ms = fv_clock_mono_ms() + drain_ms;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
    pthread_join(s->thread, NULL);
    s->ops->free(s->tp);
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->cond);
    free(s->ring);
    free(s);
}

void fv_sender_stats(struct fv_sender *s, struct fv_sender_stats *out)
{
    pthread_mutex_lock(&s->lock);
    *out = s->stats;
    out->queued = s->count;
    pthread_mutex_unlock(&s->lock);
}
