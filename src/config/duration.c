/*
 * duration.c - Go-style durations ("1m30s") for config values and flags.
 *
 * The reference's users write durations the way Go's time.ParseDuration
 * reads them, so we accept the same grammar: an optional '+', then one or
 * more terms of a decimal number (with an optional fraction) and a unit
 * among h, m, s, ms, us, µs, ns.  Two deliberate differences: a negative
 * value and a bare "0" are rejected (a duration without a unit is more
 * often a mistake than a zero), and the sum must be a whole number of
 * milliseconds because that is what the config stores.
 */
#include "config/config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define NS_PER_MS 1000000ull

struct unit {
    const char *name;
    uint64_t ns;
};

static const struct unit units[] = {
    {"ns", 1},
    {"us", 1000},
    {"\xc2\xb5s", 1000}, /* U+00B5 micro sign, as Go accepts */
    {"\xce\xbcs", 1000}, /* U+03BC Greek mu, likewise */
    {"ms", NS_PER_MS},
    {"s", 1000 * NS_PER_MS},
    {"m", 60 * 1000 * NS_PER_MS},
    {"h", 3600 * 1000 * NS_PER_MS},
};

static bool is_digit(char ch)
{
    return ch >= '0' && ch <= '9';
}

static int lookup_unit(const char *p, size_t len, uint64_t *ns)
{
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strlen(units[i].name) == len && memcmp(units[i].name, p, len) == 0) {
            *ns = units[i].ns;
            return 0;
        }
    }
    return -EINVAL;
}

/* One "1.5s" term at *pp, in nanoseconds; advances *pp past it. */
static int parse_term(const char **pp, uint64_t *out)
{
    const char *p = *pp, *unit;
    uint64_t whole = 0, frac = 0, scale = 1, unit_ns, v, f;
    size_t digits = 0;

    for (; is_digit(*p); p++, digits++) {
        if (whole > (UINT64_MAX - 9) / 10)
            return -ERANGE;
        whole = whole * 10 + (uint64_t)(*p - '0');
    }
    if (*p == '.') {
        /* Six fractional digits are exact for every unit down to 1 ms;
         * finer digits cannot change a millisecond result and are dropped,
         * which also keeps frac * unit_ns below 2^64. */
        for (p++; is_digit(*p); p++, digits++) {
            if (scale < 1000000) {
                frac = frac * 10 + (uint64_t)(*p - '0');
                scale *= 10;
            }
        }
    }
    if (digits == 0)
        return -EINVAL;
    for (unit = p; *p != '\0' && !is_digit(*p) && *p != '.'; p++)
        ;
    if (lookup_unit(unit, (size_t)(p - unit), &unit_ns) < 0)
        return -EINVAL;
    if (whole > UINT64_MAX / unit_ns)
        return -ERANGE;
    v = whole * unit_ns;
    f = frac * unit_ns / scale;
    if (v > UINT64_MAX - f)
        return -ERANGE;
    *out = v + f;
    *pp = p;
    return 0;
}

int fv_cfg_parse_duration(const char *s, uint64_t *ms)
{
    const char *p = s;
    uint64_t total = 0, term;
    int rc;

    if (*p == '+')
        p++;
    if (*p == '\0')
        return -EINVAL;
    while (*p != '\0') {
        rc = parse_term(&p, &term);
        if (rc < 0)
            return rc;
        if (total > UINT64_MAX - term)
            return -ERANGE;
        total += term;
    }
    if (total % NS_PER_MS != 0)
        return -EDOM;
    *ms = total / NS_PER_MS;
    return 0;
}

const char *fv_cfg_format_duration(uint64_t ms, char *buf)
{
    static const struct {
        const char *name;
        uint64_t ms;
    } parts[] = {{"h", 3600000}, {"m", 60000}, {"s", 1000}, {"ms", 1}};
    size_t off = 0;

    if (ms == 0) {
        snprintf(buf, FV_CFG_DURATION_STRLEN, "0s");
        return buf;
    }
    for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
        uint64_t q = ms / parts[i].ms;
        if (q == 0)
            continue;
        ms -= q * parts[i].ms;
        off += (size_t)snprintf(buf + off, FV_CFG_DURATION_STRLEN - off, "%llu%s",
                                (unsigned long long)q, parts[i].name);
    }
    return buf;
}
