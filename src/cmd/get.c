/*
 * get.c - `flowvis get`: queries a running aggregator's HTTP API (SPEC §7)
 * and prints the flow records it holds in memory, the stored flow records
 * (GET /api/v1/flows, docs/api.md) or its record metrics as a table, JSON
 * or YAML.
 *
 * One request per run: the filters are checked here first (so a typo never
 * reaches the server; `get flows` checks them with the server's own
 * parser, store/query.h), the query is built with every value URL-escaped,
 * libcurl does the request (TLS, certificate checks, bearer token,
 * redirects, timeouts) into a buffer capped at MAX_BODY, and jansson
 * parses the answer.  Exit status: 0 printed, 1 the request failed or the
 * server answered with an error (the message says which and shows the
 * server's "error" text), 2 a usage error, reported before any request.
 */
#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "base/err.h"
#include "base/ip.h"
#include "base/sbuf.h"
#include "cmd/cmd.h"
#include "http/table.h"
#include "http/yaml_out.h"
#include "store/query.h"

#define DEFAULT_SERVER "http://127.0.0.1:10348"
#define DEFAULT_TIMEOUT_S 30
#define MAX_BODY (256u << 20) /* largest answer accepted, bytes */
#define MAX_TOKEN (64u << 10) /* largest token file, bytes */
#define MAX_SERVER_LEN 2048   /* longest --server URL */
#define MAX_ERROR_SHOWN 500   /* bytes of a server's error text shown */
#define MAX_REDIRECTS 3

enum resource { RES_NONE, RES_FLOWRECORDS, RES_RECORDMETRICS, RES_FLOWS };
enum output { OUT_TABLE, OUT_JSON, OUT_YAML };

/* The filters of GET /flowrecords, in the order they are sent. */
enum filter { F_SRCIP, F_DSTIP, F_PROTO, F_SRCPORT, F_DSTPORT, F_COUNT };
static const char *const filter_key[F_COUNT] = {"srcip", "dstip", "proto", "srcport", "dstport"};

/* The parameters of GET /api/v1/flows that `get flows` sends, each from
 * the option of the same name. */
enum flows_param { Q_SINCE, Q_START, Q_END, Q_LIMIT, Q_OFFSET, Q_SORT, Q_ORDER, Q_COUNT };
static const char *const flows_key[Q_COUNT] = {"since",  "start", "end",  "limit",
                                               "offset", "sort",  "order"};

/* The columns of the flows table output, and what get flows asks for. */
#define FLOWS_TABLE_COLUMNS                                                                        \
    "flowEndSeconds,sourceIP,destinationIP,sourceTransportPort,destinationTransportPort,"          \
    "protocolIdentifier,sourcePodName,destinationPodName,sourcePodNamespace,"                      \
    "destinationPodNamespace,destinationServicePortName,octetDeltaCount,reverseOctetDeltaCount"

struct get_opts {
    enum resource res;
    enum output out;
    char server[MAX_SERVER_LEN + 1];    /* scheme://host[:port][/prefix], no trailing '/' */
    char *token;                        /* bearer token, owned; NULL: none */
    const char *cacert;                 /* CA file for https, borrowed from argv; NULL: system's */
    bool insecure;                      /* skip certificate and host name checks */
    long timeout_s;                     /* limit for the whole request */
    char filter[F_COUNT][FV_IP_STRLEN]; /* canonical filter values; "" = not given */
    const char *flows[Q_COUNT];         /* get flows: option values (argv); NULL = not given */
    const char *where[FV_QUERY_MAX_WHERE + 1]; /* get flows: --where values (argv) */
    int nwhere;
};

/* ------------------------------------------------------------------------
 * Help
 * ------------------------------------------------------------------------ */

static void usage_connection(FILE *out)
{
    fprintf(out,
            "connection options:\n"
            "      --server URL         the aggregator's API, http:// or https:// (default\n"
            "                           $FLOWVIS_SERVER, else " DEFAULT_SERVER ")\n"
            "      --token-file FILE    send the token in FILE as 'Authorization: Bearer'\n"
            "                           (default: the token in $FLOWVIS_TOKEN, if set)\n"
            "      --cacert FILE        check the server's certificate against this CA (PEM)\n"
            "                           instead of the system's CAs\n"
            "      --insecure           do not check the server's certificate or host name\n"
            "      --timeout SECONDS    give up on the request after this long (default %d)\n"
            "  -o, --output table|json|yaml  output format (default table)\n"
            "  -h, --help               this help\n\n"
            "Redirects are followed (at most %d; from https only to https) and the token is\n"
            "not sent to another host. HTTPS_PROXY, HTTP_PROXY and NO_PROXY apply as in curl.\n"
            "Exit status: 0 printed; 1 the aggregator could not be reached or answered with\n"
            "an error (shown); 2 bad arguments, found before any request is sent.\n",
            DEFAULT_TIMEOUT_S, MAX_REDIRECTS);
}

static void usage_get(FILE *out)
{
    fprintf(out, "usage: flowvis get flowrecords|flows|recordmetrics [options]\n\n"
                 "Queries a running aggregator's HTTP API.\n\n"
                 "resources:\n"
                 "  flowrecords     the flow records the aggregator holds in memory, filtered by\n"
                 "                  addresses, protocol and ports (GET /flowrecords)\n"
                 "  flows           the flow records in the aggregator's store (SQLite or\n"
                 "                  ClickHouse) over a time range, filtered, sorted and paged\n"
                 "                  (GET /api/v1/flows)\n"
                 "  recordmetrics   records received, exported and dropped, flows held and\n"
                 "                  exporters connected (GET /recordmetrics)\n\n"
                 "Run 'flowvis get flowrecords --help' and 'flowvis get flows --help' for their\n"
                 "filters.\n\n");
    usage_connection(out);
}

static void usage_flowrecords(FILE *out)
{
    fprintf(out, "usage: flowvis get flowrecords [filters] [options]\n\n"
                 "Prints the flow records the aggregator holds in memory (GET /flowrecords),\n"
                 "one per row. With all five filters the aggregator looks up one flow exactly.\n\n"
                 "filters (checked before sending):\n"
                 "      --srcip IP           source address, IPv4 or IPv6\n"
                 "      --dstip IP           destination address, IPv4 or IPv6\n"
                 "      --proto P            tcp, udp, sctp, icmp, icmpv6 or a number 0-255\n"
                 "      --srcport N          source port 0-65535\n"
                 "      --dstport N          destination port 0-65535\n\n"
                 "-o table prints the columns\n"
                 "  SRC_IP DST_IP SPORT DPORT PROTO SRC_POD DST_POD SRC_NS DST_NS SERVICE\n"
                 "(SERVICE is destinationServicePortName, namespace/name:port); -o json prints\n"
                 "the server's flowrecords array, -o yaml the same as YAML, every field of\n"
                 "every record named as in the aggregator's JSON export.\n\n");
    usage_connection(out);
}

static void usage_flows(FILE *out)
{
    fprintf(out,
            "usage: flowvis get flows [--since D | --start T [--end T]] [--where K=V ...]\n"
            "                         [--limit N] [--offset N] [--sort COLUMN]\n"
            "                         [--order asc|desc] [options]\n\n"
            "Prints the flow records stored by the aggregator (GET /api/v1/flows; the\n"
            "aggregator needs sqlite.enable or clickHouse.enable). A record is in the range\n"
            "when start <= flowEndSeconds < end.\n\n"
            "filters and paging (checked before sending, as the server checks them):\n"
            "      --since D            the last D: 15m, 1h30m, 7d (units s m h d); default 15m\n"
            "      --start T            unix seconds or RFC 3339 (2026-11-21T10:00:00Z)\n"
            "      --end T              the same; default now\n"
            "      --where K=V          K=V equal, K!=V not equal, K~V contains (case-sensitive);\n"
            "                           K is a column of the flows table or srcip, dstip,\n"
            "                           srcport, dstport, proto (tcp, udp, ... or a number),\n"
            "                           namespace, pod (name or ns/name), node (source or\n"
            "                           destination), service, policy (ingress or egress);\n"
            "                           up to 16, all must match\n"
            "      --limit N            records per answer, 1-10000 (default 100)\n"
            "      --offset N           records skipped first, 0-1000000 (default 0)\n"
            "      --sort COLUMN        a column of the flows table (default flowEndSeconds)\n"
            "      --order asc|desc     default desc: the newest first\n\n"
            "-o table prints the columns\n"
            "  TIME SRC_IP DST_IP SPORT DPORT PROTO SRC_POD DST_POD SRC_NS DST_NS SERVICE\n"
            "  BYTES REV_BYTES\n"
            "(TIME is flowEndSeconds in UTC, BYTES and REV_BYTES are octetDeltaCount and\n"
            "reverseOctetDeltaCount, the bytes each record reports) and says on stderr when\n"
            "more records match than were printed; -o json prints the server's answer\n"
            "(start, end, total, limit, offset and rows with every column), -o yaml the\n"
            "same as YAML.\n\n");
    usage_connection(out);
}

static void usage_recordmetrics(FILE *out)
{
    fprintf(out, "usage: flowvis get recordmetrics [options]\n\n"
                 "Prints the aggregator's record counters (GET /recordmetrics).\n\n"
                 "-o table prints one row:\n"
                 "  RECORDS-EXPORTED RECORDS-RECEIVED RECORDS-DROPPED FLOWS EXPORTERS-CONNECTED\n"
                 "(numRecordsExported, numRecordsReceived, numRecordsDropped, numFlows,\n"
                 "numConnToCollector); -o json and -o yaml print every counter the server\n"
                 "sends.\n\n");
    usage_connection(out);
}

static void usage_for(enum resource res, FILE *out)
{
    if (res == RES_FLOWRECORDS)
        usage_flowrecords(out);
    else if (res == RES_FLOWS)
        usage_flows(out);
    else if (res == RES_RECORDMETRICS)
        usage_recordmetrics(out);
    else
        usage_get(out);
}

/* ------------------------------------------------------------------------
 * Arguments
 * ------------------------------------------------------------------------ */

/* Protocol names the CLI accepts, and what it sends for each: the server
 * knows tcp, udp, sctp and icmp by name, and ICMPv6 by number. */
static const struct {
    const char *name;  /* accepted by --proto, in any case */
    const char *sent;  /* the proto= value */
    int number;        /* protocolIdentifier */
    const char *shown; /* in the PROTO column */
} protocols[] = {
    {"tcp", "tcp", 6, "TCP"},    {"udp", "udp", 17, "UDP"},      {"sctp", "sctp", 132, "SCTP"},
    {"icmp", "icmp", 1, "ICMP"}, {"icmpv6", "58", 58, "ICMPv6"},
};

static int parse_proto(const char *val, char *out, size_t n)
{
    unsigned long long v;

    for (size_t i = 0; i < sizeof(protocols) / sizeof(protocols[0]); i++)
        if (strcasecmp(val, protocols[i].name) == 0) {
            snprintf(out, n, "%s", protocols[i].sent);
            return 0;
        }
    if (val[0] < '0' || val[0] > '9') {
        fprintf(stderr,
                "flowvis get: --proto: '%s' is not tcp, udp, sctp, icmp, icmpv6 or a number "
                "0-255\n",
                val);
        return -1;
    }
    if (fv_cmd_parse_u64("--proto", val, 0, 255, &v) < 0)
        return -1;
    snprintf(out, n, "%llu", v);
    return 0;
}

/* Checks one filter value and stores it in canonical form: addresses as
 * inet_ntop prints them, ports and protocol numbers without leading zeros. */
static int parse_filter(enum filter f, const char *val, struct get_opts *o)
{
    char *out = o->filter[f];
    unsigned long long v;
    char flag[16];
    struct fv_ip ip;

    snprintf(flag, sizeof(flag), "--%s", filter_key[f]);
    switch (f) {
    case F_SRCIP:
    case F_DSTIP:
        if (fv_ip_parse(val, &ip) < 0) {
            fprintf(stderr, "flowvis get: %s: '%s' is not an IPv4 or IPv6 address\n", flag, val);
            return -1;
        }
        fv_ip_str(&ip, out);
        return 0;
    case F_PROTO:
        return parse_proto(val, out, sizeof(o->filter[f]));
    default:
        if (fv_cmd_parse_u64(flag, val, 0, 65535, &v) < 0)
            return -1;
        snprintf(out, sizeof(o->filter[f]), "%llu", v);
        return 0;
    }
}

static int parse_output(const char *val, enum output *out)
{
    if (strcmp(val, "table") == 0)
        *out = OUT_TABLE;
    else if (strcmp(val, "json") == 0)
        *out = OUT_JSON;
    else if (strcmp(val, "yaml") == 0)
        *out = OUT_YAML;
    else {
        fprintf(stderr, "flowvis get: --output: '%s' is not table, json or yaml\n", val);
        return -1;
    }
    return 0;
}

/* Accepts http:// and https:// URLs, optionally with a path prefix, and
 * stores them without trailing slashes. */
static int set_server(const char *what, const char *url, struct get_opts *o)
{
    size_t n = strlen(url);
    bool https = strncasecmp(url, "https://", 8) == 0;
    size_t scheme = https ? 8 : 7;

    if ((!https && strncasecmp(url, "http://", 7) != 0) || n <= scheme || n > MAX_SERVER_LEN ||
        strpbrk(url, "?# \t\r\n") != NULL) {
        fprintf(stderr,
                "flowvis get: %s: '%s' is not an http:// or https:// URL without query or "
                "fragment\n",
                what, url);
        return -1;
    }
    while (n > scheme && url[n - 1] == '/')
        n--;
    memcpy(o->server, url, n);
    o->server[n] = '\0';
    return 0;
}

/* A token goes into a header line: printable ASCII without spaces only. */
static int set_token(const char *what, const char *text, size_t n, struct get_opts *o)
{
    while (n > 0 && strchr(" \t\r\n", text[n - 1]))
        n--;
    while (n > 0 && strchr(" \t\r\n", text[0])) {
        text++;
        n--;
    }
    if (n == 0) {
        fprintf(stderr, "flowvis get: %s: the token is empty\n", what);
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)text[i] <= 0x20 || (unsigned char)text[i] >= 0x7f) {
            fprintf(stderr,
                    "flowvis get: %s: the token has a space or a character that is "
                    "not printable ASCII\n",
                    what);
            return -1;
        }
    free(o->token);
    o->token = strndup(text, n);
    return o->token ? 0 : -1;
}

static int read_token_file(const char *path, struct get_opts *o)
{
    char *buf = malloc(MAX_TOKEN + 1);
    FILE *f = fopen(path, "r");
    size_t n = 0;
    int rc = -1;

    if (f == NULL || buf == NULL) {
        fprintf(stderr, "flowvis get: --token-file: cannot read %s: %s\n", path, strerror(errno));
        goto out;
    }
    n = fread(buf, 1, MAX_TOKEN + 1, f);
    if (ferror(f))
        fprintf(stderr, "flowvis get: --token-file: cannot read %s: %s\n", path, strerror(errno));
    else if (n > MAX_TOKEN)
        fprintf(stderr, "flowvis get: --token-file: %s is larger than %u bytes\n", path, MAX_TOKEN);
    else if (memchr(buf, '\0', n) == NULL)
        rc = set_token("--token-file", buf, n, o);
    else
        fprintf(stderr, "flowvis get: --token-file: %s holds a NUL byte\n", path);
out:
    if (f)
        fclose(f);
    free(buf);
    return rc;
}

enum {
    OPT_SERVER = 256,
    OPT_TOKEN_FILE,
    OPT_CACERT,
    OPT_INSECURE,
    OPT_TIMEOUT,
    OPT_WHERE,
    OPT_FILTER,                  /* OPT_FILTER + enum filter */
    OPT_FLOWS = OPT_FILTER + 64, /* OPT_FLOWS + enum flows_param */
};

/* Options that take effect only once all are read. */
struct pending {
    const char *server;     /* --server, overrides FLOWVIS_SERVER */
    const char *token_file; /* --token-file, overrides FLOWVIS_TOKEN */
    bool help;
};

/* One option; 0 when it was good, the exit status when it was bad, -1 when
 * it is not an option of flowvis get. */
static int apply_option(int opt, const char *val, struct get_opts *o, struct pending *p)
{
    unsigned long long v;

    if (opt >= OPT_FILTER && opt < OPT_FILTER + F_COUNT)
        return parse_filter((enum filter)(opt - OPT_FILTER), val, o) < 0 ? 2 : 0;
    if (opt >= OPT_FLOWS && opt < OPT_FLOWS + Q_COUNT) {
        o->flows[opt - OPT_FLOWS] = val;
        return 0;
    }
    switch (opt) {
    case OPT_WHERE:
        if (o->nwhere == FV_QUERY_MAX_WHERE) {
            fprintf(stderr, "flowvis get: --where: more than %d clauses\n", FV_QUERY_MAX_WHERE);
            return 2;
        }
        o->where[o->nwhere++] = val;
        return 0;
    case 'o':
        return parse_output(val, &o->out) < 0 ? 2 : 0;
    case OPT_SERVER:
        p->server = val;
        return 0;
    case OPT_TOKEN_FILE:
        p->token_file = val;
        return 0;
    case OPT_CACERT:
        if (access(val, R_OK) != 0) {
            fprintf(stderr, "flowvis get: --cacert: cannot read %s: %s\n", val, strerror(errno));
            return 2;
        }
        o->cacert = val;
        return 0;
    case OPT_INSECURE:
        o->insecure = true;
        return 0;
    case OPT_TIMEOUT:
        if (fv_cmd_parse_u64("--timeout", val, 1, 3600, &v) < 0)
            return 2;
        o->timeout_s = (long)v;
        return 0;
    case 'h':
        p->help = true;
        return 0;
    default:
        return -1;
    }
}

static int parse_resource(int argc, char **argv, enum resource *res)
{
    if (optind >= argc)
        return 0;
    if (strcmp(argv[optind], "flowrecords") == 0)
        *res = RES_FLOWRECORDS;
    else if (strcmp(argv[optind], "flows") == 0)
        *res = RES_FLOWS;
    else if (strcmp(argv[optind], "recordmetrics") == 0)
        *res = RES_RECORDMETRICS;
    else {
        fprintf(stderr,
                "flowvis get: unknown resource '%s' (flowrecords, flows or recordmetrics)\n",
                argv[optind]);
        return -1;
    }
    if (optind + 1 < argc) {
        fprintf(stderr, "flowvis get: unexpected argument '%s'\n", argv[optind + 1]);
        return -1;
    }
    return 0;
}

/* Server and token: the options, else the environment, else the default
 * server and no token. */
static int apply_connection(const struct pending *p, struct get_opts *o)
{
    const char *server = getenv("FLOWVIS_SERVER"), *token = getenv("FLOWVIS_TOKEN");

    if (p->server) {
        if (set_server("--server", p->server, o) < 0)
            return -1;
    } else if (server && server[0] && set_server("FLOWVIS_SERVER", server, o) < 0) {
        return -1;
    }
    if (p->token_file)
        return read_token_file(p->token_file, o);
    if (token && token[0])
        return set_token("FLOWVIS_TOKEN", token, strlen(token), o);
    return 0;
}

/* The get flows options as the request's parameters (borrowed from argv). */
static size_t flows_params(const struct get_opts *o, struct fv_query_param *p)
{
    size_t n = 0;

    for (int q = 0; q < Q_COUNT; q++)
        if (o->flows[q])
            p[n++] = (struct fv_query_param){flows_key[q], strlen(flows_key[q]), o->flows[q],
                                             strlen(o->flows[q])};
    for (int i = 0; i < o->nwhere; i++)
        p[n++] = (struct fv_query_param){"where", 5, o->where[i], strlen(o->where[i])};
    return n;
}

/* Checks the get flows options with the server's own parser, so that a
 * mistake is reported before any request and in the server's words. */
static int check_flows(const struct get_opts *o)
{
    struct fv_query_param p[Q_COUNT + FV_QUERY_MAX_WHERE];
    struct fv_query q;
    char err[512];

    if (fv_query_parse(FV_QUERY_FLOWS, p, flows_params(o, p), (int64_t)time(NULL), &q, err,
                       sizeof(err)) < 0) {
        fprintf(stderr, "flowvis get: --%s\n", err);
        return -1;
    }
    return 0;
}

/* -1 to go on with the request, else the exit status. */
static int parse_args(int argc, char **argv, struct get_opts *o)
{
    static const struct option longopts[] = {
        {"output", required_argument, NULL, 'o'},
        {"server", required_argument, NULL, OPT_SERVER},
        {"token-file", required_argument, NULL, OPT_TOKEN_FILE},
        {"cacert", required_argument, NULL, OPT_CACERT},
        {"insecure", no_argument, NULL, OPT_INSECURE},
        {"timeout", required_argument, NULL, OPT_TIMEOUT},
        {"srcip", required_argument, NULL, OPT_FILTER + F_SRCIP},
        {"dstip", required_argument, NULL, OPT_FILTER + F_DSTIP},
        {"proto", required_argument, NULL, OPT_FILTER + F_PROTO},
        {"srcport", required_argument, NULL, OPT_FILTER + F_SRCPORT},
        {"dstport", required_argument, NULL, OPT_FILTER + F_DSTPORT},
        {"where", required_argument, NULL, OPT_WHERE},
        {"since", required_argument, NULL, OPT_FLOWS + Q_SINCE},
        {"start", required_argument, NULL, OPT_FLOWS + Q_START},
        {"end", required_argument, NULL, OPT_FLOWS + Q_END},
        {"limit", required_argument, NULL, OPT_FLOWS + Q_LIMIT},
        {"offset", required_argument, NULL, OPT_FLOWS + Q_OFFSET},
        {"sort", required_argument, NULL, OPT_FLOWS + Q_SORT},
        {"order", required_argument, NULL, OPT_FLOWS + Q_ORDER},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct pending p = {0};
    int opt, rc;

    snprintf(o->server, sizeof(o->server), "%s", DEFAULT_SERVER);
    o->timeout_s = DEFAULT_TIMEOUT_S;
    while ((opt = getopt_long(argc, argv, "o:h", longopts, NULL)) != -1) {
        rc = apply_option(opt, optarg, o, &p);
        if (rc < 0) {
            fprintf(stderr, "Run 'flowvis get --help' for the options.\n");
            return 2;
        }
        if (rc > 0)
            return rc;
    }
    if (parse_resource(argc, argv, &o->res) < 0)
        return 2;
    if (p.help) {
        usage_for(o->res, stdout);
        return 0;
    }
    if (o->res == RES_NONE) {
        usage_get(stderr);
        return 2;
    }
    for (int f = 0; f < F_COUNT && o->res != RES_FLOWRECORDS; f++)
        if (o->filter[f][0]) {
            fprintf(stderr, "flowvis get: --%s applies to flowrecords only\n", filter_key[f]);
            return 2;
        }
    for (int q = 0; q < Q_COUNT && o->res != RES_FLOWS; q++)
        if (o->flows[q]) {
            fprintf(stderr, "flowvis get: --%s applies to flows only\n", flows_key[q]);
            return 2;
        }
    if (o->nwhere > 0 && o->res != RES_FLOWS) {
        fprintf(stderr, "flowvis get: --where applies to flows only\n");
        return 2;
    }
    if (o->res == RES_FLOWS && check_flows(o) < 0)
        return 2;
    return apply_connection(&p, o) < 0 ? 2 : -1;
}

/* ------------------------------------------------------------------------
 * The request
 * ------------------------------------------------------------------------ */

static size_t on_body(char *p, size_t size, size_t n, void *ctx)
{
    struct fv_sbuf *body = ctx;

    /* size is 1 by libcurl's contract; returning less than n aborts. */
    if (fv_sbuf_append(body, p, size * n) < 0)
        return 0;
    return size * n;
}

/* Appends &key=value (the first with '?'), value URL-escaped. */
static int add_param(CURL *curl, struct fv_sbuf *url, char *sep, const char *key, const char *value)
{
    char *esc = curl_easy_escape(curl, value, 0);

    if (esc == NULL)
        return -ENOMEM;
    fv_sbuf_printf(url, "%c%s=%s", *sep, key, esc);
    curl_free(esc);
    *sep = '&';
    return 0;
}

/* The request URL: server, path, and the given filters URL-escaped. */
static int build_url(CURL *curl, const struct get_opts *o, const char *path, struct fv_sbuf *url)
{
    struct fv_query_param p[Q_COUNT + FV_QUERY_MAX_WHERE];
    char sep = '?';
    size_t n;

    fv_sbuf_puts(url, o->server);
    fv_sbuf_puts(url, path);
    if (o->res == RES_FLOWS) {
        n = flows_params(o, p);
        for (size_t i = 0; i < n; i++)
            if (add_param(curl, url, &sep, p[i].key, p[i].val) < 0)
                return -ENOMEM;
        /* The table shows a few columns: ask for those only. */
        if (o->out == OUT_TABLE && add_param(curl, url, &sep, "columns", FLOWS_TABLE_COLUMNS) < 0)
            return -ENOMEM;
        return url->err;
    }
    for (int f = 0; f < F_COUNT; f++) {
        char *esc;

        if (o->filter[f][0] == '\0')
            continue;
        esc = curl_easy_escape(curl, o->filter[f], 0);
        if (esc == NULL)
            return -ENOMEM;
        fv_sbuf_printf(url, "%c%s=%s", sep, filter_key[f], esc);
        curl_free(esc);
        sep = '&';
    }
    return url->err;
}

static void set_options(CURL *curl, const struct get_opts *o, const char *url, struct fv_sbuf *body,
                        char *errbuf)
{
    bool https = strncasecmp(o->server, "https://", 8) == 0;

    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(curl, CURLOPT_MAXREDIRS, (long)MAX_REDIRECTS);
    curl_easy_setopt(curl, CURLOPT_REDIR_PROTOCOLS_STR, https ? "https" : "http,https");
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, o->timeout_s);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, o->timeout_s);
    curl_easy_setopt(curl, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)MAX_BODY);
    curl_easy_setopt(curl, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(curl, CURLOPT_USERAGENT, "flowvis-get");
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, body);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
    if (o->token) {
        curl_easy_setopt(curl, CURLOPT_HTTPAUTH, CURLAUTH_BEARER);
        curl_easy_setopt(curl, CURLOPT_XOAUTH2_BEARER, o->token);
    }
    if (o->cacert)
        curl_easy_setopt(curl, CURLOPT_CAINFO, o->cacert);
    if (o->insecure) {
        curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 0L);
    }
}

/* Says what failed when libcurl could not get an answer. */
static void report_transfer_error(CURL *curl, CURLcode rc, const char *errbuf,
                                  const struct get_opts *o, const struct fv_sbuf *body)
{
    const char *detail = errbuf[0] ? errbuf : curl_easy_strerror(rc);
    long os_errno = 0;

    curl_easy_getinfo(curl, CURLINFO_OS_ERRNO, &os_errno);
    if (rc == CURLE_FILESIZE_EXCEEDED || (rc == CURLE_WRITE_ERROR && body->err == -FV_ELIMIT))
        fprintf(stderr, "flowvis get: the answer of the aggregator at %s is larger than %u MiB\n",
                o->server, MAX_BODY >> 20);
    else if (rc == CURLE_WRITE_ERROR)
        fprintf(stderr, "flowvis get: out of memory reading the answer of %s\n", o->server);
    else if (rc == CURLE_COULDNT_CONNECT)
        fprintf(stderr, "flowvis get: cannot reach the aggregator at %s: %s\n", o->server,
                os_errno ? strerror((int)os_errno) : detail);
    else if (rc == CURLE_COULDNT_RESOLVE_HOST)
        fprintf(stderr, "flowvis get: cannot resolve the host of %s: %s\n", o->server, detail);
    else if (rc == CURLE_OPERATION_TIMEDOUT)
        fprintf(stderr, "flowvis get: no answer from the aggregator at %s within %ld s\n",
                o->server, o->timeout_s);
    else if (rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_CACERT_BADFILE)
        fprintf(stderr,
                "flowvis get: cannot verify the certificate of %s: %s (--cacert names the CA "
                "that signed it)\n",
                o->server, detail);
    else if (rc == CURLE_SSL_CONNECT_ERROR)
        fprintf(stderr, "flowvis get: TLS with the aggregator at %s failed: %s\n", o->server,
                detail);
    else
        fprintf(stderr, "flowvis get: the request to the aggregator at %s failed: %s%s\n",
                o->server, detail,
                (rc == CURLE_RECV_ERROR || rc == CURLE_GOT_NOTHING) &&
                        strncasecmp(o->server, "http://", 7) == 0
                    ? " (if it serves https, use an https:// --server)"
                    : "");
}

/* Says what the server answered instead of 200: its "error" text when the
 * body is the API's {"error": "..."}, else the start of the body. */
static void report_http_error(long status, const struct fv_sbuf *body, const struct get_opts *o)
{
    json_t *doc = json_loadb(body->p ? body->p : "", body->len, 0, NULL);
    const char *text = json_string_value(json_object_get(doc, "error"));
    char shown[MAX_ERROR_SHOWN + 1];
    size_t n;

    if (text == NULL)
        text = body->len ? body->p : "(empty body)";
    n = strcspn(text, "\r\n");
    if (n > MAX_ERROR_SHOWN)
        n = MAX_ERROR_SHOWN;
    memcpy(shown, text, n);
    shown[n] = '\0';
    for (char *p = shown; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
    fprintf(stderr, "flowvis get: the aggregator at %s answered HTTP %ld: %s\n", o->server, status,
            shown);
    if (status == 401 && o->token == NULL)
        fprintf(stderr, "flowvis get: no token was sent; give one with --token-file FILE or "
                        "FLOWVIS_TOKEN\n");
    json_decref(doc);
}

/* GETs path and parses the JSON answer into *out (owned by the caller).
 * 0, or 1 after printing what failed. */
static int fetch(const struct get_opts *o, const char *path, json_t **out)
{
    CURL *curl = curl_easy_init();
    char errbuf[CURL_ERROR_SIZE] = "";
    struct fv_sbuf url, body;
    json_error_t jerr;
    CURLcode rc;
    long status = 0;
    int ret = 1;

    fv_sbuf_init(&url, 8192);
    fv_sbuf_init(&body, MAX_BODY);
    if (curl == NULL || build_url(curl, o, path, &url) < 0) {
        fprintf(stderr, "flowvis get: cannot set up the request: out of memory\n");
        goto out;
    }
    set_options(curl, o, url.p, &body, errbuf);
    rc = curl_easy_perform(curl);
    if (rc != CURLE_OK) {
        report_transfer_error(curl, rc, errbuf, o, &body);
        goto out;
    }
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    if (status != 200) {
        report_http_error(status, &body, o);
        goto out;
    }
    *out = json_loadb(body.p ? body.p : "", body.len, 0, &jerr);
    if (*out == NULL || !json_is_object(*out)) {
        fprintf(stderr, "flowvis get: the answer to GET %s is not a JSON object: %s\n", path,
                *out ? "another JSON value" : jerr.text);
        json_decref(*out);
        *out = NULL;
        goto out;
    }
    ret = 0;
out:
    fv_sbuf_fini(&url);
    fv_sbuf_fini(&body);
    curl_easy_cleanup(curl);
    return ret;
}

/* ------------------------------------------------------------------------
 * Output
 * ------------------------------------------------------------------------ */

/* A member as table text: strings as they are, numbers in decimal, absent
 * members and null as "".  buf holds numbers. */
static const char *cell(const json_t *rec, const char *key, char *buf, size_t n)
{
    const json_t *v = json_object_get(rec, key);

    if (json_is_string(v))
        return json_string_value(v);
    if (json_is_integer(v))
        snprintf(buf, n, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    else if (json_is_real(v))
        snprintf(buf, n, "%g", json_real_value(v));
    else if (json_is_boolean(v))
        snprintf(buf, n, "%s", json_is_true(v) ? "true" : "false");
    else
        buf[0] = '\0';
    return buf;
}

static const char *proto_cell(const json_t *rec, char *buf, size_t n)
{
    const json_t *v = json_object_get(rec, "protocolIdentifier");

    if (json_is_integer(v)) {
        json_int_t p = json_integer_value(v);
        for (size_t i = 0; i < sizeof(protocols) / sizeof(protocols[0]); i++)
            if (protocols[i].number == p)
                return protocols[i].shown;
    }
    return cell(rec, "protocolIdentifier", buf, n);
}

/* The table row of one record. */
static int add_record_row(struct fv_table *t, const json_t *rec)
{
    char num[5][32];
    const char *src = cell(rec, "sourceIPv4Address", num[0], sizeof(num[0]));
    const char *dst = cell(rec, "destinationIPv4Address", num[1], sizeof(num[1]));
    const char *row[10];

    if (src[0] == '\0')
        src = cell(rec, "sourceIPv6Address", num[0], sizeof(num[0]));
    if (dst[0] == '\0')
        dst = cell(rec, "destinationIPv6Address", num[1], sizeof(num[1]));
    row[0] = src;
    row[1] = dst;
    row[2] = cell(rec, "sourceTransportPort", num[2], sizeof(num[2]));
    row[3] = cell(rec, "destinationTransportPort", num[3], sizeof(num[3]));
    row[4] = proto_cell(rec, num[4], sizeof(num[4]));
    row[5] = json_string_value(json_object_get(rec, "sourcePodName"));
    row[6] = json_string_value(json_object_get(rec, "destinationPodName"));
    row[7] = json_string_value(json_object_get(rec, "sourcePodNamespace"));
    row[8] = json_string_value(json_object_get(rec, "destinationPodNamespace"));
    row[9] = json_string_value(json_object_get(rec, "destinationServicePortName"));
    return fv_table_add_row(t, row);
}

static int print_flowrecords_table(const json_t *records, FILE *out)
{
    static const char *const header[] = {"SRC_IP",  "DST_IP",  "SPORT",  "DPORT",  "PROTO",
                                         "SRC_POD", "DST_POD", "SRC_NS", "DST_NS", "SERVICE"};
    struct fv_table t;
    int rc;

    fv_table_init(&t, 10);
    rc = fv_table_add_row(&t, header);
    for (size_t i = 0; i < json_array_size(records) && rc == 0; i++)
        rc = add_record_row(&t, json_array_get(records, i));
    if (rc == 0)
        rc = fv_table_print(&t, out);
    fv_table_fini(&t);
    return rc;
}

static int print_recordmetrics_table(const json_t *m, FILE *out)
{
    static const char *const header[] = {"RECORDS-EXPORTED", "RECORDS-RECEIVED", "RECORDS-DROPPED",
                                         "FLOWS", "EXPORTERS-CONNECTED"};
    static const char *const keys[] = {"numRecordsExported", "numRecordsReceived",
                                       "numRecordsDropped", "numFlows", "numConnToCollector"};
    char num[5][32];
    const char *row[5];
    struct fv_table t;
    int rc;

    for (int i = 0; i < 5; i++)
        row[i] = cell(m, keys[i], num[i], sizeof(num[i]));
    fv_table_init(&t, 5);
    rc = fv_table_add_row(&t, header);
    if (rc == 0)
        rc = fv_table_add_row(&t, row);
    if (rc == 0)
        rc = fv_table_print(&t, out);
    fv_table_fini(&t);
    return rc;
}

/* TIME: flowEndSeconds as UTC, 2026-11-21T10:00:00Z. */
static const char *time_cell(const json_t *rec, char *buf, size_t n)
{
    const json_t *v = json_object_get(rec, "flowEndSeconds");
    time_t t;
    struct tm tm;

    if (!json_is_integer(v))
        return cell(rec, "flowEndSeconds", buf, n);
    t = (time_t)json_integer_value(v);
    if (gmtime_r(&t, &tm) == NULL || strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        return cell(rec, "flowEndSeconds", buf, n);
    return buf;
}

static int print_flows_table(const json_t *rows, FILE *out)
{
    static const char *const header[] = {"TIME",    "SRC_IP",  "DST_IP",   "SPORT",  "DPORT",
                                         "PROTO",   "SRC_POD", "DST_POD",  "SRC_NS", "DST_NS",
                                         "SERVICE", "BYTES",   "REV_BYTES"};
    static const char *const keys[] = {NULL,
                                       "sourceIP",
                                       "destinationIP",
                                       "sourceTransportPort",
                                       "destinationTransportPort",
                                       NULL,
                                       "sourcePodName",
                                       "destinationPodName",
                                       "sourcePodNamespace",
                                       "destinationPodNamespace",
                                       "destinationServicePortName",
                                       "octetDeltaCount",
                                       "reverseOctetDeltaCount"};
    struct fv_table t;
    int rc;

    fv_table_init(&t, 13);
    rc = fv_table_add_row(&t, header);
    for (size_t i = 0; i < json_array_size(rows) && rc == 0; i++) {
        const json_t *rec = json_array_get(rows, i);
        char num[13][40];
        const char *row[13];
        for (int c = 0; c < 13; c++)
            row[c] = keys[c] ? cell(rec, keys[c], num[c], sizeof(num[c])) : "";
        row[0] = time_cell(rec, num[0], sizeof(num[0]));
        row[5] = proto_cell(rec, num[5], sizeof(num[5]));
        rc = fv_table_add_row(&t, row);
    }
    if (rc == 0)
        rc = fv_table_print(&t, out);
    fv_table_fini(&t);
    return rc;
}

/* The rows of a /api/v1/flows answer, borrowed from doc; NULL after
 * printing why when the answer is not what the API promises. */
static const json_t *flows_rows_of(const json_t *doc)
{
    const json_t *rows = json_object_get(doc, "rows");
    json_int_t total = json_integer_value(json_object_get(doc, "total"));
    json_int_t offset = json_integer_value(json_object_get(doc, "offset"));

    if (!json_is_array(rows)) {
        fprintf(stderr, "flowvis get: the answer to GET /api/v1/flows has no rows array\n");
        return NULL;
    }
    for (size_t i = 0; i < json_array_size(rows); i++)
        if (!json_is_object(json_array_get(rows, i))) {
            fprintf(stderr, "flowvis get: row %zu of the answer is not a JSON object\n", i + 1);
            return NULL;
        }
    if (total > offset + (json_int_t)json_array_size(rows))
        fprintf(stderr,
                "flowvis get: printed records %lld-%lld of %lld; see more with --limit and "
                "--offset\n",
                (long long)(json_array_size(rows) ? offset + 1 : offset),
                (long long)offset + (long long)json_array_size(rows), (long long)total);
    return rows;
}

/* The records array of a /flowrecords answer, borrowed from doc; NULL after
 * printing why when the answer is not what the API promises. */
static const json_t *flowrecords_of(const json_t *doc)
{
    const json_t *records = json_object_get(doc, "flowrecords");

    if (!json_is_array(records)) {
        fprintf(stderr, "flowvis get: the answer to GET /flowrecords has no flowrecords array\n");
        return NULL;
    }
    for (size_t i = 0; i < json_array_size(records); i++)
        if (!json_is_object(json_array_get(records, i))) {
            fprintf(stderr, "flowvis get: flow record %zu of the answer is not a JSON object\n",
                    i + 1);
            return NULL;
        }
    if (json_is_true(json_object_get(doc, "truncated")))
        fprintf(stderr,
                "flowvis get: the aggregator truncated its answer to %zu records; narrow it "
                "with filters\n",
                json_array_size(records));
    return records;
}

static int print_answer(const struct get_opts *o, const json_t *doc, FILE *out)
{
    const json_t *v = doc;
    int rc = 0;

    if (o->res == RES_FLOWRECORDS) {
        v = flowrecords_of(doc);
        if (v == NULL)
            return 1;
    } else if (o->res == RES_FLOWS && o->out == OUT_TABLE) {
        v = flows_rows_of(doc);
        if (v == NULL)
            return 1;
    }
    if (o->out == OUT_JSON) {
        rc = json_dumpf(v, out, JSON_INDENT(2));
        fputc('\n', out);
    } else if (o->out == OUT_YAML) {
        rc = fv_yaml_out_print(v, out);
    } else if (o->res == RES_FLOWRECORDS) {
        rc = print_flowrecords_table(v, out);
    } else if (o->res == RES_FLOWS) {
        rc = print_flows_table(v, out);
    } else {
        rc = print_recordmetrics_table(v, out);
    }
    if (rc != 0 || fflush(out) != 0 || ferror(out)) {
        fprintf(stderr, "flowvis get: cannot write the output: %s\n",
                rc == -ENOMEM ? strerror(ENOMEM) : strerror(errno));
        return 1;
    }
    return 0;
}

static const char *const resource_path[] = {
    [RES_FLOWRECORDS] = "/flowrecords",
    [RES_RECORDMETRICS] = "/recordmetrics",
    [RES_FLOWS] = "/api/v1/flows",
};

int fv_cmd_get(int argc, char **argv)
{
    struct get_opts o = {0};
    json_t *doc = NULL;
    int status;

    status = parse_args(argc, argv, &o);
    if (status >= 0)
        goto out;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "flowvis get: cannot initialise libcurl\n");
        status = 1;
        goto out;
    }
    status = fetch(&o, resource_path[o.res], &doc);
    if (status == 0)
        status = print_answer(&o, doc, stdout);
    json_decref(doc);
    curl_global_cleanup();
out:
    free(o.token);
    return status;
}
