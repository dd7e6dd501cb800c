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

/* The options every config-driven command shares: -c/--config FILE,
 * --check, --print-config yaml|markdown, -h/--help.  Loads the file (or
 * the defaults when there is none and it is not required) into cfg.
 * Returns -1 when the command should go on (*path_out names the source,
 * *check_out tells whether only a check was asked), else the exit status
 * (cfg is then already released). */
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
struct fv_cfg_opt;
int fv_cmd_config_args(const char *cmd, const struct fv_cfg_opt *opts, size_t n,
                       void (*usage)(FILE *), bool config_required, int argc, char **argv,
                       void *cfg, const char **path_out, bool *check_out);

#endif
