// SPDX-License-Identifier: MIT
/*
 * Snapshot.statistics() and Snapshot.compare_to() of Lib/tracemalloc.py.
 *
 * DESIGN. CPython (3.9 to 3.13 share Lib/tracemalloc.py byte for byte) groups
 * in Snapshot._group_by():
 *   - 'traceback': key = Traceback(frames), every stored frame; Traceback
 *     equality ignores total_nframe, so tracebacks that differ only there merge;
 *   - 'lineno':    key = Traceback(frames[:1]), the most recent frame;
 *   - 'filename':  key = Traceback(((frames[0][0], 0),)), its file, line 0;
 *   - cumulative ('lineno'/'filename' only): each frame of each trace adds the
 *     trace's size and a count of 1 to its own key, once per occurrence (a
 *     recursive traceback counts the same line several times);
 *   - otherwise ValueError "cumulative mode cannot by used with key type %r".
 * statistics() sorts reverse=True by (size, count, traceback); compare_to() by
 * (abs(size_diff), size, abs(count_diff), count, traceback). Traceback order is
 * tuple order of the OLDEST-FIRST frames: filename by code point (the same as
 * byte order of our UTF-8, surrogates included), then lineno; a prefix sorts
 * first. Keys are unique, so the sort is fully determined.
 * CPython 3.8 differs only in unpacking 3-tuple traces (no total_nframe); the
 * groups, numbers and order are the same.
 *
 * How we get there fast: traces name interned tracebacks, so one pass over the
 * traces sums size and count per traceback id (an array indexed by id); then each
 * used traceback is folded into its key once, through per-frame / per-string
 * memos; only the groups are sorted. A million traces over fifty thousand
 * tracebacks cost one linear pass plus fifty thousand folds.
 *
 * Keys are compared by CONTENT (string bytes and line numbers), never by id: a
 * loaded table may hold a value twice, and compare_to() matches groups of two
 * snapshots that have different string tables.
 *
 * Sums use uint64_t. Loaders cap a snapshot's total size at INT64_MAX, so
 * non-cumulative sums and all differences fit; a cumulative sum over deep
 * recursion could in theory exceed 2^64 where Python's integers would not.
 */
#include "snapshot/stats.h"
#include "snapshot/index.h"

#include <stdlib.h>
#include <string.h>

int tm_key_type_parse(const char *name, enum tm_key_type *out)
{
	static const struct { const char *name; enum tm_key_type k; } names[] = {
		{ "traceback", TM_KEY_TRACEBACK },
		{ "filename", TM_KEY_FILENAME },
		{ "lineno", TM_KEY_LINENO },
	};
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strcmp(name, names[i].name) == 0) {
			*out = names[i].k;
			return 0;
		}
	}
	return -1;
}

const char *tm_key_type_name(enum tm_key_type k)
{
	switch (k) {
	case TM_KEY_TRACEBACK:
		return "traceback";
	case TM_KEY_FILENAME:
		return "filename";
	case TM_KEY_LINENO:
		return "lineno";
	}
	return "?";
}

/* ---- grouping ----------------------------------------------------------- */

struct group {
	uint64_t size, count;
	uint32_t frame_start, nframe;   /* frames in grouping.frames */
	uint32_t hash;
};

/* The groups of one snapshot for one key type. */
struct grouping {
	struct group *groups;
	uint32_t ngroups, groups_cap;
	struct tm_stat_frame *frames;
	uint64_t nframes, frames_cap;
	struct tm_index *ix;
};

/* What one snapshot's grouping pass works with. */
struct group_ctx {
	const struct tm_snapshot *s;
	struct grouping *g;
	uint64_t *str_hash;             /* content hash per string id, 0 = not yet */
	uint32_t *memo;                 /* frame id or string id -> group, or NONE */
	struct tm_stat_frame *probe;    /* scratch key for traceback keys */
};

struct key_probe {
	const struct grouping *g;
	const struct tm_stat_frame *frames;
	uint32_t nframe;
};

static bool stat_frame_eq(const struct tm_stat_frame *a, const struct tm_stat_frame *b)
{
	return a->lineno == b->lineno && a->filename.len == b->filename.len &&
	       (a->filename.data == b->filename.data ||
		memcmp(a->filename.data, b->filename.data, a->filename.len) == 0);
}

static bool key_eq(const void *ctx, tm_id id)
{
	const struct key_probe *p = ctx;
	const struct group *gr = &p->g->groups[id];
	const struct tm_stat_frame *f = p->g->frames + gr->frame_start;
	uint32_t i;

	if (gr->nframe != p->nframe)
		return false;
	for (i = 0; i < p->nframe; i++)
		if (!stat_frame_eq(&f[i], &p->frames[i]))
			return false;
	return true;
}

static uint64_t string_hash(struct group_ctx *c, tm_id id)
{
	uint64_t h = c->str_hash[id];

	if (!h) {
		struct tm_str v = tm_string(c->s, id);

		h = tm_hash_bytes(v.data, v.len) | 1;   /* never 0: 0 marks "not yet" */
		c->str_hash[id] = h;
	}
	return h;
}

/* The hash of a key depends on content only, so that keys of two snapshots
 * with different string tables hash alike (compare_to relies on it). */
static uint64_t key_hash_frame(uint64_t h, uint64_t filename_hash, uint32_t lineno)
{
	return tm_hash_combine(tm_hash_combine(h, filename_hash), lineno);
}

static int grouping_init(struct grouping *g, uint32_t expected)
{
	memset(g, 0, sizeof(*g));
	g->ix = tm_index_new(expected);
	return g->ix ? 0 : -1;
}

static void grouping_destroy(struct grouping *g)
{
	free(g->groups);
	free(g->frames);
	tm_index_free(g->ix);
	memset(g, 0, sizeof(*g));
}

static int grow_array(void **arr, uint64_t *cap, uint64_t need, size_t elem)
{
	uint64_t new_cap;
	void *p;

	if (need <= *cap)
		return 0;
	new_cap = *cap < 64 ? 64 : *cap * 2;
	while (new_cap < need)
		new_cap *= 2;
	if (new_cap > SIZE_MAX / elem)
		return -1;
	p = realloc(*arr, (size_t)(new_cap * elem));
	if (!p)
		return -1;
	*arr = p;
	*cap = new_cap;
	return 0;
}

/* Finds the group of a key (frames most recent first), creating it empty. */
static tm_id group_find_or_add(struct grouping *g, const struct tm_stat_frame *frames,
			       uint32_t nframe, uint32_t hash)
{
	struct key_probe probe = { g, frames, nframe };
	struct tm_index_slot *slot;
	uint64_t cap;
	tm_id id;

	if (tm_index_reserve_one(g->ix))
		return TM_ID_NONE;
	id = tm_index_find(g->ix, hash, key_eq, &probe, &slot);
	if (id != TM_ID_NONE)
		return id;
	if (g->ngroups >= UINT32_MAX - 1)
		return TM_ID_NONE;
	cap = g->groups_cap;
	if (grow_array((void **)&g->groups, &cap, (uint64_t)g->ngroups + 1, sizeof(*g->groups)))
		return TM_ID_NONE;
	g->groups_cap = cap > UINT32_MAX ? UINT32_MAX : (uint32_t)cap;
	if (g->nframes + nframe > UINT32_MAX ||
	    grow_array((void **)&g->frames, &g->frames_cap, g->nframes + nframe, sizeof(*frames)))
		return TM_ID_NONE;
	memcpy(g->frames + g->nframes, frames, (size_t)nframe * sizeof(*frames));
	id = g->ngroups++;
	g->groups[id] = (struct group){ 0, 0, (uint32_t)g->nframes, nframe, hash };
	g->nframes += nframe;
	tm_index_insert_at(g->ix, slot, id, hash);
	return id;
}

/* The group of a one-frame key (filename, lineno), memoised per `memo_id`:
 * a frame id for 'lineno' keys, a string id for 'filename' keys. */
static tm_id single_frame_group(struct group_ctx *c, uint32_t memo_id, tm_id filename,
				uint32_t lineno)
{
	struct tm_stat_frame key;
	tm_id gid = c->memo[memo_id];

	if (gid != TM_ID_NONE)
		return gid;
	key.filename = tm_string(c->s, filename);
	key.lineno = lineno;
	gid = group_find_or_add(c->g, &key, 1,
				(uint32_t)key_hash_frame(1, string_hash(c, filename), lineno));
	c->memo[memo_id] = gid;
	return gid;
}

/* The group of one frame of a 'lineno' or 'filename' key. */
static tm_id frame_group(struct group_ctx *c, enum tm_key_type key_type, tm_id fid)
{
	const struct tm_frame *f = &c->s->frames[fid];

	if (key_type == TM_KEY_LINENO)
		return single_frame_group(c, fid, f->filename, f->lineno);
	return single_frame_group(c, f->filename, f->filename, 0);
}

static tm_id traceback_group(struct group_ctx *c, tm_id tb)
{
	const struct tm_traceback *t = &c->s->tracebacks[tb];
	const tm_id *fids = tm_traceback_frames(c->s, tb);
	uint64_t h = t->nframe;
	uint32_t i;

	for (i = 0; i < t->nframe; i++) {
		const struct tm_frame *f = &c->s->frames[fids[i]];

		c->probe[i].filename = tm_string(c->s, f->filename);
		c->probe[i].lineno = f->lineno;
		h = key_hash_frame(h, string_hash(c, f->filename), f->lineno);
	}
	return group_find_or_add(c->g, c->probe, t->nframe, (uint32_t)h);
}

static void *alloc_filled(uint64_t n, size_t elem, int byte)
{
	void *p;

	if (n > SIZE_MAX / elem)
		return NULL;
	p = malloc(n ? (size_t)(n * elem) : 1);
	if (p)
		memset(p, byte, (size_t)(n * elem));
	return p;
}

/* Snapshot._group_by(key_type, cumulative) into g. 0 or -1 with err. */
static int group_by(const struct tm_snapshot *s, enum tm_key_type key_type, bool cumulative,
		    struct grouping *g, struct tm_error *err)
{
	struct group_ctx c = { .s = s, .g = g };
	uint64_t *tb_size = NULL, *tb_count = NULL, i;
	uint32_t max_nframe = 1, memo_n, tb;
	int ret = -1;

	if (grouping_init(g, 1024))
		goto oom;
	/* one pass over the traces: sums per traceback id */
	tb_size = alloc_filled(s->ntracebacks, sizeof(*tb_size), 0);
	tb_count = alloc_filled(s->ntracebacks, sizeof(*tb_count), 0);
	c.str_hash = alloc_filled(s->nstrings, sizeof(*c.str_hash), 0);
	memo_n = key_type == TM_KEY_LINENO ? s->nframes : s->nstrings;
	c.memo = alloc_filled(memo_n, sizeof(*c.memo), 0xff);
	if (!tb_size || !tb_count || !c.str_hash || !c.memo)
		goto oom;
	for (i = 0; i < s->ntraces; i++) {
		tm_id t = s->traces[i].traceback;

		tb_size[t] += s->traces[i].size;
		tb_count[t]++;
	}
	if (key_type == TM_KEY_TRACEBACK) {
		for (tb = 0; tb < s->ntracebacks; tb++)
			if (tb_count[tb] && s->tracebacks[tb].nframe > max_nframe)
				max_nframe = s->tracebacks[tb].nframe;
		c.probe = malloc((size_t)max_nframe * sizeof(*c.probe));
		if (!c.probe)
			goto oom;
	}

	/* then fold each used traceback into its key(s) */
	for (tb = 0; tb < s->ntracebacks; tb++) {
		const struct tm_traceback *t = &s->tracebacks[tb];
		const tm_id *fids;
		uint32_t k, nkeys = cumulative ? t->nframe : 1;

		if (!tb_count[tb])
			continue;
		fids = tm_traceback_frames(s, tb);
		for (k = 0; k < nkeys; k++) {
			tm_id gid = key_type == TM_KEY_TRACEBACK ? traceback_group(&c, tb)
								 : frame_group(&c, key_type, fids[k]);

			if (gid == TM_ID_NONE)
				goto oom;
			g->groups[gid].size += tb_size[tb];
			g->groups[gid].count += tb_count[tb];
		}
	}
	ret = 0;
	goto out;
oom:
	tm_error_set(err, "out of memory while grouping %llu traces",
		     (unsigned long long)s->ntraces);
out:
	free(tb_size);
	free(tb_count);
	free(c.str_hash);
	free(c.memo);
	free(c.probe);
	return ret;
}

static int check_key_type(enum tm_key_type key_type, bool cumulative, struct tm_error *err)
{
	if (key_type != TM_KEY_TRACEBACK && key_type != TM_KEY_FILENAME &&
	    key_type != TM_KEY_LINENO) {
		tm_error_set(err, "unknown key_type: %d", (int)key_type);
		return -1;
	}
	if (cumulative && key_type == TM_KEY_TRACEBACK) {
		/* CPython's message, typo included */
		tm_error_set(err, "cumulative mode cannot by used with key type '%s'",
			     tm_key_type_name(key_type));
		return -1;
	}
	return 0;
}

/* ---- ordering ----------------------------------------------------------- */

/* Python's Traceback.__lt__ as a three-way compare: tuples of OLDEST-FIRST
 * (filename, lineno) frames; ours are stored most recent first. */
static int traceback_cmp(const struct tm_stat_frame *a, uint32_t na,
			 const struct tm_stat_frame *b, uint32_t nb)
{
	uint32_t i, n = na < nb ? na : nb;

	for (i = 0; i < n; i++) {
		const struct tm_stat_frame *fa = &a[na - 1 - i], *fb = &b[nb - 1 - i];
		uint32_t la = fa->filename.len, lb = fb->filename.len;
		int r = memcmp(fa->filename.data, fb->filename.data, la < lb ? la : lb);

		if (r)
			return r < 0 ? -1 : 1;
		if (la != lb)
			return la < lb ? -1 : 1;
		if (fa->lineno != fb->lineno)
			return fa->lineno < fb->lineno ? -1 : 1;
	}
	return na == nb ? 0 : (na < nb ? -1 : 1);
}

#define CMP_DESC(x, y) do { if ((x) != (y)) return (x) > (y) ? -1 : 1; } while (0)

/* sort(reverse=True, key=(size, count, traceback)) */
static int statistic_cmp(const void *pa, const void *pb)
{
	const struct tm_statistic *a = pa, *b = pb;

	CMP_DESC(a->size, b->size);
	CMP_DESC(a->count, b->count);
	return -traceback_cmp(a->frames, a->nframe, b->frames, b->nframe);
}

static uint64_t abs_i64(int64_t v)
{
	return v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
}

/* sort(reverse=True, key=(abs(size_diff), size, abs(count_diff), count, traceback)) */
static int statistic_diff_cmp(const void *pa, const void *pb)
{
	const struct tm_statistic_diff *a = pa, *b = pb;

	CMP_DESC(abs_i64(a->size_diff), abs_i64(b->size_diff));
	CMP_DESC(a->size, b->size);
	CMP_DESC(abs_i64(a->count_diff), abs_i64(b->count_diff));
	CMP_DESC(a->count, b->count);
	return -traceback_cmp(a->frames, a->nframe, b->frames, b->nframe);
}

/* ---- public ------------------------------------------------------------- */

int tm_statistics(const struct tm_snapshot *s, enum tm_key_type key_type, bool cumulative,
		  struct tm_stats *out, struct tm_error *err)
{
	struct grouping g;
	uint32_t i;

	memset(out, 0, sizeof(*out));
	if (check_key_type(key_type, cumulative, err))
		return -1;
	if (group_by(s, key_type, cumulative, &g, err)) {
		grouping_destroy(&g);
		return -1;
	}
	out->stats = alloc_filled(g.ngroups, sizeof(*out->stats), 0);
	if (!out->stats) {
		grouping_destroy(&g);
		tm_error_set(err, "out of memory for %u statistics", g.ngroups);
		return -1;
	}
	for (i = 0; i < g.ngroups; i++) {
		const struct group *gr = &g.groups[i];

		out->stats[i] = (struct tm_statistic){ g.frames + gr->frame_start, gr->nframe,
						       gr->size, gr->count };
	}
	qsort(out->stats, g.ngroups, sizeof(*out->stats), statistic_cmp);
	out->key_type = key_type;
	out->cumulative = cumulative;
	out->n = g.ngroups;
	out->frame_storage = g.frames;  /* the statistics point into it: keep it */
	g.frames = NULL;
	grouping_destroy(&g);
	return 0;
}

/* _compare_grouped_stats(): new groups with their old counterpart (matched by
 * content), then the groups that exist only in the old snapshot. */
int tm_compare_to(const struct tm_snapshot *new_snap, const struct tm_snapshot *old_snap,
		  enum tm_key_type key_type, bool cumulative, struct tm_stats *out,
		  struct tm_error *err)
{
	struct grouping gn = { 0 }, go = { 0 };
	struct tm_stat_frame *storage = NULL;
	bool *matched = NULL;
	size_t n = 0;
	uint32_t i;
	int ret = -1;

	memset(out, 0, sizeof(*out));
	if (check_key_type(key_type, cumulative, err))
		return -1;
	if (group_by(new_snap, key_type, cumulative, &gn, err) ||
	    group_by(old_snap, key_type, cumulative, &go, err))
		goto out;
	/* one frame array for both sides; old-side frames follow the new ones */
	storage = alloc_filled(gn.nframes + go.nframes, sizeof(*storage), 0);
	matched = alloc_filled(go.ngroups, sizeof(*matched), 0);
	out->diffs = alloc_filled((uint64_t)gn.ngroups + go.ngroups, sizeof(*out->diffs), 0);
	if (!storage || !matched || !out->diffs) {
		tm_error_set(err, "out of memory for %u statistics", gn.ngroups + go.ngroups);
		goto out;
	}
	if (gn.nframes)
		memcpy(storage, gn.frames, (size_t)gn.nframes * sizeof(*storage));
	if (go.nframes)
		memcpy(storage + gn.nframes, go.frames, (size_t)go.nframes * sizeof(*storage));

	for (i = 0; i < gn.ngroups; i++) {
		const struct group *gr = &gn.groups[i];
		struct key_probe probe = { &go, gn.frames + gr->frame_start, gr->nframe };
		tm_id old = tm_index_find(go.ix, gr->hash, key_eq, &probe, NULL);
		uint64_t old_size = 0, old_count = 0;

		if (old != TM_ID_NONE) {
			matched[old] = true;
			old_size = go.groups[old].size;
			old_count = go.groups[old].count;
		}
		out->diffs[n++] = (struct tm_statistic_diff){
			storage + gr->frame_start, gr->nframe,
			gr->size, (int64_t)(gr->size - old_size),
			gr->count, (int64_t)(gr->count - old_count),
		};
	}
	for (i = 0; i < go.ngroups; i++) {
		const struct group *gr = &go.groups[i];

		if (matched[i])
			continue;
		out->diffs[n++] = (struct tm_statistic_diff){
			storage + gn.nframes + gr->frame_start, gr->nframe,
			0, -(int64_t)gr->size, 0, -(int64_t)gr->count,
		};
	}
	qsort(out->diffs, n, sizeof(*out->diffs), statistic_diff_cmp);
	out->key_type = key_type;
	out->cumulative = cumulative;
	out->is_diff = true;
	out->n = n;
	out->frame_storage = storage;
	storage = NULL;
	ret = 0;
out:
	if (ret) {
		free(out->diffs);
		out->diffs = NULL;
	}
	free(storage);
	free(matched);
	grouping_destroy(&gn);
	grouping_destroy(&go);
	return ret;
}

void tm_stats_free(struct tm_stats *st)
{
	if (!st)
		return;
	free(st->stats);
	free(st->diffs);
	free(st->frame_storage);
	memset(st, 0, sizeof(*st));
}
