/* SPDX-License-Identifier: MIT */
/*
 * tracemalloc.Filter and tracemalloc.DomainFilter, and Snapshot.filter_traces().
 * Patterns follow fnmatch.fnmatch() on POSIX (case-sensitive, '*' crosses '/',
 * [seq] classes as fnmatch.translate builds them) after _normalize_filename()
 * (a trailing ".pyc" becomes ".py") on both the pattern and the filename.
 */
#ifndef TMBPF_FILTER_H
#define TMBPF_FILTER_H

#include "snapshot/snapshot.h"

enum tm_filter_kind { TM_FILTER_FILENAME = 0, TM_FILTER_DOMAIN = 1 };

struct tm_filter {
	enum tm_filter_kind kind;
	bool inclusive;
	/* TM_FILTER_FILENAME */
	char *pattern;                  /* normalized pattern, owned (UTF-8) */
	size_t pattern_len;
	bool has_lineno;
	uint32_t lineno;
	bool all_frames;
	/* both kinds: Filter(domain=...) is optional, DomainFilter's is required */
	bool has_domain;
	uint32_t domain;
	struct tm_glob *glob;           /* compiled pattern, private */
};

/* Filter(inclusive, filename_pattern, lineno, all_frames, domain).
 * lineno < 0 / domain < 0 mean None. 0 or -1 with err. */
int tm_filter_init(struct tm_filter *f, bool inclusive, const char *pattern, size_t len,
		   int64_t lineno, bool all_frames, int64_t domain, struct tm_error *err);
/* DomainFilter(inclusive, domain) */
int tm_domain_filter_init(struct tm_filter *f, bool inclusive, uint32_t domain);
void tm_filter_destroy(struct tm_filter *f);

/* Snapshot.filter_traces(filters), in place: keeps the traces that pass (in
 * their original order; with their block counts when aggregated: a trace's
 * verdict depends only on its traceback and domain). Tables are untouched.
 * Returns 0 or -1 (allocation). */
int tm_snapshot_filter_traces(struct tm_snapshot *s, const struct tm_filter *filters,
			      size_t nfilters, struct tm_error *err);

/* Filter._match_frame(filename, lineno): the frame test XOR (not inclusive).
 * Meaningful for TM_FILTER_FILENAME filters. */
bool tm_filter_match_frame(const struct tm_filter *f, const char *filename, size_t len,
			   uint32_t lineno);
/* Filter._match_traceback(frames of traceback tb of s). */
bool tm_filter_match_traceback(const struct tm_filter *f, const struct tm_snapshot *s, tm_id tb);
/* BaseFilter._match(trace): whether the trace passes this one filter (for an
 * exclusive filter: is not excluded by it). */
bool tm_filter_match_trace(const struct tm_filter *f, const struct tm_snapshot *s,
			   const struct tm_trace *t);

/* fnmatch.fnmatch(name, pattern) on UTF-8 strings (code point semantics). */
bool tm_fnmatch(const char *pattern, size_t plen, const char *name, size_t nlen);

#endif
