/*
 * table.h - a small text table for command-line output: a header row and
 * data rows of strings, printed with every column as wide as its widest
 * cell, kubectl style:
 *
 *     SRC_IP      DST_IP     SPORT
 *     10.0.0.1    10.0.0.2   443
 *
 * Columns are separated by FV_TABLE_GAP spaces; the last column is not
 * padded, so no line ends in spaces.  An empty or NULL cell prints as
 * nothing (padding only).  Widths count UTF-8 characters, not bytes.
 * Cells usually come from a server, so control characters in them (tabs,
 * newlines, escape sequences) are replaced by '?' when a row is added: a
 * row stays one line and cannot drive the terminal.
 *
 * The table owns copies of every cell; fv_table_fini frees them.  Not
 * thread-safe; one table per thread.
 *
 *     struct fv_table t;
 *     const char *hdr[] = {"NAME", "VALUE"}, *row[] = {"a", "1"};
 *     fv_table_init(&t, 2);
 *     fv_table_add_row(&t, hdr);    // the first row is the header
 *     fv_table_add_row(&t, row);
 *     fv_table_print(&t, stdout);
 *     fv_table_fini(&t);
 */
#ifndef FV_HTTP_TABLE_H
#define FV_HTTP_TABLE_H

#include <stddef.h>
#include <stdio.h>

#define FV_TABLE_GAP 3

struct fv_table {
    size_t ncols; /* cells per row, fixed at init */
    size_t nrows; /* rows added, the header included */
    size_t cap;   /* rows that cells has room for */
    char **cells; /* nrows * ncols sanitised copies, row-major; owned */
};

/* Prepares an empty table of ncols columns (at least 1); allocates nothing. */
void fv_table_init(struct fv_table *t, size_t ncols);
/* Frees every cell; the table is empty and can be reused. */
void fv_table_fini(struct fv_table *t);
/* Appends a row of t->ncols cells (borrowed; copied).  A NULL cell is an
 * empty one.  0 or -ENOMEM (the table is then unchanged). */
int fv_table_add_row(struct fv_table *t, const char *const *cells);
/* Prints every row, aligned.  0, or -EIO when writing to out failed. */
int fv_table_print(const struct fv_table *t, FILE *out);

#endif
