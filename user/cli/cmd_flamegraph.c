// SPDX-License-Identifier: MIT
/*
 * tmbpf flamegraph SNAPSHOT: the snapshot's tracebacks as folded stacks
 * (flamegraph.pl / speedscope input) or as a self-contained SVG flame graph
 * (see output/flamegraph.h for both formats), after the analysis filters.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli_trace.h"
#include "output/flamegraph.h"
#include "snapshot/snapfile.h"

static const char flamegraph_doc[] =
	"Draw a snapshot as a flame graph: folded stacks (one line per traceback, frames "
	"oldest first, 'FILE:LINE;FILE:LINE BYTES', sorted), the input of flamegraph.pl and "
	"speedscope, or an SVG drawn like flamegraph.pl --countname bytes."
	"\v"
	"The format is SVG with --svg or when OUT ends in .svg, folded stacks otherwise "
	"(on stdout without -o). Widths and weights are bytes (the sum of the sizes of a "
	"traceback's traces), or numbers of traces with --count. In folded stacks '\\', ';', "
	"control characters and lone surrogates of file names are written as \\\\, \\x3b, "
	"\\n (\\xHH) and \\udcXX, so every line is one stack. Frames narrower than 0.1 px are "
	"left out of the SVG, as flamegraph.pl does. A growth-tier snapshot is drawn from "
	"domain 1 (resident pages that grew while tracing) unless a domain filter says "
	"otherwise (--include-domain 2: address space mapped). A CPython pickle has as many "
	"frames per traceback as its traceback_limit.\n"
	"\n"
	"Examples:\n"
	"  tmbpf flamegraph snap.tmbpf -o mem.svg\n"
	"  tmbpf flamegraph snap.pickle --folded > mem.folded\n"
	"  tmbpf flamegraph snap.tmbpf -o mem.svg --inverted --include '*/myapp/*'\n"
	"  tmbpf flamegraph growth.tmbpf -o maps.svg --include-domain 2\n"
	"\n" CLI_EXIT_STATUS_DOC;

enum {
	OPT_OUTPUT = 'o',
	OPT_FOLDED = CLI_OPT_BASE + 0x80,
	OPT_SVG,
	OPT_TITLE,
	OPT_INVERTED,
	OPT_COUNT,
	OPT_WIDTH,
};

static const struct argp_option flamegraph_options[] = {
	{ NULL, 0, NULL, 0, "Output:", 0 },
	{ "output", OPT_OUTPUT, "OUT", 0,
	  "Write to OUT, atomically (default: standard output)", 0 },
	{ "folded", OPT_FOLDED, NULL, 0, "Folded stacks (the default unless OUT ends in .svg)", 0 },
	{ "svg", OPT_SVG, NULL, 0, "SVG flame graph", 0 },
	{ "title", OPT_TITLE, "TITLE", 0, "Title of the SVG (default \"Memory Flame Graph\")", 0 },
	{ "inverted", OPT_INVERTED, NULL, 0, "Icicle graph: the root at the top (SVG)", 0 },
	{ "count", OPT_COUNT, NULL, 0, "Weigh stacks by their number of traces, not bytes", 0 },
	{ "width", OPT_WIDTH, "PIXELS", 0, "Width of the SVG (default 1200)", 0 },
	CLI_HELP_OPTION,
	{ 0 },
};

/*
 * The filter options of the analysis table (its group 2): --key-type,
 * --cumulative, --limit and --json mean nothing for a flame graph, which
 * draws every traceback.
 */
static struct argp_option filter_options[16];

static const struct argp_option *filter_table(void)
{
	size_t n = 0;

	if (filter_options[0].name || filter_options[0].doc)
		return filter_options;
	for (const struct argp_option *o = cli_analysis_options; o->name || o->key || o->doc; o++)
		if (o->group == 2 && n + 1 < sizeof(filter_options) / sizeof(filter_options[0]))
			filter_options[n++] = *o;
	return filter_options;
}

struct flamegraph_args {
	struct cli_analysis analysis;
	const char *output;
	const char *title;
	bool folded, svg, inverted, count;
	unsigned width;
};

static int flamegraph_parse_opt(int key, char *arg, void *ctx)
{
	struct flamegraph_args *a = ctx;
	uint64_t v;

	switch (key) {
	case OPT_OUTPUT:
		a->output = arg;
		return 0;
	case OPT_FOLDED:
		a->folded = true;
		return 0;
	case OPT_SVG:
		a->svg = true;
		return 0;
	case OPT_TITLE:
		a->title = arg;
		return 0;
	case OPT_INVERTED:
		a->inverted = true;
		return 0;
	case OPT_COUNT:
		a->count = true;
		return 0;
	case OPT_WIDTH:
		if (cli_parse_u64(arg, "--width", 100000, &v))
			return -1;
		if (v < 100) {
			cli_err("--width out of range (100 to 100000): '%s'", arg);
			return -1;
		}
		a->width = (unsigned)v;
		return 0;
	}
	return cli_analysis_parse_opt(&a->analysis, key, arg) ? -1 : 0;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);

	return n >= k && !strcmp(s + n - k, suffix);
}

static const char *tier_name(enum tm_tier t)
{
	switch (t) {
	case TM_TIER_EXACT: return "exact tier";
	case TM_TIER_NATIVE: return "native tier";
	case TM_TIER_GROWTH: return "growth tier";
	default: return "tracemalloc snapshot";
	}
}

/* What the graph shows, under its totals: where the snapshot comes from. */
static char *describe(const struct tm_snapshot *s, bool growth_pages)
{
	const struct tm_capture *c = &s->capture;
	char *text = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&text, &len);

	if (!m)
		return NULL;
	fputs(tier_name(c->tier), m);
	if (c->pid)
		fprintf(m, ", PID %" PRId32, c->pid);
	if (c->command != TM_ID_NONE) {
		struct tm_str cmd = tm_string(s, c->command);
		uint32_t n = cmd.len;

		/* a long command line is cut, between two UTF-8 sequences */
		if (n > 120) {
			n = 120;
			while (n && ((unsigned char)cmd.data[n] & 0xc0) == 0x80)
				n--;
		}
		fprintf(m, ": %.*s%s", (int)n, cmd.data, n < cmd.len ? "..." : "");
	}
	fprintf(m, "; traceback_limit %" PRIu32, s->traceback_limit);
	if (growth_pages)
		fputs("; domain 1: resident pages that grew while tracing", m);
	if (c->coverage == TM_COVERAGE_SAMPLED)
		fputs("; sampled: sizes are estimates", m);
	else if (c->coverage == TM_COVERAGE_PARTIAL)
		fputs("; coverage PARTIAL", m);
	if (ferror(m) | fclose(m)) {
		free(text);
		return NULL;
	}
	return text;
}

static const struct cli_spec flamegraph_spec_base = {
	.name = "flamegraph",
	.args_doc = "SNAPSHOT",
	.doc = flamegraph_doc,
	.min_args = 1,
	.max_args = 1,
	.parse_opt = flamegraph_parse_opt,
};

static int write_graph(const struct flamegraph_args *a, const struct fg_profile *prof,
		       const char *subtitle, const char *title, FILE *out, struct tm_error *err)
{
	if (a->svg) {
		struct fg_svg_opts so = {
			.title = title,
			.subtitle = subtitle,
			.inverted = a->inverted,
			.counts = a->count,
			.width = a->width,
		};

		return fg_write_svg(out, prof, &so, err);
	}
	return fg_write_folded(out, prof, a->count, err);
}

static int flamegraph_run(int argc, char **argv)
{
	const struct argp_option *const tables[] = { flamegraph_options, filter_table(), NULL };
	struct cli_spec spec = flamegraph_spec_base;
	struct flamegraph_args a;
	struct tm_snapshot *s = NULL;
	struct fg_profile prof = { 0 };
	struct tm_error err = { "" };
	char *subtitle = NULL, *title = NULL;
	bool growth_pages = false;
	char **args;
	int nargs, ret;

	memset(&a, 0, sizeof(a));
	cli_analysis_init(&a.analysis);
	spec.options = tables;
	ret = cli_parse(&spec, argc, argv, &a, &args, &nargs);
	if (ret) {
		ret = ret == CLI_PARSE_HELP ? CLI_EXIT_OK : CLI_EXIT_USAGE;
		goto out;
	}
	ret = CLI_EXIT_USAGE;
	if (a.folded && a.svg) {
		cli_err("flamegraph: --folded and --svg exclude each other");
		goto out;
	}
	if (!a.folded && !a.svg && a.output && ends_with(a.output, ".svg"))
		a.svg = true;
	if (!a.svg && (a.title || a.inverted || a.width)) {
		cli_err("flamegraph: --%s is for SVG output (add --svg, or -o FILE.svg)",
			a.title ? "title" : a.inverted ? "inverted" : "width");
		goto out;
	}
	if (cli_analysis_finish(&a.analysis))
		goto out;
	ret = CLI_EXIT_RUNTIME;
	s = cli_load_snapshot_aggregated(args[0]);
	if (!s || cli_analysis_filter(&a.analysis, s))
		goto out;
	switch (cli_trace_growth_default_domain(&a.analysis, s, &err)) {
	case -1:
		cli_err("%s", err.msg);
		goto out;
	case 1:
		growth_pages = true;
		fprintf(stderr, "tmbpf: growth snapshot: drawing domain 1 (resident pages that grew "
			"while tracing); --include-domain 2 for the address space mapped\n");
		break;
	}
	if (fg_profile_build(&prof, s, &err)) {
		cli_err("%s", err.msg);
		goto out;
	}
	subtitle = describe(s, growth_pages);
	if (a.title) {
		size_t len;

		/* as Python would read it: undecodable bytes become lone surrogates */
		title = cli_fsdecode(a.title, strlen(a.title), &len);
	}
	if (!subtitle || (a.title && !title)) {
		cli_err("out of memory");
		goto out;
	}
	if (a.output) {
		struct tm_atomic_file af;

		if (tm_atomic_open(&af, a.output, &err)) {
			cli_err("%s", err.msg);
			goto out;
		}
		if (write_graph(&a, &prof, subtitle, title, af.fp, &err)) {
			tm_atomic_abort(&af);
			cli_err("%s", err.msg);
			goto out;
		}
		if (tm_atomic_commit(&af, &err)) {
			cli_err("%s", err.msg);
			goto out;
		}
	} else {
		struct cli_output o;

		if (cli_output_open(&o))
			goto out;
		if (write_graph(&a, &prof, subtitle, title, o.fp, &err)) {
			cli_output_discard(&o);
			cli_err("%s", err.msg);
			goto out;
		}
		if (cli_output_commit(&o))
			goto out;
	}
	ret = CLI_EXIT_OK;
out:
	free(subtitle);
	free(title);
	fg_profile_destroy(&prof);
	tm_snapshot_free(s);
	cli_analysis_destroy(&a.analysis);
	return ret;
}

const struct cli_command cli_cmd_flamegraph = {
	.name = "flamegraph",
	.summary = "Flame graph of a snapshot: folded stacks or SVG",
	.run = flamegraph_run,
};
