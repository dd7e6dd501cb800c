/*
 * certs.h - generates the TLS material the aggregator and agents use: a
 * private CA, the aggregator's server certificate and one client
 * certificate that every agent presents, so that mutual TLS works without
 * an operator running openssl by hand (as Antrea's Flow Aggregator does).
 *
 * fv_certs_ensure() is idempotent: it looks at what the directory already
 * holds, keeps everything that is still good and regenerates only what is
 * missing or no longer fits.  The CA is the trust root the agents were
 * given, so it is never replaced silently: a ca.crt/ca.key pair that cannot
 * be read, does not match or is not a CA is an error, and only a missing
 * half or an expiring CA leads to a new one (after which both leaf
 * certificates no longer verify and are regenerated too).  A leaf
 * certificate that is unreadable, mismatched, not signed by the CA, has the
 * wrong purpose or expires soon is simply replaced.
 *
 * Every file is written whole to a temporary file in the same directory,
 * synced and renamed into place, so a reader never sees half a file.
 * Keys are PKCS#8 PEM, unencrypted, mode 0600; certificates are PEM, 0644.
 *
 * Ownership: nothing is kept between calls; the strings in the request are
 * borrowed for the duration of the call.
 *
 * Thread rules: safe to call from any thread.  Calls on the same directory
 * (also from other processes) are serialized by an exclusive flock() on the
 * directory.  The call blocks: it generates keys and resolves server_name.
 *
 *     struct fv_certs_req req = {.dir = "/var/lib/flowvis/certs",
 *                                .server_name = "flow-aggregator.flowvis.svc"};
 *     char err[256];
 *     if (fv_certs_ensure(&req, err, sizeof(err)) < 0)
 *         fprintf(stderr, "%s\n", err);
 */
#ifndef FV_AGGREGATOR_CERTS_H
#define FV_AGGREGATOR_CERTS_H

#include <stddef.h>
#include <stdint.h>

struct fv_certs_req {
    const char *dir;         /* output directory; created (0700) when missing */
    const char *server_name; /* flowAggregatorAddress: DNS name or IP literal */
    uint32_t days;           /* validity in days; 0 = 365 */
};

/* File names inside dir. */
#define FV_CERTS_CA_CERT "ca.crt"
#define FV_CERTS_CA_KEY "ca.key"
#define FV_CERTS_SERVER_CERT "server.crt"
#define FV_CERTS_SERVER_KEY "server.key"
#define FV_CERTS_CLIENT_CERT "client.crt"
#define FV_CERTS_CLIENT_KEY "client.key"

/* Makes sure dir holds the six files.  Missing ones are generated: a
 * self-signed CA (reused when ca.crt+ca.key exist), a server certificate
 * whose subjectAltName holds server_name (as DNS or IP entry) and every IP
 * address it resolves to, plus "localhost", 127.0.0.1 and ::1; and a client
 * certificate (CN "flowvis-agent", extendedKeyUsage clientAuth) for agents.
 * A server certificate that exists but does not cover server_name, or is
 * not signed by the CA in dir, or expires within 30 days, is regenerated.
 * Keys: ECDSA P-256, written 0600 atomically (tmp file + rename).
 *
 * Details: a server_name that does not resolve still gets its DNS entry.
 * The client certificate is held to the same rules as the server's (minus
 * the name).  "Expires within 30 days" uses half the requested validity
 * instead when that is shorter, so a short `days` does not regenerate on
 * every call; the CA follows the same rule.  A leaf never outlives its CA.
 * server_name must be an IPv4/IPv6 literal or a host name (letters, digits,
 * '-', '_' and non-empty dot-separated labels, at most 253 characters);
 * days at most 36500.
 *
 * Returns 0, or a negative code with a sentence in err naming the file:
 * -FV_ECONFIG for a bad request, -errno for file system errors, -FV_ETLS
 * for an unusable CA or an OpenSSL failure. */
int fv_certs_ensure(const struct fv_certs_req *req, char *err, size_t errlen);

#endif
