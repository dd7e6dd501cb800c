/*
 * test_store_spool.c - the ClickHouse sink's disk spool (store/spool.h):
 * order, cap, acknowledgement, reopening, and files that were not written
 * whole.
 */
#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/spool.h"

struct fixture {
    char dir[256]; /* a fresh directory per test */
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    const char *tmp = getenv("TMPDIR");

    snprintf(f->dir, sizeof(f->dir), "%s/fv-spool-XXXXXX", tmp ? tmp : "/tmp");
    if (mkdtemp(f->dir) == NULL)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    DIR *d = opendir(f->dir);
    struct dirent *de;

    while (d && (de = readdir(d)) != NULL) {
        char path[512];
        if (de->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "%s/%s", f->dir, de->d_name);
        unlink(path);
    }
    if (d)
        closedir(d);
    rmdir(f->dir);
    free(f);
    return 0;
}

/* Files in the directory whose name ends with suffix. */
static int count_files(const char *dir, const char *suffix)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    int n = 0;

    assert_non_null(d);
    while ((de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name), sl = strlen(suffix);
        if (len >= sl && strcmp(de->d_name + len - sl, suffix) == 0)
            n++;
    }
    closedir(d);
    return n;
}

static void put_str(struct fv_spool *sp, const char *s, uint32_t rows)
{
    assert_int_equal(fv_spool_put(sp, s, strlen(s), rows, 0), 0);
}

/* Peeks the oldest batch and checks its body and rows. */
static uint64_t expect_oldest(struct fv_spool *sp, struct fv_spool_batch *b, const char *body,
                              uint32_t rows)
{
    assert_int_equal(fv_spool_peek(sp, b), 0);
    assert_int_equal(b->body.len, strlen(body));
    assert_memory_equal(b->body.p, body, strlen(body));
    assert_int_equal(b->rows, rows);
    return b->id;
}

static void test_batches_come_back_oldest_first_and_ack_removes_them(void **state)
{
    struct fixture *f = *state;
    struct fv_spool *sp;
    struct fv_spool_batch b;
    struct fv_spool_stats st;

    assert_int_equal(fv_spool_new(f->dir, 1 << 20, &sp), 0);
    fv_spool_batch_init(&b, 1 << 20);
    assert_int_equal(fv_spool_peek(sp, &b), -FV_EEND);
    put_str(sp, "first", 1);
    put_str(sp, "second batch", 2);
    assert_int_equal(fv_spool_put(sp, "third", 5, 3, FV_SPOOL_GZIP), 0);
    fv_spool_stats(sp, &st);
    assert_int_equal(st.files, 3);
    assert_int_equal(st.rows, 6);
    assert_int_equal(st.bytes, 3 * FV_SPOOL_HEADER + 5 + 12 + 5);
    assert_int_equal(st.put, 3);
    assert_int_equal(st.rows_put, 6);

    /* Peek without ack returns the same batch again. */
    uint64_t id1 = expect_oldest(sp, &b, "first", 1);
    assert_int_equal(expect_oldest(sp, &b, "first", 1), id1);
    assert_int_equal(fv_spool_ack(sp, id1), 0);
    assert_int_equal(fv_spool_ack(sp, id1), -ENOENT);
    uint64_t id2 = expect_oldest(sp, &b, "second batch", 2);
    assert_true(id2 > id1);
    assert_int_equal(fv_spool_ack(sp, id2), 0);
    expect_oldest(sp, &b, "third", 3);
    assert_int_equal(b.flags, FV_SPOOL_GZIP);
    assert_int_equal(fv_spool_ack(sp, b.id), 0);
    assert_int_equal(fv_spool_peek(sp, &b), -FV_EEND);
    fv_spool_stats(sp, &st);
    assert_int_equal(st.files, 0);
    assert_int_equal(st.bytes, 0);
    assert_int_equal(st.rows, 0);
    assert_int_equal(count_files(f->dir, ".batch"), 0);
    fv_spool_batch_fini(&b);
    fv_spool_free(sp);
}

static void test_put_over_the_cap_fails_with_eagain_and_changes_nothing(void **state)
{
    struct fixture *f = *state;
    struct fv_spool *sp;
    struct fv_spool_batch b;
    struct fv_spool_stats st;
    char body[100];

    memset(body, 'x', sizeof(body));
    /* Room for exactly two 100-byte batches. */
    assert_int_equal(fv_spool_new(f->dir, 2 * (FV_SPOOL_HEADER + 100), &sp), 0);
    fv_spool_batch_init(&b, 1 << 20);
    assert_true(fv_spool_fits(sp, 100));
    assert_int_equal(fv_spool_put(sp, body, 100, 1, 0), 0);
    assert_int_equal(fv_spool_put(sp, body, 100, 1, 0), 0);
    assert_false(fv_spool_fits(sp, 1));
    assert_int_equal(fv_spool_put(sp, body, 1, 1, 0), -EAGAIN);
    fv_spool_stats(sp, &st);
    assert_int_equal(st.files, 2);
    assert_int_equal(st.put, 2);
    assert_int_equal(count_files(f->dir, ".batch"), 2);
    assert_int_equal(count_files(f->dir, ".tmp"), 0);

    /* Acknowledging one makes room again. */
    assert_int_equal(fv_spool_peek(sp, &b), 0);
    assert_int_equal(fv_spool_ack(sp, b.id), 0);
    assert_true(fv_spool_fits(sp, 100));
    assert_false(fv_spool_fits(sp, 101));
    assert_int_equal(fv_spool_put(sp, body, 100, 1, 0), 0);
    fv_spool_batch_fini(&b);
    fv_spool_free(sp);
}

static void test_batches_survive_reopening_in_order_and_new_ones_come_after(void **state)
{
    struct fixture *f = *state;
    struct fv_spool *sp;
    struct fv_spool_batch b;
    struct fv_spool_stats st;

    assert_int_equal(fv_spool_new(f->dir, 1 << 20, &sp), 0);
    for (int i = 0; i < 12; i++) {
        char s[32];
        snprintf(s, sizeof(s), "batch-%d", i);
        put_str(sp, s, (uint32_t)i + 1);
    }
    fv_spool_batch_init(&b, 1 << 20);
    expect_oldest(sp, &b, "batch-0", 1);
    assert_int_equal(fv_spool_ack(sp, b.id), 0);
    fv_spool_free(sp);

    assert_int_equal(fv_spool_new(f->dir, 1 << 20, &sp), 0);
    fv_spool_stats(sp, &st);
    assert_int_equal(st.files, 11);
    assert_int_equal(st.rows, 2 + 3 + 4 + 5 + 6 + 7 + 8 + 9 + 10 + 11 + 12);
    assert_int_equal(st.put, 0); /* counts this process's puts only */
    put_str(sp, "after reopen", 99);
    for (int i = 1; i < 12; i++) {
        char s[32];
        snprintf(s, sizeof(s), "batch-%d", i);
        expect_oldest(sp, &b, s, (uint32_t)i + 1);
        assert_int_equal(fv_spool_ack(sp, b.id), 0);
    }
    expect_oldest(sp, &b, "after reopen", 99);
    fv_spool_batch_fini(&b);
    fv_spool_free(sp);
}

static void write_file(const char *dir, const char *name, const void *p, size_t len)
{
    char path[512];
    int fd;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, p, len), (ssize_t)len);
    close(fd);
}

/* The name of the only .batch file whose sequence number is seq. */
static void batch_name(char *buf, size_t n, uint64_t seq)
{
    snprintf(buf, n, "%020llu.batch", (unsigned long long)seq);
}

static void test_unfinished_and_corrupt_files_are_deleted_and_counted(void **state)
{
    struct fixture *f = *state;
    struct fv_spool *sp;
    struct fv_spool_batch b;
    struct fv_spool_stats st;
    char name[64], path[512];

    assert_int_equal(fv_spool_new(f->dir, 1 << 20, &sp), 0);
    put_str(sp, "good one", 1);     /* seq 1 */
    put_str(sp, "flipped byte", 2); /* seq 2: body corrupted below */
    put_str(sp, "cut short", 3);    /* seq 3: truncated below */
    put_str(sp, "good two", 4);     /* seq 4 */
    fv_spool_free(sp);

    /* A crash during a put leaves a temporary file. */
    write_file(f->dir, "00000000000000000005.tmp", "partial", 7);
    /* Not a batch at all: wrong magic. */
    write_file(f->dir, "00000000000000000006.batch", "garbage that is long enough to be a header",
               42);
    /* Files with other names are not the spool's and stay. */
    write_file(f->dir, "README", "hello", 5);
    batch_name(name, sizeof(name), 2);
    snprintf(path, sizeof(path), "%s/%s", f->dir, name);
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, "F", 1, FV_SPOOL_HEADER), 1);
    close(fd);
    batch_name(name, sizeof(name), 3);
    snprintf(path, sizeof(path), "%s/%s", f->dir, name);
    assert_int_equal(truncate(path, FV_SPOOL_HEADER + 4), 0);

    assert_int_equal(fv_spool_new(f->dir, 1 << 20, &sp), 0);
    fv_spool_stats(sp, &st);
    /* At open: the temporary file, the bad header and the short file. */
    assert_int_equal(st.discarded, 3);
    assert_int_equal(st.files, 3);
    assert_int_equal(count_files(f->dir, ".tmp"), 0);
    assert_int_equal(count_files(f->dir, "README"), 1);

    fv_spool_batch_init(&b, 1 << 20);
    expect_oldest(sp, &b, "good one", 1);
    assert_int_equal(fv_spool_ack(sp, b.id), 0);
    /* The flipped byte is caught by the CRC when read. */
    expect_oldest(sp, &b, "good two", 4);
    fv_spool_stats(sp, &st);
    assert_int_equal(st.discarded, 4);
    assert_int_equal(st.files, 1);
    assert_int_equal(count_files(f->dir, ".batch"), 1);
    /* New batches never reuse a number seen on disk. */
    put_str(sp, "new", 5);
    assert_int_equal(fv_spool_ack(sp, b.id), 0);
    expect_oldest(sp, &b, "new", 5);
    assert_true(b.id > 6);
    fv_spool_batch_fini(&b);
    fv_spool_free(sp);
}

static void test_peek_into_a_too_small_buffer_keeps_the_batch(void **state)
{
    struct fixture *f = *state;
    struct fv_spool *sp;
    struct fv_spool_batch small, big;
    struct fv_spool_stats st;

    assert_int_equal(fv_spool_new(f->dir, 1 << 20, &sp), 0);
    put_str(sp, "a body of 20 bytes..", 7);
    fv_spool_batch_init(&small, 10);
    fv_spool_batch_init(&big, 100);
    assert_int_equal(fv_spool_peek(sp, &small), -FV_ELIMIT);
    fv_spool_stats(sp, &st);
    assert_int_equal(st.files, 1);
    assert_int_equal(st.discarded, 0);
    expect_oldest(sp, &big, "a body of 20 bytes..", 7);
    fv_spool_batch_fini(&small);
    fv_spool_batch_fini(&big);
    fv_spool_free(sp);
}

static void test_missing_parent_directories_are_created(void **state)
{
    struct fixture *f = *state;
    struct fv_spool *sp;
    char dir[512], mid[512];
    struct stat st;

    snprintf(mid, sizeof(mid), "%s/a", f->dir);
    snprintf(dir, sizeof(dir), "%s/a/b", f->dir);
    assert_int_equal(fv_spool_new(dir, 1 << 20, &sp), 0);
    assert_int_equal(stat(dir, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0700);
    put_str(sp, "x", 1);
    fv_spool_free(sp);
    assert_int_equal(fv_spool_new(dir, 1 << 20, &sp), 0);
    struct fv_spool_batch b;
    fv_spool_batch_init(&b, 100);
    expect_oldest(sp, &b, "x", 1);
    assert_int_equal(fv_spool_ack(sp, b.id), 0);
    fv_spool_batch_fini(&b);
    fv_spool_free(sp);
    assert_int_equal(rmdir(dir), 0);
    assert_int_equal(rmdir(mid), 0);
}

static void test_a_file_in_the_way_of_the_directory_is_an_error(void **state)
{
    struct fixture *f = *state;
    struct fv_spool *sp = (struct fv_spool *)1;
    char dir[512];

    write_file(f->dir, "file", "x", 1);
    snprintf(dir, sizeof(dir), "%s/file/spool", f->dir);
    assert_true(fv_spool_new(dir, 1 << 20, &sp) < 0);
    assert_null(sp);
    fv_spool_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_batches_come_back_oldest_first_and_ack_removes_them,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_put_over_the_cap_fails_with_eagain_and_changes_nothing,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_batches_survive_reopening_in_order_and_new_ones_come_after, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unfinished_and_corrupt_files_are_deleted_and_counted,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_peek_into_a_too_small_buffer_keeps_the_batch, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_missing_parent_directories_are_created, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_file_in_the_way_of_the_directory_is_an_error, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
