/*
 * kubeconfig.c - Kubernetes API credentials from a kubeconfig (parsed with
 * libyaml's document API) or from the in-cluster service account; see
 * kubeconfig.h.
 */
#include "k8s/kubeconfig.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#define KUBECONFIG_MAX (16u << 20) /* a kubeconfig larger than this is not one */
#define TOKEN_MAX (64u << 10)      /* bearer tokens are a few KB */

/* ---- Small helpers ---- */

static void errf(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void errf(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static void free_secret(char *p, size_t len)
{
    if (p == NULL)
        return;
    explicit_bzero(p, len);
    free(p);
}

/* Reads at most max bytes of path into a new NUL-terminated buffer.
 * 0, -errno, -EFBIG when larger, -ENOMEM. */
static int read_file(const char *path, size_t max, char **out, size_t *outlen)
{
    FILE *fp = fopen(path, "rb");
    char *buf = NULL;
    size_t len = 0;
    int rc = 0;

    *out = NULL;
    *outlen = 0;
    if (fp == NULL)
        return -errno;
    buf = malloc(max + 1);
    if (buf == NULL) {
        rc = -ENOMEM;
        goto out;
    }
    len = fread(buf, 1, max + 1, fp);
    if (ferror(fp))
        rc = -EIO;
    else if (len > max)
        rc = -EFBIG;
out:
    fclose(fp);
    if (rc < 0) {
        free_secret(buf, max + 1);
        return rc;
    }
    buf[len] = '\0';
    *out = buf;
    *outlen = len;
    return 0;
}

/* A file named by the credentials must be readable now, so that a typo is
 * reported at start, not as a TLS error later. */
static int check_readable(const char *path)
{
    FILE *fp = fopen(path, "rb");

    if (fp == NULL)
        return -errno;
    fclose(fp);
    return 0;
}

int fv_k8s_base64_decode(const char *in, char **out, size_t *outlen)
{
    size_t cap = strlen(in) / 4 * 3 + 4, n = 0;
    char *buf = malloc(cap);
    uint32_t acc = 0;
    int bits = 0;

    *out = NULL;
    *outlen = 0;
    if (buf == NULL)
        return -ENOMEM;
    for (const char *p = in; *p != '\0'; p++) {
        int v;
        if (*p >= 'A' && *p <= 'Z')
            v = *p - 'A';
        else if (*p >= 'a' && *p <= 'z')
            v = *p - 'a' + 26;
        else if (*p >= '0' && *p <= '9')
            v = *p - '0' + 52;
        else if (*p == '+')
            v = 62;
        else if (*p == '/')
            v = 63;
        else if (*p == '=' || *p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')
            continue;
        else {
            free(buf);
            return -EINVAL;
        }
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            buf[n++] = (char)(acc >> bits & 0xff);
        }
    }
    buf[n] = '\0';
    *out = buf;
    *outlen = n;
    return 0;
}

/* path itself when absolute, else dir/path; a new string or NULL. */
static char *resolve(const char *dir, const char *path)
{
    char *out;
    size_t n;

    if (path[0] == '/' || dir == NULL || dir[0] == '\0')
        return strdup(path);
    n = strlen(dir) + strlen(path) + 2;
    out = malloc(n);
    if (out != NULL)
        snprintf(out, n, "%s/%s", dir, path);
    return out;
}

void fv_k8s_creds_fini(struct fv_k8s_creds *c)
{
    free(c->server);
    free(c->ca_file);
    free(c->ca_pem);
    free_secret(c->token, c->token ? strlen(c->token) : 0);
    free(c->token_file);
    free(c->cert_file);
    free(c->cert_pem);
    free(c->key_file);
    free_secret(c->key_pem, c->key_pem_len);
    memset(c, 0, sizeof(*c));
}

/* ---- YAML document navigation ---- */

struct kc {
    yaml_document_t doc; /* the parsed kubeconfig */
    const char *path;    /* the file, for messages */
    char *dir;           /* its directory, for relative paths */
    char *err;           /* where messages go */
    size_t errlen;
};

static void kc_err(struct kc *k, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void kc_err(struct kc *k, const char *fmt, ...)
{
    char what[400];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    errf(k->err, k->errlen, "kubeconfig %s: %s", k->path, what);
}

static yaml_node_t *node_at(struct kc *k, yaml_node_item_t id)
{
    return yaml_document_get_node(&k->doc, id);
}

/* The value of key in mapping m, or NULL. */
static yaml_node_t *map_get(struct kc *k, const yaml_node_t *m, const char *key)
{
    if (m == NULL || m->type != YAML_MAPPING_NODE)
        return NULL;
    for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = node_at(k, p->key);
        if (kn != NULL && kn->type == YAML_SCALAR_NODE &&
            strcmp((const char *)kn->data.scalar.value, key) == 0)
            return node_at(k, p->value);
    }
    return NULL;
}

/* The scalar text of key in m; NULL when absent, not a scalar or "". */
static const char *map_str(struct kc *k, const yaml_node_t *m, const char *key)
{
    const yaml_node_t *v = map_get(k, m, key);

    if (v == NULL || v->type != YAML_SCALAR_NODE || v->data.scalar.length == 0)
        return NULL;
    return (const char *)v->data.scalar.value;
}

/* In the sequence under list_key ("contexts"), the member (e.g. "context")
 * of the entry whose name is name; NULL when there is no such entry. */
static yaml_node_t *named_entry(struct kc *k, const yaml_node_t *root, const char *list_key,
                                const char *name, const char *member)
{
    yaml_node_t *seq = map_get(k, root, list_key);

    if (seq == NULL || seq->type != YAML_SEQUENCE_NODE)
        return NULL;
    for (yaml_node_item_t *it = seq->data.sequence.items.start; it < seq->data.sequence.items.top;
         it++) {
        yaml_node_t *e = node_at(k, *it);
        const char *n = map_str(k, e, "name");
        if (n != NULL && strcmp(n, name) == 0) {
            yaml_node_t *m = map_get(k, e, member);
            /* An entry without its member is an empty one, not a missing one. */
            return m != NULL ? m : e;
        }
    }
    return NULL;
}

/* A path-or-data pair (certificate-authority / certificate-authority-data):
 * the decoded data, else the resolved and checked file.  what names the
 * owner for messages ("cluster 'c'"). */
static int file_or_data(struct kc *k, const yaml_node_t *m, const char *key, const char *what,
                        char **file, char **pem, size_t *pem_len)
{
    char data_key[64];
    const char *data, *path;
    int rc;

    snprintf(data_key, sizeof(data_key), "%s-data", key);
    data = map_str(k, m, data_key);
    path = map_str(k, m, key);
    if (data != NULL) {
        rc = fv_k8s_base64_decode(data, pem, pem_len);
        if (rc == 0 && *pem_len == 0)
            rc = -EINVAL;
        if (rc == -EINVAL)
            kc_err(k, "%s: %s is %s", what, data_key, *pem != NULL ? "empty" : "not valid base64");
        return rc;
    }
    if (path == NULL)
        return 0;
    *file = resolve(k->dir, path);
    if (*file == NULL)
        return -ENOMEM;
    rc = check_readable(*file);
    if (rc < 0) {
        kc_err(k, "%s: %s %s: %s", what, key, *file, strerror(-rc));
        return -EINVAL;
    }
    return 0;
}

static int load_cluster(struct kc *k, const yaml_node_t *cl, const char *name,
                        struct fv_k8s_creds *c)
{
    const char *server = map_str(k, cl, "server");
    const char *insecure = map_str(k, cl, "insecure-skip-tls-verify");
    char what[300];
    size_t n;

    snprintf(what, sizeof(what), "cluster '%s'", name);
    if (server == NULL) {
        kc_err(k, "%s has no server", what);
        return -EINVAL;
    }
    if (strncmp(server, "https://", 8) != 0 && strncmp(server, "http://", 7) != 0) {
        kc_err(k, "%s: server '%s' is not an https:// or http:// URL", what, server);
        return -EINVAL;
    }
    c->server = strdup(server);
    if (c->server == NULL)
        return -ENOMEM;
    n = strlen(c->server);
    while (n > 0 && c->server[n - 1] == '/')
        c->server[--n] = '\0';
    c->insecure = insecure != NULL && strcmp(insecure, "true") == 0;
    return file_or_data(k, cl, "certificate-authority", what, &c->ca_file, &c->ca_pem,
                        &c->ca_pem_len);
}

/* Users whose credentials come from a plugin or a password are refused:
 * flowvis runs no external commands and the API server dropped basic auth. */
static int refuse_unsupported_user(struct kc *k, const yaml_node_t *u, const char *name)
{
    const yaml_node_t *exec = map_get(k, u, "exec");
    const yaml_node_t *ap = map_get(k, u, "auth-provider");
    const char *hint = "give the user a token, tokenFile or client certificate";

    if (exec != NULL) {
        const char *cmd = map_str(k, exec, "command");
        kc_err(k,
               "user '%s' uses an exec credential plugin (command '%s'), which flowvis does not "
               "support: %s",
               name, cmd ? cmd : "?", hint);
        return -EINVAL;
    }
    if (ap != NULL) {
        const char *apn = map_str(k, ap, "name");
        kc_err(k, "user '%s' uses auth-provider '%s', which flowvis does not support: %s", name,
               apn ? apn : "?", hint);
        return -EINVAL;
    }
    if (map_str(k, u, "username") != NULL || map_str(k, u, "password") != NULL) {
        kc_err(k,
               "user '%s' uses basic auth (username/password), which flowvis does not support: %s",
               name, hint);
        return -EINVAL;
    }
    return 0;
}

static int load_user(struct kc *k, const yaml_node_t *u, const char *name, struct fv_k8s_creds *c)
{
    const char *token = map_str(k, u, "token");
    const char *token_file = map_str(k, u, "tokenFile");
    char what[300];
    int rc = refuse_unsupported_user(k, u, name);

    snprintf(what, sizeof(what), "user '%s'", name);
    if (rc < 0)
        return rc;
    if (token != NULL) {
        c->token = strdup(token);
        if (c->token == NULL)
            return -ENOMEM;
    } else if (token_file != NULL) {
        c->token_file = resolve(k->dir, token_file);
        if (c->token_file == NULL)
            return -ENOMEM;
        rc = check_readable(c->token_file);
        if (rc < 0) {
            kc_err(k, "%s: tokenFile %s: %s", what, c->token_file, strerror(-rc));
            return -EINVAL;
        }
    }
    rc = file_or_data(k, u, "client-certificate", what, &c->cert_file, &c->cert_pem,
                      &c->cert_pem_len);
    if (rc == 0)
        rc = file_or_data(k, u, "client-key", what, &c->key_file, &c->key_pem, &c->key_pem_len);
    if (rc < 0)
        return rc;
    if ((c->cert_file || c->cert_pem) != (c->key_file || c->key_pem)) {
        kc_err(k, "%s: a client certificate needs both client-certificate and client-key", what);
        return -EINVAL;
    }
    return 0;
}

/* current-context -> context -> cluster and user. */
static int load_context(struct kc *k, struct fv_k8s_creds *c)
{
    yaml_node_t *root = yaml_document_get_root_node(&k->doc);
    const char *cur, *cluster_name, *user_name;
    yaml_node_t *ctx, *cl, *u = NULL;
    int rc;

    if (root == NULL || root->type != YAML_MAPPING_NODE) {
        kc_err(k, "not a kubeconfig (%s)",
               root == NULL ? "empty" : "the top level is not a mapping");
        return -EINVAL;
    }
    cur = map_str(k, root, "current-context");
    if (cur == NULL) {
        kc_err(k, "no current-context is set");
        return -EINVAL;
    }
    ctx = named_entry(k, root, "contexts", cur, "context");
    if (ctx == NULL) {
        kc_err(k, "current-context '%s' has no context entry", cur);
        return -EINVAL;
    }
    cluster_name = map_str(k, ctx, "cluster");
    user_name = map_str(k, ctx, "user");
    if (cluster_name == NULL) {
        kc_err(k, "context '%s' names no cluster", cur);
        return -EINVAL;
    }
    cl = named_entry(k, root, "clusters", cluster_name, "cluster");
    if (cl == NULL) {
        kc_err(k, "context '%s' names cluster '%s', which has no clusters entry", cur,
               cluster_name);
        return -EINVAL;
    }
    if (user_name != NULL) {
        u = named_entry(k, root, "users", user_name, "user");
        if (u == NULL) {
            kc_err(k, "context '%s' names user '%s', which has no users entry", cur, user_name);
            return -EINVAL;
        }
    }
    rc = load_cluster(k, cl, cluster_name, c);
    if (rc == 0 && u != NULL)
        rc = load_user(k, u, user_name, c);
    return rc;
}

static int load_kubeconfig(const char *path, struct fv_k8s_creds *c, char *err, size_t errlen)
{
    struct kc k = {.path = path, .err = err, .errlen = errlen};
    yaml_parser_t parser;
    char *buf = NULL, *slash;
    size_t len;
    int rc = read_file(path, KUBECONFIG_MAX, &buf, &len);

    if (rc < 0) {
        errf(err, errlen, "kubeconfig %s: %s", path,
             rc == -EFBIG ? "larger than 16 MiB" : strerror(-rc));
        return rc == -ENOMEM ? rc : -EINVAL;
    }
    k.dir = strdup(path);
    if (k.dir == NULL || !yaml_parser_initialize(&parser)) {
        free(k.dir);
        free_secret(buf, len);
        return -ENOMEM;
    }
    slash = strrchr(k.dir, '/');
    if (slash == NULL)
        k.dir[0] = '\0';
    else
        slash[slash == k.dir ? 1 : 0] = '\0';
    yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
    if (!yaml_parser_load(&parser, &k.doc)) {
        errf(err, errlen, "kubeconfig %s: line %zu column %zu: %s", path,
             parser.problem_mark.line + 1, parser.problem_mark.column + 1,
             parser.problem ? parser.problem : "not YAML");
        rc = -EINVAL;
    } else {
        rc = load_context(&k, c);
        yaml_document_delete(&k.doc);
    }
    yaml_parser_delete(&parser);
    free_secret(buf, len);
    free(k.dir);
    if (rc == 0)
        snprintf(c->source, sizeof(c->source), "kubeconfig %s", path);
    return rc;
}

/* ---- In-cluster ---- */

static int load_in_cluster(struct fv_k8s_creds *c, char *err, size_t errlen)
{
    const char *dir = getenv(FV_K8S_SA_DIR_ENV);
    const char *host = getenv("KUBERNETES_SERVICE_HOST");
    const char *port = getenv("KUBERNETES_SERVICE_PORT");
    size_t n;
    int rc;

    if (dir == NULL || *dir == '\0')
        dir = FV_K8S_SA_DIR;
    if (host == NULL || *host == '\0') {
        errf(err, errlen,
             "service account: KUBERNETES_SERVICE_HOST is not set (not in a Pod? set "
             "inventory.kubeconfig)");
        return -EINVAL;
    }
    if (port == NULL || *port == '\0') {
        errf(err, errlen,
             "service account: KUBERNETES_SERVICE_PORT is not set (not in a Pod? set "
             "inventory.kubeconfig)");
        return -EINVAL;
    }
    n = strlen(host) + strlen(port) + 16;
    c->server = malloc(n);
    c->token_file = resolve(dir, "token");
    c->ca_file = resolve(dir, "ca.crt");
    if (c->server == NULL || c->token_file == NULL || c->ca_file == NULL)
        return -ENOMEM;
    /* An IPv6 address goes in brackets (a single-stack IPv6 cluster). */
    if (strchr(host, ':') != NULL)
        snprintf(c->server, n, "https://[%s]:%s", host, port);
    else
        snprintf(c->server, n, "https://%s:%s", host, port);
    for (int i = 0; i < 2; i++) {
        const char *f = i == 0 ? c->token_file : c->ca_file;
        rc = check_readable(f);
        if (rc < 0) {
            errf(err, errlen, "service account: %s: %s", f, strerror(-rc));
            return -EINVAL;
        }
    }
    snprintf(c->source, sizeof(c->source), "service account %s", dir);
    return 0;
}

int fv_k8s_creds_load(const char *path, struct fv_k8s_creds *out, char *err, size_t errlen)
{
    int rc;

    memset(out, 0, sizeof(*out));
    if (errlen > 0)
        err[0] = '\0';
    if (path == NULL || *path == '\0')
        rc = load_in_cluster(out, err, errlen);
    else
        rc = load_kubeconfig(path, out, err, errlen);
    if (rc == -ENOMEM && (errlen == 0 || err[0] == '\0'))
        errf(err, errlen, "out of memory reading the Kubernetes credentials");
    if (rc < 0)
        fv_k8s_creds_fini(out);
    return rc;
}

/* ---- Applying to a request ---- */

/* Reads the token file, trimmed of surrounding whitespace. */
static int read_token(const char *path, char **out, char *err, size_t errlen)
{
    char *buf, *start;
    size_t len;
    int rc = read_file(path, TOKEN_MAX, &buf, &len);

    if (rc < 0) {
        errf(err, errlen, "token file %s: %s", path, rc == -EFBIG ? "too large" : strerror(-rc));
        return rc;
    }
    while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r' || buf[len - 1] == ' ' ||
                       buf[len - 1] == '\t'))
        buf[--len] = '\0';
    start = buf;
    while (*start == ' ' || *start == '\t' || *start == '\n' || *start == '\r')
        start++;
    if (*start == '\0') {
        errf(err, errlen, "token file %s is empty", path);
        free(buf);
        return -EINVAL;
    }
    memmove(buf, start, strlen(start) + 1);
    *out = buf;
    return 0;
}

static int add_bearer(const char *token, struct curl_slist **headers)
{
    static const char prefix[] = "Authorization: Bearer ";
    size_t n = sizeof(prefix) + strlen(token);
    char *h = malloc(n);
    struct curl_slist *l;

    if (h == NULL)
        return -ENOMEM;
    snprintf(h, n, "%s%s", prefix, token);
    l = curl_slist_append(*headers, h);
    free_secret(h, n);
    if (l == NULL)
        return -ENOMEM;
    *headers = l;
    return 0;
}

int fv_k8s_creds_apply(const struct fv_k8s_creds *c, CURL *easy, struct curl_slist **headers,
                       char *err, size_t errlen)
{
    char *token = NULL;
    int rc = 0;

    curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, c->insecure ? 0L : 1L);
    curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, c->insecure ? 0L : 2L);
    if (c->ca_pem != NULL) {
        struct curl_blob b = {.data = c->ca_pem, .len = c->ca_pem_len, .flags = CURL_BLOB_COPY};
        curl_easy_setopt(easy, CURLOPT_CAINFO_BLOB, &b);
    } else if (c->ca_file != NULL) {
        curl_easy_setopt(easy, CURLOPT_CAINFO, c->ca_file);
    }
    if (c->cert_pem != NULL) {
        struct curl_blob b = {.data = c->cert_pem, .len = c->cert_pem_len, .flags = CURL_BLOB_COPY};
        curl_easy_setopt(easy, CURLOPT_SSLCERT_BLOB, &b);
    } else if (c->cert_file != NULL) {
        curl_easy_setopt(easy, CURLOPT_SSLCERT, c->cert_file);
    }
    if (c->key_pem != NULL) {
        struct curl_blob b = {.data = c->key_pem, .len = c->key_pem_len, .flags = CURL_BLOB_COPY};
        curl_easy_setopt(easy, CURLOPT_SSLKEY_BLOB, &b);
    } else if (c->key_file != NULL) {
        curl_easy_setopt(easy, CURLOPT_SSLKEY, c->key_file);
    }
    if (c->token != NULL) {
        rc = add_bearer(c->token, headers);
    } else if (c->token_file != NULL) {
        rc = read_token(c->token_file, &token, err, errlen);
        if (rc == 0)
            rc = add_bearer(token, headers);
        free_secret(token, token ? strlen(token) : 0);
    }
    if (rc == -ENOMEM)
        errf(err, errlen, "out of memory");
    return rc;
}
