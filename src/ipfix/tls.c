/* tls.c - see tls.h. */
#include "ipfix/tls.h"

#include <openssl/err.h>
#include <stdio.h>

#include "base/err.h"

static int fail(SSL_CTX *ctx, const char *what, const char *file, char *errbuf, size_t n)
{
    unsigned long e = ERR_get_error();
    char reason[256];

    ERR_error_string_n(e, reason, sizeof(reason));
    snprintf(errbuf, n, "%s%s%s: %s", what, file ? " " : "", file ? file : "",
             e ? reason : "unknown error");
    ERR_clear_error();
    SSL_CTX_free(ctx);
    return -FV_ETLS;
}

static int load_identity(SSL_CTX *ctx, const struct fv_tls_files *f, char *errbuf, size_t n)
{
    if (f->cert && SSL_CTX_use_certificate_chain_file(ctx, f->cert) != 1)
        return fail(ctx, "cannot load certificate", f->cert, errbuf, n);
    if (f->key && SSL_CTX_use_PrivateKey_file(ctx, f->key, SSL_FILETYPE_PEM) != 1)
        return fail(ctx, "cannot load private key", f->key, errbuf, n);
    if (f->cert && f->key && SSL_CTX_check_private_key(ctx) != 1)
        return fail(ctx, "key does not match certificate", f->key, errbuf, n);
    if (f->ca && SSL_CTX_load_verify_locations(ctx, f->ca, NULL) != 1)
        return fail(ctx, "cannot load CA", f->ca, errbuf, n);
    return 0;
}

int fv_tls_server_ctx(const struct fv_tls_files *f, SSL_CTX **out, char *errbuf, size_t n)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    int rc;

    if (ctx == NULL)
        return fail(NULL, "cannot create TLS context", NULL, errbuf, n);
    if (f->cert == NULL || f->key == NULL) {
        snprintf(errbuf, n, "TLS listener needs a certificate and a key");
        SSL_CTX_free(ctx);
        return -FV_ETLS;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    /* Exporters never resume sessions; tickets would only be unread
     * input on their sockets. */
    SSL_CTX_set_num_tickets(ctx, 0);
    rc = load_identity(ctx, f, errbuf, n);
    if (rc < 0)
        return rc;
    if (f->ca)
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    *out = ctx;
    return 0;
}

int fv_tls_client_ctx(const struct fv_tls_files *f, SSL_CTX **out, char *errbuf, size_t n)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    int rc;

    if (ctx == NULL)
        return fail(NULL, "cannot create TLS context", NULL, errbuf, n);
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    rc = load_identity(ctx, f, errbuf, n);
    if (rc < 0)
        return rc;
    /* Without a CA there is nothing to verify against: encryption only. */
    SSL_CTX_set_verify(ctx, f->ca ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
    *out = ctx;
    return 0;
}
