/*
 * test_config.c - the table-driven YAML config loader (config/config.h):
 * each type, defaults, nesting, lists, every error message with its file,
 * line and key, durations, cleanup after partial loads, and the generated
 * documentation.
 */
#include <setjmp.h> /* cmocka.h needs these first */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/addr.h"
#include "base/err.h"
#include "config/config.h"

/* A table shaped like the agent's and the aggregator's (SPEC §3, §4). */
struct tcfg {
    char *node_name;
    char *collector;
    uint64_t poll_ms;
    uint64_t active_ms;
    char *ca_cert;
    char *client_cert;
    char *client_key;
    struct fv_cfg_cidrlist pod_cidrs;
    struct fv_cfg_strlist zones;
    bool fc_enable;
    int fc_format;
    uint32_t fc_domain;
    uint32_t api_port;
    uint64_t max_flows;
    int proto;
    bool ch_enable;
    uint64_t ch_commit_ms;
    bool ch_tls_insecure;
};

static const char *const formats[] = {"IPFIX", "JSON", NULL};
static const char *const protos[] = {"tls", "tcp", "udp", NULL};

static int check_addr(const char *value, char *why, size_t size)
{
    struct fv_addr a;

    if (fv_addr_parse(value, 4739, FV_PROTO_TLS, &a) == 0)
        return 0;
    snprintf(why, size, "not HOST[:PORT][:PROTO]");
    return -FV_EADDR;
}

#define OFF(field, ctype) FV_CFG_OFFSET(struct tcfg, field, ctype)
#define CIDRS struct fv_cfg_cidrlist
#define STRS struct fv_cfg_strlist

/* Sections interleave on purpose (tls.*, clickHouse.*): the YAML printer
 * must still group them. */
static const struct fv_cfg_opt opts[] = {
    {"nodeName", FV_CFG_STRING, OFF(node_name, char *), NULL, .help = "Kubernetes node name"},
    {"flowCollectorAddr", FV_CFG_STRING, OFF(collector, char *),
     "flow-aggregator.flow-aggregator.svc:4739:tls", .check = check_addr,
     .help = "where records go, HOST[:PORT][:PROTO]"},
    {"flowPollInterval", FV_CFG_DURATION, OFF(poll_ms, uint64_t), "5s", .min = 1000,
     .help = "how often conntrack is dumped"},
    {"activeFlowExportTimeout", FV_CFG_DURATION, OFF(active_ms, uint64_t), "30s", .min = 1000,
     .max = 3600000, .help = "export interval of an active connection"},
    {"tls.caCert", FV_CFG_STRING, OFF(ca_cert, char *), NULL, .help = "CA certificate file"},
    {"tls.clientCert", FV_CFG_STRING, OFF(client_cert, char *), NULL,
     .help = "client certificate file"},
    {"podCIDRs", FV_CFG_CIDR_LIST, OFF(pod_cidrs, CIDRS), "[]", .max = 4,
     .help = "Pod CIDRs of the cluster"},
    {"filters.zones", FV_CFG_STRING_LIST, OFF(zones, STRS), "[default]",
     .help = "conntrack zones to watch"},
    {"flowCollector.enable", FV_CFG_BOOL, OFF(fc_enable, bool), "false",
     .help = "export to an external collector"},
    {"flowCollector.recordFormat", FV_CFG_ENUM, OFF(fc_format, int), "IPFIX", .choices = formats,
     .help = "format | IPFIX or JSON"},
    {"flowCollector.observationDomainID", FV_CFG_U32, OFF(fc_domain, uint32_t), NULL,
     .help = "observation domain id"},
    {"apiServer.apiPort", FV_CFG_U32, OFF(api_port, uint32_t), "10348", .min = 1, .max = 65535,
     .help = "HTTP API port"},
    {"maxFlows", FV_CFG_U64, OFF(max_flows, uint64_t), "1000000", .min = 1,
     .help = "flow records kept in memory"},
    {"aggregatorTransportProtocol", FV_CFG_ENUM, OFF(proto, int), "tls", .choices = protos,
     .help = "transport from the agents"},
    {"clickHouse.enable", FV_CFG_BOOL, OFF(ch_enable, bool), "false", .help = "write ClickHouse"},
    {"clickHouse.commitInterval", FV_CFG_DURATION, OFF(ch_commit_ms, uint64_t), "8s", .min = 1000,
     .help = "ClickHouse batch interval"},
    {"tls.clientKey", FV_CFG_STRING, OFF(client_key, char *), NULL, .help = "client key file"},
    {"clickHouse.tls.insecureSkipVerify", FV_CFG_BOOL, OFF(ch_tls_insecure, bool), "false",
     .help = "skip server verification"},
};
#define N FV_CFG_COUNT(opts)

static int load(struct tcfg *c, const char *yaml, struct fv_cfg_error *err)
{
    return fv_cfg_load_string(opts, N, c, "agent.yaml", yaml, strlen(yaml), err);
}

static void expect_ok(struct tcfg *c, const char *yaml)
{
    struct fv_cfg_error err = {""};
    int rc = load(c, yaml, &err);

    if (rc != 0)
        fail_msg("load failed (%d): %s\n--- input ---\n%s", rc, err.msg, yaml);
}

static const char *cidr_str(const struct fv_cidr *p, char *buf, size_t size)
{
    char ip[FV_IP_STRLEN];

    snprintf(buf, size, "%s/%u", fv_ip_str(&p->net, ip), p->len);
    return buf;
}

static void assert_defaults(const struct tcfg *c)
{
    assert_null(c->node_name);
    assert_string_equal(c->collector, "flow-aggregator.flow-aggregator.svc:4739:tls");
    assert_int_equal(c->poll_ms, 5000);
    assert_int_equal(c->active_ms, 30000);
    assert_null(c->ca_cert);
    assert_int_equal(c->pod_cidrs.n, 0);
    assert_null(c->pod_cidrs.items);
    assert_int_equal(c->zones.n, 1);
    assert_string_equal(c->zones.items[0], "default");
    assert_false(c->fc_enable);
    assert_int_equal(c->fc_format, 0);
    assert_int_equal(c->fc_domain, 0);
    assert_int_equal(c->api_port, 10348);
    assert_int_equal(c->max_flows, 1000000);
    assert_int_equal(c->proto, 0);
    assert_int_equal(c->ch_commit_ms, 8000);
    assert_false(c->ch_tls_insecure);
}

/* ---- Values ---- */

static void test_defaults_apply_without_a_file(void **state)
{
    struct tcfg c = {0};
    struct fv_cfg_error err = {""};

    (void)state;
    assert_int_equal(fv_cfg_defaults(opts, N, &c, &err), 0);
    assert_defaults(&c);
    fv_cfg_fini(opts, N, &c);
}

static void test_empty_files_give_all_defaults(void **state)
{
    static const char *const empty[] = {
        "", "\n\n", "# only a comment\n", "---\n", "---\n...\n", "~\n", "{}\n",
    };

    (void)state;
    for (size_t i = 0; i < sizeof(empty) / sizeof(empty[0]); i++) {
        struct tcfg c = {0};
        expect_ok(&c, empty[i]);
        assert_defaults(&c);
        fv_cfg_fini(opts, N, &c);
    }
}

static void test_each_type_parses_from_the_file(void **state)
{
    struct tcfg c = {0};
    char buf[64];

    (void)state;
    expect_ok(&c, "nodeName: node-1\n"
                  "flowCollectorAddr: \"[fd00::1]:4739:tcp\"\n"
                  "flowPollInterval: 1m30s\n"
                  "podCIDRs: [10.244.0.0/16, fd00:10:244::/64]\n"
                  "filters: {zones: [a, b]}\n"
                  "flowCollector:\n"
                  "  enable: true\n"
                  "  recordFormat: JSON\n"
                  "  observationDomainID: 4294967295\n"
                  "maxFlows: 18446744073709551615\n"
                  "aggregatorTransportProtocol: udp\n");
    assert_string_equal(c.node_name, "node-1");
    assert_string_equal(c.collector, "[fd00::1]:4739:tcp");
    assert_int_equal(c.poll_ms, 90000);
    assert_int_equal(c.pod_cidrs.n, 2);
    assert_string_equal(cidr_str(&c.pod_cidrs.items[0], buf, sizeof(buf)), "10.244.0.0/16");
    assert_string_equal(cidr_str(&c.pod_cidrs.items[1], buf, sizeof(buf)), "fd00:10:244::/64");
    assert_int_equal(c.zones.n, 2);
    assert_string_equal(c.zones.items[0], "a");
    assert_string_equal(c.zones.items[1], "b");
    assert_true(c.fc_enable);
    assert_int_equal(c.fc_format, 1);
    assert_int_equal(c.fc_domain, UINT32_MAX);
    assert_true(c.max_flows == UINT64_MAX);
    assert_int_equal(c.proto, 2);
    assert_int_equal(c.api_port, 10348); /* untouched keys keep their defaults */
    fv_cfg_fini(opts, N, &c);
}

static void test_nested_mappings_and_dotted_keys_name_the_same_option(void **state)
{
    static const char *const forms[] = {
        "clickHouse:\n  tls:\n    insecureSkipVerify: true\n",
        "clickHouse: {tls: {insecureSkipVerify: true}}\n",
        "clickHouse.tls.insecureSkipVerify: true\n",
        "clickHouse:\n  tls.insecureSkipVerify: true\n",
        "clickHouse.tls:\n  insecureSkipVerify: true\n",
    };

    (void)state;
    for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
        struct tcfg c = {0};
        expect_ok(&c, forms[i]);
        assert_true(c.ch_tls_insecure);
        assert_false(c.ch_enable);
        fv_cfg_fini(opts, N, &c);
    }
}

static void test_sections_may_be_split_and_empty(void **state)
{
    struct tcfg c = {0};

    (void)state;
    /* A section's keys may come in any order, an empty section is fine, and
     * a dotted key may sit next to its section (they are different keys). */
    expect_ok(&c, "tls:\n  clientKey: k\n  caCert: ca\n"
                  "tls.clientCert: cert\n"
                  "apiServer:\n"
                  "clickHouse: {}\n");
    assert_string_equal(c.ca_cert, "ca");
    assert_string_equal(c.client_cert, "cert");
    assert_string_equal(c.client_key, "k");
    assert_int_equal(c.api_port, 10348);
    fv_cfg_fini(opts, N, &c);
}

static void test_block_and_flow_lists_replace_the_default(void **state)
{
    struct tcfg c = {0};
    char buf[64];

    (void)state;
    expect_ok(&c, "podCIDRs:\n"
                  "  - 10.244.1.0/24\n"
                  "  - 10.244.2.7/24 # host bits are cleared\n"
                  "filters:\n"
                  "  zones:\n"
                  "  - \"quoted: yes\"\n");
    assert_int_equal(c.pod_cidrs.n, 2);
    assert_string_equal(cidr_str(&c.pod_cidrs.items[1], buf, sizeof(buf)), "10.244.2.0/24");
    assert_int_equal(c.zones.n, 1); /* replaced, not appended to "default" */
    assert_string_equal(c.zones.items[0], "quoted: yes");
    fv_cfg_fini(opts, N, &c);

    memset(&c, 0, sizeof(c));
    expect_ok(&c, "filters: {zones: []}\n");
    assert_int_equal(c.zones.n, 0);
    assert_null(c.zones.items);
    fv_cfg_fini(opts, N, &c);
}

static void test_empty_values_keep_the_default_and_quotes_make_strings(void **state)
{
    struct tcfg c = {0};

    (void)state;
    expect_ok(&c, "flowCollectorAddr:\n"
                  "flowPollInterval: ~\n"
                  "filters: {zones: null}\n"
                  "apiServer: {apiPort: NULL}\n"
                  "nodeName: \"\"\n"
                  "tls: {caCert: 'null'}\n");
    assert_string_equal(c.collector, "flow-aggregator.flow-aggregator.svc:4739:tls");
    assert_int_equal(c.poll_ms, 5000);
    assert_int_equal(c.zones.n, 1);
    assert_int_equal(c.api_port, 10348);
    assert_string_equal(c.node_name, "");
    assert_string_equal(c.ca_cert, "null");
    fv_cfg_fini(opts, N, &c);
}

static void test_booleans_accept_true_false_yes_no_on_off_in_any_case(void **state)
{
    static const struct {
        const char *text;
        bool value;
    } cases[] = {
        {"true", true}, {"True", true}, {"TRUE", true},   {"yes", true},    {"Yes", true},
        {"on", true},   {"ON", true},   {"'true'", true}, {"false", false}, {"False", false},
        {"no", false},  {"NO", false},  {"off", false},   {"Off", false},
    };
    char yaml[64];

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct tcfg c = {0};
        snprintf(yaml, sizeof(yaml), "clickHouse: {enable: %s}\n", cases[i].text);
        expect_ok(&c, yaml);
        if (c.ch_enable != cases[i].value)
            fail_msg("%s parsed as %d", cases[i].text, c.ch_enable);
        fv_cfg_fini(opts, N, &c);
    }
}

static void test_enums_match_in_any_case_and_store_the_index(void **state)
{
    struct tcfg c = {0};

    (void)state;
    expect_ok(&c, "aggregatorTransportProtocol: TCP\nflowCollector: {recordFormat: json}\n");
    assert_int_equal(c.proto, 1);
    assert_int_equal(c.fc_format, 1);
    fv_cfg_fini(opts, N, &c);
}

static void test_number_bounds_are_inclusive(void **state)
{
    struct tcfg c = {0};

    (void)state;
    expect_ok(&c, "apiServer: {apiPort: 65535}\nactiveFlowExportTimeout: 1h\n"
                  "flowPollInterval: 1s\nmaxFlows: 1\n");
    assert_int_equal(c.api_port, 65535);
    assert_int_equal(c.active_ms, 3600000);
    assert_int_equal(c.poll_ms, 1000);
    assert_int_equal(c.max_flows, 1);
    expect_ok(&c, "apiServer: {apiPort: 1}\nactiveFlowExportTimeout: 1000ms\n");
    assert_int_equal(c.api_port, 1);
    assert_int_equal(c.active_ms, 1000);
    fv_cfg_fini(opts, N, &c);
}

/* ---- Durations ---- */

static void test_valid_durations_parse_to_milliseconds(void **state)
{
    static const struct {
        const char *text;
        uint64_t ms;
    } cases[] = {
        {"0s", 0},
        {"0ms", 0},
        {"500ms", 500},
        {"5s", 5000},
        {"1m", 60000},
        {"1m30s", 90000},
        {"1h", 3600000},
        {"2h45m", 9900000},
        {"1h2m3s4ms", 3723004},
        {"1.5s", 1500},
        {".5s", 500},
        {"1.s", 1000},
        {"0.25m", 15000},
        {"1500000us", 1500},
        {"1500000\xc2\xb5s", 1500},
        {"2000000ns", 2},
        {"+5s", 5000},
        {"1s1s", 2000},
        {"1.0000009s", 1000},         /* digits past microseconds cannot change the result */
        {"5124095h", 18446742000000}, /* the largest whole hour: 2^64 ns is the limit */
    };
    uint64_t ms;

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int rc = fv_cfg_parse_duration(cases[i].text, &ms);
        if (rc != 0 || ms != cases[i].ms)
            fail_msg("'%s': rc %d, %llu ms, want %llu", cases[i].text, rc, (unsigned long long)ms,
                     (unsigned long long)cases[i].ms);
    }
}

static void test_invalid_durations_are_rejected(void **state)
{
    static const struct {
        const char *text;
        int rc;
    } cases[] = {
        {"", -EINVAL},         {"0", -EINVAL},
        {"5", -EINVAL},        {"-5s", -EINVAL},
        {"5x", -EINVAL},       {"s", -EINVAL},
        {".s", -EINVAL},       {"5 s", -EINVAL},
        {"5s ", -EINVAL},      {"1m-30s", -EINVAL},
        {"5S", -EINVAL},       {"1d", -EINVAL},
        {"1e3ms", -EINVAL},    {"++5s", -EINVAL},
        {"5s5", -EINVAL},      {"1.5ms", -EDOM},
        {"100us", -EDOM},      {"1ns", -EDOM},
        {"5124096h", -ERANGE}, {"99999999999999999999ms", -ERANGE},
    };
    uint64_t ms = 12345;

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int rc = fv_cfg_parse_duration(cases[i].text, &ms);
        if (rc != cases[i].rc)
            fail_msg("'%s': rc %d, want %d", cases[i].text, rc, cases[i].rc);
    }
    assert_int_equal(ms, 12345); /* failures leave the output alone */
}

static void test_formatted_durations_are_shortest_and_parse_back(void **state)
{
    static const struct {
        uint64_t ms;
        const char *text;
    } cases[] = {
        {0, "0s"},
        {1, "1ms"},
        {500, "500ms"},
        {1000, "1s"},
        {1500, "1s500ms"},
        {60000, "1m"},
        {90000, "1m30s"},
        {3600000, "1h"},
        {3600001, "1h1ms"},
        {9900000, "2h45m"},
        {UINT64_MAX, "5124095576030h25m51s615ms"},
    };
    char buf[FV_CFG_DURATION_STRLEN];
    uint64_t back;

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_string_equal(fv_cfg_format_duration(cases[i].ms, buf), cases[i].text);
        if (cases[i].ms < UINT64_MAX / 1000000) {
            assert_int_equal(fv_cfg_parse_duration(buf, &back), 0);
            assert_true(back == cases[i].ms);
        }
    }
}

/* ---- Errors: every message names the file, the line and the key ---- */

struct error_case {
    const char *yaml;
    const char *msg;
};

static void expect_errors(const struct error_case *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct tcfg c = {0};
        struct fv_cfg_error err = {""};
        int rc = load(&c, cases[i].yaml, &err);

        if (rc != -FV_ECONFIG || strcmp(err.msg, cases[i].msg) != 0)
            fail_msg("case %zu: rc %d\n  got:  %s\n  want: %s\n--- input ---\n%s", i, rc, err.msg,
                     cases[i].msg, cases[i].yaml);
        fv_cfg_fini(opts, N, &c);
    }
}
#define EXPECT_ERRORS(cases) expect_errors(cases, sizeof(cases) / sizeof(cases[0]))

static void test_unknown_keys_are_errors_with_the_closest_key_suggested(void **state)
{
    static const struct error_case cases[] = {
        {"nodeName: a\n\n\n\n\n\nflowPolInterval: 5s\n",
         "agent.yaml:7: unknown key 'flowPolInterval' (did you mean 'flowPollInterval'?)"},
        {"flowPollIntervla: 5s\n",
         "agent.yaml:1: unknown key 'flowPollIntervla' (did you mean 'flowPollInterval'?)"},
        {"flowpollinterval: 5s\n",
         "agent.yaml:1: unknown key 'flowpollinterval' (did you mean 'flowPollInterval'?)"},
        {"tls:\n  caCrt: x\n",
         "agent.yaml:2: unknown key 'tls.caCrt' (did you mean 'tls.caCert'?)"},
        {"tsl:\n  caCert: x\n", "agent.yaml:1: unknown key 'tsl' (did you mean 'tls'?)"},
        {"clickHouse: {tls: {insecureSkipVerfy: true}}\n",
         "agent.yaml:1: unknown key 'clickHouse.tls.insecureSkipVerfy' "
         "(did you mean 'clickHouse.tls.insecureSkipVerify'?)"},
        {"collectorAddress: x\n", "agent.yaml:1: unknown key 'collectorAddress'"},
        {"tls: {caCert: a, bogus: {deep: {er: 1}}}\n", "agent.yaml:1: unknown key 'tls.bogus'"},
        {"nodeName.x: a\n", "agent.yaml:1: unknown key 'nodeName.x' (did you mean 'nodeName'?)"},
        {"\"nodeName\\0\": a\n", "agent.yaml:1: unknown key 'nodeName?'"},
        {"42: a\n", "agent.yaml:1: unknown key '42'"},
    };

    (void)state;
    EXPECT_ERRORS(cases);
}

static void test_values_of_the_wrong_shape_are_errors(void **state)
{
    static const struct error_case cases[] = {
        {"flowPollInterval:\n  a: 1\n",
         "agent.yaml:2: flowPollInterval: expected a duration, got a mapping"},
        {"nodeName: [a, b]\n", "agent.yaml:1: nodeName: expected a string, got a list"},
        {"flowCollector:\n  enable:\n    - true\n",
         "agent.yaml:3: flowCollector.enable: expected a boolean, got a list"},
        {"flowCollector: {recordFormat: [JSON]}\n",
         "agent.yaml:1: flowCollector.recordFormat: expected one of IPFIX, JSON, got a list"},
        {"podCIDRs: 10.0.0.0/8\n",
         "agent.yaml:1: podCIDRs: expected a list of CIDRs, got a single value '10.0.0.0/8'"},
        {"filters: {zones: {a: b}}\n",
         "agent.yaml:1: filters.zones: expected a list of strings, got a mapping"},
        {"podCIDRs:\n  - 10.0.0.0/8\n  - [10.1.0.0/16]\n",
         "agent.yaml:3: podCIDRs: item 2: expected a CIDR, got a list"},
        {"filters:\n  zones:\n    - a\n    -\n",
         "agent.yaml:4: filters.zones: item 2: expected a string, got nothing"},
        {"tls: /etc/ca.pem\n", "agent.yaml:1: tls: expected a mapping of tls.* keys, got a single "
                               "value"},
        {"clickHouse:\n  tls: [a]\n",
         "agent.yaml:2: clickHouse.tls: expected a mapping of clickHouse.tls.* keys, got a list"},
        {"- nodeName: a\n", "agent.yaml:1: the top level must be a mapping of keys, not a list"},
        {"just text\n",
         "agent.yaml:1: the top level must be a mapping of keys, not a single value"},
        {"? [a, b]\n: c\n", "agent.yaml:1: a key must be a string, not a list"},
        {"nodeName: &n a\ntls: {caCert: *n}\n",
         "agent.yaml:2: tls.caCert: aliases (*n) are not supported"},
        {"nodeName: \"a\\0b\"\n", "agent.yaml:1: nodeName: value contains a NUL byte"},
    };

    (void)state;
    EXPECT_ERRORS(cases);
}

static void test_bad_scalars_are_errors_that_say_what_is_expected(void **state)
{
    static const struct error_case cases[] = {
        {"nodeName: a\n\n\n\n\n\n\n\n\n\n\nflowPollInterval: 5x\n",
         "agent.yaml:12: flowPollInterval: '5x' is not a duration (use e.g. 500ms, 5s, 1m)"},
        {"flowPollInterval: 5\n",
         "agent.yaml:1: flowPollInterval: '5' is not a duration (use e.g. 500ms, 5s, 1m)"},
        {"flowPollInterval: -5s\n",
         "agent.yaml:1: flowPollInterval: '-5s' is negative; durations must be 0s or more"},
        {"flowPollInterval: 1500us\n",
         "agent.yaml:1: flowPollInterval: '1500us' is not a whole number of milliseconds"},
        {"clickHouse:\n  enable: maybe\n",
         "agent.yaml:2: clickHouse.enable: 'maybe' is not a boolean (use true or false)"},
        {"clickHouse: {enable: 1}\n",
         "agent.yaml:1: clickHouse.enable: '1' is not a boolean (use true or false)"},
        {"maxFlows: 10k\n", "agent.yaml:1: maxFlows: '10k' is not a non-negative integer"},
        {"maxFlows: -1\n", "agent.yaml:1: maxFlows: '-1' is not a non-negative integer"},
        {"maxFlows: 0x10\n", "agent.yaml:1: maxFlows: '0x10' is not a non-negative integer"},
        {"maxFlows: ''\n", "agent.yaml:1: maxFlows: '' is not a non-negative integer"},
        {"podCIDRs:\n  - 10.0.0.0/8\n  - 10.0.0.0/33\n",
         "agent.yaml:3: podCIDRs: item 2: '10.0.0.0/33' is not a CIDR "
         "(e.g. 10.244.0.0/16 or fd00:10:244::/64)"},
        {"podCIDRs: [10.0.0.1]\n", "agent.yaml:1: podCIDRs: item 1: '10.0.0.1' is not a CIDR "
                                   "(e.g. 10.244.0.0/16 or fd00:10:244::/64)"},
        {"flowCollector:\n  recordFormat: XML\n",
         "agent.yaml:2: flowCollector.recordFormat: 'XML' is not one of IPFIX, JSON"},
        {"aggregatorTransportProtocol: sctp\n",
         "agent.yaml:1: aggregatorTransportProtocol: 'sctp' is not one of tls, tcp, udp"},
        {"flowCollectorAddr: \"[::1\"\n",
         "agent.yaml:1: flowCollectorAddr: '[::1' is invalid: not HOST[:PORT][:PROTO]"},
        {"nodeName: \"line1\\nline2\\t\"\nmaxFlows: \"line1\\nline2\\t\"\n",
         "agent.yaml:2: maxFlows: 'line1?line2?' is not a non-negative integer"},
        {"maxFlows: 1234567890123456789012345678901234567890123456789012345678901234567890\n",
         "agent.yaml:1: maxFlows: 123456789012345678901234567890123456789012345678901234567890..."
         " is above the maximum 18446744073709551615"},
    };

    (void)state;
    EXPECT_ERRORS(cases);
}

static void test_values_outside_their_limits_are_errors(void **state)
{
    static const struct error_case cases[] = {
        {"flowPollInterval: 500ms\n",
         "agent.yaml:1: flowPollInterval: 500ms is below the minimum 1s"},
        {"activeFlowExportTimeout: 1h0m1s\n",
         "agent.yaml:1: activeFlowExportTimeout: 1h0m1s is above the maximum 1h"},
        {"activeFlowExportTimeout: 999999999999h\n",
         "agent.yaml:1: activeFlowExportTimeout: 999999999999h is above the maximum 1h"},
        {"apiServer:\n  apiPort: 65536\n",
         "agent.yaml:2: apiServer.apiPort: 65536 is above the maximum 65535"},
        {"apiServer: {apiPort: 0}\n", "agent.yaml:1: apiServer.apiPort: 0 is below the minimum 1"},
        {"flowCollector: {observationDomainID: 4294967296}\n",
         "agent.yaml:1: flowCollector.observationDomainID: 4294967296 is above the maximum "
         "4294967295"},
        {"maxFlows: 18446744073709551616\n",
         "agent.yaml:1: maxFlows: 18446744073709551616 is above the maximum 18446744073709551615"},
        {"maxFlows: 0\n", "agent.yaml:1: maxFlows: 0 is below the minimum 1"},
        {"podCIDRs:\n  - 10.0.0.0/8\n  - 10.1.0.0/16\n  - 10.2.0.0/16\n  - 10.3.0.0/16\n"
         "  - 10.4.0.0/16\n",
         "agent.yaml:6: podCIDRs: more than the maximum of 4 items"},
    };

    (void)state;
    EXPECT_ERRORS(cases);
}

static void test_duplicate_keys_are_errors_naming_the_first_line(void **state)
{
    static const struct error_case cases[] = {
        {"nodeName: a\nmaxFlows: 1\nnodeName: b\n",
         "agent.yaml:3: duplicate key 'nodeName' (first set on line 1)"},
        {"tls:\n  caCert: a\n  caCert: b\n",
         "agent.yaml:3: duplicate key 'tls.caCert' (first set on line 2)"},
        {"tls:\n  caCert: a\ntls.caCert: b\n",
         "agent.yaml:3: duplicate key 'tls.caCert' (first set on line 2)"},
        {"tls:\n  caCert: a\ntls:\n  clientCert: b\n",
         "agent.yaml:3: duplicate key 'tls' (first set on line 1)"},
        {"nodeName:\nnodeName: b\n",
         "agent.yaml:2: duplicate key 'nodeName' (first set on line 1)"},
        {"clickHouse: {tls: {}}\nclickHouse.tls: {}\n",
         "agent.yaml:2: duplicate key 'clickHouse.tls' (first set on line 1)"},
    };

    (void)state;
    EXPECT_ERRORS(cases);
}

/* The wording after "invalid YAML:" is libyaml's (0.2.5); only the prefix is ours. */
static void test_yaml_syntax_errors_give_libyamls_problem_and_line(void **state)
{
    static const struct error_case cases[] = {
        {"nodeName: a\ntls:\n  caCert: a: b\n",
         "agent.yaml:3: invalid YAML: mapping values are not allowed in this context"},
        {"nodeName: a\nmaxFlows 1\ntls: {}\n",
         "agent.yaml:3: invalid YAML: could not find expected ':', while scanning a simple key"},
        {"nodeName: a\n\tmaxFlows: 1\n",
         "agent.yaml:2: invalid YAML: found a tab character that violates indentation, while "
         "scanning a plain scalar"},
        {"\tnodeName: a\n",
         "agent.yaml:1: invalid YAML: found character that cannot start any token, while "
         "scanning for the next token"},
        {"nodeName: \"abc\n",
         "agent.yaml:2: invalid YAML: found unexpected end of stream, while scanning a quoted "
         "scalar"},
        {"nodeName: a\nfilters: {zones: [a, b}\n",
         "agent.yaml:2: invalid YAML: did not find expected ',' or ']', while parsing a flow "
         "sequence"},
        {"nodeName: a\nmaxFlows: 1\nnodeName: \xff\n",
         "agent.yaml:3: invalid YAML: invalid leading UTF-8 octet"},
        {"nodeName: a\n---\nmaxFlows: 2\n",
         "agent.yaml:2: only one YAML document is allowed per file"},
    };

    (void)state;
    EXPECT_ERRORS(cases);
}

/* ---- Files ---- */

static char *write_temp(const char *text, size_t len)
{
    char *path = strdup("/tmp/test_config.XXXXXX");
    int fd = mkstemp(path);

    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, len), (ssize_t)len);
    close(fd);
    return path;
}

static void test_files_load_and_errors_name_the_path(void **state)
{
    struct tcfg c = {0};
    struct fv_cfg_error err;
    char *path = write_temp("nodeName: from-file\n", 20), want[600];

    (void)state;
    assert_int_equal(fv_cfg_load_file(opts, N, &c, path, &err), 0);
    assert_string_equal(c.node_name, "from-file");
    unlink(path);
    free(path);

    path = write_temp("nodeName: a\nbogus: 1\n", 21);
    assert_int_equal(fv_cfg_load_file(opts, N, &c, path, &err), -FV_ECONFIG);
    snprintf(want, sizeof(want), "%s:2: unknown key 'bogus'", path);
    assert_string_equal(err.msg, want);
    unlink(path);
    free(path);
    fv_cfg_fini(opts, N, &c);
}

static void test_unreadable_files_are_errors_with_the_reason(void **state)
{
    struct tcfg c = {0};
    struct fv_cfg_error err;

    (void)state;
    assert_int_equal(fv_cfg_load_file(opts, N, &c, "/nonexistent/agent.yaml", &err), -ENOENT);
    assert_string_equal(err.msg, "cannot read /nonexistent/agent.yaml: No such file or directory");
    assert_defaults(&c); /* the defaults are applied before the file is read */
    assert_int_equal(fv_cfg_load_file(opts, N, &c, "/", &err), -EISDIR);
    assert_string_equal(err.msg, "cannot read /: Is a directory");
    fv_cfg_fini(opts, N, &c);
}

static void test_files_past_the_size_limit_are_rejected(void **state)
{
    size_t len = FV_CFG_MAX_FILE + 1;
    char *text = malloc(len), *path, want[600];
    struct tcfg c = {0};
    struct fv_cfg_error err;

    (void)state;
    assert_non_null(text);
    memset(text, '#', len); /* one long comment: valid YAML, just too much of it */
    path = write_temp(text, len);
    assert_int_equal(fv_cfg_load_file(opts, N, &c, path, &err), -FV_ECONFIG);
    snprintf(want, sizeof(want), "%s: larger than 1048576 bytes", path);
    assert_string_equal(err.msg, want);
    unlink(path);
    free(path);
    /* Exactly the limit is fine. */
    path = write_temp(text, len - 1);
    assert_int_equal(fv_cfg_load_file(opts, N, &c, path, &err), 0);
    unlink(path);
    free(path);
    free(text);
    fv_cfg_fini(opts, N, &c);
}

/* ---- Ownership ---- */

static void test_fini_after_a_partial_load_frees_everything(void **state)
{
    /* Each input sets strings and lists, then fails at a different point:
     * after a list, inside a list of strings, inside a nested section. */
    static const char *const partial[] = {
        ("nodeName: a\ntls: {caCert: b}\nfilters: {zones: [x, y]}\npodCIDRs: [10.0.0.0/8]\n"
         "maxFlows: bad\n"),
        "nodeName: a\nfilters:\n  zones: [x, y, z, {bad: 1}]\n",
        "nodeName: a\nfilters:\n  zones: [x, y, z, \"n\\0ul\"]\n",
        "filters: {zones: [x]}\npodCIDRs: [10.0.0.0/8, 10.0.0.0/99]\n",
        "tls: {caCert: a, clientCert: b, clientKey: c}\nclickHouse: {tls: {bogus: 1}}\n",
        "nodeName: a\nflowCollectorAddr: b\nfilters: {zones: [x]}\n[unclosed\n",
    };

    (void)state;
    for (size_t i = 0; i < sizeof(partial) / sizeof(partial[0]); i++) {
        struct tcfg c = {0};
        struct fv_cfg_error err;
        assert_int_not_equal(load(&c, partial[i], &err), 0);
        fv_cfg_fini(opts, N, &c);
        assert_null(c.node_name);
        assert_null(c.zones.items);
        assert_int_equal(c.zones.n, 0);
        fv_cfg_fini(opts, N, &c); /* twice is fine */
    }
}

static void test_loading_again_frees_what_the_target_held(void **state)
{
    struct tcfg c = {0};

    (void)state;
    fv_cfg_fini(opts, N, &c); /* on a zeroed target: a no-op */
    expect_ok(&c, "nodeName: a\nfilters: {zones: [x, y]}\npodCIDRs: [10.0.0.0/8]\n");
    expect_ok(&c, "nodeName: b\n");
    assert_string_equal(c.node_name, "b");
    assert_int_equal(c.pod_cidrs.n, 0); /* back to the default */
    assert_int_equal(fv_cfg_defaults(opts, N, &c, NULL), 0);
    assert_null(c.node_name);
    fv_cfg_fini(opts, N, &c);
}

static void test_a_null_error_pointer_is_allowed(void **state)
{
    struct tcfg c = {0};

    (void)state;
    assert_int_equal(load(&c, "bogus: 1\n", NULL), -FV_ECONFIG);
    assert_int_equal(fv_cfg_load_file(opts, N, &c, "/nonexistent", NULL), -ENOENT);
    fv_cfg_fini(opts, N, &c);
}

static void test_input_need_not_be_nul_terminated(void **state)
{
    static const char text[] = {'n', 'o', 'd', 'e', 'N', 'a', 'm', 'e', ':', ' ', 'x', 'y'};
    struct tcfg c = {0};

    (void)state;
    assert_int_equal(fv_cfg_load_string(opts, N, &c, "t", text, 11, NULL), 0);
    assert_string_equal(c.node_name, "x");
    fv_cfg_fini(opts, N, &c);
}

/* ---- The table itself ---- */

struct small {
    uint64_t d;
    int e;
    struct fv_cfg_cidrlist l;
    char *s;
};

static void expect_table_error(const struct fv_cfg_opt *t, size_t n, const char *msg)
{
    struct small s = {0};
    struct fv_cfg_error err = {""};

    assert_int_equal(fv_cfg_defaults(t, n, &s, &err), -EINVAL);
    assert_string_equal(err.msg, msg);
    /* The loaders check the table before reading anything. */
    assert_int_equal(fv_cfg_load_string(t, n, &s, "x.yaml", "", 0, &err), -EINVAL);
    assert_string_equal(err.msg, msg);
    fv_cfg_fini(t, n, &s);
}

static void test_broken_tables_are_reported_as_programming_errors(void **state)
{
    static const char *const none[] = {NULL};
    const struct fv_cfg_opt bad_default[] = {
        {"poll", FV_CFG_DURATION, offsetof(struct small, d), "5x", .help = "h"}};
    const struct fv_cfg_opt low_default[] = {
        {"poll", FV_CFG_DURATION, offsetof(struct small, d), "500ms", .min = 1000, .help = "h"}};
    const struct fv_cfg_opt bad_list[] = {
        {"nets", FV_CFG_CIDR_LIST, offsetof(struct small, l), "10.0.0.0/8", .help = "h"}};
    const struct fv_cfg_opt bad_item[] = {
        {"nets", FV_CFG_CIDR_LIST, offsetof(struct small, l), "[10.0.0.0/8, x]", .help = "h"}};
    const struct fv_cfg_opt no_choices[] = {
        {"mode", FV_CFG_ENUM, offsetof(struct small, e), NULL, .choices = none, .help = "h"}};
    const struct fv_cfg_opt no_help[] = {
        {"poll", FV_CFG_DURATION, offsetof(struct small, d), .help = NULL}};
    const struct fv_cfg_opt twice[] = {
        {"a.b", FV_CFG_STRING, offsetof(struct small, s), .help = "h"},
        {"a.b", FV_CFG_DURATION, offsetof(struct small, d), .help = "h"}};
    const struct fv_cfg_opt leaf_and_section[] = {
        {"a.b", FV_CFG_STRING, offsetof(struct small, s), .help = "h"},
        {"a", FV_CFG_DURATION, offsetof(struct small, d), .help = "h"}};
    const struct fv_cfg_opt bad_key[] = {
        {"a..b", FV_CFG_STRING, offsetof(struct small, s), .help = "h"}};

    (void)state;
    expect_table_error(bad_default, 1,
                       "config table: poll: '5x' is not a duration (use e.g. 500ms, 5s, 1m)");
    expect_table_error(low_default, 1, "config table: poll: 500ms is below the minimum 1s");
    expect_table_error(bad_list, 1,
                       "config table: nets: the default must be a YAML list such as [a, b]");
    expect_table_error(bad_item, 1,
                       "config table: nets: item 2: 'x' is not a CIDR "
                       "(e.g. 10.244.0.0/16 or fd00:10:244::/64)");
    expect_table_error(no_choices, 1, "config table: mode: an enum needs choices");
    expect_table_error(no_help, 1, "config table: poll: no help text");
    expect_table_error(twice, 2, "config table: a.b: the key appears twice");
    expect_table_error(leaf_and_section, 2,
                       "config table: a: the key is both an option and a section");
    expect_table_error(bad_key, 1,
                       "config table: row 0: the key must be 1 to 127 characters of dotted names");
}

/* ---- Documentation ---- */

static char *print(const struct fv_cfg_opt *t, size_t n, enum fv_cfg_print_format fmt)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);

    assert_non_null(f);
    assert_int_equal(fv_cfg_print(t, n, f, fmt), 0);
    fclose(f);
    return buf;
}

static const struct fv_cfg_opt doc_opts[] = {
    {"flowPollInterval", FV_CFG_DURATION, OFF(poll_ms, uint64_t), "5s", .min = 1000,
     .help = "how often conntrack is dumped"},
    {"tls.caCert", FV_CFG_STRING, OFF(ca_cert, char *), NULL, .help = "CA certificate file"},
    {"apiServer.apiPort", FV_CFG_U32, OFF(api_port, uint32_t), "10348", .min = 1, .max = 65535,
     .help = "HTTP API port"},
    {"flowCollector.recordFormat", FV_CFG_ENUM, OFF(fc_format, int), "IPFIX", .choices = formats,
     .help = "IPFIX | JSON"},
    {"podCIDRs", FV_CFG_CIDR_LIST, OFF(pod_cidrs, CIDRS), "[10.244.0.0/16]", .max = 4,
     .help = "Pod CIDRs"},
    {"tls.clientCert", FV_CFG_STRING, OFF(client_cert, char *), "a \"quoted\" path",
     .help = "client certificate"},
};

static void test_markdown_lists_every_key_with_type_default_and_limits(void **state)
{
    char *md = print(doc_opts, FV_CFG_COUNT(doc_opts), FV_CFG_PRINT_MARKDOWN);

    (void)state;
    assert_string_equal(
        md, "| key | type | default | limits | description |\n"
            "|-----|------|---------|--------|-------------|\n"
            "| `flowPollInterval` | duration | `5s` | ≥ 1s | how often conntrack is dumped |\n"
            "| `tls.caCert` | string |  |  | CA certificate file |\n"
            "| `apiServer.apiPort` | integer | `10348` | 1..65535 | HTTP API port |\n"
            "| `flowCollector.recordFormat` | enum | `IPFIX` | IPFIX, JSON | IPFIX \\| JSON |\n"
            "| `podCIDRs` | list of CIDRs | `[10.244.0.0/16]` | ≤ 4 items | Pod CIDRs |\n"
            "| `tls.clientCert` | string | `a \"quoted\" path` |  | client certificate |\n");
    free(md);
}

static void test_yaml_example_groups_sections_and_loads_back_to_the_defaults(void **state)
{
    char *yaml = print(doc_opts, FV_CFG_COUNT(doc_opts), FV_CFG_PRINT_YAML);
    struct tcfg c = {0}, d = {0};
    struct fv_cfg_error err = {""};

    (void)state;
    assert_string_equal(yaml, "# Every key with its default; generated from the config table.\n"
                              "# Keys left empty have no default.\n"
                              "\n"
                              "# how often conntrack is dumped (duration; ≥ 1s)\n"
                              "flowPollInterval: 5s\n"
                              "\n"
                              "tls:\n"
                              "  # CA certificate file (string)\n"
                              "  caCert:\n"
                              "\n"
                              "  # client certificate (string)\n"
                              "  clientCert: \"a \\\"quoted\\\" path\"\n"
                              "\n"
                              "apiServer:\n"
                              "  # HTTP API port (integer; 1..65535)\n"
                              "  apiPort: 10348\n"
                              "\n"
                              "flowCollector:\n"
                              "  # IPFIX | JSON (enum; IPFIX, JSON)\n"
                              "  recordFormat: IPFIX\n"
                              "\n"
                              "# Pod CIDRs (list of CIDRs; ≤ 4 items)\n"
                              "podCIDRs: [10.244.0.0/16]\n");
    assert_int_equal(fv_cfg_load_string(doc_opts, FV_CFG_COUNT(doc_opts), &c, "example.yaml", yaml,
                                        strlen(yaml), &err),
                     0);
    assert_int_equal(fv_cfg_defaults(doc_opts, FV_CFG_COUNT(doc_opts), &d, &err), 0);
    assert_int_equal(c.poll_ms, d.poll_ms);
    assert_null(c.ca_cert);
    assert_string_equal(c.client_cert, d.client_cert);
    assert_int_equal(c.pod_cidrs.n, 1);
    fv_cfg_fini(doc_opts, FV_CFG_COUNT(doc_opts), &c);
    fv_cfg_fini(doc_opts, FV_CFG_COUNT(doc_opts), &d);
    free(yaml);
}

static void test_yaml_example_of_the_full_table_loads_cleanly(void **state)
{
    char *yaml = print(opts, N, FV_CFG_PRINT_YAML);
    struct tcfg c = {0};
    struct fv_cfg_error err = {""};

    (void)state;
    if (load(&c, yaml, &err) != 0)
        fail_msg("%s\n--- generated ---\n%s", err.msg, yaml);
    assert_defaults(&c);
    fv_cfg_fini(opts, N, &c);
    free(yaml);
}

static void test_help_text_shows_type_default_limits_and_description(void **state)
{
    char *text = print(doc_opts, 3, FV_CFG_PRINT_TEXT);

    (void)state;
    assert_string_equal(text, "  flowPollInterval (duration, default 5s, ≥ 1s)\n"
                              "      how often conntrack is dumped\n"
                              "  tls.caCert (string)\n"
                              "      CA certificate file\n"
                              "  apiServer.apiPort (integer, default 10348, 1..65535)\n"
                              "      HTTP API port\n");
    free(text);
    assert_int_equal(fv_cfg_print(doc_opts, 1, stdout, (enum fv_cfg_print_format)99), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_apply_without_a_file),
        cmocka_unit_test(test_empty_files_give_all_defaults),
        cmocka_unit_test(test_each_type_parses_from_the_file),
        cmocka_unit_test(test_nested_mappings_and_dotted_keys_name_the_same_option),
        cmocka_unit_test(test_sections_may_be_split_and_empty),
        cmocka_unit_test(test_block_and_flow_lists_replace_the_default),
        cmocka_unit_test(test_empty_values_keep_the_default_and_quotes_make_strings),
        cmocka_unit_test(test_booleans_accept_true_false_yes_no_on_off_in_any_case),
        cmocka_unit_test(test_enums_match_in_any_case_and_store_the_index),
        cmocka_unit_test(test_number_bounds_are_inclusive),
        cmocka_unit_test(test_valid_durations_parse_to_milliseconds),
        cmocka_unit_test(test_invalid_durations_are_rejected),
        cmocka_unit_test(test_formatted_durations_are_shortest_and_parse_back),
        cmocka_unit_test(test_unknown_keys_are_errors_with_the_closest_key_suggested),
        cmocka_unit_test(test_values_of_the_wrong_shape_are_errors),
        cmocka_unit_test(test_bad_scalars_are_errors_that_say_what_is_expected),
        cmocka_unit_test(test_values_outside_their_limits_are_errors),
        cmocka_unit_test(test_duplicate_keys_are_errors_naming_the_first_line),
        cmocka_unit_test(test_yaml_syntax_errors_give_libyamls_problem_and_line),
        cmocka_unit_test(test_files_load_and_errors_name_the_path),
        cmocka_unit_test(test_unreadable_files_are_errors_with_the_reason),
        cmocka_unit_test(test_files_past_the_size_limit_are_rejected),
        cmocka_unit_test(test_fini_after_a_partial_load_frees_everything),
        cmocka_unit_test(test_loading_again_frees_what_the_target_held),
        cmocka_unit_test(test_a_null_error_pointer_is_allowed),
        cmocka_unit_test(test_input_need_not_be_nul_terminated),
        cmocka_unit_test(test_broken_tables_are_reported_as_programming_errors),
        cmocka_unit_test(test_markdown_lists_every_key_with_type_default_and_limits),
        cmocka_unit_test(test_yaml_example_groups_sections_and_loads_back_to_the_defaults),
        cmocka_unit_test(test_yaml_example_of_the_full_table_loads_cleanly),
        cmocka_unit_test(test_help_text_shows_type_default_limits_and_description),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
