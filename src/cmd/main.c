/* main.c - flowvis: dispatches to the subcommands. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <getopt.h>

#include "base/addr.h"
#include "cmd/cmd.h"
#include "base/log.h"
#include "config/config.h"

#ifndef FV_VERSION
#define FV_VERSION "0.1.0-dev"
#endif

struct subcommand {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
};

static const struct subcommand subcommands[] = {
    {"aggregator", fv_cmd_aggregator,
     "correlate and aggregate flow records; export them; serve the API"},
    {"agent", fv_cmd_agent, "export this node's connections (conntrack) as IPFIX flow records"},
    {"collector", fv_cmd_collector, "receive IPFIX (UDP, TCP or TLS) and print the records"},
    {"generate", fv_cmd_generate, "send a simulated cluster's flow records as IPFIX"},
    {"get", fv_cmd_get, "query a running aggregator: flow records and record metrics"},
};

static void usage(FILE *out)
{
    fprintf(out, "usage: flowvis <command> [options]\n\n"
                 "Network flow visibility for Kubernetes clusters and Linux hosts.\n\n"
                 "commands:\n");
    for (size_t i = 0; i < sizeof(subcommands) / sizeof(subcommands[0]); i++)
        fprintf(out, "  %-12s %s\n", subcommands[i].name, subcommands[i].summary);
    fprintf(out, "\nRun 'flowvis <command> --help' for the options of a command.\n"
                 "flowvis --version prints the version.\n");
}

int fv_cmd_parse_u64(const char *opt, const char *val, unsigned long long min,
                     unsigned long long max, unsigned long long *out)
{
    char *end;
    unsigned long long v;

    errno = 0;
    v = strtoull(val, &end, 10);
    if (errno || end == val || *end != '\0' || val[0] == '-' || v < min || v > max) {
        fprintf(stderr, "flowvis: %s: '%s' is not a whole number from %llu to %llu\n", opt, val,
                min, max);
        return -1;
    }
    *out = v;
    return 0;
}

int fv_cmd_parse_addr(const char *cmd, const char *opt, const char *text, const char *transport,
                      int default_proto, struct fv_addr *out)
{
    if (fv_addr_parse(text, 4739, (enum fv_proto)default_proto, out) < 0) {
        fprintf(stderr, "flowvis %s: %s: '%s' is not HOST[:PORT][:PROTO]\n", cmd, opt, text);
        return -1;
    }
    if (transport && fv_proto_parse(transport, &out->proto) < 0) {
        fprintf(stderr, "flowvis %s: --transport: '%s' is not udp, tcp or tls\n", cmd, transport);
        return -1;
    }
    return 0;
}

static volatile sig_atomic_t stop_flag;

static void on_stop_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

int fv_cmd_config_main(const struct fv_cmd_config_spec *spec, void *cfg, int argc, char **argv)
{
    const char *cmd = spec->name;
    const struct fv_cfg_opt *opts = spec->opts;
    size_t n = spec->nopts;
    bool check = false;
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},
        {"check", no_argument, NULL, 1},
        {"print-config", required_argument, NULL, 2},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct fv_cfg_error err;
    const char *path = NULL;
    int opt, rc;

    while ((opt = getopt_long(argc, argv, "c:h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            path = optarg;
            break;
        case 1:
            check = true;
            break;
        case 2:
            if (strcmp(optarg, "yaml") == 0 || strcmp(optarg, "markdown") == 0)
                return fv_cfg_print(opts, n, stdout,
                                    optarg[0] == 'y' ? FV_CFG_PRINT_YAML : FV_CFG_PRINT_MARKDOWN) <
                       0;
            fprintf(stderr, "flowvis %s: --print-config: '%s' is not yaml or markdown\n", cmd,
                    optarg);
            return 2;
        case 'h':
            spec->usage(stdout);
            return 0;
        default:
            spec->usage(stderr);
            return 2;
        }
    }
    if ((path == NULL && spec->config_required) || optind < argc) {
        fprintf(stderr, "flowvis %s: %s\n", cmd,
                optind < argc ? "unexpected argument" : "--config FILE is required");
        return 2;
    }
    rc = path ? fv_cfg_load_file(opts, n, cfg, path, &err) : fv_cfg_defaults(opts, n, cfg, &err);
    if (rc < 0) {
        fprintf(stderr, "flowvis %s: %s\n", cmd, err.msg);
        fv_cfg_fini(opts, n, cfg);
        return 2;
    }
    if (path == NULL)
        path = "(defaults)";
    if (spec->finish(path, cfg) < 0) {
        fv_cfg_fini(opts, n, cfg);
        return 2;
    }
    if (check) {
        printf("%s: ok\n", path);
        fv_cfg_fini(opts, n, cfg);
        return 0;
    }
    memcpy(&rc, (const char *)cfg + spec->log_level_offset, sizeof(rc));
    fv_log_threshold = (enum fv_log_level)rc;
    struct sigaction sa = {.sa_handler = on_stop_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    rc = spec->run(cfg, &stop_flag);
    fv_cfg_fini(opts, n, cfg);
    return rc < 0 ? 1 : 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
        printf("flowvis %s\n", FV_VERSION);
        return 0;
    }
    for (size_t i = 0; i < sizeof(subcommands) / sizeof(subcommands[0]); i++)
        if (strcmp(argv[1], subcommands[i].name) == 0)
            return subcommands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "flowvis: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
