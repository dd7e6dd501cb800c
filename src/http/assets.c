/* assets.c - the web UI's files over HTTP (assets.h). */
#include "http/assets.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define ASSET_PREFIX "/assets/"
#define NAME_MAX_LEN 128

const char *fv_http_asset_ctype(const char *name)
{
    static const struct {
        const char *ext, *ctype;
    } types[] = {
        {".html", "text/html; charset=utf-8"},
        {".js", "text/javascript; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},
        {".svg", "image/svg+xml"},
        {".png", "image/png"},
        {".json", "application/json"},
        {".woff2", "font/woff2"},
    };
    const char *dot = strrchr(name, '.');

    for (size_t i = 0; dot && i < sizeof(types) / sizeof(types[0]); i++)
        if (strcmp(dot, types[i].ext) == 0)
            return types[i].ctype;
    return "application/octet-stream";
}

/* One path component of safe characters, not starting with a dot: no
 * "..", no "/", nothing a file system could read as special. */
static bool name_ok(const char *name)
{
    size_t n = strlen(name);

    if (n == 0 || n > NAME_MAX_LEN || name[0] == '.')
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

const struct fv_http_asset *fv_http_asset_find(const struct fv_http_assets *a, const char *name)
{
    if (!name_ok(name))
        return NULL;
    for (size_t i = 0; i < a->nfiles; i++)
        if (strcmp(a->files[i].name, name) == 0)
            return &a->files[i];
    return NULL;
}

/* True when an Accept-Encoding header admits gzip: a "gzip" token whose
 * q is not 0. */
static bool accepts_gzip(const char *h)
{
    while (h && *h) {
        const char *end = strchr(h, ','), *semi;
        size_t n = end ? (size_t)(end - h) : strlen(h);
        while (n > 0 && (*h == ' ' || *h == '\t')) {
            h++;
            n--;
        }
        semi = memchr(h, ';', n);
        size_t tok = semi ? (size_t)(semi - h) : n;
        while (tok > 0 && (h[tok - 1] == ' ' || h[tok - 1] == '\t'))
            tok--;
        if ((tok == 4 && strncasecmp(h, "gzip", 4) == 0) || (tok == 1 && h[0] == '*')) {
            const char *q = semi ? strstr(semi, "q=") : NULL;
            if (q == NULL || q >= h + n || strtod(q + 2, NULL) > 0)
                return true;
        }
        h = end ? end + 1 : NULL;
    }
    return false;
}

/* If-None-Match names etag (or is "*"). */
static bool etag_matches(const char *h, const char *etag)
{
    if (h == NULL)
        return false;
    if (strcmp(h, "*") == 0)
        return true;
    return strstr(h, etag) != NULL;
}

static int not_found(struct fv_sbuf *out)
{
    return fv_http_error(out, 404, "no such file");
}

/* Inflates the embedded gzip bytes of f into out. */
static int inflate_asset(const struct fv_http_asset *f, struct fv_sbuf *out)
{
    z_stream z = {0};
    int zrc;

    if (f->size > FV_HTTP_ASSET_MAX || fv_sbuf_reserve(out, f->size + 1) < 0)
        return -ENOMEM;
    if (inflateInit2(&z, 15 + 16) != Z_OK)
        return -ENOMEM;
    z.next_in = (unsigned char *)f->gz;
    z.avail_in = (uInt)f->gzlen;
    z.next_out = (unsigned char *)out->p;
    z.avail_out = (uInt)(f->size + 1);
    zrc = inflate(&z, Z_FINISH);
    inflateEnd(&z);
    if (zrc != Z_STREAM_END || z.total_out != f->size)
        return -EIO;
    out->len = f->size;
    return 0;
}

/* dir mode: reads dir/name into out; the ETag is the file's size and
 * modification time, kept in etag. */
static int read_dir_file(const char *dir, const char *name, struct fv_sbuf *out, char *etag,
                         size_t etaglen)
{
    char path[4096];
    struct stat st;
    int fd, rc = 0;

    if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >= sizeof(path))
        return -ENAMETOOLONG;
    fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > FV_HTTP_ASSET_MAX) {
        rc = -ENOENT;
        goto out;
    }
    snprintf(etag, etaglen, "\"%llx-%llx\"", (unsigned long long)st.st_size,
             (unsigned long long)st.st_mtim.tv_sec * 1000000000ull +
                 (unsigned long long)st.st_mtim.tv_nsec);
    if (fv_sbuf_reserve(out, (size_t)st.st_size + 1) < 0) {
        rc = -ENOMEM;
        goto out;
    }
    while (out->len < (size_t)st.st_size) {
        ssize_t n = read(fd, out->p + out->len, (size_t)st.st_size - out->len);
        if (n <= 0) {
            rc = n < 0 ? -errno : -EIO;
            goto out;
        }
        out->len += (size_t)n;
    }
out:
    close(fd);
    return rc;
}

int fv_http_assets_handler(void *ctx, struct fv_http_req *req, struct fv_sbuf *out)
{
    const struct fv_http_assets *a = ctx;
    const char *name;
    const struct fv_http_asset *f;
    /* dir mode: one ETag per request, kept until the response is queued. */
    static _Thread_local char dir_etag[64];

    if (strcmp(req->path, "/") == 0 || strcmp(req->path, "/index.html") == 0)
        name = "index.html";
    else if (strncmp(req->path, ASSET_PREFIX, strlen(ASSET_PREFIX)) == 0)
        name = req->path + strlen(ASSET_PREFIX);
    else
        return not_found(out);
    if (!name_ok(name))
        return not_found(out);
    req->cache_control = "no-cache";
    req->security_headers = strcmp(name, "index.html") == 0;

    if (a->dir) {
        int rc = read_dir_file(a->dir, name, out, dir_etag, sizeof(dir_etag));
        if (rc == -ENOENT || rc == -ELOOP || rc == -EISDIR || rc == -ENOTDIR)
            return not_found(out);
        if (rc < 0)
            return fv_http_error(out, 500, "cannot read the UI directory's file");
        req->ctype = fv_http_asset_ctype(name);
        req->etag = dir_etag;
        if (etag_matches(fv_http_header(req, "If-None-Match"), dir_etag)) {
            fv_sbuf_reset(out);
            return 304;
        }
        return 200;
    }

    f = fv_http_asset_find(a, name);
    if (f == NULL)
        return not_found(out);
    req->ctype = fv_http_asset_ctype(f->name);
    req->etag = f->etag;
    if (etag_matches(fv_http_header(req, "If-None-Match"), f->etag))
        return 304;
    if (accepts_gzip(fv_http_header(req, "Accept-Encoding"))) {
        req->content_encoding = "gzip";
        req->static_body = f->gz;
        req->static_len = f->gzlen;
        return 200;
    }
    if (inflate_asset(f, out) < 0)
        return fv_http_error(out, 500, "cannot inflate an embedded file");
    return 200;
}
