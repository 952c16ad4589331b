/* SPDX-License-Identifier: MIT */
/*
 * Private to the snapshot file code (native.c, pickle_read.c, pickle_write.c,
 * snapfile.c) and to its tests and fuzzers: the writers' stream entry points,
 * pickle opcodes, the reader's limits and the UTF-8 check both pickle sides use.
 */
#ifndef TMBPF_SNAPFILE_PRIV_H
#define TMBPF_SNAPFILE_PRIV_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "snapshot/snapfile.h"

/* ---- input ------------------------------------------------------------------- */

/*
 * What a loader reads: a file (pread, so that a file load never holds the
 * whole file: the native loader reads each table into place, the pickle
 * reader streams through a window) or bytes in memory (read in place).
 */
struct tm_input {
	int fd;                 /* read with pread when >= 0 */
	const void *mem;        /* else the input is here */
	uint64_t size;          /* its length (a file's, from fstat) */
	/* For tests and fuzzers: stream even an input in memory through a
	 * window of this many bytes (0: in place for memory, the default window
	 * for files), reading at most max_read bytes per call (0: no limit). */
	size_t window, max_read;
};

#define TM_INPUT_WINDOW (256u << 10)    /* the default streaming window */

/* Reads exactly n bytes at offset off; 0, or -1 with err set (an I/O error,
 * or a file that no longer has the size it had when it was opened). */
int tm_input_read(const struct tm_input *in, uint64_t off, void *buf, size_t n,
		  struct tm_error *err);

/* The loaders on an input; flags as for tm_snapshot_load_opts(). The input
 * must be in the format (tm_detect_format). */
struct tm_snapshot *tm_native_load_input(const struct tm_input *in, unsigned flags,
					 struct tm_error *err);
struct tm_snapshot *tm_pickle_load_input(const struct tm_input *in, unsigned flags,
					 struct tm_error *err);
/* Detects the format and loads (what tm_snapshot_load_opts does on a file). */
struct tm_snapshot *tm_snapshot_load_input(const struct tm_input *in, unsigned flags,
					   struct tm_error *err);

/* ---- checking what was loaded --------------------------------------------------- */

/* tm_snapshot_validate() in its three steps, in its order, for loaders that
 * check traces as they read them: the tables (strings, frames, frame ids,
 * tracebacks), then each trace (tm_trace_ok), then the capture information
 * and counters. The messages are tm_snapshot_validate()'s. */
int tm_validate_tables(const struct tm_snapshot *s, struct tm_error *err);
int tm_validate_capture(const struct tm_snapshot *s, struct tm_error *err);

/* Trace t names a traceback of s, and the running total of sizes stays
 * <= INT64_MAX (then added to *total). */
static inline bool tm_trace_ok(const struct tm_snapshot *s, const struct tm_trace *t,
			       uint64_t *total)
{
	if (t->traceback >= s->ntracebacks || t->size > (uint64_t)INT64_MAX - *total)
		return false;
	*total += t->size;
	return true;
}

/* Why trace i failed tm_trace_ok(); always -1. */
int tm_validate_trace_error(const struct tm_snapshot *s, uint64_t i, const struct tm_trace *t,
			    struct tm_error *err);

/* ---- aggregation ------------------------------------------------------------------ */

/*
 * The (traceback, domain) pairs of an aggregated load, numbered densely in
 * order of first appearance. Most tracebacks are used with one domain only:
 * the first pair of each traceback is found by an array lookup, the others
 * in a hash table (so that a hostile file with many domains per traceback
 * costs no more than one with many tracebacks).
 */
struct tm_trace_key {
	tm_id traceback;
	uint32_t domain;
};

struct tm_trace_key_first {
	tm_id id;                       /* of the traceback's first pair, or NONE */
	uint32_t domain;                /* its domain */
};

struct tm_trace_keys {
	struct tm_trace_key *keys;      /* id -> pair */
	uint32_t n, cap;
	struct tm_trace_key_first *first;       /* by traceback */
	uint32_t first_len;
	tm_id *other;                   /* the other pairs' ids, open addressing by
					 * pair, half full at most; NONE = empty */
	unsigned other_bits;
	uint32_t other_count;
};

void tm_trace_keys_destroy(struct tm_trace_keys *k);
tm_id tm_trace_keys_add(struct tm_trace_keys *k, tm_id traceback, uint32_t domain);

/* Slot of a pair in the other pairs' table: Fibonacci hashing. */
static inline uint64_t tm_trace_key_hash(tm_id traceback, uint32_t domain, unsigned bits)
{
	return (((uint64_t)traceback << 32 | domain) * 0x9e3779b97f4a7c15ULL) >> (64 - bits);
}

/* The id of (traceback, domain), numbered k->n - 1 when new; TM_ID_NONE when
 * out of memory or out of ids. */
static inline tm_id tm_trace_keys_get(struct tm_trace_keys *k, tm_id traceback, uint32_t domain)
{
	if (traceback < k->first_len && k->first[traceback].id != TM_ID_NONE) {
		uint64_t mask, j;
		tm_id id;

		if (k->first[traceback].domain == domain)
			return k->first[traceback].id;
		if (k->other) {
			mask = ((uint64_t)1 << k->other_bits) - 1;
			for (j = tm_trace_key_hash(traceback, domain, k->other_bits);
			     (id = k->other[j]) != TM_ID_NONE; j = (j + 1) & mask)
				if (k->keys[id].traceback == traceback &&
				    k->keys[id].domain == domain)
					return id;
		}
	}
	return tm_trace_keys_add(k, traceback, domain);
}

/* ---- native format --------------------------------------------------------- */

#define TM_NATIVE_MAGIC "\x89tmbpf\r\n"       /* 8 bytes, see native.c */
#define TM_NATIVE_MAGIC_LEN 8
#define TM_NATIVE_VERSION_MAJOR 1
#define TM_NATIVE_VERSION_MINOR 0

/* What both writers say about an aggregated snapshot (trace_counts): its
 * traces are sums, so neither format can describe its blocks. */
#define TM_AGGREGATED_WRITE_ERROR "the snapshot was loaded aggregated for analysis (one " \
	"trace per traceback and domain): it no longer has its blocks and cannot be written"

/* Writes s in the native format to fp (no atomicity: see tm_atomic_*). */
int tm_native_write(const struct tm_snapshot *s, FILE *fp, struct tm_error *err);

/* ---- pickle ---------------------------------------------------------------- */

/* Writes s as a pickle that tracemalloc.Snapshot.load() reads. */
int tm_pickle_write(const struct tm_snapshot *s, FILE *fp, enum tm_pickle_flavor flavor,
		    struct tm_error *err);

/* Pickle opcodes (names as in Lib/pickletools.py). */
enum tm_pickle_op {
	PK_OP_MARK = '(', PK_OP_STOP = '.', PK_OP_POP = '0', PK_OP_POP_MARK = '1',
	PK_OP_DUP = '2', PK_OP_FLOAT = 'F', PK_OP_INT = 'I', PK_OP_BININT = 'J',
	PK_OP_BININT1 = 'K', PK_OP_LONG = 'L', PK_OP_BININT2 = 'M', PK_OP_NONE = 'N',
	PK_OP_PERSID = 'P', PK_OP_BINPERSID = 'Q', PK_OP_REDUCE = 'R', PK_OP_STRING = 'S',
	PK_OP_BINSTRING = 'T', PK_OP_SHORT_BINSTRING = 'U', PK_OP_UNICODE = 'V',
	PK_OP_BINUNICODE = 'X', PK_OP_APPEND = 'a', PK_OP_BUILD = 'b', PK_OP_GLOBAL = 'c',
	PK_OP_DICT = 'd', PK_OP_EMPTY_DICT = '}', PK_OP_APPENDS = 'e', PK_OP_GET = 'g',
	PK_OP_BINGET = 'h', PK_OP_INST = 'i', PK_OP_LONG_BINGET = 'j', PK_OP_LIST = 'l',
	PK_OP_EMPTY_LIST = ']', PK_OP_OBJ = 'o', PK_OP_PUT = 'p', PK_OP_BINPUT = 'q',
	PK_OP_LONG_BINPUT = 'r', PK_OP_SETITEM = 's', PK_OP_TUPLE = 't',
	PK_OP_EMPTY_TUPLE = ')', PK_OP_SETITEMS = 'u', PK_OP_BINFLOAT = 'G',
	/* protocol 2 */
	PK_OP_PROTO = 0x80, PK_OP_NEWOBJ = 0x81, PK_OP_EXT1 = 0x82, PK_OP_EXT2 = 0x83,
	PK_OP_EXT4 = 0x84, PK_OP_TUPLE1 = 0x85, PK_OP_TUPLE2 = 0x86, PK_OP_TUPLE3 = 0x87,
	PK_OP_NEWTRUE = 0x88, PK_OP_NEWFALSE = 0x89, PK_OP_LONG1 = 0x8a, PK_OP_LONG4 = 0x8b,
	/* protocol 3 */
	PK_OP_BINBYTES = 'B', PK_OP_SHORT_BINBYTES = 'C',
	/* protocol 4 */
	PK_OP_SHORT_BINUNICODE = 0x8c, PK_OP_BINUNICODE8 = 0x8d, PK_OP_BINBYTES8 = 0x8e,
	PK_OP_EMPTY_SET = 0x8f, PK_OP_ADDITEMS = 0x90, PK_OP_FROZENSET = 0x91,
	PK_OP_NEWOBJ_EX = 0x92, PK_OP_STACK_GLOBAL = 0x93, PK_OP_MEMOIZE = 0x94,
	PK_OP_FRAME = 0x95,
	/* protocol 5 */
	PK_OP_BYTEARRAY8 = 0x96, PK_OP_NEXT_BUFFER = 0x97, PK_OP_READONLY_BUFFER = 0x98,
};

#define TM_PICKLE_HIGHEST_PROTOCOL 5

/* Reader limits. A snapshot pickle nests three MARKs deep and keeps at most a
 * batch of 1000 items (plus a few) on the stack; these bounds are far above
 * that and keep a hostile file from using unbounded memory. */
#define TM_PICKLE_MAX_MARKS 4096u
#define TM_PICKLE_MAX_STACK (1u << 24)
/* A memo index may run ahead of the entries stored so far by this much (every
 * pickler numbers its memo 0, 1, 2...; a far-away index is a hostile file
 * trying to make the memo huge). */
#define TM_PICKLE_MEMO_SLACK 1024u
/* Frame ids the distinct tracebacks of a pickle may store: half its size plus
 * this (see pk_traceback()). */
#define TM_PICKLE_FRAME_ID_SLACK (1u << 24)

/* True when data[0..len) is UTF-8 as Python's 'utf-8' codec with the
 * 'surrogatepass' error handler decodes it (strict UTF-8, except that encoded
 * surrogates U+D800..U+DFFF are allowed). On failure *bad is the offset of
 * the first invalid byte. */
bool tm_utf8_valid(const void *data, size_t len, size_t *bad);

/* ---- comparison (tests and fuzzers) ---------------------------------------- */

/* Whether a and b hold the same traces in the same order: domain, size, block count,
 * address (when with_address), frames by value (filename bytes and line) and
 * total_nframe (a's TM_TOTAL_NFRAME_NONE matching b's nframe when
 * none_is_nframe, as a 4-tuple pickle writes it) and the same traceback_limit.
 * On a difference, *why says where. */
bool tm_snapshot_same_traces(const struct tm_snapshot *a, const struct tm_snapshot *b,
			     bool with_address, bool none_is_nframe, char *why, size_t why_size);

/* Whether a and b hold the same sums of sizes and block counts per
 * (traceback by value, domain) -- what an aggregated load must keep of a full
 * one -- and the same traceback_limit; with no_domains, per traceback (the
 * domains of both are ignored). On a difference, *why says where. */
bool tm_snapshot_same_sums(const struct tm_snapshot *a, const struct tm_snapshot *b,
			   bool no_domains, char *why, size_t why_size);

#endif /* TMBPF_SNAPFILE_PRIV_H */
