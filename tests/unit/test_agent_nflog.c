/*
 * test_agent_nflog.c - the NFLOG listener: group items of the config, the
 * IP header parser on hand-built IPv4/IPv6 packets (extension headers,
 * fragments, truncation, garbage; every parse reads from a heap copy of
 * exactly the packet's size, so ASan sees any read past it), and, as root
 * with `ip` and `nft`, the real kernel: a network namespace whose nftables
 * output rules log UDP datagrams to NFLOG groups and drop them.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <linux/capability.h>
#include <netinet/in.h>

#include "agent/nflog.h"
#include "base/clock.h"
#include "base/log.h"

/* ---- group items ---- */

static void test_group_items_parse_with_drop_as_the_default_action(void **state)
{
    static const struct {
        const char *s;
        uint16_t group;
        uint8_t action;
    } ok[] = {
        {"100", 100, FV_NFLOG_DROP},
        {"100:drop", 100, FV_NFLOG_DROP},
        {"100:reject", 100, FV_NFLOG_REJECT},
        {"0", 0, FV_NFLOG_DROP},
        {"65535:reject", 65535, FV_NFLOG_REJECT},
        {"00042", 42, FV_NFLOG_DROP},
    };
    (void)state;

    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        struct fv_nflog_group g = {0, 0};
        char why[128] = "";
        assert_int_equal(fv_nflog_group_parse(ok[i].s, &g, why, sizeof(why)), 0);
        assert_int_equal(g.group, ok[i].group);
        assert_int_equal(g.action, ok[i].action);
        assert_string_equal(why, "");
    }
}

static void test_bad_group_items_are_refused_with_a_message_that_quotes_them(void **state)
{
    static const struct {
        const char *s, *why;
    } bad[] = {
        {"100:deny", "'100:deny': action must be drop or reject"},
        {"100:", "'100:': action must be drop or reject"},
        {"100:DROP", "'100:DROP': action must be drop or reject"},
        {"100:drop:x", "'100:drop:x': action must be drop or reject"},
        {"65536", "'65536': group must be a number 0-65535"},
        {"99999999999999999999", "'99999999999999999999': group must be a number 0-65535"},
        {"", "'': group must be a number 0-65535, optionally followed by :drop or :reject"},
        {"abc", "'abc': group must be a number 0-65535, optionally followed by :drop or :reject"},
        {"-1", "'-1': group must be a number"},
        {" 100", "' 100': group must be a number"},
        {"100 ", "'100 ': group must be a number"},
        {":drop", "':drop': group must be a number"},
        {"1e3", "'1e3': group must be a number"},
    };
    (void)state;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct fv_nflog_group g = {7, 7};
        char why[160] = "";
        assert_int_equal(fv_nflog_group_parse(bad[i].s, &g, why, sizeof(why)), -EINVAL);
        if (strncmp(why, bad[i].why, strlen(bad[i].why)) != 0)
            fail_msg("'%s': got \"%s\", want \"%s...\"", bad[i].s, why, bad[i].why);
        assert_int_equal(g.group, 7); /* untouched */
    }
    /* No room for the message is fine too. */
    struct fv_nflog_group g;
    assert_int_equal(fv_nflog_group_parse("x", &g, NULL, 0), -EINVAL);
}

/* ---- packet builder ---- */

struct pk {
    uint8_t b[2048];
    size_t n;
};

static void u8(struct pk *k, uint8_t v)
{
    assert_true(k->n < sizeof(k->b));
    k->b[k->n++] = v;
}

static void u16(struct pk *k, uint16_t v)
{
    u8(k, (uint8_t)(v >> 8));
    u8(k, (uint8_t)v);
}

static void zeros(struct pk *k, size_t n)
{
    while (n--)
        u8(k, 0);
}

static void addr(struct pk *k, int family, const char *s)
{
    uint8_t a[16];
    assert_int_equal(inet_pton(family, s, a), 1);
    for (int i = 0; i < (family == AF_INET ? 4 : 16); i++)
        u8(k, a[i]);
}

/* An IPv4 header with optlen bytes of options (NOPs). */
static void v4(struct pk *k, uint8_t proto, uint16_t total, uint16_t frag, size_t optlen)
{
    k->n = 0;
    u8(k, (uint8_t)(0x40 | (5 + optlen / 4)));
    u8(k, 0);
    u16(k, total);
    u16(k, 0x1234); /* id */
    u16(k, frag);
    u8(k, 64);
    u8(k, proto);
    u16(k, 0); /* checksum: not checked */
    addr(k, AF_INET, "10.244.1.5");
    addr(k, AF_INET, "10.96.0.10");
    for (size_t i = 0; i < optlen; i++)
        u8(k, 1);
}

static void v6(struct pk *k, uint8_t next, uint16_t plen)
{
    k->n = 0;
    u8(k, 0x60);
    zeros(k, 3);
    u16(k, plen);
    u8(k, next);
    u8(k, 64);
    addr(k, AF_INET6, "fd00:10:244:1::5");
    addr(k, AF_INET6, "fd00:10:96::a");
}

/* A generic extension header of (len8 + 1) * 8 bytes. */
static void ext(struct pk *k, uint8_t next, uint8_t len8)
{
    u8(k, next);
    u8(k, len8);
    zeros(k, (size_t)(len8 + 1) * 8 - 2);
}

static void frag6(struct pk *k, uint8_t next, uint16_t offset, bool more)
{
    u8(k, next);
    u8(k, 0);
    u16(k, (uint16_t)(offset << 3 | (more ? 1 : 0)));
    u16(k, 0xabcd);
    u16(k, 0x0001);
}

static void l4ports(struct pk *k, uint16_t sport, uint16_t dport, size_t rest)
{
    u16(k, sport);
    u16(k, dport);
    zeros(k, rest);
}

static void icmp(struct pk *k, uint8_t type, uint8_t code, uint16_t id)
{
    u8(k, type);
    u8(k, code);
    u16(k, 0); /* checksum */
    u16(k, id);
    u16(k, 1); /* sequence */
}

/* Parses a heap copy of exactly n bytes: ASan catches any read past it. */
static int parse_n(const struct pk *k, size_t n, struct fv_nflog_packet *p)
{
    uint8_t *c = malloc(n ? n : 1);
    int rc;

    memcpy(c, k->b, n);
    rc = fv_nflog_parse_ip(c, n, p);
    free(c);
    return rc;
}

static struct fv_nflog_packet parse_ok(const struct pk *k)
{
    struct fv_nflog_packet p;
    memset(&p, 0xEE, sizeof(p));
    assert_int_equal(parse_n(k, k->n, &p), 0);
    return p;
}

static void assert_addrs(const struct fv_nflog_packet *p, int family)
{
    char a[FV_IP_STRLEN], b[FV_IP_STRLEN];

    assert_int_equal(p->src.family, family);
    assert_int_equal(p->dst.family, family);
    fv_ip_str(&p->src, a);
    fv_ip_str(&p->dst, b);
    if (family == AF_INET) {
        assert_string_equal(a, "10.244.1.5");
        assert_string_equal(b, "10.96.0.10");
    } else {
        assert_string_equal(a, "fd00:10:244:1::5");
        assert_string_equal(b, "fd00:10:96::a");
    }
}

/* Every prefix shorter than need is refused; need itself parses. */
static void assert_needs(const struct pk *k, size_t need)
{
    struct fv_nflog_packet p;

    for (size_t n = 0; n < need; n++)
        if (parse_n(k, n, &p) != -EINVAL)
            fail_msg("a %zu-byte prefix parsed; the headers need %zu", n, need);
    assert_int_equal(parse_n(k, need, &p), 0);
}

/* ---- IPv4 ---- */

static void test_ipv4_tcp_gives_addresses_ports_and_the_header_length(void **state)
{
    struct pk k;
    struct fv_nflog_packet p;
    (void)state;

    v4(&k, 6, 60, 0, 0);
    l4ports(&k, 40000, 8080, 36);
    p = parse_ok(&k);
    assert_addrs(&p, AF_INET);
    assert_int_equal(p.proto, 6);
    assert_int_equal(p.sport, 40000);
    assert_int_equal(p.dport, 8080);
    assert_int_equal(p.len, 60);
    /* Only the IP header and the ports are needed. */
    assert_needs(&k, 24);
}

static void test_ipv4_options_are_skipped(void **state)
{
    struct pk k;
    struct fv_nflog_packet p;
    (void)state;

    v4(&k, 17, 20 + 12 + 8, 0, 12);
    l4ports(&k, 53, 33000, 4);
    p = parse_ok(&k);
    assert_int_equal(p.sport, 53);
    assert_int_equal(p.dport, 33000);
    assert_int_equal(p.len, 40);
    assert_needs(&k, 36);
}

static void test_ipv4_length_comes_from_the_header_not_the_copy(void **state)
{
    struct pk k;
    struct fv_nflog_packet p;
    (void)state;

    /* 1500 bytes on the wire, 256 copied. */
    v4(&k, 17, 1500, 0, 0);
    l4ports(&k, 1000, 2000, 256 - 24);
    p = parse_ok(&k);
    assert_int_equal(p.len, 1500);
    /* Link-layer padding after the total length is not the packet. */
    v4(&k, 17, 28, 0, 0);
    l4ports(&k, 1000, 2000, 4 + 18);
    p = parse_ok(&k);
    assert_int_equal(p.len, 28);
    /* A total length of 0 (BIG TCP): what was copied is a lower bound. */
    v4(&k, 6, 0, 0, 0);
    l4ports(&k, 1000, 2000, 100);
    p = parse_ok(&k);
    assert_int_equal(p.len, k.n);
}

static void test_ipv4_icmp_uses_the_echo_id_and_type_code_like_conntrack(void **state)
{
    struct pk k;
    struct fv_nflog_packet p;
    (void)state;

    v4(&k, 1, 28, 0, 0);
    icmp(&k, 8, 0, 0x4242);
    p = parse_ok(&k);
    assert_int_equal(p.proto, 1);
    assert_int_equal(p.sport, 0x4242);
    assert_int_equal(p.dport, 8 << 8);
    assert_needs(&k, 26); /* an echo needs its id */
    /* An error has no id: only type and code. */
    v4(&k, 1, 28, 0, 0);
    icmp(&k, 3, 13, 0x4242);
    p = parse_ok(&k);
    assert_int_equal(p.sport, 0);
    assert_int_equal(p.dport, 3 << 8 | 13);
    assert_needs(&k, 22);
}

static void test_ipv4_port_protocols_and_portless_protocols(void **state)
{
    static const uint8_t with_ports[] = {6, 17, 33, 132, 136};
    struct pk k;
    struct fv_nflog_packet p;
    (void)state;

    for (size_t i = 0; i < sizeof(with_ports); i++) {
        v4(&k, with_ports[i], 40, 0, 0);
        l4ports(&k, 5000, 3868, 16);
        p = parse_ok(&k);
        assert_int_equal(p.proto, with_ports[i]);
        assert_int_equal(p.sport, 5000);
        assert_int_equal(p.dport, 3868);
    }
    /* GRE: no ports, and nothing needed after the IP header. */
    v4(&k, 47, 40, 0, 0);
    l4ports(&k, 5000, 3868, 16);
    p = parse_ok(&k);
    assert_int_equal(p.proto, 47);
    assert_int_equal(p.sport, 0);
    assert_int_equal(p.dport, 0);
    assert_needs(&k, 20);
}

static void test_ipv4_only_the_first_fragment_has_ports(void **state)
{
    struct pk k;
    struct fv_nflog_packet p;
    (void)state;

    v4(&k, 17, 1500, 0x2000, 0); /* MF, offset 0 */
    l4ports(&k, 4000, 4001, 100);
    p = parse_ok(&k);
    assert_int_equal(p.sport, 4000);
    assert_int_equal(p.dport, 4001);
    v4(&k, 17, 500, 185, 0); /* offset 1480, last fragment */
    l4ports(&k, 4000, 4001, 100);
    p = parse_ok(&k);
    assert_int_equal(p.proto, 17);
    assert_int_equal(p.sport, 0);
    assert_int_equal(p.dport, 0);
    assert_int_equal(p.len, 500);
    assert_needs(&k, 20);
}

static void test_ipv4_broken_headers_are_refused(void **state)
{
    struct pk k;
    struct fv_nflog_packet p;
    (void)state;

    v4(&k, 6, 40, 0, 0);
    l4ports(&k, 1, 2, 16);
    k.b[0] = 0x45 - 0x40 + 0x50; /* version 5 */
    assert_int_equal(parse_n(&k, k.n, &p), -EINVAL);
    k.b[0] = 0x44; /* IHL 4: shorter than the fixed header */
    assert_int_equal(parse_n(&k, k.n, &p), -EINVAL);
    k.b[0] = 0x4F; /* IHL 15: 60 bytes, past the 40 of the packet */
    assert_int_equal(parse_n(&k, k.n, &p), -EINVAL);
    v4(&k, 6, 19, 0, 0); /* total length inside the header */
    l4ports(&k, 1, 2, 16);
    assert_int_equal(parse_n(&k, k.n, &p), -EINVAL);
    v4(&k, 6, 22, 0, 0); /* the ports lie past the total length */
    l4ports(&k, 1, 2, 16);
    assert_int_equal(parse_n(&k, k.n, &p), -EINVAL);
}

/* ---- IPv6 ---- */

static void test_ipv6_tcp_udp_sctp_give_ports_and_the_header_length(void **state)
{
    static const uint8_t protos[] = {6, 17, 132};
    struct pk k;
    struct fv_nflog_packet p;
    (void)state;

    for (size_t i = 0; i < sizeof(protos); i++) {
        v6(&k, protos[i], 1200);
        l4ports(&k, 41000, 443, 60);
        p = parse_ok(&k);
        assert_addrs(&p, AF_INET6);
        assert_int_equal(p.proto, protos[i]);
        assert_int_equal(p.sport, 41000);
        assert_int_equal(p.dport, 443);
        assert_int_equal(p.len, 1240);
        assert_needs(&k, 44);
    }
    /* Payload length 0 (jumbogram, BIG TCP): the copy is a lower bound. */
    v6(&k, 6, 0);
    l4ports(&k, 41000, 443, 60);
    p = parse_ok(&k);
    assert_int_equal(p.len, k.n);
}

static void test_ipv6_icmpv6_uses_the_echo_id_and_type_code(void **state)
{
    struct pk k;
    struct fv_nflog_packet p;
    (void)state;

    v6(&k, 58, 8);
    icmp(&k, 128, 0, 0x0777);
    p = parse_ok(&k);
    assert_int_equal(p.proto, 58);
    assert_int_equal(p.sport, 0x0777);
    assert_int_equal(p.dport, 128 << 8);
    assert_needs(&k, 46);
    v6(&k, 58, 8);
    icmp(&k, 1, 4, 0x0777); /* destination unreachable, port unreachable */
    p = parse_ok(&k);
    assert_int_equal(p.sport, 0);
    assert_int_equal(p.dport, 1 << 8 | 4);
    assert_needs(&k, 42);
}

static void test_ipv6_extension_headers_are_skipped_to_the_transport_header(void **state)
{
    struct pk k;
    struct fv_nflog_packet p;
    (void)state;

    /* Hop-by-hop (8) -> routing (24) -> destination options (16) -> TCP. */
    v6(&k, 0, 8 + 24 + 16 + 20);
    ext(&k, 43, 0);
    ext(&k, 60, 2);
    ext(&k, 6, 1);
    l4ports(&k, 50000, 22, 16);
    p = parse_ok(&k);
    assert_int_equal(p.proto, 6);
    assert_int_equal(p.sport, 50000);
    assert_int_equal(p.dport, 22);
    assert_int_equal(p.len, 40 + 68);
    assert_needs(&k, 40 + 48 + 4);
    /* AH counts its length in 4-byte words minus 2: 4 -> 24 bytes. */
    v6(&k, 51, 24 + 8);
    u8(&k, 17);
    u8(&k, 4);
    zeros(&k, 22);
    l4ports(&k, 500, 4500, 4);
    p = parse_ok(&k);
    assert_int_equal(p.proto, 17);
    assert_int_equal(p.sport, 500);
    assert_int_equal(p.dport, 4500);
    assert_needs(&k, 40 + 24 + 4);
}

static void test_ipv6_only_the_first_fragment_has_ports(void **state)
{
    struct pk k;
    struct fv_nflog_packet p;
    (void)state;

    v6(&k, 44, 8 + 16 + 100);
    frag6(&k, 60, 0, true); /* first fragment, then destination options */
    ext(&k, 17, 1);
    l4ports(&k, 7000, 7001, 96);
    p = parse_ok(&k);
    assert_int_equal(p.proto, 17);
    assert_int_equal(p.sport, 7000);
    assert_int_equal(p.dport, 7001);
    v6(&k, 44, 8 + 100);
    frag6(&k, 17, 185, false); /* a later fragment: data follows */
    zeros(&k, 100);
    p = parse_ok(&k);
    assert_int_equal(p.proto, 17);
    assert_int_equal(p.sport, 0);
    assert_int_equal(p.dport, 0);
    assert_int_equal(p.len, 148);
    assert_needs(&k, 48);
}

static void test_ipv6_esp_and_no_next_header_have_no_ports(void **state)
{
    struct pk k;
    struct fv_nflog_packet p;
    (void)state;

    v6(&k, 50, 40);
    zeros(&k, 40);
    p = parse_ok(&k);
    assert_int_equal(p.proto, 50);
    assert_int_equal(p.sport, 0);
    assert_needs(&k, 40);
    v6(&k, 0, 8);
    ext(&k, 59, 0);
    p = parse_ok(&k);
    assert_int_equal(p.proto, 59);
    assert_int_equal(p.dport, 0);
}

static void test_ipv6_broken_headers_are_refused(void **state)
{
    struct pk k;
    struct fv_nflog_packet p;
    (void)state;

    /* An extension header that runs past the payload length. */
    v6(&k, 0, 8);
    ext(&k, 6, 3); /* 32 bytes, 8 announced */
    l4ports(&k, 1, 2, 16);
    assert_int_equal(parse_n(&k, k.n, &p), -EINVAL);
    /* Ports past the payload length. */
    v6(&k, 17, 2);
    l4ports(&k, 1, 2, 4);
    assert_int_equal(parse_n(&k, k.n, &p), -EINVAL);
    /* A chain of 17 extension headers: more than anything real. */
    v6(&k, 60, 17 * 8 + 8);
    for (int i = 0; i < 17; i++)
        ext(&k, 60, 0);
    l4ports(&k, 1, 2, 4);
    assert_int_equal(parse_n(&k, k.n, &p), -EINVAL);
    /* Version 6 in an IPv4-sized packet; version 0. */
    v6(&k, 6, 20);
    assert_int_equal(parse_n(&k, 39, &p), -EINVAL);
    k.b[0] = 0x00;
    l4ports(&k, 1, 2, 16);
    assert_int_equal(parse_n(&k, k.n, &p), -EINVAL);
}

static void test_the_parser_leaves_group_action_and_prefix_alone(void **state)
{
    struct pk k;
    struct fv_nflog_packet p;
    (void)state;

    memset(&p, 0, sizeof(p));
    p.group = 4711;
    p.action = FV_NFLOG_REJECT;
    snprintf(p.prefix, sizeof(p.prefix), "keep");
    v4(&k, 6, 40, 0, 0);
    l4ports(&k, 1, 2, 16);
    assert_int_equal(parse_n(&k, k.n, &p), 0);
    assert_int_equal(p.group, 4711);
    assert_int_equal(p.action, FV_NFLOG_REJECT);
    assert_string_equal(p.prefix, "keep");
}

/* xorshift64*: the same garbage every run. */
static uint64_t rnd(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ull;
}

static void test_garbage_and_mutated_packets_never_read_past_the_buffer(void **state)
{
    uint64_t seed = 0x5eed;
    struct pk base[4], k;
    struct fv_nflog_packet p;
    int parsed = 0;
    (void)state;

    v4(&base[0], 6, 60, 0, 8);
    l4ports(&base[0], 1, 2, 28);
    v6(&base[1], 0, 8 + 24 + 16 + 20);
    ext(&base[1], 43, 0);
    ext(&base[1], 44, 2);
    frag6(&base[1], 6, 0, true);
    l4ports(&base[1], 1, 2, 16);
    v6(&base[2], 51, 32);
    u8(&base[2], 58);
    u8(&base[2], 4);
    zeros(&base[2], 22);
    icmp(&base[2], 129, 0, 9);
    v4(&base[3], 1, 28, 0, 0);
    icmp(&base[3], 0, 0, 9);
    for (int i = 0; i < 200000; i++) {
        if (i % 2 == 0) {
            /* A valid packet with a few bytes changed and a random length. */
            k = base[rnd(&seed) % 4];
            for (int j = (int)(rnd(&seed) % 4); j >= 0; j--)
                k.b[rnd(&seed) % k.n] = (uint8_t)rnd(&seed);
            k.n = rnd(&seed) % (k.n + 1);
        } else {
            /* Noise that starts like an IP header half of the time. */
            k.n = rnd(&seed) % 160;
            for (size_t j = 0; j < k.n; j++)
                k.b[j] = (uint8_t)rnd(&seed);
            if (k.n && (i & 2))
                k.b[0] = (uint8_t)((i & 4 ? 0x40 : 0x60) | (k.b[0] & 15));
        }
        if (parse_n(&k, k.n, &p) == 0) {
            parsed++;
            assert_true(p.src.family == AF_INET || p.src.family == AF_INET6);
        }
    }
    assert_true(parsed > 1000); /* the mutations reach the deep paths */
}

static void test_open_refuses_no_groups_and_duplicates_before_touching_the_kernel(void **state)
{
    struct fv_nflog_group g[2] = {{5, FV_NFLOG_DROP}, {5, FV_NFLOG_REJECT}};
    struct fv_nflog *l = NULL;
    (void)state;

    assert_int_equal(fv_nflog_open(g, 0, &l), -EINVAL);
    assert_int_equal(fv_nflog_open(g, 2, &l), -EINVAL);
    assert_null(l);
    fv_nflog_close(NULL);
}

/* ---- the real kernel, in a network namespace ---- */

struct catch
{
    struct fv_nflog_packet p[64];
    int n;
};

struct kns {
    char skip[160]; /* why the kernel tests cannot run here; "" when they can */
    char name[64];  /* the namespace */
    bool created;
    int orig_fd; /* our original network namespace, -1 */
    struct fv_nflog *l, *l2;
    int s4, s6;
    struct catch *c;  /* what the listener delivered */
    bool dropped_cap; /* CAP_NET_ADMIN taken out of the effective set */
};

/* Puts CAP_NET_ADMIN into this thread's effective set or takes it out
 * (it stays permitted, so it can come back). */
static int set_net_admin(bool on)
{
    struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct c[_LINUX_CAPABILITY_U32S_3];

    if (syscall(SYS_capget, &h, c) < 0)
        return -1;
    if (on)
        c[CAP_TO_INDEX(CAP_NET_ADMIN)].effective |= CAP_TO_MASK(CAP_NET_ADMIN);
    else
        c[CAP_TO_INDEX(CAP_NET_ADMIN)].effective &= ~CAP_TO_MASK(CAP_NET_ADMIN);
    return (int)syscall(SYS_capset, &h, c);
}

static int run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int run(const char *fmt, ...)
{
    char cmd[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    return system(cmd);
}

static const char ruleset[] =
    "table inet fvtest {\n"
    "  chain out {\n"
    "    type filter hook output priority 0; policy accept;\n"
    "    meta l4proto udp udp dport 5555 log prefix \"fvtest-drop\" group 4711 drop\n"
    "    meta l4proto udp udp dport 5556 log group 4712 drop\n"
    "  }\n"
    "}\n";

static int load_rules(const char *ns)
{
    char cmd[160];
    FILE *f;

    snprintf(cmd, sizeof(cmd), "ip netns exec %s nft -f -", ns);
    f = popen(cmd, "w");
    if (f == NULL)
        return -1;
    fputs(ruleset, f);
    return pclose(f);
}

/* Creates the namespace, loads the rules and moves this thread into it;
 * anything missing leaves k->skip set (teardown undoes what was done). */
static void enter_netns(struct kns *k)
{
    static int serial;
    char path[128];
    int fd;

    if (geteuid() != 0) {
        snprintf(k->skip, sizeof(k->skip), "not root");
        return;
    }
    if (run("command -v ip >/dev/null 2>&1 && command -v nft >/dev/null 2>&1") != 0) {
        snprintf(k->skip, sizeof(k->skip), "needs the ip and nft commands");
        return;
    }
    snprintf(k->name, sizeof(k->name), "fvnflogtest-%d-%d", (int)getpid(), serial++);
    if (run("ip netns add %s", k->name) != 0) {
        snprintf(k->skip, sizeof(k->skip), "cannot create network namespace %s", k->name);
        return;
    }
    k->created = true;
    if (run("ip -n %s link set lo up", k->name) != 0 || load_rules(k->name) != 0) {
        snprintf(k->skip, sizeof(k->skip), "cannot set up lo or nftables rules in %s", k->name);
        return;
    }
    k->orig_fd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    snprintf(path, sizeof(path), "/run/netns/%s", k->name);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (k->orig_fd < 0 || fd < 0 || setns(fd, CLONE_NEWNET) < 0) {
        snprintf(k->skip, sizeof(k->skip), "cannot enter %s: %s", k->name, strerror(errno));
        if (fd >= 0)
            close(fd);
        return;
    }
    close(fd);
}

static int kernel_setup(void **state)
{
    struct kns *k = calloc(1, sizeof(*k));

    if (k == NULL)
        return -1;
    k->orig_fd = k->s4 = k->s6 = -1;
    k->c = calloc(1, sizeof(*k->c));
    if (k->c == NULL) {
        free(k);
        return -1;
    }
    enter_netns(k);
    *state = k;
    return 0;
}

/* Runs after a failed assertion too: nothing stays behind. */
static int kernel_teardown(void **state)
{
    struct kns *k = *state;
    int rc = 0;

    if (k->dropped_cap && set_net_admin(true) < 0)
        rc = -1;
    fv_nflog_close(k->l);
    fv_nflog_close(k->l2);
    if (k->s4 >= 0)
        close(k->s4);
    if (k->s6 >= 0)
        close(k->s6);
    if (k->orig_fd >= 0) {
        if (setns(k->orig_fd, CLONE_NEWNET) < 0)
            rc = -1;
        close(k->orig_fd);
    }
    if (k->created && run("ip netns del %s", k->name) != 0)
        rc = -1;
    free(k->c);
    free(k);
    return rc;
}

static void skip_unless_kernel(const struct kns *k)
{
    if (k->skip[0]) {
        print_message("skipped: the real-kernel NFLOG tests need root, ip, nft and network "
                      "namespaces: %s\n",
                      k->skip);
        skip();
    }
}

static void on_packet(void *ctx, const struct fv_nflog_packet *p)
{
    struct catch *c = ctx;
    assert_true(c->n < 64);
    c->p[c->n++] = *p;
}

/* Reads until want packets arrived or wait_ms passed. */
static void read_until(struct fv_nflog *l, struct catch *c, int want, uint64_t wait_ms)
{
    uint64_t deadline = fv_clock_mono_ms() + wait_ms;

    while (c->n < want && fv_clock_mono_ms() < deadline) {
        struct pollfd pfd = {fv_nflog_fd(l), POLLIN, 0};
        int rc = poll(&pfd, 1, 100);
        assert_true(rc >= 0);
        if (rc > 0)
            assert_true(fv_nflog_read(l, on_packet, c) >= 0);
    }
}

/* A UDP socket bound to addr port 0; returns it and its port. */
static int udp_socket(int family, uint16_t *port)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    int s = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);

    assert_true(s >= 0);
    memset(&ss, 0, sizeof(ss));
    if (family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        sl = sizeof(*a);
    } else {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        a->sin6_addr = in6addr_loopback;
        sl = sizeof(*a);
    }
    assert_int_equal(bind(s, (struct sockaddr *)&ss, sl), 0);
    sl = sizeof(ss);
    assert_int_equal(getsockname(s, (struct sockaddr *)&ss, &sl), 0);
    *port = ntohs(family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                    : ((struct sockaddr_in6 *)&ss)->sin6_port);
    return s;
}

/* Sends size bytes to the loopback address of s's family, port dport.
 * The output rule drops it, so EPERM is the expected answer. */
static void send_udp(int s, int family, uint16_t dport, size_t size)
{
    static const uint8_t data[2000];
    struct sockaddr_in a4 = {.sin_family = AF_INET};
    struct sockaddr_in6 a6 = {.sin6_family = AF_INET6};
    ssize_t n;

    a4.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a4.sin_port = htons(dport);
    a6.sin6_addr = in6addr_loopback;
    a6.sin6_port = htons(dport);
    assert_true(size <= sizeof(data));
    if (family == AF_INET)
        n = sendto(s, data, size, 0, (struct sockaddr *)&a4, sizeof(a4));
    else
        n = sendto(s, data, size, 0, (struct sockaddr *)&a6, sizeof(a6));
    if (n < 0 && errno != EPERM)
        fail_msg("sendto: %s", strerror(errno));
}

static void assert_loopback(const struct fv_nflog_packet *p, int family)
{
    char a[FV_IP_STRLEN];
    const char *want = family == AF_INET ? "127.0.0.1" : "::1";

    assert_int_equal(p->src.family, family);
    assert_string_equal(fv_ip_str(&p->src, a), want);
    assert_string_equal(fv_ip_str(&p->dst, a), want);
}

static void test_kernel_delivers_exact_udp_packets_of_both_families_per_group(void **state)
{
    struct kns *k = *state;
    struct fv_nflog_group g[2] = {{4711, FV_NFLOG_DROP}, {4712, FV_NFLOG_REJECT}};
    static const size_t v4sizes[] = {10, 100, 1000}, v6sizes[] = {20, 200, 1200};
    struct catch *c = k->c;
    struct fv_nflog_stats st;
    uint16_t p4, p6;
    int in4711 = 0, in4712 = 0;
    uint64_t bytes = 0;

    skip_unless_kernel(k);
    assert_int_equal(fv_nflog_open(g, 2, &k->l), 0);
    k->s4 = udp_socket(AF_INET, &p4);
    k->s6 = udp_socket(AF_INET6, &p6);
    for (int i = 0; i < 3; i++)
        send_udp(k->s4, AF_INET, 5555, v4sizes[i]);
    for (int i = 0; i < 3; i++)
        send_udp(k->s6, AF_INET6, 5555, v6sizes[i]);
    send_udp(k->s4, AF_INET, 5556, 50);
    send_udp(k->s4, AF_INET, 5557, 50); /* no rule: not logged, not dropped */
    read_until(k->l, c, 7, 5000);
    /* One group's packets arrive in order; the two groups interleave. */
    for (int i = 0; i < c->n; i++) {
        const struct fv_nflog_packet *p = &c->p[i];
        assert_int_equal(p->proto, 17);
        bytes += p->len;
        if (p->group == 4711) {
            int j = in4711++;
            int family = j < 3 ? AF_INET : AF_INET6;
            assert_loopback(p, family);
            assert_int_equal(p->sport, j < 3 ? p4 : p6);
            assert_int_equal(p->dport, 5555);
            assert_int_equal(p->len, j < 3 ? 20 + 8 + v4sizes[j] : 40 + 8 + v6sizes[j - 3]);
            assert_int_equal(p->action, FV_NFLOG_DROP);
            assert_string_equal(p->prefix, "fvtest-drop");
        } else {
            assert_int_equal(p->group, 4712);
            in4712++;
            assert_loopback(p, AF_INET);
            assert_int_equal(p->sport, p4);
            assert_int_equal(p->dport, 5556);
            assert_int_equal(p->len, 78);
            assert_int_equal(p->action, FV_NFLOG_REJECT);
            assert_string_equal(p->prefix, "");
        }
    }
    assert_int_equal(in4711, 6);
    assert_int_equal(in4712, 1);
    /* Nothing else comes (the port-5557 datagram was not logged); the
     * kernel would have flushed it within 100 ms. */
    read_until(k->l, c, 8, 500);
    assert_int_equal(c->n, 7);
    fv_nflog_stats(k->l, &st);
    assert_int_equal(st.packets, 7);
    assert_int_equal(st.bytes, bytes);
    assert_int_equal(st.malformed, 0);
    assert_int_equal(st.overruns, 0);
}

static void test_kernel_group_held_by_another_socket_is_busy(void **state)
{
    struct kns *k = *state;
    struct fv_nflog_group g = {4711, FV_NFLOG_DROP}, other = {4799, FV_NFLOG_DROP};

    skip_unless_kernel(k);
    assert_int_equal(fv_nflog_open(&g, 1, &k->l), 0);
    assert_int_equal(fv_nflog_open(&g, 1, &k->l2), -EBUSY);
    assert_null(k->l2);
    /* Other groups stay free; closing gives the group back. */
    assert_int_equal(fv_nflog_open(&other, 1, &k->l2), 0);
    fv_nflog_close(k->l);
    k->l = NULL;
    assert_int_equal(fv_nflog_open(&g, 1, &k->l), 0);
}

static void test_kernel_bind_without_cap_net_admin_is_refused_with_eperm(void **state)
{
    struct kns *k = *state;
    struct fv_nflog_group g = {4711, FV_NFLOG_DROP};

    skip_unless_kernel(k);
    assert_int_equal(set_net_admin(false), 0);
    k->dropped_cap = true;
    assert_int_equal(fv_nflog_open(&g, 1, &k->l), -EPERM);
    assert_null(k->l);
    assert_int_equal(set_net_admin(true), 0);
    k->dropped_cap = false;
    assert_int_equal(fv_nflog_open(&g, 1, &k->l), 0);
}

static void test_kernel_overrun_is_counted_and_reading_goes_on(void **state)
{
    struct kns *k = *state;
    struct fv_nflog_group g = {4711, FV_NFLOG_DROP};
    struct catch *c = k->c;
    struct fv_nflog_stats st;
    uint16_t p4;
    int sent = 0, n;

    skip_unless_kernel(k);
    assert_int_equal(fv_nflog_open(&g, 1, &k->l), 0);
    /* Shrink the receive buffer so that a burst overflows it. */
    int small = 4096;
    assert_int_equal(
        setsockopt(fv_nflog_fd(k->l), SOL_SOCKET, SO_RCVBUFFORCE, &small, sizeof(small)), 0);
    k->s4 = udp_socket(AF_INET, &p4);
    for (; sent < 2000; sent++)
        send_udp(k->s4, AF_INET, 5555, 10);
    /* Read all that survived, keeping only the count, until nothing has
     * come for 400 ms (the kernel flushes a partial batch after 100 ms). */
    uint64_t now = fv_clock_mono_ms(), deadline = now + 5000, quiet_since = now;
    int got = 0;
    while (now < deadline && now - quiet_since < 400) {
        c->n = 0;
        n = fv_nflog_read(k->l, on_packet, c);
        assert_true(n >= 0);
        got += n;
        now = fv_clock_mono_ms();
        if (n > 0)
            quiet_since = now;
        else
            poll(NULL, 0, 20);
    }
    fv_nflog_stats(k->l, &st);
    assert_true(st.overruns >= 1);
    assert_true(got < sent);
    assert_int_equal(st.packets, (uint64_t)got);
    /* The listener still works: a new datagram arrives. */
    c->n = 0;
    send_udp(k->s4, AF_INET, 5555, 33);
    read_until(k->l, c, 1, 5000);
    assert_int_equal(c->n, 1);
    assert_int_equal(c->p[0].len, 61);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_group_items_parse_with_drop_as_the_default_action),
        cmocka_unit_test(test_bad_group_items_are_refused_with_a_message_that_quotes_them),
        cmocka_unit_test(test_ipv4_tcp_gives_addresses_ports_and_the_header_length),
        cmocka_unit_test(test_ipv4_options_are_skipped),
        cmocka_unit_test(test_ipv4_length_comes_from_the_header_not_the_copy),
        cmocka_unit_test(test_ipv4_icmp_uses_the_echo_id_and_type_code_like_conntrack),
        cmocka_unit_test(test_ipv4_port_protocols_and_portless_protocols),
        cmocka_unit_test(test_ipv4_only_the_first_fragment_has_ports),
        cmocka_unit_test(test_ipv4_broken_headers_are_refused),
        cmocka_unit_test(test_ipv6_tcp_udp_sctp_give_ports_and_the_header_length),
        cmocka_unit_test(test_ipv6_icmpv6_uses_the_echo_id_and_type_code),
        cmocka_unit_test(test_ipv6_extension_headers_are_skipped_to_the_transport_header),
        cmocka_unit_test(test_ipv6_only_the_first_fragment_has_ports),
        cmocka_unit_test(test_ipv6_esp_and_no_next_header_have_no_ports),
        cmocka_unit_test(test_ipv6_broken_headers_are_refused),
        cmocka_unit_test(test_the_parser_leaves_group_action_and_prefix_alone),
        cmocka_unit_test(test_garbage_and_mutated_packets_never_read_past_the_buffer),
        cmocka_unit_test(test_open_refuses_no_groups_and_duplicates_before_touching_the_kernel),
        cmocka_unit_test_setup_teardown(
            test_kernel_delivers_exact_udp_packets_of_both_families_per_group, kernel_setup,
            kernel_teardown),
        cmocka_unit_test_setup_teardown(test_kernel_group_held_by_another_socket_is_busy,
                                        kernel_setup, kernel_teardown),
        cmocka_unit_test_setup_teardown(
            test_kernel_bind_without_cap_net_admin_is_refused_with_eperm, kernel_setup,
            kernel_teardown),
        cmocka_unit_test_setup_teardown(test_kernel_overrun_is_counted_and_reading_goes_on,
                                        kernel_setup, kernel_teardown),
    };

    fv_log_threshold = FV_LOG_ERROR; /* the listener's info lines are noise here */
    return cmocka_run_group_tests(tests, NULL, NULL);
}
