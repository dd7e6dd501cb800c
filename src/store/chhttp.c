/* chhttp.c - ClickHouse's HTTP interface through libcurl (chhttp.h). */
#include "store/chhttp.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "base/clock.h"
#include "base/err.h"
#include "base/log.h"

#define CONNECT_TIMEOUT_MS 5000L
#define STALL_SECONDS 60L /* no byte either way for this long: give up */
#define LOG_SQL_MAX 300   /* statement bytes shown in a log line */

static pthread_once_t global_once = PTHREAD_ONCE_INIT;

static void global_init(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

void fv_chhttp_global_init(void)
{
    pthread_once(&global_once, global_init);
}

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
    struct fv_chhttp *h = arg;

    /* A short count makes libcurl fail the transfer (CURLE_WRITE_ERROR). */
    return fv_sbuf_append(&h->resp, p, size * n) == 0 ? size * n : 0;
}

static int on_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    const struct fv_chhttp *h = arg;

    (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
    return h->abort_at_ms && fv_clock_mono_ms() >= atomic_load(h->abort_at_ms);
}

int fv_chhttp_init(struct fv_chhttp *h, const struct fv_chhttp_conn *conn, size_t max_resp)
{
    memset(h, 0, sizeof(*h));
    h->conn = conn;
    fv_sbuf_init(&h->resp, max_resp);
    fv_chhttp_global_init();
    h->curl = curl_easy_init();
    return h->curl ? 0 : -ENOMEM;
}

void fv_chhttp_fini(struct fv_chhttp *h)
{
    if (h->curl)
        curl_easy_cleanup(h->curl);
    fv_sbuf_fini(&h->resp);
    h->curl = NULL;
}

/* The options every request has; the URL, body and headers are set by the
 * caller. */
static void set_common(struct fv_chhttp *h)
{
    CURL *c = h->curl;
    const struct fv_chhttp_conn *conn = h->conn;

    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, h->curl_err);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, h);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, h);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, CONNECT_TIMEOUT_MS);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, STALL_SECONDS);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)h->timeout_ms);
    curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
    /* A new connection per request.  On a kept-alive one that dies, libcurl
     * sends the request again by itself, and an insert the server had
     * already taken would be written twice; and a server told to stop
     * keeps serving an open connection (18.16: ~15 s) instead of refusing
     * new work at once.  One connect per batch costs nothing. */
    curl_easy_setopt(c, CURLOPT_FORBID_REUSE, 1L);
    curl_easy_setopt(c, CURLOPT_FRESH_CONNECT, 1L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    if (conn->user && conn->user[0]) {
        curl_easy_setopt(c, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        curl_easy_setopt(c, CURLOPT_USERNAME, conn->user);
        curl_easy_setopt(c, CURLOPT_PASSWORD, conn->password ? conn->password : "");
    }
    if (conn->ca_file && conn->ca_file[0])
        curl_easy_setopt(c, CURLOPT_CAINFO, conn->ca_file);
    if (conn->insecure) {
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    h->curl_err[0] = '\0';
    fv_sbuf_reset(&h->resp);
}

/* "Code: 60, e.displayText() = ..." (18.16) or "Code: 60. DB::Exception: ..." */
static int error_code(const char *body)
{
    if (strncmp(body, "Code: ", 6) != 0)
        return 0;
    return atoi(body + 6);
}

static void first_line(const char *s, char *out, size_t n)
{
    size_t len = strcspn(s, "\r\n");

    if (len >= n)
        len = n - 1;
    memcpy(out, s, len);
    out[len] = '\0';
}

static int curl_rc_to_errno(CURLcode cc)
{
    switch (cc) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
        return -ECONNREFUSED;
    case CURLE_OPERATION_TIMEDOUT:
        return -ETIMEDOUT;
    case CURLE_ABORTED_BY_CALLBACK:
        return -ECANCELED;
    default:
        return -EIO;
    }
}

/* Runs the prepared request and fills res. */
static int perform(struct fv_chhttp *h, const char *what, const char *sql, size_t sql_len,
                   size_t body_len, struct fv_chhttp_res *res)
{
    enum fv_log_level lvl = h->conn->debug ? FV_LOG_INFO : FV_LOG_DEBUG;
    CURLcode cc;
    curl_off_t up = 0;
    uint64_t t0 = fv_clock_mono_ms();
    int shown = sql_len > LOG_SQL_MAX ? LOG_SQL_MAX : (int)sql_len;

    memset(res, 0, sizeof(*res));
    FV_LOG(lvl, "clickhouse %s bytes=%zu sql=%.*s%s", what, body_len, shown, sql,
           (size_t)shown < sql_len ? "..." : "");
    cc = curl_easy_perform(h->curl);
    curl_easy_getinfo(h->curl, CURLINFO_SIZE_UPLOAD_T, &up);
    res->sent_all = (uint64_t)up >= body_len;
    if (cc != CURLE_OK) {
        const char *msg = h->curl_err[0] ? h->curl_err : curl_easy_strerror(cc);
        if (cc == CURLE_WRITE_ERROR && h->resp.err == -FV_ELIMIT)
            msg = "response too large";
        else if (cc == CURLE_ABORTED_BY_CALLBACK)
            msg = "given up at the stop deadline";
        snprintf(res->error, sizeof(res->error), "%s", msg);
        FV_LOG(lvl, "clickhouse %s failed ms=%llu error=%s", what,
               (unsigned long long)(fv_clock_mono_ms() - t0), res->error);
        return curl_rc_to_errno(cc);
    }
    curl_easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, &res->status);
    FV_LOG(lvl, "clickhouse %s status=%ld ms=%llu response_bytes=%zu", what, res->status,
           (unsigned long long)(fv_clock_mono_ms() - t0), h->resp.len);
    if (res->status == 200)
        return 0;
    res->code = error_code(h->resp.p ? h->resp.p : "");
    if (h->resp.len > 0)
        first_line(h->resp.p, res->error, sizeof(res->error));
    else
        snprintf(res->error, sizeof(res->error), "HTTP status %ld", res->status);
    return -EIO;
}

int fv_chhttp_exec(struct fv_chhttp *h, const char *url, const char *sql, size_t sql_len,
                   struct fv_chhttp_res *res)
{
    struct curl_slist *hdr = curl_slist_append(NULL, "Content-Type: text/plain; charset=utf-8");
    int rc;

    set_common(h);
    curl_easy_setopt(h->curl, CURLOPT_URL, url);
    curl_easy_setopt(h->curl, CURLOPT_POST, 1L);
    curl_easy_setopt(h->curl, CURLOPT_POSTFIELDS, sql);
    curl_easy_setopt(h->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)sql_len);
    curl_easy_setopt(h->curl, CURLOPT_HTTPHEADER, hdr);
    rc = perform(h, "statement", sql, sql_len, sql_len, res);
    curl_easy_setopt(h->curl, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(hdr);
    return rc;
}

int fv_chhttp_insert(struct fv_chhttp *h, const char *url, const char *sql, const void *body,
                     size_t len, bool gzip, struct fv_chhttp_res *res)
{
    struct curl_slist *hdr = NULL;
    char *q = NULL, *full = NULL;
    size_t n;
    int rc = -ENOMEM;

    set_common(h);
    q = curl_easy_escape(h->curl, sql, (int)strlen(sql));
    if (q == NULL)
        goto out;
    n = strlen(url) + strlen(q) + 16;
    full = malloc(n);
    if (full == NULL)
        goto out;
    snprintf(full, n, "%s/?query=%s", url, q);
    hdr = curl_slist_append(NULL, "Content-Type: application/octet-stream");
    /* No "Expect: 100-continue" round trip before each body. */
    hdr = hdr ? curl_slist_append(hdr, "Expect:") : NULL;
    if (hdr && gzip)
        hdr = curl_slist_append(hdr, "Content-Encoding: gzip");
    if (hdr == NULL)
        goto out;
    curl_easy_setopt(h->curl, CURLOPT_URL, full);
    curl_easy_setopt(h->curl, CURLOPT_POST, 1L);
    curl_easy_setopt(h->curl, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    curl_easy_setopt(h->curl, CURLOPT_HTTPHEADER, hdr);
    rc = perform(h, "insert", sql, strlen(sql), len, res);
    curl_easy_setopt(h->curl, CURLOPT_HTTPHEADER, NULL);
out:
    if (rc == -ENOMEM && res->error[0] == '\0')
        snprintf(res->error, sizeof(res->error), "out of memory");
    curl_slist_free_all(hdr);
    curl_free(q);
    free(full);
    return rc;
}

int fv_chhttp_gzip(const void *in, size_t len, int level, struct fv_sbuf *out)
{
    z_stream zs;
    int zrc, rc = 0;

    memset(&zs, 0, sizeof(zs));
    fv_sbuf_reset(out);
    /* 15 + 16: a gzip wrapper, not zlib's. */
    if (deflateInit2(&zs, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return -ENOMEM;
    rc = fv_sbuf_reserve(out, deflateBound(&zs, (uLong)len));
    if (rc < 0)
        goto out;
    zs.next_in = (Bytef *)(uintptr_t)in;
    zs.avail_in = (uInt)len;
    zs.next_out = (Bytef *)out->p;
    zs.avail_out = (uInt)(out->cap - 1);
    zrc = deflate(&zs, Z_FINISH);
    if (zrc != Z_STREAM_END) {
        rc = -EIO;
        goto out;
    }
    out->len = zs.total_out;
    out->p[out->len] = '\0';
out:
    deflateEnd(&zs);
    return rc;
}

/* ---- TabSeparatedWithNamesAndTypes ---- */

struct tsv {
    const char *p, *end; /* what is left */
    struct fv_sbuf text; /* unescaped cells of the current row */
};

/* Unescapes one field up to '\t' or '\n' into t->text; *eol is set at
 * the end of the line.  -FV_ETRUNC at the end of the input. */
static int tsv_field(struct tsv *t, bool *is_null, bool *eol)
{
    *is_null = false;
    if (t->end - t->p >= 2 && t->p[0] == '\\' && t->p[1] == 'N' &&
        (t->end - t->p == 2 || t->p[2] == '\t' || t->p[2] == '\n')) {
        *is_null = true;
        t->p += 2;
    }
    while (t->p < t->end && *t->p != '\t' && *t->p != '\n') {
        char c = *t->p++;
        if (c == '\\' && t->p < t->end) {
            char e = *t->p++;
            switch (e) {
            case 'b':
                c = '\b';
                break;
            case 'f':
                c = '\f';
                break;
            case 'r':
                c = '\r';
                break;
            case 'n':
                c = '\n';
                break;
            case 't':
                c = '\t';
                break;
            case '0':
                c = '\0';
                break;
            case 'a':
                c = '\a';
                break;
            case 'v':
                c = '\v';
                break;
            default:
                c = e; /* \\ \' \" and anything else: the character */
                break;
            }
        }
        if (fv_sbuf_putc(&t->text, c) < 0)
            return -ENOMEM;
    }
    if (t->p >= t->end)
        return -FV_ETRUNC;
    *eol = *t->p == '\n';
    t->p++;
    return 0;
}

/* Splits one line into fields: offsets into t->text.  Returns the count,
 * or a negative code; at most max fields. */
static int tsv_line(struct tsv *t, size_t *off, size_t *len, bool *nul, int max)
{
    int n = 0;
    bool eol = false;

    fv_sbuf_reset(&t->text);
    while (!eol) {
        if (n == max)
            return -FV_ELIMIT;
        off[n] = t->text.len;
        int rc = tsv_field(t, &nul[n], &eol);
        if (rc < 0)
            return rc;
        len[n] = t->text.len - off[n];
        /* Keep each field NUL-terminated for strtoll. */
        if (fv_sbuf_putc(&t->text, '\0') < 0)
            return -ENOMEM;
        n++;
    }
    return n;
}

static enum fv_sql_type type_of(const char *ch_type)
{
    const char *s = ch_type;

    for (;;) {
        if (strncmp(s, "Nullable(", 9) == 0)
            s += 9;
        else if (strncmp(s, "LowCardinality(", 15) == 0)
            s += 15;
        else
            break;
    }
    if (strncmp(s, "UInt", 4) == 0 || strncmp(s, "Int", 3) == 0)
        return FV_SQL_INT;
    if (strncmp(s, "Float", 5) == 0 || strncmp(s, "Decimal", 7) == 0)
        return FV_SQL_REAL;
    return FV_SQL_TEXT;
}

#define TSV_MAX_COLS 256

struct tsv_cols {
    size_t off[TSV_MAX_COLS], len[TSV_MAX_COLS];
    bool nul[TSV_MAX_COLS];
    enum fv_sql_type type[TSV_MAX_COLS];
    struct fv_sql_val cells[TSV_MAX_COLS];
};

static void cell_of(struct fv_sql_val *v, enum fv_sql_type t, const char *s, size_t len, bool nul)
{
    memset(v, 0, sizeof(*v));
    v->type = t;
    if (t == FV_SQL_INT && !nul)
        v->i = s[0] == '-' ? strtoll(s, NULL, 10) : (int64_t)strtoull(s, NULL, 10);
    else if (t == FV_SQL_REAL && !nul)
        v->d = strtod(s, NULL);
    if (t == FV_SQL_TEXT) {
        v->s = nul ? "" : s;
        v->len = nul ? 0 : len;
    }
}

static int tsv_rows(struct tsv *t, struct tsv_cols *c, fv_sql_row_fn fn, void *arg, char *err,
                    size_t errlen)
{
    int ncols, n;

    if (t->p == t->end)
        return 0; /* no header at all: no rows */
    ncols = tsv_line(t, c->off, c->len, c->nul, TSV_MAX_COLS);
    if (ncols < 0) {
        snprintf(err, errlen, "result header: %s", fv_strerror(ncols));
        return ncols;
    }
    n = tsv_line(t, c->off, c->len, c->nul, TSV_MAX_COLS);
    if (n != ncols) {
        snprintf(err, errlen, "result types: %d columns, %d names", n, ncols);
        return n < 0 ? n : -FV_ETRUNC;
    }
    for (int i = 0; i < ncols; i++)
        c->type[i] = type_of(t->text.p + c->off[i]);
    while (t->p < t->end) {
        n = tsv_line(t, c->off, c->len, c->nul, ncols);
        if (n != ncols) {
            snprintf(err, errlen, "result row with %d of %d columns", n < 0 ? 0 : n, ncols);
            return n < 0 ? n : -FV_ETRUNC;
        }
        for (int i = 0; i < ncols; i++)
            cell_of(&c->cells[i], c->type[i], t->text.p + c->off[i], c->len[i], c->nul[i]);
        int rc = fn(arg, c->cells, ncols);
        if (rc != 0)
            return rc;
    }
    return 0;
}

int fv_chhttp_tsv_rows(const char *p, size_t len, fv_sql_row_fn fn, void *arg, char *err,
                       size_t errlen)
{
    struct tsv t = {.p = p, .end = p + len};
    struct tsv_cols *c = malloc(sizeof(*c));
    int rc;

    if (c == NULL) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    fv_sbuf_init(&t.text, len + TSV_MAX_COLS + 1);
    rc = tsv_rows(&t, c, fn, arg, err, errlen);
    fv_sbuf_fini(&t.text);
    free(c);
    return rc;
}
