// SPDX-License-Identifier: MIT
/*
 * The snapshot model: interning of strings, frames and tracebacks, traces,
 * counters, and the self-check the file loaders rely on. See snapshot.h.
 *
 * Ownership: every array of struct tm_snapshot is a separate heap block owned by
 * the snapshot and released by tm_snapshot_free() (loaders must allocate them
 * with malloc/realloc). A capacity smaller than its count is allowed (a loader
 * may allocate exactly); the next append then reallocates.
 *
 * The hash indexes are built lazily from the flat arrays on the first intern call
 * of their table, as _tracemalloc.c interns filenames and tracebacks: a loaded
 * snapshot that is only analysed never pays for them. If a loaded table holds the
 * same value twice (the loader does not have to deduplicate), the first id wins
 * and the analysis code still groups by value, not by id.
 */
#include "snapshot/snapshot.h"
#include "snapshot/index.h"
#include "snapshot/snapfile_priv.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Largest entry count of one id-named table: ids must stay below TM_ID_NONE
 * and "count + 1" must not wrap. */
#define TM_MAX_IDS (UINT32_MAX - 1u)

void tm_error_set(struct tm_error *err, const char *fmt, ...)
{
	va_list ap;

	if (!err)
		return;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
}

struct tm_snapshot *tm_snapshot_new(void)
{
	struct tm_snapshot *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->capture.coverage_note = TM_ID_NONE;
	s->capture.command = TM_ID_NONE;
	s->capture.python = TM_ID_NONE;
	return s;
}

void tm_snapshot_free(struct tm_snapshot *s)
{
	if (!s)
		return;
	free(s->str_pool);
	free(s->str_off);
	free(s->frames);
	free(s->frame_ids);
	free(s->tracebacks);
	free(s->traces);
	free(s->trace_counts);
	free(s->capture.counters);
	tm_index_free(s->str_index);
	tm_index_free(s->frame_index);
	tm_index_free(s->tb_index);
	free(s);
}

/*
 * Makes room for `need` elements of `elem` bytes in *arr whose capacity is
 * *cap; doubles so that appends are amortised O(1). 0 or -1 (allocation or
 * size overflow); *arr is untouched on failure.
 */
static int grow(void **arr, uint64_t *cap, uint64_t need, size_t elem)
{
	uint64_t new_cap;
	void *p;

	if (need <= *cap && *arr)
		return 0;
	new_cap = *cap < 16 ? 16 : *cap;
	while (new_cap < need)
		new_cap = new_cap > UINT64_MAX / 2 ? need : new_cap * 2;
	if (new_cap > SIZE_MAX / elem)
		return -1;
	p = realloc(*arr, (size_t)(new_cap * elem));
	if (!p)
		return -1;
	*arr = p;
	*cap = new_cap;
	return 0;
}

/* grow() for the uint32_t capacities of the id-named tables */
static int grow32(void **arr, uint32_t *cap, uint64_t need, size_t elem)
{
	uint64_t c = *cap;

	if (need > TM_MAX_IDS)
		return -1;
	if (grow(arr, &c, need, elem))
		return -1;
	*cap = c > TM_MAX_IDS ? TM_MAX_IDS : (uint32_t)c;
	return 0;
}

/* ---- strings ------------------------------------------------------------ */

struct str_probe {
	const struct tm_snapshot *s;
	const char *data;
	size_t len;
};

static bool str_eq(const void *ctx, tm_id id)
{
	const struct str_probe *p = ctx;
	struct tm_str v = tm_string(p->s, id);

	return v.len == p->len && memcmp(v.data, p->data, p->len) == 0;
}

static uint32_t str_hash(const char *data, size_t len)
{
	return (uint32_t)tm_hash_bytes(data, len);
}

static int str_index_build(struct tm_snapshot *s)
{
	struct tm_index *ix = tm_index_new(s->nstrings);
	uint32_t i;

	if (!ix)
		return -1;
	for (i = 0; i < s->nstrings; i++) {
		struct tm_str v = tm_string(s, i);
		struct str_probe probe = { s, v.data, v.len };
		uint32_t h = str_hash(v.data, v.len);
		struct tm_index_slot *slot;

		if (tm_index_find(ix, h, str_eq, &probe, &slot) == TM_ID_NONE)
			tm_index_insert_at(ix, slot, i, h);
	}
	s->str_index = ix;
	return 0;
}

tm_id tm_intern_string(struct tm_snapshot *s, const char *data, size_t len)
{
	struct str_probe probe = { s, data, len };
	struct tm_index_slot *slot;
	uint64_t pool_len, str_pool_cap;
	uint32_t h;
	tm_id id;

	if (len >= UINT32_MAX || (len && !data))
		return TM_ID_NONE;
	if (!s->str_index && str_index_build(s))
		return TM_ID_NONE;
	if (tm_index_reserve_one(s->str_index))
		return TM_ID_NONE;
	h = str_hash(data, len);
	id = tm_index_find(s->str_index, h, str_eq, &probe, &slot);
	if (id != TM_ID_NONE)
		return id;

	if (s->nstrings >= TM_MAX_IDS - 1)
		return TM_ID_NONE;
	/* str_cap counts strings; str_off has one more slot, for the end offset
	 * of the last string */
	if (!s->str_off || s->nstrings + 1 > s->str_cap) {
		uint64_t slots = s->str_off ? (uint64_t)s->str_cap + 1 : 0;

		if (grow((void **)&s->str_off, &slots, (uint64_t)s->nstrings + 2,
			 sizeof(*s->str_off)))
			return TM_ID_NONE;
		s->str_cap = slots - 1 > TM_MAX_IDS ? TM_MAX_IDS : (uint32_t)(slots - 1);
		if (s->nstrings == 0)
			s->str_off[0] = 0;
	}
	pool_len = s->nstrings ? s->str_off[s->nstrings] : 0;
	str_pool_cap = s->str_pool_cap;
	if (grow((void **)&s->str_pool, &str_pool_cap, pool_len + len + 1, 1))
		return TM_ID_NONE;
	s->str_pool_cap = str_pool_cap;
	if (len)
		memcpy(s->str_pool + pool_len, data, len);
	s->str_pool[pool_len + len] = '\0';
	s->str_pool_len = pool_len + len + 1;
	id = s->nstrings++;
	s->str_off[id + 1] = s->str_pool_len;
	tm_index_insert_at(s->str_index, slot, id, h);
	return id;
}

/* ---- frames ------------------------------------------------------------- */

static uint32_t frame_hash(tm_id filename, uint32_t lineno)
{
	return (uint32_t)tm_hash_mix(((uint64_t)filename << 32) | lineno);
}

struct frame_probe {
	const struct tm_snapshot *s;
	struct tm_frame f;
};

static bool frame_eq(const void *ctx, tm_id id)
{
	const struct frame_probe *p = ctx;
	const struct tm_frame *v = &p->s->frames[id];

	return v->filename == p->f.filename && v->lineno == p->f.lineno;
}

static int frame_index_build(struct tm_snapshot *s)
{
	struct tm_index *ix = tm_index_new(s->nframes);
	uint32_t i;

	if (!ix)
		return -1;
	for (i = 0; i < s->nframes; i++) {
		struct frame_probe probe = { s, s->frames[i] };
		uint32_t h = frame_hash(probe.f.filename, probe.f.lineno);
		struct tm_index_slot *slot;

		if (tm_index_find(ix, h, frame_eq, &probe, &slot) == TM_ID_NONE)
			tm_index_insert_at(ix, slot, i, h);
	}
	s->frame_index = ix;
	return 0;
}

tm_id tm_intern_frame(struct tm_snapshot *s, tm_id filename, uint32_t lineno)
{
	struct frame_probe probe = { s, { filename, lineno } };
	struct tm_index_slot *slot;
	uint32_t h;
	tm_id id;

	if (filename >= s->nstrings)
		return TM_ID_NONE;
	if (!s->frame_index && frame_index_build(s))
		return TM_ID_NONE;
	if (tm_index_reserve_one(s->frame_index))
		return TM_ID_NONE;
	h = frame_hash(filename, lineno);
	id = tm_index_find(s->frame_index, h, frame_eq, &probe, &slot);
	if (id != TM_ID_NONE)
		return id;
	if (grow32((void **)&s->frames, &s->frames_cap, (uint64_t)s->nframes + 1,
		   sizeof(*s->frames)))
		return TM_ID_NONE;
	id = s->nframes++;
	s->frames[id] = probe.f;
	tm_index_insert_at(s->frame_index, slot, id, h);
	return id;
}

/* ---- tracebacks --------------------------------------------------------- */

static uint32_t tb_hash(const tm_id *frames, uint32_t nframe, uint32_t total_nframe)
{
	uint64_t h = tm_hash_mix(((uint64_t)nframe << 32) | total_nframe);
	uint32_t i;

	for (i = 0; i < nframe; i++)
		h = tm_hash_combine(h, frames[i]);
	return (uint32_t)h;
}

struct tb_probe {
	const struct tm_snapshot *s;
	const tm_id *frames;
	uint32_t nframe, total_nframe;
};

static bool tb_eq(const void *ctx, tm_id id)
{
	const struct tb_probe *p = ctx;
	const struct tm_traceback *v = &p->s->tracebacks[id];

	return v->nframe == p->nframe && v->total_nframe == p->total_nframe &&
	       memcmp(tm_traceback_frames(p->s, id), p->frames,
		      (size_t)p->nframe * sizeof(tm_id)) == 0;
}

static int tb_index_build(struct tm_snapshot *s)
{
	struct tm_index *ix = tm_index_new(s->ntracebacks);
	uint32_t i;

	if (!ix)
		return -1;
	for (i = 0; i < s->ntracebacks; i++) {
		const struct tm_traceback *tb = &s->tracebacks[i];
		struct tb_probe probe = { s, tm_traceback_frames(s, i), tb->nframe,
					  tb->total_nframe };
		uint32_t h = tb_hash(probe.frames, tb->nframe, tb->total_nframe);
		struct tm_index_slot *slot;

		if (tm_index_find(ix, h, tb_eq, &probe, &slot) == TM_ID_NONE)
			tm_index_insert_at(ix, slot, i, h);
	}
	s->tb_index = ix;
	return 0;
}

tm_id tm_intern_traceback(struct tm_snapshot *s, const tm_id *frames, uint32_t nframe,
			  uint32_t total_nframe)
{
	struct tb_probe probe = { s, frames, nframe, total_nframe };
	struct tm_index_slot *slot;
	uint32_t h, i, first;
	tm_id id;

	if (nframe == 0 || !frames)
		return TM_ID_NONE;
	for (i = 0; i < nframe; i++)
		if (frames[i] >= s->nframes)
			return TM_ID_NONE;
	if (!s->tb_index && tb_index_build(s))
		return TM_ID_NONE;
	if (tm_index_reserve_one(s->tb_index))
		return TM_ID_NONE;
	h = tb_hash(frames, nframe, total_nframe);
	id = tm_index_find(s->tb_index, h, tb_eq, &probe, &slot);
	if (id != TM_ID_NONE)
		return id;
	if ((uint64_t)s->nframe_ids + nframe > TM_MAX_IDS)
		return TM_ID_NONE;
	/* frames may point into frame_ids itself: copy before it moves */
	first = s->nframe_ids;
	if (s->frame_ids && frames >= s->frame_ids && frames < s->frame_ids + s->nframe_ids) {
		size_t off = (size_t)(frames - s->frame_ids);

		if (grow32((void **)&s->frame_ids, &s->frame_ids_cap,
			   (uint64_t)s->nframe_ids + nframe, sizeof(tm_id)))
			return TM_ID_NONE;
		memmove(s->frame_ids + first, s->frame_ids + off, (size_t)nframe * sizeof(tm_id));
	} else {
		if (grow32((void **)&s->frame_ids, &s->frame_ids_cap,
			   (uint64_t)s->nframe_ids + nframe, sizeof(tm_id)))
			return TM_ID_NONE;
		memcpy(s->frame_ids + first, frames, (size_t)nframe * sizeof(tm_id));
	}
	if (grow32((void **)&s->tracebacks, &s->tracebacks_cap, (uint64_t)s->ntracebacks + 1,
		   sizeof(*s->tracebacks)))
		return TM_ID_NONE;      /* the copied frame ids stay unused: harmless */
	s->nframe_ids += nframe;
	id = s->ntracebacks++;
	s->tracebacks[id] = (struct tm_traceback){ first, nframe, total_nframe };
	tm_index_insert_at(s->tb_index, slot, id, h);
	return id;
}

/* ---- traces and counters ------------------------------------------------ */

int tm_add_trace(struct tm_snapshot *s, uint32_t domain, uint64_t size, tm_id traceback,
		 uint64_t address)
{
	if (traceback >= s->ntracebacks)
		return -1;
	if (s->ntraces + 1 > s->traces_cap || !s->traces) {
		uint64_t cap = s->traces_cap;

		if (grow((void **)&s->traces, &cap, s->ntraces + 1, sizeof(*s->traces)))
			return -1;
		/* the counts of an aggregated snapshot have the capacity of the
		 * traces (a failure here leaves a larger traces block: harmless) */
		if (s->trace_counts) {
			uint64_t *counts = realloc(s->trace_counts, (size_t)cap * sizeof(*counts));

			if (!counts)
				return -1;
			s->trace_counts = counts;
		}
		s->traces_cap = cap;
	}
	if (s->trace_counts)
		s->trace_counts[s->ntraces] = 1;
	s->traces[s->ntraces++] = (struct tm_trace){ address, size, domain, traceback };
	return 0;
}

int tm_set_counter(struct tm_snapshot *s, const char *name, uint64_t value)
{
	struct tm_capture *c = &s->capture;
	struct tm_counter *counters;
	tm_id id = tm_intern_string(s, name, strlen(name));
	uint32_t i;

	if (id == TM_ID_NONE)
		return -1;
	for (i = 0; i < c->ncounters; i++) {
		if (c->counters[i].name == id) {
			c->counters[i].value = value;
			return 0;
		}
	}
	if (c->ncounters >= TM_MAX_IDS)
		return -1;
	/* counters are few (tens): no capacity field, grow by one */
	counters = realloc(c->counters, ((size_t)c->ncounters + 1) * sizeof(*counters));
	if (!counters)
		return -1;
	c->counters = counters;
	c->counters[c->ncounters++] = (struct tm_counter){ id, value };
	return 0;
}

/* ---- whole-snapshot queries -------------------------------------------- */

uint64_t tm_snapshot_block_count(const struct tm_snapshot *s)
{
	uint64_t n = 0, i;

	if (!s->trace_counts)
		return s->ntraces;
	for (i = 0; i < s->ntraces; i++)
		n += s->trace_counts[i];
	return n;
}

uint64_t tm_snapshot_total_size(const struct tm_snapshot *s)
{
	uint64_t total = 0, i;

	for (i = 0; i < s->ntraces; i++)
		total += s->traces[i].size;
	return total;
}

static bool str_id_ok(const struct tm_snapshot *s, tm_id id, bool optional)
{
	return id < s->nstrings || (optional && id == TM_ID_NONE);
}

/* The tables: strings, frames, frame ids, tracebacks. */
int tm_validate_tables(const struct tm_snapshot *s, struct tm_error *err)
{
	uint64_t i;

	/* strings: offsets rise, each string ends with its NUL, the pool ends there */
	if (s->nstrings > TM_MAX_IDS - 1 || s->nframes > TM_MAX_IDS ||
	    s->ntracebacks > TM_MAX_IDS || s->nframe_ids > TM_MAX_IDS) {
		tm_error_set(err, "snapshot tables exceed %u entries", TM_MAX_IDS);
		return -1;
	}
	if (s->nstrings) {
		if (!s->str_off || !s->str_pool) {
			tm_error_set(err, "snapshot has %u strings but no string table",
				     s->nstrings);
			return -1;
		}
		if (s->str_off[0] != 0) {
			tm_error_set(err, "string table does not start at offset 0");
			return -1;
		}
		for (i = 0; i < s->nstrings; i++) {
			uint64_t a = s->str_off[i], b = s->str_off[i + 1];

			if (b <= a || b > s->str_pool_len) {
				tm_error_set(err, "string %" PRIu64 " has a bad range [%" PRIu64
					     ", %" PRIu64 ") in a pool of %" PRIu64 " bytes",
					     i, a, b, s->str_pool_len);
				return -1;
			}
			if (b - a - 1 >= UINT32_MAX) {
				tm_error_set(err, "string %" PRIu64 " is too long", i);
				return -1;
			}
			if (s->str_pool[b - 1] != '\0') {
				tm_error_set(err, "string %" PRIu64 " is not NUL-terminated", i);
				return -1;
			}
		}
		if (s->str_off[s->nstrings] != s->str_pool_len) {
			tm_error_set(err, "string pool has %" PRIu64 " trailing bytes",
				     s->str_pool_len - s->str_off[s->nstrings]);
			return -1;
		}
	} else if (s->str_pool_len) {
		tm_error_set(err, "string pool has bytes but no strings");
		return -1;
	}
	if ((s->nframes && !s->frames) || (s->nframe_ids && !s->frame_ids) ||
	    (s->ntracebacks && !s->tracebacks) || (s->ntraces && !s->traces)) {
		tm_error_set(err, "snapshot has entries but no table to hold them");
		return -1;
	}
	for (i = 0; i < s->nframes; i++) {
		if (s->frames[i].filename >= s->nstrings) {
			tm_error_set(err, "frame %" PRIu64 " names string %u of %u", i,
				     s->frames[i].filename, s->nstrings);
			return -1;
		}
	}
	for (i = 0; i < s->nframe_ids; i++) {
		if (s->frame_ids[i] >= s->nframes) {
			tm_error_set(err, "traceback frame slot %" PRIu64 " names frame %u of %u",
				     i, s->frame_ids[i], s->nframes);
			return -1;
		}
	}
	for (i = 0; i < s->ntracebacks; i++) {
		const struct tm_traceback *tb = &s->tracebacks[i];

		if (tb->nframe == 0) {
			tm_error_set(err, "traceback %" PRIu64 " has no frame", i);
			return -1;
		}
		if ((uint64_t)tb->first + tb->nframe > s->nframe_ids) {
			tm_error_set(err, "traceback %" PRIu64 " frames [%u, +%u) exceed %u slots",
				     i, tb->first, tb->nframe, s->nframe_ids);
			return -1;
		}
	}
	return 0;
}

int tm_validate_trace_error(const struct tm_snapshot *s, uint64_t i, const struct tm_trace *t,
			    struct tm_error *err)
{
	if (t->traceback >= s->ntracebacks)
		tm_error_set(err, "trace %" PRIu64 " names traceback %u of %u", i, t->traceback,
			     s->ntracebacks);
	else
		tm_error_set(err, "total size of traces exceeds %" PRId64 " bytes", INT64_MAX);
	return -1;
}

static int validate_traces(const struct tm_snapshot *s, struct tm_error *err)
{
	uint64_t i, total = 0, blocks = 0;

	for (i = 0; i < s->ntraces; i++) {
		const struct tm_trace *t = &s->traces[i];
		uint64_t count = tm_trace_count(s, i);

		if (!tm_trace_ok(s, t, &total))
			return tm_validate_trace_error(s, i, t, err);
		/* counts are compared and subtracted as int64 too (count_diff) */
		if (count == 0) {
			tm_error_set(err, "trace %" PRIu64 " stands for no block", i);
			return -1;
		}
		if (count > (uint64_t)INT64_MAX - blocks) {
			tm_error_set(err, "the traces stand for more than %" PRId64 " blocks",
				     INT64_MAX);
			return -1;
		}
		blocks += count;
	}
	return 0;
}

/* Capture information and counters: what follows the traces in the native file. */
int tm_validate_capture(const struct tm_snapshot *s, struct tm_error *err)
{
	const struct tm_capture *c = &s->capture;
	uint64_t i;

	if (!str_id_ok(s, c->coverage_note, true) || !str_id_ok(s, c->command, true) ||
	    !str_id_ok(s, c->python, true)) {
		tm_error_set(err, "capture metadata names a missing string");
		return -1;
	}
	if (c->ncounters && !c->counters) {
		tm_error_set(err, "snapshot has %u counters but no counter table", c->ncounters);
		return -1;
	}
	for (i = 0; i < c->ncounters; i++) {
		if (!str_id_ok(s, c->counters[i].name, false)) {
			tm_error_set(err, "counter %" PRIu64 " names string %u of %u", i,
				     c->counters[i].name, s->nstrings);
			return -1;
		}
	}
	if ((unsigned)c->tier > TM_TIER_GROWTH || (unsigned)c->coverage > TM_COVERAGE_SAMPLED) {
		tm_error_set(err, "unknown capture tier %u or coverage %u", (unsigned)c->tier,
			     (unsigned)c->coverage);
		return -1;
	}
	return 0;
}

int tm_snapshot_validate(const struct tm_snapshot *s, struct tm_error *err)
{
	if (tm_validate_tables(s, err) || validate_traces(s, err) || tm_validate_capture(s, err))
		return -1;
	return 0;
}
