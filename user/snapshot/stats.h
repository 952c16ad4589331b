/* SPDX-License-Identifier: MIT */
/*
 * Snapshot.statistics() and Snapshot.compare_to(), exactly as Lib/tracemalloc.py:
 * same groups, same numbers, same order (see DESIGN notes in stats.c).
 */
#ifndef TMBPF_STATS_H
#define TMBPF_STATS_H

#include "snapshot/snapshot.h"

enum tm_key_type {
	TM_KEY_TRACEBACK = 0,
	TM_KEY_FILENAME = 1,
	TM_KEY_LINENO = 2,
};
/* "traceback" / "filename" / "lineno" -> 0, else -1 */
int tm_key_type_parse(const char *name, enum tm_key_type *out);
const char *tm_key_type_name(enum tm_key_type k);

/* A statistic's traceback: frames MOST RECENT FIRST, strings owned by the
 * snapshot the statistic was computed from (for diffs: by either snapshot --
 * keep both alive while the diffs are used). */
struct tm_stat_frame {
	struct tm_str filename;
	uint32_t lineno;
};

struct tm_statistic {
	const struct tm_stat_frame *frames;   /* points into the owning tm_stats */
	uint32_t nframe;
	uint64_t size;
	uint64_t count;
};

struct tm_statistic_diff {
	const struct tm_stat_frame *frames;
	uint32_t nframe;
	uint64_t size;
	int64_t size_diff;
	uint64_t count;
	int64_t count_diff;
};

struct tm_stats {
	enum tm_key_type key_type;
	bool cumulative;
	bool is_diff;
	size_t n;
	struct tm_statistic *stats;           /* when !is_diff */
	struct tm_statistic_diff *diffs;      /* when is_diff */
	struct tm_stat_frame *frame_storage;  /* private */
};

/* snapshot.statistics(key_type, cumulative). Returns 0, or -1 with err set
 * (e.g. CPython's "cumulative mode cannot by used with key type 'traceback'"). */
int tm_statistics(const struct tm_snapshot *s, enum tm_key_type key_type, bool cumulative,
		  struct tm_stats *out, struct tm_error *err);

/* new_snapshot.compare_to(old_snapshot, key_type, cumulative). */
int tm_compare_to(const struct tm_snapshot *new_snap, const struct tm_snapshot *old_snap,
		  enum tm_key_type key_type, bool cumulative, struct tm_stats *out,
		  struct tm_error *err);

void tm_stats_free(struct tm_stats *st);

#endif
