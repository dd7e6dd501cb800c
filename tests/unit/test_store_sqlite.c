/*
 * test_store_sqlite.c - the embedded SQLite store: its schema, exact round
 * trips of rows through push() and the database, backpressure while the
 * database is locked, retention, the size cap, and query() (bound
 * arguments, typed cells, only a single SELECT).
 *
 * Every test works in a fresh directory under /tmp and checks the database
 * through a connection of its own, as another program would.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <ftw.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "base/clock.h"
#include "base/err.h"
#include "base/sbuf.h"
#include "store/row.h"
#include "store/sql.h"
#include "store/store.h"

/* ---- fixture: a fresh directory per test ---- */

static char dir[64];
static char path[128]; /* dir/a/b/flows.db: the store creates a and b */

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/fv_sqlite_XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/a/b/flows.db", dir);
    return 0;
}

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static int teardown(void **state)
{
    (void)state;
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}

#define TEST(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

/* ---- rows with known values ---- */

static const char *const strs[] = {
    "",
    "o'brien",
    "say \"hi\"",
    "back\\slash",
    "na\xc3\xafve \xe2\x98\x83 \xf0\x9f\x98\x80 \xe6\x97\xa5\xe6\x9c\xac",
    "'; DROP TABLE flows; --",
    "line\nbreak\ttab",
    "frontend",
};
#define NSTRS (sizeof(strs) / sizeof(strs[0]))

static char long_str[300]; /* two-byte LEB128 length */

/* The expected row i.  Row 0 is all zeros and empty strings, row 1 all
 * maximum values and long strings; the rest vary by row and column. */
static void fill_row(struct fv_flow_row *r, uint64_t i, uint32_t time_inserted)
{
    memset(long_str, 'x', sizeof(long_str) - 1);
    memset(r, 0, sizeof(*r));
    for (int c = 0; c < FV_FLOW_NCOLS; c++) {
        enum fv_col_type t = fv_flow_cols[c].type;
        if (t == FV_COL_STRING) {
            r->s[c] = i == 1 ? long_str : strs[i == 0 ? 0 : (i + (uint64_t)c) % NSTRS];
            r->slen[c] = (uint32_t)strlen(r->s[c]);
            continue;
        }
        uint64_t max = t == FV_COL_U8         ? 0xff
                       : t == FV_COL_U16      ? 0xffff
                       : t == FV_COL_DATETIME ? 0xffffffffu
                                              : UINT64_MAX;
        r->v[c] = i == 0 ? 0 : i == 1 ? max : (i * 1000 + (uint64_t)c) & max;
    }
    if (i > 1)
        r->v[FV_C_TIME_INSERTED] = time_inserted;
}

/* Rows among [0, n) whose column col is str. */
static int64_t count_expected(uint64_t n, int col, const char *str)
{
    int64_t k = 0;
    for (uint64_t i = 0; i < n; i++) {
        struct fv_flow_row r;
        fill_row(&r, i, 0);
        k += r.slen[col] == strlen(str) && memcmp(r.s[col], str, r.slen[col]) == 0;
    }
    return k;
}

static void encode_row(uint64_t i, uint32_t time_inserted, struct fv_sbuf *b)
{
    struct fv_flow_row r;

    fill_row(&r, i, time_inserted);
    fv_sbuf_reset(b);
    assert_int_equal(fv_flow_row_encode(&r, b), 0);
}

static struct fv_store open_store(const struct fv_sqlite_cfg *cfg)
{
    struct fv_store st;
    assert_int_equal(fv_sqlite_store_new(cfg, &st), 0);
    assert_string_equal(st.ops->name, "sqlite");
    assert_int_equal(st.ops->dialect, FV_SQL_SQLITE);
    return st;
}

static struct fv_sqlite_cfg default_cfg(void)
{
    struct fv_sqlite_cfg cfg = {
        .path = path, .commit_ms = 100, .batch_rows = 1000, .queue_bytes = 4u << 20};
    return cfg;
}

static void nap_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Pushes rows [from, to), retrying while the store says -EAGAIN. */
static void push_rows(struct fv_store *st, uint64_t from, uint64_t to, uint32_t time_inserted)
{
    struct fv_sbuf b;

    fv_sbuf_init(&b, 1 << 16);
    for (uint64_t i = from; i < to; i++) {
        encode_row(i, time_inserted, &b);
        int rc;
        while ((rc = st->ops->push(st->impl, b.p, b.len)) == -EAGAIN)
            nap_ms(1);
        assert_int_equal(rc, 0);
    }
    fv_sbuf_fini(&b);
}

/* Waits (up to 10 s) until the store has written n rows. */
static void wait_written(struct fv_store *st, uint64_t n)
{
    struct fv_store_stats ss;
    for (int i = 0; i < 1000; i++) {
        st->ops->stats(st->impl, &ss);
        if (ss.rows_written >= n)
            return;
        nap_ms(10);
    }
    fail_msg("only %llu of %llu rows written", (unsigned long long)ss.rows_written,
             (unsigned long long)n);
}

/* ---- a connection of the test's own ---- */

static sqlite3 *db_open(void)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    return db;
}

static int64_t db_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    int64_t v;

    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static void db_text(sqlite3 *db, const char *sql, char *buf, size_t len)
{
    sqlite3_stmt *st = NULL;

    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    snprintf(buf, len, "%s", (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
}

/* The table holds rows [first, end) of fill_row, in order, column for
 * column. */
static void check_rows(sqlite3 *db, uint64_t first, uint64_t end, uint32_t time_inserted)
{
    sqlite3_stmt *st = NULL;
    uint64_t i = first;

    assert_int_equal(sqlite3_prepare_v2(db, "SELECT * FROM flows ORDER BY rowid", -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_column_count(st), FV_FLOW_NCOLS);
    while (sqlite3_step(st) == SQLITE_ROW) {
        struct fv_flow_row r;
        fill_row(&r, i, time_inserted);
        for (int c = 0; c < FV_FLOW_NCOLS; c++) {
            if (fv_flow_cols[c].type == FV_COL_STRING) {
                assert_int_equal(sqlite3_column_type(st, c), SQLITE_TEXT);
                assert_int_equal(sqlite3_column_bytes(st, c), r.slen[c]);
                assert_memory_equal(sqlite3_column_text(st, c), r.s[c], r.slen[c]);
            } else {
                assert_int_equal(sqlite3_column_type(st, c), SQLITE_INTEGER);
                assert_true((uint64_t)sqlite3_column_int64(st, c) == r.v[c]);
            }
        }
        i++;
    }
    sqlite3_finalize(st);
    assert_int_equal(i, end);
}

/* ---- schema ---- */

static void test_schema_has_the_flow_columns_in_order_in_wal_mode_at_version_1(void **state)
{
    struct fv_sqlite_cfg cfg = default_cfg();
    struct fv_store st = open_store(&cfg);
    sqlite3_stmt *q = NULL;
    sqlite3 *db;
    char mode[16];
    int c = 0;

    st.ops->stop(st.impl, 1000);
    db = db_open();
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA table_info(flows)", -1, &q, NULL), SQLITE_OK);
    while (sqlite3_step(q) == SQLITE_ROW) {
        assert_true(c < FV_FLOW_NCOLS);
        assert_string_equal(sqlite3_column_text(q, 1), fv_flow_cols[c].name);
        assert_string_equal(sqlite3_column_text(q, 2),
                            fv_flow_cols[c].type == FV_COL_STRING ? "TEXT" : "INTEGER");
        c++;
    }
    sqlite3_finalize(q);
    assert_int_equal(c, FV_FLOW_NCOLS);
    db_text(db, "PRAGMA journal_mode", mode, sizeof(mode));
    assert_string_equal(mode, "wal");
    assert_int_equal(db_int(db, "PRAGMA user_version"), 1);
    assert_int_equal(db_int(db, "PRAGMA auto_vacuum"), 2); /* INCREMENTAL */
    assert_int_equal(db_int(db, "SELECT count(*) FROM pragma_index_info('flows_flowEndSeconds') "
                                "WHERE name = 'flowEndSeconds'"),
                     1);
    sqlite3_close(db);
    (void)state;
}

static void test_reopening_an_existing_database_keeps_its_rows(void **state)
{
    struct fv_sqlite_cfg cfg = default_cfg();
    struct fv_store st = open_store(&cfg);
    sqlite3 *db;

    push_rows(&st, 0, 10, 1000);
    st.ops->stop(st.impl, 1000);
    st = open_store(&cfg);
    push_rows(&st, 10, 25, 1000);
    st.ops->stop(st.impl, 1000);
    db = db_open();
    check_rows(db, 0, 25, 1000);
    assert_int_equal(db_int(db, "PRAGMA user_version"), 1);
    sqlite3_close(db);
    (void)state;
}

static void test_a_newer_schema_version_is_refused_and_left_alone(void **state)
{
    struct fv_sqlite_cfg cfg = default_cfg();
    struct fv_store st = open_store(&cfg);
    sqlite3 *db;

    st.ops->stop(st.impl, 1000);
    db = db_open();
    assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 2", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(fv_sqlite_store_new(&cfg, &st), -ENOTSUP);
    db = db_open();
    assert_int_equal(db_int(db, "PRAGMA user_version"), 2);
    sqlite3_close(db);
    (void)state;
}

static void test_a_path_that_cannot_be_created_is_an_error(void **state)
{
    struct fv_sqlite_cfg cfg = default_cfg();
    struct fv_store st;
    char file[160], bad[200];
    FILE *f;

    /* A directory component that is a regular file. */
    snprintf(file, sizeof(file), "%s/plain", dir);
    f = fopen(file, "w");
    assert_non_null(f);
    fclose(f);
    snprintf(bad, sizeof(bad), "%s/sub/flows.db", file);
    cfg.path = bad;
    assert_true(fv_sqlite_store_new(&cfg, &st) < 0);
    /* A file that is not a database is left alone. */
    cfg.path = file;
    f = fopen(file, "w");
    assert_non_null(f);
    static const char junk[] = "this is not an SQLite database, and long enough for a header\n";
    fputs(junk, f);
    fclose(f);
    assert_true(fv_sqlite_store_new(&cfg, &st) < 0);
    struct stat sb;
    assert_int_equal(stat(file, &sb), 0);
    assert_int_equal(sb.st_size, sizeof(junk) - 1);
    cfg.path = "";
    assert_int_equal(fv_sqlite_store_new(&cfg, &st), -FV_ECONFIG);
    (void)state;
}

/* ---- round trip ---- */

static void test_pushed_rows_read_back_exactly(void **state)
{
    const uint64_t n = 2500;
    struct fv_sqlite_cfg cfg = default_cfg();
    struct fv_store st = open_store(&cfg);
    struct fv_store_stats ss;
    uint64_t sum = 0;
    sqlite3 *db;

    push_rows(&st, 0, n, 1700000000);
    wait_written(&st, n);
    st.ops->stats(st.impl, &ss);
    assert_int_equal(ss.rows_received, n);
    assert_int_equal(ss.rows_written, n);
    assert_int_equal(ss.rows_queued, 0);
    assert_int_equal(ss.queue_bytes, 0);
    assert_int_equal(ss.batches_failed, 0);
    assert_true(ss.batches_written >= 3); /* 1000 rows per batch */
    assert_true(ss.up);
    st.ops->stop(st.impl, 1000);

    db = db_open();
    check_rows(db, 0, n, 1700000000);
    for (uint64_t i = 2; i < n; i++)
        sum += i * 1000 + FV_C_OCT_DELTA;
    assert_true((uint64_t)db_int(db, "SELECT sum(octetDeltaCount) FROM flows WHERE rowid > 2") ==
                sum);
    /* UInt64 max is stored as the same 64 bits. */
    assert_int_equal(db_int(db, "SELECT octetDeltaCount FROM flows WHERE rowid = 2"), -1);
    assert_int_equal(db_int(db, "SELECT flowEndSeconds FROM flows WHERE rowid = 2"), 4294967295);
    assert_int_equal(db_int(db, "SELECT count(*) FROM flows WHERE sourcePodName = ''"),
                     count_expected(n, FV_C_SRC_POD, ""));
    sqlite3_close(db);
    (void)state;
}

static void test_stop_writes_everything_still_queued(void **state)
{
    const uint64_t n = 5000;
    struct fv_sqlite_cfg cfg = default_cfg();
    struct fv_store st;
    sqlite3 *db;

    cfg.commit_ms = 60000; /* nothing is due before stop() */
    cfg.batch_rows = 100000;
    st = open_store(&cfg);
    push_rows(&st, 0, n, 1000);
    st.ops->stop(st.impl, 0);
    db = db_open();
    assert_int_equal(db_int(db, "SELECT count(*) FROM flows"), n);
    sqlite3_close(db);
    /* The writer's close left no WAL behind. */
    char wal[160];
    struct stat sb;
    snprintf(wal, sizeof(wal), "%s-wal", path);
    assert_true(stat(wal, &sb) < 0 || sb.st_size == 0);
    (void)state;
}

static void test_malformed_rows_are_refused(void **state)
{
    struct fv_sqlite_cfg cfg = default_cfg();
    struct fv_store st = open_store(&cfg);
    struct fv_store_stats ss;
    struct fv_sbuf b;

    fv_sbuf_init(&b, 1 << 16);
    encode_row(5, 1000, &b);
    assert_int_equal(st.ops->push(st.impl, b.p, b.len - 1), -EINVAL);
    assert_int_equal(st.ops->push(st.impl, b.p, 0), -EINVAL);
    fv_sbuf_putc(&b, 0); /* one byte too many */
    assert_int_equal(st.ops->push(st.impl, b.p, b.len), -EINVAL);
    st.ops->stats(st.impl, &ss);
    assert_int_equal(ss.rows_received, 0);
    fv_sbuf_fini(&b);
    st.ops->stop(st.impl, 1000);
    (void)state;
}

/* ---- backpressure ---- */

/* Pushes rows from *next on until the store refuses one. */
static void push_until_refused(struct fv_store *st, struct fv_sbuf *b, uint64_t *next)
{
    for (int tries = 0; tries < 5000; tries++) {
        encode_row(*next, 1000, b);
        int rc = st->ops->push(st->impl, b->p, b->len);
        if (rc == -EAGAIN)
            return;
        assert_int_equal(rc, 0);
        (*next)++;
        nap_ms(1);
    }
    fail_msg("never refused");
}

static void test_a_locked_database_means_backpressure_and_no_loss(void **state)
{
    struct fv_sqlite_cfg cfg = default_cfg();
    struct fv_store_stats ss;
    struct fv_store st;
    struct fv_sbuf b;
    sqlite3 *lock, *db;
    uint64_t pushed = 2; /* rows 0 and 1 are not the usual size */

    cfg.queue_bytes = 4096; /* a handful of rows */
    cfg.batch_rows = 10;
    st = open_store(&cfg);
    lock = db_open();
    assert_int_equal(sqlite3_exec(lock, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);

    fv_sbuf_init(&b, 1 << 16);
    push_until_refused(&st, &b, &pushed);
    /* The writer takes a batch, fails to write it (busy for 1 s), keeps
     * it; once the queue is full again, push() refuses for good. */
    for (int i = 0; i < 500; i++) {
        st.ops->stats(st.impl, &ss);
        if (ss.batches_failed > 0)
            break;
        nap_ms(10);
    }
    push_until_refused(&st, &b, &pushed);
    if (pushed - 2 < 10 || pushed - 2 > 40)
        fail_msg("%llu rows taken with a batch of 10 rows and a queue of 4096 bytes",
                 (unsigned long long)pushed - 2);
    nap_ms(300);
    encode_row(pushed, 1000, &b);
    assert_int_equal(st.ops->push(st.impl, b.p, b.len), -EAGAIN);
    st.ops->stats(st.impl, &ss);
    assert_true(ss.rows_refused >= 3);
    assert_true(ss.batches_failed >= 1);
    assert_false(ss.up);
    assert_int_equal(ss.rows_written, 0);
    assert_int_equal(ss.rows_queued, pushed - 2);
    fv_sbuf_fini(&b);

    assert_int_equal(sqlite3_exec(lock, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(lock);
    push_rows(&st, pushed, 200, 1000);
    wait_written(&st, 198);
    st.ops->stats(st.impl, &ss);
    assert_true(ss.up);
    st.ops->stop(st.impl, 1000);
    db = db_open();
    check_rows(db, 2, 200, 1000);
    sqlite3_close(db);
    (void)state;
}

/* ---- retention and size cap ---- */

static void test_retention_deletes_exactly_the_rows_older_than_it(void **state)
{
    const uint64_t old = 12000, young = 300; /* several delete chunks */
    uint32_t now = fv_clock_wall_s();
    struct fv_sqlite_cfg cfg = default_cfg();
    struct fv_store_stats ss;
    struct fv_store st = open_store(&cfg);
    sqlite3 *db;

    push_rows(&st, 2, 2 + old, now - 7200);
    push_rows(&st, 2 + old, 2 + old + young, now - 60);
    st.ops->stop(st.impl, 5000);

    cfg.retention_s = 3600;
    st = open_store(&cfg);
    for (int i = 0; i < 1000; i++) {
        st.ops->stats(st.impl, &ss);
        if (ss.rows_deleted >= old)
            break;
        nap_ms(10);
    }
    nap_ms(200);
    st.ops->stats(st.impl, &ss);
    assert_int_equal(ss.rows_deleted, old);
    st.ops->stop(st.impl, 1000);

    db = db_open();
    assert_int_equal(db_int(db, "SELECT count(*) FROM flows"), young);
    assert_int_equal(db_int(db, "SELECT min(timeInserted) FROM flows"), now - 60);
    assert_int_equal(db_int(db, "SELECT min(rowid) FROM flows"), old + 1);
    sqlite3_close(db);
    (void)state;
}

static int64_t db_bytes(void)
{
    sqlite3 *db = db_open();
    int64_t v = db_int(db, "PRAGMA page_count") * db_int(db, "PRAGMA page_size");
    sqlite3_close(db);
    return v;
}

static void test_size_cap_deletes_the_oldest_rows_and_shrinks_the_file(void **state)
{
    const uint64_t n = 20000;
    const uint64_t cap = 2u << 20;
    struct fv_sqlite_cfg cfg = default_cfg();
    struct fv_store_stats ss;
    struct fv_store st = open_store(&cfg);
    struct stat sb;
    int64_t before, max_rowid;
    sqlite3 *db;

    push_rows(&st, 2, 2 + n, 1000);
    st.ops->stop(st.impl, 5000);
    before = db_bytes();
    assert_true(before > (int64_t)(3 * cap));

    cfg.max_bytes = cap;
    st = open_store(&cfg);
    for (int i = 0; i < 1000 && db_bytes() > (int64_t)cap; i++)
        nap_ms(10);
    assert_true(db_bytes() <= (int64_t)cap);
    st.ops->stats(st.impl, &ss);
    if (ss.rows_deleted <= n / 2 || ss.rows_deleted >= n)
        fail_msg("%llu rows deleted", (unsigned long long)ss.rows_deleted);
    st.ops->stop(st.impl, 1000);

    /* The newest rows are the ones left, and the file itself shrank. */
    db = db_open();
    max_rowid = db_int(db, "SELECT max(rowid) FROM flows");
    assert_int_equal(max_rowid, n);
    assert_int_equal(db_int(db, "SELECT count(*) FROM flows"),
                     max_rowid - db_int(db, "SELECT min(rowid) FROM flows") + 1);
    assert_int_equal(db_int(db, "SELECT count(*) FROM flows"), (int64_t)(n - ss.rows_deleted));
    sqlite3_close(db);
    assert_int_equal(stat(path, &sb), 0);
    assert_true(sb.st_size <= (off_t)cap);
    (void)state;
}

/* ---- query() ---- */

struct result {
    int rows;
    int ncells;
    struct fv_sql_val cells[8];
    char text[8][64];
    int stop_with; /* returned by the callback */
};

static int on_row(void *arg, const struct fv_sql_val *cells, int ncells)
{
    struct result *r = arg;

    if (r->rows++ == 0) {
        r->ncells = ncells;
        for (int i = 0; i < ncells && i < 8; i++) {
            r->cells[i] = cells[i];
            if (cells[i].type == FV_SQL_TEXT) {
                assert_true(cells[i].len < sizeof(r->text[i]));
                memcpy(r->text[i], cells[i].s, cells[i].len);
                r->text[i][cells[i].len] = '\0';
            }
        }
    }
    return r->stop_with;
}

/* Runs sql (with one text argument when arg is not NULL). */
static int run(struct fv_store *st, const char *sql, const char *arg, struct result *r, char *err,
               size_t errlen)
{
    struct fv_sql q;
    int rc;

    memset(r->cells, 0, sizeof(r->cells));
    r->rows = r->ncells = 0;
    fv_sql_init(&q);
    fv_sql_add(&q, sql);
    if (arg)
        fv_sql_arg_text(&q, arg, strlen(arg));
    rc = st->ops->query(st->impl, &q, on_row, r, err, errlen);
    fv_sql_fini(&q);
    return rc;
}

static void test_query_binds_text_arguments_as_values_not_sql(void **state)
{
    struct fv_sqlite_cfg cfg = default_cfg();
    struct fv_store st = open_store(&cfg);
    struct result r = {0};
    char err[256];

    push_rows(&st, 0, 100, 1000);
    wait_written(&st, 100);
    /* Values with quotes match exactly the rows that hold them... */
    for (size_t k = 1; k < NSTRS; k++) {
        assert_int_equal(run(&st, "SELECT count(*) FROM flows WHERE sourcePodNamespace = ", strs[k],
                             &r, err, sizeof(err)),
                         0);
        assert_int_equal(r.rows, 1);
        assert_int_equal(r.cells[0].type, FV_SQL_INT);
        assert_int_equal(r.cells[0].i, count_expected(100, FV_C_SRC_NS, strs[k]));
        assert_true(r.cells[0].i > 0);
    }
    /* ...and an injection attempt matches nothing and does nothing. */
    assert_int_equal(run(&st, "SELECT count(*) FROM flows WHERE sourcePodNamespace = ",
                         "x' OR '1'='1'; DROP TABLE flows; --", &r, err, sizeof(err)),
                     0);
    assert_int_equal(r.cells[0].i, 0);
    /* A `?` inside a text argument is just a character. */
    assert_int_equal(
        run(&st, "SELECT count(*) FROM flows WHERE sourcePodName = ", "?", &r, err, sizeof(err)),
        0);
    assert_int_equal(r.cells[0].i, 0);
    /* The table is still there, with every row. */
    assert_int_equal(run(&st, "SELECT count(*) FROM flows", NULL, &r, err, sizeof(err)), 0);
    assert_int_equal(r.cells[0].i, 100);
    st.ops->stop(st.impl, 1000);
    (void)state;
}

static void test_query_refuses_anything_but_a_single_select(void **state)
{
    static const char *const bad[] = {
        "DELETE FROM flows",
        "DROP TABLE flows",
        "SELECT 1; DROP TABLE flows",
        "SELECT 1; SELECT 2",
        "PRAGMA user_version",
        "PRAGMA user_version = 7",
        "ATTACH DATABASE '/tmp/fv_sqlite_attach.db' AS x",
        "INSERT INTO flows (timeInserted) VALUES (1)",
        "WITH x AS (SELECT 1) DELETE FROM flows",
        "BEGIN",
        "",
        "   ",
    };
    struct fv_sqlite_cfg cfg = default_cfg();
    struct fv_store st = open_store(&cfg);
    struct result r = {0};
    char err[256];

    push_rows(&st, 0, 10, 1000);
    wait_written(&st, 10);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        int rc = run(&st, bad[i], NULL, &r, err, sizeof(err));
        if (rc >= 0)
            fail_msg("accepted: %s", bad[i]);
        assert_true(err[0] != '\0');
    }
    assert_int_equal(run(&st, "WITH x AS (SELECT count(*) AS n FROM flows) SELECT n FROM x;", NULL,
                         &r, err, sizeof(err)),
                     0);
    assert_int_equal(r.cells[0].i, 10);
    /* A syntax error is an error with SQLite's message. */
    assert_true(run(&st, "SELEC 1", NULL, &r, err, sizeof(err)) < 0);
    assert_non_null(strstr(err, "syntax error"));
    st.ops->stop(st.impl, 1000);
    (void)state;
}

static void test_query_cells_are_typed_and_the_callback_can_stop_it(void **state)
{
    struct fv_sqlite_cfg cfg = default_cfg();
    struct fv_store st = open_store(&cfg);
    struct result r = {0};
    struct fv_sql q;
    char err[256];

    push_rows(&st, 0, 20, 1000);
    wait_written(&st, 20);
    assert_int_equal(run(&st,
                         "SELECT 42, 2.5, 'abc', NULL, sourcePodName, flowEndSeconds FROM flows "
                         "WHERE rowid = 3",
                         NULL, &r, err, sizeof(err)),
                     0);
    assert_int_equal(r.ncells, 6);
    assert_int_equal(r.cells[0].type, FV_SQL_INT);
    assert_int_equal(r.cells[0].i, 42);
    assert_int_equal(r.cells[1].type, FV_SQL_REAL);
    assert_true(r.cells[1].d == 2.5);
    assert_int_equal(r.cells[2].type, FV_SQL_TEXT);
    assert_string_equal(r.text[2], "abc");
    assert_int_equal(r.cells[3].type, FV_SQL_TEXT);
    assert_int_equal(r.cells[3].len, 0);
    assert_int_equal(r.cells[4].type, FV_SQL_TEXT);
    assert_string_equal(r.text[4], strs[(2 + FV_C_SRC_POD) % NSTRS]);
    assert_int_equal(r.cells[5].type, FV_SQL_INT);
    assert_int_equal(r.cells[5].i, 2 * 1000 + FV_C_FLOW_END);

    /* A non-zero return stops the query after that row and is returned. */
    r.stop_with = 7;
    assert_int_equal(run(&st, "SELECT rowid FROM flows", NULL, &r, err, sizeof(err)), 7);
    assert_int_equal(r.rows, 1);
    r.stop_with = 0;

    /* Integer arguments, and a count that does not match the placeholders. */
    fv_sql_init(&q);
    fv_sql_add(&q, "SELECT count(*) FROM flows WHERE rowid > ");
    fv_sql_arg_int(&q, 15);
    r.rows = 0;
    assert_int_equal(st.ops->query(st.impl, &q, on_row, &r, err, sizeof(err)), 0);
    assert_int_equal(r.cells[0].i, 5);
    fv_sql_add(&q, " AND rowid < ?");
    assert_true(st.ops->query(st.impl, &q, on_row, &r, err, sizeof(err)) < 0);
    assert_non_null(strstr(err, "placeholders"));
    /* An error while building the query is returned as it is. */
    fv_sql_reset(&q);
    q.err = -FV_ELIMIT;
    assert_int_equal(st.ops->query(st.impl, &q, on_row, &r, err, sizeof(err)), -FV_ELIMIT);
    fv_sql_fini(&q);
    st.ops->stop(st.impl, 1000);
    (void)state;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(test_schema_has_the_flow_columns_in_order_in_wal_mode_at_version_1),
        TEST(test_reopening_an_existing_database_keeps_its_rows),
        TEST(test_a_newer_schema_version_is_refused_and_left_alone),
        TEST(test_a_path_that_cannot_be_created_is_an_error),
        TEST(test_pushed_rows_read_back_exactly),
        TEST(test_stop_writes_everything_still_queued),
        TEST(test_malformed_rows_are_refused),
        TEST(test_a_locked_database_means_backpressure_and_no_loss),
        TEST(test_retention_deletes_exactly_the_rows_older_than_it),
        TEST(test_size_cap_deletes_the_oldest_rows_and_shrinks_the_file),
        TEST(test_query_binds_text_arguments_as_values_not_sql),
        TEST(test_query_refuses_anything_but_a_single_select),
        TEST(test_query_cells_are_typed_and_the_callback_can_stop_it),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
