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

#endif
