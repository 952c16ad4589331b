// SPDX-License-Identifier: MIT
/*
 * tmbpf convert IN OUT: rewrites a snapshot in the other format. The output is
 * created atomically by the snapshot library, so a failed conversion leaves
 * no file (and an existing OUT untouched).
 */
#include <ctype.h>
#include <string.h>

#include "cli/cli_common.h"
#include "snapshot/snapfile.h"

enum {
	OPT_TO = CLI_OPT_BASE,
	OPT_PYTHON_VERSION,
};

static const char convert_doc[] =
	"Convert a snapshot between tmbpf's native format and CPython's pickle "
	"(what tracemalloc.Snapshot.load() reads). IN may be either format."
	"\v"
	"The output format is --to, else pickle when OUT ends in .pickle or .pkl, "
	"else native. A pickle keeps what CPython's Snapshot holds (traces, "
	"traceback_limit): block addresses and the capture information exist in "
	"the native format only.\n"
	"\n"
	"Examples:\n"
	"  tmbpf convert snap.pickle snap.tmbpf\n"
	"  tmbpf convert snap.tmbpf snap.pickle\n"
	"  tmbpf convert snap.tmbpf old.pkl --python-version 3.8\n"
	"\n" CLI_EXIT_STATUS_DOC;

/* name/longopt:str, key/shortopt:int, arg:str, flags:int, doc:str, group:int */
static const struct argp_option convert_options[] = {
	{ "to", OPT_TO, "FORMAT", 0, "Output format: 'native' or 'pickle'", 0 },
	{ "python-version", OPT_PYTHON_VERSION, "X.Y", 0,
	  "Python that will load the pickle: 3.8 needs 3-tuple traces (no "
	  "total_nframe); 3.9 and later (the default) read 4-tuples", 0 },
	CLI_HELP_OPTION,
	{ 0 },
};

static const struct argp_option *const convert_tables[] = { convert_options, NULL };

struct convert_env {
	enum tm_file_format to;         /* TM_FORMAT_UNKNOWN: from OUT's name */
	enum tm_pickle_flavor flavor;
	const char *python_version;     /* as given, NULL when absent */
};

/* "3.N": 3.8 wants the 3-tuple flavour, 3.9+ the 4-tuple one. Earlier
 * Pythons are refused (3.8 is the oldest tmbpf supports). */
static int parse_python_version(const char *arg, enum tm_pickle_flavor *out)
{
	const char *p = arg + 2;
	unsigned minor = 0;

	if (strncmp(arg, "3.", 2) != 0 || !*p || strlen(p) > 3)
		goto bad;
	for (; *p; p++) {
		if (!isdigit((unsigned char)*p))
			goto bad;
		minor = minor * 10 + (unsigned)(*p - '0');
	}
	if (minor < 8)
		goto bad;
	*out = minor == 8 ? TM_PICKLE_PY38 : TM_PICKLE_PY39;
	return 0;
bad:
	cli_err("invalid Python version: '%s' (expected 3.8 or later, e.g. 3.11)", arg);
	return -1;
}

static int convert_parse_opt(int key, char *arg, void *ctx)
{
	struct convert_env *env = ctx;

	switch (key) {
	case OPT_TO:
		if (!strcmp(arg, "native")) {
			env->to = TM_FORMAT_NATIVE;
		} else if (!strcmp(arg, "pickle")) {
			env->to = TM_FORMAT_PICKLE;
		} else {
			cli_err("invalid output format: '%s' (expected 'native' or 'pickle')", arg);
			return -1;
		}
		return 0;
	case OPT_PYTHON_VERSION:
		env->python_version = arg;
		return parse_python_version(arg, &env->flavor);
	}
	return -1;
}

static const struct cli_spec convert_spec = {
	.name = "convert",
	.args_doc = "IN OUT",
	.doc = convert_doc,
	.options = convert_tables,
	.min_args = 2,
	.max_args = 2,
	.parse_opt = convert_parse_opt,
};

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);

	return n >= k && !strcmp(s + n - k, suffix);
}

static int convert_run(int argc, char **argv)
{
	struct convert_env env = { .to = TM_FORMAT_UNKNOWN, .flavor = TM_PICKLE_PY39 };
	struct tm_error err = { "" };
	struct tm_snapshot *s;
	char **args;
	int nargs, ret;

	ret = cli_parse(&convert_spec, argc, argv, &env, &args, &nargs);
	if (ret)
		return ret == CLI_PARSE_HELP ? CLI_EXIT_OK : CLI_EXIT_USAGE;
	if (env.to == TM_FORMAT_UNKNOWN)
		env.to = ends_with(args[1], ".pickle") || ends_with(args[1], ".pkl") ?
			 TM_FORMAT_PICKLE : TM_FORMAT_NATIVE;
	if (env.python_version && env.to != TM_FORMAT_PICKLE) {
		cli_err("--python-version applies to pickle output only");
		return CLI_EXIT_USAGE;
	}
	s = cli_load_snapshot(args[0]);
	if (!s)
		return CLI_EXIT_RUNTIME;
	if (env.to == TM_FORMAT_PICKLE)
		ret = tm_snapshot_save_pickle(s, args[1], env.flavor, &err);
	else
		ret = tm_snapshot_save_native(s, args[1], &err);
	tm_snapshot_free(s);
	if (ret) {
		cli_err("%s", err.msg[0] ? err.msg : "cannot write the snapshot");
		return CLI_EXIT_RUNTIME;
	}
	return CLI_EXIT_OK;
}

const struct cli_command cli_cmd_convert = {
	.name = "convert",
	.summary = "Convert a snapshot between the native format and CPython's pickle",
	.run = convert_run,
};
