/*
 * cmd.h - the flowvis subcommands.  Each takes the arguments after its
 * name (argv[0] is the subcommand) and returns the process exit status.
 */
#ifndef FV_CMD_CMD_H
#define FV_CMD_CMD_H

int fv_cmd_agent(int argc, char **argv);
int fv_cmd_collector(int argc, char **argv);
int fv_cmd_generate(int argc, char **argv);

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

#endif
