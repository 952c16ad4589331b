// SPDX-License-Identifier: MIT
/* The snapshot model: interning, traces, counters, lazy indexes, validation. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "snapshot/snapshot.h"
#include "analysis_util.h"

Test(model, intern_string_by_value)
{
	struct tm_snapshot *s = tm_snapshot_new();
	char buf[8] = "a.py";

	cr_assert_not_null(s);
	tm_id a = tm_intern_string(s, "a.py", 4);
	tm_id b = tm_intern_string(s, "b.py", 4);
	tm_id a2 = tm_intern_string(s, buf, 4);         /* same value, other memory */
	tm_id prefix = tm_intern_string(s, "a.py", 3);  /* "a.p" is another string */
	tm_id empty = tm_intern_string(s, "", 0);

	cr_assert_eq(a, 0);
	cr_assert_eq(b, 1);
	cr_assert_eq(a2, a);
	cr_assert_eq(prefix, 2);
	cr_assert_eq(empty, 3);
	cr_assert_eq(s->nstrings, 4);
	cr_assert_eq(tm_string(s, empty).len, 0);
	cr_assert_eq(tm_string(s, prefix).len, 3);
	cr_assert_eq(memcmp(tm_string(s, prefix).data, "a.p", 4), 0); /* NUL after it */
	cr_assert_eq(tm_intern_string(s, "", 0), empty);
	tm_snapshot_free(s);
}

Test(model, strings_may_hold_nul_bytes)
{
	struct tm_snapshot *s = tm_snapshot_new();
	tm_id x = tm_intern_string(s, "a\0b", 3);
	tm_id y = tm_intern_string(s, "a\0c", 3);
	tm_id z = tm_intern_string(s, "a", 1);

	cr_assert_neq(x, y);
	cr_assert_neq(x, z);
	cr_assert_eq(tm_intern_string(s, "a\0b", 3), x);
	cr_assert_eq(tm_string(s, x).len, 3);
	cr_assert_eq(memcmp(tm_string(s, x).data, "a\0b", 3), 0);
	cr_assert_eq(tm_snapshot_validate(s, NULL), 0);
	tm_snapshot_free(s);
}

Test(model, many_strings_grow_the_index)
{
	struct tm_snapshot *s = tm_snapshot_new();
	char name[32];
	int i;

	for (i = 0; i < 20000; i++) {
		int n = snprintf(name, sizeof(name), "/lib/m%d.py", i);

		cr_assert_eq(tm_intern_string(s, name, (size_t)n), (tm_id)i);
	}
	for (i = 19999; i >= 0; i--) {
		int n = snprintf(name, sizeof(name), "/lib/m%d.py", i);
		struct tm_str v = tm_string(s, (tm_id)i);

		cr_assert_eq(tm_intern_string(s, name, (size_t)n), (tm_id)i);
		cr_assert_eq(v.len, (uint32_t)n);
		cr_assert_eq(memcmp(v.data, name, (size_t)n), 0);
	}
	cr_assert_eq(s->nstrings, 20000);
	cr_assert_eq(tm_snapshot_validate(s, NULL), 0);
	tm_snapshot_free(s);
}

Test(model, frames_and_tracebacks_by_value)
{
	struct tm_snapshot *s = tm_snapshot_new();
	tm_id fa = tm_intern_string(s, "a.py", 4), fb = tm_intern_string(s, "b.py", 4);
	tm_id a2 = tm_intern_frame(s, fa, 2), b4 = tm_intern_frame(s, fb, 4);

	cr_assert_eq(tm_intern_frame(s, fa, 2), a2);
	cr_assert_neq(tm_intern_frame(s, fa, 3), a2);
	cr_assert_neq(b4, a2);
	cr_assert_eq(tm_intern_frame(s, 99, 1), TM_ID_NONE);  /* no such string */

	tm_id fr[] = { a2, b4 }, rev[] = { b4, a2 };
	tm_id t1 = tm_intern_traceback(s, fr, 2, 3);
	tm_id t2 = tm_intern_traceback(s, fr, 2, 3);
	tm_id t3 = tm_intern_traceback(s, fr, 2, 7);          /* other total_nframe */
	tm_id t4 = tm_intern_traceback(s, rev, 2, 3);         /* other order */
	tm_id t5 = tm_intern_traceback(s, fr, 1, TM_TOTAL_NFRAME_NONE);

	cr_assert_eq(t1, t2);
	cr_assert_neq(t3, t1);
	cr_assert_neq(t4, t1);
	cr_assert_neq(t5, t1);
	cr_assert_eq(s->ntracebacks, 4);
	cr_assert_eq(s->tracebacks[t1].nframe, 2);
	cr_assert_eq(s->tracebacks[t3].total_nframe, 7);
	cr_assert_eq(tm_traceback_frames(s, t4)[0], b4);
	cr_assert_eq(tm_traceback_frames(s, t4)[1], a2);
	cr_assert_eq(s->tracebacks[t5].total_nframe, TM_TOTAL_NFRAME_NONE);
	cr_assert_eq(tm_intern_traceback(s, fr, 0, 0), TM_ID_NONE);
	tm_id bad[] = { a2, 42 };
	cr_assert_eq(tm_intern_traceback(s, bad, 2, 2), TM_ID_NONE);

	/* interning frames that already live in frame_ids (the table may move) */
	const tm_id *inner = tm_traceback_frames(s, t4);
	tm_id t6 = tm_intern_traceback(s, inner, 1, 1);
	cr_assert_eq(s->tracebacks[t6].nframe, 1);
	cr_assert_eq(tm_traceback_frames(s, t6)[0], b4);
	cr_assert_eq(tm_snapshot_validate(s, NULL), 0);
	tm_snapshot_free(s);
}

/* CPython TestSnapshot.test_create_snapshot: raw_traces = [(0, 5, (('a.py', 2),), 10)],
 * get_traceback_limit() = 5. */
Test(model, cpython_create_snapshot)
{
	struct tm_snapshot *s = tm_snapshot_new();

	s->traceback_limit = 5;
	analysis_add(s, 0, 5, analysis_tb(s, 10, 1, "a.py", 2u));
	cr_assert_eq(s->traceback_limit, 5);
	cr_assert_eq(s->ntraces, 1);
	const struct tm_trace *t = &s->traces[0];
	cr_assert_eq(t->size, 5);
	cr_assert_eq(t->domain, 0);
	cr_assert_eq(s->tracebacks[t->traceback].total_nframe, 10);
	cr_assert_eq(s->tracebacks[t->traceback].nframe, 1);
	const struct tm_frame *f = &s->frames[tm_traceback_frames(s, t->traceback)[0]];
	struct tm_str name = tm_string(s, f->filename);
	cr_assert_eq(name.len, 4);
	cr_assert_eq(memcmp(name.data, "a.py", 4), 0);
	cr_assert_eq(f->lineno, 2);
	tm_snapshot_free(s);
}

Test(model, traces_and_total_size)
{
	struct tm_snapshot *a, *b;

	analysis_create_snapshots(&a, &b);
	cr_assert_eq(a->ntraces, 6);
	cr_assert_eq(b->ntraces, 6);
	cr_assert_eq(tm_snapshot_total_size(a), 10 * 3 + 2 + 66 + 7);
	cr_assert_eq(tm_snapshot_total_size(b), 10 * 3 + 2 + 5000 + 400);
	cr_assert_eq(a->traces[3].domain, 1);
	cr_assert_eq(a->traces[0].traceback, a->traces[2].traceback);
	cr_assert_eq(b->traces[3].traceback, b->traces[4].traceback);
	cr_assert_eq(tm_add_trace(a, 0, 1, 1234, 0), -1);     /* no such traceback */
	cr_assert_eq(tm_add_trace(a, 5, 11, 0, 0xdeadbeef), 0);
	cr_assert_eq(a->traces[6].address, 0xdeadbeef);
	cr_assert_eq(a->traces[6].domain, 5);
	cr_assert_eq(tm_snapshot_validate(a, NULL), 0);
	cr_assert_eq(tm_snapshot_validate(b, NULL), 0);
	tm_snapshot_free(a);
	tm_snapshot_free(b);
}

Test(model, counters_add_and_replace)
{
	struct tm_snapshot *s = tm_snapshot_new();

	cr_assert_eq(tm_set_counter(s, "lost.live_map_full", 3), 0);
	cr_assert_eq(tm_set_counter(s, "frames.unreadable", 9), 0);
	cr_assert_eq(tm_set_counter(s, "lost.live_map_full", 5), 0);
	cr_assert_eq(s->capture.ncounters, 2);
	cr_assert_eq(s->capture.counters[0].value, 5);
	cr_assert_eq(s->capture.counters[1].value, 9);
	struct tm_str n = tm_string(s, s->capture.counters[1].name);
	cr_assert_eq(n.len, strlen("frames.unreadable"));
	cr_assert_eq(memcmp(n.data, "frames.unreadable", n.len), 0);
	cr_assert_eq(s->capture.coverage_note, TM_ID_NONE);
	cr_assert_eq(tm_snapshot_validate(s, NULL), 0);
	tm_snapshot_free(s);
}

/*
 * What the native loader does: fill the flat arrays directly (exact sizes,
 * capacities as the loader likes) and leave the indexes NULL. Interning must
 * then find the loaded values and append new ones after them.
 */
static struct tm_snapshot *loaded_snapshot(void)
{
	struct tm_snapshot *s = tm_snapshot_new();
	static const char pool[] = "a.py\0b.py\0";

	s->str_pool = malloc(sizeof(pool) - 1);
	memcpy(s->str_pool, pool, sizeof(pool) - 1);
	s->str_pool_len = s->str_pool_cap = sizeof(pool) - 1;
	s->str_off = malloc(3 * sizeof(uint64_t));
	s->str_off[0] = 0;
	s->str_off[1] = 5;
	s->str_off[2] = 10;
	s->nstrings = 2;
	s->str_cap = 0;                 /* a loader may leave capacities at 0 */
	s->frames = malloc(2 * sizeof(struct tm_frame));
	s->frames[0] = (struct tm_frame){ 0, 2 };
	s->frames[1] = (struct tm_frame){ 1, 4 };
	s->nframes = s->frames_cap = 2;
	s->frame_ids = malloc(3 * sizeof(tm_id));
	s->frame_ids[0] = 0;
	s->frame_ids[1] = 1;
	s->frame_ids[2] = 1;
	s->nframe_ids = s->frame_ids_cap = 3;
	s->tracebacks = malloc(2 * sizeof(struct tm_traceback));
	s->tracebacks[0] = (struct tm_traceback){ 0, 2, 3 };
	s->tracebacks[1] = (struct tm_traceback){ 2, 1, 1 };
	s->ntracebacks = s->tracebacks_cap = 2;
	s->traces = malloc(sizeof(struct tm_trace));
	s->traces[0] = (struct tm_trace){ 0x1000, 10, 0, 0 };
	s->ntraces = s->traces_cap = 1;
	s->capture.counters = malloc(sizeof(struct tm_counter));
	s->capture.counters[0] = (struct tm_counter){ 1, 77 };
	s->capture.ncounters = 1;
	return s;
}

Test(model, lazy_indexes_after_load)
{
	struct tm_snapshot *s = loaded_snapshot();

	cr_assert_eq(tm_snapshot_validate(s, NULL), 0);
	cr_assert_null(s->str_index);
	cr_assert_eq(tm_intern_string(s, "b.py", 4), 1);
	cr_assert_eq(tm_intern_string(s, "c.py", 4), 2);
	cr_assert_eq(s->str_off[3], 15);
	cr_assert_eq(tm_intern_frame(s, 1, 4), 1);
	cr_assert_eq(tm_intern_frame(s, 2, 4), 2);
	tm_id fr[] = { 0, 1 }, one[] = { 1 };
	cr_assert_eq(tm_intern_traceback(s, fr, 2, 3), 0);
	cr_assert_eq(tm_intern_traceback(s, one, 1, 1), 1);
	cr_assert_eq(tm_intern_traceback(s, one, 1, 2), 2);
	cr_assert_eq(tm_set_counter(s, "b.py", 78), 0);        /* string 1 is a counter */
	cr_assert_eq(s->capture.ncounters, 1);
	cr_assert_eq(s->capture.counters[0].value, 78);
	cr_assert_eq(tm_add_trace(s, 0, 5, 2, 0), 0);
	cr_assert_eq(tm_snapshot_total_size(s), 15);
	cr_assert_eq(tm_snapshot_validate(s, NULL), 0);
	tm_snapshot_free(s);
}

Test(model, validate_rejects_bad_ids_and_ranges)
{
	struct tm_error err;
	struct tm_snapshot *s;

#define EXPECT_INVALID(mutation, text)                                          \
	do {                                                                    \
		s = loaded_snapshot();                                          \
		mutation;                                                       \
		memset(&err, 0, sizeof(err));                                   \
		cr_assert_eq(tm_snapshot_validate(s, &err), -1, "%s", #mutation); \
		cr_assert(strstr(err.msg, text), "%s: got '%s'", #mutation, err.msg); \
		tm_snapshot_free(s);                                            \
	} while (0)

	EXPECT_INVALID(s->str_off[1] = 11, "bad range");
	EXPECT_INVALID(s->str_off[0] = 1, "offset 0");
	EXPECT_INVALID(s->str_pool[4] = 'x', "not NUL-terminated");
	EXPECT_INVALID(s->str_pool_len = 12, "trailing");
	EXPECT_INVALID(s->frames[1].filename = 2, "frame 1 names string 2");
	EXPECT_INVALID(s->frame_ids[2] = 2, "names frame 2");
	EXPECT_INVALID(s->tracebacks[1].nframe = 0, "no frame");
	EXPECT_INVALID(s->tracebacks[1].nframe = 2, "exceed");
	EXPECT_INVALID(s->traces[0].traceback = 2, "names traceback 2");
	EXPECT_INVALID(s->traces[0].size = (uint64_t)INT64_MAX + 1, "total size");
	EXPECT_INVALID(s->capture.python = 5, "missing string");
	EXPECT_INVALID(s->capture.counters[0].name = 2, "counter 0");
	EXPECT_INVALID(s->capture.tier = 9, "tier");
	EXPECT_INVALID((free(s->traces), s->traces = NULL), "no table");
	EXPECT_INVALID((free(s->frames), s->frames = NULL, s->frames_cap = 0), "no table");
#undef EXPECT_INVALID
}

Test(model, error_text_is_truncated_safely)
{
	struct tm_error err;
	char big[600];

	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	tm_error_set(&err, "bad: %s", big);
	cr_assert_eq(strlen(err.msg), sizeof(err.msg) - 1);
	cr_assert_eq(strncmp(err.msg, "bad: xxx", 8), 0);
	tm_error_set(NULL, "ignored %d", 1);
}
