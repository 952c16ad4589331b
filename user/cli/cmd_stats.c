// SPDX-License-Identifier: MIT
/*
 * tmbpf stats SNAPSHOT: snapshot.statistics(key_type, cumulative), after the
 * filters, printed as str(Statistic) lines or one JSON object.
 */
#include "cli/cli_common.h"

static const char stats_doc[] =
	"Print the statistics of a snapshot: "
	"Snapshot.filter_traces(FILTERS).statistics(KEY_TYPE, CUMULATIVE), "
	"one str(Statistic) per line, biggest first, in CPython's order."
	"\v"
	"Examples:\n"
	"  tmbpf stats snap.pickle\n"
	"  tmbpf stats snap.tmbpf --key-type traceback --limit 3\n"
	"  tmbpf stats snap.tmbpf --cumulative --include '*/myapp/*' --json\n"
	"\n" CLI_EXIT_STATUS_DOC;

static const struct argp_option stats_options[] = {
	CLI_HELP_OPTION,
	{ 0 },
};

static const struct argp_option *const stats_tables[] = {
	cli_analysis_options, stats_options, NULL,
};

static int stats_parse_opt(int key, char *arg, void *ctx)
{
	return cli_analysis_parse_opt(ctx, key, arg) ? -1 : 0;
}

static const struct cli_spec stats_spec = {
	.name = "stats",
	.args_doc = "SNAPSHOT",
	.doc = stats_doc,
	.options = stats_tables,
	.min_args = 1,
	.max_args = 1,
	.parse_opt = stats_parse_opt,
};

static int stats_run(int argc, char **argv)
{
	struct cli_analysis a;
	struct tm_snapshot *s = NULL;
	struct tm_stats st;
	struct tm_error err = { "" };
	char **args;
	int nargs, ret;

	cli_analysis_init(&a);
	ret = cli_parse(&stats_spec, argc, argv, &a, &args, &nargs);
	if (ret) {
		ret = ret == CLI_PARSE_HELP ? CLI_EXIT_OK : CLI_EXIT_USAGE;
		goto out;
	}
	if (cli_analysis_finish(&a)) {
		ret = CLI_EXIT_USAGE;
		goto out;
	}
	ret = CLI_EXIT_RUNTIME;
	s = cli_load_snapshot_for(&a, args[0]);
	if (!s || cli_analysis_filter(&a, s))
		goto out;
	if (tm_statistics(s, a.key_type, a.cumulative, &st, &err)) {
		cli_err("%s", err.msg);
		goto out;
	}
	if (!cli_analysis_print(&a, &st))
		ret = CLI_EXIT_OK;
	tm_stats_free(&st);
out:
	tm_snapshot_free(s);
	cli_analysis_destroy(&a);
	return ret;
}

const struct cli_command cli_cmd_stats = {
	.name = "stats",
	.summary = "Statistics of a snapshot, like Snapshot.statistics()",
	.run = stats_run,
};
