/* SPDX-License-Identifier: MIT */
/*
 * What every tmbpf command shares: the command table entry, option parsing,
 * the one-line error convention, buffered standard output, and the analysis
 * options (key type, cumulative, limit, JSON, filters) of `stats` and `diff`.
 *
 * Adding a command = one file defining `const struct cli_command cli_cmd_NAME`
 * + one X(NAME) entry in TMBPF_COMMANDS (tmbpf.c).
 *
 * Options are declared as argp tables (struct argp_option, as in libbpf-tools)
 * and argp renders --help from them; parsing itself goes through getopt_long
 * with its messages turned off, because argp's own error output is two lines
 * and a usage error here must be exactly one line on stderr.
 */
#ifndef TMBPF_CLI_COMMON_H
#define TMBPF_CLI_COMMON_H

#include <argp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "snapshot/filter.h"
#include "snapshot/snapshot.h"
#include "snapshot/stats.h"

/* Exit status of every command (also printed by --help). */
enum {
	CLI_EXIT_OK = 0,
	CLI_EXIT_RUNTIME = 1,           /* unreadable/invalid file, allocation, I/O... */
	CLI_EXIT_USAGE = 2,             /* bad options or arguments */
};

#define CLI_EXIT_STATUS_DOC \
	"Exit status: 0 on success, 1 on a runtime error (missing, unreadable, truncated " \
	"or invalid file, write failure), 2 on a usage error (bad option, number or " \
	"combination). Errors are one line on stderr starting with 'tmbpf: '; nothing " \
	"is written to stdout then."

struct cli_command {
	const char *name;               /* `tmbpf NAME ...` */
	const char *summary;            /* one line for `tmbpf --help` */
	/* argv[0] is the command name; returns an exit status (CLI_EXIT_*) */
	int (*run)(int argc, char **argv);
};

/* ---- errors -------------------------------------------------------------- */

/* Prints "tmbpf: MESSAGE\n" on stderr; control characters in the message
 * (e.g. from a file name) are escaped so that it stays one line. */
void cli_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- option parsing ------------------------------------------------------- */

/* Keys of long-only options start here (above any short-option character). */
#define CLI_OPT_BASE 0x100
#define CLI_OPT_HELP 'h'

/* An argp table entry for --help / -h; every command's table has one. */
#define CLI_HELP_OPTION { "help", CLI_OPT_HELP, NULL, 0, "Show this help and exit", -1 }

struct cli_spec {
	const char *name;               /* for "Usage: tmbpf NAME ..." */
	const char *args_doc;           /* e.g. "SNAPSHOT" */
	const char *doc;                /* argp doc: "summary\vdetails" */
	/* NULL-terminated list of option tables, each ended by a zero entry */
	const struct argp_option *const *options;
	int min_args, max_args;
	bool options_first;             /* options stop at the first argument (run CMD...) */
	/* Called for each option in command-line order with its key and argument.
	 * Returns 0, or -1 after reporting the error with cli_err(). */
	int (*parse_opt)(int key, char *arg, void *ctx);
};

#define CLI_PARSE_HELP 1

/* Parses the options of argv (argv[0] = command name). Returns 0 with the
 * positional arguments in *args / *nargs (pointers into argv), CLI_PARSE_HELP
 * when --help was printed, or -1 when a usage error was reported. */
int cli_parse(const struct cli_spec *spec, int argc, char **argv, void *ctx,
	      char ***args, int *nargs);

/* Prints a command's --help to `out`. */
void cli_print_help(const struct cli_spec *spec, FILE *out);

/* Number parsers for option values: decimal only (hex too for addresses);
 * 0, or -1 after cli_err("invalid WHAT: 'ARG'"). */
int cli_parse_u64(const char *arg, const char *what, uint64_t max, uint64_t *out);
int cli_parse_address(const char *arg, uint64_t *out);
/* cli_parse_u64 with a lower bound too ("WHAT out of range (MIN to MAX)"). */
int cli_parse_u64_range(const char *arg, const char *what, uint64_t min, uint64_t max,
			uint64_t *out);

/* ---- buffered output ----------------------------------------------------- */

/* A command writes its whole result to fp (a memory stream) and commits it at
 * the end, so that an error never leaves half a result on stdout. */
struct cli_output {
	FILE *fp;
	char *buf;
	size_t len;
};

int cli_output_open(struct cli_output *o);
/* Writes the buffer to stdout and flushes; 0, or -1 after cli_err(). Frees. */
int cli_output_commit(struct cli_output *o);
void cli_output_discard(struct cli_output *o);

/* ---- snapshots ----------------------------------------------------------- */

/* tm_snapshot_load(), reporting the failure with cli_err(). */
struct tm_snapshot *cli_load_snapshot(const char *path);
/* The same, aggregated (TM_LOAD_AGGREGATE): for the commands whose results
 * depend only on the (traceback, domain) sums -- stats, diff, flamegraph. */
struct tm_snapshot *cli_load_snapshot_aggregated(const char *path);
struct cli_analysis;
/* The same for statistics / compare_to with a's filters: without domains
 * (TM_LOAD_NO_DOMAINS) when no filter looks at them. */
struct tm_snapshot *cli_load_snapshot_for(const struct cli_analysis *a, const char *path);

/* A command-line string as Python's os.fsdecode() reads it (UTF-8 with
 * 'surrogateescape'), in the encoding snapshots use for strings (UTF-8 with
 * 'surrogatepass'): an undecodable byte B becomes U+DC00+B, so a pattern
 * typed with the raw bytes of a file name matches the name CPython recorded.
 * Returns a malloc'ed NUL-terminated copy, its length in *len; NULL on
 * allocation failure. */
char *cli_fsdecode(const char *arg, size_t arglen, size_t *len);

/* ---- analysis options (stats, diff) ------------------------------------- */

enum cli_filter_kind {
	CLI_INCLUDE,
	CLI_EXCLUDE,
	CLI_INCLUDE_DOMAIN,
	CLI_EXCLUDE_DOMAIN,
};

/* One filter option as given: applied in command-line order. */
struct cli_filter_arg {
	enum cli_filter_kind kind;
	char *pattern;                  /* owned, in the snapshot's string encoding */
	size_t pattern_len;
	int64_t lineno;                 /* -1 = any line */
	int64_t domain;                 /* -1 = any domain (pattern filters) */
};

struct cli_analysis {
	enum tm_key_type key_type;
	bool cumulative;
	uint64_t limit;                 /* 0 = all */
	bool json;
	bool all_frames;
	struct cli_filter_arg *filter_args;
	size_t nfilter_args;
	struct tm_filter *filters;      /* built by cli_analysis_finish() */
	size_t nfilters;
};

extern const struct argp_option cli_analysis_options[];

void cli_analysis_init(struct cli_analysis *a);
/* Handles one option of cli_analysis_options: 0 handled, -1 error reported,
 * 1 not an analysis option. */
int cli_analysis_parse_opt(struct cli_analysis *a, int key, char *arg);
/* After parsing: checks the combination CPython refuses and builds the filters.
 * 0, or -1 after cli_err() (a usage error). */
int cli_analysis_finish(struct cli_analysis *a);
/* Snapshot.filter_traces(filters) in place; 0 or -1 after cli_err(). */
int cli_analysis_filter(const struct cli_analysis *a, struct tm_snapshot *s);
/* Prints the first --limit entries of st as text or JSON (--json) on stdout,
 * all at once. 0, or -1 after cli_err(). */
int cli_analysis_print(const struct cli_analysis *a, const struct tm_stats *st);
void cli_analysis_destroy(struct cli_analysis *a);

/* Splits "PATTERN[:LINENO][@DOMAIN]": each suffix is taken from the right
 * and only when it is all digits (a pattern may itself hold ':' or '@').
 * The pattern is converted like the rest of a command-line string by
 * cli_fsdecode(). 0, or -1 after cli_err() (out of range, out of memory). */
int cli_split_filter_spec(const char *spec, struct cli_filter_arg *out);

#endif /* TMBPF_CLI_COMMON_H */
