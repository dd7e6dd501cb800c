/*
 * print.c - documentation generated from a config table (see config.h).
 *
 * The README's option table, the example config file and `--help` are all
 * printed from the same rows the loader uses, so that a test can compare
 * the docs with the table and a new option cannot go undocumented.  The
 * YAML output is itself a valid config: loading it gives the defaults.
 */
#include "config/config.h"

#include <errno.h>
#include <string.h>

const char *fv_cfg_type_name(enum fv_cfg_type type)
{
    switch (type) {
    case FV_CFG_STRING:
        return "string";
    case FV_CFG_BOOL:
        return "boolean";
    case FV_CFG_U32:
    case FV_CFG_U64:
        return "integer";
    case FV_CFG_DURATION:
        return "duration";
    case FV_CFG_STRING_LIST:
        return "list of strings";
    case FV_CFG_CIDR_LIST:
        return "list of CIDRs";
    case FV_CFG_ENUM:
        return "enum";
    }
    return "unknown";
}

static void format_bound(const struct fv_cfg_opt *o, uint64_t v, char *buf)
{
    if (o->type == FV_CFG_DURATION)
        fv_cfg_format_duration(v, buf);
    else
        snprintf(buf, FV_CFG_DURATION_STRLEN, "%llu", (unsigned long long)v);
}

/* "≥ 1s", "1..65535", "≤ 4 items", "tls, tcp, udp", or "" when none. */
static const char *limits(const struct fv_cfg_opt *o, char *buf, size_t size)
{
    char lo[FV_CFG_DURATION_STRLEN], hi[FV_CFG_DURATION_STRLEN];
    const char *unit = o->type == FV_CFG_STRING_LIST || o->type == FV_CFG_CIDR_LIST ? " items" : "";
    size_t off = 0;

    buf[0] = '\0';
    if (o->type == FV_CFG_ENUM) {
        for (size_t i = 0; o->choices[i] != NULL && off < size; i++)
            off += (size_t)snprintf(buf + off, size - off, "%s%s", i ? ", " : "", o->choices[i]);
        return buf;
    }
    if (o->type == FV_CFG_STRING || o->type == FV_CFG_BOOL)
        return buf;
    format_bound(o, o->min, lo);
    format_bound(o, o->max, hi);
    if (o->min != 0 && o->max != 0)
        snprintf(buf, size, "%s..%s%s", lo, hi, unit);
    else if (o->min != 0)
        snprintf(buf, size, "≥ %s%s", lo, unit);
    else if (o->max != 0)
        snprintf(buf, size, "≤ %s%s", hi, unit);
    return buf;
}

/* Markdown cell text: a '|' would end the cell. */
static void put_cell(FILE *out, const char *s)
{
    for (; *s != '\0'; s++) {
        if (*s == '|')
            fputc('\\', out);
        fputc(*s, out);
    }
}

static void print_markdown(const struct fv_cfg_opt *t, size_t n, FILE *out)
{
    char lim[256];

    fputs("| key | type | default | limits | description |\n", out);
    fputs("|-----|------|---------|--------|-------------|\n", out);
    for (size_t i = 0; i < n; i++) {
        fprintf(out, "| `%s` | %s | ", t[i].key, fv_cfg_type_name(t[i].type));
        if (t[i].def != NULL) {
            fputc('`', out);
            put_cell(out, t[i].def);
            fputc('`', out);
        }
        fputs(" | ", out);
        put_cell(out, limits(&t[i], lim, sizeof(lim)));
        fputs(" | ", out);
        put_cell(out, t[i].help);
        fputs(" |\n", out);
    }
}

static void print_text(const struct fv_cfg_opt *t, size_t n, FILE *out)
{
    char lim[256];

    for (size_t i = 0; i < n; i++) {
        fprintf(out, "  %s (%s", t[i].key, fv_cfg_type_name(t[i].type));
        if (t[i].def != NULL)
            fprintf(out, ", default %s", t[i].def[0] ? t[i].def : "\"\"");
        if (limits(&t[i], lim, sizeof(lim))[0] != '\0')
            fprintf(out, ", %s", lim);
        fprintf(out, ")\n      %s\n", t[i].help);
    }
}

/* A string default as a double-quoted YAML scalar, so that any text survives. */
static void put_quoted(FILE *out, const char *s)
{
    fputc('"', out);
    for (; *s != '\0'; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            fprintf(out, "\\%c", ch);
        else if (ch < 0x20 || ch == 0x7f)
            fprintf(out, "\\x%02x", ch);
        else
            fputc(ch, out);
    }
    fputc('"', out);
}

static void print_yaml_option(const struct fv_cfg_opt *o, const char *name, int depth, FILE *out)
{
    char lim[256];

    fprintf(out, "%*s# %s (%s", 2 * depth, "", o->help, fv_cfg_type_name(o->type));
    if (limits(o, lim, sizeof(lim))[0] != '\0')
        fprintf(out, "; %s", lim);
    fprintf(out, ")\n%*s%s:", 2 * depth, "", name);
    /* No default: an empty value, which the loader reads as "keep the default". */
    if (o->def != NULL && o->type == FV_CFG_STRING) {
        fputc(' ', out);
        put_quoted(out, o->def);
    } else if (o->def != NULL) {
        fprintf(out, " %s", o->def);
    }
    fputc('\n', out);
}

/*
 * Prints the options under the dotted prefix (plen bytes of some key,
 * including the final dot) as a YAML mapping, grouping each section's
 * options under one header however the table orders them, because a
 * section written twice would be a duplicate key.
 */
static void print_yaml_level(const struct fv_cfg_opt *t, size_t n, const char *prefix, size_t plen,
                             int depth, FILE *out)
{
    bool first = depth > 0; /* no blank line right under a section header */

    for (size_t i = 0; i < n; i++) {
        const char *rest = t[i].key + plen, *dot;
        size_t seg;
        bool seen = false;

        if (strncmp(t[i].key, prefix, plen) != 0)
            continue;
        dot = strchr(rest, '.');
        if (dot == NULL) {
            fputs(first ? "" : "\n", out);
            first = false;
            print_yaml_option(&t[i], rest, depth, out);
            continue;
        }
        seg = (size_t)(dot - t[i].key) + 1; /* prefix of the section, dot included */
        for (size_t j = 0; j < i && !seen; j++)
            seen = strncmp(t[j].key, t[i].key, seg) == 0;
        if (seen)
            continue;
        fputs(first ? "" : "\n", out);
        first = false;
        fprintf(out, "%*s%.*s:\n", 2 * depth, "", (int)(dot - rest), rest);
        print_yaml_level(t, n, t[i].key, seg, depth + 1, out);
    }
}

int fv_cfg_print(const struct fv_cfg_opt *t, size_t n, FILE *out, enum fv_cfg_print_format fmt)
{
    switch (fmt) {
    case FV_CFG_PRINT_MARKDOWN:
        print_markdown(t, n, out);
        break;
    case FV_CFG_PRINT_YAML:
        fputs("# Every key with its default; generated from the config table.\n"
              "# Keys left empty have no default.\n",
              out);
        print_yaml_level(t, n, "", 0, 0, out);
        break;
    case FV_CFG_PRINT_TEXT:
        print_text(t, n, out);
        break;
    default:
        return -EINVAL;
    }
    return ferror(out) ? -EIO : 0;
}
