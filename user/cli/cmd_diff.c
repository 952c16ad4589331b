// SPDX-License-Identifier: MIT
/*
 * tmbpf diff OLD NEW: NEW.compare_to(OLD, key_type, cumulative), the filters
 * applied to both snapshots, printed as str(StatisticDiff) lines or JSON.
 */
#include "cli/cli_common.h"

static const char diff_doc[] =
	"Compare two snapshots: NEW.compare_to(OLD, KEY_TYPE, CUMULATIVE) after "
	"filter_traces(FILTERS) on both, one str(StatisticDiff) per line, biggest "
	"change first, in CPython's order."
	"\v"
	"Examples:\n"
	"  tmbpf diff before.pickle after.pickle\n"
	"  tmbpf diff before.tmbpf after.tmbpf --key-type filename --limit 0 --json\n"
	"\n" CLI_EXIT_STATUS_DOC;

static const struct argp_option diff_options[] = {
	CLI_HELP_OPTION,
	{ 0 },
};

static const struct argp_option *const diff_tables[] = {
	cli_analysis_options, diff_options, NULL,
};

static int diff_parse_opt(int key, char *arg, void *ctx)
{
	return cli_analysis_parse_opt(ctx, key, arg) ? -1 : 0;
}

static const struct cli_spec diff_spec = {
	.name = "diff",
	.args_doc = "OLD NEW",
	.doc = diff_doc,
	.options = diff_tables,
	.min_args = 2,
	.max_args = 2,
	.parse_opt = diff_parse_opt,
};

static int diff_run(int argc, char **argv)
{
	struct cli_analysis a;
	struct tm_snapshot *old_snap = NULL, *new_snap = NULL;
	struct tm_stats st;
	struct tm_error err = { "" };
	char **args;
	int nargs, ret;

	cli_analysis_init(&a);
	ret = cli_parse(&diff_spec, argc, argv, &a, &args, &nargs);
	if (ret) {
		ret = ret == CLI_PARSE_HELP ? CLI_EXIT_OK : CLI_EXIT_USAGE;
		goto out;
	}
	if (cli_analysis_finish(&a)) {
		ret = CLI_EXIT_USAGE;
		goto out;
	}
	ret = CLI_EXIT_RUNTIME;
	old_snap = cli_load_snapshot_for(&a, args[0]);
	if (!old_snap || cli_analysis_filter(&a, old_snap))
		goto out;
	new_snap = cli_load_snapshot_for(&a, args[1]);
	if (!new_snap || cli_analysis_filter(&a, new_snap))
		goto out;
	if (tm_compare_to(new_snap, old_snap, a.key_type, a.cumulative, &st, &err)) {
		cli_err("%s", err.msg);
		goto out;
	}
	if (!cli_analysis_print(&a, &st))
		ret = CLI_EXIT_OK;
	tm_stats_free(&st);
out:
	tm_snapshot_free(new_snap);
	tm_snapshot_free(old_snap);
	cli_analysis_destroy(&a);
	return ret;
}

const struct cli_command cli_cmd_diff = {
	.name = "diff",
	.summary = "Differences between two snapshots, like Snapshot.compare_to()",
	.run = diff_run,
};
