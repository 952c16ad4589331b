// SPDX-License-Identifier: MIT
/*
 * tmbpf show SNAPSHOT [--address ADDR]: what a snapshot file holds, or the
 * traceback of one memory block.
 */
#include <inttypes.h>

#include "cli/cli_common.h"
#include "output/report.h"

enum {
	OPT_ADDRESS = CLI_OPT_BASE,
};

static const char show_doc[] =
	"Summarize a snapshot: number of traces, total size, traceback_limit, "
	"domains, and how it was captured (tier, coverage, sampling, process, "
	"traced and tracer memory, non-zero counters)."
	"\v"
	"With --address, print the trace of the memory block at ADDR (str(Trace)) "
	"and its traceback as Traceback.format() writes it. Only snapshots taken by "
	"tmbpf record block addresses; CPython's pickles do not.\n"
	"\n"
	"Examples:\n"
	"  tmbpf show snap.tmbpf\n"
	"  tmbpf show snap.tmbpf --address 0x7f3a2c001e40\n"
	"\n" CLI_EXIT_STATUS_DOC;

/* name/longopt:str, key/shortopt:int, arg:str, flags:int, doc:str, group:int */
static const struct argp_option show_options[] = {
	{ "address", OPT_ADDRESS, "ADDR", 0,
	  "Show the block at ADDR (hex with 0x, or decimal)", 0 },
	CLI_HELP_OPTION,
	{ 0 },
};

static const struct argp_option *const show_tables[] = { show_options, NULL };

struct show_env {
	bool has_address;
	uint64_t address;
};

static int show_parse_opt(int key, char *arg, void *ctx)
{
	struct show_env *env = ctx;

	if (key != OPT_ADDRESS)
		return -1;
	env->has_address = true;
	return cli_parse_address(arg, &env->address);
}

static const struct cli_spec show_spec = {
	.name = "show",
	.args_doc = "SNAPSHOT",
	.doc = show_doc,
	.options = show_tables,
	.min_args = 1,
	.max_args = 1,
	.parse_opt = show_parse_opt,
};

/* CPython's pickles carry no addresses: every trace loads with address 0. */
static bool has_addresses(const struct tm_snapshot *s)
{
	for (uint64_t i = 0; i < s->ntraces; i++)
		if (s->traces[i].address)
			return true;
	return false;
}

static int show_run(int argc, char **argv)
{
	struct show_env env = { 0 };
	struct tm_error err = { "" };
	struct tm_snapshot *s;
	struct cli_output o;
	char **args;
	int nargs, ret;

	ret = cli_parse(&show_spec, argc, argv, &env, &args, &nargs);
	if (ret)
		return ret == CLI_PARSE_HELP ? CLI_EXIT_OK : CLI_EXIT_USAGE;
	s = cli_load_snapshot(args[0]);
	if (!s)
		return CLI_EXIT_RUNTIME;
	ret = CLI_EXIT_RUNTIME;
	if (env.has_address && !has_addresses(s)) {
		cli_err("%s records no block addresses (CPython's pickles do not): "
			"--address needs a snapshot taken by tmbpf", args[0]);
		goto out;
	}
	if (cli_output_open(&o))
		goto out;
	if (env.has_address) {
		if (!report_traces_at(o.fp, s, env.address)) {
			cli_err("no memory block at address 0x%" PRIx64 " in %s", env.address,
				args[0]);
			cli_output_discard(&o);
			goto out;
		}
	} else if (report_snapshot_summary(o.fp, s, &err)) {
		cli_err("%s", err.msg);
		cli_output_discard(&o);
		goto out;
	}
	if (!cli_output_commit(&o))
		ret = CLI_EXIT_OK;
out:
	tm_snapshot_free(s);
	return ret;
}

const struct cli_command cli_cmd_show = {
	.name = "show",
	.summary = "Summary of a snapshot, or the traceback of one memory block",
	.run = show_run,
};
