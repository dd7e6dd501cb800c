/*
 * spsc.h - a single-producer single-consumer queue of variable-size
 * entries, without locks on the data path.
 *
 * The aggregator moves records between its threads (decoder -> shard ->
 * output) through these: one producer thread and one consumer thread per
 * queue, positions published with release/acquire atomics, so the hot
 * path takes no lock.  Entries never wrap: one that does not fit before
 * the end of the buffer leaves a skip marker and starts at offset 0.  A
 * consumer that finds the queue empty may sleep in fv_spsc_wait(); the
 * producer wakes it (a mutex is taken only then).
 *
 *     void *p = fv_spsc_reserve(q, len);   // NULL when full
 *     memcpy(p, rec, len);
 *     fv_spsc_commit(q);                   // publishes everything reserved
 *     ...
 *     size_t len; void *e;
 *     while ((e = fv_spsc_peek(q, &len)) != NULL) { use(e, len); fv_spsc_pop(q); }
 *
 * Thread rules: reserve/commit from the producer only, peek/pop/wait from
 * the consumer only; fv_spsc_used() from anywhere (approximate).
 */
#ifndef FV_BASE_SPSC_H
#define FV_BASE_SPSC_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct fv_spsc {
    uint8_t *buf;          /* cap bytes, owned */
    size_t cap;            /* a power of two */
    _Atomic uint64_t head; /* consumer position (bytes ever popped) */
    _Atomic uint64_t tail; /* producer position (bytes ever committed) */
    uint64_t ptail;        /* producer's private position (reserved) */
    uint64_t chead;        /* consumer's private position */
    _Atomic int sleeping;  /* the consumer waits in fv_spsc_wait */
    _Atomic int psleeping; /* the producer waits in fv_spsc_wait_space */
    pthread_mutex_t lock;  /* for the condition variables only */
    pthread_cond_t cond;   /* consumer wake-up */
    pthread_cond_t pcond;  /* producer wake-up */
};

/* cap is rounded up to a power of two (at least 4 KiB).  0 or -ENOMEM. */
int fv_spsc_init(struct fv_spsc *q, size_t cap);
void fv_spsc_fini(struct fv_spsc *q);

/* Room for an entry of len bytes, or NULL when the queue is full (or len
 * is more than a quarter of the capacity). */
void *fv_spsc_reserve(struct fv_spsc *q, size_t len);
/* Publishes all reserved entries and wakes a sleeping consumer. */
void fv_spsc_commit(struct fv_spsc *q);
/* The oldest entry and its length, or NULL when empty. */
void *fv_spsc_peek(struct fv_spsc *q, size_t *len);
/* Removes the entry that fv_spsc_peek returned. */
void fv_spsc_pop(struct fv_spsc *q);
/* Consumer: sleeps up to ms unless entries are there (or arrive). */
void fv_spsc_wait(struct fv_spsc *q, unsigned ms);
/* Producer: sleeps up to ms for the consumer to make room. */
void fv_spsc_wait_space(struct fv_spsc *q, unsigned ms);
/* Bytes in the queue. */
size_t fv_spsc_used(struct fv_spsc *q);

#endif
