/*
 * test_agg_certs.c - the aggregator's certificate generator
 * (aggregator/certs.h): what it writes, that the result verifies with
 * OpenSSL and works for mutual TLS through the project's own TLS contexts
 * (ipfix/tls.h), that it keeps what is good and replaces only what no
 * longer fits, and that errors name the file.
 *
 * Each test runs in a fresh mkdtemp() directory, removed afterwards; the
 * certificates go into its "certs" subdirectory, which fv_certs_ensure()
 * creates.  Server names are IP literals, "localhost" or names under .svc
 * that do not resolve, so no test depends on DNS.
 */
#include "testutil.h"

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "aggregator/certs.h"
#include "ipfix/tls.h"

#define NAME "flow-aggregator.flowvis.svc"

static const char *const all_files[] = {
    FV_CERTS_CA_CERT,    FV_CERTS_CA_KEY,      FV_CERTS_SERVER_CERT,
    FV_CERTS_SERVER_KEY, FV_CERTS_CLIENT_CERT, FV_CERTS_CLIENT_KEY,
};
#define NFILES (sizeof(all_files) / sizeof(all_files[0]))

/* ---- Fixture: a private directory ---- */

struct fx {
    char root[64]; /* from mkdtemp(), removed by teardown */
    char dir[128]; /* root/certs, the directory under test */
    char err[512]; /* the last error sentence */
};

static int setup(void **state)
{
    struct fx *fx = calloc(1, sizeof(*fx));

    assert_non_null(fx);
    strcpy(fx->root, "/tmp/fv-certs-test-XXXXXX");
    assert_non_null(mkdtemp(fx->root));
    snprintf(fx->dir, sizeof(fx->dir), "%s/certs", fx->root);
    *state = fx;
    return 0;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int teardown(void **state)
{
    struct fx *fx = *state;

    nftw(fx->root, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(fx);
    return 0;
}

/* ---- Helpers ---- */

static void join(const char *dir, const char *name, char *out, size_t n)
{
    assert_true((size_t)snprintf(out, n, "%s/%s", dir, name) < n);
}

static int ensure_in(struct fx *fx, const char *dir, const char *server_name, uint32_t days)
{
    struct fv_certs_req req = {.dir = dir, .server_name = server_name, .days = days};

    return fv_certs_ensure(&req, fx->err, sizeof(fx->err));
}

/* fv_certs_ensure() on the fixture's directory, which must succeed. */
static void ensure(struct fx *fx, const char *server_name, uint32_t days)
{
    int rc = ensure_in(fx, fx->dir, server_name, days);

    if (rc != 0)
        fail_msg("fv_certs_ensure: %s (%s)", fx->err, fv_strerror(rc));
}

static X509 *load_cert(const char *dir, const char *name)
{
    char path[256];
    FILE *f;
    X509 *x;

    join(dir, name, path, sizeof(path));
    f = fopen(path, "r");
    if (f == NULL)
        fail_msg("cannot open %s: %s", path, strerror(errno));
    x = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    if (x == NULL)
        fail_msg("cannot parse %s", path);
    return x;
}

static EVP_PKEY *load_key(const char *dir, const char *name)
{
    char path[256];
    FILE *f;
    EVP_PKEY *k;

    join(dir, name, path, sizeof(path));
    f = fopen(path, "r");
    if (f == NULL)
        fail_msg("cannot open %s: %s", path, strerror(errno));
    k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    if (k == NULL)
        fail_msg("cannot parse %s", path);
    return k;
}

static void save_cert(const char *dir, const char *name, X509 *x)
{
    char path[256];
    FILE *f;

    join(dir, name, path, sizeof(path));
    f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(PEM_write_X509(f, x), 1);
    assert_int_equal(fclose(f), 0);
}

/* The bytes and the inode of a file: a rewrite changes the inode. */
struct blob {
    unsigned char data[4096];
    size_t len;
    ino_t ino;
};

static void slurp(const char *dir, const char *name, struct blob *b)
{
    char path[256];
    struct stat st;
    FILE *f;

    join(dir, name, path, sizeof(path));
    f = fopen(path, "r");
    if (f == NULL)
        fail_msg("cannot open %s: %s", path, strerror(errno));
    assert_int_equal(fstat(fileno(f), &st), 0);
    b->ino = st.st_ino;
    b->len = fread(b->data, 1, sizeof(b->data), f);
    assert_true(b->len > 0 && b->len < sizeof(b->data));
    fclose(f);
}

static bool same_file(const struct blob *a, const struct blob *b)
{
    return a->ino == b->ino && a->len == b->len && memcmp(a->data, b->data, a->len) == 0;
}

static void copy_file(const char *from_dir, const char *to_dir, const char *name)
{
    struct blob b;
    char path[256];
    FILE *f;

    slurp(from_dir, name, &b);
    join(to_dir, name, path, sizeof(path));
    f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(b.data, 1, b.len, f), b.len);
    assert_int_equal(fclose(f), 0);
}

static mode_t mode_of(const char *dir, const char *name)
{
    char path[256];
    struct stat st;

    join(dir, name, path, sizeof(path));
    assert_int_equal(stat(path, &st), 0);
    return st.st_mode & 07777;
}

/* X509_verify_cert() of cert against ca alone, for one purpose: X509_V_OK
 * or the X509_V_ERR_* code. */
static int verify_error(X509 *ca, X509 *cert, int purpose)
{
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    int err;

    assert_non_null(store);
    assert_non_null(ctx);
    assert_int_equal(X509_STORE_add_cert(store, ca), 1);
    assert_int_equal(X509_STORE_CTX_init(ctx, store, cert, NULL), 1);
    assert_int_equal(X509_STORE_CTX_set_purpose(ctx, purpose), 1);
    err = X509_verify_cert(ctx) == 1 ? X509_V_OK : X509_STORE_CTX_get_error(ctx);
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    return err;
}

#define assert_verifies(ca, cert, purpose)                                                         \
    do {                                                                                           \
        int verr_ = verify_error((ca), (cert), (purpose));                                         \
        if (verr_ != X509_V_OK)                                                                    \
            fail_msg("%s does not verify: %s", #cert, X509_verify_cert_error_string(verr_));       \
    } while (0)

static bool has_host(X509 *x, const char *name)
{
    return X509_check_host(x, name, 0, X509_CHECK_FLAG_NEVER_CHECK_SUBJECT, NULL) == 1;
}

static bool has_ip(X509 *x, const char *ip)
{
    return X509_check_ip_asc(x, ip, 0) == 1;
}

static void assert_cn(X509 *x, const char *want)
{
    char cn[128];

    assert_true(
        X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn, sizeof(cn)) > 0);
    assert_string_equal(cn, want);
}

static bool extension_is_critical(X509 *x, int nid)
{
    int i = X509_get_ext_by_NID(x, nid, -1);

    assert_true(i >= 0);
    return X509_EXTENSION_get_critical(X509_get_ext(x, i)) == 1;
}

/* Days from now until x expires, rounded down. */
static long days_left(X509 *x)
{
    int days, secs;

    assert_int_equal(ASN1_TIME_diff(&days, &secs, NULL, X509_get0_notAfter(x)), 1);
    return days;
}

static void assert_p256(EVP_PKEY *k)
{
    char group[64];

    assert_int_equal(EVP_PKEY_get_base_id(k), EVP_PKEY_EC);
    assert_int_equal(EVP_PKEY_get_group_name(k, group, sizeof(group), NULL), 1);
    assert_string_equal(group, "prime256v1");
}

/* ---- What is written ---- */

static void test_first_call_creates_the_directory_and_six_files(void **state)
{
    struct fx *fx = *state;
    struct stat st;

    ensure(fx, NAME, 0);
    assert_int_equal(stat(fx->dir, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0700);
    assert_int_equal(mode_of(fx->dir, FV_CERTS_CA_KEY), 0600);
    assert_int_equal(mode_of(fx->dir, FV_CERTS_SERVER_KEY), 0600);
    assert_int_equal(mode_of(fx->dir, FV_CERTS_CLIENT_KEY), 0600);
    assert_int_equal(mode_of(fx->dir, FV_CERTS_CA_CERT), 0644);
    assert_int_equal(mode_of(fx->dir, FV_CERTS_SERVER_CERT), 0644);
    assert_int_equal(mode_of(fx->dir, FV_CERTS_CLIENT_CERT), 0644);
    assert_string_equal(fx->err, "");
}

static void test_no_temporary_files_are_left_behind(void **state)
{
    struct fx *fx = *state;
    char cmd[256];
    FILE *p;
    int n;

    ensure(fx, NAME, 0);
    snprintf(cmd, sizeof(cmd), "ls -A '%s' | wc -l", fx->dir);
    p = popen(cmd, "r");
    assert_non_null(p);
    assert_int_equal(fscanf(p, "%d", &n), 1);
    pclose(p);
    assert_int_equal(n, (int)NFILES);
}

static void test_ca_is_a_self_signed_p256_ca_with_key_identifiers(void **state)
{
    struct fx *fx = *state;
    X509 *ca;
    EVP_PKEY *key;
    BIGNUM *serial;

    ensure(fx, NAME, 0);
    ca = load_cert(fx->dir, FV_CERTS_CA_CERT);
    key = load_key(fx->dir, FV_CERTS_CA_KEY);
    assert_int_equal(X509_check_private_key(ca, key), 1);
    assert_p256(key);
    assert_int_equal(X509_check_ca(ca), 1);
    assert_true(extension_is_critical(ca, NID_basic_constraints));
    assert_int_equal(X509_get_key_usage(ca), KU_KEY_CERT_SIGN | KU_CRL_SIGN);
    assert_non_null(X509_get0_subject_key_id(ca));
    assert_non_null(X509_get0_authority_key_id(ca));
    assert_int_equal(
        ASN1_OCTET_STRING_cmp(X509_get0_subject_key_id(ca), X509_get0_authority_key_id(ca)), 0);
    assert_true(X509_get_extension_flags(ca) & EXFLAG_SS);
    assert_verifies(ca, ca, X509_PURPOSE_ANY);
    assert_int_equal(X509_get_version(ca), X509_VERSION_3);
    serial = ASN1_INTEGER_to_BN(X509_get0_serialNumber(ca), NULL);
    assert_non_null(serial);
    assert_true(BN_num_bits(serial) <= 128 && BN_num_bits(serial) > 64);
    assert_in_range(days_left(ca), 364, 365);
    BN_free(serial);
    EVP_PKEY_free(key);
    X509_free(ca);
}

static void test_server_cert_verifies_for_its_name_and_loopback(void **state)
{
    struct fx *fx = *state;
    X509 *ca, *srv;
    EVP_PKEY *key;

    ensure(fx, NAME, 0);
    ca = load_cert(fx->dir, FV_CERTS_CA_CERT);
    srv = load_cert(fx->dir, FV_CERTS_SERVER_CERT);
    key = load_key(fx->dir, FV_CERTS_SERVER_KEY);
    assert_verifies(ca, srv, X509_PURPOSE_SSL_SERVER);
    assert_int_equal(verify_error(ca, srv, X509_PURPOSE_SSL_CLIENT), X509_V_ERR_INVALID_PURPOSE);
    assert_true(has_host(srv, NAME));
    assert_true(has_host(srv, "localhost"));
    assert_true(has_ip(srv, "127.0.0.1"));
    assert_true(has_ip(srv, "::1"));
    assert_false(has_host(srv, "other.flowvis.svc"));
    assert_false(has_ip(srv, "10.0.0.1"));
    assert_cn(srv, NAME);
    assert_int_equal(X509_check_private_key(srv, key), 1);
    assert_p256(key);
    assert_int_equal(X509_check_ca(srv), 0);
    assert_int_equal(X509_get_key_usage(srv), KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT);
    assert_int_equal(X509_get_extended_key_usage(srv), XKU_SSL_SERVER);
    assert_non_null(X509_get0_authority_key_id(srv));
    assert_int_equal(
        ASN1_OCTET_STRING_cmp(X509_get0_subject_key_id(ca), X509_get0_authority_key_id(srv)), 0);
    assert_in_range(days_left(srv), 364, 365);
    EVP_PKEY_free(key);
    X509_free(srv);
    X509_free(ca);
}

static void test_ip_literal_server_name_gets_an_ip_entry(void **state)
{
    struct fx *fx = *state;
    X509 *ca, *srv;

    ensure(fx, "172.18.0.1", 0);
    ca = load_cert(fx->dir, FV_CERTS_CA_CERT);
    srv = load_cert(fx->dir, FV_CERTS_SERVER_CERT);
    assert_verifies(ca, srv, X509_PURPOSE_SSL_SERVER);
    assert_true(has_ip(srv, "172.18.0.1"));
    assert_false(has_host(srv, "172.18.0.1")); /* an IP, not a DNS entry */
    assert_true(has_ip(srv, "127.0.0.1"));
    assert_true(has_host(srv, "localhost"));
    assert_cn(srv, "172.18.0.1");
    X509_free(srv);
    X509_free(ca);
}

static void test_ipv6_literal_server_name_gets_an_ip_entry(void **state)
{
    struct fx *fx = *state;
    X509 *srv;

    ensure(fx, "fd00:10:96::a", 0);
    srv = load_cert(fx->dir, FV_CERTS_SERVER_CERT);
    assert_true(has_ip(srv, "fd00:10:96::a"));
    assert_true(has_ip(srv, "fd00:10:96:0:0:0:0:a"));
    assert_true(has_ip(srv, "::1"));
    X509_free(srv);
}

static void test_localhost_as_server_name_is_listed_once(void **state)
{
    struct fx *fx = *state;
    GENERAL_NAMES *names;
    X509 *srv;
    int dns = 0;

    ensure(fx, "localhost", 0);
    srv = load_cert(fx->dir, FV_CERTS_SERVER_CERT);
    names = X509_get_ext_d2i(srv, NID_subject_alt_name, NULL, NULL);
    assert_non_null(names);
    for (int i = 0; i < sk_GENERAL_NAME_num(names); i++)
        if (sk_GENERAL_NAME_value(names, i)->type == GEN_DNS)
            dns++;
    assert_int_equal(dns, 1);
    /* "localhost" resolves to loopback, which is listed anyway: no repeats. */
    assert_int_equal(sk_GENERAL_NAME_num(names), 3);
    GENERAL_NAMES_free(names);
    X509_free(srv);
}

static void test_long_server_name_goes_into_san_with_a_short_cn(void **state)
{
    struct fx *fx = *state;
    char name[128];
    X509 *srv;

    snprintf(name, sizeof(name), "%s.%s.%s", "flow-aggregator-with-a-long-name",
             "in-a-namespace-with-a-long-name", "svc.cluster.local");
    assert_true(strlen(name) > 64);
    ensure(fx, name, 0);
    srv = load_cert(fx->dir, FV_CERTS_SERVER_CERT);
    assert_true(has_host(srv, name));
    assert_cn(srv, "flowvis-aggregator");
    X509_free(srv);
}

static void test_client_cert_is_for_client_auth_and_verifies(void **state)
{
    struct fx *fx = *state;
    X509 *ca, *cli;
    EVP_PKEY *key;

    ensure(fx, NAME, 0);
    ca = load_cert(fx->dir, FV_CERTS_CA_CERT);
    cli = load_cert(fx->dir, FV_CERTS_CLIENT_CERT);
    key = load_key(fx->dir, FV_CERTS_CLIENT_KEY);
    assert_verifies(ca, cli, X509_PURPOSE_SSL_CLIENT);
    assert_int_equal(verify_error(ca, cli, X509_PURPOSE_SSL_SERVER), X509_V_ERR_INVALID_PURPOSE);
    assert_int_equal(X509_get_extended_key_usage(cli), XKU_SSL_CLIENT);
    assert_int_equal(X509_check_ca(cli), 0);
    assert_cn(cli, "flowvis-agent");
    assert_int_equal(X509_check_private_key(cli, key), 1);
    assert_p256(key);
    EVP_PKEY_free(key);
    X509_free(cli);
    X509_free(ca);
}

static void test_serials_differ(void **state)
{
    struct fx *fx = *state;
    X509 *ca, *srv, *cli;

    ensure(fx, NAME, 0);
    ca = load_cert(fx->dir, FV_CERTS_CA_CERT);
    srv = load_cert(fx->dir, FV_CERTS_SERVER_CERT);
    cli = load_cert(fx->dir, FV_CERTS_CLIENT_CERT);
    assert_int_not_equal(ASN1_INTEGER_cmp(X509_get0_serialNumber(ca), X509_get0_serialNumber(srv)),
                         0);
    assert_int_not_equal(ASN1_INTEGER_cmp(X509_get0_serialNumber(srv), X509_get0_serialNumber(cli)),
                         0);
    X509_free(cli);
    X509_free(srv);
    X509_free(ca);
}

/* ---- What is kept and what is replaced ---- */

static void snapshot(const char *dir, struct blob b[NFILES])
{
    for (size_t i = 0; i < NFILES; i++)
        slurp(dir, all_files[i], &b[i]);
}

static void test_second_call_changes_nothing(void **state)
{
    struct fx *fx = *state;
    static struct blob before[NFILES], after[NFILES];

    ensure(fx, NAME, 0);
    snapshot(fx->dir, before);
    ensure(fx, NAME, 0);
    snapshot(fx->dir, after);
    for (size_t i = 0; i < NFILES; i++)
        if (!same_file(&before[i], &after[i]))
            fail_msg("%s was rewritten", all_files[i]);
}

static void test_short_validity_is_not_regenerated_on_every_call(void **state)
{
    struct fx *fx = *state;
    static struct blob before[NFILES], after[NFILES];

    ensure(fx, NAME, 2);
    snapshot(fx->dir, before);
    ensure(fx, NAME, 2);
    snapshot(fx->dir, after);
    for (size_t i = 0; i < NFILES; i++)
        if (!same_file(&before[i], &after[i]))
            fail_msg("%s was rewritten", all_files[i]);
}

static void test_new_server_name_replaces_only_the_server_cert(void **state)
{
    struct fx *fx = *state;
    static struct blob before[NFILES], after[NFILES];
    X509 *ca, *srv;

    ensure(fx, NAME, 0);
    snapshot(fx->dir, before);
    ensure(fx, "other.flowvis.svc", 0);
    snapshot(fx->dir, after);
    for (size_t i = 0; i < NFILES; i++) {
        bool server = strncmp(all_files[i], "server.", 7) == 0;
        if (same_file(&before[i], &after[i]) == server)
            fail_msg("%s %s", all_files[i], server ? "was kept" : "was rewritten");
    }
    ca = load_cert(fx->dir, FV_CERTS_CA_CERT);
    srv = load_cert(fx->dir, FV_CERTS_SERVER_CERT);
    assert_verifies(ca, srv, X509_PURPOSE_SSL_SERVER);
    assert_true(has_host(srv, "other.flowvis.svc"));
    assert_false(has_host(srv, NAME));
    X509_free(srv);
    X509_free(ca);
}

static void test_server_cert_from_another_ca_is_replaced(void **state)
{
    struct fx *fx = *state;
    char other[160];
    struct blob ca_before, ca_after, srv_other, srv_after;
    X509 *ca, *srv;

    snprintf(other, sizeof(other), "%s/other", fx->root);
    assert_int_equal(ensure_in(fx, other, NAME, 0), 0);
    ensure(fx, NAME, 0);
    slurp(fx->dir, FV_CERTS_CA_CERT, &ca_before);
    copy_file(other, fx->dir, FV_CERTS_SERVER_CERT);
    copy_file(other, fx->dir, FV_CERTS_SERVER_KEY);
    slurp(fx->dir, FV_CERTS_SERVER_CERT, &srv_other);
    ensure(fx, NAME, 0);
    slurp(fx->dir, FV_CERTS_CA_CERT, &ca_after);
    slurp(fx->dir, FV_CERTS_SERVER_CERT, &srv_after);
    assert_true(same_file(&ca_before, &ca_after));
    assert_false(srv_other.len == srv_after.len &&
                 memcmp(srv_other.data, srv_after.data, srv_after.len) == 0);
    ca = load_cert(fx->dir, FV_CERTS_CA_CERT);
    srv = load_cert(fx->dir, FV_CERTS_SERVER_CERT);
    assert_verifies(ca, srv, X509_PURPOSE_SSL_SERVER);
    X509_free(srv);
    X509_free(ca);
}

static void test_server_cert_expiring_within_30_days_is_replaced(void **state)
{
    struct fx *fx = *state;
    struct blob ca_before, ca_after;
    X509 *srv;
    EVP_PKEY *ca_key;

    ensure(fx, NAME, 0);
    slurp(fx->dir, FV_CERTS_CA_CERT, &ca_before);
    /* The same certificate, re-signed by the CA with 10 days left. */
    srv = load_cert(fx->dir, FV_CERTS_SERVER_CERT);
    ca_key = load_key(fx->dir, FV_CERTS_CA_KEY);
    assert_non_null(X509_time_adj_ex(X509_getm_notAfter(srv), 10, 0, NULL));
    assert_true(X509_sign(srv, ca_key, EVP_sha256()) > 0);
    save_cert(fx->dir, FV_CERTS_SERVER_CERT, srv);
    X509_free(srv);

    ensure(fx, NAME, 0);
    srv = load_cert(fx->dir, FV_CERTS_SERVER_CERT);
    assert_in_range(days_left(srv), 364, 365);
    slurp(fx->dir, FV_CERTS_CA_CERT, &ca_after);
    assert_true(same_file(&ca_before, &ca_after));
    X509_free(srv);
    EVP_PKEY_free(ca_key);
}

static void test_missing_or_garbled_leaf_files_are_regenerated(void **state)
{
    struct fx *fx = *state;
    char path[256];
    FILE *f;
    X509 *ca, *srv, *cli;
    EVP_PKEY *key;

    ensure(fx, NAME, 0);
    join(fx->dir, FV_CERTS_SERVER_KEY, path, sizeof(path));
    assert_int_equal(unlink(path), 0);
    join(fx->dir, FV_CERTS_CLIENT_CERT, path, sizeof(path));
    f = fopen(path, "w");
    assert_non_null(f);
    fputs("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n", f);
    fclose(f);

    ensure(fx, NAME, 0);
    ca = load_cert(fx->dir, FV_CERTS_CA_CERT);
    srv = load_cert(fx->dir, FV_CERTS_SERVER_CERT);
    cli = load_cert(fx->dir, FV_CERTS_CLIENT_CERT);
    key = load_key(fx->dir, FV_CERTS_SERVER_KEY);
    assert_int_equal(X509_check_private_key(srv, key), 1);
    assert_verifies(ca, srv, X509_PURPOSE_SSL_SERVER);
    assert_verifies(ca, cli, X509_PURPOSE_SSL_CLIENT);
    assert_int_equal(mode_of(fx->dir, FV_CERTS_SERVER_KEY), 0600);
    EVP_PKEY_free(key);
    X509_free(cli);
    X509_free(srv);
    X509_free(ca);
}

static void test_expiring_ca_is_replaced_and_the_leaves_follow(void **state)
{
    struct fx *fx = *state;
    static struct blob before[NFILES], after[NFILES];
    X509 *ca, *srv, *cli;

    ensure(fx, NAME, 20); /* fresh for 20-day certificates ... */
    snapshot(fx->dir, before);
    ensure(fx, NAME, 0); /* ... but not when renewing 30 days ahead */
    snapshot(fx->dir, after);
    for (size_t i = 0; i < NFILES; i++)
        if (same_file(&before[i], &after[i]))
            fail_msg("%s was kept", all_files[i]);
    ca = load_cert(fx->dir, FV_CERTS_CA_CERT);
    srv = load_cert(fx->dir, FV_CERTS_SERVER_CERT);
    cli = load_cert(fx->dir, FV_CERTS_CLIENT_CERT);
    assert_in_range(days_left(ca), 364, 365);
    assert_verifies(ca, srv, X509_PURPOSE_SSL_SERVER);
    assert_verifies(ca, cli, X509_PURPOSE_SSL_CLIENT);
    X509_free(cli);
    X509_free(srv);
    X509_free(ca);
}

static void test_a_leaf_never_outlives_its_ca(void **state)
{
    struct fx *fx = *state;
    char path[256];
    X509 *ca, *srv;

    ensure(fx, NAME, 60);
    join(fx->dir, FV_CERTS_SERVER_CERT, path, sizeof(path));
    assert_int_equal(unlink(path), 0);
    ensure(fx, NAME, 365); /* the 60-day CA is still good: kept */
    ca = load_cert(fx->dir, FV_CERTS_CA_CERT);
    srv = load_cert(fx->dir, FV_CERTS_SERVER_CERT);
    assert_in_range(days_left(ca), 59, 60);
    assert_int_equal(ASN1_TIME_compare(X509_get0_notAfter(srv), X509_get0_notAfter(ca)), 0);
    assert_verifies(ca, srv, X509_PURPOSE_SSL_SERVER);
    X509_free(srv);
    X509_free(ca);
}

static void test_missing_ca_key_makes_a_new_ca(void **state)
{
    struct fx *fx = *state;
    struct blob before, after;
    char path[256];
    X509 *ca, *srv;

    ensure(fx, NAME, 0);
    slurp(fx->dir, FV_CERTS_CA_CERT, &before);
    join(fx->dir, FV_CERTS_CA_KEY, path, sizeof(path));
    assert_int_equal(unlink(path), 0);
    ensure(fx, NAME, 0);
    slurp(fx->dir, FV_CERTS_CA_CERT, &after);
    assert_false(same_file(&before, &after));
    ca = load_cert(fx->dir, FV_CERTS_CA_CERT);
    srv = load_cert(fx->dir, FV_CERTS_SERVER_CERT);
    assert_verifies(ca, srv, X509_PURPOSE_SSL_SERVER);
    X509_free(srv);
    X509_free(ca);
}

/* ---- Errors ---- */

static void test_unwritable_dir_is_an_error_naming_the_path(void **state)
{
    struct fx *fx = *state;
    char plain[160], dir[200];
    FILE *f;
    int rc;

    snprintf(plain, sizeof(plain), "%s/plain", fx->root);
    f = fopen(plain, "w");
    assert_non_null(f);
    fclose(f);
    snprintf(dir, sizeof(dir), "%s/certs", plain);
    rc = ensure_in(fx, dir, NAME, 0);
    assert_int_equal(rc, -ENOTDIR);
    if (strstr(fx->err, dir) == NULL)
        fail_msg("error does not name %s: %s", dir, fx->err);
}

static void test_dir_that_is_a_file_is_an_error_naming_it(void **state)
{
    struct fx *fx = *state;
    FILE *f;
    int rc;

    f = fopen(fx->dir, "w");
    assert_non_null(f);
    fclose(f);
    rc = ensure_in(fx, fx->dir, NAME, 0);
    assert_int_equal(rc, -ENOTDIR);
    if (strstr(fx->err, fx->dir) == NULL)
        fail_msg("error does not name %s: %s", fx->dir, fx->err);
}

static void test_mismatched_ca_key_is_an_error_and_nothing_is_replaced(void **state)
{
    struct fx *fx = *state;
    static struct blob before[NFILES], after[NFILES];
    char other[160], path[256];
    int rc;

    snprintf(other, sizeof(other), "%s/other", fx->root);
    assert_int_equal(ensure_in(fx, other, NAME, 0), 0);
    ensure(fx, NAME, 0);
    copy_file(other, fx->dir, FV_CERTS_CA_KEY);
    snapshot(fx->dir, before);
    rc = ensure_in(fx, fx->dir, NAME, 0);
    assert_int_equal(rc, -FV_ETLS);
    join(fx->dir, FV_CERTS_CA_KEY, path, sizeof(path));
    if (strstr(fx->err, path) == NULL)
        fail_msg("error does not name %s: %s", path, fx->err);
    snapshot(fx->dir, after);
    for (size_t i = 0; i < NFILES; i++)
        if (!same_file(&before[i], &after[i]))
            fail_msg("%s was rewritten", all_files[i]);
}

static void test_garbled_ca_is_an_error_naming_the_file(void **state)
{
    struct fx *fx = *state;
    char path[256];
    FILE *f;

    ensure(fx, NAME, 0);
    join(fx->dir, FV_CERTS_CA_CERT, path, sizeof(path));
    f = fopen(path, "w");
    assert_non_null(f);
    fputs("not a certificate\n", f);
    fclose(f);
    assert_int_equal(ensure_in(fx, fx->dir, NAME, 0), -FV_ETLS);
    if (strstr(fx->err, path) == NULL)
        fail_msg("error does not name %s: %s", path, fx->err);
}

static void test_bad_requests_are_rejected_before_touching_the_disk(void **state)
{
    struct fx *fx = *state;
    static const char *const bad_names[] = {
        "",      "flow aggregator", "agg..svc", ".agg",         "agg.",
        "*.svc", "agg:4739",        "[::1]",    "fe80::1%eth0",
    };
    char long_name[300];
    struct stat st;

    for (size_t i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++) {
        int rc = ensure_in(fx, fx->dir, bad_names[i], 0);
        if (rc != -FV_ECONFIG)
            fail_msg("\"%s\": expected -FV_ECONFIG, got %d", bad_names[i], rc);
        assert_true(strlen(fx->err) > 0);
    }
    /* Four labels of 63 and three dots: 255 characters, over 253. */
    memset(long_name, 'a', 255);
    long_name[63] = long_name[127] = long_name[191] = '.';
    long_name[255] = '\0';
    assert_int_equal(ensure_in(fx, fx->dir, long_name, 0), -FV_ECONFIG);
    assert_int_equal(ensure_in(fx, fx->dir, NULL, 0), -FV_ECONFIG);
    assert_int_equal(ensure_in(fx, fx->dir, NAME, 36501), -FV_ECONFIG);
    assert_int_equal(ensure_in(fx, "", NAME, 0), -FV_ECONFIG);
    assert_int_equal(ensure_in(fx, NULL, NAME, 0), -FV_ECONFIG);
    assert_int_equal(fv_certs_ensure(NULL, fx->err, sizeof(fx->err)), -FV_ECONFIG);
    assert_int_equal(stat(fx->dir, &st), -1);
    assert_int_equal(errno, ENOENT);
}

/* ---- Mutual TLS with the project's own contexts ---- */

/* How a mutual TLS exchange went. */
struct mtls_result {
    bool ok;            /* both handshakes done and one message got through */
    long server_verify; /* the server's verdict on the client's certificate */
    long client_verify; /* the client's verdict on the server's certificate */
    char peer_cn[64];   /* the CN of the certificate the server saw, or "" */
};

/* Steps one end of a handshake: 1 done, 0 waiting for the other end,
 * -1 failed. */
static int step(SSL *ssl)
{
    int rc = SSL_do_handshake(ssl);

    if (rc == 1)
        return 1;
    return SSL_get_error(ssl, rc) == SSL_ERROR_WANT_READ ? 0 : -1;
}

/* Loads the aggregator's side from server_dir and the agent's side from
 * client_dir (trusting server_dir's CA) into the project's own TLS
 * contexts, runs both ends of a handshake over a socketpair, then sends one
 * message from the agent to the aggregator. */
static struct mtls_result mtls(const char *server_dir, const char *client_dir, const char *host)
{
    char ca[256], cert[256], key[256], ccert[256], ckey[256], errbuf[256], buf[8];
    struct fv_tls_files sf = {ca, cert, key}, cf = {ca, ccert, ckey};
    struct mtls_result res = {.ok = false};
    SSL_CTX *sctx, *cctx;
    SSL *s, *c;
    int sv[2], sdone = 0, cdone = 0;

    join(server_dir, FV_CERTS_CA_CERT, ca, sizeof(ca));
    join(server_dir, FV_CERTS_SERVER_CERT, cert, sizeof(cert));
    join(server_dir, FV_CERTS_SERVER_KEY, key, sizeof(key));
    join(client_dir, FV_CERTS_CLIENT_CERT, ccert, sizeof(ccert));
    join(client_dir, FV_CERTS_CLIENT_KEY, ckey, sizeof(ckey));
    if (fv_tls_server_ctx(&sf, &sctx, errbuf, sizeof(errbuf)) != 0)
        fail_msg("server context: %s", errbuf);
    if (fv_tls_client_ctx(&cf, &cctx, errbuf, sizeof(errbuf)) != 0)
        fail_msg("client context: %s", errbuf);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    s = SSL_new(sctx);
    c = SSL_new(cctx);
    assert_true(s != NULL && c != NULL);
    assert_int_equal(SSL_set_fd(s, sv[0]), 1);
    assert_int_equal(SSL_set_fd(c, sv[1]), 1);
    SSL_set_accept_state(s);
    SSL_set_connect_state(c);
    assert_int_equal(SSL_set1_host(c, host), 1);
    for (int round = 0; round < 100 && sdone >= 0 && cdone >= 0 && !(sdone && cdone); round++) {
        if (!cdone)
            cdone = step(c);
        if (!sdone && cdone >= 0)
            sdone = step(s);
    }
    /* With TLS 1.3 the client is done before the server has checked its
     * certificate; only data getting through proves both ends agree. */
    if (sdone == 1 && cdone == 1 && SSL_write(c, "ping", 4) == 4 &&
        SSL_read(s, buf, sizeof(buf)) == 4 && memcmp(buf, "ping", 4) == 0)
        res.ok = true;
    if (SSL_get0_peer_certificate(s) != NULL)
        X509_NAME_get_text_by_NID(X509_get_subject_name(SSL_get0_peer_certificate(s)),
                                  NID_commonName, res.peer_cn, sizeof(res.peer_cn));
    res.server_verify = SSL_get_verify_result(s);
    res.client_verify = SSL_get_verify_result(c);
    ERR_clear_error();
    SSL_free(c);
    SSL_free(s);
    SSL_CTX_free(cctx);
    SSL_CTX_free(sctx);
    close(sv[0]);
    close(sv[1]);
    return res;
}

static void test_generated_files_give_mutual_tls(void **state)
{
    static const char *const hosts[] = {NAME, "localhost", "127.0.0.1", "::1"};
    struct fx *fx = *state;

    ensure(fx, NAME, 0);
    for (size_t i = 0; i < sizeof(hosts) / sizeof(hosts[0]); i++) {
        struct mtls_result r = mtls(fx->dir, fx->dir, hosts[i]);
        if (!r.ok)
            fail_msg("%s: handshake failed (server verify %ld, client verify %ld)", hosts[i],
                     r.server_verify, r.client_verify);
        assert_int_equal(r.server_verify, X509_V_OK);
        assert_int_equal(r.client_verify, X509_V_OK);
        assert_string_equal(r.peer_cn, "flowvis-agent");
    }
}

static void test_agent_rejects_a_name_the_server_cert_does_not_cover(void **state)
{
    struct fx *fx = *state;
    struct mtls_result r;

    ensure(fx, NAME, 0);
    r = mtls(fx->dir, fx->dir, "other.flowvis.svc");
    assert_false(r.ok);
    assert_int_equal(r.client_verify, X509_V_ERR_HOSTNAME_MISMATCH);
    r = mtls(fx->dir, fx->dir, "10.0.0.1");
    assert_false(r.ok);
    assert_int_equal(r.client_verify, X509_V_ERR_IP_ADDRESS_MISMATCH);
}

static void test_server_rejects_an_agent_of_another_ca(void **state)
{
    struct fx *fx = *state;
    char other[160];
    struct mtls_result r;

    snprintf(other, sizeof(other), "%s/other", fx->root);
    assert_int_equal(ensure_in(fx, other, NAME, 0), 0);
    ensure(fx, NAME, 0);
    r = mtls(fx->dir, other, NAME);
    assert_false(r.ok);
    assert_int_equal(r.client_verify, X509_V_OK);
    assert_int_equal(r.server_verify, X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_first_call_creates_the_directory_and_six_files),
        T(test_no_temporary_files_are_left_behind),
        T(test_ca_is_a_self_signed_p256_ca_with_key_identifiers),
        T(test_server_cert_verifies_for_its_name_and_loopback),
        T(test_ip_literal_server_name_gets_an_ip_entry),
        T(test_ipv6_literal_server_name_gets_an_ip_entry),
        T(test_localhost_as_server_name_is_listed_once),
        T(test_long_server_name_goes_into_san_with_a_short_cn),
        T(test_client_cert_is_for_client_auth_and_verifies),
        T(test_serials_differ),
        T(test_second_call_changes_nothing),
        T(test_short_validity_is_not_regenerated_on_every_call),
        T(test_new_server_name_replaces_only_the_server_cert),
        T(test_server_cert_from_another_ca_is_replaced),
        T(test_server_cert_expiring_within_30_days_is_replaced),
        T(test_missing_or_garbled_leaf_files_are_regenerated),
        T(test_expiring_ca_is_replaced_and_the_leaves_follow),
        T(test_a_leaf_never_outlives_its_ca),
        T(test_missing_ca_key_makes_a_new_ca),
        T(test_unwritable_dir_is_an_error_naming_the_path),
        T(test_dir_that_is_a_file_is_an_error_naming_it),
        T(test_mismatched_ca_key_is_an_error_and_nothing_is_replaced),
        T(test_garbled_ca_is_an_error_naming_the_file),
        T(test_bad_requests_are_rejected_before_touching_the_disk),
        T(test_generated_files_give_mutual_tls),
        T(test_agent_rejects_a_name_the_server_cert_does_not_cover),
        T(test_server_rejects_an_agent_of_another_ca),
    };

    return cmocka_run_group_tests_name("aggregator certs", tests, NULL, NULL);
}
