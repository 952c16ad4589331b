// SPDX-License-Identifier: MIT
/*
 * tmbpf's native snapshot file: the flat tables of struct tm_snapshot written
 * as they are, so that loading is one read per table straight into place,
 * with no per-trace parsing, followed by a linear check of every count, offset
 * and id (tm_snapshot_validate()). An aggregated load (TM_LOAD_AGGREGATE)
 * reads the traces through a small buffer and keeps their sums per
 * (traceback, domain) instead (see "loading" below).
 *
 * Layout, version 1.0. All integers little-endian; every section starts at an
 * offset that is a multiple of 8; padding bytes are zero.
 *
 *   offset size  header (TM_NATIVE_HEADER_SIZE = 256 bytes in 1.0)
 *   0      8     magic "\x89tmbpf\r\n" (the high byte and CR LF catch
 *                text-mode transfers, and no pickle starts with 0x89)
 *   8      2     major version: a reader refuses a newer major version
 *   10     2     minor version: newer minors only add fields after the ones
 *                below (header_size grows) and readers ignore them
 *   12     4     header_size: where the fixed header ends (>= 256, multiple of 8)
 *   16     4     flags: none defined; a reader refuses unknown bits
 *   20     4     traceback_limit
 *   24     4     nstrings            28  4  nframes
 *   32     4     nframe_ids          36  4  ntracebacks
 *   40     8     ntraces             48  8  str_pool_len (bytes)
 *   56     4     ncounters
 *   60     4     capture.tier        64  4  capture.coverage
 *   68     4     capture.coverage_note, 72 command, 76 python: string ids or
 *                0xffffffff for none
 *   80     4     capture.pid (signed) 84 4  zero
 *   88     8     capture.sample_period   96 8 capture.start_ns
 *   104    8     capture.taken_ns        112 8 capture.traced_current
 *   120    8     capture.traced_peak     128 8 capture.tracer_memory
 *   136    7x16  section table: {u64 offset, u64 length} for, in this order,
 *                STR_OFF, STR_POOL, FRAMES, FRAME_IDS, TRACEBACKS, TRACES,
 *                COUNTERS. Sections follow the header in this order and do
 *                not overlap; an empty section has length 0.
 *   248    8     file_size: the total length of the file
 *
 *   section      element                                      bytes
 *   STR_OFF      u64 offset of string i in STR_POOL;              8 x (nstrings + 1)
 *                the last is str_pool_len
 *   STR_POOL     the strings back to back, each followed by NUL   str_pool_len
 *   FRAMES       {u32 filename string id, u32 lineno}             8 x nframes
 *   FRAME_IDS    u32 frame id (tracebacks' frames, most recent    4 x nframe_ids
 *                first)
 *   TRACEBACKS   {u32 first, u32 nframe, u32 total_nframe}       12 x ntracebacks
 *   TRACES       {u64 address, u64 size, u32 domain,             24 x ntraces
 *                 u32 traceback id}
 *   COUNTERS     {u32 name string id, u32 zero, u64 value}        16 x ncounters
 *
 * These are the in-memory layouts of the model's structs on a little-endian
 * host (checked below at compile time), except COUNTERS, whose padding is
 * written as zero. The loaded snapshot's hash indexes stay NULL: the model
 * builds them on first use.
 */
#include "snapshot/snapfile.h"
#include "snapshot/snapfile_priv.h"

#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define TM_NATIVE_HEADER_SIZE 256u

enum native_section {
	SEC_STR_OFF, SEC_STR_POOL, SEC_FRAMES, SEC_FRAME_IDS, SEC_TRACEBACKS, SEC_TRACES,
	SEC_COUNTERS, SEC_COUNT,
};

static const char *const section_names[SEC_COUNT] = {
	"string offsets", "string pool", "frames", "frame ids", "tracebacks", "traces",
	"counters",
};

#define COUNTER_RECORD_SIZE 16u

/* The tables are copied as they are: their layout must be the file's. */
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
	       "the native format is little-endian; a big-endian host needs byte swaps here");
_Static_assert(sizeof(struct tm_frame) == 8 && offsetof(struct tm_frame, lineno) == 4,
	       "struct tm_frame layout");
_Static_assert(sizeof(struct tm_traceback) == 12 && offsetof(struct tm_traceback, nframe) == 4 &&
	       offsetof(struct tm_traceback, total_nframe) == 8, "struct tm_traceback layout");
_Static_assert(sizeof(struct tm_trace) == 24 && offsetof(struct tm_trace, size) == 8 &&
	       offsetof(struct tm_trace, domain) == 16 &&
	       offsetof(struct tm_trace, traceback) == 20, "struct tm_trace layout");
_Static_assert(sizeof(tm_id) == 4, "tm_id is 32 bits");

/* header field offsets */
enum {
	H_MAGIC = 0, H_MAJOR = 8, H_MINOR = 10, H_HEADER_SIZE = 12, H_FLAGS = 16, H_LIMIT = 20,
	H_NSTRINGS = 24, H_NFRAMES = 28, H_NFRAME_IDS = 32, H_NTRACEBACKS = 36,
	H_NTRACES = 40, H_STR_POOL_LEN = 48, H_NCOUNTERS = 56, H_TIER = 60, H_COVERAGE = 64,
	H_COVERAGE_NOTE = 68, H_COMMAND = 72, H_PYTHON = 76, H_PID = 80, H_ZERO = 84,
	H_SAMPLE_PERIOD = 88, H_START_NS = 96, H_TAKEN_NS = 104, H_TRACED_CURRENT = 112,
	H_TRACED_PEAK = 120, H_TRACER_MEMORY = 128, H_SECTIONS = 136, H_FILE_SIZE = 248,
};
_Static_assert(H_SECTIONS + SEC_COUNT * 16 == H_FILE_SIZE, "section table size");
_Static_assert(H_FILE_SIZE + 8 == TM_NATIVE_HEADER_SIZE, "header size");

static void put16(unsigned char *p, uint16_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
}

static void put32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static void put64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static uint16_t get16(const unsigned char *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t get32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const unsigned char *p)
{
	return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

static uint64_t align8(uint64_t v)
{
	return (v + 7) & ~(uint64_t)7;
}

/* ---- writing ------------------------------------------------------------------ */

static const void *section_data(const struct tm_snapshot *s, enum native_section sec)
{
	switch (sec) {
	case SEC_STR_OFF: return s->str_off;
	case SEC_STR_POOL: return s->str_pool;
	case SEC_FRAMES: return s->frames;
	case SEC_FRAME_IDS: return s->frame_ids;
	case SEC_TRACEBACKS: return s->tracebacks;
	case SEC_TRACES: return s->traces;
	default: return NULL;    /* counters are written record by record */
	}
}

int tm_native_write(const struct tm_snapshot *s, FILE *fp, struct tm_error *err)
{
	static const unsigned char zeros[8];
	const struct tm_capture *c = &s->capture;
	unsigned char h[TM_NATIVE_HEADER_SIZE] = { 0 };
	uint64_t len[SEC_COUNT], off[SEC_COUNT], pos = TM_NATIVE_HEADER_SIZE;
	static const uint64_t zero_off = 0;
	uint32_t i;

	if (s->trace_counts) {
		tm_error_set(err, "%s", TM_AGGREGATED_WRITE_ERROR);
		return -1;
	}
	if (tm_snapshot_validate(s, err))
		return -1;
	/* an empty string table still has its end offset, 0 */
	len[SEC_STR_OFF] = ((uint64_t)s->nstrings + 1) * sizeof(uint64_t);
	len[SEC_STR_POOL] = s->str_pool_len;
	len[SEC_FRAMES] = (uint64_t)s->nframes * sizeof(struct tm_frame);
	len[SEC_FRAME_IDS] = (uint64_t)s->nframe_ids * sizeof(tm_id);
	len[SEC_TRACEBACKS] = (uint64_t)s->ntracebacks * sizeof(struct tm_traceback);
	len[SEC_TRACES] = s->ntraces * sizeof(struct tm_trace);
	len[SEC_COUNTERS] = (uint64_t)c->ncounters * COUNTER_RECORD_SIZE;
	for (i = 0; i < SEC_COUNT; i++) {
		off[i] = pos;
		pos = align8(pos + len[i]);
	}

	memcpy(h + H_MAGIC, TM_NATIVE_MAGIC, TM_NATIVE_MAGIC_LEN);
	put16(h + H_MAJOR, TM_NATIVE_VERSION_MAJOR);
	put16(h + H_MINOR, TM_NATIVE_VERSION_MINOR);
	put32(h + H_HEADER_SIZE, TM_NATIVE_HEADER_SIZE);
	put32(h + H_FLAGS, 0);
	put32(h + H_LIMIT, s->traceback_limit);
	put32(h + H_NSTRINGS, s->nstrings);
	put32(h + H_NFRAMES, s->nframes);
	put32(h + H_NFRAME_IDS, s->nframe_ids);
	put32(h + H_NTRACEBACKS, s->ntracebacks);
	put64(h + H_NTRACES, s->ntraces);
	put64(h + H_STR_POOL_LEN, s->str_pool_len);
	put32(h + H_NCOUNTERS, c->ncounters);
	put32(h + H_TIER, (uint32_t)c->tier);
	put32(h + H_COVERAGE, (uint32_t)c->coverage);
	put32(h + H_COVERAGE_NOTE, c->coverage_note);
	put32(h + H_COMMAND, c->command);
	put32(h + H_PYTHON, c->python);
	put32(h + H_PID, (uint32_t)c->pid);
	put64(h + H_SAMPLE_PERIOD, c->sample_period);
	put64(h + H_START_NS, c->start_ns);
	put64(h + H_TAKEN_NS, c->taken_ns);
	put64(h + H_TRACED_CURRENT, c->traced_current);
	put64(h + H_TRACED_PEAK, c->traced_peak);
	put64(h + H_TRACER_MEMORY, c->tracer_memory);
	for (i = 0; i < SEC_COUNT; i++) {
		put64(h + H_SECTIONS + 16 * i, off[i]);
		put64(h + H_SECTIONS + 16 * i + 8, len[i]);
	}
	put64(h + H_FILE_SIZE, pos);

	if (fwrite(h, sizeof(h), 1, fp) != 1)
		goto io;
	for (i = 0; i < SEC_COUNT; i++) {
		const void *data = section_data(s, i);

		if (i == SEC_STR_OFF && s->nstrings == 0)
			data = &zero_off;
		if (i == SEC_COUNTERS) {
			for (uint32_t k = 0; k < c->ncounters; k++) {
				unsigned char rec[COUNTER_RECORD_SIZE] = { 0 };

				put32(rec, c->counters[k].name);
				put64(rec + 8, c->counters[k].value);
				if (fwrite(rec, sizeof(rec), 1, fp) != 1)
					goto io;
			}
		} else if (len[i] && fwrite(data, (size_t)len[i], 1, fp) != 1) {
			goto io;
		}
		if (align8(len[i]) != len[i] &&
		    fwrite(zeros, (size_t)(align8(len[i]) - len[i]), 1, fp) != 1)
			goto io;
	}
	return 0;
io:
	tm_error_set(err, "cannot write: %s", strerror(errno ? errno : EIO));
	return -1;
}

int tm_snapshot_save_native(const struct tm_snapshot *s, const char *path, struct tm_error *err)
{
	struct tm_atomic_file af;
	struct tm_error why;

	if (tm_atomic_open(&af, path, err))
		return -1;
	if (tm_native_write(s, af.fp, &why)) {
		tm_atomic_abort(&af);
		tm_error_set(err, "%s: %s", path, why.msg);
		return -1;
	}
	return tm_atomic_commit(&af, err);
}

/* ---- loading -------------------------------------------------------------------- */

/*
 * A file is read table by table straight into the snapshot's arrays (pread:
 * the file is never held whole besides them). An aggregated load reads the
 * traces section through a small buffer instead and keeps one trace per
 * (traceback, domain), checking each trace as tm_snapshot_validate() would,
 * in the same order, so that both loads refuse a file with the same message.
 */

/* Bytes of the traces section read at a time by an aggregated load. */
#define NATIVE_TRACES_CHUNK (64u << 10)

/* Section sec must hold exactly `count` elements of `elem` bytes. */
static int check_section(const uint64_t *len, enum native_section sec, uint64_t count,
			 size_t elem, struct tm_error *err)
{
	uint64_t want;

	if (__builtin_mul_overflow(count, (uint64_t)elem, &want) || want != len[sec]) {
		tm_error_set(err, "corrupt native snapshot: the %s section is %" PRIu64
			     " bytes, which does not hold %" PRIu64 " entries of %zu bytes",
			     section_names[sec], len[sec], count, elem);
		return -1;
	}
	return 0;
}

/* Reads section sec (checked by check_section) into a new table; an empty
 * section gives NULL. */
static int read_section(const struct tm_input *in, const uint64_t *off, const uint64_t *len,
			enum native_section sec, void **out, struct tm_error *err)
{
	*out = NULL;
	if (!len[sec])
		return 0;
	if (len[sec] > SIZE_MAX || !(*out = malloc((size_t)len[sec]))) {
		tm_error_set(err, "out of memory loading %" PRIu64 " bytes of %s", len[sec],
			     section_names[sec]);
		return -1;
	}
	return tm_input_read(in, off[sec], *out, (size_t)len[sec], err);
}

/*
 * The sums of an aggregated load, one per (traceback, domain) pair. A file
 * has a handful of domains: the first NATIVE_DENSE_DOMAINS of them get an
 * array of sums indexed by traceback id (calloc'd: only the pages of the
 * tracebacks used with that domain are ever touched), so that a trace costs
 * one array access; pairs of any further domain (a hostile file) go through
 * the (traceback, domain) hash table of tm_trace_keys.
 *
 * A trace then costs a few comparisons (its domain with the dense ones, in
 * order of appearance: the common domain first) and one update of a random
 * place, which the CPU overlaps with the next traces as long as nothing else
 * gets in the way: no branch of its own for a pair's first trace (the arrays
 * are scanned for the pairs used at the end instead), no function call.
 */
#define NATIVE_DENSE_DOMAINS 8u

struct native_sum {
	uint64_t size, count;
};

struct native_agg {
	uint32_t domain[NATIVE_DENSE_DOMAINS];  /* the dense domains */
	struct native_sum *dense[NATIVE_DENSE_DOMAINS];   /* by traceback */
	unsigned ndomains;
	uint32_t ntracebacks;
	struct tm_trace_keys other;     /* the other pairs, numbered */
	struct native_sum *other_sum;   /* by their id */
	uint32_t other_len;
};

static void agg_destroy(struct native_agg *a)
{
	for (unsigned d = 0; d < a->ndomains; d++)
		free(a->dense[d]);
	tm_trace_keys_destroy(&a->other);
	free(a->other_sum);
}

/* Makes domain dense (there is room); 0 or -1 (out of memory). */
static int agg_dense_domain(struct native_agg *a, uint32_t domain)
{
	unsigned d = a->ndomains;

	a->dense[d] = calloc(a->ntracebacks ? a->ntracebacks : 1, sizeof(*a->dense[d]));
	if (!a->dense[d])
		return -1;
	a->domain[d] = domain;
	a->ndomains++;
	return 0;
}

/* A trace whose domain is not dense yet: makes it dense while there is room,
 * else sums it with the other pairs. 0 or -1 (out of memory). */
static int agg_add_slow(struct native_agg *a, const struct tm_trace *t)
{
	struct native_sum *sum;
	tm_id id;

	if (a->ndomains < NATIVE_DENSE_DOMAINS) {
		if (agg_dense_domain(a, t->domain))
			return -1;
		sum = &a->dense[a->ndomains - 1][t->traceback];
	} else {
		id = tm_trace_keys_get(&a->other, t->traceback, t->domain);
		if (id == TM_ID_NONE)
			return -1;
		if (id >= a->other_len) {
			uint32_t len = a->other_len ? a->other_len : 1024;
			struct native_sum *bigger;

			while (len <= id && len <= UINT32_MAX / 2)
				len *= 2;
			if (len <= id)
				return -1;
			bigger = realloc(a->other_sum, (size_t)len * sizeof(*bigger));
			if (!bigger)
				return -1;
			memset(bigger + a->other_len, 0, (size_t)(len - a->other_len) * sizeof(*bigger));
			a->other_sum = bigger;
			a->other_len = len;
		}
		sum = &a->other_sum[id];
	}
	sum->size += t->size;
	sum->count++;
	return 0;
}

/* The snapshot's traces: one per pair, the dense ones by domain then
 * traceback, then the others in order of first appearance. */
static int agg_emit(struct native_agg *a, struct tm_snapshot *s)
{
	uint64_t n = a->other.n, i = 0;
	unsigned d;
	uint32_t tb;

	for (d = 0; d < a->ndomains; d++)
		for (tb = 0; tb < a->ntracebacks; tb++)
			n += a->dense[d][tb].count != 0;
	if (!n)
		return 0;
	s->traces = malloc((size_t)n * sizeof(*s->traces));
	s->trace_counts = malloc((size_t)n * sizeof(*s->trace_counts));
	if (!s->traces || !s->trace_counts)
		return -1;
	for (d = 0; d < a->ndomains; d++) {
		for (tb = 0; tb < a->ntracebacks; tb++) {
			const struct native_sum *sum = &a->dense[d][tb];

			if (!sum->count)
				continue;
			s->traces[i] = (struct tm_trace){ 0, sum->size, a->domain[d], tb };
			s->trace_counts[i++] = sum->count;
		}
	}
	for (uint32_t k = 0; k < a->other.n; k++, i++) {
		const struct tm_trace_key *key = &a->other.keys[k];

		s->traces[i] = (struct tm_trace){ 0, a->other_sum[k].size, key->domain,
						  key->traceback };
		s->trace_counts[i] = a->other_sum[k].count;
	}
	s->ntraces = s->traces_cap = n;
	return 0;
}

/* Reads the traces section through a buffer, checks each trace and sums them
 * per (traceback, domain) into s->traces / s->trace_counts. */
static int aggregate_traces(const struct tm_input *in, uint64_t off, uint64_t ntraces,
			    bool no_domains, struct tm_snapshot *s, struct tm_error *err)
{
	struct native_agg a = { .ntracebacks = s->ntracebacks };
	size_t chunk = NATIVE_TRACES_CHUNK / sizeof(struct tm_trace);
	struct tm_trace *buf = NULL;
	uint64_t i = 0, total = 0;
	int ret = -1;

	if (in->window)
		chunk = in->window / sizeof(struct tm_trace) ? in->window / sizeof(struct tm_trace)
							     : 1;
	/* in memory, read in place (struct tm_trace is the file's record) */
	if (in->fd < 0 && !in->window && ((uintptr_t)in->mem + off) % _Alignof(struct tm_trace) == 0)
		chunk = 0;
	else if (!(buf = malloc(chunk * sizeof(*buf))))
		goto oom;
	if (no_domains && agg_dense_domain(&a, 0))
		goto oom;
	while (i < ntraces) {
		uint64_t n = chunk && ntraces - i > chunk ? chunk : ntraces - i;
		const struct tm_trace *t;

		if (chunk) {
			if (tm_input_read(in, off + i * sizeof(*buf), buf, (size_t)n * sizeof(*buf),
					  err))
				goto out;
			t = buf;
		} else {
			t = (const struct tm_trace *)((const unsigned char *)in->mem + off);
		}
		for (uint64_t k = 0; k < n; k++, i++) {
			unsigned d;

			if (!tm_trace_ok(s, &t[k], &total)) {
				struct tm_error why;

				tm_validate_trace_error(s, i, &t[k], &why);
				tm_error_set(err, "corrupt native snapshot: %s", why.msg);
				goto out;
			}
			if (no_domains) {      /* every trace in domain 0's sums */
				a.dense[0][t[k].traceback].size += t[k].size;
				a.dense[0][t[k].traceback].count++;
				continue;
			}
			for (d = 0; d < a.ndomains && a.domain[d] != t[k].domain; d++)
				;
			if (d < a.ndomains) {
				struct native_sum *sum = &a.dense[d][t[k].traceback];

				sum->size += t[k].size;
				sum->count++;
			} else if (agg_add_slow(&a, &t[k])) {
				goto oom;
			}
		}
	}
	if (agg_emit(&a, s))
		goto oom;
	ret = 0;
	goto out;
oom:
	tm_error_set(err, "out of memory aggregating %" PRIu64 " traces", ntraces);
out:
	free(buf);
	agg_destroy(&a);
	return ret;
}

struct tm_snapshot *tm_native_load_input(const struct tm_input *in, unsigned flags,
					 struct tm_error *err)
{
	unsigned char d[TM_NATIVE_HEADER_SIZE];
	uint64_t off[SEC_COUNT], len[SEC_COUNT], end, file_size, size = in->size;
	uint32_t header_size, flags_field, i, major, minor, ncounters;
	bool aggregate = flags & (TM_LOAD_AGGREGATE | TM_LOAD_NO_DOMAINS);
	struct tm_capture *c;
	struct tm_snapshot *s;
	struct tm_error why;
	void *counters = NULL;

	if (tm_input_read(in, 0, d, size < sizeof(d) ? (size_t)size : sizeof(d), err))
		return NULL;
	if (size < TM_NATIVE_MAGIC_LEN ||
	    memcmp(d, TM_NATIVE_MAGIC, TM_NATIVE_MAGIC_LEN) != 0) {
		if (size < TM_NATIVE_MAGIC_LEN && memcmp(d, TM_NATIVE_MAGIC, (size_t)size) == 0)
			tm_error_set(err, "truncated native snapshot (%" PRIu64 " bytes)", size);
		else
			tm_error_set(err, "not a tmbpf native snapshot (bad magic)");
		return NULL;
	}
	if (size < H_HEADER_SIZE + 4) {
		tm_error_set(err, "truncated native snapshot (%" PRIu64 " bytes, the header alone "
			     "is %u)", size, TM_NATIVE_HEADER_SIZE);
		return NULL;
	}
	major = get16(d + H_MAJOR);
	minor = get16(d + H_MINOR);
	if (major != TM_NATIVE_VERSION_MAJOR) {
		if (major > TM_NATIVE_VERSION_MAJOR)
			tm_error_set(err, "native snapshot format version %u.%u is newer than this "
				     "tmbpf reads (%u.%u); use a newer tmbpf", major, minor,
				     TM_NATIVE_VERSION_MAJOR, TM_NATIVE_VERSION_MINOR);
		else
			tm_error_set(err, "unknown native snapshot format version %u.%u (this "
				     "tmbpf reads %u.%u)", major, minor, TM_NATIVE_VERSION_MAJOR,
				     TM_NATIVE_VERSION_MINOR);
		return NULL;
	}
	header_size = get32(d + H_HEADER_SIZE);
	if (header_size < TM_NATIVE_HEADER_SIZE || header_size % 8) {
		tm_error_set(err, "corrupt native snapshot: header size %u (version %u.%u has "
			     "%u)", header_size, major, minor, TM_NATIVE_HEADER_SIZE);
		return NULL;
	}
	if (size < header_size) {
		tm_error_set(err, "truncated native snapshot (%" PRIu64 " bytes, the header alone "
			     "is %u)", size, header_size);
		return NULL;
	}
	file_size = get64(d + H_FILE_SIZE);
	if (file_size != size) {
		if (file_size > size)
			tm_error_set(err, "truncated native snapshot (%" PRIu64 " of %" PRIu64
				     " bytes)", size, file_size);
		else
			tm_error_set(err, "corrupt native snapshot: %" PRIu64 " bytes, the header "
				     "says %" PRIu64, size, file_size);
		return NULL;
	}
	flags_field = get32(d + H_FLAGS);
	if (flags_field) {
		tm_error_set(err, "native snapshot uses features this tmbpf does not know "
			     "(flags 0x%x, version %u.%u)", flags_field, major, minor);
		return NULL;
	}
	/* sections: aligned, in order, inside the file, not overlapping */
	end = header_size;
	for (i = 0; i < SEC_COUNT; i++) {
		off[i] = get64(d + H_SECTIONS + 16 * i);
		len[i] = get64(d + H_SECTIONS + 16 * i + 8);
		if (off[i] % 8 || off[i] < end || off[i] > size || len[i] > size - off[i]) {
			tm_error_set(err, "corrupt native snapshot: the %s section [%" PRIu64
				     ", +%" PRIu64 ") is misplaced in a file of %" PRIu64 " bytes",
				     section_names[i], off[i], len[i], size);
			return NULL;
		}
		end = off[i] + len[i];
	}

	s = tm_snapshot_new();
	if (!s) {
		tm_error_set(err, "out of memory");
		return NULL;
	}
	c = &s->capture;
	s->traceback_limit = get32(d + H_LIMIT);
	s->nstrings = get32(d + H_NSTRINGS);
	s->nframes = get32(d + H_NFRAMES);
	s->nframe_ids = get32(d + H_NFRAME_IDS);
	s->ntracebacks = get32(d + H_NTRACEBACKS);
	s->ntraces = get64(d + H_NTRACES);
	s->str_pool_len = get64(d + H_STR_POOL_LEN);
	ncounters = get32(d + H_NCOUNTERS);
	c->tier = (enum tm_tier)get32(d + H_TIER);
	c->coverage = (enum tm_coverage)get32(d + H_COVERAGE);
	c->coverage_note = get32(d + H_COVERAGE_NOTE);
	c->command = get32(d + H_COMMAND);
	c->python = get32(d + H_PYTHON);
	c->pid = (int32_t)get32(d + H_PID);
	c->sample_period = get64(d + H_SAMPLE_PERIOD);
	c->start_ns = get64(d + H_START_NS);
	c->taken_ns = get64(d + H_TAKEN_NS);
	c->traced_current = get64(d + H_TRACED_CURRENT);
	c->traced_peak = get64(d + H_TRACED_PEAK);
	c->tracer_memory = get64(d + H_TRACER_MEMORY);
	/* counts bigger than the model allows would make count+1 wrap below */
	if (s->nstrings >= UINT32_MAX - 1 || s->nframes >= UINT32_MAX ||
	    s->ntracebacks >= UINT32_MAX || s->nframe_ids >= UINT32_MAX) {
		tm_error_set(err, "corrupt native snapshot: table sizes out of range");
		goto fail;
	}
	/* every section's size first, then the reads */
	if (check_section(len, SEC_STR_OFF, (uint64_t)s->nstrings + 1, sizeof(uint64_t), err) ||
	    check_section(len, SEC_STR_POOL, s->str_pool_len, 1, err) ||
	    check_section(len, SEC_FRAMES, s->nframes, sizeof(struct tm_frame), err) ||
	    check_section(len, SEC_FRAME_IDS, s->nframe_ids, sizeof(tm_id), err) ||
	    check_section(len, SEC_TRACEBACKS, s->ntracebacks, sizeof(struct tm_traceback), err) ||
	    check_section(len, SEC_TRACES, s->ntraces, sizeof(struct tm_trace), err) ||
	    check_section(len, SEC_COUNTERS, ncounters, COUNTER_RECORD_SIZE, err))
		goto fail;
	if (read_section(in, off, len, SEC_STR_OFF, (void **)&s->str_off, err) ||
	    read_section(in, off, len, SEC_STR_POOL, (void **)&s->str_pool, err) ||
	    read_section(in, off, len, SEC_FRAMES, (void **)&s->frames, err) ||
	    read_section(in, off, len, SEC_FRAME_IDS, (void **)&s->frame_ids, err) ||
	    read_section(in, off, len, SEC_TRACEBACKS, (void **)&s->tracebacks, err) ||
	    (!aggregate && read_section(in, off, len, SEC_TRACES, (void **)&s->traces, err)) ||
	    read_section(in, off, len, SEC_COUNTERS, &counters, err))
		goto fail;
	if (s->nstrings == 0) {
		/* the end offset of no string must be 0; the model keeps no table */
		if (s->str_off[0] != 0) {
			tm_error_set(err, "corrupt native snapshot: an empty string table ends at "
				     "%" PRIu64, s->str_off[0]);
			goto fail;
		}
		free(s->str_off);
		s->str_off = NULL;
	}
	s->str_pool_cap = s->str_pool_len;
	s->str_cap = s->nstrings;
	s->frames_cap = s->nframes;
	s->frame_ids_cap = s->nframe_ids;
	s->tracebacks_cap = s->ntracebacks;
	s->traces_cap = s->ntraces;
	if (counters) {
		const unsigned char *rec = counters;

		c->ncounters = ncounters;
		c->counters = malloc((size_t)c->ncounters * sizeof(*c->counters));
		if (!c->counters) {
			tm_error_set(err, "out of memory");
			goto fail;
		}
		for (i = 0; i < c->ncounters; i++, rec += COUNTER_RECORD_SIZE)
			c->counters[i] = (struct tm_counter){ get32(rec), get64(rec + 8) };
		free(counters);
		counters = NULL;
	}
	/* every id, range, NUL terminator and the total size: linear and cheap */
	if (aggregate) {
		uint64_t ntraces = s->ntraces;

		s->ntraces = s->traces_cap = 0;
		if (tm_validate_tables(s, &why))
			goto corrupt;
		if (aggregate_traces(in, off[SEC_TRACES], ntraces, flags & TM_LOAD_NO_DOMAINS, s,
				     err))
			goto fail;
		if (tm_validate_capture(s, &why))
			goto corrupt;
	} else if (tm_snapshot_validate(s, &why)) {
		goto corrupt;
	}
	return s;
corrupt:
	tm_error_set(err, "corrupt native snapshot: %s", why.msg);
fail:
	free(counters);
	tm_snapshot_free(s);
	return NULL;
}

struct tm_snapshot *tm_native_load_mem(const void *data, size_t size, struct tm_error *err)
{
	struct tm_input in = { .fd = -1, .mem = data, .size = size };

	return tm_native_load_input(&in, 0, err);
}
