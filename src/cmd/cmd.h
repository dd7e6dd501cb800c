/*
 * cmd.h - the flowvis subcommands.  Each takes the arguments after its
 * name (argv[0] is the subcommand) and returns the process exit status.
 */
#ifndef FV_CMD_CMD_H
#define FV_CMD_CMD_H

int fv_cmd_agent(int argc, char **argv);
int fv_cmd_aggregator(int argc, char **argv);
int fv_cmd_collector(int argc, char **argv);
int fv_cmd_generate(int argc, char **argv);
int fv_cmd_get(int argc, char **argv);

/* Parses a non-negative integer option value with bounds; prints an error
 * naming the option and returns -1 when it is not one. */
int fv_cmd_parse_u64(const char *opt, const char *val, unsigned long long min,
                     unsigned long long max, unsigned long long *out);

/* Parses --address/--target (HOST[:PORT][:PROTO]) and an optional
 * --transport that overrides PROTO; prints an error naming the option and
 * returns -1 when either is bad. */
struct fv_addr;
int fv_cmd_parse_addr(const char *cmd, const char *opt, const char *text, const char *transport,
                      int default_proto, struct fv_addr *out);

/* A command driven by a config table: its options (-c/--config FILE,
 * --check, --print-config yaml|markdown, -h/--help), the checks the table
 * cannot make (finish), and the daemon it runs until SIGINT/SIGTERM. */
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
struct fv_cfg_opt;
struct fv_cmd_config_spec {
    const char *name;              /* "agent", "aggregator" */
    const struct fv_cfg_opt *opts; /* the config table */
    size_t nopts;
    void (*usage)(FILE *out);
    bool config_required; /* without --config: an error, or the defaults */
    /* Checks keys that only fail together; prints why and returns -1. */
    int (*finish)(const char *path, void *cfg);
    int (*run)(const void *cfg, volatile sig_atomic_t *stop);
    int log_level_offset; /* offset of the int logLevel field in cfg */
};

/* Parses the options, loads the file (or the defaults) into cfg (zeroed,
 * spec-sized), checks it and runs the command.  Returns the exit status:
 * 0, 1 when the command could not run, 2 for bad options or config. */
int fv_cmd_config_main(const struct fv_cmd_config_spec *spec, void *cfg, int argc, char **argv);

#endif
