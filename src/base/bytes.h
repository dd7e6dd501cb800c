/*
 * bytes.h - bounds-checked big-endian cursors for everything read from the
 * network or a file, and the matching writers.
 *
 * A reader never moves past its end: every getter checks the remaining
 * length first and returns -FV_ETRUNC without touching the output when the
 * data is short.  The load/store helpers use memcpy so they are safe on
 * unaligned buffers and compile to single byte-swapped moves.
 *
 *     struct fv_rd rd;
 *     fv_rd_init(&rd, buf, len);
 *     uint16_t version;
 *     if (fv_rd_u16(&rd, &version) < 0)
 *         return -FV_ETRUNC;
 *
 * Header-only: everything is static inline so the hot path inlines it.
 */
#ifndef FV_BASE_BYTES_H
#define FV_BASE_BYTES_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "base/err.h"

static inline uint16_t fv_load_be16(const uint8_t *p)
{
    return (uint16_t)((uint16_t)p[0] << 8 | p[1]);
}

static inline uint32_t fv_load_be32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return __builtin_bswap32(v);
}

static inline uint64_t fv_load_be64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return __builtin_bswap64(v);
}

/* Reads an unsigned integer of 1..8 bytes (reduced-size encoding, RFC 7011 6.2). */
static inline uint64_t fv_load_uint(const uint8_t *p, size_t len)
{
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++)
        v = v << 8 | p[i];
    return v;
}

static inline void fv_store_be16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static inline void fv_store_be32(uint8_t *p, uint32_t v)
{
    v = __builtin_bswap32(v);
    memcpy(p, &v, 4);
}

static inline void fv_store_be64(uint8_t *p, uint64_t v)
{
    v = __builtin_bswap64(v);
    memcpy(p, &v, 8);
}

/* A read cursor over borrowed bytes. */
struct fv_rd {
    const uint8_t *p;   /* next byte to read */
    const uint8_t *end; /* one past the last readable byte */
};

static inline void fv_rd_init(struct fv_rd *rd, const uint8_t *buf, size_t len)
{
    rd->p = buf;
    rd->end = buf + len;
}

static inline size_t fv_rd_left(const struct fv_rd *rd)
{
    return (size_t)(rd->end - rd->p);
}

static inline int fv_rd_u8(struct fv_rd *rd, uint8_t *v)
{
    if (fv_rd_left(rd) < 1)
        return -FV_ETRUNC;
    *v = *rd->p++;
    return 0;
}

static inline int fv_rd_u16(struct fv_rd *rd, uint16_t *v)
{
    if (fv_rd_left(rd) < 2)
        return -FV_ETRUNC;
    *v = fv_load_be16(rd->p);
    rd->p += 2;
    return 0;
}

static inline int fv_rd_u32(struct fv_rd *rd, uint32_t *v)
{
    if (fv_rd_left(rd) < 4)
        return -FV_ETRUNC;
    *v = fv_load_be32(rd->p);
    rd->p += 4;
    return 0;
}

/* Borrows the next n bytes: *out points into the cursor's buffer. */
static inline int fv_rd_bytes(struct fv_rd *rd, size_t n, const uint8_t **out)
{
    if (fv_rd_left(rd) < n)
        return -FV_ETRUNC;
    *out = rd->p;
    rd->p += n;
    return 0;
}

#endif
