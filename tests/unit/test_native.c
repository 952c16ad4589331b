// SPDX-License-Identifier: MIT
/*
 * The native snapshot file (user/snapshot/native.c): exact round trips of
 * rich snapshots (every capture field, non-ASCII, surrogate-escaped and
 * NUL-holding strings, extreme sizes, domains and line numbers), the
 * documented layout, and one hand-corrupted file per check the loader makes,
 * each refused with its own error and no crash (ASan+UBSan).
 */
#include "files_util.h"

/* ---- snapshots to write ---------------------------------------------------------- */

static tm_id str(struct tm_snapshot *s, const char *data, size_t len)
{
	tm_id id = tm_intern_string(s, data, len);

	cr_assert_neq(id, TM_ID_NONE);
	return id;
}

static tm_id tb(struct tm_snapshot *s, uint32_t total, uint32_t n, const tm_id *frames)
{
	tm_id id = tm_intern_traceback(s, frames, n, total);

	cr_assert_neq(id, TM_ID_NONE);
	return id;
}

/* Every kind of value a snapshot holds, at its extremes. */
static struct tm_snapshot *rich_snapshot(void)
{
	struct tm_snapshot *s = tm_snapshot_new();
	struct tm_capture *c = &s->capture;
	char longname[301];
	tm_id f[6], t[5];

	cr_assert_not_null(s);
	memset(longname, 'x', 300);
	longname[300] = '\0';
	tm_id a = str(s, "/usr/lib/python3.11/a.py", 24);
	tm_id e = str(s, "/srv/\xc3\xa9t\xc3\xa9/\xe4\xb8\xad.py", 17);   /* é, 中 */
	tm_id z = str(s, "nul\0inside.py", 13);
	tm_id empty = str(s, "", 0);
	tm_id sur = str(s, "b\xed\xb3\xbf.py", 7);                        /* \udcff */
	tm_id lng = str(s, longname, 300);

	f[0] = tm_intern_frame(s, a, 0);
	f[1] = tm_intern_frame(s, e, 1);
	f[2] = tm_intern_frame(s, z, UINT32_MAX);
	f[3] = tm_intern_frame(s, empty, 42);
	f[4] = tm_intern_frame(s, sur, 7);
	f[5] = tm_intern_frame(s, lng, 123456);
	t[0] = tb(s, 1, 1, f);
	t[1] = tb(s, TM_TOTAL_NFRAME_NONE, 3, f + 1);
	t[2] = tb(s, 65535, 5, f + 1);
	t[3] = tb(s, 6, 6, f);
	t[4] = tb(s, UINT32_MAX - 1, 2, f + 4);
	cr_assert_eq(tm_add_trace(s, 0, 0, t[0], 0x7f0000001000), 0);
	cr_assert_eq(tm_add_trace(s, TM_NUMPY_DOMAIN, (uint64_t)1 << 31, t[1], 1), 0);
	cr_assert_eq(tm_add_trace(s, UINT32_MAX, (uint64_t)1 << 32, t[2], UINT64_MAX), 0);
	cr_assert_eq(tm_add_trace(s, 1, (uint64_t)1 << 62, t[3], 0), 0);
	cr_assert_eq(tm_add_trace(s, 0, 48, t[4], 0x1000), 0);
	cr_assert_eq(tm_add_trace(s, 0, 48, t[0], 0x1040), 0);
	s->traceback_limit = 25;
	c->tier = TM_TIER_NATIVE;
	c->coverage = TM_COVERAGE_SAMPLED;
	c->coverage_note = str(s, "sampled: one in 524288 bytes", 28);
	c->sample_period = 524288;
	c->pid = -7;
	c->command = str(s, "python3 -c 'x = 1'\0--flag", 25);
	c->python = str(s, "3.11.2 /usr/bin/python3.11", 26);
	c->start_ns = 1700000000123456789ull;
	c->taken_ns = UINT64_MAX;
	c->traced_current = 123456789;
	c->traced_peak = (uint64_t)1 << 40;
	c->tracer_memory = 31337;
	cr_assert_eq(tm_set_counter(s, "lost.live_map_full", 3), 0);
	cr_assert_eq(tm_set_counter(s, "frames.unreadable", UINT64_MAX), 0);
	cr_assert_eq(tm_set_counter(s, "", 0), 0);
	return s;
}

/* Same tables, byte for byte: a native round trip copies them as they are. */
static void assert_identical(const struct tm_snapshot *got, const struct tm_snapshot *want)
{
	const struct tm_capture *g = &got->capture, *w = &want->capture;
	char why[512];

	cr_assert(tm_snapshot_same_traces(got, want, true, false, why, sizeof(why)), "%s", why);
	cr_assert_eq(got->nstrings, want->nstrings);
	cr_assert_eq(got->str_pool_len, want->str_pool_len);
	if (want->nstrings) {
		cr_assert_eq(memcmp(got->str_pool, want->str_pool, want->str_pool_len), 0);
		cr_assert_eq(memcmp(got->str_off, want->str_off,
				    ((size_t)want->nstrings + 1) * sizeof(uint64_t)), 0);
	}
	cr_assert_eq(got->nframes, want->nframes);
	cr_assert_eq(got->nframe_ids, want->nframe_ids);
	cr_assert_eq(got->ntracebacks, want->ntracebacks);
	cr_assert_eq(got->ntraces, want->ntraces);
	if (want->nframes)
		cr_assert_eq(memcmp(got->frames, want->frames, want->nframes * sizeof(*got->frames)), 0);
	if (want->nframe_ids)
		cr_assert_eq(memcmp(got->frame_ids, want->frame_ids,
				    want->nframe_ids * sizeof(tm_id)), 0);
	if (want->ntracebacks)
		cr_assert_eq(memcmp(got->tracebacks, want->tracebacks,
				    want->ntracebacks * sizeof(*got->tracebacks)), 0);
	if (want->ntraces)
		cr_assert_eq(memcmp(got->traces, want->traces, want->ntraces * sizeof(*got->traces)),
			     0);
	cr_assert_eq(got->traceback_limit, want->traceback_limit);
	cr_assert_eq(g->tier, w->tier);
	cr_assert_eq(g->coverage, w->coverage);
	cr_assert_eq(g->coverage_note, w->coverage_note);
	cr_assert_eq(g->sample_period, w->sample_period);
	cr_assert_eq(g->pid, w->pid);
	cr_assert_eq(g->command, w->command);
	cr_assert_eq(g->python, w->python);
	cr_assert_eq(g->start_ns, w->start_ns);
	cr_assert_eq(g->taken_ns, w->taken_ns);
	cr_assert_eq(g->traced_current, w->traced_current);
	cr_assert_eq(g->traced_peak, w->traced_peak);
	cr_assert_eq(g->tracer_memory, w->tracer_memory);
	cr_assert_eq(g->ncounters, w->ncounters);
	for (uint32_t i = 0; i < w->ncounters; i++) {
		cr_assert_eq(g->counters[i].name, w->counters[i].name);
		cr_assert_eq(g->counters[i].value, w->counters[i].value);
	}
}

Test(native, rich_snapshot_round_trip)
{
	struct tm_snapshot *s = rich_snapshot(), *back;
	char *dir = analysis_tmpdir(), *again, *first;
	const char *path = files_path(dir, "rich.tmbpf");
	struct tm_error err = { "" };
	size_t len, len2;
	struct tm_str v;

	cr_assert_eq(tm_snapshot_save_native(s, path, &err), 0, "%s", err.msg);
	back = files_load(path);
	assert_identical(back, s);
	/* the strings with NUL bytes, surrogates and non-ASCII kept their bytes */
	v = tm_string(back, back->capture.command);
	cr_assert(v.len == 25 && !memcmp(v.data, "python3 -c 'x = 1'\0--flag", 25));
	v = tm_string(back, back->frames[2].filename);
	cr_assert(v.len == 13 && !memcmp(v.data, "nul\0inside.py", 14));  /* with its NUL */
	/* loaded tables have no index; interning builds it and finds what is there */
	cr_assert_null(back->str_index);
	cr_assert_null(back->frame_index);
	cr_assert_null(back->tb_index);
	cr_assert_eq(tm_intern_string(back, "b\xed\xb3\xbf.py", 7), 4);
	cr_assert_eq(tm_intern_string(back, "new.py", 6), s->nstrings);
	cr_assert_eq(tm_intern_frame(back, 2, UINT32_MAX), 2);
	cr_assert_eq(tm_intern_traceback(back, back->frame_ids + back->tracebacks[2].first, 5,
					 65535), 2);
	cr_assert_eq(tm_add_trace(back, 3, 3, 2, 3), 0);     /* the table grows past its cap */
	cr_assert_eq(back->ntraces, s->ntraces + 1);
	cr_assert_eq(tm_snapshot_validate(back, &err), 0, "%s", err.msg);
	tm_snapshot_free(back);

	/* the file is a pure function of the snapshot: no stray padding bytes */
	first = files_read(path, &len);
	again = files_native_bytes(s, &len2);
	cr_assert_eq(len, len2);
	cr_assert_eq(memcmp(first, again, len), 0);
	free(first);
	free(again);
	tm_snapshot_free(s);
	analysis_rmtree(dir);
}

Test(native, empty_snapshot_round_trip)
{
	struct tm_snapshot *s = tm_snapshot_new(), *back;
	struct tm_error err = { "" };
	size_t len;
	char *buf = files_native_bytes(s, &len);

	cr_assert_eq(len, 256 + 8, "header + the string table's end offset");
	back = tm_native_load_mem(buf, len, &err);
	cr_assert_not_null(back, "%s", err.msg);
	assert_identical(back, s);
	cr_assert_null(back->str_off);
	cr_assert_eq(back->capture.coverage_note, TM_ID_NONE);
	cr_assert_eq(back->capture.command, TM_ID_NONE);
	cr_assert_eq(back->capture.python, TM_ID_NONE);
	cr_assert_eq(tm_intern_string(back, "a", 1), 0);
	cr_assert_eq(tm_snapshot_validate(back, &err), 0, "%s", err.msg);
	tm_snapshot_free(back);
	tm_snapshot_free(s);
	free(buf);
}

/* ---- the layout, as documented at the top of native.c -------------------------------- */

static uint64_t le(const char *p, int n)
{
	uint64_t v = 0;

	while (n--)
		v = v << 8 | (unsigned char)p[n];
	return v;
}

static void put_le(char *p, uint64_t v, int n)
{
	for (int i = 0; i < n; i++)
		p[i] = (char)(v >> (8 * i));
}

enum { SEC_STR_OFF, SEC_STR_POOL, SEC_FRAMES, SEC_FRAME_IDS, SEC_TRACEBACKS, SEC_TRACES,
       SEC_COUNTERS, NSEC };
static const char *const sec_names[NSEC] = {
	"string offsets", "string pool", "frames", "frame ids", "tracebacks", "traces", "counters",
};
#define SEC_OFF(buf, i) (136 + 16 * (i))
#define SEC_LEN(buf, i) (136 + 16 * (i) + 8)

Test(native, documented_layout)
{
	struct tm_snapshot *s = rich_snapshot();
	size_t len;
	char *b = files_native_bytes(s, &len);
	uint64_t end = 256;
	static const uint64_t elem[NSEC] = { 8, 1, 8, 4, 12, 24, 16 };
	const uint64_t count[NSEC] = {
		(uint64_t)s->nstrings + 1, s->str_pool_len, s->nframes, s->nframe_ids,
		s->ntracebacks, s->ntraces, s->capture.ncounters,
	};

	cr_assert_eq(memcmp(b, "\x89tmbpf\r\n", 8), 0);
	cr_assert_eq(le(b + 8, 2), 1);                  /* major */
	cr_assert_eq(le(b + 10, 2), 0);                 /* minor */
	cr_assert_eq(le(b + 12, 4), 256);               /* header size */
	cr_assert_eq(le(b + 16, 4), 0);                 /* flags */
	cr_assert_eq(le(b + 20, 4), 25);                /* traceback_limit */
	cr_assert_eq(le(b + 24, 4), s->nstrings);
	cr_assert_eq(le(b + 28, 4), s->nframes);
	cr_assert_eq(le(b + 32, 4), s->nframe_ids);
	cr_assert_eq(le(b + 36, 4), s->ntracebacks);
	cr_assert_eq(le(b + 40, 8), s->ntraces);
	cr_assert_eq(le(b + 48, 8), s->str_pool_len);
	cr_assert_eq(le(b + 56, 4), 3);                 /* counters */
	cr_assert_eq(le(b + 60, 4), TM_TIER_NATIVE);
	cr_assert_eq(le(b + 64, 4), TM_COVERAGE_SAMPLED);
	cr_assert_eq(le(b + 68, 4), s->capture.coverage_note);
	cr_assert_eq(le(b + 72, 4), s->capture.command);
	cr_assert_eq(le(b + 76, 4), s->capture.python);
	cr_assert_eq((int32_t)le(b + 80, 4), -7);
	cr_assert_eq(le(b + 84, 4), 0);
	cr_assert_eq(le(b + 88, 8), 524288);
	cr_assert_eq(le(b + 96, 8), 1700000000123456789ull);
	cr_assert_eq(le(b + 104, 8), UINT64_MAX);
	cr_assert_eq(le(b + 112, 8), 123456789);
	cr_assert_eq(le(b + 120, 8), (uint64_t)1 << 40);
	cr_assert_eq(le(b + 128, 8), 31337);
	cr_assert_eq(le(b + 248, 8), len);              /* file size */
	for (int i = 0; i < NSEC; i++) {
		uint64_t off = le(b + SEC_OFF(b, i), 8), n = le(b + SEC_LEN(b, i), 8);

		cr_assert_eq(off % 8, 0, "%s aligned", sec_names[i]);
		cr_assert_geq(off, end, "%s after the previous section", sec_names[i]);
		cr_assert_eq(n, count[i] * elem[i], "%s length", sec_names[i]);
		for (uint64_t k = end; k < off; k++)
			cr_assert_eq(b[k], 0, "padding before %s", sec_names[i]);
		end = off + n;
	}
	cr_assert_eq(len, (end + 7) & ~7ull);
	/* a trace record: address, size, domain, traceback id */
	{
		const char *t = b + le(b + SEC_OFF(b, SEC_TRACES), 8) + 2 * 24;

		cr_assert_eq(le(t, 8), UINT64_MAX);
		cr_assert_eq(le(t + 8, 8), (uint64_t)1 << 32);
		cr_assert_eq(le(t + 16, 4), UINT32_MAX);
		cr_assert_eq(le(t + 20, 4), s->traces[2].traceback);
	}
	/* a counter record: name id, zero, value */
	{
		const char *c = b + le(b + SEC_OFF(b, SEC_COUNTERS), 8) + 16;

		cr_assert_eq(le(c, 4), s->capture.counters[1].name);
		cr_assert_eq(le(c + 4, 4), 0);
		cr_assert_eq(le(c + 8, 8), UINT64_MAX);
	}
	free(b);
	tm_snapshot_free(s);
}

/* A newer minor version may add header fields: this version skips them. */
Test(native, newer_minor_version_with_a_longer_header_loads)
{
	struct tm_snapshot *s = rich_snapshot(), *back;
	struct tm_error err = { "" };
	size_t len;
	char *b = files_native_bytes(s, &len), *n = malloc(len + 16);

	cr_assert_not_null(n);
	memcpy(n, b, 256);
	memset(n + 256, 0xab, 16);              /* unknown new fields */
	memcpy(n + 272, b + 256, len - 256);
	put_le(n + 10, 7, 2);                   /* minor 7 */
	put_le(n + 12, 272, 4);
	put_le(n + 248, len + 16, 8);
	for (int i = 0; i < NSEC; i++)
		put_le(n + SEC_OFF(n, i), le(n + SEC_OFF(n, i), 8) + 16, 8);
	back = tm_native_load_mem(n, len + 16, &err);
	cr_assert_not_null(back, "%s", err.msg);
	assert_identical(back, s);
	tm_snapshot_free(back);
	free(n);
	free(b);
	tm_snapshot_free(s);
}

/* ---- corruption: one case per check ------------------------------------------------ */

struct corrupt_ctx {
	char *good;
	size_t len;
	const struct tm_snapshot *s;
};

static uint64_t sec(const struct corrupt_ctx *c, int i)
{
	return le(c->good + SEC_OFF(c->good, i), 8);
}

/* A copy of the good file with `mutate` applied; expects `want` in the error. */
static void expect_corrupt(const struct corrupt_ctx *c, void (*mutate)(char *b,
						const struct corrupt_ctx *c, uint64_t arg),
			   uint64_t arg, const char *want, const char *what)
{
	char *b = malloc(c->len);

	cr_assert_not_null(b);
	memcpy(b, c->good, c->len);
	mutate(b, c, arg);
	files_expect_error(tm_native_load_mem, b, c->len, want, what);
	/* aggregated and streamed loads refuse it with the same message */
	files_check_ways_with(tm_native_load_input, b, c->len, false, what);
	/* the format dispatch sends it to the same check (unless the magic is gone) */
	if (!memcmp(b, TM_NATIVE_MAGIC, TM_NATIVE_MAGIC_LEN))
		files_expect_error(tm_snapshot_load_mem, b, c->len, want, what);
	else
		files_expect_error(tm_snapshot_load_mem, b, c->len, "not a snapshot", what);
	free(b);
}

#define FIELD_SETTER(name, off, width) \
	static void name(char *b, const struct corrupt_ctx *c, uint64_t v) \
	{                                                                   \
		(void)c;                                                    \
		put_le(b + (off), v, (width));                              \
	}
FIELD_SETTER(set_magic1, 1, 1)
FIELD_SETTER(set_major, 8, 2)
FIELD_SETTER(set_version, 8, 4)
FIELD_SETTER(set_header_size, 12, 4)
FIELD_SETTER(set_flags, 16, 4)
FIELD_SETTER(set_nstrings, 24, 4)
FIELD_SETTER(set_nframes, 28, 4)
FIELD_SETTER(set_nframe_ids, 32, 4)
FIELD_SETTER(set_ntracebacks, 36, 4)
FIELD_SETTER(set_ntraces, 40, 8)
FIELD_SETTER(set_pool_len, 48, 8)
FIELD_SETTER(set_ncounters, 56, 4)
FIELD_SETTER(set_tier, 60, 4)
FIELD_SETTER(set_coverage, 64, 4)
FIELD_SETTER(set_note, 68, 4)
FIELD_SETTER(set_python, 76, 4)
FIELD_SETTER(set_file_size, 248, 8)

/* arg: section << 32 | new offset delta (signed 32) */
static void move_section(char *b, const struct corrupt_ctx *c, uint64_t arg)
{
	int i = (int)(arg >> 32);
	int32_t delta = (int32_t)(uint32_t)arg;

	put_le(b + SEC_OFF(b, i), sec(c, i) + (uint64_t)(int64_t)delta, 8);
}

static void section_len_huge(char *b, const struct corrupt_ctx *c, uint64_t i)
{
	(void)c;
	put_le(b + SEC_LEN(b, i), UINT64_MAX - 7, 8);
}

static void frames_onto_pool(char *b, const struct corrupt_ctx *c, uint64_t unused)
{
	(void)unused;
	put_le(b + SEC_OFF(b, SEC_FRAMES), sec(c, SEC_STR_POOL), 8);
}

/* arg: section << 32 | element index * element size + field offset; sets a u32 */
static uint64_t at(int section, uint64_t byte)
{
	return (uint64_t)section << 32 | byte;
}

static uint32_t poke_value;

static void poke32(char *b, const struct corrupt_ctx *c, uint64_t arg)
{
	put_le(b + sec(c, (int)(arg >> 32)) + (uint32_t)arg, poke_value, 4);
}

static void poke64(char *b, const struct corrupt_ctx *c, uint64_t arg)
{
	put_le(b + sec(c, (int)(arg >> 32)) + (uint32_t)arg, (uint64_t)poke_value, 8);
}

static void sizes_over_int64(char *b, const struct corrupt_ctx *c, uint64_t unused)
{
	(void)unused;
	for (uint64_t i = 0; i < c->s->ntraces; i++)
		put_le(b + sec(c, SEC_TRACES) + 24 * i + 8, (uint64_t)1 << 61, 8);
}

Test(native, every_check_refuses_its_corruption)
{
	struct tm_snapshot *s = rich_snapshot();
	struct corrupt_ctx c = { .s = s };
	uint32_t ns = s->nstrings, nf = s->nframes;
	char want[256];

	c.good = files_native_bytes(s, &c.len);

	/* the header */
	expect_corrupt(&c, set_magic1, 'T', "not a tmbpf native snapshot (bad magic)", "magic");
	expect_corrupt(&c, set_version, 2 | 3 << 16,
		       "native snapshot format version 2.3 is newer than this tmbpf reads (1.0); "
		       "use a newer tmbpf", "major 2");
	expect_corrupt(&c, set_major, 0, "unknown native snapshot format version 0.0", "major 0");
	expect_corrupt(&c, set_header_size, 248, "corrupt native snapshot: header size 248",
		       "short header");
	expect_corrupt(&c, set_header_size, 260, "header size 260", "unaligned header");
	expect_corrupt(&c, set_header_size, 1u << 30, "truncated native snapshot", "huge header");
	expect_corrupt(&c, set_flags, 1, "uses features this tmbpf does not know (flags 0x1, "
		       "version 1.0)", "flags");
	snprintf(want, sizeof(want), "corrupt native snapshot: %zu bytes, the header says %zu",
		 c.len, c.len - 8);
	expect_corrupt(&c, set_file_size, c.len - 8, want, "file size too small");
	snprintf(want, sizeof(want), "truncated native snapshot (%zu of %zu bytes)", c.len,
		 c.len + 1);
	expect_corrupt(&c, set_file_size, c.len + 1, want, "file size too big");

	/* the section table */
	for (int i = 0; i < NSEC; i++) {
		snprintf(want, sizeof(want), "corrupt native snapshot: the %s section [", sec_names[i]);
		expect_corrupt(&c, move_section, at(i, 4), want, "unaligned section");
		expect_corrupt(&c, section_len_huge, (uint64_t)i, want, "section past the end");
	}
	expect_corrupt(&c, move_section, at(SEC_STR_OFF, (uint32_t)-8),
		       "the string offsets section [248,", "section over the header");
	expect_corrupt(&c, frames_onto_pool, 0, "the frames section [", "overlapping sections");

	/* counts against section lengths, overflow included */
	snprintf(want, sizeof(want), "the traces section is %" PRIu64 " bytes, which does not "
		 "hold %" PRIu64 " entries of 24 bytes", s->ntraces * 24, s->ntraces + 1);
	expect_corrupt(&c, set_ntraces, s->ntraces + 1, want, "ntraces + 1");
	expect_corrupt(&c, set_ntraces, (uint64_t)1 << 61,
		       "does not hold 2305843009213693952 entries of 24 bytes", "ntraces overflow");
	expect_corrupt(&c, set_ntraces, UINT64_MAX, "does not hold 18446744073709551615 entries",
		       "ntraces max");
	expect_corrupt(&c, set_nframes, nf - 1, "the frames section is", "nframes - 1");
	expect_corrupt(&c, set_nframe_ids, s->nframe_ids + 1, "the frame ids section is",
		       "nframe_ids");
	expect_corrupt(&c, set_ntracebacks, s->ntracebacks * 2, "the tracebacks section is",
		       "ntracebacks");
	expect_corrupt(&c, set_ncounters, 4, "the counters section is", "ncounters");
	expect_corrupt(&c, set_pool_len, s->str_pool_len + 1, "the string pool section is",
		       "pool length");
	expect_corrupt(&c, set_nstrings, ns + 1, "the string offsets section is", "nstrings");
	expect_corrupt(&c, set_nstrings, UINT32_MAX, "table sizes out of range", "nstrings max");
	expect_corrupt(&c, set_nframes, UINT32_MAX, "table sizes out of range", "nframes max");

	/* strings */
	poke_value = 1;
	expect_corrupt(&c, poke64, at(SEC_STR_OFF, 0),
		       "corrupt native snapshot: string table does not start at offset 0", "off[0]");
	poke_value = (uint32_t)s->str_off[1];
	expect_corrupt(&c, poke64, at(SEC_STR_OFF, 2 * 8),
		       "corrupt native snapshot: string 1 has a bad range", "off not rising");
	poke_value = (uint32_t)s->str_pool_len + 100;
	expect_corrupt(&c, poke64, at(SEC_STR_OFF, 3 * 8), "string 2 has a bad range",
		       "off past the pool");
	poke_value = 0x41414141;
	expect_corrupt(&c, poke32, at(SEC_STR_POOL, s->str_off[1] - 4),
		       "corrupt native snapshot: string 0 is not NUL-terminated", "NUL");
	poke_value = (uint32_t)s->str_pool_len - 4;
	expect_corrupt(&c, poke64, at(SEC_STR_OFF, (uint64_t)ns * 8),
		       "is not NUL-terminated", "last offset short");

	/* ids */
	poke_value = ns;
	snprintf(want, sizeof(want), "corrupt native snapshot: frame 3 names string %u of %u", ns, ns);
	expect_corrupt(&c, poke32, at(SEC_FRAMES, 3 * 8), want, "frame filename");
	poke_value = nf;
	snprintf(want, sizeof(want), "traceback frame slot 2 names frame %u of %u", nf, nf);
	expect_corrupt(&c, poke32, at(SEC_FRAME_IDS, 2 * 4), want, "frame id");
	poke_value = s->nframe_ids;
	expect_corrupt(&c, poke32, at(SEC_TRACEBACKS, 1 * 12), "traceback 1 frames [",
		       "traceback range");
	poke_value = 0;
	expect_corrupt(&c, poke32, at(SEC_TRACEBACKS, 4 * 12 + 4),
		       "corrupt native snapshot: traceback 4 has no frame", "nframe 0");
	poke_value = UINT32_MAX;
	expect_corrupt(&c, poke32, at(SEC_TRACEBACKS, 2 * 12 + 4), "traceback 2 frames [",
		       "nframe huge");
	poke_value = s->ntracebacks;
	snprintf(want, sizeof(want), "trace 5 names traceback %u of %u", s->ntracebacks,
		 s->ntracebacks);
	expect_corrupt(&c, poke32, at(SEC_TRACES, 5 * 24 + 20), want, "trace traceback");
	expect_corrupt(&c, sizes_over_int64, 0,
		       "corrupt native snapshot: total size of traces exceeds 9223372036854775807",
		       "total size");
	expect_corrupt(&c, set_note, ns, "capture metadata names a missing string", "note");
	expect_corrupt(&c, set_python, ns + 1, "capture metadata names a missing string", "python");
	poke_value = ns;
	expect_corrupt(&c, poke32, at(SEC_COUNTERS, 16), "counter 1 names string", "counter");
	expect_corrupt(&c, set_tier, 9, "unknown capture tier 9", "tier");
	expect_corrupt(&c, set_coverage, 4, "unknown capture tier 2 or coverage 4", "coverage");

	free(c.good);
	tm_snapshot_free(s);
}

/* Every prefix is refused as truncated; and a prefix whose header claims its
 * own length is refused by the section checks, at every section boundary. */
Test(native, every_truncation_is_refused)
{
	struct tm_snapshot *s = rich_snapshot();
	size_t len, n;
	char *b = files_native_bytes(s, &len), *cut = malloc(len);

	cr_assert_not_null(cut);
	for (n = 0; n < len; n++) {
		char what[64];

		snprintf(what, sizeof(what), "prefix of %zu bytes", n);
		files_expect_error(tm_native_load_mem, b, n, "truncated native snapshot", what);
		if (n % 16 == 0 || n + 64 > len)
			files_check_ways_with(tm_native_load_input, b, n, false, what);
	}
	for (int i = 0; i < NSEC; i++) {
		uint64_t off = le(b + SEC_OFF(b, i), 8), slen = le(b + SEC_LEN(b, i), 8);
		char want[128];

		/* cut in the middle of the section and at its start (when not empty) */
		for (int k = 0; k < 2 && slen; k++) {
			n = (size_t)(k ? off : off + slen / 2);
			memcpy(cut, b, n);
			put_le(cut + 248, n, 8);
			snprintf(want, sizeof(want), "corrupt native snapshot: the %s section",
				 sec_names[i]);
			files_expect_error(tm_native_load_mem, cut, n, want, sec_names[i]);
			files_check_ways_with(tm_native_load_input, cut, n, false, sec_names[i]);
		}
	}
	free(cut);
	free(b);
	tm_snapshot_free(s);
}

/* The writer refuses a snapshot that is not valid, and leaves no file. */
Test(native, writer_refuses_invalid_snapshots)
{
	struct tm_snapshot *s = rich_snapshot();
	char *dir = analysis_tmpdir();
	const char *path = files_path(dir, "bad.tmbpf");
	struct tm_error err = { "" };

	s->traces[1].traceback = s->ntracebacks;
	cr_assert_eq(tm_snapshot_save_native(s, path, &err), -1);
	cr_assert(strstr(err.msg, "bad.tmbpf: trace 1 names traceback"), "%s", err.msg);
	cr_assert_neq(access(path, F_OK), 0);
	{
		char *argv[] = { "/bin/sh", "-c", "ls -A \"$0\" | wc -l", dir, NULL }, *out;
		size_t olen;

		cr_assert_eq(analysis_run(NULL, NULL, argv, &out, &olen), 0);
		cr_assert_str_eq(out, "0\n", "temporary file left behind");
		free(out);
	}
	tm_snapshot_free(s);
	analysis_rmtree(dir);
}
