/*
 * spsc.c - single-producer single-consumer entry queue (spsc.h).
 *
 * Each entry is an 8-byte header (the length, or SKIP for "continue at
 * offset 0") followed by the payload rounded up to 8 bytes.
 */
#include "base/spsc.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define HDR 8
#define SKIP UINT64_MAX

static size_t round8(size_t n)
{
    return (n + 7) & ~(size_t)7;
}

int fv_spsc_init(struct fv_spsc *q, size_t cap)
{
    size_t c = 4096;

    memset(q, 0, sizeof(*q));
    while (c < cap)
        c *= 2;
    q->buf = malloc(c);
    if (q->buf == NULL)
        return -ENOMEM;
    q->cap = c;
    pthread_mutex_init(&q->lock, NULL);
    pthread_cond_init(&q->cond, NULL);
    pthread_cond_init(&q->pcond, NULL);
    return 0;
}

void fv_spsc_fini(struct fv_spsc *q)
{
    if (q->buf == NULL)
        return;
    free(q->buf);
    q->buf = NULL;
    pthread_mutex_destroy(&q->lock);
    pthread_cond_destroy(&q->cond);
    pthread_cond_destroy(&q->pcond);
}

void *fv_spsc_reserve(struct fv_spsc *q, size_t len)
{
    size_t need = HDR + round8(len);
    uint64_t head = atomic_load_explicit(&q->head, memory_order_acquire);
    size_t off = (size_t)(q->ptail & (q->cap - 1));
    size_t to_end = q->cap - off;

    if (need > q->cap / 4)
        return NULL;
    if (to_end < need) {
        /* Skip to the start: needs to_end + need bytes free. */
        if (q->ptail + to_end + need - head > q->cap)
            return NULL;
        memcpy(q->buf + off, &(uint64_t){SKIP}, HDR);
        q->ptail += to_end;
        off = 0;
    } else if (q->ptail + need - head > q->cap) {
        return NULL;
    }
    memcpy(q->buf + off, &(uint64_t){len}, HDR);
    q->ptail += need;
    return q->buf + off + HDR;
}

static void wake(pthread_mutex_t *lock, pthread_cond_t *cond, _Atomic int *flag)
{
    if (atomic_load_explicit(flag, memory_order_seq_cst)) {
        pthread_mutex_lock(lock);
        pthread_cond_signal(cond);
        pthread_mutex_unlock(lock);
    }
}

void fv_spsc_commit(struct fv_spsc *q)
{
    atomic_store_explicit(&q->tail, q->ptail, memory_order_seq_cst);
    wake(&q->lock, &q->cond, &q->sleeping);
}

void *fv_spsc_peek(struct fv_spsc *q, size_t *len)
{
    uint64_t tail = atomic_load_explicit(&q->tail, memory_order_acquire);
    uint64_t hdr;

    for (;;) {
        if (q->chead == tail)
            return NULL;
        size_t off = (size_t)(q->chead & (q->cap - 1));
        memcpy(&hdr, q->buf + off, HDR);
        if (hdr == SKIP) {
            q->chead += q->cap - off;
            continue;
        }
        *len = (size_t)hdr;
        return q->buf + off + HDR;
    }
}

void fv_spsc_pop(struct fv_spsc *q)
{
    size_t off = (size_t)(q->chead & (q->cap - 1));
    uint64_t hdr;

    memcpy(&hdr, q->buf + off, HDR);
    q->chead += HDR + round8((size_t)hdr);
    atomic_store_explicit(&q->head, q->chead, memory_order_seq_cst);
    wake(&q->lock, &q->pcond, &q->psleeping);
}

static void deadline(struct timespec *ts, unsigned ms)
{
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

void fv_spsc_wait(struct fv_spsc *q, unsigned ms)
{
    struct timespec ts;

    deadline(&ts, ms);
    pthread_mutex_lock(&q->lock);
    atomic_store_explicit(&q->sleeping, 1, memory_order_seq_cst);
    if (atomic_load_explicit(&q->tail, memory_order_seq_cst) == q->chead)
        pthread_cond_timedwait(&q->cond, &q->lock, &ts);
    atomic_store_explicit(&q->sleeping, 0, memory_order_seq_cst);
    pthread_mutex_unlock(&q->lock);
}

void fv_spsc_wait_space(struct fv_spsc *q, unsigned ms)
{
    struct timespec ts;
    uint64_t head = atomic_load_explicit(&q->head, memory_order_seq_cst);

    deadline(&ts, ms);
    pthread_mutex_lock(&q->lock);
    atomic_store_explicit(&q->psleeping, 1, memory_order_seq_cst);
    if (atomic_load_explicit(&q->head, memory_order_seq_cst) == head)
        pthread_cond_timedwait(&q->pcond, &q->lock, &ts);
    atomic_store_explicit(&q->psleeping, 0, memory_order_seq_cst);
    pthread_mutex_unlock(&q->lock);
}

size_t fv_spsc_used(struct fv_spsc *q)
{
    return (size_t)(atomic_load_explicit(&q->tail, memory_order_relaxed) -
                    atomic_load_explicit(&q->head, memory_order_relaxed));
}
