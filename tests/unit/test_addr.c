/*
 * test_addr.c - the HOST[:PORT][:PROTO] address format (base/addr.h).
 */
#include "testutil.h"

#include <netinet/in.h>

#include "base/addr.h"

struct good_case {
    const char *text;
    const char *host;
    uint16_t port;
    enum fv_proto proto;
};

static void test_valid_addresses_parse_into_host_port_and_proto(void **state)
{
    static const struct good_case cases[] = {
        {"collector", "collector", 4739, FV_PROTO_UDP},
        {"collector:9995", "collector", 9995, FV_PROTO_UDP},
        {"collector:9995:tcp", "collector", 9995, FV_PROTO_TCP},
        {"10.0.0.1:1:tls", "10.0.0.1", 1, FV_PROTO_TLS},
        {"10.0.0.1:65535", "10.0.0.1", 65535, FV_PROTO_UDP},
        {"10.0.0.1::tls", "10.0.0.1", 4739, FV_PROTO_TLS}, /* port omitted, proto given */
        {"[::1]", "::1", 4739, FV_PROTO_UDP},
        {"[::1]:4739:tls", "::1", 4739, FV_PROTO_TLS},
        {"[2001:db8::7]:2055", "2001:db8::7", 2055, FV_PROTO_UDP},
        {"[fe80::1%eth0]:4740:tcp", "fe80::1%eth0", 4740, FV_PROTO_TCP},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct fv_addr a;
        int rc = fv_addr_parse(cases[i].text, 4739, FV_PROTO_UDP, &a);
        if (rc != 0)
            fail_msg("\"%s\": %s", cases[i].text, fv_strerror(rc));
        assert_string_equal(a.host, cases[i].host);
        assert_int_equal(a.port, cases[i].port);
        assert_int_equal(a.proto, cases[i].proto);
    }
}

static void test_defaults_apply_when_port_and_proto_are_omitted(void **state)
{
    struct fv_addr a;

    (void)state;
    assert_int_equal(fv_addr_parse("flowvis.local", 4740, FV_PROTO_TLS, &a), 0);
    assert_int_equal(a.port, 4740);
    assert_int_equal(a.proto, FV_PROTO_TLS);
    assert_int_equal(fv_addr_parse("flowvis.local:80", 4740, FV_PROTO_TLS, &a), 0);
    assert_int_equal(a.port, 80);
    assert_int_equal(a.proto, FV_PROTO_TLS);
}

static void test_malformed_addresses_are_rejected(void **state)
{
    static char long_host[300];
    const char *bad[] = {
        "",                  /* no host */
        ":4739",             /* no host */
        "::1",               /* IPv6 needs brackets */
        "::1:4739",          /* IPv6 needs brackets */
        "[::1",              /* unclosed bracket */
        "[]",                /* empty brackets */
        "[]:4739",           /* empty brackets */
        "[::1]4739",         /* no colon after the bracket */
        "host:0",            /* port out of range */
        "host:65536",        /* port out of range */
        "host:99999999",     /* port too long */
        "host:abc",          /* port not a number */
        "host:80x",          /* trailing junk */
        "host:+80",          /* a sign is not a digit */
        "host: 80",          /* neither is a space */
        "host:-1",           /* negative */
        "host:80:quic",      /* unknown proto */
        "host:80:TCP",       /* protos are lowercase */
        "host:80:",          /* empty proto */
        "host:80:udp:extra", /* too many parts */
        "host:80:tlsextra",  /* proto too long */
        long_host,
    };

    (void)state;
    memset(long_host, 'h', 256); /* 256 characters: one more than fits */
    long_host[256] = '\0';
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct fv_addr a;
        int rc = fv_addr_parse(bad[i], 4739, FV_PROTO_UDP, &a);
        if (rc != -FV_EADDR)
            fail_msg("\"%.40s\": expected -FV_EADDR, got %d", bad[i], rc);
    }
}

static void test_host_of_255_characters_fits(void **state)
{
    char text[260];
    struct fv_addr a;

    (void)state;
    memset(text, 'h', 255);
    strcpy(text + 255, ":1");
    assert_int_equal(fv_addr_parse(text, 4739, FV_PROTO_UDP, &a), 0);
    assert_int_equal(strlen(a.host), 255);
    assert_int_equal(a.port, 1);
}

static void test_proto_names_parse_and_print(void **state)
{
    enum fv_proto p;

    (void)state;
    assert_int_equal(fv_proto_parse("udp", &p), 0);
    assert_int_equal(p, FV_PROTO_UDP);
    assert_int_equal(fv_proto_parse("tcp", &p), 0);
    assert_int_equal(p, FV_PROTO_TCP);
    assert_int_equal(fv_proto_parse("tls", &p), 0);
    assert_int_equal(p, FV_PROTO_TLS);
    assert_int_equal(fv_proto_parse("sctp", &p), -FV_EADDR);
    assert_string_equal(fv_proto_name(FV_PROTO_UDP), "udp");
    assert_string_equal(fv_proto_name(FV_PROTO_TCP), "tcp");
    assert_string_equal(fv_proto_name(FV_PROTO_TLS), "tls");
}

static void test_numeric_addresses_resolve_without_lookup(void **state)
{
    struct fv_addr a;
    struct sockaddr_storage ss;
    socklen_t len;
    char text[64];

    (void)state;
    assert_int_equal(fv_addr_parse("[::1]:4739:tls", 4739, FV_PROTO_UDP, &a), 0);
    assert_int_equal(fv_addr_resolve(&a, &ss, &len), 0);
    assert_int_equal(ss.ss_family, AF_INET6);
    fv_sockaddr_str((struct sockaddr *)&ss, text, sizeof(text));
    assert_string_equal(text, "[::1]:4739");

    assert_int_equal(fv_addr_parse("127.0.0.1:2055", 4739, FV_PROTO_UDP, &a), 0);
    assert_int_equal(fv_addr_resolve(&a, &ss, &len), 0);
    assert_int_equal(len, sizeof(struct sockaddr_in));
    fv_sockaddr_str((struct sockaddr *)&ss, text, sizeof(text));
    assert_string_equal(text, "127.0.0.1:2055");
    fv_sockaddr_ip((struct sockaddr *)&ss, text, sizeof(text));
    assert_string_equal(text, "127.0.0.1");
}

static void test_v4_mapped_peer_prints_as_plain_ipv4(void **state)
{
    struct sockaddr_in6 s6 = {.sin6_family = AF_INET6, .sin6_port = htons(4739)};
    char text[64];

    (void)state;
    s6.sin6_addr.s6_addr[10] = 0xff;
    s6.sin6_addr.s6_addr[11] = 0xff;
    s6.sin6_addr.s6_addr[12] = 192;
    s6.sin6_addr.s6_addr[13] = 0;
    s6.sin6_addr.s6_addr[14] = 2;
    s6.sin6_addr.s6_addr[15] = 1;
    fv_sockaddr_str((struct sockaddr *)&s6, text, sizeof(text));
    assert_string_equal(text, "192.0.2.1:4739");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_addresses_parse_into_host_port_and_proto),
        cmocka_unit_test(test_defaults_apply_when_port_and_proto_are_omitted),
        cmocka_unit_test(test_malformed_addresses_are_rejected),
        cmocka_unit_test(test_host_of_255_characters_fits),
        cmocka_unit_test(test_proto_names_parse_and_print),
        cmocka_unit_test(test_numeric_addresses_resolve_without_lookup),
        cmocka_unit_test(test_v4_mapped_peer_prints_as_plain_ipv4),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
