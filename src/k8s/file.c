/*
 * file.c - the file source: a `kubectl get ... -o json` List read from a
 * file, and re-read when the file changes; see inventory.h.
 *
 * A change is noticed by stat(2): the device and inode change when a new
 * file is renamed into place, size, mtime and ctime when it is rewritten.
 * The identity recorded is the fstat(2) of the descriptor actually read, so
 * a rewrite that lands while we read shows up as a change at the next poll.
 * A file read while it was fresh (see RACY_NS) is read again at the next
 * poll.  Content that hashes like the last content read is not parsed
 * again, so `touch` or a rewrite with the same bytes reports no change.
 */
#include "k8s/internal.h"

#include "base/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

/* A file changed less than this before it was read is read again at the
 * next poll, and its content compared: stat(2) times have the kernel's
 * tick as resolution, so a same-size rewrite within one tick is invisible
 * to them (git calls such index entries "racily clean"). */
#define RACY_NS (2 * (int64_t)1000000000)

/* Opens path for reading and fstat()s it; only regular files will do. */
static int open_file(const char *path, FILE **fp, struct stat *st, char *err, size_t errlen)
{
    int rc;

    *fp = fopen(path, "re");
    if (*fp == NULL) {
        rc = -errno;
        snprintf(err, errlen, "%s: %s", path, strerror(-rc));
        return rc;
    }
    if (fstat(fileno(*fp), st) < 0) {
        rc = -errno;
        snprintf(err, errlen, "%s: %s", path, strerror(-rc));
    } else if (!S_ISREG(st->st_mode)) {
        rc = -EINVAL;
        snprintf(err, errlen, "%s: not a regular file", path);
    } else {
        return 0;
    }
    fclose(*fp);
    *fp = NULL;
    return rc;
}

/* Reads the whole file; st_size is only a hint, the file may grow meanwhile. */
static int read_all(const char *path, FILE *fp, const struct stat *st, char **buf, size_t *len,
                    char *err, size_t errlen)
{
    size_t cap = (size_t)st->st_size + 1, n = 0;
    char *p = malloc(cap);

    while (p != NULL) {
        n += fread(p + n, 1, cap - n, fp);
        if (n < cap)
            break;
        char *q = cap <= SIZE_MAX / 2 ? realloc(p, cap * 2) : NULL;
        if (q == NULL) {
            free(p);
            p = NULL;
            break;
        }
        p = q;
        cap *= 2;
    }
    if (p == NULL) {
        snprintf(err, errlen, "%s: out of memory", path);
        return -ENOMEM;
    }
    if (ferror(fp)) {
        snprintf(err, errlen, "%s: %s", path, strerror(EIO));
        free(p);
        return -EIO;
    }
    *buf = p;
    *len = n;
    return 0;
}

/* Parses the List in buf into a new inventory. */
static int load_buffer(const char *path, const char *buf, size_t len, struct fv_k8s_inventory **out,
                       char *err, size_t errlen)
{
    struct fv_k8s_builder *b;
    json_error_t je;
    json_t *root;
    char why[256];
    int rc;

    *out = NULL;
    root = json_loadb(buf, len, 0, &je);
    if (root == NULL) {
        snprintf(err, errlen, "%s: line %d column %d: %s", path, je.line, je.column, je.text);
        return -EINVAL;
    }
    rc = fv_k8s_builder_new(&b);
    if (rc < 0) {
        snprintf(err, errlen, "%s: out of memory", path);
        json_decref(root);
        return rc;
    }
    rc = fv_k8s_builder_add_list(b, root, why, sizeof(why));
    json_decref(root);
    if (rc < 0) {
        snprintf(err, errlen, "%s: %s", path, why);
        fv_k8s_builder_free(b);
        return rc;
    }
    rc = fv_k8s_builder_finish(b, out);
    if (rc < 0)
        snprintf(err, errlen, "%s: out of memory", path);
    return rc;
}

int fv_k8s_inventory_load_file(const char *path, struct fv_k8s_inventory **out, char *err,
                               size_t errlen)
{
    struct stat st;
    char *buf;
    size_t len;
    FILE *fp;
    int rc;

    *out = NULL;
    rc = open_file(path, &fp, &st, err, errlen);
    if (rc < 0)
        return rc;
    rc = read_all(path, fp, &st, &buf, &len, err, errlen);
    fclose(fp);
    if (rc < 0)
        return rc;
    rc = load_buffer(path, buf, len, out, err, errlen);
    free(buf);
    return rc;
}

/* ---- File source ---- */

int fv_k8s_file_source_init(struct fv_k8s_file_source *src, const char *path)
{
    memset(src, 0, sizeof(*src));
    src->path = strdup(path);
    return src->path == NULL ? -ENOMEM : 0;
}

void fv_k8s_file_source_fini(struct fv_k8s_file_source *src)
{
    free(src->path);
    memset(src, 0, sizeof(*src));
}

static bool same_time(const struct timespec *a, const struct timespec *b)
{
    return a->tv_sec == b->tv_sec && a->tv_nsec == b->tv_nsec;
}

static bool same_file(const struct fv_k8s_file_source *src, const struct stat *st)
{
    return src->have_ident && src->dev == st->st_dev && src->ino == st->st_ino &&
           src->size == st->st_size && same_time(&src->mtime, &st->st_mtim) &&
           same_time(&src->ctime, &st->st_ctim);
}

static void remember_file(struct fv_k8s_file_source *src, const struct stat *st)
{
    src->have_ident = true;
    src->dev = st->st_dev;
    src->ino = st->st_ino;
    src->size = st->st_size;
    src->mtime = st->st_mtim;
    src->ctime = st->st_ctim;
}

/* stat() failed: report it unless it is the failure already reported. */
static int poll_missing(struct fv_k8s_file_source *src, int rc)
{
    bool repeat = !src->have_ident && src->last_rc == rc;

    src->have_ident = false;
    if (repeat)
        return 0;
    src->last_rc = rc;
    snprintf(src->err, sizeof(src->err), "%s: %s", src->path, strerror(-rc));
    return rc;
}

static int64_t ts_ns(const struct timespec *ts)
{
    return (int64_t)ts->tv_sec * 1000000000 + ts->tv_nsec;
}

/* Changed so shortly before it was read that a same-size rewrite within
 * the same timestamp tick would look unchanged to stat(2)? */
static bool is_racy(const struct stat *st, const struct timespec *read_at)
{
    int64_t since = ts_ns(read_at) - RACY_NS;
    return ts_ns(&st->st_mtim) >= since || ts_ns(&st->st_ctim) >= since;
}

static uint64_t content_hash(const char *p, size_t n)
{
    uint64_t h = 14695981039346656037ull; /* FNV-1a */

    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)p[i];
        h *= 1099511628211ull;
    }
    return h;
}

/* Parses content not seen before: 1 with *fresh, or the failure. */
static int poll_parse(struct fv_k8s_file_source *src, const char *buf, size_t len, uint64_t hash,
                      struct fv_k8s_inventory **fresh)
{
    struct fv_k8s_inventory *inv;
    int rc = load_buffer(src->path, buf, len, &inv, src->err, sizeof(src->err));

    src->last_rc = rc;
    if (rc == -ENOMEM) {
        /* Worth another try at the next poll. */
        src->have_ident = false;
        src->have_hash = false;
        return rc;
    }
    src->have_hash = true;
    src->hash = hash;
    if (rc < 0)
        return rc;
    src->err[0] = '\0';
    *fresh = inv;
    return 1;
}

/* The file is new, changed or racy: read it and parse it if its content
 * differs from the last content read. */
static int poll_read(struct fv_k8s_file_source *src, struct stat *st,
                     struct fv_k8s_inventory **fresh)
{
    struct timespec now;
    char *buf = NULL;
    size_t len = 0;
    uint64_t hash;
    FILE *fp;
    int rc;

    clock_gettime(CLOCK_REALTIME, &now);
    rc = open_file(src->path, &fp, st, src->err, sizeof(src->err));
    if (rc == 0) {
        rc = read_all(src->path, fp, st, &buf, &len, src->err, sizeof(src->err));
        fclose(fp);
    }
    if (rc < 0) {
        /* Reported once until the file changes; a read error is retried. */
        remember_file(src, st);
        src->have_ident = rc != -ENOMEM && rc != -EIO;
        src->racy = false;
        src->last_rc = rc;
        return rc;
    }
    remember_file(src, st);
    src->racy = is_racy(st, &now);
    hash = content_hash(buf, len);
    if (src->have_hash && hash == src->hash)
        rc = 0; /* touched or rewritten with the same bytes */
    else
        rc = poll_parse(src, buf, len, hash, fresh);
    free(buf);
    return rc;
}

int fv_k8s_file_source_poll(struct fv_k8s_file_source *src, struct fv_k8s_inventory **fresh)
{
    struct stat st;

    if (stat(src->path, &st) < 0)
        return poll_missing(src, -errno);
    if (same_file(src, &st) && !src->racy)
        return 0;
    return poll_read(src, &st, fresh);
}

int fv_k8s_file_source_update(struct fv_k8s_file_source *src, struct fv_k8s_inventory **inv)
{
    struct fv_k8s_inventory *fresh = NULL;
    int rc = fv_k8s_file_source_poll(src, &fresh);

    if (rc < 0 && *inv) {
        FV_LOG_WARN("inventory file=%s: %s (keeping the previous one)", src->path, src->err);
    } else if (rc == 1) {
        const struct fv_k8s_inventory_stats *st = fv_k8s_inventory_stats(fresh);
        fv_k8s_inventory_free(*inv);
        *inv = fresh;
        FV_LOG_INFO("inventory loaded file=%s pods=%zu services=%zu nodes=%zu skipped=%zu",
                    src->path, st->pods, st->services, st->nodes, st->skipped);
    }
    return rc;
}
