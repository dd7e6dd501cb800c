/*
 * test_http_assets.c - the web UI's files over HTTP (src/http/assets.c),
 * through the real server: gzip as embedded for browsers, inflated for
 * clients without gzip, ETag revalidation, the security headers of
 * index.html, names that must never reach a table or a file system, and
 * the ui.dir mode that reads a directory at every request.
 */
#include "testutil.h"
#include "tu_http.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "http/assets.h"

static const char INDEX[] = "<!doctype html><title>flowvis</title>";
static const char APP[] = "console.log('flowvis');\n";

/* gzip of p, as tools/embed_assets.c makes it. */
static unsigned char *gz(const char *p, size_t n, size_t *outlen)
{
    z_stream z = {0};
    unsigned char *out = malloc(n + 128);

    assert_int_equal(deflateInit2(&z, 9, Z_DEFLATED, 15 + 16, 9, Z_DEFAULT_STRATEGY), Z_OK);
    z.next_in = (unsigned char *)p;
    z.avail_in = (uInt)n;
    z.next_out = out;
    z.avail_out = (uInt)(n + 128);
    assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
    *outlen = z.total_out;
    deflateEnd(&z);
    return out;
}

struct fixture {
    struct fv_http_asset files[2];
    unsigned char *gz[2];
    struct fv_http_assets assets;
    struct fv_http_route routes[3];
    struct tu_http h;
    struct fv_sbuf body, headers;
};

static void start(struct fixture *f, const char *dir)
{
    struct fv_http_server_cfg cfg = {.routes = f->routes, .nroutes = 3, .threads = 2};

    f->gz[0] = gz(INDEX, strlen(INDEX), &f->files[0].gzlen);
    f->gz[1] = gz(APP, strlen(APP), &f->files[1].gzlen);
    f->files[0] = (struct fv_http_asset){"index.html", f->gz[0], f->files[0].gzlen, strlen(INDEX),
                                         "\"00000000000000aa\""};
    f->files[1] = (struct fv_http_asset){"app.js", f->gz[1], f->files[1].gzlen, strlen(APP),
                                         "\"00000000000000bb\""};
    f->assets = (struct fv_http_assets){f->files, 2, dir};
    f->routes[0] = (struct fv_http_route){"/", fv_http_assets_handler, &f->assets, true, false};
    f->routes[1] =
        (struct fv_http_route){"/assets/", fv_http_assets_handler, &f->assets, true, true};
    f->routes[2] = (struct fv_http_route){"/api", fv_http_assets_handler, &f->assets, false, false};
    fv_sbuf_init(&f->body, 1 << 20);
    fv_sbuf_init(&f->headers, 1 << 16);
    tu_http_start(&f->h, &cfg);
}

static void stop(struct fixture *f)
{
    fv_http_server_stop(f->h.srv);
    fv_sbuf_fini(&f->body);
    fv_sbuf_fini(&f->headers);
    free(f->gz[0]);
    free(f->gz[1]);
}

static long req(struct fixture *f, const char *path, const char *h1, const char *h2)
{
    const char *hs[] = {h1, h2, NULL};
    return tu_http_request(&f->h, path, false, hs, &f->body, &f->headers);
}

static bool has_header(const struct fixture *f, const char *line)
{
    return strcasestr(f->headers.p, line) != NULL;
}

static void test_gzip_as_embedded_for_browsers(void **state)
{
    struct fixture f;
    (void)state;

    start(&f, NULL);
    assert_int_equal(req(&f, "/assets/app.js", "Accept-Encoding: gzip, deflate, br", NULL), 200);
    assert_int_equal(f.body.len, f.files[1].gzlen);
    assert_memory_equal(f.body.p, f.gz[1], f.files[1].gzlen);
    assert_true(has_header(&f, "Content-Encoding: gzip"));
    assert_true(has_header(&f, "Content-Type: text/javascript; charset=utf-8"));
    assert_true(has_header(&f, "ETag: \"00000000000000bb\""));
    assert_true(has_header(&f, "Cache-Control: no-cache"));
    assert_true(has_header(&f, "Vary: Accept-Encoding"));
    /* Only the page carries the CSP. */
    assert_false(has_header(&f, "Content-Security-Policy"));
    stop(&f);
}

static void test_inflated_without_gzip(void **state)
{
    struct fixture f;
    (void)state;

    start(&f, NULL);
    assert_int_equal(req(&f, "/assets/app.js", NULL, NULL), 200);
    assert_string_equal(f.body.p, APP);
    assert_false(has_header(&f, "Content-Encoding"));
    assert_int_equal(req(&f, "/assets/app.js", "Accept-Encoding: gzip;q=0, identity", NULL), 200);
    assert_string_equal(f.body.p, APP);
    assert_int_equal(req(&f, "/assets/app.js", "Accept-Encoding: br, *;q=0.5", NULL), 200);
    assert_true(has_header(&f, "Content-Encoding: gzip"));
    stop(&f);
}

static void test_index_at_root_with_security_headers(void **state)
{
    struct fixture f;
    (void)state;

    start(&f, NULL);
    assert_int_equal(req(&f, "/", NULL, NULL), 200);
    assert_string_equal(f.body.p, INDEX);
    assert_true(has_header(&f, "Content-Type: text/html; charset=utf-8"));
    assert_true(has_header(&f, "Content-Security-Policy: default-src 'none'; script-src 'self';"));
    assert_true(has_header(&f, "X-Content-Type-Options: nosniff"));
    assert_true(has_header(&f, "X-Frame-Options: DENY"));
    /* HEAD: the headers and the length, no body. */
    assert_int_equal(tu_http_request(&f.h, "/", true, NULL, &f.body, &f.headers), 200);
    assert_int_equal(f.body.len, 0);
    assert_true(has_header(&f, "Content-Length: 37"));
    stop(&f);
}

static void test_etag_revalidation(void **state)
{
    struct fixture f;
    (void)state;

    start(&f, NULL);
    assert_int_equal(req(&f, "/assets/app.js", "If-None-Match: \"00000000000000bb\"", NULL), 304);
    assert_int_equal(f.body.len, 0);
    assert_int_equal(req(&f, "/assets/app.js", "If-None-Match: \"x\", \"00000000000000bb\"", NULL),
                     304);
    assert_int_equal(req(&f, "/assets/app.js", "If-None-Match: \"00000000000000aa\"", NULL), 200);
    assert_string_equal(f.body.p, APP);
    stop(&f);
}

static void test_names_that_are_refused(void **state)
{
    static const char *const bad[] = {
        "/assets/",       "/assets/.hidden", "/assets/..%2Fpasswd",
        "/assets/a/b.js", "/assets/nope.js", "/assets/app.js;x",
        "/api",           "/assets/%2e%2e",
    };
    struct fixture f;
    (void)state;

    start(&f, NULL);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (req(&f, bad[i], NULL, NULL) != 404)
            fail_msg("%s was served", bad[i]);
        assert_string_equal(f.body.p, "{\"error\":\"no such file\"}\n");
    }
    /* The server decodes the path before routing: an encoded NUL would cut
     * it short, so it is refused. */
    assert_int_equal(req(&f, "/assets/app.js%00.x", NULL, NULL), 400);
    assert_string_equal(f.body.p, "{\"error\":\"the path holds a NUL byte\"}\n");
    stop(&f);
}

static void test_dir_mode_reads_the_directory(void **state)
{
    char dir[] = "/tmp/fv_assets_XXXXXX", path[256], etag[128], *p, *e;
    struct fixture f;
    FILE *fp;
    (void)state;

    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/app.js", dir);
    fp = fopen(path, "w");
    fputs("v1", fp);
    fclose(fp);
    snprintf(path, sizeof(path), "%s/link.js", dir);
    assert_int_equal(symlink("/etc/passwd", path), 0);
    snprintf(path, sizeof(path), "%s/sub.js", dir);
    assert_int_equal(mkdir(path, 0700), 0);

    start(&f, dir);
    assert_int_equal(req(&f, "/assets/app.js", "Accept-Encoding: gzip", NULL), 200);
    assert_string_equal(f.body.p, "v1");
    assert_false(has_header(&f, "Content-Encoding"));
    p = strcasestr(f.headers.p, "ETag: ");
    assert_non_null(p);
    e = strchr(p, '\r');
    snprintf(etag, sizeof(etag), "If-None-Match: %.*s", (int)(e - p - 6), p + 6);
    assert_int_equal(req(&f, "/assets/app.js", etag, NULL), 304);

    /* A rebuild shows at the next request, under a new ETag. */
    snprintf(path, sizeof(path), "%s/app.js", dir);
    fp = fopen(path, "w");
    fputs("version 2", fp);
    fclose(fp);
    assert_int_equal(req(&f, "/assets/app.js", etag, NULL), 200);
    assert_string_equal(f.body.p, "version 2");

    /* The embedded index.html is not consulted: the directory has none. */
    assert_int_equal(req(&f, "/", NULL, NULL), 404);
    /* Symbolic links and directories are not served. */
    assert_int_equal(req(&f, "/assets/link.js", NULL, NULL), 404);
    assert_int_equal(req(&f, "/assets/sub.js", NULL, NULL), 404);
    stop(&f);

    snprintf(path, sizeof(path), "%s/sub.js", dir);
    rmdir(path);
    snprintf(path, sizeof(path), "%s/link.js", dir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/app.js", dir);
    unlink(path);
    rmdir(dir);
}

static void test_content_types(void **state)
{
    (void)state;
    assert_string_equal(fv_http_asset_ctype("a.css"), "text/css; charset=utf-8");
    assert_string_equal(fv_http_asset_ctype("favicon.svg"), "image/svg+xml");
    assert_string_equal(fv_http_asset_ctype("noext"), "application/octet-stream");
    assert_string_equal(fv_http_asset_ctype("x.js.map"), "application/octet-stream");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gzip_as_embedded_for_browsers),
        cmocka_unit_test(test_inflated_without_gzip),
        cmocka_unit_test(test_index_at_root_with_security_headers),
        cmocka_unit_test(test_etag_revalidation),
        cmocka_unit_test(test_names_that_are_refused),
        cmocka_unit_test(test_dir_mode_reads_the_directory),
        cmocka_unit_test(test_content_types),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
