/* certs.c - see certs.h. */
#include "aggregator/certs.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "base/err.h"

#define DEFAULT_DAYS 365
#define MAX_DAYS 36500
#define RENEW_DAYS 30
/* New certificates start this many seconds in the past, so that an agent
 * whose clock lags the aggregator's still accepts them. */
#define BACKDATE_S 3600
#define MAX_SAN_IPS 32
#define ORG "flowvis"
#define CLIENT_CN "flowvis-agent"
/* The CN of a server certificate whose name is too long for a CN (64
 * characters); verifiers look at the subjectAltName anyway. */
#define SERVER_CN_FALLBACK "flowvis-aggregator"
#define MAX_CN 64
/* Room left in PATH_MAX for "/.server.crt.XXXXXX". */
#define NAME_ROOM 32

/* A certificate and its private key. */
struct pair {
    X509 *cert;    /* owned, or NULL */
    EVP_PKEY *key; /* owned, or NULL */
};

/* What tells the server and the client certificate apart. */
struct leaf {
    const char *cert_name; /* FV_CERTS_*_CERT */
    const char *key_name;  /* FV_CERTS_*_KEY */
    const char *eku;       /* extendedKeyUsage value, openssl.cnf syntax */
    int purpose;           /* X509_PURPOSE_SSL_SERVER or _CLIENT */
    bool server;           /* named after server_name, with a subjectAltName */
};

static const struct leaf server_leaf = {FV_CERTS_SERVER_CERT, FV_CERTS_SERVER_KEY, "serverAuth",
                                        X509_PURPOSE_SSL_SERVER, true};
static const struct leaf client_leaf = {FV_CERTS_CLIENT_CERT, FV_CERTS_CLIENT_KEY, "clientAuth",
                                        X509_PURPOSE_SSL_CLIENT, false};

/* The state of one fv_certs_ensure() call. */
struct run {
    const char *dir;         /* borrowed from the request */
    const char *server_name; /* borrowed from the request */
    const char *server_cn;   /* server_name, or SERVER_CN_FALLBACK when too long */
    bool name_is_ip;         /* server_name is an IPv4 or IPv6 literal */
    int days;                /* validity of new certificates */
    int renew_days;          /* what expires within this many days is regenerated */
    bool wrote;              /* a file was renamed into dir: sync the directory */
    struct pair ca;          /* the CA in use, loaded or generated */
    char *err;               /* the caller's buffer for the sentence */
    size_t errlen;           /* its size */
};

/* A file written under a temporary name, waiting to be renamed into place. */
struct staged {
    char tmp[PATH_MAX];  /* dir/.name.XXXXXX */
    char path[PATH_MAX]; /* dir/name */
    bool pending;        /* tmp exists and is not renamed yet */
};

static int say(struct run *r, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Puts a sentence into the caller's buffer and returns rc. */
static int say(struct run *r, int rc, const char *fmt, ...)
{
    va_list ap;

    if (r->errlen > 0) {
        va_start(ap, fmt);
        vsnprintf(r->err, r->errlen, fmt, ap);
        va_end(ap);
    }
    return rc;
}

/* An OpenSSL failure: what could not be done with which file, and why. */
static int ssl_fail(struct run *r, const char *what, const char *path)
{
    unsigned long e = ERR_peek_last_error();
    char reason[256] = "unknown error";

    if (e != 0)
        ERR_error_string_n(e, reason, sizeof(reason));
    ERR_clear_error();
    return say(r, -FV_ETLS, "%s %s: %s", what, path, reason);
}

/* check_req() made sure the result fits. */
static void path_of(const struct run *r, const char *name, char *out)
{
    snprintf(out, PATH_MAX, "%s/%s", r->dir, name);
}

static void pair_free(struct pair *p)
{
    X509_free(p->cert);
    EVP_PKEY_free(p->key);
    p->cert = NULL;
    p->key = NULL;
}

/* ---- The request ---- */

/* Letters, digits, '-' and '_' in non-empty labels of at most 63. */
static bool valid_hostname(const char *s)
{
    size_t label = 0;

    if (strlen(s) > 253)
        return false;
    for (const char *c = s;; c++) {
        if (*c == '.' || *c == '\0') {
            if (label == 0 || label > 63)
                return false;
            if (*c == '\0')
                return true;
            label = 0;
        } else if (isalnum((unsigned char)*c) || *c == '-' || *c == '_') {
            label++;
        } else {
            return false;
        }
    }
}

static int check_req(struct run *r, const struct fv_certs_req *req)
{
    unsigned char ip[16];

    if (req == NULL || req->dir == NULL || req->dir[0] == '\0')
        return say(r, -FV_ECONFIG, "no directory given for the TLS certificates");
    r->dir = req->dir;
    if (strlen(r->dir) >= PATH_MAX - NAME_ROOM)
        return say(r, -ENAMETOOLONG, "certificate directory name too long: %.64s...", r->dir);
    if (req->server_name == NULL || req->server_name[0] == '\0')
        return say(r, -FV_ECONFIG, "no server name given for the certificate in %s", r->dir);
    r->server_name = req->server_name;
    r->name_is_ip =
        inet_pton(AF_INET, r->server_name, ip) == 1 || inet_pton(AF_INET6, r->server_name, ip) == 1;
    if (!r->name_is_ip && !valid_hostname(r->server_name))
        return say(r, -FV_ECONFIG,
                   "server name \"%.80s\" for %s/%s is neither an IP address nor a host name",
                   r->server_name, r->dir, FV_CERTS_SERVER_CERT);
    r->server_cn = strlen(r->server_name) <= MAX_CN ? r->server_name : SERVER_CN_FALLBACK;
    if (req->days > MAX_DAYS)
        return say(r, -FV_ECONFIG, "certificate validity of %u days for %s is over %d days",
                   (unsigned)req->days, r->dir, MAX_DAYS);
    r->days = req->days == 0 ? DEFAULT_DAYS : (int)req->days;
    /* A validity shorter than twice the renewal window would make every
     * call regenerate; renew such certificates at half their life. */
    r->renew_days = r->days / 2 < RENEW_DAYS ? r->days / 2 : RENEW_DAYS;
    return 0;
}

/* ---- The directory ---- */

/* mkdir -p: what it creates gets mode 0700; what exists stays as it is. */
static int make_dirs(struct run *r)
{
    char path[PATH_MAX];
    struct stat st;

    snprintf(path, sizeof(path), "%s", r->dir);
    for (char *p = path + 1;; p++) {
        char c = *p;

        if (c != '/' && c != '\0')
            continue;
        *p = '\0';
        if (mkdir(path, 0700) < 0 && errno != EEXIST) {
            int e = errno;
            return say(r, -e, "cannot create directory %s: %s", path, strerror(e));
        }
        *p = c;
        if (c == '\0')
            break;
    }
    if (stat(r->dir, &st) < 0) {
        int e = errno;
        return say(r, -e, "cannot use directory %s: %s", r->dir, strerror(e));
    }
    if (!S_ISDIR(st.st_mode))
        return say(r, -ENOTDIR, "cannot use directory %s: %s", r->dir, strerror(ENOTDIR));
    return 0;
}

/* Serializes callers on the same directory; closing *fd releases it. */
static int lock_dir(struct run *r, int *fd)
{
    *fd = open(r->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (*fd < 0) {
        int e = errno;
        return say(r, -e, "cannot open directory %s: %s", r->dir, strerror(e));
    }
    if (flock(*fd, LOCK_EX) < 0) {
        int e = errno;
        return say(r, -e, "cannot lock directory %s: %s", r->dir, strerror(e));
    }
    return 0;
}

/* ---- Reading ---- */

/* Never ask for a passphrase on the terminal: an encrypted key is unusable. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

/* Reads a certificate (cert != NULL) or a key.  -ENOENT (without a
 * sentence) when the file is missing, -FV_ETLS when it does not parse. */
static int load_pem(struct run *r, const char *name, X509 **cert, EVP_PKEY **key)
{
    char path[PATH_MAX];
    FILE *f;

    path_of(r, name, path);
    f = fopen(path, "re");
    if (f == NULL) {
        int e = errno;
        if (e == ENOENT)
            return -ENOENT;
        return say(r, -e, "cannot read %s: %s", path, strerror(e));
    }
    if (cert != NULL)
        *cert = PEM_read_X509(f, NULL, no_passphrase, NULL);
    else
        *key = PEM_read_PrivateKey(f, NULL, no_passphrase, NULL);
    fclose(f);
    if (cert != NULL ? *cert == NULL : *key == NULL)
        return ssl_fail(r, "cannot parse", path);
    return 0;
}

/* Both files, or -ENOENT when either is missing. */
static int load_pair(struct run *r, const char *cert_name, const char *key_name, struct pair *p)
{
    char path[PATH_MAX];
    int rc;

    path_of(r, cert_name, path);
    if (access(path, F_OK) < 0 && errno == ENOENT)
        return -ENOENT;
    path_of(r, key_name, path);
    if (access(path, F_OK) < 0 && errno == ENOENT)
        return -ENOENT;
    rc = load_pem(r, cert_name, &p->cert, NULL);
    if (rc == 0)
        rc = load_pem(r, key_name, NULL, &p->key);
    if (rc < 0)
        pair_free(p);
    return rc;
}

/* Valid now, and still valid renew_days from now. */
static bool fresh(const struct run *r, const X509 *x)
{
    time_t now = time(NULL);
    time_t later = now + (time_t)r->renew_days * 86400;

    return X509_cmp_time(X509_get0_notBefore(x), &now) < 0 &&
           X509_cmp_time(X509_get0_notAfter(x), &later) > 0;
}

/* ---- Writing ---- */

/* Writes a certificate (cert != NULL) or a key to a synced temporary file
 * next to dir/name. */
static int stage_pem(struct run *r, const char *name, X509 *cert, EVP_PKEY *key, struct staged *s)
{
    FILE *f;
    int fd, ok, e;

    path_of(r, name, s->path);
    snprintf(s->tmp, sizeof(s->tmp), "%s/.%s.XXXXXX", r->dir, name);
    fd = mkostemp(s->tmp, O_CLOEXEC);
    if (fd < 0) {
        e = errno;
        return say(r, -e, "cannot write %s: %s", s->path, strerror(e));
    }
    s->pending = true;
    f = fdopen(fd, "w");
    if (f == NULL) {
        e = errno;
        close(fd);
        return say(r, -e, "cannot write %s: %s", s->path, strerror(e));
    }
    errno = 0;
    ok = fchmod(fd, cert != NULL ? 0644 : 0600) == 0;
    if (ok)
        ok = cert != NULL ? PEM_write_X509(f, cert)
                          : PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL);
    ok = ok && fflush(f) == 0 && fsync(fd) == 0;
    e = errno != 0 ? errno : EIO;
    if (fclose(f) != 0 && ok) {
        ok = 0;
        e = errno;
    }
    ERR_clear_error();
    if (!ok)
        return say(r, -e, "cannot write %s: %s", s->path, strerror(e));
    return 0;
}

static int commit(struct run *r, struct staged *s)
{
    if (rename(s->tmp, s->path) < 0) {
        int e = errno;
        return say(r, -e, "cannot write %s: %s", s->path, strerror(e));
    }
    s->pending = false;
    r->wrote = true;
    return 0;
}

static void discard(struct staged *s)
{
    if (s->pending)
        unlink(s->tmp);
    s->pending = false;
}

/* Both files are written before either is renamed, so a crash leaves at
 * worst a mismatched pair, which the next call notices. */
static int write_pair(struct run *r, const char *cert_name, const char *key_name,
                      const struct pair *p)
{
    struct staged k = {.pending = false}, c = {.pending = false};
    int rc;

    rc = stage_pem(r, key_name, NULL, p->key, &k);
    if (rc == 0)
        rc = stage_pem(r, cert_name, p->cert, NULL, &c);
    if (rc == 0)
        rc = commit(r, &k);
    if (rc == 0)
        rc = commit(r, &c);
    discard(&k);
    discard(&c);
    return rc;
}

/* ---- Building certificates ---- */

static int new_key(struct run *r, const char *path, EVP_PKEY **out)
{
    *out = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    if (*out == NULL)
        return ssl_fail(r, "cannot generate a key for", path);
    return 0;
}

/* A random 128-bit serial number (RFC 5280 allows up to 20 octets). */
static int set_serial(X509 *x)
{
    unsigned char buf[16];
    BIGNUM *bn;
    int ok;

    if (RAND_bytes(buf, sizeof(buf)) != 1)
        return 0;
    bn = BN_bin2bn(buf, sizeof(buf), NULL);
    ok = bn != NULL && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL;
    BN_free(bn);
    return ok;
}

static int set_names(X509 *x, const char *cn, X509 *issuer)
{
    X509_NAME *name = X509_NAME_new();
    int ok;

    ok = name != NULL &&
         X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, (const unsigned char *)ORG, -1, -1,
                                    0) &&
         X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1,
                                    0) &&
         X509_set_subject_name(x, name) &&
         X509_set_issuer_name(x, issuer != NULL ? X509_get_subject_name(issuer) : name);
    X509_NAME_free(name);
    return ok;
}

/* From BACKDATE_S ago for r->days, but never past the issuer's end. */
static int set_validity(const struct run *r, X509 *x, X509 *issuer)
{
    if (X509_gmtime_adj(X509_getm_notBefore(x), -BACKDATE_S) == NULL ||
        X509_time_adj_ex(X509_getm_notAfter(x), r->days, 0, NULL) == NULL)
        return 0;
    if (issuer != NULL && ASN1_TIME_compare(X509_get0_notAfter(x), X509_get0_notAfter(issuer)) > 0)
        return X509_set1_notAfter(x, X509_get0_notAfter(issuer));
    return 1;
}

/* A version 3 certificate for key, without extensions or signature;
 * issuer NULL means self-signed.  NULL on failure (OpenSSL's error queue
 * says why). */
static X509 *new_cert(const struct run *r, const char *cn, EVP_PKEY *key, X509 *issuer)
{
    X509 *x = X509_new();

    if (x == NULL)
        return NULL;
    if (!X509_set_version(x, X509_VERSION_3) || !set_serial(x) || !set_names(x, cn, issuer) ||
        !set_validity(r, x, issuer) || !X509_set_pubkey(x, key)) {
        X509_free(x);
        return NULL;
    }
    return x;
}

/* Adds one extension written in openssl.cnf syntax. */
static int add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX v3;
    X509_EXTENSION *ext;
    int ok;

    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, issuer != NULL ? issuer : x, x, NULL, NULL, 0);
    ext = X509V3_EXT_nconf_nid(NULL, &v3, nid, value);
    if (ext == NULL)
        return 0;
    ok = X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    return ok;
}

static int make_ca(struct run *r)
{
    char path[PATH_MAX], cn[64];
    struct pair *ca = &r->ca;
    int rc;

    pair_free(ca);
    path_of(r, FV_CERTS_CA_CERT, path);
    rc = new_key(r, path, &ca->key);
    if (rc < 0)
        return rc;
    /* A CN of its own per CA, so that a trust store holding an old and a
     * new one tells them apart by name too. */
    snprintf(cn, sizeof(cn), "flowvis-ca@%lld", (long long)time(NULL));
    ca->cert = new_cert(r, cn, ca->key, NULL);
    /* The subjectKeyIdentifier must exist before the authority one that
     * copies it. */
    if (ca->cert == NULL || !add_ext(ca->cert, NULL, NID_basic_constraints, "critical,CA:TRUE") ||
        !add_ext(ca->cert, NULL, NID_key_usage, "critical,keyCertSign,cRLSign") ||
        !add_ext(ca->cert, NULL, NID_subject_key_identifier, "hash") ||
        !add_ext(ca->cert, NULL, NID_authority_key_identifier, "keyid:always") ||
        X509_sign(ca->cert, ca->key, EVP_sha256()) <= 0)
        return ssl_fail(r, "cannot create", path);
    return write_pair(r, FV_CERTS_CA_CERT, FV_CERTS_CA_KEY, ca);
}

/* ---- subjectAltName ---- */

/* Distinct IP addresses; addresses past MAX_SAN_IPS are left out. */
struct ip_set {
    unsigned char addr[MAX_SAN_IPS][16]; /* network byte order */
    int len[MAX_SAN_IPS];                /* 4 or 16 */
    size_t n;                            /* addresses held */
};

static void ip_add(struct ip_set *s, const void *addr, int len)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->len[i] == len && memcmp(s->addr[i], addr, (size_t)len) == 0)
            return;
    if (s->n == MAX_SAN_IPS)
        return;
    memcpy(s->addr[s->n], addr, (size_t)len);
    s->len[s->n++] = len;
}

/* A name that does not resolve (yet) is no error: its DNS entry still
 * covers it once it does. */
static void ip_add_resolved(struct ip_set *s, const char *name)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;

    if (getaddrinfo(name, NULL, &hints, &res) != 0)
        return;
    for (const struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
        if (ai->ai_family == AF_INET)
            ip_add(s, &((const struct sockaddr_in *)ai->ai_addr)->sin_addr, 4);
        else if (ai->ai_family == AF_INET6)
            ip_add(s, &((const struct sockaddr_in6 *)ai->ai_addr)->sin6_addr, 16);
    }
    freeaddrinfo(res);
}

static int push_name(GENERAL_NAMES *names, int type, const void *data, int len)
{
    GENERAL_NAME *gn = GENERAL_NAME_new();
    ASN1_STRING *s = type == GEN_DNS ? ASN1_IA5STRING_new() : ASN1_OCTET_STRING_new();

    if (gn == NULL || s == NULL || !ASN1_STRING_set(s, data, len)) {
        GENERAL_NAME_free(gn);
        ASN1_STRING_free(s);
        return 0;
    }
    GENERAL_NAME_set0_value(gn, type, s);
    if (!sk_GENERAL_NAME_push(names, gn)) {
        GENERAL_NAME_free(gn);
        return 0;
    }
    return 1;
}

/* server_name, "localhost", server_name's addresses, 127.0.0.1 and ::1. */
static int add_server_san(const struct run *r, X509 *x)
{
    static const unsigned char v4_loopback[4] = {127, 0, 0, 1};
    GENERAL_NAMES *names = GENERAL_NAMES_new();
    struct ip_set ips = {.n = 0};
    unsigned char ip[16];
    int ok = names != NULL;

    if (inet_pton(AF_INET, r->server_name, ip) == 1)
        ip_add(&ips, ip, 4);
    else if (inet_pton(AF_INET6, r->server_name, ip) == 1)
        ip_add(&ips, ip, 16);
    else
        ip_add_resolved(&ips, r->server_name);
    ip_add(&ips, v4_loopback, 4);
    ip_add(&ips, &in6addr_loopback, 16);
    if (ok && !r->name_is_ip)
        ok = push_name(names, GEN_DNS, r->server_name, (int)strlen(r->server_name));
    if (ok && strcasecmp(r->server_name, "localhost") != 0)
        ok = push_name(names, GEN_DNS, "localhost", 9);
    for (size_t i = 0; ok && i < ips.n; i++)
        ok = push_name(names, GEN_IPADD, ips.addr[i], ips.len[i]);
    if (ok)
        ok = X509_add1_ext_i2d(x, NID_subject_alt_name, names, 0, X509V3_ADD_DEFAULT) == 1;
    GENERAL_NAMES_free(names);
    return ok;
}

/* ---- Leaf certificates ---- */

static int make_leaf(struct run *r, const struct leaf *l, struct pair *p)
{
    char path[PATH_MAX];
    X509 *ca = r->ca.cert;
    X509 *x;
    int rc;

    path_of(r, l->cert_name, path);
    rc = new_key(r, path, &p->key);
    if (rc < 0)
        return rc;
    x = new_cert(r, l->server ? r->server_cn : CLIENT_CN, p->key, ca);
    p->cert = x;
    if (x == NULL || !add_ext(x, ca, NID_basic_constraints, "CA:FALSE") ||
        !add_ext(x, ca, NID_key_usage, "critical,digitalSignature,keyEncipherment") ||
        !add_ext(x, ca, NID_ext_key_usage, l->eku) ||
        !add_ext(x, ca, NID_subject_key_identifier, "hash") ||
        !add_ext(x, ca, NID_authority_key_identifier, "keyid:always") ||
        (l->server && !add_server_san(r, x)) || X509_sign(x, r->ca.key, EVP_sha256()) <= 0)
        return ssl_fail(r, "cannot create", path);
    return 0;
}

/* Whether an existing certificate and key can stay. */
static bool leaf_is_good(const struct run *r, const struct leaf *l, const struct pair *p)
{
    X509 *ca = r->ca.cert;
    bool good;

    good = X509_check_private_key(p->cert, p->key) == 1 &&
           X509_check_issued(ca, p->cert) == X509_V_OK &&
           X509_verify(p->cert, X509_get0_pubkey(ca)) == 1 &&
           X509_check_purpose(p->cert, l->purpose, 0) == 1 && fresh(r, p->cert);
    if (good && l->server) {
        if (r->name_is_ip)
            good = X509_check_ip_asc(p->cert, r->server_name, 0) == 1;
        else
            good = X509_check_host(p->cert, r->server_name, 0, X509_CHECK_FLAG_NEVER_CHECK_SUBJECT,
                                   NULL) == 1;
    }
    ERR_clear_error();
    return good;
}

/* Keeps a good pair; replaces a missing, unparsable or unfit one.  Only
 * errors that a new file would not cure (a file that cannot be read) stop. */
static int ensure_leaf(struct run *r, const struct leaf *l)
{
    struct pair p = {NULL, NULL};
    int rc = load_pair(r, l->cert_name, l->key_name, &p);

    if (rc == 0 && leaf_is_good(r, l, &p))
        goto out;
    if (rc < 0 && rc != -ENOENT && rc != -FV_ETLS)
        goto out;
    pair_free(&p);
    rc = make_leaf(r, l, &p);
    if (rc == 0)
        rc = write_pair(r, l->cert_name, l->key_name, &p);
out:
    pair_free(&p);
    return rc;
}

/* ---- The CA ---- */

/* Agents trust the CA, so one that exists but is unusable is an error for a
 * person to look at, not something to replace behind their back. */
static int ensure_ca(struct run *r)
{
    char cert_path[PATH_MAX], key_path[PATH_MAX];
    int rc = load_pair(r, FV_CERTS_CA_CERT, FV_CERTS_CA_KEY, &r->ca);

    if (rc == -ENOENT)
        return make_ca(r);
    if (rc < 0)
        return rc;
    path_of(r, FV_CERTS_CA_CERT, cert_path);
    path_of(r, FV_CERTS_CA_KEY, key_path);
    if (X509_check_private_key(r->ca.cert, r->ca.key) != 1) {
        ERR_clear_error();
        return say(r, -FV_ETLS, "%s does not match %s; remove both to generate a new CA", key_path,
                   cert_path);
    }
    if (X509_check_ca(r->ca.cert) == 0)
        return say(r, -FV_ETLS, "%s is not a CA certificate; remove it and %s to generate a new CA",
                   cert_path, key_path);
    if (!fresh(r, r->ca.cert))
        return make_ca(r);
    return 0;
}

int fv_certs_ensure(const struct fv_certs_req *req, char *err, size_t errlen)
{
    struct run r = {.err = err, .errlen = errlen};
    int dirfd = -1;
    int rc;

    rc = check_req(&r, req);
    if (rc == 0)
        rc = make_dirs(&r);
    if (rc == 0)
        rc = lock_dir(&r, &dirfd);
    if (rc == 0)
        rc = ensure_ca(&r);
    if (rc == 0)
        rc = ensure_leaf(&r, &server_leaf);
    if (rc == 0)
        rc = ensure_leaf(&r, &client_leaf);
    /* The renames must survive a crash as well as the data. */
    if (rc == 0 && r.wrote && fsync(dirfd) < 0) {
        int e = errno;
        rc = say(&r, -e, "cannot sync directory %s: %s", r.dir, strerror(e));
    }
    if (rc == 0 && errlen > 0)
        err[0] = '\0';
    if (dirfd >= 0)
        close(dirfd);
    pair_free(&r.ca);
    ERR_clear_error();
    return rc;
}
