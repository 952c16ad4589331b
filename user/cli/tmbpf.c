// SPDX-License-Identifier: MIT
/*
 * tmbpf: CPython's tracemalloc, outside the process, on eBPF.
 *
 * main() only picks the command: `tmbpf COMMAND [OPTION...] ARGS`. Each
 * command lives in its own file (cmd_NAME.c) and exports
 * `const struct cli_command cli_cmd_NAME`; TMBPF_COMMANDS below is the one
 * list of them, so adding a command is that file plus one X(NAME) entry.
 */
#include <stdlib.h>
#include <string.h>

#include "cli/cli_common.h"

#define TMBPF_VERSION "0.1.0"

/* X(name): one entry per command, in the order --help lists them */
#define TMBPF_COMMANDS(X) \
	X(stats)          \
	X(diff)           \
	X(convert)        \
	X(show)           \
	X(run)            \
	X(attach)         \
	X(flamegraph)     \
	X(top)

#define DECLARE_CMD(name) extern const struct cli_command cli_cmd_##name;
TMBPF_COMMANDS(DECLARE_CMD)
#undef DECLARE_CMD

#define CMD_ENTRY(name) &cli_cmd_##name,
static const struct cli_command *const commands[] = { TMBPF_COMMANDS(CMD_ENTRY) };
#undef CMD_ENTRY

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static const char main_doc[] =
	"tmbpf -- CPython's tracemalloc, outside the process, on eBPF.\n"
	"\n"
	"Snapshots are tmbpf's native files or CPython pickles written by "
	"tracemalloc.Snapshot.dump(); every command reads both (the format is "
	"detected from the content).\n"
	"\v"
	"Run 'tmbpf COMMAND --help' for a command's options.\n"
	"\n"
	"Examples:\n"
	"  tmbpf stats snap.pickle               # statistics('lineno')[:10]\n"
	"  tmbpf diff old.pickle new.pickle      # new.compare_to(old, 'lineno')\n"
	"  tmbpf convert snap.pickle snap.tmbpf  # to the native format\n"
	"  tmbpf show snap.tmbpf                 # what the file holds\n"
	"  tmbpf flamegraph snap.tmbpf -o m.svg  # flame graph of the traced memory\n"
	"  tmbpf top -p 1234                     # live top of a running process\n"
	"\n" CLI_EXIT_STATUS_DOC;

static void print_main_help(FILE *out)
{
	/* the command list is rendered by argp as "documentation options" */
	struct argp_option opts[NCOMMANDS + 4];
	size_t n = 0;

	memset(opts, 0, sizeof(opts));
	opts[n++] = (struct argp_option){ NULL, 0, NULL, 0, "Commands:", 1 };
	for (size_t i = 0; i < NCOMMANDS; i++)
		opts[n++] = (struct argp_option){ commands[i]->name, 0, NULL, OPTION_DOC,
						  commands[i]->summary, 1 };
	opts[n++] = (struct argp_option){ "help", 'h', NULL, 0, "Show this help and exit", 2 };
	opts[n++] = (struct argp_option){ "version", 'V', NULL, 0, "Print the version and exit",
					  2 };
	struct argp argp = { .options = opts, .args_doc = "COMMAND [ARG...]", .doc = main_doc };

	argp_help(&argp, out, ARGP_HELP_STD_HELP, "tmbpf");
}

static const struct cli_command *find_command(const char *name)
{
	for (size_t i = 0; i < NCOMMANDS; i++)
		if (!strcmp(commands[i]->name, name))
			return commands[i];
	return NULL;
}

int main(int argc, char **argv)
{
	const struct cli_command *cmd;
	const char *name;

	if (argc < 2) {
		cli_err("missing command (try 'tmbpf --help')");
		return CLI_EXIT_USAGE;
	}
	name = argv[1];
	if (!strcmp(name, "--help") || !strcmp(name, "-h")) {
		print_main_help(stdout);
		return CLI_EXIT_OK;
	}
	if (!strcmp(name, "--version") || !strcmp(name, "-V")) {
		printf("tmbpf %s\n", TMBPF_VERSION);
		return CLI_EXIT_OK;
	}
	/* `tmbpf help [COMMAND]` */
	if (!strcmp(name, "help")) {
		if (argc < 3) {
			print_main_help(stdout);
			return CLI_EXIT_OK;
		}
		cmd = find_command(argv[2]);
		if (!cmd) {
			cli_err("unknown command '%s' (try 'tmbpf --help')", argv[2]);
			return CLI_EXIT_USAGE;
		}
		char *help_argv[] = { argv[2], (char *)"--help", NULL };

		return cmd->run(2, help_argv);
	}
	if (name[0] == '-') {
		cli_err("unrecognized option '%s' (try 'tmbpf --help')", name);
		return CLI_EXIT_USAGE;
	}
	cmd = find_command(name);
	if (!cmd) {
		cli_err("unknown command '%s' (try 'tmbpf --help')", name);
		return CLI_EXIT_USAGE;
	}
	return cmd->run(argc - 1, argv + 1);
}
