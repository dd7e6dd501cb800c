/* yaml_out.c - see yaml_out.h. */
#include "http/yaml_out.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define INDENT_STEP 2

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Words that YAML 1.1 readers take for booleans or null, and 1.2's null. */
static bool is_reserved_word(const char *s, size_t n)
{
    static const char *const words[] = {"y",  "n",   "yes",  "no", "true", "false",
                                        "on", "off", "null", "~",  "<<",   "="};

    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
        if (strlen(words[i]) == n && strncasecmp(s, words[i], n) == 0)
            return true;
    return false;
}

/* True for anything a YAML 1.1 or 1.2 reader might resolve to a number:
 * decimal, float with one dot and an exponent, 1.1's '_' separators and
 * base-60 "1:30", 0x/0o/0b integers, .inf and .nan; and dates, which 1.1
 * resolves to timestamps.  It errs on the side of quoting. */
static bool looks_numeric(const char *s, size_t n)
{
    size_t i = 0, digits = 0, dots = 0;

    if (n >= 5 && is_digit(s[0]) && is_digit(s[1]) && is_digit(s[2]) && is_digit(s[3]) &&
        s[4] == '-')
        return true;
    if (i < n && (s[i] == '+' || s[i] == '-'))
        i++;
    if (n - i == 4 && s[i] == '.' &&
        (strncasecmp(s + i + 1, "inf", 3) == 0 || strncasecmp(s + i + 1, "nan", 3) == 0))
        return true;
    if (n - i > 2 && s[i] == '0' && strchr("xXoObB", s[i + 1])) {
        for (i += 2; i < n; i++)
            if (!strchr("0123456789abcdefABCDEF_", s[i]))
                return false;
        return true;
    }
    for (; i < n && (is_digit(s[i]) || s[i] == '_' || s[i] == ':' || s[i] == '.'); i++) {
        digits += is_digit(s[i]);
        dots += s[i] == '.';
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E') && digits > 0) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        if (i == n || !is_digit(s[i]))
            return false;
        while (i < n && is_digit(s[i]))
            i++;
    }
    return i == n && digits > 0 && dots <= 1;
}

/* Control characters, C1 controls, U+2028/U+2029 and a BOM cannot appear
 * in a plain scalar. */
static bool has_unprintable(const unsigned char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] < 0x20 || s[i] == 0x7f)
            return true;
        if (s[i] == 0xC2 && i + 1 < n && s[i + 1] >= 0x80 && s[i + 1] <= 0x9F)
            return true;
        if (i + 2 < n && ((s[i] == 0xE2 && s[i + 1] == 0x80 && (s[i + 2] & 0xFE) == 0xA8) ||
                          (s[i] == 0xEF && s[i + 1] == 0xBB && s[i + 2] == 0xBF)))
            return true;
    }
    return false;
}

static bool needs_quotes(const char *s, size_t n)
{
    if (n == 0 || is_reserved_word(s, n) || looks_numeric(s, n))
        return true;
    if (strchr("-?:,[]{}#&*!|>'\"%@` ", s[0]))
        return true;
    if (s[n - 1] == ' ' || s[n - 1] == ':')
        return true;
    for (size_t i = 0; i + 1 < n; i++)
        if ((s[i] == ':' && s[i + 1] == ' ') || (s[i] == ' ' && s[i + 1] == '#'))
            return true;
    return has_unprintable((const unsigned char *)s, n);
}

static void write_quoted(const char *s, size_t n, FILE *out)
{
    static const char esc_from[] = "\"\\\a\b\t\n\v\f\r\x1b";
    static const char esc_to[] = "\"\\abtnvfre";
    const unsigned char *u = (const unsigned char *)s;

    fputc('"', out);
    for (size_t i = 0; i < n; i++) {
        const char *e = u[i] ? strchr(esc_from, u[i]) : NULL;

        if (u[i] == 0)
            fputs("\\0", out);
        else if (e)
            fprintf(out, "\\%c", esc_to[e - esc_from]);
        else if (u[i] < 0x20 || u[i] == 0x7f)
            fprintf(out, "\\x%02X", u[i]);
        else if (u[i] == 0xC2 && i + 1 < n && u[i + 1] >= 0x80 && u[i + 1] <= 0x9F)
            fprintf(out, "\\x%02X", u[++i]);
        else if (u[i] == 0xE2 && i + 2 < n && u[i + 1] == 0x80 && (u[i + 2] & 0xFE) == 0xA8) {
            fputs(u[i + 2] == 0xA8 ? "\\L" : "\\P", out);
            i += 2;
        } else if (u[i] == 0xEF && i + 2 < n && u[i + 1] == 0xBB && u[i + 2] == 0xBF) {
            fputs("\\uFEFF", out);
            i += 2;
        } else
            fputc(u[i], out);
    }
    fputc('"', out);
}

static void write_string(const char *s, size_t n, FILE *out)
{
    if (needs_quotes(s, n))
        write_quoted(s, n, out);
    else
        fwrite(s, 1, n, out);
}

/* A scalar or an empty container, on the current line. */
static void write_scalar(const json_t *v, FILE *out)
{
    char *text;

    switch (json_typeof(v)) {
    case JSON_STRING:
        write_string(json_string_value(v), json_string_length(v), out);
        return;
    case JSON_OBJECT:
        fputs("{}", out);
        return;
    case JSON_ARRAY:
        fputs("[]", out);
        return;
    default:
        /* Numbers, true, false, null: exactly as the JSON output has them. */
        text = json_dumps(v, JSON_ENCODE_ANY);
        fputs(text ? text : "null", out);
        free(text);
    }
}

static bool is_block(const json_t *v)
{
    return (json_is_object(v) && json_object_size(v) > 0) ||
           (json_is_array(v) && json_array_size(v) > 0);
}

static void write_indent(int n, FILE *out)
{
    fprintf(out, "%*s", n, "");
}

static void write_block(const json_t *v, int indent, bool on_open_line, FILE *out);

/* The value after "key:" */
static void write_member_value(const json_t *v, int indent, FILE *out)
{
    if (is_block(v)) {
        fputc('\n', out);
        write_block(v, indent + INDENT_STEP, false, out);
    } else {
        fputc(' ', out);
        write_scalar(v, out);
        fputc('\n', out);
    }
}

/* A non-empty mapping or sequence at the given indentation.  When
 * on_open_line, its first line continues the current one (after "- "). */
static void write_block(const json_t *v, int indent, bool on_open_line, FILE *out)
{
    bool first = true;

    if (json_is_object(v)) {
        const char *key;
        json_t *member;

        json_object_foreach((json_t *)v, key, member)
        {
            if (!first || !on_open_line)
                write_indent(indent, out);
            write_string(key, strlen(key), out);
            fputc(':', out);
            write_member_value(member, indent, out);
            first = false;
        }
        return;
    }
    for (size_t i = 0; i < json_array_size(v); i++) {
        const json_t *item = json_array_get(v, i);

        if (!first || !on_open_line)
            write_indent(indent, out);
        fputs("- ", out);
        if (is_block(item)) {
            write_block(item, indent + INDENT_STEP, true, out);
        } else {
            write_scalar(item, out);
            fputc('\n', out);
        }
        first = false;
    }
}

int fv_yaml_out_print(const json_t *v, FILE *out)
{
    if (is_block(v)) {
        write_block(v, 0, false, out);
    } else {
        write_scalar(v, out);
        fputc('\n', out);
    }
    return ferror(out) ? -EIO : 0;
}
