/* SPDX-License-Identifier: MIT */
/*
 * Private to the snapshot file code (native.c, pickle_read.c, pickle_write.c,
 * snapfile.c) and to its tests and fuzzers: the writers' stream entry points,
 * pickle opcodes, the reader's limits and the UTF-8 check both pickle sides use.
 */
#ifndef TMBPF_SNAPFILE_PRIV_H
#define TMBPF_SNAPFILE_PRIV_H

#include <stdbool.h>
#include <stdio.h>

#include "snapshot/snapfile.h"

/* ---- native format --------------------------------------------------------- */

#define TM_NATIVE_MAGIC "\x89tmbpf\r\n"       /* 8 bytes, see native.c */
#define TM_NATIVE_MAGIC_LEN 8
#define TM_NATIVE_VERSION_MAJOR 1
#define TM_NATIVE_VERSION_MINOR 0

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

/* Whether a and b hold the same traces in the same order: domain, size,
 * address (when with_address), frames by value (filename bytes and line) and
 * total_nframe (a's TM_TOTAL_NFRAME_NONE matching b's nframe when
 * none_is_nframe, as a 4-tuple pickle writes it) and the same traceback_limit.
 * On a difference, *why says where. */
bool tm_snapshot_same_traces(const struct tm_snapshot *a, const struct tm_snapshot *b,
			     bool with_address, bool none_is_nframe, char *why, size_t why_size);

#endif /* TMBPF_SNAPFILE_PRIV_H */
