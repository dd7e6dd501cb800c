/*
 * clock.h - monotonic and wall-clock time in the units flowvis uses.
 *
 * Deadlines (template lifetimes, resend intervals, rate limits) use the
 * monotonic clock so that a wall-clock step never expires everything at
 * once; timestamps that leave the process (IPFIX export time, JSON
 * @timestamp) use the wall clock.
 */
#ifndef FV_BASE_CLOCK_H
#define FV_BASE_CLOCK_H

#include <stddef.h>
#include <stdint.h>

/* Milliseconds on CLOCK_MONOTONIC. */
uint64_t fv_clock_mono_ms(void);

/* Nanoseconds on CLOCK_MONOTONIC, for benchmarks and rate pacing. */
uint64_t fv_clock_mono_ns(void);

/* Seconds since the Unix epoch on CLOCK_REALTIME. */
uint32_t fv_clock_wall_s(void);

/* Writes "YYYY-MM-DDTHH:MM:SSZ" (20 chars + NUL) for epoch seconds t.
 * buf must hold at least 21 bytes.  Returns the length written. */
size_t fv_clock_rfc3339(uint64_t t, char *buf);

#endif
