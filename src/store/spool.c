/* spool.c - a bounded queue of sealed batches on disk (spool.h). */
#include "store/spool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "base/bytes.h"
#include "base/err.h"
#include "base/log.h"

static const char spool_magic[8] = {'F', 'V', 'S', 'P', 'O', 'O', 'L', '1'};

#define NAME_DIGITS 20
#define BATCH_SUFFIX ".batch"
#define TMP_SUFFIX ".tmp"

/* One batch file, in the index. */
struct entry {
    uint64_t seq;   /* sequence number = file name */
    uint64_t bytes; /* file size, header included */
    uint32_t rows;  /* rows, from the header */
};

struct fv_spool {
    char *dir;          /* directory, owned */
    int dirfd;          /* open on dir, for fsync after rename/unlink */
    uint64_t max_bytes; /* cap */
    pthread_mutex_t mu; /* guards everything below */
    struct entry *ents; /* index, oldest first, from ents[head] to ents[n - 1] */
    size_t head, n, cap;
    uint64_t next_seq; /* sequence number of the next put */
    uint64_t bytes;    /* sum of ents' bytes */
    uint64_t reserved; /* bytes of puts under way */
    uint64_t rows;     /* sum of ents' rows */
    uint64_t put, rows_put, discarded;
};

/* ---- Paths and headers ---- */

static void batch_path(const struct fv_spool *sp, uint64_t seq, const char *suffix, char *buf,
                       size_t n)
{
    snprintf(buf, n, "%s/%0*" PRIu64 "%s", sp->dir, NAME_DIGITS, seq, suffix);
}

static void header_encode(uint8_t *h, uint32_t rows, uint32_t flags, uint64_t len, uint32_t crc)
{
    memcpy(h, spool_magic, 8);
    fv_store_be32(h + 8, rows);
    fv_store_be32(h + 12, flags);
    fv_store_be64(h + 16, len);
    fv_store_be32(h + 24, crc);
    fv_store_be32(h + 28, 0);
}

struct header {
    uint32_t rows, flags, crc;
    uint64_t len;
};

static int header_decode(const uint8_t *h, struct header *out)
{
    if (memcmp(h, spool_magic, 8) != 0)
        return -FV_EVERSION;
    out->rows = fv_load_be32(h + 8);
    out->flags = fv_load_be32(h + 12);
    out->len = fv_load_be64(h + 16);
    out->crc = fv_load_be32(h + 24);
    return 0;
}

static uint32_t crc_of(const void *p, size_t len)
{
    uLong crc = crc32(0L, Z_NULL, 0);
    const Bytef *b = p;

    /* zlib's length is a uInt: feed large bodies in pieces. */
    while (len > 0) {
        uInt n = len > (1u << 30) ? (1u << 30) : (uInt)len;
        crc = crc32(crc, b, n);
        b += n;
        len -= n;
    }
    return (uint32_t)crc;
}

/* ---- File I/O ---- */

static int write_all(int fd, const void *p, size_t len)
{
    const char *c = p;

    while (len > 0) {
        ssize_t n = write(fd, c, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        c += n;
        len -= (size_t)n;
    }
    return 0;
}

static int read_all(int fd, void *p, size_t len)
{
    char *c = p;

    while (len > 0) {
        ssize_t n = read(fd, c, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (n == 0)
            return -FV_ETRUNC;
        c += n;
        len -= (size_t)n;
    }
    return 0;
}

/* mkdir -p with mode 0700 for what it creates. */
static int mkdirs(const char *dir)
{
    char path[4096];
    size_t len = strlen(dir);

    if (len == 0 || len >= sizeof(path))
        return -ENAMETOOLONG;
    memcpy(path, dir, len + 1);
    for (char *p = path + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char c = *p;
        *p = '\0';
        if (mkdir(path, 0700) < 0 && errno != EEXIST)
            return -errno;
        *p = c;
        if (c == '\0')
            break;
    }
    return 0;
}

/* ---- Index ---- */

static int index_grow(struct fv_spool *sp)
{
    if (sp->head > 0 && sp->head >= sp->cap / 2) {
        memmove(sp->ents, sp->ents + sp->head, (sp->n - sp->head) * sizeof(*sp->ents));
        sp->n -= sp->head;
        sp->head = 0;
    }
    if (sp->n < sp->cap)
        return 0;
    size_t cap = sp->cap ? sp->cap * 2 : 64;
    struct entry *e = realloc(sp->ents, cap * sizeof(*e));
    if (e == NULL)
        return -ENOMEM;
    sp->ents = e;
    sp->cap = cap;
    return 0;
}

/* Inserts in sequence order (puts finish in order almost always: search
 * from the end). */
static int index_add(struct fv_spool *sp, const struct entry *e)
{
    int rc = index_grow(sp);
    size_t i;

    if (rc < 0)
        return rc;
    for (i = sp->n; i > sp->head && sp->ents[i - 1].seq > e->seq; i--)
        ;
    memmove(sp->ents + i + 1, sp->ents + i, (sp->n - i) * sizeof(*sp->ents));
    sp->ents[i] = *e;
    sp->n++;
    sp->bytes += e->bytes;
    sp->rows += e->rows;
    return 0;
}

static void index_remove(struct fv_spool *sp, size_t i)
{
    sp->bytes -= sp->ents[i].bytes;
    sp->rows -= sp->ents[i].rows;
    if (i == sp->head) {
        sp->head++;
    } else {
        memmove(sp->ents + i, sp->ents + i + 1, (sp->n - i - 1) * sizeof(*sp->ents));
        sp->n--;
    }
    if (sp->head == sp->n)
        sp->head = sp->n = 0;
}

static int cmp_entry(const void *a, const void *b)
{
    const struct entry *x = a, *y = b;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Parses "<20 digits><suffix>"; true with *seq set when name matches. */
static bool parse_name(const char *name, const char *suffix, uint64_t *seq)
{
    uint64_t v = 0;

    for (int i = 0; i < NAME_DIGITS; i++) {
        if (name[i] < '0' || name[i] > '9')
            return false;
        v = v * 10 + (uint64_t)(name[i] - '0');
    }
    if (strcmp(name + NAME_DIGITS, suffix) != 0)
        return false;
    *seq = v;
    return true;
}

static void discard(struct fv_spool *sp, const char *path, const char *why)
{
    FV_LOG_WARN("spool: deleting %s: %s", path, why);
    if (unlink(path) == 0 || errno == ENOENT)
        sp->discarded++;
}

/* Checks one batch file's header against its size; adds it to the index. */
static void index_file(struct fv_spool *sp, uint64_t seq)
{
    char path[4200];
    uint8_t h[FV_SPOOL_HEADER];
    struct header hd = {0};
    struct stat st;
    int fd, rc;

    batch_path(sp, seq, BATCH_SUFFIX, path, sizeof(path));
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        FV_LOG_WARN("spool: cannot open %s: %s", path, strerror(errno));
        return;
    }
    rc = fstat(fd, &st) < 0 ? -errno : read_all(fd, h, sizeof(h));
    close(fd);
    if (rc == -FV_ETRUNC) {
        discard(sp, path, "shorter than a header");
        return;
    }
    if (rc < 0) {
        /* Not the file's fault: leave it for the next open. */
        FV_LOG_WARN("spool: cannot read %s: %s", path, fv_strerror(rc));
        return;
    }
    if (header_decode(h, &hd) < 0) {
        discard(sp, path, "not a spool batch (bad magic)");
        return;
    }
    if ((uint64_t)st.st_size != FV_SPOOL_HEADER + hd.len) {
        discard(sp, path, "size disagrees with its header");
        return;
    }
    struct entry e = {.seq = seq, .bytes = (uint64_t)st.st_size, .rows = hd.rows};
    if (index_add(sp, &e) < 0)
        FV_LOG_WARN("spool: out of memory indexing %s", path);
}

static int scan(struct fv_spool *sp)
{
    DIR *d = fdopendir(dup(sp->dirfd));
    struct dirent *de;
    uint64_t seq;

    if (d == NULL)
        return -errno;
    while ((de = readdir(d)) != NULL) {
        char path[4200];
        bool tmp = parse_name(de->d_name, TMP_SUFFIX, &seq);
        if (!tmp && !parse_name(de->d_name, BATCH_SUFFIX, &seq))
            continue;
        if (seq >= sp->next_seq)
            sp->next_seq = seq + 1;
        if (tmp) {
            /* A put cut short by a crash: never renamed, never acknowledged. */
            snprintf(path, sizeof(path), "%s/%s", sp->dir, de->d_name);
            discard(sp, path, "unfinished write");
        } else {
            index_file(sp, seq);
        }
    }
    closedir(d);
    if (sp->n > sp->head)
        qsort(sp->ents + sp->head, sp->n - sp->head, sizeof(*sp->ents), cmp_entry);
    return 0;
}

/* ---- Public ---- */

int fv_spool_new(const char *dir, uint64_t max_bytes, struct fv_spool **out)
{
    struct fv_spool *sp;
    int rc;

    *out = NULL;
    sp = calloc(1, sizeof(*sp));
    if (sp == NULL)
        return -ENOMEM;
    sp->dirfd = -1;
    sp->max_bytes = max_bytes;
    sp->next_seq = 1;
    pthread_mutex_init(&sp->mu, NULL);
    sp->dir = strdup(dir);
    if (sp->dir == NULL) {
        rc = -ENOMEM;
        goto fail;
    }
    rc = mkdirs(dir);
    if (rc < 0) {
        FV_LOG_ERROR("spool: cannot create dir=%s: %s", dir, fv_strerror(rc));
        goto fail;
    }
    sp->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (sp->dirfd < 0) {
        rc = -errno;
        FV_LOG_ERROR("spool: cannot open dir=%s: %s", dir, fv_strerror(rc));
        goto fail;
    }
    rc = scan(sp);
    if (rc < 0) {
        FV_LOG_ERROR("spool: cannot read dir=%s: %s", dir, fv_strerror(rc));
        goto fail;
    }
    *out = sp;
    return 0;
fail:
    fv_spool_free(sp);
    return rc;
}

void fv_spool_free(struct fv_spool *sp)
{
    if (sp == NULL)
        return;
    if (sp->dirfd >= 0)
        close(sp->dirfd);
    pthread_mutex_destroy(&sp->mu);
    free(sp->ents);
    free(sp->dir);
    free(sp);
}

static bool fits_locked(const struct fv_spool *sp, size_t len)
{
    uint64_t need = FV_SPOOL_HEADER + (uint64_t)len;
    uint64_t used = sp->bytes + sp->reserved;

    return used <= sp->max_bytes && need <= sp->max_bytes - used;
}

bool fv_spool_fits(struct fv_spool *sp, size_t len)
{
    pthread_mutex_lock(&sp->mu);
    bool ok = fits_locked(sp, len);
    pthread_mutex_unlock(&sp->mu);
    return ok;
}

/* Writes the temporary file and renames it; no lock held. */
static int write_batch(struct fv_spool *sp, uint64_t seq, const void *body, size_t len,
                       uint32_t rows, uint32_t flags)
{
    char tmp[4200], path[4200];
    uint8_t h[FV_SPOOL_HEADER];
    int fd, rc;

    batch_path(sp, seq, TMP_SUFFIX, tmp, sizeof(tmp));
    batch_path(sp, seq, BATCH_SUFFIX, path, sizeof(path));
    header_encode(h, rows, flags, len, crc_of(body, len));
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    rc = write_all(fd, h, sizeof(h));
    if (rc == 0)
        rc = write_all(fd, body, len);
    if (rc == 0 && fsync(fd) < 0)
        rc = -errno;
    if (close(fd) < 0 && rc == 0)
        rc = -errno;
    if (rc == 0 && rename(tmp, path) < 0)
        rc = -errno;
    if (rc < 0) {
        unlink(tmp);
        return rc;
    }
    /* The rename is durable once the directory is. */
    if (fsync(sp->dirfd) < 0)
        FV_LOG_WARN("spool: fsync dir=%s: %s", sp->dir, strerror(errno));
    return 0;
}

int fv_spool_put(struct fv_spool *sp, const void *body, size_t len, uint32_t rows, uint32_t flags)
{
    uint64_t seq, bytes = FV_SPOOL_HEADER + (uint64_t)len;
    int rc;

    pthread_mutex_lock(&sp->mu);
    if (!fits_locked(sp, len)) {
        pthread_mutex_unlock(&sp->mu);
        return -EAGAIN;
    }
    seq = sp->next_seq++;
    sp->reserved += bytes;
    pthread_mutex_unlock(&sp->mu);

    rc = write_batch(sp, seq, body, len, rows, flags);

    pthread_mutex_lock(&sp->mu);
    sp->reserved -= bytes;
    if (rc == 0) {
        struct entry e = {.seq = seq, .bytes = bytes, .rows = rows};
        rc = index_add(sp, &e);
        if (rc == 0) {
            sp->put++;
            sp->rows_put += rows;
        }
    }
    pthread_mutex_unlock(&sp->mu);
    if (rc == -ENOMEM) {
        /* Written but not indexed: the next open finds it; remove it now
         * rather than send it twice. */
        char path[4200];
        batch_path(sp, seq, BATCH_SUFFIX, path, sizeof(path));
        unlink(path);
    }
    return rc;
}

/* Reads and checks one file into b.  0, -FV_ELIMIT (too big for b),
 * -ENOENT, or another negative code for a corrupt file. */
static int read_batch(struct fv_spool *sp, uint64_t seq, struct fv_spool_batch *b, bool *corrupt)
{
    char path[4200];
    uint8_t h[FV_SPOOL_HEADER];
    struct header hd = {0};
    struct stat st;
    int fd, rc;

    *corrupt = false;
    batch_path(sp, seq, BATCH_SUFFIX, path, sizeof(path));
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    rc = fstat(fd, &st) < 0 ? -errno : 0;
    if (rc == 0) {
        rc = read_all(fd, h, sizeof(h));
        *corrupt = rc == -FV_ETRUNC;
    }
    if (rc == 0) {
        rc = header_decode(h, &hd);
        if (rc == 0 && (uint64_t)st.st_size != FV_SPOOL_HEADER + hd.len)
            rc = -FV_ELENGTH;
        *corrupt = rc < 0;
    }
    if (rc == 0 && hd.len > b->body.max)
        rc = -FV_ELIMIT;
    if (rc == 0) {
        fv_sbuf_reset(&b->body);
        rc = fv_sbuf_reserve(&b->body, (size_t)hd.len);
    }
    if (rc == 0) {
        rc = read_all(fd, b->body.p, (size_t)hd.len);
        *corrupt = rc == -FV_ETRUNC;
    }
    close(fd);
    if (rc < 0)
        return rc;
    b->body.len = (size_t)hd.len;
    b->body.p[b->body.len] = '\0';
    if (crc_of(b->body.p, b->body.len) != hd.crc) {
        fv_sbuf_reset(&b->body);
        *corrupt = true;
        return -FV_ETRUNC;
    }
    b->id = seq;
    b->rows = hd.rows;
    b->flags = hd.flags;
    return 0;
}

int fv_spool_peek(struct fv_spool *sp, struct fv_spool_batch *b)
{
    for (;;) {
        uint64_t seq;
        bool corrupt;
        int rc;

        pthread_mutex_lock(&sp->mu);
        if (sp->head == sp->n) {
            pthread_mutex_unlock(&sp->mu);
            return -FV_EEND;
        }
        seq = sp->ents[sp->head].seq;
        pthread_mutex_unlock(&sp->mu);

        rc = read_batch(sp, seq, b, &corrupt);
        if (rc == 0 || !(corrupt || rc == -ENOENT))
            return rc;
        /* Corrupt, or deleted behind our back: forget it, try the next. */
        char path[4200];
        batch_path(sp, seq, BATCH_SUFFIX, path, sizeof(path));
        pthread_mutex_lock(&sp->mu);
        if (sp->head < sp->n && sp->ents[sp->head].seq == seq) {
            index_remove(sp, sp->head);
            if (corrupt)
                discard(sp, path, "corrupt batch");
            else
                sp->discarded++;
        }
        pthread_mutex_unlock(&sp->mu);
    }
}

int fv_spool_ack(struct fv_spool *sp, uint64_t id)
{
    char path[4200];
    int rc = -ENOENT;

    pthread_mutex_lock(&sp->mu);
    for (size_t i = sp->head; i < sp->n; i++) {
        if (sp->ents[i].seq == id) {
            index_remove(sp, i);
            rc = 0;
            break;
        }
    }
    pthread_mutex_unlock(&sp->mu);
    if (rc < 0)
        return rc;
    batch_path(sp, id, BATCH_SUFFIX, path, sizeof(path));
    if (unlink(path) < 0 && errno != ENOENT)
        return -errno;
    /* A batch whose deletion is lost in a crash would be sent twice. */
    if (fsync(sp->dirfd) < 0)
        return -errno;
    return 0;
}

void fv_spool_stats(struct fv_spool *sp, struct fv_spool_stats *st)
{
    pthread_mutex_lock(&sp->mu);
    st->files = sp->n - sp->head;
    st->bytes = sp->bytes;
    st->rows = sp->rows;
    st->put = sp->put;
    st->rows_put = sp->rows_put;
    st->discarded = sp->discarded;
    pthread_mutex_unlock(&sp->mu);
}

void fv_spool_batch_init(struct fv_spool_batch *b, size_t max_body)
{
    memset(b, 0, sizeof(*b));
    fv_sbuf_init(&b->body, max_body);
}

void fv_spool_batch_fini(struct fv_spool_batch *b)
{
    fv_sbuf_fini(&b->body);
}
