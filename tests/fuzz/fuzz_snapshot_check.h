/* SPDX-License-Identifier: MIT */
/*
 * What the snapshot-file fuzzers check on every input that loads: the
 * snapshot passes tm_snapshot_validate(), and it survives both writers: the
 * native file loads back identical (addresses and capture included) and the
 * 3.9+ pickle loads back with the same traces. A refused input must come with
 * one line of error text. Any failure aborts, which libFuzzer reports.
 */
#ifndef TMBPF_FUZZ_SNAPSHOT_CHECK_H
#define TMBPF_FUZZ_SNAPSHOT_CHECK_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "snapshot/snapfile.h"
#include "snapshot/snapfile_priv.h"

static void fuzz_die(const char *what, const char *detail)
{
	fprintf(stderr, "fuzz check failed: %s: %s\n", what, detail);
	abort();
}

static void fuzz_check_refusal(const struct tm_snapshot *s, const struct tm_error *err)
{
	if (s)
		return;
	if (!err->msg[0])
		fuzz_die("refused without an error message", "");
	if (strchr(err->msg, '\n'))
		fuzz_die("error message is not one line", err->msg);
}

typedef int (*fuzz_writer)(const struct tm_snapshot *s, FILE *fp, struct tm_error *err);

static int fuzz_write_pickle39(const struct tm_snapshot *s, FILE *fp, struct tm_error *err)
{
	return tm_pickle_write(s, fp, TM_PICKLE_PY39, err);
}

/* Writes s with `write` into memory and loads it back with `load`. */
static struct tm_snapshot *fuzz_reload(const struct tm_snapshot *s, fuzz_writer write,
				       struct tm_snapshot *(*load)(const void *, size_t,
								   struct tm_error *),
				       const char *what)
{
	struct tm_error err = { "" };
	struct tm_snapshot *back;
	char *buf = NULL;
	size_t len = 0;
	FILE *fp = open_memstream(&buf, &len);

	if (!fp)
		abort();
	if (write(s, fp, &err)) {
		fclose(fp);
		free(buf);
		return NULL;    /* a clean refusal (e.g. a filename Python cannot decode) */
	}
	if (fclose(fp))
		abort();
	back = load(buf, len, &err);
	free(buf);
	if (!back)
		fuzz_die(what, err.msg);
	return back;
}

static void fuzz_check_snapshot(const struct tm_snapshot *s)
{
	struct tm_error err = { "" };
	struct tm_snapshot *back;
	char why[512];

	if (tm_snapshot_validate(s, &err))
		fuzz_die("a loaded snapshot does not validate", err.msg);

	back = fuzz_reload(s, tm_native_write, tm_native_load_mem, "native write+load");
	if (!back)
		fuzz_die("native writer refused a valid snapshot", "");
	if (!tm_snapshot_same_traces(s, back, true, false, why, sizeof(why)))
		fuzz_die("native round trip changed the traces", why);
	if (memcmp(&back->capture, &s->capture, offsetof(struct tm_capture, counters)) != 0 ||
	    back->nstrings != s->nstrings || back->str_pool_len != s->str_pool_len)
		fuzz_die("native round trip changed the capture or strings", "");
	tm_snapshot_free(back);

	back = fuzz_reload(s, fuzz_write_pickle39, tm_pickle_load_mem, "pickle write+load");
	if (back) {
		if (!tm_snapshot_same_traces(s, back, false, true, why, sizeof(why)))
			fuzz_die("pickle round trip changed the traces", why);
		tm_snapshot_free(back);
	}
}

#endif
