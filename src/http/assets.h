/*
 * assets.h - the web UI's files, served by the HTTP server (server.h):
 * index.html at "/" and every other file at "/assets/<name>".
 *
 * The files are built from ui/ by npm and esbuild at build time and
 * embedded into the binary by tools/embed_assets.c, gzip-compressed, with
 * an ETag (a digest of the file).  A browser gets the gzip bytes as they
 * are (Content-Encoding: gzip) and revalidates with If-None-Match (304);
 * a client that does not accept gzip gets the file inflated on the fly.
 * For UI development, `dir` serves the files of a directory instead (read
 * at every request, so a rebuild shows at the next reload).
 *
 *     static const struct fv_http_assets ui = {fv_ui_assets, fv_ui_nassets, NULL};
 *     {"/", fv_http_assets_handler, (void *)&ui, true},
 *     {"/assets/", fv_http_assets_handler, (void *)&ui, true, true},
 *
 * Only names of one path component made of [A-Za-z0-9._-] (not starting
 * with a dot) are ever looked up, in the table or in dir.
 *
 * Ownership: everything is borrowed and must outlive the server.
 * Thread rules: no state; the handler may run on several threads at once.
 */
#ifndef FV_HTTP_ASSETS_H
#define FV_HTTP_ASSETS_H

#include <stddef.h>
#include <stdint.h>

#include "http/server.h"

#define FV_HTTP_ASSET_MAX (16u << 20) /* largest file served (inflated, or from dir) */

/* One embedded file. */
struct fv_http_asset {
    const char *name;        /* "index.html", "app.js" */
    const unsigned char *gz; /* the file, gzip-compressed */
    size_t gzlen;            /* bytes of gz */
    size_t size;             /* bytes of the file */
    const char *etag;        /* with its quotes: "\"0123456789abcdef\"" */
};

struct fv_http_assets {
    const struct fv_http_asset *files; /* the embedded files; may be NULL with dir */
    size_t nfiles;
    const char *dir; /* serve this directory's files instead; NULL: the embedded ones */
};

/* The Content-Type for a file name, by its extension (the table holds
 * none, so that the build tool needs nothing but this header). */
const char *fv_http_asset_ctype(const char *name);

/* The embedded file called name, or NULL. */
const struct fv_http_asset *fv_http_asset_find(const struct fv_http_assets *a, const char *name);

/* fv_http_handler_fn for "/" (index.html) and the prefix "/assets/":
 * 200 with the file, 304 when If-None-Match names its ETag, 404 for
 * anything else.  index.html is sent with the security headers (a strict
 * Content-Security-Policy); every file is revalidated at each use
 * (Cache-Control: no-cache), so an upgraded aggregator is never served
 * from a stale cache. */
int fv_http_assets_handler(void *ctx, struct fv_http_req *req, struct fv_sbuf *out);

#endif
