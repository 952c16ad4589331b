/* SPDX-License-Identifier: MIT */
/*
 * What the snapshot-file fuzzers check on every input that loads: the
 * snapshot passes tm_snapshot_validate(), and it survives both writers: the
 * native file loads back identical (addresses and capture included) and the
 * 3.9+ pickle loads back with the same traces. A refused input must come with
 * one line of error text. And on every input, loaded or not, the other ways
 * of loading (aggregated, without domains, streamed through a small window
 * with short reads) agree with the full load: the same refusal with the same
 * message, or the same traces (streamed) or sums per (traceback, domain)
 * (aggregated). Any failure aborts, which libFuzzer reports.
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

/* The other ways of loading, as tests/unit/files_util.h lists them. */
static const struct {
	const char *name;
	unsigned flags;
	size_t window, max_read;
} fuzz_ways[] = {
	{ "aggregated", TM_LOAD_AGGREGATE, 0, 0 },
	{ "aggregated without domains", TM_LOAD_NO_DOMAINS, 0, 0 },
	{ "streamed", 0, 7, 3 },
	{ "aggregated, streamed", TM_LOAD_AGGREGATE, 7, 3 },
	{ "aggregated without domains, streamed", TM_LOAD_NO_DOMAINS, 100, 0 },
};

typedef struct tm_snapshot *(*fuzz_input_loader)(const struct tm_input *in, unsigned flags,
						 struct tm_error *err);

/* full: what the full load in place gave (NULL with err when refused). */
static void fuzz_check_ways(fuzz_input_loader load, const uint8_t *data, size_t size,
			    const struct tm_snapshot *full, const struct tm_error *err)
{
	char why[512];

	for (size_t w = 0; w < sizeof(fuzz_ways) / sizeof(fuzz_ways[0]); w++) {
		struct tm_input in = { .fd = -1, .mem = data, .size = size,
				       .window = fuzz_ways[w].window,
				       .max_read = fuzz_ways[w].max_read };
		struct tm_error werr = { "" };
		struct tm_snapshot *s = load(&in, fuzz_ways[w].flags, &werr);
		bool aggregated = fuzz_ways[w].flags & (TM_LOAD_AGGREGATE | TM_LOAD_NO_DOMAINS);

		if (!full) {
			if (s)
				fuzz_die(fuzz_ways[w].name, "loaded what the full load refuses");
			if (strcmp(werr.msg, err->msg))
				fuzz_die(fuzz_ways[w].name, werr.msg);
			continue;
		}
		if (!s)
			fuzz_die(fuzz_ways[w].name, werr.msg);
		if (tm_snapshot_validate(s, &werr))
			fuzz_die(fuzz_ways[w].name, werr.msg);
		if (s->nframes != full->nframes || s->ntracebacks != full->ntracebacks ||
		    s->nstrings != full->nstrings ||
		    memcmp(&s->capture, &full->capture, offsetof(struct tm_capture, counters)))
			fuzz_die(fuzz_ways[w].name, "other tables or capture");
		if (aggregated ? tm_snapshot_block_count(s) != full->ntraces ||
					 !tm_snapshot_same_sums(full, s,
								fuzz_ways[w].flags & TM_LOAD_NO_DOMAINS,
								why, sizeof(why))
			       : !tm_snapshot_same_traces(full, s, true, false, why, sizeof(why)))
			fuzz_die(fuzz_ways[w].name, why);
		if (aggregated && s->trace_counts) {
			struct tm_error e2 = { "" };
			char *buf = NULL;
			size_t len = 0;
			FILE *fp = open_memstream(&buf, &len);

			/* an aggregated snapshot cannot be written (with no trace
			 * it has no counts, and nothing to misrepresent) */
			if (!fp)
				abort();
			if (!tm_native_write(s, fp, &e2) || !tm_pickle_write(s, fp, TM_PICKLE_PY39, &e2))
				fuzz_die(fuzz_ways[w].name, "an aggregated snapshot was written");
			fclose(fp);
			free(buf);
		}
		tm_snapshot_free(s);
	}
}

#endif
