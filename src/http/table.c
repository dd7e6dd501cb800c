/* table.c - see table.h. */
#include "http/table.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void fv_table_init(struct fv_table *t, size_t ncols)
{
    memset(t, 0, sizeof(*t));
    t->ncols = ncols ? ncols : 1;
}

void fv_table_fini(struct fv_table *t)
{
    for (size_t i = 0; i < t->nrows * t->ncols; i++)
        free(t->cells[i]);
    free(t->cells);
    fv_table_init(t, t->ncols);
}

/* A copy of s with every ASCII control character replaced by '?'. */
static char *sanitised_copy(const char *s)
{
    char *c = strdup(s ? s : "");

    if (c == NULL)
        return NULL;
    for (char *p = c; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
    return c;
}

int fv_table_add_row(struct fv_table *t, const char *const *cells)
{
    char **row;
    size_t i;

    if (t->nrows == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        char **p;

        if (cap > SIZE_MAX / sizeof(char *) / t->ncols)
            return -ENOMEM;
        p = realloc(t->cells, cap * t->ncols * sizeof(char *));
        if (p == NULL)
            return -ENOMEM;
        t->cells = p;
        t->cap = cap;
    }
    row = t->cells + t->nrows * t->ncols;
    for (i = 0; i < t->ncols; i++) {
        row[i] = sanitised_copy(cells[i]);
        if (row[i] == NULL)
            goto fail;
    }
    t->nrows++;
    return 0;
fail:
    while (i > 0)
        free(row[--i]);
    return -ENOMEM;
}

/* Characters in a UTF-8 string: every byte that does not continue one. */
static size_t display_width(const char *s)
{
    size_t n = 0;

    for (; *s; s++)
        n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

int fv_table_print(const struct fv_table *t, FILE *out)
{
    size_t *width = calloc(t->ncols, sizeof(*width));

    if (width == NULL)
        return -ENOMEM;
    for (size_t r = 0; r < t->nrows; r++)
        for (size_t c = 0; c < t->ncols; c++) {
            size_t w = display_width(t->cells[r * t->ncols + c]);
            if (w > width[c])
                width[c] = w;
        }
    for (size_t r = 0; r < t->nrows; r++) {
        char *const *row = t->cells + r * t->ncols;
        size_t pad = 0, last = t->ncols - 1;

        /* Trailing empty cells would only add spaces at the end of the line. */
        while (last > 0 && row[last][0] == '\0')
            last--;
        for (size_t c = 0; c <= last; c++) {
            fprintf(out, "%*s%s", (int)pad, "", row[c]);
            pad = width[c] - display_width(row[c]) + FV_TABLE_GAP;
        }
        fputc('\n', out);
    }
    free(width);
    return ferror(out) ? -EIO : 0;
}
