// SPDX-License-Identifier: MIT
/*
 * Shared command-line machinery of tmbpf (see cli_common.h).
 */
#include "cli/cli_common.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "output/report.h"
#include "snapshot/snapfile.h"

/* ---- errors -------------------------------------------------------------- */

void cli_err(const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);

	fputs("tmbpf: ", stderr);
	for (const unsigned char *p = (const unsigned char *)msg; *p; p++) {
		if (*p < 0x20 || *p == 0x7f)
			fprintf(stderr, "\\x%02x", *p);
		else
			fputc(*p, stderr);
	}
	fputc('\n', stderr);
}

/* ---- option parsing ------------------------------------------------------- */

/* The command's option tables as one argp table (for help) and the matching
 * getopt_long table. */
struct merged_options {
	struct argp_option *argp;
	struct option *longopts;
	char shortopts[128];
	size_t nlong;
};

static bool is_short_key(int key)
{
	return key > 0 && key < 0x80 && isalnum(key);
}

static int merge_options(const struct cli_spec *spec, struct merged_options *m)
{
	size_t n = 0, s = 0;

	memset(m, 0, sizeof(*m));
	for (const struct argp_option *const *t = spec->options; *t; t++)
		for (const struct argp_option *o = *t; o->name || o->key || o->doc; o++)
			n++;
	m->argp = calloc(n + 1, sizeof(*m->argp));
	m->longopts = calloc(n + 1, sizeof(*m->longopts));
	if (!m->argp || !m->longopts) {
		free(m->argp);
		free(m->longopts);
		return -1;
	}
	/* '+': options end at the first argument (`tmbpf run CMD -x` leaves -x to CMD) */
	if (spec->options_first)
		m->shortopts[s++] = '+';
	/* ':' first: a missing argument is reported as ':' rather than '?' */
	m->shortopts[s++] = ':';
	n = 0;
	for (const struct argp_option *const *t = spec->options; *t; t++) {
		for (const struct argp_option *o = *t; o->name || o->key || o->doc; o++) {
			m->argp[n++] = *o;
			if (o->flags & OPTION_DOC)
				continue;
			int has_arg = !o->arg ? no_argument :
				      (o->flags & OPTION_ARG_OPTIONAL) ? optional_argument :
				      required_argument;

			if (o->name)
				m->longopts[m->nlong++] = (struct option){ o->name, has_arg, NULL,
									   o->key };
			if (is_short_key(o->key) && s + 3 < sizeof(m->shortopts)) {
				m->shortopts[s++] = (char)o->key;
				if (has_arg != no_argument)
					m->shortopts[s++] = ':';
				if (has_arg == optional_argument)
					m->shortopts[s++] = ':';
			}
		}
	}
	return 0;
}

static void free_options(struct merged_options *m)
{
	free(m->argp);
	free(m->longopts);
}

void cli_print_help(const struct cli_spec *spec, FILE *out)
{
	struct merged_options m;
	char name[64];

	if (merge_options(spec, &m)) {
		cli_err("out of memory");
		return;
	}
	struct argp argp = { .options = m.argp, .args_doc = spec->args_doc, .doc = spec->doc };

	snprintf(name, sizeof(name), "tmbpf %s", spec->name);
	argp_help(&argp, out, ARGP_HELP_STD_HELP, name);
	free_options(&m);
}

/*
 * getopt_long's reason for a '?' as one sentence: it only says "bad option",
 * so look at the argument it stopped on (argv[optind - 1] for a long option).
 */
static void report_bad_option(const struct merged_options *m, const char *arg, int optopt_ch)
{
	if (strncmp(arg, "--", 2) != 0) {
		cli_err("unrecognized option '-%c'", optopt_ch ? optopt_ch : '?');
		return;
	}
	const char *name = arg + 2;
	size_t len = strcspn(name, "=");
	const struct option *exact = NULL;
	size_t nprefix = 0;

	for (size_t i = 0; i < m->nlong; i++) {
		if (strncmp(m->longopts[i].name, name, len) != 0)
			continue;
		nprefix++;
		if (strlen(m->longopts[i].name) == len)
			exact = &m->longopts[i];
	}
	if (!exact && nprefix == 1) {
		for (size_t i = 0; i < m->nlong; i++)
			if (!strncmp(m->longopts[i].name, name, len))
				exact = &m->longopts[i];
	}
	if (exact && name[len] == '=' && exact->has_arg == no_argument)
		cli_err("option '--%s' doesn't allow an argument", exact->name);
	else if (!exact && nprefix > 1)
		cli_err("option '--%.*s' is ambiguous", (int)len, name);
	else
		cli_err("unrecognized option '--%.*s'", (int)len, name);
}

int cli_parse(const struct cli_spec *spec, int argc, char **argv, void *ctx,
	      char ***args, int *nargs)
{
	struct merged_options m;
	int ret = -1, c;

	if (merge_options(spec, &m)) {
		cli_err("out of memory");
		return -1;
	}
	/* getopt keeps global state: optind = 0 re-initialises it (glibc) */
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, m.shortopts, m.longopts, NULL)) != -1) {
		if (c == '?') {
			report_bad_option(&m, argv[optind - 1], optopt);
			goto out;
		}
		if (c == ':') {
			const char *arg = argv[optind - 1];

			if (!strncmp(arg, "--", 2))
				cli_err("option '%.*s' requires an argument",
					(int)strcspn(arg, "="), arg);
			else
				cli_err("option '-%c' requires an argument", optopt);
			goto out;
		}
		if (c == CLI_OPT_HELP) {
			cli_print_help(spec, stdout);
			ret = CLI_PARSE_HELP;
			goto out;
		}
		if (spec->parse_opt(c, optarg, ctx))
			goto out;
	}
	*args = argv + optind;
	*nargs = argc - optind;
	if (*nargs < spec->min_args) {
		cli_err("%s: missing argument (usage: tmbpf %s [OPTION...] %s)", spec->name,
			spec->name, spec->args_doc);
		goto out;
	}
	if (*nargs > spec->max_args) {
		cli_err("%s: unexpected argument '%s'", spec->name, (*args)[spec->max_args]);
		goto out;
	}
	ret = 0;
out:
	free_options(&m);
	return ret;
}

int cli_parse_u64_range(const char *arg, const char *what, uint64_t min, uint64_t max,
			uint64_t *out)
{
	char *end;
	uint64_t v;

	/* strtoull accepts "-1" and leading blanks: only plain digits are numbers here */
	if (!isdigit((unsigned char)arg[0]))
		goto bad;
	errno = 0;
	v = strtoull(arg, &end, 10);
	if (*end)
		goto bad;
	if (errno == ERANGE || v < min || v > max) {
		cli_err("%s out of range (%" PRIu64 " to %" PRIu64 "): '%s'", what, min, max, arg);
		return -1;
	}
	*out = v;
	return 0;
bad:
	cli_err("invalid %s: '%s'", what, arg);
	return -1;
}

int cli_parse_u64(const char *arg, const char *what, uint64_t max, uint64_t *out)
{
	return cli_parse_u64_range(arg, what, 0, max, out);
}

int cli_parse_address(const char *arg, uint64_t *out)
{
	bool hex = arg[0] == '0' && (arg[1] == 'x' || arg[1] == 'X');
	const char *digits = hex ? arg + 2 : arg;
	char *end;
	uint64_t v;

	if (!(hex ? isxdigit((unsigned char)digits[0]) : isdigit((unsigned char)digits[0]))) {
		cli_err("invalid address: '%s' (decimal, or hex with 0x)", arg);
		return -1;
	}
	errno = 0;
	v = strtoull(digits, &end, hex ? 16 : 10);
	if (*end) {
		cli_err("invalid address: '%s' (decimal, or hex with 0x)", arg);
		return -1;
	}
	if (errno == ERANGE) {
		cli_err("address out of range: '%s'", arg);
		return -1;
	}
	*out = v;
	return 0;
}

/* ---- buffered output ----------------------------------------------------- */

int cli_output_open(struct cli_output *o)
{
	memset(o, 0, sizeof(*o));
	o->fp = open_memstream(&o->buf, &o->len);
	if (!o->fp) {
		cli_err("cannot buffer output: %s", strerror(errno));
		return -1;
	}
	return 0;
}

void cli_output_discard(struct cli_output *o)
{
	if (o->fp)
		fclose(o->fp);
	free(o->buf);
	memset(o, 0, sizeof(*o));
}

int cli_output_commit(struct cli_output *o)
{
	int ret = 0;

	/* a memory stream fails only when it cannot grow */
	if (ferror(o->fp) || fclose(o->fp)) {
		o->fp = NULL;
		cli_err("out of memory while formatting the output");
		cli_output_discard(o);
		return -1;
	}
	o->fp = NULL;
	if ((o->len && fwrite(o->buf, 1, o->len, stdout) != o->len) || fflush(stdout)) {
		cli_err("cannot write to standard output: %s", strerror(errno));
		ret = -1;
	}
	cli_output_discard(o);
	return ret;
}

/* ---- snapshots ----------------------------------------------------------- */

static struct tm_snapshot *load_snapshot(const char *path, unsigned flags)
{
	struct tm_error err = { "" };
	struct tm_snapshot *s = tm_snapshot_load_opts(path, flags, &err);

	if (!s)
		cli_err("%s", err.msg[0] ? err.msg : "cannot load snapshot");
	return s;
}

struct tm_snapshot *cli_load_snapshot(const char *path)
{
	return load_snapshot(path, 0);
}

struct tm_snapshot *cli_load_snapshot_aggregated(const char *path)
{
	return load_snapshot(path, TM_LOAD_AGGREGATE);
}

struct tm_snapshot *cli_load_snapshot_for(const struct cli_analysis *a, const char *path)
{
	for (size_t i = 0; i < a->nfilter_args; i++)
		if (a->filter_args[i].kind == CLI_INCLUDE_DOMAIN ||
		    a->filter_args[i].kind == CLI_EXCLUDE_DOMAIN || a->filter_args[i].domain >= 0)
			return load_snapshot(path, TM_LOAD_AGGREGATE);
	return load_snapshot(path, TM_LOAD_AGGREGATE | TM_LOAD_NO_DOMAINS);
}

/* ---- command-line strings ------------------------------------------------ */

/* Length of the strict UTF-8 sequence at p (what Python's 'utf-8' codec
 * accepts: no overlong form, no surrogate, nothing above U+10FFFF), or 0. */
static size_t utf8_strict_len(const unsigned char *p, size_t avail)
{
	unsigned char c = p[0];
	size_t n;
	unsigned char lo = 0x80, hi = 0xbf;         /* range of the second byte */

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		n = 2;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4;
	else
		return 0;
	if (c == 0xe0)
		lo = 0xa0;
	else if (c == 0xed)
		hi = 0x9f;                          /* ED A0..BF would be a surrogate */
	else if (c == 0xf0)
		lo = 0x90;
	else if (c == 0xf4)
		hi = 0x8f;
	if (avail < n || p[1] < lo || p[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++)
		if ((p[i] & 0xc0) != 0x80)
			return 0;
	return n;
}

char *cli_fsdecode(const char *arg, size_t arglen, size_t *len)
{
	const unsigned char *p = (const unsigned char *)arg;
	/* an escaped byte takes 3 bytes: U+DC80..U+DCFF is ED B2 80..ED B3 BF */
	char *buf = malloc(3 * arglen + 1);
	size_t o = 0;

	if (!buf)
		return NULL;
	for (size_t i = 0; i < arglen;) {
		size_t n = utf8_strict_len(p + i, arglen - i);

		if (n) {
			memcpy(buf + o, p + i, n);
			o += n;
			i += n;
		} else {
			unsigned cp = 0xdc00u + p[i++];

			buf[o++] = (char)0xed;
			buf[o++] = (char)(0x80 | ((cp >> 6) & 0x3f));
			buf[o++] = (char)(0x80 | (cp & 0x3f));
		}
	}
	buf[o] = '\0';
	*len = o;
	return buf;
}

/* ---- analysis options (stats, diff) ------------------------------------- */

/* long options only, as the command-line contract names them */
enum {
	OPT_KEY_TYPE = CLI_OPT_BASE,
	OPT_CUMULATIVE,
	OPT_LIMIT,
	OPT_JSON,
	OPT_INCLUDE,
	OPT_EXCLUDE,
	OPT_ALL_FRAMES,
	OPT_INCLUDE_DOMAIN,
	OPT_EXCLUDE_DOMAIN,
};

/* name/longopt:str, key/shortopt:int, arg:str, flags:int, doc:str, group:int */
const struct argp_option cli_analysis_options[] = {
	{ NULL, 0, NULL, 0, "Statistics:", 1 },
	{ "key-type", OPT_KEY_TYPE, "TYPE", 0,
	  "Group by 'lineno' (default), 'filename' or 'traceback'", 1 },
	{ "cumulative", OPT_CUMULATIVE, NULL, 0,
	  "Count every frame of a traceback, not only the most recent (lineno and "
	  "filename only)", 1 },
	{ "limit", OPT_LIMIT, "N", 0, "Print the first N entries (default 10, 0 = all)", 1 },
	{ "json", OPT_JSON, NULL, 0, "Print one JSON object instead of text lines", 1 },
	{ NULL, 0, NULL, 0,
	  "Filters, applied in command-line order as Snapshot.filter_traces() does "
	  "(traces must match one --include, if any, and no --exclude). PATTERN is "
	  "fnmatch's, on the most recent frame's file name; it may end with :LINENO "
	  "and/or @DOMAIN (digits only), as Filter(inclusive, PATTERN, LINENO, "
	  "domain=DOMAIN):", 2 },
	{ "include", OPT_INCLUDE, "PATTERN", 0, "Keep traces that match", 2 },
	{ "exclude", OPT_EXCLUDE, "PATTERN", 0, "Drop traces that match", 2 },
	{ "all-frames", OPT_ALL_FRAMES, NULL, 0,
	  "Match every frame, not only the most recent (all_frames=True)", 2 },
	{ "include-domain", OPT_INCLUDE_DOMAIN, "DOMAIN", 0,
	  "Keep the traces of DOMAIN (DomainFilter(True, DOMAIN))", 2 },
	{ "exclude-domain", OPT_EXCLUDE_DOMAIN, "DOMAIN", 0,
	  "Drop the traces of DOMAIN (DomainFilter(False, DOMAIN))", 2 },
	{ 0 },
};

void cli_analysis_init(struct cli_analysis *a)
{
	memset(a, 0, sizeof(*a));
	a->key_type = TM_KEY_LINENO;
	a->limit = 10;
}

/* Takes a "SEP DIGITS" suffix off the end of spec[0..*len): returns its value
 * (or -1 when there is none), -2 when it is out of range. */
static int64_t take_number_suffix(const char *spec, size_t *len, char sep, uint64_t max)
{
	size_t end = *len, i = end;
	uint64_t v = 0;
	bool overflow = false;

	while (i > 0 && isdigit((unsigned char)spec[i - 1]))
		i--;
	if (i == end || i == 0 || spec[i - 1] != sep)
		return -1;
	for (size_t k = i; k < end; k++) {
		if (v > (max - (uint64_t)(spec[k] - '0')) / 10)
			overflow = true;
		else
			v = v * 10 + (uint64_t)(spec[k] - '0');
	}
	*len = i - 1;
	return overflow ? -2 : (int64_t)v;
}

int cli_split_filter_spec(const char *spec, struct cli_filter_arg *out)
{
	size_t len = strlen(spec);
	int64_t domain = take_number_suffix(spec, &len, '@', UINT32_MAX);
	int64_t lineno;

	if (domain == -2) {
		cli_err("domain out of range (0 to %u) in '%s'", UINT32_MAX, spec);
		return -1;
	}
	lineno = take_number_suffix(spec, &len, ':', UINT32_MAX);
	if (lineno == -2) {
		cli_err("line number out of range (0 to %u) in '%s'", UINT32_MAX, spec);
		return -1;
	}
	out->pattern = cli_fsdecode(spec, len, &out->pattern_len);
	if (!out->pattern) {
		cli_err("out of memory");
		return -1;
	}
	out->lineno = lineno;
	out->domain = domain;
	return 0;
}

static int add_filter_arg(struct cli_analysis *a, enum cli_filter_kind kind, char *arg)
{
	struct cli_filter_arg f = { .kind = kind, .lineno = -1, .domain = -1 };
	struct cli_filter_arg *grown;

	if (kind == CLI_INCLUDE || kind == CLI_EXCLUDE) {
		if (cli_split_filter_spec(arg, &f))
			return -1;
	} else {
		uint64_t d;

		if (cli_parse_u64(arg, "domain", UINT32_MAX, &d))
			return -1;
		f.domain = (int64_t)d;
	}
	grown = realloc(a->filter_args, (a->nfilter_args + 1) * sizeof(*grown));
	if (!grown) {
		free(f.pattern);
		cli_err("out of memory");
		return -1;
	}
	a->filter_args = grown;
	a->filter_args[a->nfilter_args++] = f;
	return 0;
}

int cli_analysis_parse_opt(struct cli_analysis *a, int key, char *arg)
{
	switch (key) {
	case OPT_KEY_TYPE:
		if (tm_key_type_parse(arg, &a->key_type)) {
			/* CPython's ValueError text */
			cli_err("unknown key_type: '%s'", arg);
			return -1;
		}
		return 0;
	case OPT_CUMULATIVE:
		a->cumulative = true;
		return 0;
	case OPT_LIMIT:
		return cli_parse_u64(arg, "limit", UINT64_MAX, &a->limit);
	case OPT_JSON:
		a->json = true;
		return 0;
	case OPT_ALL_FRAMES:
		a->all_frames = true;
		return 0;
	case OPT_INCLUDE:
		return add_filter_arg(a, CLI_INCLUDE, arg);
	case OPT_EXCLUDE:
		return add_filter_arg(a, CLI_EXCLUDE, arg);
	case OPT_INCLUDE_DOMAIN:
		return add_filter_arg(a, CLI_INCLUDE_DOMAIN, arg);
	case OPT_EXCLUDE_DOMAIN:
		return add_filter_arg(a, CLI_EXCLUDE_DOMAIN, arg);
	}
	return 1;
}

int cli_analysis_finish(struct cli_analysis *a)
{
	struct tm_error err = { "" };

	/* Snapshot._group_by refuses this before looking at any trace */
	if (a->cumulative && a->key_type == TM_KEY_TRACEBACK) {
		cli_err("cumulative mode cannot by used with key type 'traceback'");
		return -1;
	}
	if (!a->nfilter_args)
		return 0;
	a->filters = calloc(a->nfilter_args, sizeof(*a->filters));
	if (!a->filters) {
		cli_err("out of memory");
		return -1;
	}
	for (size_t i = 0; i < a->nfilter_args; i++) {
		const struct cli_filter_arg *fa = &a->filter_args[i];
		struct tm_filter *f = &a->filters[i];
		int ret;

		if (fa->kind == CLI_INCLUDE_DOMAIN || fa->kind == CLI_EXCLUDE_DOMAIN)
			ret = tm_domain_filter_init(f, fa->kind == CLI_INCLUDE_DOMAIN,
						    (uint32_t)fa->domain);
		else
			ret = tm_filter_init(f, fa->kind == CLI_INCLUDE, fa->pattern,
					     fa->pattern_len, fa->lineno, a->all_frames,
					     fa->domain, &err);
		if (ret) {
			cli_err("%s", err.msg[0] ? err.msg : "cannot build filter");
			return -1;
		}
		a->nfilters++;
	}
	return 0;
}

int cli_analysis_filter(const struct cli_analysis *a, struct tm_snapshot *s)
{
	struct tm_error err = { "" };

	if (!a->nfilters)
		return 0;
	if (tm_snapshot_filter_traces(s, a->filters, a->nfilters, &err)) {
		cli_err("%s", err.msg[0] ? err.msg : "cannot filter traces");
		return -1;
	}
	return 0;
}

int cli_analysis_print(const struct cli_analysis *a, const struct tm_stats *st)
{
	struct cli_output o;

	if (cli_output_open(&o))
		return -1;
	if (a->json) {
		if (report_stats_json(o.fp, st, a->limit)) {
			cli_err("out of memory");
			cli_output_discard(&o);
			return -1;
		}
	} else {
		report_stats_text(o.fp, st, a->limit);
	}
	return cli_output_commit(&o);
}

void cli_analysis_destroy(struct cli_analysis *a)
{
	for (size_t i = 0; i < a->nfilters; i++)
		tm_filter_destroy(&a->filters[i]);
	free(a->filters);
	for (size_t i = 0; i < a->nfilter_args; i++)
		free(a->filter_args[i].pattern);
	free(a->filter_args);
	memset(a, 0, sizeof(*a));
}
