/*
 * config.c - loading a config table from YAML (see config.h).
 *
 * The file is read with libyaml's event parser and walked recursively:
 * mapping keys are joined with dots into the full key, which is looked up
 * in the table as an option or as a section (a prefix of options).  The
 * walk never builds a document tree, so memory is the input plus the
 * target's values, and an unknown key stops it, which bounds recursion by
 * the table rather than by the input.  Values are parsed into temporaries
 * and stored only when valid, so a target is consistent after any error.
 */
#include "config/config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#include "base/err.h"
#include "base/sbuf.h"

/* A section seen in the file: its full key is the first len bytes of the key
 * of option opt (the first option in it), so no copy is needed. */
struct section {
    size_t opt;  /* index of the first option in the section */
    size_t len;  /* length of the section's dotted key */
    size_t line; /* where it was first written */
};

/* State of one load (or of applying the defaults, where name is NULL). */
struct ctx {
    const struct fv_cfg_opt *t; /* the table, borrowed */
    size_t n;                   /* rows in t */
    char *target;               /* the struct being filled */
    const char *name;           /* file name for messages; NULL for the table's defaults */
    int bad;                    /* code for a bad value: -FV_ECONFIG, or -EINVAL for the table */
    const char *text;           /* the input, to find the line of a reader error */
    size_t len;                 /* bytes of text */
    yaml_parser_t parser;       /* valid while open */
    bool open;                  /* parser initialised */
    yaml_event_t ev;            /* the current event, valid while have_ev */
    bool have_ev;               /* ev must be deleted before the next one */
    size_t *key_line;           /* per option: line that set it, 0 = not set */
    struct section *sec;        /* sections seen so far, to catch one written twice */
    size_t nsec, capsec;        /* entries used and allocated in sec */
    struct fv_cfg_error *err;   /* where messages go; may be NULL */
};

static int fail(struct ctx *c, size_t line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Formats "file:line: " + the message; returns the code for a bad value. */
static int fail(struct ctx *c, size_t line, const char *fmt, ...)
{
    size_t size = sizeof(c->err->msg);
    int off;
    va_list ap;

    if (c->err == NULL)
        return c->bad;
    if (c->name == NULL)
        off = snprintf(c->err->msg, size, "config table: ");
    else if (line > 0)
        off = snprintf(c->err->msg, size, "%s:%zu: ", c->name, line);
    else
        off = snprintf(c->err->msg, size, "%s: ", c->name);
    if (off < 0 || (size_t)off >= size)
        return c->bad;
    va_start(ap, fmt);
    vsnprintf(c->err->msg + off, size - (size_t)off, fmt, ap);
    va_end(ap);
    return c->bad;
}

static int oom(struct ctx *c)
{
    if (c->err != NULL)
        snprintf(c->err->msg, sizeof(c->err->msg), "%s: out of memory",
                 c->name ? c->name : "config table");
    return -ENOMEM;
}

/* Input quoted in a message: at most 60 bytes, control bytes as '?', so that
 * the message stays one short line whatever the file holds. */
#define SHOW_SIZE 72
static const char *show(const char *s, size_t len, char *buf)
{
    size_t n = len > 60 ? 60 : len;

    for (size_t i = 0; i < n; i++)
        buf[i] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
    strcpy(buf + n, len > n ? "..." : "");
    return buf;
}

static void *field(const struct ctx *c, const struct fv_cfg_opt *o)
{
    return c->target + o->offset;
}

static bool is_list(enum fv_cfg_type type)
{
    return type == FV_CFG_STRING_LIST || type == FV_CFG_CIDR_LIST;
}

/* What a value of this option must be, for "expected ..." messages. */
static const char *expected(const struct fv_cfg_opt *o, char *buf, size_t size)
{
    static const char *const what[] = {
        [FV_CFG_STRING] = "a string",
        [FV_CFG_BOOL] = "a boolean",
        [FV_CFG_U32] = "an integer",
        [FV_CFG_U64] = "an integer",
        [FV_CFG_DURATION] = "a duration",
        [FV_CFG_STRING_LIST] = "a list of strings",
        [FV_CFG_CIDR_LIST] = "a list of CIDRs",
        [FV_CFG_ENUM] = "one of",
    };
    size_t off;

    if (o->type != FV_CFG_ENUM)
        return what[o->type];
    off = (size_t)snprintf(buf, size, "one of");
    for (size_t i = 0; o->choices[i] != NULL && off < size; i++)
        off += (size_t)snprintf(buf + off, size - off, "%s %s", i ? "," : "", o->choices[i]);
    return buf;
}

/* ---- Scalars ---- */

static int parse_string(struct ctx *c, const struct fv_cfg_opt *o, const char *s, size_t len,
                        size_t line, const char *label, char **out)
{
    char why[128] = "", shown[SHOW_SIZE], *copy;

    if (memchr(s, '\0', len) != NULL)
        return fail(c, line, "%s: value contains a NUL byte", label);
    if (o->check != NULL && o->check(s, why, sizeof(why)) < 0)
        return fail(c, line, "%s: '%s' is invalid: %s", label, show(s, len, shown),
                    why[0] ? why : "rejected");
    copy = strdup(s);
    if (copy == NULL)
        return oom(c);
    free(*out);
    *out = copy;
    return 0;
}

static int parse_bool(struct ctx *c, const char *s, size_t len, size_t line, const char *label,
                      bool *out)
{
    static const char *const yes[] = {"true", "yes", "on"}, *const no[] = {"false", "no", "off"};
    char shown[SHOW_SIZE];

    for (size_t i = 0; i < 3; i++) {
        if (strcasecmp(s, yes[i]) == 0 || strcasecmp(s, no[i]) == 0) {
            *out = strcasecmp(s, yes[i]) == 0;
            return 0;
        }
    }
    return fail(c, line, "%s: '%s' is not a boolean (use true or false)", label,
                show(s, len, shown));
}

/* Decimal digits only; -ERANGE past UINT64_MAX. */
static int parse_u64(const char *s, uint64_t *out)
{
    uint64_t v = 0;

    if (*s == '\0')
        return -EINVAL;
    for (; *s != '\0'; s++) {
        if (*s < '0' || *s > '9')
            return -EINVAL;
        if (v > (UINT64_MAX - (uint64_t)(*s - '0')) / 10)
            return -ERANGE;
        v = v * 10 + (uint64_t)(*s - '0');
    }
    *out = v;
    return 0;
}

static void format_limit(enum fv_cfg_type type, uint64_t v, char *buf)
{
    if (type == FV_CFG_DURATION)
        fv_cfg_format_duration(v, buf);
    else
        snprintf(buf, FV_CFG_DURATION_STRLEN, "%llu", (unsigned long long)v);
}

/* Numbers and durations: syntax, then the type's and the table's bounds. */
static int parse_number(struct ctx *c, const struct fv_cfg_opt *o, const char *s, size_t len,
                        size_t line, const char *label, uint64_t *out)
{
    uint64_t v = 0, hi = o->type == FV_CFG_U32 ? UINT32_MAX : UINT64_MAX;
    char shown[SHOW_SIZE], lim[FV_CFG_DURATION_STRLEN];
    int rc;

    if (o->max != 0 && o->max < hi)
        hi = o->max;
    show(s, len, shown);
    if (o->type != FV_CFG_DURATION)
        rc = parse_u64(s, &v);
    else if (s[0] == '-')
        return fail(c, line, "%s: '%s' is negative; durations must be 0s or more", label, shown);
    else
        rc = fv_cfg_parse_duration(s, &v);
    if (rc == -EDOM)
        return fail(c, line, "%s: '%s' is not a whole number of milliseconds", label, shown);
    if (rc == -EINVAL && o->type == FV_CFG_DURATION)
        return fail(c, line, "%s: '%s' is not a duration (use e.g. 500ms, 5s, 1m)", label, shown);
    if (rc == -EINVAL)
        return fail(c, line, "%s: '%s' is not a non-negative integer", label, shown);
    if (rc == -ERANGE || v > hi) {
        format_limit(o->type, hi, lim);
        return fail(c, line, "%s: %s is above the maximum %s", label, shown, lim);
    }
    if (v < o->min) {
        format_limit(o->type, o->min, lim);
        return fail(c, line, "%s: %s is below the minimum %s", label, shown, lim);
    }
    *out = v;
    return 0;
}

static int parse_enum(struct ctx *c, const struct fv_cfg_opt *o, const char *s, size_t len,
                      size_t line, const char *label, int *out)
{
    char shown[SHOW_SIZE], choices[256];

    for (int i = 0; o->choices[i] != NULL; i++) {
        if (strcasecmp(s, o->choices[i]) == 0) {
            *out = i;
            return 0;
        }
    }
    return fail(c, line, "%s: '%s' is not %s", label, show(s, len, shown),
                expected(o, choices, sizeof(choices)));
}

static int parse_cidr(struct ctx *c, const char *s, size_t len, size_t line, const char *label,
                      struct fv_cidr *out)
{
    char shown[SHOW_SIZE];

    if (fv_cidr_parse(s, out) == 0)
        return 0;
    return fail(c, line, "%s: '%s' is not a CIDR (e.g. 10.244.0.0/16 or fd00:10:244::/64)", label,
                show(s, len, shown));
}

/*
 * Parses one scalar (s[len] is NUL) for option o into out, which is the
 * field itself or, for a list option, one item.  label is the key, or
 * "key: item N", for messages.
 */
static int parse_scalar(struct ctx *c, const struct fv_cfg_opt *o, const char *s, size_t len,
                        size_t line, const char *label, void *out)
{
    uint64_t v = 0;
    int rc;

    switch (o->type) {
    case FV_CFG_STRING:
    case FV_CFG_STRING_LIST:
        return parse_string(c, o, s, len, line, label, out);
    case FV_CFG_BOOL:
        return parse_bool(c, s, len, line, label, out);
    case FV_CFG_CIDR_LIST:
        return parse_cidr(c, s, len, line, label, out);
    case FV_CFG_ENUM:
        return parse_enum(c, o, s, len, line, label, out);
    case FV_CFG_U32:
    case FV_CFG_U64:
    case FV_CFG_DURATION:
        rc = parse_number(c, o, s, len, line, label, &v);
        if (rc == 0 && o->type == FV_CFG_U32)
            *(uint32_t *)out = (uint32_t)v;
        else if (rc == 0)
            *(uint64_t *)out = v;
        return rc;
    }
    return fail(c, line, "%s: unknown option type %d", label, (int)o->type);
}

/* ---- Lists ---- */

static size_t item_size(enum fv_cfg_type type)
{
    return type == FV_CFG_STRING_LIST ? sizeof(char *) : sizeof(struct fv_cidr);
}

/* Frees a list's items (strings too) given as (items, n). */
static void free_items(enum fv_cfg_type type, void *items, size_t n)
{
    if (type == FV_CFG_STRING_LIST) {
        for (size_t i = 0; i < n; i++)
            free(((char **)items)[i]);
    }
    free(items);
}

/* Both list structs are {items, n}; this swaps in new content. */
static void list_replace(const struct fv_cfg_opt *o, void *f, void *items, size_t n)
{
    if (o->type == FV_CFG_STRING_LIST) {
        struct fv_cfg_strlist *l = f;
        free_items(o->type, l->items, l->n);
        l->items = items;
        l->n = n;
    } else {
        struct fv_cfg_cidrlist *l = f;
        free_items(o->type, l->items, l->n);
        l->items = items;
        l->n = n;
    }
}

/* ---- The YAML walk ---- */

static int syntax_error(struct ctx *c)
{
    const yaml_parser_t *p = &c->parser;
    size_t line = p->problem_mark.line + 1;

    if (p->error == YAML_MEMORY_ERROR)
        return oom(c);
    if (p->error == YAML_READER_ERROR) {
        /* Encoding errors carry an offset, not a mark. */
        line = 1;
        for (size_t i = 0; i < p->problem_offset && i < c->len; i++)
            line += c->text[i] == '\n';
    }
    if (p->context != NULL)
        return fail(c, line, "invalid YAML: %s, %s", p->problem ? p->problem : "syntax error",
                    p->context);
    return fail(c, line, "invalid YAML: %s", p->problem ? p->problem : "syntax error");
}

static int next(struct ctx *c)
{
    if (c->have_ev)
        yaml_event_delete(&c->ev);
    c->have_ev = false;
    if (!yaml_parser_parse(&c->parser, &c->ev))
        return syntax_error(c);
    c->have_ev = true;
    return 0;
}

static size_t ev_line(const struct ctx *c)
{
    return c->ev.start_mark.line + 1;
}

static const char *scalar(const struct ctx *c)
{
    return (const char *)c->ev.data.scalar.value;
}

/* An unquoted empty value, ~ or null: "keep the default". */
static bool is_null(const struct ctx *c)
{
    const char *s;

    if (c->ev.type != YAML_SCALAR_EVENT || c->ev.data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    s = scalar(c);
    return s[0] == '\0' || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 ||
           strcmp(s, "Null") == 0 || strcmp(s, "NULL") == 0;
}

/* The current event as a noun, for "got ..." messages. */
static const char *got(const struct ctx *c)
{
    switch (c->ev.type) {
    case YAML_SCALAR_EVENT:
        return is_null(c) ? "nothing" : "a single value";
    case YAML_SEQUENCE_START_EVENT:
        return "a list";
    case YAML_MAPPING_START_EVENT:
        return "a mapping";
    case YAML_ALIAS_EVENT:
        return "an alias";
    default:
        return "something else";
    }
}

/* Whether the current event can be item n + 1 of list option o. */
static int check_item(struct ctx *c, const struct fv_cfg_opt *o, size_t n, const char *label)
{
    if (o->max != 0 && n >= o->max)
        return fail(c, ev_line(c), "%s: more than the maximum of %llu items", o->key,
                    (unsigned long long)o->max);
    if (c->ev.type != YAML_SCALAR_EVENT || is_null(c))
        return fail(c, ev_line(c), "%s: expected %s, got %s", label,
                    o->type == FV_CFG_STRING_LIST ? "a string" : "a CIDR", got(c));
    return 0;
}

/* Makes room for item n (zeroed) in *items of *cap items of size bytes. */
static int grow(struct ctx *c, char **items, size_t *cap, size_t n, size_t size)
{
    char *p;

    if (n == *cap) {
        p = realloc(*items, (*cap ? 2 * *cap : 4) * size);
        if (p == NULL)
            return oom(c);
        *items = p;
        *cap = *cap ? 2 * *cap : 4;
    }
    memset(*items + n * size, 0, size);
    return 0;
}

/* The current event is SEQUENCE_START; items replace the list on success. */
static int load_list(struct ctx *c, const struct fv_cfg_opt *o)
{
    char label[FV_CFG_MAX_KEY + 32], *items = NULL;
    size_t size = item_size(o->type), n = 0, cap = 0, line = ev_line(c);
    int rc;

    for (;;) {
        rc = next(c);
        if (rc < 0 || c->ev.type == YAML_SEQUENCE_END_EVENT)
            break;
        snprintf(label, sizeof(label), "%s: item %zu", o->key, n + 1);
        rc = check_item(c, o, n, label);
        if (rc == 0)
            rc = grow(c, &items, &cap, n, size);
        if (rc == 0)
            rc = parse_scalar(c, o, scalar(c), c->ev.data.scalar.length, ev_line(c), label,
                              items + n * size);
        if (rc < 0)
            break;
        n++;
    }
    if (rc == 0 && n < o->min)
        rc = fail(c, line, "%s: %zu items is below the minimum %llu", o->key, n,
                  (unsigned long long)o->min);
    if (rc < 0) {
        free_items(o->type, items, n);
        return rc;
    }
    list_replace(o, field(c, o), items, n);
    return 0;
}

/* The current event is the value of option o. */
static int load_value(struct ctx *c, const struct fv_cfg_opt *o)
{
    char buf[256], shown[SHOW_SIZE];
    const char *what = expected(o, buf, sizeof(buf));
    size_t len;

    switch (c->ev.type) {
    case YAML_SCALAR_EVENT:
        len = c->ev.data.scalar.length;
        if (is_null(c))
            return 0;
        if (is_list(o->type))
            return fail(c, ev_line(c), "%s: expected %s, got a single value '%s'", o->key, what,
                        show(scalar(c), len, shown));
        return parse_scalar(c, o, scalar(c), len, ev_line(c), o->key, field(c, o));
    case YAML_SEQUENCE_START_EVENT:
        if (is_list(o->type))
            return load_list(c, o);
        break;
    case YAML_ALIAS_EVENT:
        return fail(c, ev_line(c), "%s: aliases (*%s) are not supported", o->key,
                    (const char *)c->ev.data.alias.anchor);
    default:
        break;
    }
    return fail(c, ev_line(c), "%s: expected %s, got %s", o->key, what, got(c));
}

/* Index of the option named key, or of the first option in section key. */
static int lookup(const struct ctx *c, const char *key, size_t len, bool section)
{
    for (size_t i = 0; i < c->n; i++) {
        const char *k = c->t[i].key;
        if (strncmp(k, key, len) == 0 && k[len] == (section ? '.' : '\0'))
            return (int)i;
    }
    return -1;
}

/* Optimal string alignment distance (Levenshtein plus transpositions). */
static size_t edit_distance(const char *a, size_t la, const char *b, size_t lb)
{
    size_t rows[3][FV_CFG_MAX_KEY + 4], *pp, *prev, *cur;

    if (la > FV_CFG_MAX_KEY + 2 || lb > FV_CFG_MAX_KEY + 2)
        return SIZE_MAX;
    /* Row i lives in rows[i % 3]; pp and prev are rows i - 2 and i - 1. */
    for (size_t j = 0; j <= lb; j++)
        rows[0][j] = j;
    for (size_t i = 1; i <= la; i++) {
        pp = rows[(i + 1) % 3], prev = rows[(i + 2) % 3], cur = rows[i % 3];
        cur[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t cost = a[i - 1] != b[j - 1], best = prev[j - 1] + cost;
            if (prev[j] + 1 < best)
                best = prev[j] + 1;
            if (cur[j - 1] + 1 < best)
                best = cur[j - 1] + 1;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                pp[j - 2] + 1 < best)
                best = pp[j - 2] + 1;
            cur[j] = best;
        }
    }
    return rows[la % 3][lb];
}

/* The closest option or section name to key, if within distance 2. */
static bool suggest(const struct ctx *c, const char *key, size_t len, char *out)
{
    size_t best = 3;

    for (size_t i = 0; i < c->n; i++) {
        const char *k = c->t[i].key;
        for (size_t e = 1; k[e - 1] != '\0'; e++) {
            size_t d;
            if (k[e] != '.' && k[e] != '\0')
                continue;
            if ((e > len ? e - len : len - e) >= best)
                continue;
            d = edit_distance(key, len, k, e);
            if (d < best && d < len) {
                best = d;
                memcpy(out, k, e);
                out[e] = '\0';
            }
        }
    }
    return best < 3;
}

static int unknown_key(struct ctx *c, const char *key, size_t len, size_t line)
{
    char shown[SHOW_SIZE], near[FV_CFG_MAX_KEY + 1];

    show(key, len, shown);
    if (suggest(c, key, len, near))
        return fail(c, line, "unknown key '%s' (did you mean '%s'?)", shown, near);
    return fail(c, line, "unknown key '%s'", shown);
}

static int load_mapping(struct ctx *c, const char *path, size_t plen);

/* Points *line at the "first written on" line of a section, 0 if new.
 * Only known sections get here, so the array is bounded by the table. */
static int section_seen(struct ctx *c, size_t opt, size_t len, size_t **line)
{
    struct section *grown;

    for (size_t i = 0; i < c->nsec; i++) {
        if (c->sec[i].opt == opt && c->sec[i].len == len) {
            *line = &c->sec[i].line;
            return 0;
        }
    }
    if (c->nsec == c->capsec) {
        grown = realloc(c->sec, (c->capsec ? 2 * c->capsec : 8) * sizeof(*grown));
        if (grown == NULL)
            return oom(c);
        c->sec = grown;
        c->capsec = c->capsec ? 2 * c->capsec : 8;
    }
    c->sec[c->nsec] = (struct section){.opt = opt, .len = len, .line = 0};
    *line = &c->sec[c->nsec++].line;
    return 0;
}

/* The current event is the key path's value; path is an option or section. */
static int load_entry(struct ctx *c, const char *path, size_t plen, size_t line)
{
    int i = lookup(c, path, plen, false);
    bool section = i < 0;
    size_t *seen = NULL;
    int rc;

    if (section)
        i = lookup(c, path, plen, true);
    if (i < 0)
        return unknown_key(c, path, plen, line);
    if (section) {
        rc = section_seen(c, (size_t)i, plen, &seen);
        if (rc < 0)
            return rc;
    } else {
        seen = &c->key_line[i];
    }
    if (*seen != 0)
        return fail(c, line, "duplicate key '%s' (first set on line %zu)", path, *seen);
    *seen = line;
    rc = next(c);
    if (rc < 0)
        return rc;
    if (!section)
        return load_value(c, &c->t[i]);
    if (c->ev.type == YAML_MAPPING_START_EVENT)
        return load_mapping(c, path, plen);
    if (is_null(c))
        return 0;
    return fail(c, ev_line(c), "%s: expected a mapping of %s.* keys, got %s", path, path, got(c));
}

/* The current event is MAPPING_START; path is its dotted key ("" at the top). */
static int load_mapping(struct ctx *c, const char *path, size_t plen)
{
    char full[FV_CFG_MAX_KEY + 2];
    size_t len, klen, line;
    const char *key;
    int rc;

    for (;;) {
        rc = next(c);
        if (rc < 0 || c->ev.type == YAML_MAPPING_END_EVENT)
            return rc;
        line = ev_line(c);
        if (c->ev.type != YAML_SCALAR_EVENT)
            return fail(c, line, "a key must be a string, not %s", got(c));
        key = scalar(c);
        klen = c->ev.data.scalar.length;
        len = plen + (plen > 0) + klen;
        /* A key too long for any option or holding a NUL cannot be known. */
        if (len > FV_CFG_MAX_KEY || memchr(key, '\0', klen) != NULL) {
            char shown[SHOW_SIZE];
            return fail(c, line, "unknown key '%s'", show(key, klen, shown));
        }
        memcpy(full, path, plen);
        if (plen > 0)
            full[plen] = '.';
        memcpy(full + len - klen, key, klen);
        full[len] = '\0';
        rc = load_entry(c, full, len, line);
        if (rc < 0)
            return rc;
    }
}

static int load_document(struct ctx *c)
{
    int rc = next(c); /* STREAM_START */

    if (rc == 0)
        rc = next(c);
    if (rc < 0 || c->ev.type == YAML_STREAM_END_EVENT)
        return rc; /* no document at all: an empty file */
    rc = next(c);
    if (rc < 0)
        return rc;
    if (c->ev.type == YAML_MAPPING_START_EVENT)
        rc = load_mapping(c, "", 0);
    else if (!is_null(c))
        return fail(c, ev_line(c), "the top level must be a mapping of keys, not %s", got(c));
    if (rc == 0)
        rc = next(c); /* DOCUMENT_END */
    if (rc == 0)
        rc = next(c);
    if (rc == 0 && c->ev.type != YAML_STREAM_END_EVENT)
        return fail(c, ev_line(c), "only one YAML document is allowed per file");
    return rc;
}

static int ctx_open(struct ctx *c, const char *text, size_t len)
{
    if (!yaml_parser_initialize(&c->parser))
        return oom(c);
    yaml_parser_set_input_string(&c->parser, (const unsigned char *)text, len);
    c->open = true;
    c->text = text;
    c->len = len;
    return 0;
}

static void ctx_close(struct ctx *c)
{
    if (c->have_ev)
        yaml_event_delete(&c->ev);
    c->have_ev = false;
    if (c->open)
        yaml_parser_delete(&c->parser);
    c->open = false;
}

/* ---- Defaults and the table ---- */

/* A list default is YAML text too ("[10.0.0.0/8]"), read by the same code. */
static int default_list(struct ctx *c, const struct fv_cfg_opt *o)
{
    int rc = ctx_open(c, o->def, strlen(o->def));

    for (int i = 0; rc == 0 && i < 3; i++)
        rc = next(c); /* STREAM_START, DOCUMENT_START, the value */
    if (rc == 0 && c->ev.type != YAML_SEQUENCE_START_EVENT)
        rc = fail(c, 0, "%s: the default must be a YAML list such as [a, b]", o->key);
    if (rc == 0)
        rc = load_list(c, o);
    ctx_close(c);
    return rc;
}

static int check_row(struct ctx *c, size_t i)
{
    const struct fv_cfg_opt *o = &c->t[i];
    size_t len = o->key ? strlen(o->key) : 0;

    if (len == 0 || len > FV_CFG_MAX_KEY || o->key[0] == '.' || o->key[len - 1] == '.' ||
        strstr(o->key, "..") != NULL)
        return fail(c, 0, "row %zu: the key must be 1 to %d characters of dotted names", i,
                    FV_CFG_MAX_KEY);
    if ((unsigned)o->type > FV_CFG_ENUM)
        return fail(c, 0, "%s: unknown type %d", o->key, (int)o->type);
    if (o->help == NULL)
        return fail(c, 0, "%s: no help text", o->key);
    if (o->type == FV_CFG_ENUM && (o->choices == NULL || o->choices[0] == NULL))
        return fail(c, 0, "%s: an enum needs choices", o->key);
    if (o->max != 0 && o->min > o->max)
        return fail(c, 0, "%s: min is above max", o->key);
    for (size_t j = 0; j < i; j++) {
        const char *k = c->t[j].key;
        size_t kl = strlen(k), sh = kl < len ? kl : len;
        if (strcmp(k, o->key) == 0)
            return fail(c, 0, "%s: the key appears twice", o->key);
        if (strncmp(k, o->key, sh) == 0 && (k[sh] == '.' || o->key[sh] == '.'))
            return fail(c, 0, "%s: the key is both an option and a section", kl < len ? k : o->key);
    }
    return 0;
}

static size_t value_size(enum fv_cfg_type type)
{
    switch (type) {
    case FV_CFG_STRING:
        return sizeof(char *);
    case FV_CFG_BOOL:
        return sizeof(bool);
    case FV_CFG_U32:
        return sizeof(uint32_t);
    case FV_CFG_U64:
    case FV_CFG_DURATION:
        return sizeof(uint64_t);
    case FV_CFG_STRING_LIST:
        return sizeof(struct fv_cfg_strlist);
    case FV_CFG_CIDR_LIST:
        return sizeof(struct fv_cfg_cidrlist);
    case FV_CFG_ENUM:
        return sizeof(int);
    }
    return 0;
}

int fv_cfg_defaults(const struct fv_cfg_opt *t, size_t n, void *target, struct fv_cfg_error *err)
{
    struct ctx c = {.t = t, .n = n, .target = target, .bad = -EINVAL, .err = err};
    int rc = 0;

    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = check_row(&c, i);
    if (rc < 0)
        return rc;
    fv_cfg_fini(t, n, target);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const struct fv_cfg_opt *o = &t[i];
        if (o->def == NULL)
            memset(field(&c, o), 0, value_size(o->type));
        else if (is_list(o->type))
            rc = default_list(&c, o);
        else
            rc = parse_scalar(&c, o, o->def, strlen(o->def), 0, o->key, field(&c, o));
    }
    return rc;
}

void fv_cfg_fini(const struct fv_cfg_opt *t, size_t n, void *target)
{
    for (size_t i = 0; i < n; i++) {
        void *f = (char *)target + t[i].offset;
        if (t[i].type == FV_CFG_STRING) {
            free(*(char **)f);
            *(char **)f = NULL;
        } else if (is_list(t[i].type)) {
            list_replace(&t[i], f, NULL, 0);
        }
    }
}

/* ---- Loading ---- */

/* Applies text on top of what target holds (the defaults). */
static int load_text(const struct fv_cfg_opt *t, size_t n, void *target, const char *name,
                     const char *text, size_t len, struct fv_cfg_error *err)
{
    struct ctx c = {.t = t, .n = n, .target = target, .name = name, .bad = -FV_ECONFIG, .err = err};
    int rc;

    if (len > FV_CFG_MAX_FILE)
        return fail(&c, 0, "larger than %u bytes", FV_CFG_MAX_FILE);
    c.key_line = calloc(n + 1, sizeof(size_t));
    rc = c.key_line ? ctx_open(&c, text, len) : oom(&c);
    if (rc == 0)
        rc = load_document(&c);
    ctx_close(&c);
    free(c.key_line);
    free(c.sec);
    return rc;
}

int fv_cfg_load_string(const struct fv_cfg_opt *t, size_t n, void *target, const char *name,
                       const char *text, size_t len, struct fv_cfg_error *err)
{
    int rc = fv_cfg_defaults(t, n, target, err);

    if (rc < 0)
        return rc;
    return load_text(t, n, target, name, text, len, err);
}

/* Reads at most FV_CFG_MAX_FILE + 1 bytes, to tell "too large" from "full". */
static int read_file(const char *path, struct fv_sbuf *b)
{
    FILE *f = fopen(path, "rb");
    int rc = 0;

    if (f == NULL)
        return -errno;
    for (;;) {
        size_t want = b->max - b->len, got;
        if (want == 0)
            break;
        want = want > 65536 ? 65536 : want;
        rc = fv_sbuf_reserve(b, want);
        if (rc < 0)
            break;
        errno = 0;
        got = fread(b->p + b->len, 1, want, f);
        b->len += got;
        b->p[b->len] = '\0';
        if (got < want) {
            rc = ferror(f) ? (errno ? -errno : -EIO) : 0;
            break;
        }
    }
    fclose(f);
    return rc;
}

int fv_cfg_load_file(const struct fv_cfg_opt *t, size_t n, void *target, const char *path,
                     struct fv_cfg_error *err)
{
    struct fv_sbuf b;
    int rc = fv_cfg_defaults(t, n, target, err);

    if (rc < 0)
        return rc;
    fv_sbuf_init(&b, FV_CFG_MAX_FILE + 1);
    rc = read_file(path, &b);
    if (rc < 0) {
        if (err != NULL)
            snprintf(err->msg, sizeof(err->msg), "cannot read %s: %s", path, fv_strerror(rc));
        goto out;
    }
    rc = load_text(t, n, target, path, b.p ? b.p : "", b.len, err);
out:
    fv_sbuf_fini(&b);
    return rc;
}
