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
 * traces sums size and count per traceback id (an array indexed by id; a trace
 * of an aggregated snapshot adds its count of blocks, so both loads give the
 * same sums); then each
 * used traceback is folded into its key once, through per-frame / per-string
 * memos; only the groups are sorted. A million traces over fifty thousand
 * tracebacks cost one linear pass plus fifty thousand folds.
 *
 * Keys are compared by CONTENT, never by snapshot id: a loaded table may hold a
 * value twice, and compare_to() matches groups of two snapshots that have
 * different string tables. So one analysis (a statistics() or compare_to()
 * call) first interns the filenames it meets by content into "file slots" shared
 * by both snapshots; from then on a key is a sequence of (slot, lineno) integer
 * pairs. For the order, the distinct filenames are sorted once by code point
 * and every slot gets its rank: comparing keys is then comparing integers, and
 * the groups are radix-sorted on (size, count, ..., rank, lineno) -- only keys of
 * several frames ('traceback') fall back to a comparison sort within runs of
 * equal numbers.
 *
 * Sums use uint64_t. Loaders cap a snapshot's total size at INT64_MAX, so
 * non-cumulative sums and their differences fit; cumulative sums over deep
 * recursion could in theory exceed 2^63 where Python's integers would not.
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

/* ---- file slots: the filenames of one analysis, by content ------------- */

struct files {
	struct tm_str *str;             /* slot -> the string (in the snapshot that
					 * brought it first) */
	uint32_t n, cap;
	struct tm_index *ix;            /* by content */
	uint32_t *rank;                 /* slot -> rank in code point order */
};

struct file_probe {
	const struct files *files;
	struct tm_str s;
};

static bool file_eq(const void *ctx, tm_id slot)
{
	const struct file_probe *p = ctx;
	struct tm_str v = p->files->str[slot];

	return v.len == p->s.len && memcmp(v.data, p->s.data, v.len) == 0;
}

static void files_destroy(struct files *f)
{
	free(f->str);
	free(f->rank);
	tm_index_free(f->ix);
	memset(f, 0, sizeof(*f));
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

static int grow_array32(void **arr, uint32_t *cap, uint64_t need, size_t elem)
{
	uint64_t c = *cap;

	if (need >= UINT32_MAX || grow_array(arr, &c, need, elem))
		return -1;
	*cap = c >= UINT32_MAX ? UINT32_MAX - 1 : (uint32_t)c;
	return 0;
}

/* The slot of a filename, added if new. TM_ID_NONE on allocation failure. */
static tm_id file_slot(struct files *f, struct tm_str s)
{
	struct file_probe probe = { f, s };
	struct tm_index_slot *islot;
	uint32_t h = (uint32_t)tm_hash_bytes(s.data, s.len);
	tm_id id;

	if (!f->ix && !(f->ix = tm_index_new(256)))
		return TM_ID_NONE;
	if (tm_index_reserve_one(f->ix))
		return TM_ID_NONE;
	id = tm_index_find(f->ix, h, file_eq, &probe, &islot);
	if (id != TM_ID_NONE)
		return id;
	if (grow_array32((void **)&f->str, &f->cap, (uint64_t)f->n + 1, sizeof(*f->str)))
		return TM_ID_NONE;
	id = f->n++;
	f->str[id] = s;
	tm_index_insert_at(f->ix, islot, id, h);
	return id;
}

static int str_order(const void *pa, const void *pb, void *ctx)
{
	const struct tm_str *str = ctx;

	return tm_str_cmp(str[*(const uint32_t *)pa], str[*(const uint32_t *)pb]);
}

/* rank[slot] = position of the slot's string in code point order (= byte order
 * of UTF-8, surrogatepass included; a prefix first). Slots are distinct. */
static int files_rank(struct files *f)
{
	uint32_t *order = malloc(((size_t)f->n + 1) * sizeof(*order)), i;

	f->rank = malloc(((size_t)f->n + 1) * sizeof(*f->rank));
	if (!order || !f->rank) {
		free(order);
		return -1;
	}
	for (i = 0; i < f->n; i++)
		order[i] = i;
	qsort_r(order, f->n, sizeof(*order), str_order, f->str);
	for (i = 0; i < f->n; i++)
		f->rank[order[i]] = i;
	free(order);
	return 0;
}

/* ---- grouping ----------------------------------------------------------- */

/* One frame of a key: a file slot and a line number (no padding: memcmp-able). */
struct key_frame {
	uint32_t file;
	uint32_t lineno;
};

struct group {
	uint64_t size, count;
	uint32_t frame_start, nframe;   /* frames in grouping.frames, most recent first */
	uint32_t hash;
};

/* The groups of one snapshot for one key type. */
struct grouping {
	struct group *groups;
	uint32_t ngroups, groups_cap;
	struct key_frame *frames;
	uint64_t nframes, frames_cap;
	struct tm_index *ix;
};

/* What one snapshot's grouping pass works with. */
struct group_ctx {
	const struct tm_snapshot *s;
	struct files *files;
	struct grouping *g;
	uint32_t *str_file;             /* string id -> file slot, or NONE */
	uint32_t *memo;                 /* frame id or string id -> group, or NONE */
	struct key_frame *probe;        /* scratch key for traceback keys */
};

struct key_probe {
	const struct grouping *g;
	const struct key_frame *frames;
	uint32_t nframe;
};

static bool key_eq(const void *ctx, tm_id id)
{
	const struct key_probe *p = ctx;
	const struct group *gr = &p->g->groups[id];

	return gr->nframe == p->nframe &&
	       memcmp(p->g->frames + gr->frame_start, p->frames,
		      (size_t)p->nframe * sizeof(*p->frames)) == 0;
}

/* Slots are shared by the groupings of one analysis, so a key hashes alike in
 * both snapshots of a compare_to(). */
static uint32_t key_hash(const struct key_frame *frames, uint32_t nframe)
{
	uint64_t h = nframe;
	uint32_t i;

	for (i = 0; i < nframe; i++)
		h = tm_hash_combine(h, (uint64_t)frames[i].file << 32 | frames[i].lineno);
	return (uint32_t)h;
}

/* Room for `expected` groups of `frames` key frames in all, from the start:
 * neither the index nor the arrays grow while the keys are folded. */
static int grouping_init(struct grouping *g, uint32_t expected, uint64_t frames)
{
	memset(g, 0, sizeof(*g));
	g->ix = tm_index_new(expected);
	if (!g->ix || grow_array32((void **)&g->groups, &g->groups_cap, expected ? expected : 1,
				   sizeof(*g->groups)) ||
	    grow_array((void **)&g->frames, &g->frames_cap, frames ? frames : 1,
		       sizeof(*g->frames)))
		return -1;
	return 0;
}

static void grouping_destroy(struct grouping *g)
{
	free(g->groups);
	free(g->frames);
	tm_index_free(g->ix);
	memset(g, 0, sizeof(*g));
}

/* Finds the group of a key, creating it empty. TM_ID_NONE on failure. */
static tm_id group_find_or_add(struct grouping *g, const struct key_frame *frames,
			       uint32_t nframe)
{
	struct key_probe probe = { g, frames, nframe };
	struct tm_index_slot *slot;
	uint32_t hash = key_hash(frames, nframe);
	tm_id id;

	if (tm_index_reserve_one(g->ix))
		return TM_ID_NONE;
	id = tm_index_find(g->ix, hash, key_eq, &probe, &slot);
	if (id != TM_ID_NONE)
		return id;
	if (grow_array32((void **)&g->groups, &g->groups_cap, (uint64_t)g->ngroups + 1,
			 sizeof(*g->groups)) ||
	    g->nframes + nframe > UINT32_MAX ||
	    grow_array((void **)&g->frames, &g->frames_cap, g->nframes + nframe, sizeof(*frames)))
		return TM_ID_NONE;
	memcpy(g->frames + g->nframes, frames, (size_t)nframe * sizeof(*frames));
	id = g->ngroups++;
	g->groups[id] = (struct group){ 0, 0, (uint32_t)g->nframes, nframe, hash };
	g->nframes += nframe;
	tm_index_insert_at(g->ix, slot, id, hash);
	return id;
}

static tm_id ctx_file(struct group_ctx *c, tm_id str)
{
	if (c->str_file[str] == TM_ID_NONE)
		c->str_file[str] = file_slot(c->files, tm_string(c->s, str));
	return c->str_file[str];
}

/* The group of one frame of a 'lineno' key (memo by frame id) or a 'filename'
 * key (memo by string id; line 0). */
static tm_id frame_group(struct group_ctx *c, enum tm_key_type key_type, tm_id fid)
{
	const struct tm_frame *f = &c->s->frames[fid];
	uint32_t memo_id = key_type == TM_KEY_LINENO ? fid : f->filename;
	struct key_frame key;

	if (c->memo[memo_id] != TM_ID_NONE)
		return c->memo[memo_id];
	key.file = ctx_file(c, f->filename);
	key.lineno = key_type == TM_KEY_LINENO ? f->lineno : 0;
	if (key.file == TM_ID_NONE)
		return TM_ID_NONE;
	c->memo[memo_id] = group_find_or_add(c->g, &key, 1);
	return c->memo[memo_id];
}

static tm_id traceback_group(struct group_ctx *c, tm_id tb)
{
	const struct tm_traceback *t = &c->s->tracebacks[tb];
	const tm_id *fids = tm_traceback_frames(c->s, tb);
	uint32_t i;

	for (i = 0; i < t->nframe; i++) {
		const struct tm_frame *f = &c->s->frames[fids[i]];

		c->probe[i].file = ctx_file(c, f->filename);
		c->probe[i].lineno = f->lineno;
		if (c->probe[i].file == TM_ID_NONE)
			return TM_ID_NONE;
	}
	return group_find_or_add(c->g, c->probe, t->nframe);
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

/* Sums of one traceback id over the traces. */
struct tb_sum {
	uint64_t size, count;
};

/* Snapshot._group_by(key_type, cumulative) into g. 0 or -1 with err. */
static int group_by(const struct tm_snapshot *s, enum tm_key_type key_type, bool cumulative,
		    struct files *files, struct grouping *g, struct tm_error *err)
{
	struct group_ctx c = { .s = s, .files = files, .g = g };
	struct tb_sum *sum = NULL;
	uint32_t max_nframe = 1, memo_n, tb, used = 0, bound;
	uint64_t i, used_frames = 0;
	int ret = -1;

	memset(g, 0, sizeof(*g));
	/* one pass over the traces: sums per traceback id */
	sum = alloc_filled(s->ntracebacks, sizeof(*sum), 0);
	c.str_file = alloc_filled(s->nstrings, sizeof(*c.str_file), 0xff);
	memo_n = key_type == TM_KEY_LINENO ? s->nframes : s->nstrings;
	c.memo = alloc_filled(memo_n, sizeof(*c.memo), 0xff);
	if (!sum || !c.str_file || !c.memo)
		goto oom;
	for (i = 0; i < s->ntraces; i++) {
		struct tb_sum *x = &sum[s->traces[i].traceback];

		x->size += s->traces[i].size;
		x->count += tm_trace_count(s, i);       /* blocks: see trace_counts */
	}
	for (tb = 0; tb < s->ntracebacks; tb++) {
		if (!sum[tb].count)
			continue;
		used++;
		used_frames += s->tracebacks[tb].nframe;
		if (s->tracebacks[tb].nframe > max_nframe)
			max_nframe = s->tracebacks[tb].nframe;
	}
	/* at most one group per key of a used traceback, and per distinct frame
	 * or file the keys are made of */
	bound = key_type == TM_KEY_TRACEBACK ? used
		: key_type == TM_KEY_LINENO ? s->nframes : s->nstrings;
	if ((cumulative ? used_frames : used) < bound)
		bound = (uint32_t)(cumulative ? used_frames : used);
	if (grouping_init(g, bound, key_type == TM_KEY_TRACEBACK ? used_frames : bound))
		goto oom;
	if (key_type == TM_KEY_TRACEBACK) {
		c.probe = malloc((size_t)max_nframe * sizeof(*c.probe));
		if (!c.probe)
			goto oom;
	}

	/* then fold each used traceback into its key(s) */
	for (tb = 0; tb < s->ntracebacks; tb++) {
		const struct tm_traceback *t = &s->tracebacks[tb];
		const tm_id *fids;
		uint32_t k, nkeys = cumulative ? t->nframe : 1;

		if (!sum[tb].count)
			continue;
		fids = tm_traceback_frames(s, tb);
		for (k = 0; k < nkeys; k++) {
			tm_id gid = key_type == TM_KEY_TRACEBACK ? traceback_group(&c, tb)
								 : frame_group(&c, key_type, fids[k]);

			if (gid == TM_ID_NONE)
				goto oom;
			g->groups[gid].size += sum[tb].size;
			g->groups[gid].count += sum[tb].count;
		}
	}
	ret = 0;
	goto out;
oom:
	tm_error_set(err, "out of memory while grouping %llu traces",
		     (unsigned long long)s->ntraces);
out:
	free(sum);
	free(c.str_file);
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

/*
 * The sort: items (indexes) in DESCENDING order of nkeys unsigned integer keys,
 * most significant first -- Python's sort(reverse=True) over a tuple of
 * numbers. An LSD radix sort, one byte per pass, that skips the bytes in which
 * all items agree (sizes rarely use more than four bytes, counts one or two).
 */
#define MAX_SORT_KEYS 6

static int radix_sort_desc(uint32_t *items, size_t n, uint64_t *const keys[], unsigned nkeys)
{
	uint32_t *tmp = malloc((n ? n : 1) * sizeof(*tmp));
	size_t i, count[256];
	int k;

	if (!tmp)
		return -1;
	for (k = (int)nkeys - 1; k >= 0; k--) {
		const uint64_t *key = keys[k];
		uint64_t all_or = 0, all_and = ~0ULL;
		unsigned shift;

		for (i = 0; i < n; i++) {
			all_or |= key[items[i]];
			all_and &= key[items[i]];
		}
		for (shift = 0; shift < 64; shift += 8) {
			size_t pos = 0;

			if ((((all_or ^ all_and) >> shift) & 0xff) == 0)
				continue;       /* every item has the same byte here */
			memset(count, 0, sizeof(count));
			for (i = 0; i < n; i++)
				count[0xff - ((key[items[i]] >> shift) & 0xff)]++;
			for (i = 0; i < 256; i++) {
				size_t c = count[i];

				count[i] = pos;
				pos += c;
			}
			for (i = 0; i < n; i++)
				tmp[count[0xff - ((key[items[i]] >> shift) & 0xff)]++] = items[i];
			memcpy(items, tmp, n * sizeof(*items));
		}
	}
	free(tmp);
	return 0;
}

/* What the traceback comparison of several-frame keys needs. */
struct tb_order {
	const struct key_frame *const *item_frames;     /* most recent first */
	const uint32_t *nframe;
	const uint32_t *rank;           /* file slot -> rank */
};

/* Python's Traceback.__lt__ as a three-way compare, reversed (descending):
 * tuples of OLDEST-FIRST (filename, lineno) frames, ours stored most recent
 * first; a prefix sorts first. */
static int traceback_desc(const void *pa, const void *pb, void *ctx)
{
	const struct tb_order *o = ctx;
	uint32_t a = *(const uint32_t *)pa, b = *(const uint32_t *)pb;
	const struct key_frame *fa = o->item_frames[a], *fb = o->item_frames[b];
	uint32_t na = o->nframe[a], nb = o->nframe[b], i, n = na < nb ? na : nb;

	for (i = 0; i < n; i++) {
		const struct key_frame *x = &fa[na - 1 - i], *y = &fb[nb - 1 - i];

		if (x->file != y->file)
			return o->rank[x->file] < o->rank[y->file] ? 1 : -1;
		if (x->lineno != y->lineno)
			return x->lineno < y->lineno ? 1 : -1;
	}
	return na == nb ? 0 : (na < nb ? 1 : -1);
}

/*
 * Sorts items by the numeric keys, then by traceback, all descending. Keys of
 * one frame are numbers too (rank of the file, line); longer keys are compared
 * as tracebacks within runs of equal numbers.
 */
static int sort_items(uint32_t *items, size_t n, uint64_t *const numeric[], unsigned nkeys,
		      const struct key_frame *const *item_frames, const uint32_t *nframe,
		      const struct files *files, bool single_frame)
{
	struct tb_order o = { .nframe = nframe, .rank = files->rank, .item_frames = item_frames };
	uint64_t *file_key = NULL, *line_key = NULL, *keys[MAX_SORT_KEYS];
	size_t i, run;
	int ret = -1;

	memcpy(keys, numeric, nkeys * sizeof(*keys));

	if (single_frame) {
		file_key = malloc((n ? n : 1) * sizeof(*file_key));
		line_key = malloc((n ? n : 1) * sizeof(*line_key));
		if (!file_key || !line_key)
			goto out;
		for (i = 0; i < n; i++) {
			file_key[i] = files->rank[item_frames[i][0].file];
			line_key[i] = item_frames[i][0].lineno;
		}
		keys[nkeys++] = file_key;
		keys[nkeys++] = line_key;
	}
	if (radix_sort_desc(items, n, keys, nkeys))
		goto out;
	if (!single_frame) {
		for (i = 0; i < n; i = run) {
			unsigned k;

			for (run = i + 1; run < n; run++) {
				for (k = 0; k < nkeys; k++)
					if (keys[k][items[run]] != keys[k][items[i]])
						break;
				if (k < nkeys)
					break;
			}
			if (run - i > 1)
				qsort_r(items + i, run - i, sizeof(*items), traceback_desc, &o);
		}
	}
	ret = 0;
out:
	free(file_key);
	free(line_key);
	return ret;
}

/* ---- public ------------------------------------------------------------- */

/* The statistics' frames: key frames turned into strings and lines. */
static struct tm_stat_frame *stat_frames(const struct files *files, const struct grouping *g1,
					 const struct grouping *g2)
{
	uint64_t n1 = g1->nframes, n2 = g2 ? g2->nframes : 0, i;
	struct tm_stat_frame *out = alloc_filled(n1 + n2, sizeof(*out), 0);

	if (!out)
		return NULL;
	for (i = 0; i < n1 + n2; i++) {
		const struct key_frame *k = i < n1 ? &g1->frames[i] : &g2->frames[i - n1];

		out[i].filename = files->str[k->file];
		out[i].lineno = k->lineno;
	}
	return out;
}

int tm_statistics(const struct tm_snapshot *s, enum tm_key_type key_type, bool cumulative,
		  struct tm_stats *out, struct tm_error *err)
{
	struct files files = { 0 };
	struct grouping g = { 0 };
	struct tm_stat_frame *storage = NULL;
	const struct key_frame **item_frames = NULL;
	uint64_t *keys[MAX_SORT_KEYS] = { NULL };
	uint32_t *items = NULL, *nframe = NULL, i;
	int ret = -1;

	memset(out, 0, sizeof(*out));
	if (check_key_type(key_type, cumulative, err))
		return -1;
	if (group_by(s, key_type, cumulative, &files, &g, err))
		goto out;
	items = alloc_filled(g.ngroups, sizeof(*items), 0);
	nframe = alloc_filled(g.ngroups, sizeof(*nframe), 0);
	item_frames = alloc_filled(g.ngroups, sizeof(*item_frames), 0);
	keys[0] = alloc_filled(g.ngroups, sizeof(uint64_t), 0);
	keys[1] = alloc_filled(g.ngroups, sizeof(uint64_t), 0);
	out->stats = alloc_filled(g.ngroups, sizeof(*out->stats), 0);
	storage = stat_frames(&files, &g, NULL);
	if (!items || !nframe || !item_frames || !keys[0] || !keys[1] || !out->stats || !storage ||
	    files_rank(&files))
		goto oom;
	/* sort(reverse=True, key=(size, count, traceback)) */
	for (i = 0; i < g.ngroups; i++) {
		items[i] = i;
		keys[0][i] = g.groups[i].size;
		keys[1][i] = g.groups[i].count;
		nframe[i] = g.groups[i].nframe;
		item_frames[i] = g.frames + g.groups[i].frame_start;
	}
	if (sort_items(items, g.ngroups, keys, 2, item_frames, nframe, &files,
		       key_type != TM_KEY_TRACEBACK))
		goto oom;
	for (i = 0; i < g.ngroups; i++) {
		const struct group *gr = &g.groups[items[i]];

		out->stats[i] = (struct tm_statistic){ storage + gr->frame_start, gr->nframe,
						       gr->size, gr->count };
	}
	out->key_type = key_type;
	out->cumulative = cumulative;
	out->n = g.ngroups;
	out->frame_storage = storage;   /* the statistics point into it */
	storage = NULL;
	ret = 0;
	goto out;
oom:
	tm_error_set(err, "out of memory for %u statistics", g.ngroups);
out:
	if (ret) {
		free(out->stats);
		out->stats = NULL;
	}
	free(storage);
	free(items);
	free(nframe);
	free(item_frames);
	for (i = 0; i < MAX_SORT_KEYS; i++)
		free(keys[i]);
	grouping_destroy(&g);
	files_destroy(&files);
	return ret;
}

static uint64_t abs_i64(int64_t v)
{
	return v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
}

/* _compare_grouped_stats(): new groups with their old counterpart (matched by
 * content), then the groups that exist only in the old snapshot. */
int tm_compare_to(const struct tm_snapshot *new_snap, const struct tm_snapshot *old_snap,
		  enum tm_key_type key_type, bool cumulative, struct tm_stats *out,
		  struct tm_error *err)
{
	struct files files = { 0 };
	struct grouping gn = { 0 }, go = { 0 };
	struct tm_stat_frame *storage = NULL;
	const struct key_frame **item_frames = NULL;
	uint64_t *keys[MAX_SORT_KEYS] = { NULL };
	uint32_t *items = NULL, *nframe = NULL;
	bool *matched = NULL;
	size_t n = 0, total, i;
	int ret = -1;

	memset(out, 0, sizeof(*out));
	if (check_key_type(key_type, cumulative, err))
		return -1;
	/* both groupings share the file slots: equal keys are equal integers */
	if (group_by(new_snap, key_type, cumulative, &files, &gn, err) ||
	    group_by(old_snap, key_type, cumulative, &files, &go, err))
		goto out;
	total = (size_t)gn.ngroups + go.ngroups;
	matched = alloc_filled(go.ngroups, sizeof(*matched), 0);
	items = alloc_filled(total, sizeof(*items), 0);
	nframe = alloc_filled(total, sizeof(*nframe), 0);
	item_frames = alloc_filled(total, sizeof(*item_frames), 0);
	for (i = 0; i < 4; i++)
		keys[i] = alloc_filled(total, sizeof(uint64_t), 0);
	out->diffs = alloc_filled(total, sizeof(*out->diffs), 0);
	/* one frame array for both sides; old-side frames follow the new ones */
	storage = stat_frames(&files, &gn, &go);
	if (!matched || !items || !nframe || !item_frames || !keys[0] || !keys[1] ||
	    !keys[2] || !keys[3] || !out->diffs || !storage || files_rank(&files))
		goto oom;

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
		out->diffs[n] = (struct tm_statistic_diff){
			storage + gr->frame_start, gr->nframe,
			gr->size, (int64_t)(gr->size - old_size),
			gr->count, (int64_t)(gr->count - old_count),
		};
		item_frames[n++] = gn.frames + gr->frame_start;
	}
	for (i = 0; i < go.ngroups; i++) {
		const struct group *gr = &go.groups[i];

		if (matched[i])
			continue;
		out->diffs[n] = (struct tm_statistic_diff){
			storage + gn.nframes + gr->frame_start, gr->nframe,
			0, -(int64_t)gr->size, 0, -(int64_t)gr->count,
		};
		item_frames[n++] = go.frames + gr->frame_start;
	}
	/* sort(reverse=True, key=(abs(size_diff), size, abs(count_diff), count,
	 * traceback)) */
	for (i = 0; i < n; i++) {
		const struct tm_statistic_diff *d = &out->diffs[i];

		items[i] = (uint32_t)i;
		keys[0][i] = abs_i64(d->size_diff);
		keys[1][i] = d->size;
		keys[2][i] = abs_i64(d->count_diff);
		keys[3][i] = d->count;
		nframe[i] = d->nframe;
	}
	if (sort_items(items, n, keys, 4, item_frames, nframe, &files,
		       key_type != TM_KEY_TRACEBACK))
		goto oom;
	/* apply the order */
	{
		struct tm_statistic_diff *sorted = alloc_filled(n, sizeof(*sorted), 0);

		if (!sorted)
			goto oom;
		for (i = 0; i < n; i++)
			sorted[i] = out->diffs[items[i]];
		free(out->diffs);
		out->diffs = sorted;
	}
	out->key_type = key_type;
	out->cumulative = cumulative;
	out->is_diff = true;
	out->n = n;
	out->frame_storage = storage;
	storage = NULL;
	ret = 0;
	goto out;
oom:
	tm_error_set(err, "out of memory for %zu statistics", total);
out:
	if (ret) {
		free(out->diffs);
		out->diffs = NULL;
	}
	free(storage);
	free(matched);
	free(items);
	free(nframe);
	free(item_frames);
	for (i = 0; i < MAX_SORT_KEYS; i++)
		free(keys[i]);
	grouping_destroy(&gn);
	grouping_destroy(&go);
	files_destroy(&files);
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
