/*
 * tls.h - OpenSSL contexts for the IPFIX transports (internal to ipfix).
 *
 * TLS 1.2 is the minimum.  A server context with a CA requires and
 * verifies client certificates (mutual TLS); a client context with a CA
 * verifies the server's certificate and name.  Errors are returned as
 * -FV_ETLS with OpenSSL's reason in errbuf.
 */
#ifndef FV_IPFIX_TLS_H
#define FV_IPFIX_TLS_H

#include <openssl/ssl.h>
#include <stddef.h>

#include "ipfix/transport.h"

int fv_tls_server_ctx(const struct fv_tls_files *f, SSL_CTX **out, char *errbuf, size_t n);
int fv_tls_client_ctx(const struct fv_tls_files *f, SSL_CTX **out, char *errbuf, size_t n);

#endif
