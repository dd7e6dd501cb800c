/*
 * sender.c - bounded record queue and the sender thread (see sender.h).
 *
 * The queue is a byte ring of entries [u16 template id][u16 length][record
 * bytes].  An entry never wraps: when it does not fit before the end, a
 * skip marker (template id 0) fills the rest and the entry starts at 0.
 * Only the sender thread removes entries, and only after the exporter has
 * accepted them, so it can read them outside the lock.
 */
#include "agent/sender.h"

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
    struct fv_ipfix_exporter *exp;
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

static void copy_record(struct fv_ipfix_writer *w, const void *arg)
{
    const struct entry *e = arg;
    fv_ipfix_put_bytes(w, e->p, e->len);
}

int fv_sender_push(struct fv_sender *s, const struct fv_agent_rec *rec)
{
    struct fv_ipfix_writer w;
    uint16_t tmpl = rec->ipv6 ? FV_TMPL_AGENT_V6 : FV_TMPL_AGENT_V4;
    size_t start, len, need;
    int rc = 0;

    /* Encode outside the lock: a data set header, then the record. */
    fv_ipfix_writer_init(&w, s->scratch, sizeof(s->scratch));
    fv_ipfix_writer_record_begin(&w, tmpl);
    fv_agent_rec_encode(&w, rec);
    if (fv_ipfix_writer_record_end(&w) < 0)
        return -FV_ELIMIT;
    start = FV_IPFIX_HEADER_LEN + FV_IPFIX_SET_HEADER_LEN;
    len = w.len - start;
    need = ENTRY_HDR + len;
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
    memcpy(s->ring + s->tail + ENTRY_HDR, s->scratch + start, len);
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
    if (fv_ipfix_exporter_connected(s->exp))
        return true;
    if (fv_ipfix_exporter_connect(s->exp) < 0) {
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
    struct fv_ipfix_exporter_stats es;

    fv_ipfix_exporter_stats(s->exp, &es);
    pthread_mutex_lock(&s->lock);
    s->stats.sent = es.records;
    pthread_mutex_unlock(&s->lock);
}

/* Sends one batch; false when the connection failed. */
static bool send_batch(struct fv_sender *s, struct entry *batch, int n)
{
    int added = 0, rc = 0;

    while (added < n) {
        rc = fv_ipfix_exporter_add(s->exp, batch[added].tmpl, copy_record, &batch[added]);
        if (rc < 0 && rc != -FV_ELIMIT)
            break;
        added++; /* -FV_ELIMIT: a record larger than a message; it cannot go */
    }
    pthread_mutex_lock(&s->lock);
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
            int rc = fv_ipfix_exporter_flush(s->exp);
            note_sent(s);
            if (rc < 0)
                continue;
            if (!fv_ipfix_exporter_check(s->exp)) {
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
    if (fv_ipfix_exporter_connected(s->exp))
        fv_ipfix_exporter_flush(s->exp);
    note_sent(s);
    return NULL;
}

int fv_sender_start(const struct fv_sender_cfg *cfg, struct fv_sender **out)
{
    static const struct fv_ipfix_template_def *const tmpls[] = {&fv_tmpl_agent_v4,
                                                                &fv_tmpl_agent_v6};
    struct fv_sender *s = calloc(1, sizeof(*s));
    int rc;

    if (s == NULL)
        return -ENOMEM;
    s->cfg = *cfg;
    if (s->cfg.max_records == 0)
        s->cfg.max_records = 100000;
    s->cap = (size_t)s->cfg.max_records * AVG_RECORD_BYTES;
    s->ring = malloc(s->cap);
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->cond, NULL);
    rc = s->ring ? fv_ipfix_exporter_new(&s->cfg.exporter, tmpls, 2, &s->exp) : -ENOMEM;
    if (rc == 0)
        rc = -pthread_create(&s->thread, NULL, run, s);
    if (rc < 0) {
        fv_ipfix_exporter_free(s->exp);
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
    fv_ipfix_exporter_free(s->exp);
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
