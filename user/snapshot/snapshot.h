/* SPDX-License-Identifier: MIT */
/*
 * The snapshot model: CPython tracemalloc's Frame / Traceback / Trace / Snapshot,
 * stored the way _tracemalloc.c stores them.
 *
 * Strings (filenames and capture metadata), frames and tracebacks are interned:
 * each distinct value is stored once and named by a dense id (its index), so a
 * snapshot of millions of traces holds a few thousand frames and tracebacks and
 * a 24-byte record per trace. Everything is a flat array so that the native file
 * format can load a snapshot with one copy per table, and ids are plain indexes
 * that the loader checks once.
 *
 * Frame order follows the C side of tracemalloc (and the pickle): a traceback's
 * frames are stored MOST RECENT FIRST. Python's Traceback object reverses them
 * (oldest first) for iteration, ordering and str(); the analysis code does the same.
 *
 * This library has no BPF in it and needs no privileges: it is unit-tested alone.
 */
#ifndef TMBPF_SNAPSHOT_H
#define TMBPF_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef uint32_t tm_id;                 /* index into one of the intern tables */
#define TM_ID_NONE UINT32_MAX

#define TM_DEFAULT_DOMAIN 0u            /* tracemalloc's DEFAULT_DOMAIN */
#define TM_NUMPY_DOMAIN   389047u       /* NumPy's NPY_TRACE_DOMAIN */
/* total_nframe of tracebacks that do not carry one: traces from 3.8 pickles
 * and the keys that statistics() builds (Python's total_nframe=None). */
#define TM_TOTAL_NFRAME_NONE UINT32_MAX
/* tracemalloc's MAX_NFRAME (3.9+); also our upper bound for traceback_limit */
#define TM_MAX_NFRAME 65535u

/* One line of error text for the user: what failed and why. */
struct tm_error {
	char msg[320];
};
void tm_error_set(struct tm_error *err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* A string is UTF-8 as Python encodes it with 'surrogatepass' (so filenames
 * holding undecodable bytes round-trip exactly). It is NUL-terminated for
 * convenience but may itself contain NUL bytes: always use len. */
struct tm_str {
	const char *data;
	uint32_t len;
};

struct tm_frame {
	tm_id filename;                 /* string id */
	uint32_t lineno;
};

struct tm_traceback {
	uint32_t first;                 /* index of the first frame id in frame_ids[] */
	uint32_t nframe;                /* >= 1 */
	uint32_t total_nframe;          /* or TM_TOTAL_NFRAME_NONE */
};

struct tm_trace {
	uint64_t address;               /* block address; 0 when unknown (CPython pickles) */
	uint64_t size;
	uint32_t domain;
	tm_id traceback;
};

/* How a snapshot was captured. Pickles from CPython load as TM_TIER_TRACEMALLOC. */
enum tm_tier {
	TM_TIER_TRACEMALLOC = 0,        /* in-process tracemalloc (imported pickle) */
	TM_TIER_EXACT = 1,              /* CPython allocator domains, every call */
	TM_TIER_NATIVE = 2,             /* libc allocator, byte-sampled */
	TM_TIER_GROWTH = 3,             /* page faults, brk, mmap tracepoints */
};

enum tm_coverage {
	TM_COVERAGE_UNKNOWN = 0,
	TM_COVERAGE_COMPLETE = 1,       /* every event of the tier was seen */
	TM_COVERAGE_PARTIAL = 2,        /* some events cannot be seen (see coverage_note) */
	TM_COVERAGE_SAMPLED = 3,        /* sampled: sizes are estimates (see sample_period) */
};

/* A named count the user must see: lost events, full maps, unreadable frames... */
struct tm_counter {
	tm_id name;                     /* string id, e.g. "lost.live_map_full" */
	uint64_t value;
};

struct tm_capture {
	enum tm_tier tier;
	enum tm_coverage coverage;
	tm_id coverage_note;            /* string id or TM_ID_NONE */
	uint64_t sample_period;         /* bytes per sample; 0 = not sampled */
	int32_t pid;                    /* 0 when unknown */
	tm_id command;                  /* string id or TM_ID_NONE: target command line */
	tm_id python;                   /* string id or TM_ID_NONE: e.g. "3.11.2 /usr/bin/python3.11" */
	uint64_t start_ns;              /* CLOCK_REALTIME of the start of capture; 0 = unknown */
	uint64_t taken_ns;              /* CLOCK_REALTIME when the snapshot was taken */
	uint64_t traced_current;        /* get_traced_memory()[0] at snapshot time */
	uint64_t traced_peak;           /* get_traced_memory()[1] */
	uint64_t tracer_memory;         /* get_tracemalloc_memory(): BPF maps + userspace */
	uint32_t ncounters;
	struct tm_counter *counters;    /* owned by the snapshot */
};

struct tm_snapshot {
	/* string table: string i is str_pool[str_off[i] .. str_off[i+1]-1), each
	 * followed by a NUL that is not part of the string (str_off[i+1]-1 is it). */
	char *str_pool;
	uint64_t str_pool_len, str_pool_cap;
	uint64_t *str_off;              /* nstrings + 1 entries */
	uint32_t nstrings, str_cap;

	struct tm_frame *frames;
	uint32_t nframes, frames_cap;

	tm_id *frame_ids;               /* frame ids of all tracebacks, back to back */
	uint32_t nframe_ids, frame_ids_cap;

	struct tm_traceback *tracebacks;
	uint32_t ntracebacks, tracebacks_cap;

	struct tm_trace *traces;
	uint64_t ntraces, traces_cap;
	/*
	 * Blocks per trace, or NULL: every trace is one block (what CPython and
	 * the tracers produce). A snapshot loaded for analysis only
	 * (TM_LOAD_AGGREGATE, snapfile.h) keeps a trace per (traceback, domain)
	 * instead of one per block -- normally one; a pair may be summed in a few
	 * parts -- whose size is the sum of the sizes of those blocks and
	 * trace_counts[i] their number. statistics(),
	 * compare_to(), filter_traces() and the flame graph depend on nothing
	 * else, so they give the same results on both; code that counts blocks
	 * uses tm_trace_count() / tm_snapshot_block_count(). Such a snapshot has
	 * no addresses (all 0) and no meaningful trace order, and the writers
	 * refuse it: it no longer knows its blocks. Each count is >= 1 and their
	 * sum <= INT64_MAX (tm_snapshot_validate). traces_cap entries, owned.
	 */
	uint64_t *trace_counts;

	uint32_t traceback_limit;       /* Snapshot.traceback_limit */
	struct tm_capture capture;

	/* Value-keyed hash indexes for interning (open addressing over ids). They are
	 * built lazily on the first intern call, so a snapshot loaded from a file
	 * costs nothing for them until something new is added. Private. */
	struct tm_index *str_index, *frame_index, *tb_index;
};

/* ---- lifetime ---------------------------------------------------------- */
struct tm_snapshot *tm_snapshot_new(void);
void tm_snapshot_free(struct tm_snapshot *s);

/* ---- building (interning). All return TM_ID_NONE on allocation failure or
 * when a table would exceed UINT32_MAX-1 entries. ------------------------- */
tm_id tm_intern_string(struct tm_snapshot *s, const char *data, size_t len);
tm_id tm_intern_frame(struct tm_snapshot *s, tm_id filename, uint32_t lineno);
/* frames: frame ids, most recent first; nframe >= 1. Identical (frames,
 * total_nframe) pairs give the same id. */
tm_id tm_intern_traceback(struct tm_snapshot *s, const tm_id *frames, uint32_t nframe,
			  uint32_t total_nframe);
/* 0 on success, -1 on allocation failure. On an aggregated snapshot the new
 * trace counts one block. */
int tm_add_trace(struct tm_snapshot *s, uint32_t domain, uint64_t size, tm_id traceback,
		 uint64_t address);
/* Adds or replaces a named counter. */
int tm_set_counter(struct tm_snapshot *s, const char *name, uint64_t value);

/* ---- access ------------------------------------------------------------ */
static inline struct tm_str tm_string(const struct tm_snapshot *s, tm_id id)
{
	struct tm_str r = { s->str_pool + s->str_off[id],
			    (uint32_t)(s->str_off[id + 1] - s->str_off[id] - 1) };
	return r;
}

/* Python's order of two str: byte order of their UTF-8 (surrogatepass
 * included) is code point order, and a prefix comes first. <0, 0, >0. */
static inline int tm_str_cmp(struct tm_str a, struct tm_str b)
{
	int c = memcmp(a.data, b.data, a.len < b.len ? a.len : b.len);

	if (c)
		return c;
	return (a.len > b.len) - (a.len < b.len);
}
static inline const tm_id *tm_traceback_frames(const struct tm_snapshot *s, tm_id tb)
{
	return s->frame_ids + s->tracebacks[tb].first;
}

/* How many blocks trace i stands for (1 unless the snapshot is aggregated). */
static inline uint64_t tm_trace_count(const struct tm_snapshot *s, uint64_t i)
{
	return s->trace_counts ? s->trace_counts[i] : 1;
}

/* Number of blocks: ntraces, or the sum of the counts of an aggregated snapshot. */
uint64_t tm_snapshot_block_count(const struct tm_snapshot *s);

/* Sum of trace sizes. The loaders refuse snapshots whose total exceeds
 * INT64_MAX, so sums and differences of sizes never overflow int64. */
uint64_t tm_snapshot_total_size(const struct tm_snapshot *s);

/* Self-check of every id and range (what the file loaders enforce). 0 = valid. */
int tm_snapshot_validate(const struct tm_snapshot *s, struct tm_error *err);

#endif /* TMBPF_SNAPSHOT_H */
