/*
 * config.h - YAML configuration driven by one typed table per config struct.
 *
 * Each subcommand (agent, aggregator) describes its options once, as an
 * array of struct fv_cfg_opt rows: the dotted key as written in the YAML
 * file, the value type, where the value lives in the caller's struct, the
 * default, the limits and a one-line description.  That single table drives
 * parsing, validation, defaults, `--help` and the documentation
 * (fv_cfg_print), so the README cannot drift from the code: tests can diff
 * the generated text against the docs.
 *
 * The file is strict, because a typo in a config file that is silently
 * ignored costs an operator an afternoon: an unknown key (with the closest
 * known key suggested), a value of the wrong shape or out of its limits, a
 * duplicate key and a YAML syntax error are all errors, and every message
 * names the file, the line and the key:
 *
 *     agent.yaml:12: flowPollInterval: '5x' is not a duration (use e.g. 500ms, 5s, 1m)
 *     agent.yaml:7: unknown key 'flowPolInterval' (did you mean 'flowPollInterval'?)
 *     agent.yaml:3: podCIDRs: item 2: '10.0.0.0/33' is not a CIDR (e.g. ...)
 *     cannot read agent.yaml: No such file or directory
 *
 * tests/unit/test_config.c lists every message the loader can produce.
 *
 * YAML rules (test_config.c shows each one):
 * - nested mappings flatten to dotted keys: `tls: {caCert: x}` is the key
 *   "tls.caCert"; a dotted YAML key (`tls.caCert: x`) means the same;
 * - an empty value (`key:`, `~`, `null`, unquoted) keeps the default; an
 *   explicitly empty string is `key: ""` and an empty list `key: []`;
 * - booleans: true/false, yes/no, on/off, in any letter case;
 * - integers: decimal digits only (no sign, no 0x, no underscores);
 * - durations: Go syntax, a sequence of number+unit terms with units h, m,
 *   s, ms, us, ns and optional fractions ("500ms", "1m30s", "1.5s",
 *   "2h45m", "0s"); a bare number, even "0", and a negative value are
 *   errors, and the total must be a whole number of milliseconds;
 * - enums match their choices in any letter case;
 * - lists are YAML sequences of scalars (block or flow style); a list in
 *   the file replaces the default list, it does not append to it;
 * - anchors are ignored, aliases are rejected, one document per file, at
 *   most FV_CFG_MAX_FILE bytes.
 *
 * Ownership: the target struct owns the strings and lists the loader puts
 * in it (heap memory); fv_cfg_fini() frees them.  A target passed to
 * fv_cfg_defaults() or fv_cfg_load_*() must be zero-initialised or hold
 * the result of an earlier fv_cfg_* call: whatever it owns is freed first,
 * so loading twice does not leak.  After a failed load the target holds
 * the defaults plus whatever was read before the error, and must still be
 * released with fv_cfg_fini().  The table and its strings are borrowed and
 * normally static.
 *
 * Threads: no global state; a table may be shared by any number of threads
 * as long as each loads into its own target.  Loading is meant to happen
 * once, at start-up, before the threads that read the config exist.
 *
 * Fuzzing: fv_cfg_load_string() takes a length and does not need a NUL
 * terminator, so a fuzz target can feed it raw bytes with any table.
 * Input is bounded (FV_CFG_MAX_FILE), recursion is bounded by the depth
 * of the table's keys (an unknown key stops the walk), and every error
 * message is truncated to fit struct fv_cfg_error.
 *
 *     struct agent_config {
 *         char *node_name;          // FV_CFG_STRING, owned
 *         uint64_t poll_ms;         // FV_CFG_DURATION
 *         struct fv_cfg_cidrlist pod_cidrs;
 *     };
 *     static const struct fv_cfg_opt agent_opts[] = {
 *         {"nodeName", FV_CFG_STRING, FV_CFG_OFFSET(struct agent_config, node_name, char *),
 *          .help = "Kubernetes node name"},
 *         {"flowPollInterval", FV_CFG_DURATION,
 *          FV_CFG_OFFSET(struct agent_config, poll_ms, uint64_t), "5s", .min = 1000,
 *          .help = "how often conntrack is dumped"},
 *         {"podCIDRs", FV_CFG_CIDR_LIST,
 *          FV_CFG_OFFSET(struct agent_config, pod_cidrs, struct fv_cfg_cidrlist), "[]",
 *          .help = "Pod CIDRs of the cluster"},
 *     };
 *
 *     struct agent_config cfg = {0};
 *     struct fv_cfg_error err;
 *     if (fv_cfg_load_file(agent_opts, FV_CFG_COUNT(agent_opts), &cfg, path, &err) < 0)
 *         fprintf(stderr, "%s\n", err.msg);
 *     ...
 *     fv_cfg_fini(agent_opts, FV_CFG_COUNT(agent_opts), &cfg);
 */
#ifndef FV_CONFIG_CONFIG_H
#define FV_CONFIG_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "base/ip.h"

/* Largest config file or string accepted, in bytes. */
#define FV_CFG_MAX_FILE (1u << 20)
/* Longest key in a table, dots included (checked when the table is used). */
#define FV_CFG_MAX_KEY 127
/* Buffer size that fv_cfg_format_duration() never exceeds. */
#define FV_CFG_DURATION_STRLEN 32

/* Value types; the comment gives the C type of the field at `offset`. */
enum fv_cfg_type {
    FV_CFG_STRING,      /* char *, owned, NULL when unset */
    FV_CFG_BOOL,        /* bool */
    FV_CFG_U32,         /* uint32_t */
    FV_CFG_U64,         /* uint64_t */
    FV_CFG_DURATION,    /* uint64_t, milliseconds */
    FV_CFG_STRING_LIST, /* struct fv_cfg_strlist */
    FV_CFG_CIDR_LIST,   /* struct fv_cfg_cidrlist */
    FV_CFG_ENUM,        /* int, index into choices */
};

/* A list of strings; items and each string are owned by the target. */
struct fv_cfg_strlist {
    char **items; /* n strings; NULL when n == 0 */
    size_t n;     /* number of items */
};

/* A list of CIDR prefixes; items is owned by the target. */
struct fv_cfg_cidrlist {
    struct fv_cidr *items; /* n prefixes, host bits cleared; NULL when n == 0 */
    size_t n;              /* number of items */
};

/*
 * Optional extra check of a string value (FV_CFG_STRING and each item of
 * FV_CFG_STRING_LIST), for values with a syntax of their own such as
 * addresses.  Returns 0 when the value is acceptable; otherwise a negative
 * code, having written a short reason (no key, no value) into why.
 */
typedef int fv_cfg_check_fn(const char *value, char *why, size_t why_size);

/* One option: one row of a config table. */
struct fv_cfg_opt {
    const char *key;            /* dotted path as in the YAML file: "tls.caCert" */
    enum fv_cfg_type type;      /* value type, which fixes the field's C type */
    size_t offset;              /* offsetof() the field in the target struct */
    const char *def;            /* default as file text ("5s", "[10.0.0.0/8]"); NULL: zero
                                   (NULL string, false, 0, empty list, first choice) */
    uint64_t min, max;          /* numbers and durations (ms): bounds, max 0 = none;
                                   lists: bounds on the number of items */
    const char *const *choices; /* FV_CFG_ENUM: allowed values, NULL-terminated */
    fv_cfg_check_fn *check;     /* optional extra check of string values */
    const char *help;           /* one line for --help and the docs; required */
};

/* offsetof(st, field), refusing to compile unless the field has type ctype. */
#define FV_CFG_OFFSET(st, field, ctype)                                                            \
    (offsetof(st, field) + 0 * sizeof(_Generic(((st *)0)->field, ctype : 1)))
#define FV_CFG_COUNT(table) (sizeof(table) / sizeof((table)[0]))

/* A one-line message: "file:line: key: problem". */
struct fv_cfg_error {
    char msg[512];
};

/*
 * Sets every option to its default, after freeing what the target owns.
 * Also checks the table itself (keys, types, choices, defaults within
 * limits); a broken table is a programming error reported as -EINVAL.
 */
int fv_cfg_defaults(const struct fv_cfg_opt *t, size_t n, void *target, struct fv_cfg_error *err);

/*
 * Applies the defaults, then the YAML file at path.  Returns 0, -errno
 * when the file cannot be read, -EINVAL for a broken table, -ENOMEM, or
 * -FV_ECONFIG for anything wrong in the file; err (may be NULL) says what.
 */
int fv_cfg_load_file(const struct fv_cfg_opt *t, size_t n, void *target, const char *path,
                     struct fv_cfg_error *err);

/* The same for len bytes of YAML in memory (no NUL needed); name is the
 * file name used in messages. */
int fv_cfg_load_string(const struct fv_cfg_opt *t, size_t n, void *target, const char *name,
                       const char *text, size_t len, struct fv_cfg_error *err);

/* Frees the strings and lists the target owns and resets those fields;
 * safe on zeroed, default-only and partially loaded targets, and twice. */
void fv_cfg_fini(const struct fv_cfg_opt *t, size_t n, void *target);

enum fv_cfg_print_format {
    FV_CFG_PRINT_MARKDOWN, /* | key | type | default | limits | description | */
    FV_CFG_PRINT_YAML,     /* a commented config file with every default; loads cleanly */
    FV_CFG_PRINT_TEXT,     /* indented list of keys for --help */
};

/* Writes the table's documentation.  0, -EINVAL (format) or -EIO. */
int fv_cfg_print(const struct fv_cfg_opt *t, size_t n, FILE *out, enum fv_cfg_print_format fmt);

/* "string", "boolean", "integer", "duration", "list of strings",
 * "list of CIDRs", "enum". */
const char *fv_cfg_type_name(enum fv_cfg_type type);

/*
 * Parses a Go-style duration (see above) into milliseconds, for command
 * line flags as well as the loader.  Returns 0; -EINVAL when s is not a
 * duration or is negative; -ERANGE when it is too large; -EDOM when it is
 * not a whole number of milliseconds.
 */
int fv_cfg_parse_duration(const char *s, uint64_t *ms);

/* Formats ms as the shortest duration that parses back to it ("1m30s",
 * "500ms", "0s") into buf of FV_CFG_DURATION_STRLEN bytes; returns buf. */
const char *fv_cfg_format_duration(uint64_t ms, char *buf);

#endif
