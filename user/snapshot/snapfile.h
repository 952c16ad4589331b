/* SPDX-License-Identifier: MIT */
/*
 * Snapshot files: tmbpf's native format and CPython's pickle (Snapshot.dump()).
 * Loading detects the format from the content. Every loader checks bounds,
 * counts and versions: a truncated or hostile file gives one error line, never
 * a crash. Writers create the file atomically (temporary file + rename).
 */
#ifndef TMBPF_SNAPFILE_H
#define TMBPF_SNAPFILE_H

#include <stdio.h>
#include "snapshot/snapshot.h"

enum tm_file_format {
	TM_FORMAT_UNKNOWN = 0,
	TM_FORMAT_NATIVE = 1,
	TM_FORMAT_PICKLE = 2,
};

/* Which pickle flavour to write: 4-tuples (CPython 3.9+, the default) or the
 * 3-tuples that CPython 3.8's Snapshot.statistics() expects. */
enum tm_pickle_flavor {
	TM_PICKLE_PY39 = 0,
	TM_PICKLE_PY38 = 1,
};

enum tm_file_format tm_detect_format(const void *data, size_t len);

/* Load from a file path; NULL with err set on failure. */
struct tm_snapshot *tm_snapshot_load(const char *path, struct tm_error *err);
/* Load from memory (what the fuzzers call). */
struct tm_snapshot *tm_snapshot_load_mem(const void *data, size_t len, struct tm_error *err);

/*
 * Load options. TM_LOAD_AGGREGATE: keep a trace per (traceback, domain)
 * with the sum of the sizes and the number of blocks (trace_counts, see
 * snapshot.h) instead of one trace per block, for analysis (statistics,
 * compare_to, filter_traces, flame graphs) of big snapshots: the traces are
 * aggregated as they are read, so that neither the file nor its traces are
 * ever held whole. Every check of a full load is made (same errors). The
 * result has no addresses and cannot be written (the writers refuse it).
 */
#define TM_LOAD_AGGREGATE 0x1u
/*
 * TM_LOAD_NO_DOMAINS (implies TM_LOAD_AGGREGATE): for an analysis that never
 * looks at domains (statistics or compare_to without domain filters): the
 * traces of all domains are summed together, a trace per traceback, and every
 * trace has domain 0. Filtering such a snapshot by domain gives wrong results.
 */
#define TM_LOAD_NO_DOMAINS 0x2u
struct tm_snapshot *tm_snapshot_load_opts(const char *path, unsigned flags, struct tm_error *err);
struct tm_snapshot *tm_snapshot_load_mem_opts(const void *data, size_t len, unsigned flags,
					      struct tm_error *err);

struct tm_snapshot *tm_native_load_mem(const void *data, size_t len, struct tm_error *err);
struct tm_snapshot *tm_pickle_load_mem(const void *data, size_t len, struct tm_error *err);

/* Write atomically; 0 or -1 with err (no partial file is ever left behind). */
int tm_snapshot_save_native(const struct tm_snapshot *s, const char *path, struct tm_error *err);
int tm_snapshot_save_pickle(const struct tm_snapshot *s, const char *path,
			    enum tm_pickle_flavor flavor, struct tm_error *err);

/* Atomic file creation used by every writer in tmbpf: opens a temporary file
 * next to path; commit fsyncs, renames over path; abort unlinks it. */
struct tm_atomic_file {
	FILE *fp;
	char *path;
	char *tmp_path;
};
int tm_atomic_open(struct tm_atomic_file *af, const char *path, struct tm_error *err);
int tm_atomic_commit(struct tm_atomic_file *af, struct tm_error *err);
void tm_atomic_abort(struct tm_atomic_file *af);

#endif
