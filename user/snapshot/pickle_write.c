// SPDX-License-Identifier: MIT
/*
 * Writer of pickles that CPython's tracemalloc.Snapshot.load() reads (3.8-3.13)
 * and that hold the same traces and traceback_limit as the snapshot.
 *
 * The bytes follow what Snapshot.dump() itself writes (cpython-internals.md
 * C.11), with protocol 4 opcodes so that every supported CPython reads them:
 *
 *   PROTO 4, then FRAMEs of about 64 KiB as pickle's framer cuts them
 *   tracemalloc.Snapshot via STACK_GLOBAL, EMPTY_TUPLE NEWOBJ
 *   state {'traces': _Traces (same way) with state {'_traces': [...]},
 *          'traceback_limit': int}, set with SETITEMS/SETITEM and BUILD
 *   the list filled by APPENDS in batches of 1000 (APPEND for a lone item)
 *   trace: MARK domain size frames total_nframe TUPLE (3.9+: 4-tuples), or
 *          domain size frames TUPLE3 (3.8's Snapshot unpacks 3-tuples)
 *
 * Each filename string, each (filename, lineno) tuple and each frames tuple
 * is written once and memoized (MEMOIZE), and every later use is a BINGET /
 * LONG_BINGET, so a snapshot of a million traces over a few thousand
 * tracebacks stays small and loads fast in Python, where the shared tuples
 * are shared objects, as tracemalloc makes them.
 *
 * total_nframe: a traceback without one (TM_TOTAL_NFRAME_NONE, e.g. read from
 * a 3.8 pickle) is written in a 4-tuple with total_nframe = nframe, what
 * tracemalloc records for a traceback it did not truncate. Python's Traceback
 * compares and hashes by its frames only, so statistics and comparisons are
 * unchanged; only repr() shows the number. Addresses and the capture
 * information have no place in a CPython snapshot and are dropped.
 *
 * Strings are written as the bytes the snapshot holds (UTF-8 with
 * surrogatepass, which is what Python reads back); a string that is not valid
 * in that encoding is refused rather than written into a file Python cannot
 * load.
 */
#include "snapshot/snapfile.h"
#include "snapshot/snapfile_priv.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define PW_PROTOCOL 4
#define PW_FRAME_TARGET (64 * 1024)     /* pickle's _FRAME_SIZE_TARGET */
#define PW_BATCH 1000                   /* pickle's _BATCHSIZE */

struct pw {
	const struct tm_snapshot *s;
	FILE *fp;
	struct tm_error *err;
	unsigned char *buf;     /* the current frame */
	size_t len, cap;
	uint64_t memo_next;
	uint32_t *memo_str, *memo_frame, *memo_tb;      /* memo index or UINT32_MAX */
	bool failed;
};

/* ---- output ------------------------------------------------------------------- */

static void pw_reserve(struct pw *w, size_t n)
{
	size_t cap;
	unsigned char *p;

	if (w->failed || w->len + n <= w->cap)
		return;
	cap = w->cap ? w->cap : PW_FRAME_TARGET * 2;
	while (cap < w->len + n)
		cap *= 2;
	p = realloc(w->buf, cap);
	if (!p) {
		tm_error_set(w->err, "out of memory");
		w->failed = true;
		return;
	}
	w->buf = p;
	w->cap = cap;
}

static void pw_bytes(struct pw *w, const void *data, size_t n)
{
	pw_reserve(w, n);
	if (w->failed)
		return;
	memcpy(w->buf + w->len, data, n);
	w->len += n;
}

static void pw_op(struct pw *w, unsigned char op)
{
	pw_bytes(w, &op, 1);
}

static void pw_le(struct pw *w, uint64_t v, unsigned n)
{
	unsigned char b[8];

	for (unsigned i = 0; i < n; i++)
		b[i] = (unsigned char)(v >> (8 * i));
	pw_bytes(w, b, n);
}

/* Writes the current frame (FRAME opcode + its bytes); `all` also writes a
 * frame smaller than the target (the last one). */
static void pw_commit_frame(struct pw *w, bool all)
{
	unsigned char head[9];

	if (w->failed || w->len == 0 || (!all && w->len < PW_FRAME_TARGET))
		return;
	head[0] = PK_OP_FRAME;
	for (int i = 0; i < 8; i++)
		head[1 + i] = (unsigned char)((uint64_t)w->len >> (8 * i));
	if (fwrite(head, sizeof(head), 1, w->fp) != 1 || fwrite(w->buf, w->len, 1, w->fp) != 1) {
		tm_error_set(w->err, "cannot write: %s", strerror(errno ? errno : EIO));
		w->failed = true;
		return;
	}
	w->len = 0;
}

/* ---- values ------------------------------------------------------------------- */

/* pickle's save_long: the shortest of BININT1 / BININT2 / BININT / LONG1 */
static void pw_uint(struct pw *w, uint64_t v)
{
	if (v <= 0xff) {
		pw_op(w, PK_OP_BININT1);
		pw_le(w, v, 1);
	} else if (v <= 0xffff) {
		pw_op(w, PK_OP_BININT2);
		pw_le(w, v, 2);
	} else if (v <= INT32_MAX) {
		pw_op(w, PK_OP_BININT);
		pw_le(w, v, 4);
	} else {
		/* two's complement, little-endian, with a 0 byte when the top
		 * bit would read as a sign */
		unsigned n = 1;

		while (n < 8 && v >> (8 * n))
			n++;
		if (v >> (8 * n - 1))
			n++;
		pw_op(w, PK_OP_LONG1);
		pw_le(w, n, 1);
		pw_le(w, v, n > 8 ? 8 : n);
		if (n > 8)
			pw_le(w, 0, 1);
	}
}

static uint32_t pw_memoize(struct pw *w)
{
	if (w->memo_next >= UINT32_MAX) {
		if (!w->failed)
			tm_error_set(w->err, "too many shared values for a pickle memo");
		w->failed = true;
		return 0;
	}
	pw_op(w, PK_OP_MEMOIZE);
	return (uint32_t)w->memo_next++;
}

static void pw_get(struct pw *w, uint32_t idx)
{
	if (idx <= 0xff) {
		pw_op(w, PK_OP_BINGET);
		pw_le(w, idx, 1);
	} else {
		pw_op(w, PK_OP_LONG_BINGET);
		pw_le(w, idx, 4);
	}
}

static void pw_str_bytes(struct pw *w, const char *data, size_t len)
{
	if (len <= 0xff) {
		pw_op(w, PK_OP_SHORT_BINUNICODE);
		pw_le(w, len, 1);
	} else {
		pw_op(w, PK_OP_BINUNICODE);
		pw_le(w, len, 4);
	}
	pw_bytes(w, data, len);
}

static void pw_lit(struct pw *w, const char *lit)
{
	pw_str_bytes(w, lit, strlen(lit));
	pw_memoize(w);
}

static void pw_str(struct pw *w, tm_id sid)
{
	struct tm_str str;
	size_t bad;

	if (w->memo_str[sid] != UINT32_MAX) {
		pw_get(w, w->memo_str[sid]);
		return;
	}
	str = tm_string(w->s, sid);
	if (!tm_utf8_valid(str.data, str.len, &bad)) {
		if (!w->failed)
			tm_error_set(w->err, "filename %u is not valid UTF-8 (byte 0x%02x at %zu): "
				     "Python could not load it", sid, (unsigned char)str.data[bad],
				     bad);
		w->failed = true;
		return;
	}
	pw_str_bytes(w, str.data, str.len);
	w->memo_str[sid] = pw_memoize(w);
}

static void pw_frame(struct pw *w, tm_id fid)
{
	const struct tm_frame *f = &w->s->frames[fid];

	if (w->memo_frame[fid] != UINT32_MAX) {
		pw_get(w, w->memo_frame[fid]);
		return;
	}
	pw_str(w, f->filename);
	pw_uint(w, f->lineno);
	pw_op(w, PK_OP_TUPLE2);
	w->memo_frame[fid] = pw_memoize(w);
}

/* the frames tuple of traceback tb, most recent first as in the model */
static void pw_frames(struct pw *w, tm_id tb)
{
	const struct tm_traceback *t = &w->s->tracebacks[tb];
	const tm_id *ids = tm_traceback_frames(w->s, tb);
	uint32_t i;

	if (w->memo_tb[tb] != UINT32_MAX) {
		pw_get(w, w->memo_tb[tb]);
		return;
	}
	if (t->nframe > 3)
		pw_op(w, PK_OP_MARK);
	for (i = 0; i < t->nframe && !w->failed; i++)
		pw_frame(w, ids[i]);
	pw_op(w, t->nframe == 1 ? PK_OP_TUPLE1 : t->nframe == 2 ? PK_OP_TUPLE2
			       : t->nframe == 3 ? PK_OP_TUPLE3 : PK_OP_TUPLE);
	w->memo_tb[tb] = pw_memoize(w);
}

static void pw_trace(struct pw *w, const struct tm_trace *t, enum tm_pickle_flavor flavor)
{
	const struct tm_traceback *tb = &w->s->tracebacks[t->traceback];

	if (flavor == TM_PICKLE_PY38) {
		pw_uint(w, t->domain);
		pw_uint(w, t->size);
		pw_frames(w, t->traceback);
		pw_op(w, PK_OP_TUPLE3);
		return;
	}
	pw_op(w, PK_OP_MARK);
	pw_uint(w, t->domain);
	pw_uint(w, t->size);
	pw_frames(w, t->traceback);
	pw_uint(w, tb->total_nframe == TM_TOTAL_NFRAME_NONE ? tb->nframe : tb->total_nframe);
	pw_op(w, PK_OP_TUPLE);
}

/* ---- the snapshot -------------------------------------------------------------- */

static uint32_t *pw_memo_table(struct pw *w, uint32_t n)
{
	uint32_t *t = malloc(((size_t)n + 1) * sizeof(*t));

	if (!t) {
		tm_error_set(w->err, "out of memory");
		w->failed = true;
		return NULL;
	}
	memset(t, 0xff, ((size_t)n + 1) * sizeof(*t));
	return t;
}

int tm_pickle_write(const struct tm_snapshot *s, FILE *fp, enum tm_pickle_flavor flavor,
		    struct tm_error *err)
{
	struct pw w = { .s = s, .fp = fp, .err = err };
	uint32_t tracemalloc_memo;
	uint64_t i;
	int ret = -1;

	if (flavor != TM_PICKLE_PY39 && flavor != TM_PICKLE_PY38) {
		tm_error_set(err, "unknown pickle flavour %d", (int)flavor);
		return -1;
	}
	if (s->trace_counts) {
		tm_error_set(err, "%s", TM_AGGREGATED_WRITE_ERROR);
		return -1;
	}
	if (tm_snapshot_validate(s, err))
		return -1;
	w.memo_str = pw_memo_table(&w, s->nstrings);
	w.memo_frame = pw_memo_table(&w, s->nframes);
	w.memo_tb = pw_memo_table(&w, s->ntracebacks);
	if (w.failed)
		goto out;

	/* PROTO stays outside the frames, as pickle writes it */
	if (fputc(PK_OP_PROTO, fp) == EOF || fputc(PW_PROTOCOL, fp) == EOF) {
		tm_error_set(err, "cannot write: %s", strerror(errno ? errno : EIO));
		goto out;
	}
	pw_str_bytes(&w, "tracemalloc", 11);
	tracemalloc_memo = pw_memoize(&w);
	pw_lit(&w, "Snapshot");
	pw_op(&w, PK_OP_STACK_GLOBAL);
	pw_memoize(&w);
	pw_op(&w, PK_OP_EMPTY_TUPLE);
	pw_op(&w, PK_OP_NEWOBJ);
	pw_memoize(&w);
	pw_op(&w, PK_OP_EMPTY_DICT);
	pw_memoize(&w);
	pw_op(&w, PK_OP_MARK);
	pw_lit(&w, "traces");
	pw_get(&w, tracemalloc_memo);
	pw_lit(&w, "_Traces");
	pw_op(&w, PK_OP_STACK_GLOBAL);
	pw_memoize(&w);
	pw_op(&w, PK_OP_EMPTY_TUPLE);
	pw_op(&w, PK_OP_NEWOBJ);
	pw_memoize(&w);
	pw_op(&w, PK_OP_EMPTY_DICT);
	pw_memoize(&w);
	pw_lit(&w, "_traces");
	pw_op(&w, PK_OP_EMPTY_LIST);
	pw_memoize(&w);

	/* pickle's batch_appends */
	for (i = 0; i < s->ntraces && !w.failed;) {
		uint64_t n = s->ntraces - i < PW_BATCH ? s->ntraces - i : PW_BATCH, k;

		if (n == 1) {
			pw_trace(&w, &s->traces[i], flavor);
			pw_op(&w, PK_OP_APPEND);
		} else {
			pw_op(&w, PK_OP_MARK);
			for (k = 0; k < n && !w.failed; k++) {
				pw_trace(&w, &s->traces[i + k], flavor);
				pw_commit_frame(&w, false);
			}
			pw_op(&w, PK_OP_APPENDS);
		}
		pw_commit_frame(&w, false);
		i += n;
	}

	pw_op(&w, PK_OP_SETITEM);
	pw_op(&w, PK_OP_BUILD);
	pw_lit(&w, "traceback_limit");
	pw_uint(&w, s->traceback_limit);
	pw_op(&w, PK_OP_SETITEMS);
	pw_op(&w, PK_OP_BUILD);
	pw_op(&w, PK_OP_STOP);
	pw_commit_frame(&w, true);
	if (!w.failed)
		ret = 0;
out:
	free(w.buf);
	free(w.memo_str);
	free(w.memo_frame);
	free(w.memo_tb);
	return ret;
}

int tm_snapshot_save_pickle(const struct tm_snapshot *s, const char *path,
			    enum tm_pickle_flavor flavor, struct tm_error *err)
{
	struct tm_atomic_file af;
	struct tm_error why;

	if (tm_atomic_open(&af, path, err))
		return -1;
	if (tm_pickle_write(s, af.fp, flavor, &why)) {
		tm_atomic_abort(&af);
		tm_error_set(err, "%s: %s", path, why.msg);
		return -1;
	}
	return tm_atomic_commit(&af, err);
}
