/*
 * log.h - leveled, one-line-per-event logging to stderr.
 *
 * The level is checked before the arguments are formatted, so a disabled
 * debug line costs one comparison.  Each line carries its context as
 * key=value pairs written by the caller:
 *
 *     FV_LOG_WARN("malformed message exporter=%s domain=%u: %s", addr, dom, why);
 *
 * Per-packet problems go through a struct fv_ratelimit so that a flood of
 * bad input produces one line per interval, not one per packet.
 * Thread-safe: each line is written with a single fputs.
 */
#ifndef FV_BASE_LOG_H
#define FV_BASE_LOG_H

#include <stdbool.h>
#include <stdint.h>

enum fv_log_level { FV_LOG_ERROR, FV_LOG_WARN, FV_LOG_INFO, FV_LOG_DEBUG };

/* Current threshold; lines above it are skipped.  Default FV_LOG_INFO. */
extern enum fv_log_level fv_log_threshold;

/* Parses "error|warn|info|debug"; returns -FV_ECONFIG for anything else. */
int fv_log_level_parse(const char *name, enum fv_log_level *out);

void fv_log_write(enum fv_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define FV_LOG(level, ...)                                                                         \
    do {                                                                                           \
        if ((level) <= fv_log_threshold)                                                           \
            fv_log_write((level), __VA_ARGS__);                                                    \
    } while (0)
#define FV_LOG_ERROR(...) FV_LOG(FV_LOG_ERROR, __VA_ARGS__)
#define FV_LOG_WARN(...) FV_LOG(FV_LOG_WARN, __VA_ARGS__)
#define FV_LOG_INFO(...) FV_LOG(FV_LOG_INFO, __VA_ARGS__)
#define FV_LOG_DEBUG(...) FV_LOG(FV_LOG_DEBUG, __VA_ARGS__)

/* Allows one event per interval; counts what it suppressed meanwhile. */
struct fv_ratelimit {
    uint64_t interval_ms; /* minimum time between two allowed events */
    uint64_t next_ms;     /* monotonic time before which events are suppressed */
    uint64_t suppressed;  /* events suppressed since the last allowed one */
};

/* True when an event at now_ms may be logged; *suppressed gets the count
 * of events swallowed since the previous allowed one. */
bool fv_ratelimit_allow(struct fv_ratelimit *rl, uint64_t now_ms, uint64_t *suppressed);

#endif
