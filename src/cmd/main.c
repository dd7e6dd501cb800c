/* main.c - flowvis: dispatches to the subcommands. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/addr.h"
#include "cmd/cmd.h"

#ifndef FV_VERSION
#define FV_VERSION "0.1.0-dev"
#endif

struct subcommand {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
};

static const struct subcommand subcommands[] = {
    {"agent", fv_cmd_agent, "export this node's connections (conntrack) as IPFIX flow records"},
    {"collector", fv_cmd_collector, "receive IPFIX (UDP, TCP or TLS) and print the records"},
    {"generate", fv_cmd_generate, "send a simulated cluster's flow records as IPFIX"},
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
