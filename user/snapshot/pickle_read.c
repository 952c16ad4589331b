// SPDX-License-Identifier: MIT
/*
 * Reader of the pickles that CPython's tracemalloc.Snapshot.dump() writes
 * (3.8-3.13: protocol 5 opcodes, which are protocol 4's), and of the same
 * object graph pickled with any protocol 0-5:
 *
 *   tracemalloc.Snapshot  NEWOBJ (or copyreg._reconstructor for protocols 0/1)
 *     + BUILD {'traces': _Traces, 'traceback_limit': int}
 *   tracemalloc._Traces   + BUILD {'_traces': [trace, ...]}
 *   trace  = (domain, size, frames, total_nframe)     3.8: (domain, size, frames)
 *   frames = ((filename, lineno), ...)                 most recent first
 *
 * It is a small pickle machine (stack, marks, memo) with CPython's C
 * unpickler semantics (Modules/_pickle.c: the MARK "fence", MEMOIZE numbering,
 * readline rules), but it only ever builds what a snapshot holds: ints, str,
 * None, tuples, lists of traces, dicts with str keys, and instances of the two
 * allowed classes. Globals are compared by name and never resolved; any other
 * global, REDUCE of anything but copyreg._reconstructor(cls, object, None),
 * and every opcode a snapshot cannot contain are refused with the opcode and
 * its offset in the error.
 *
 * Speed: instead of building generic objects for each trace, tuples are
 * recognised when they are built and stored as what they are:
 *   (str, int)               -> a frame id of the snapshot (PK_FRAME)
 *   (frame, frame, ...)      -> a frame sequence (PK_FRAMES)
 *   (int, int, frames[, n])  -> a trace record with its interned traceback
 * Because dump() memoizes every filename, frame and frames tuple, each is
 * recognised and interned once and every later trace is a memo lookup (BINGET)
 * plus a cache hit, and the list of traces is directly the snapshot's array.
 * dump()'s seven opcodes per trace (MARK, domain, size, BINGET, total, TUPLE,
 * MEMOIZE) run as one step when they come as dump() writes them
 * (pk_fast_trace(), with the same effect and checks). Anything else is kept
 * as a generic tuple, so unusual but valid layouts (protocol 0, no memo) load
 * through the same code, only slower.
 *
 * Memory: a file is streamed through a window (pk_fill()) rather than read
 * whole; the memo holds an 8-byte placeholder for each of dump()'s memoized
 * trace tuples (never looked up again by dump(), but a hand-made pickle may);
 * an aggregated load (TM_LOAD_AGGREGATE) sums the traces of the list per
 * (traceback, domain) key as they are appended instead of keeping them, so a
 * file of a million traces costs its memo and its few tens of thousands of
 * tracebacks, not its traces. Every check is made the same way in every mode
 * (tests/unit/test_aggregate.c, the fuzzers).
 *
 * Bounds: every length is checked against the remaining input before use, the
 * stack, marks and memo are limited (snapfile_priv.h), every container grows
 * with the input that fills it, and nothing recurses. A frame sequence's
 * traceback is looked up in a (sequence, total_nframe) map so that a hostile
 * file cannot make the same long traceback be hashed again and again, and the
 * frames stored by distinct tracebacks are limited by the input size.
 */
#include "snapshot/snapfile.h"
#include "snapshot/snapfile_priv.h"
#include "snapshot/index.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* ---- values ---------------------------------------------------------------- */

enum pk_kind {
	PK_UNSET = 0,   /* a memo slot never stored, an absent attribute */
	PK_NONE,
	PK_INT,         /* 0 <= value < 2**64 (u); bools are ints, as in Python */
	PK_NEGINT,      /* value < 0; u holds it as int64 when b != 0 */
	PK_HUGEINT,     /* value >= 2**64 */
	PK_STR,         /* a: index into vm->strs */
	PK_FRAME,       /* the tuple (filename, lineno); a: frame id in the snapshot */
	PK_FRAMES,      /* a tuple of PK_FRAME values; a: index into vm->fseqs */
	PK_TRACE,       /* a valid trace tuple; a: its key, an index into vm->keys
			 * (traceback and domain), u: size */
	PK_TUPLE,       /* any other tuple; a: index into vm->tuples */
	PK_LIST,        /* a list of traces; a: index into vm->lists */
	PK_DICT,        /* a: index into vm->dicts */
	PK_CLASS,       /* an allowed global; a: enum pk_global */
	PK_OBJECT,      /* a Snapshot or _Traces instance; a: index into vm->objects */
};

struct pk_value {
	uint64_t u;
	uint32_t a, b;
	uint8_t kind;
};

enum pk_global {
	PK_G_SNAPSHOT,          /* tracemalloc.Snapshot */
	PK_G_TRACES,            /* tracemalloc._Traces */
	PK_G_RECONSTRUCTOR,     /* copyreg._reconstructor (protocols 0 and 1) */
	PK_G_OBJECT,            /* builtins.object (its argument) */
};

/* as values, for messages */
static const char *const pk_global_names[] = {
	"the class tracemalloc.Snapshot", "the class tracemalloc._Traces",
	"the function copyreg._reconstructor", "the class builtins.object",
};

/* The instance attributes a snapshot uses; a dict (BUILD state) keeps only
 * these keys: the others cannot matter to the snapshot. */
enum pk_attr { PK_ATTR_TRACES, PK_ATTR_LIMIT, PK_ATTR_TRACES_LIST, PK_NATTRS };
static const char *const pk_attr_names[] = { "traces", "traceback_limit", "_traces" };

struct pk_attrs {
	struct pk_value v[PK_NATTRS];
};

struct pk_object {
	enum pk_global cls;
	struct pk_attrs attrs;
};

/* A string: bytes in the input (binary opcodes) or in vm->arena (decoded
 * protocol-0 UNICODE), with its snapshot string id once it is a filename. */
struct pk_str {
	uint64_t off;
	uint32_t len;
	tm_id sid;
	bool in_arena;
};

struct pk_fseq {
	uint64_t first;         /* into vm->fbuf */
	uint32_t n;
	uint32_t last_total;    /* one-entry cache of the last traceback built */
	tm_id last_tb;
};

/* The trace keys of each frame sequence's last traceback (vm->fkeys, by
 * sequence), one per domain it was seen with (up to PK_FSEQ_DOMAINS), and
 * the last one used (vm->fmru): every trace reads the latter, which is kept
 * small so that the table of all of them stays in the CPU caches. */
#define PK_FSEQ_DOMAINS 4u

struct pk_fseq_key {
	uint32_t total;
	tm_id tb;               /* the traceback (fs, total); TM_ID_NONE: none yet */
	uint32_t domain[PK_FSEQ_DOMAINS];
	tm_id key[PK_FSEQ_DOMAINS];     /* TM_ID_NONE: free */
};

struct pk_fseq_mru {
	uint32_t total, domain;
	tm_id key;              /* TM_ID_NONE: none yet */
};

struct pk_tuple {
	uint64_t first;         /* into vm->elems */
	uint32_t n;
};

/*
 * A list of traces. A full load keeps the traces; an aggregated one keeps one
 * item per (traceback, domain) key with the sum of the sizes and the number
 * of traces (counts). dump() has one list, whose sums are kept in vm->acc,
 * indexed by key id; any other list (a hostile or hand-made pickle) keeps its
 * items itself, found through a small hash table from key id to item. Either
 * way the running total of the sizes is checked as traces come.
 */
struct pk_slot {
	tm_id key;              /* TM_ID_NONE = empty */
	uint32_t item;
};

struct pk_list {
	struct tm_trace *items;
	uint64_t *counts;       /* aggregated: traces per item (cap entries) */
	uint64_t n, cap;
	uint64_t ntraces;       /* traces appended */
	uint64_t total;         /* sum of their sizes, while it fits int64 */
	uint64_t too_big_at;    /* the trace that made it exceed INT64_MAX, or UINT64_MAX */
	struct pk_slot *slots;  /* aggregated: key -> item, 2^shift_bits slots */
	unsigned slot_bits;
};

/* (frame sequence, total_nframe) -> traceback id, open addressing */
struct pk_tbmap {
	uint64_t *keys;         /* fseq << 32 | total; UINT64_MAX = empty */
	tm_id *vals;
	uint64_t mask, count;
};

/*
 * The input is read through a window: data[0 .. len) are the input bytes at
 * [base, base + len), and pos is the cursor in it. An input in memory is one
 * window (base 0, len = total); a file streams through a buffer that keeps
 * the bytes from the cursor on, refilled and grown (for one long item) by
 * pk_fill(). So nothing may keep a pointer into data across a pk_has():
 * strings of a streamed input are copied to the arena.
 */
struct pk_vm {
	const unsigned char *data;
	size_t len, pos;
	uint64_t base, total;
	const struct tm_input *in;      /* NULL: data is the whole input */
	unsigned char *buf;             /* the streaming window */
	size_t buf_cap;
	bool io_failed;                 /* a read failed: err says why */
	bool aggregate;
	bool no_domains;                /* aggregate: every trace key in domain 0 */
	uint64_t op_pos;        /* input offset of the opcode being run */
	unsigned op;
	unsigned proto;
	struct tm_snapshot *s;
	struct tm_error *err;
	uint64_t frame_id_budget;
	struct pk_key {
		tm_id traceback;
		uint32_t domain;
		uint32_t fs;            /* the frame sequence it was made for */
	} *keys;                        /* trace keys: see pk_trace_key() */
	uint32_t nkeys, keys_cap;
	struct pk_sum {
		uint64_t size, count;
	} *acc;                         /* aggregated: sums of list acc_list, by key */
	size_t acc_len, acc_cap;        /* initialised (zero) sums, room */
	uint32_t acc_list;              /* UINT32_MAX until a list gets a trace */

	struct pk_value *stack;
	size_t sp, stack_cap;
	size_t *marks;
	size_t nmarks, marks_cap;
	size_t fence;           /* stack index of the innermost mark (0 if none) */

	uint64_t *memo;         /* compact entries, see pk_memo_put() */
	size_t memo_cap;        /* allocated slots */
	size_t memo_init;       /* slots initialised (the others are unset): a
				 * realloc'd memo is not touched beyond its use */
	size_t memo_len;        /* slots set (what MEMOIZE numbers from) */
	size_t memo_stores;
	struct pk_value *memo_big;      /* memoized values too big for an entry */
	size_t memo_nbig, memo_big_cap;

	struct pk_str *strs;
	size_t nstrs, strs_cap;
	char *arena;
	size_t arena_len, arena_cap;
	struct pk_fseq *fseqs;
	size_t nfseqs, fseqs_cap;
	struct pk_fseq_key *fkeys;
	size_t fkeys_cap;
	struct pk_fseq_mru *fmru;
	size_t fmru_cap;
	tm_id *fbuf;
	size_t fbuf_len, fbuf_cap;
	struct pk_tuple *tuples;
	size_t ntuples, tuples_cap;
	struct pk_value *elems;
	size_t elems_len, elems_cap;
	struct pk_list *lists;
	size_t nlists, lists_cap;
	struct pk_attrs *dicts;
	size_t ndicts, dicts_cap;
	struct pk_object *objects;
	size_t nobjects, objects_cap;
	struct pk_tbmap tbmap;
};

/* ---- errors ---------------------------------------------------------------- */

static const char *pk_op_name(unsigned op)
{
	switch (op) {
	case PK_OP_MARK: return "MARK";
	case PK_OP_STOP: return "STOP";
	case PK_OP_POP: return "POP";
	case PK_OP_POP_MARK: return "POP_MARK";
	case PK_OP_DUP: return "DUP";
	case PK_OP_FLOAT: return "FLOAT";
	case PK_OP_INT: return "INT";
	case PK_OP_BININT: return "BININT";
	case PK_OP_BININT1: return "BININT1";
	case PK_OP_LONG: return "LONG";
	case PK_OP_BININT2: return "BININT2";
	case PK_OP_NONE: return "NONE";
	case PK_OP_PERSID: return "PERSID";
	case PK_OP_BINPERSID: return "BINPERSID";
	case PK_OP_REDUCE: return "REDUCE";
	case PK_OP_STRING: return "STRING";
	case PK_OP_BINSTRING: return "BINSTRING";
	case PK_OP_SHORT_BINSTRING: return "SHORT_BINSTRING";
	case PK_OP_UNICODE: return "UNICODE";
	case PK_OP_BINUNICODE: return "BINUNICODE";
	case PK_OP_APPEND: return "APPEND";
	case PK_OP_BUILD: return "BUILD";
	case PK_OP_GLOBAL: return "GLOBAL";
	case PK_OP_DICT: return "DICT";
	case PK_OP_EMPTY_DICT: return "EMPTY_DICT";
	case PK_OP_APPENDS: return "APPENDS";
	case PK_OP_GET: return "GET";
	case PK_OP_BINGET: return "BINGET";
	case PK_OP_INST: return "INST";
	case PK_OP_LONG_BINGET: return "LONG_BINGET";
	case PK_OP_LIST: return "LIST";
	case PK_OP_EMPTY_LIST: return "EMPTY_LIST";
	case PK_OP_OBJ: return "OBJ";
	case PK_OP_PUT: return "PUT";
	case PK_OP_BINPUT: return "BINPUT";
	case PK_OP_LONG_BINPUT: return "LONG_BINPUT";
	case PK_OP_SETITEM: return "SETITEM";
	case PK_OP_TUPLE: return "TUPLE";
	case PK_OP_EMPTY_TUPLE: return "EMPTY_TUPLE";
	case PK_OP_SETITEMS: return "SETITEMS";
	case PK_OP_BINFLOAT: return "BINFLOAT";
	case PK_OP_PROTO: return "PROTO";
	case PK_OP_NEWOBJ: return "NEWOBJ";
	case PK_OP_EXT1: return "EXT1";
	case PK_OP_EXT2: return "EXT2";
	case PK_OP_EXT4: return "EXT4";
	case PK_OP_TUPLE1: return "TUPLE1";
	case PK_OP_TUPLE2: return "TUPLE2";
	case PK_OP_TUPLE3: return "TUPLE3";
	case PK_OP_NEWTRUE: return "NEWTRUE";
	case PK_OP_NEWFALSE: return "NEWFALSE";
	case PK_OP_LONG1: return "LONG1";
	case PK_OP_LONG4: return "LONG4";
	case PK_OP_BINBYTES: return "BINBYTES";
	case PK_OP_SHORT_BINBYTES: return "SHORT_BINBYTES";
	case PK_OP_SHORT_BINUNICODE: return "SHORT_BINUNICODE";
	case PK_OP_BINUNICODE8: return "BINUNICODE8";
	case PK_OP_BINBYTES8: return "BINBYTES8";
	case PK_OP_EMPTY_SET: return "EMPTY_SET";
	case PK_OP_ADDITEMS: return "ADDITEMS";
	case PK_OP_FROZENSET: return "FROZENSET";
	case PK_OP_NEWOBJ_EX: return "NEWOBJ_EX";
	case PK_OP_STACK_GLOBAL: return "STACK_GLOBAL";
	case PK_OP_MEMOIZE: return "MEMOIZE";
	case PK_OP_FRAME: return "FRAME";
	case PK_OP_BYTEARRAY8: return "BYTEARRAY8";
	case PK_OP_NEXT_BUFFER: return "NEXT_BUFFER";
	case PK_OP_READONLY_BUFFER: return "READONLY_BUFFER";
	default: return NULL;
	}
}

/* "pickle opcode 0x74 (TUPLE) at offset 12: <what>"; always returns -1 */
__attribute__((format(printf, 2, 3)))
static int pk_fail(struct pk_vm *vm, const char *fmt, ...)
{
	char what[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	tm_error_set(vm->err, "pickle opcode 0x%02x (%s) at offset %" PRIu64 ": %s", vm->op,
		     pk_op_name(vm->op), vm->op_pos, what);
	return -1;
}

static int pk_refuse(struct pk_vm *vm)
{
	tm_error_set(vm->err, "pickle opcode 0x%02x (%s) at offset %" PRIu64 " is not allowed "
		     "in a tracemalloc snapshot", vm->op, pk_op_name(vm->op), vm->op_pos);
	return -1;
}

/* The input ends inside the opcode (unless a read failed: err says so). */
static int pk_truncated(struct pk_vm *vm)
{
	if (vm->io_failed)
		return -1;
	tm_error_set(vm->err, "pickle data ends at offset %" PRIu64 " inside opcode 0x%02x "
		     "(%s) at offset %" PRIu64 " (truncated file?)", vm->total, vm->op,
		     pk_op_name(vm->op), vm->op_pos);
	return -1;
}

static int pk_nomem(struct pk_vm *vm)
{
	return pk_fail(vm, "out of memory");
}

/* A name from the file, printable: escapes and shortens it. */
static void pk_quote(char *out, size_t size, const unsigned char *p, size_t n)
{
	size_t o = 0, i;

	for (i = 0; i < n && o + 5 < size; i++) {
		if (i == 60) {
			o += (size_t)snprintf(out + o, size - o, "...");
			break;
		}
		if (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '\\')
			out[o++] = (char)p[i];
		else
			o += (size_t)snprintf(out + o, size - o, "\\x%02x", p[i]);
	}
	out[o < size ? o : size - 1] = '\0';
}

/* ---- storage helpers --------------------------------------------------------- */

/* Makes room for `need` elements; 0 or -1 (error set). */
static int pk_reserve(struct pk_vm *vm, void **arr, size_t *cap, size_t need, size_t elem)
{
	size_t new_cap;
	void *p;

	if (need <= *cap)
		return 0;
	new_cap = *cap < 16 ? 16 : *cap;
	while (new_cap < need) {
		if (new_cap > SIZE_MAX / 2)
			return pk_nomem(vm);
		new_cap *= 2;
	}
	if (new_cap > SIZE_MAX / elem)
		return pk_nomem(vm);
	p = realloc(*arr, new_cap * elem);
	if (!p)
		return pk_nomem(vm);
	*arr = p;
	*cap = new_cap;
	return 0;
}

#define PK_RESERVE(vm, arr, cap, need) \
	pk_reserve((vm), (void **)&(arr), &(cap), (need), sizeof(*(arr)))

static const char *pk_str_data(const struct pk_vm *vm, const struct pk_str *str)
{
	return str->in_arena ? vm->arena + str->off : (const char *)vm->data + str->off;
}

static bool pk_str_is(const struct pk_vm *vm, const struct pk_value *v, const char *lit)
{
	const struct pk_str *str = &vm->strs[v->a];
	size_t n = strlen(lit);

	return str->len == n && memcmp(pk_str_data(vm, str), lit, n) == 0;
}

/* ---- the stack ---------------------------------------------------------------- */

static inline int pk_push(struct pk_vm *vm, struct pk_value v)
{
	if (vm->sp == vm->stack_cap) {
		if (vm->sp >= TM_PICKLE_MAX_STACK)
			return pk_fail(vm, "more than %u values on the stack",
				       TM_PICKLE_MAX_STACK);
		if (PK_RESERVE(vm, vm->stack, vm->stack_cap, vm->sp + 1))
			return -1;
	}
	vm->stack[vm->sp++] = v;
	return 0;
}

/* Room for one more value without pushing it (an empty tuple replaces
 * nothing on the stack). */
static int pk_room(struct pk_vm *vm)
{
	if (pk_push(vm, (struct pk_value){ .kind = PK_NONE }))
		return -1;
	vm->sp--;
	return 0;
}

/* Values above the innermost MARK: what an opcode may pop (CPython's fence). */
static inline size_t pk_avail(const struct pk_vm *vm)
{
	return vm->sp - vm->fence;
}

static int pk_underflow(struct pk_vm *vm, size_t need)
{
	if (vm->sp >= need)     /* there are values, but below the last MARK */
		return pk_fail(vm, "needs %zu value%s above the last MARK", need,
			       need == 1 ? "" : "s");
	return pk_fail(vm, "needs %zu value%s on the stack (stack underflow)", need,
		       need == 1 ? "" : "s");
}

/* Pops the innermost mark; returns its stack index through *at. */
static int pk_pop_mark(struct pk_vm *vm, size_t *at)
{
	if (!vm->nmarks)
		return pk_fail(vm, "no MARK to close");
	*at = vm->marks[--vm->nmarks];
	vm->fence = vm->nmarks ? vm->marks[vm->nmarks - 1] : 0;
	return 0;
}

/* ---- reading the input ------------------------------------------------------- */

/* Input bytes after the cursor. */
static inline uint64_t pk_left(const struct pk_vm *vm)
{
	return vm->total - vm->base - vm->pos;
}

/* Moves the window to start at the cursor and reads until it holds n bytes
 * (growing it for one long item). False when the input has fewer, or when a
 * read fails (io_failed, err set). */
static bool pk_fill(struct pk_vm *vm, size_t n)
{
	size_t keep = vm->len - vm->pos, want;

	if (!vm->in || pk_left(vm) < n || vm->io_failed)
		return false;
	if (n > vm->buf_cap) {
		size_t cap = vm->buf_cap * 2 > n ? vm->buf_cap * 2 : n;
		unsigned char *b;

		if (cap > pk_left(vm))
			cap = (size_t)pk_left(vm);      /* >= n */
		b = malloc(cap);
		if (!b) {
			tm_error_set(vm->err, "out of memory reading the pickle (%zu bytes at "
				     "offset %" PRIu64 ")", n, vm->base + vm->pos);
			vm->io_failed = true;
			return false;
		}
		memcpy(b, vm->data + vm->pos, keep);
		free(vm->buf);
		vm->buf = b;
		vm->buf_cap = cap;
	} else {
		memmove(vm->buf, vm->data + vm->pos, keep);
	}
	vm->base += vm->pos;
	vm->pos = 0;
	vm->data = vm->buf;
	vm->len = keep;
	want = vm->buf_cap - keep;
	if (want > pk_left(vm) - keep)
		want = (size_t)(pk_left(vm) - keep);
	if (tm_input_read(vm->in, vm->base + keep, vm->buf + keep, want, vm->err)) {
		vm->io_failed = true;
		return false;
	}
	vm->len += want;
	return true;
}

/* Whether n bytes follow the cursor, in the window. */
static inline bool pk_has(struct pk_vm *vm, size_t n)
{
	return vm->len - vm->pos >= n || pk_fill(vm, n);
}

static uint64_t pk_le(const unsigned char *p, unsigned n)
{
	uint64_t v = 0;

	while (n--)
		v = v << 8 | p[n];
	return v;
}

/* Where the line that starts `from` bytes after the cursor ends: the offset
 * of its '\n' from the cursor (the line and what is before it are then in
 * the window). */
static int pk_line_end(struct pk_vm *vm, size_t from, size_t *end)
{
	for (;;) {
		const unsigned char *p = vm->data + vm->pos;
		const unsigned char *nl = memchr(p + from, '\n', vm->len - vm->pos - from);

		if (nl) {
			*end = (size_t)(nl - p);
			return 0;
		}
		from = vm->len - vm->pos;
		if (!pk_has(vm, from + 1))
			return pk_truncated(vm);
	}
}

/* A text argument: the bytes up to '\n' (which must be there, as for
 * CPython's _Unpickler_Readline); the newline is consumed, not returned. */
static int pk_readline(struct pk_vm *vm, const unsigned char **line, size_t *n)
{
	if (pk_line_end(vm, 0, n))
		return -1;
	*line = vm->data + vm->pos;
	vm->pos += *n + 1;
	return 0;
}

/* ---- ints ---------------------------------------------------------------- */

static struct pk_value pk_int(uint64_t v)
{
	return (struct pk_value){ .kind = PK_INT, .u = v };
}

static struct pk_value pk_signed(int64_t v)
{
	if (v >= 0)
		return pk_int((uint64_t)v);
	return (struct pk_value){ .kind = PK_NEGINT, .u = (uint64_t)v, .b = 1 };
}

/* LONG1/LONG4: n bytes of little-endian two's complement */
static struct pk_value pk_long_bytes(const unsigned char *p, size_t n)
{
	size_t i;

	if (n == 0)
		return pk_int(0);
	if (p[n - 1] & 0x80) {
		/* negative: it fits int64 when the bytes above the 8th are all 0xff
		 * and the 8th keeps the sign */
		for (i = 8; i < n; i++)
			if (p[i] != 0xff)
				return (struct pk_value){ .kind = PK_NEGINT };
		if (n >= 8 && !(p[7] & 0x80))
			return (struct pk_value){ .kind = PK_NEGINT };
		uint64_t v = pk_le(p, (unsigned)(n < 8 ? n : 8));

		if (n < 8)
			v |= UINT64_MAX << (8 * n);     /* sign extension */
		return pk_signed((int64_t)v);
	}
	for (i = 8; i < n; i++)
		if (p[i] != 0)
			return (struct pk_value){ .kind = PK_HUGEINT };
	return pk_int(pk_le(p, (unsigned)(n < 8 ? n : 8)));
}

/*
 * Protocol-0 INT and LONG arguments. CPython parses them with strtol or
 * PyLong_FromString in base 0, which also reads hex, octal and '_'; pickle
 * only ever writes canonical decimal (repr(int)), so that is what is accepted:
 * an optional sign and digits without a leading zero. The two-character forms
 * "00" and "01" are INT's False and True.
 */
static int pk_parse_decimal(struct pk_vm *vm, const unsigned char *p, size_t n,
			    struct pk_value *out)
{
	bool neg = false, huge = false;
	uint64_t v = 0;
	size_t i = 0;

	if (n == 2 && p[0] == '0' && (p[1] == '0' || p[1] == '1')) {
		*out = pk_int(p[1] - '0');
		return 0;
	}
	if (i < n && (p[i] == '-' || p[i] == '+'))
		neg = p[i++] == '-';
	if (i == n || (p[i] == '0' && n - i > 1))
		goto bad;
	for (; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			goto bad;
		if (v > (UINT64_MAX - (p[i] - '0')) / 10)
			huge = true;
		else
			v = v * 10 + (p[i] - '0');
	}
	if (neg && v != 0)
		*out = !huge && v <= (uint64_t)INT64_MAX + 1
			       ? (struct pk_value){ .kind = PK_NEGINT, .u = (uint64_t)0 - v, .b = 1 }
			       : (struct pk_value){ .kind = PK_NEGINT };
	else
		*out = huge ? (struct pk_value){ .kind = PK_HUGEINT } : pk_int(v);
	return 0;
bad: {
		char q[96];

		pk_quote(q, sizeof(q), p, n);
		return pk_fail(vm, "'%s' is not a decimal integer", q);
	}
}

/* ---- strings ------------------------------------------------------------- */

bool tm_utf8_valid(const void *data, size_t len, size_t *bad)
{
	const unsigned char *p = data;
	size_t i = 0;

	while (i < len) {
		unsigned char c = p[i];
		unsigned need, k;
		unsigned char lo = 0x80, hi = 0xbf;     /* range of the second byte */

		if (c < 0x80) {
			/* ASCII runs are the common case: skip 8 bytes at a time */
			uint64_t w;

			while (i + 8 <= len && (memcpy(&w, p + i, 8), !(w & 0x8080808080808080ULL)))
				i += 8;
			if (i < len && p[i] < 0x80)
				i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			need = 1;
		} else if (c >= 0xe0 && c <= 0xef) {
			need = 2;
			if (c == 0xe0)
				lo = 0xa0;      /* no overlong form; 0xed allows surrogates */
		} else if (c >= 0xf0 && c <= 0xf4) {
			need = 3;
			if (c == 0xf0)
				lo = 0x90;
			else if (c == 0xf4)
				hi = 0x8f;      /* nothing above U+10FFFF */
		} else {
			goto fail;
		}
		if (len - i - 1 < need)
			goto fail;
		if (p[i + 1] < lo || p[i + 1] > hi)
			goto fail;
		for (k = 2; k <= need; k++)
			if ((p[i + k] & 0xc0) != 0x80)
				goto fail;
		i += need + 1;
	}
	return true;
fail:
	if (bad)
		*bad = i;
	return false;
}

static int pk_push_str(struct pk_vm *vm, uint64_t off, size_t len, bool in_arena)
{
	struct pk_str *str;

	if (len >= UINT32_MAX)
		return pk_fail(vm, "string of %zu bytes is too long", len);
	if (vm->nstrs >= UINT32_MAX)
		return pk_fail(vm, "too many strings");
	if (PK_RESERVE(vm, vm->strs, vm->strs_cap, vm->nstrs + 1))
		return -1;
	str = &vm->strs[vm->nstrs];
	*str = (struct pk_str){ off, (uint32_t)len, TM_ID_NONE, in_arena };
	return pk_push(vm, (struct pk_value){ .kind = PK_STR, .a = (uint32_t)vm->nstrs++ });
}

/* BINUNICODE and friends: n bytes of UTF-8 (surrogatepass) in the input */
static int pk_binunicode(struct pk_vm *vm, unsigned lenbytes)
{
	uint64_t n;
	size_t bad;

	if (!pk_has(vm, lenbytes))
		return pk_truncated(vm);
	n = pk_le(vm->data + vm->pos, lenbytes);
	vm->pos += lenbytes;
	if (n > pk_left(vm))
		return pk_fail(vm, "string of %" PRIu64 " bytes runs past the end of the data "
			       "(%" PRIu64 " bytes left: truncated file?)", n, pk_left(vm));
	if (!pk_has(vm, (size_t)n))
		return pk_truncated(vm);        /* a failed read */
	if (!tm_utf8_valid(vm->data + vm->pos, (size_t)n, &bad))
		return pk_fail(vm, "string is not valid UTF-8 (byte 0x%02x at offset %" PRIu64 ")",
			       vm->data[vm->pos + bad], vm->base + vm->pos + bad);
	vm->pos += (size_t)n;
	if (!vm->in)
		return pk_push_str(vm, vm->pos - n, (size_t)n, false);
	/* the window moves on: keep a copy */
	if (PK_RESERVE(vm, vm->arena, vm->arena_cap, vm->arena_len + n))
		return -1;
	if (n)
		memcpy(vm->arena + vm->arena_len, vm->data + vm->pos - n, (size_t)n);
	vm->arena_len += (size_t)n;
	return pk_push_str(vm, vm->arena_len - n, (size_t)n, true);
}

static size_t pk_put_utf8(char *o, uint32_t cp)
{
	if (cp < 0x80) {
		o[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (char)(0xc0 | cp >> 6);
		o[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {             /* surrogates too: 'surrogatepass' */
		o[0] = (char)(0xe0 | cp >> 12);
		o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		o[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	o[0] = (char)(0xf0 | cp >> 18);
	o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	o[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/*
 * Protocol-0 UNICODE: the line decoded with 'raw-unicode-escape' as CPython
 * does (Objects/unicodeobject.c): bytes are Latin-1 code points, "\uXXXX" and
 * "\UXXXXXXXX" are escapes, a backslash before anything else stays a
 * backslash together with that character. Stored as surrogatepass UTF-8.
 */
static int pk_unicode(struct pk_vm *vm)
{
	const unsigned char *p;
	size_t n, i = 0;
	uint64_t start;
	char *o;

	if (pk_readline(vm, &p, &n))
		return -1;
	/* at most 2 output bytes per input byte (Latin-1; escapes shrink) */
	if (n > (SIZE_MAX - vm->arena_len) / 2 ||
	    PK_RESERVE(vm, vm->arena, vm->arena_cap, vm->arena_len + 2 * n + 1))
		return pk_nomem(vm);
	start = vm->arena_len;
	o = vm->arena + vm->arena_len;
	while (i < n) {
		unsigned char c = p[i++];
		unsigned count;
		uint32_t cp = 0;

		if (c != '\\' || i == n) {
			o += pk_put_utf8(o, c);
			continue;
		}
		c = p[i++];
		if (c != 'u' && c != 'U') {
			*o++ = '\\';
			o += pk_put_utf8(o, c);
			continue;
		}
		count = c == 'u' ? 4 : 8;
		if (n - i < count)
			return pk_fail(vm, "truncated \\%c escape in a string", c);
		for (; count; count--) {
			unsigned char h = p[i++];

			cp <<= 4;
			if (h >= '0' && h <= '9')
				cp += h - '0';
			else if (h >= 'a' && h <= 'f')
				cp += h - 'a' + 10;
			else if (h >= 'A' && h <= 'F')
				cp += h - 'A' + 10;
			else
				return pk_fail(vm, "bad \\%c escape in a string", c);
		}
		if (cp > 0x10ffff)
			return pk_fail(vm, "\\U%08" PRIx32 " is out of the Unicode range", cp);
		o += pk_put_utf8(o, cp);
	}
	vm->arena_len = (size_t)(o - vm->arena);
	return pk_push_str(vm, start, vm->arena_len - start, true);
}

/* ---- describing values (for errors) ---------------------------------------------- */

static const char *pk_kind_name(const struct pk_vm *vm, const struct pk_value *v)
{
	switch (v->kind) {
	case PK_NONE: return "None";
	case PK_INT: case PK_NEGINT: case PK_HUGEINT: return "an int";
	case PK_STR: return "a str";
	case PK_FRAME: case PK_FRAMES: case PK_TRACE: case PK_TUPLE: return "a tuple";
	case PK_LIST: return "a list";
	case PK_DICT: return "a dict";
	case PK_CLASS: return pk_global_names[v->a];
	case PK_OBJECT:
		return vm && vm->objects[v->a].cls == PK_G_TRACES ? "a tracemalloc._Traces object"
								  : "a tracemalloc.Snapshot object";
	default: return "nothing";
	}
}

static bool pk_is_tuple(const struct pk_value *v)
{
	return v->kind == PK_FRAME || v->kind == PK_FRAMES || v->kind == PK_TRACE ||
	       v->kind == PK_TUPLE;
}

/* NULL if v is an int in [0, max], else why not (in buf) */
static const char *pk_check_uint(const struct pk_vm *vm, const struct pk_value *v, uint64_t max,
				 const char *what, char *buf, size_t size)
{
	if (v->kind == PK_INT && v->u <= max)
		return NULL;
	if (v->kind == PK_INT)
		snprintf(buf, size, "%s is %" PRIu64 ", more than %" PRIu64, what, v->u, max);
	else if (v->kind == PK_NEGINT && v->b)
		snprintf(buf, size, "%s is %" PRId64 ", negative", what, (int64_t)v->u);
	else if (v->kind == PK_NEGINT)
		snprintf(buf, size, "%s is negative", what);
	else if (v->kind == PK_HUGEINT)
		snprintf(buf, size, "%s is 2**64 or more, more than %" PRIu64, what, max);
	else
		snprintf(buf, size, "%s is %s, not an int", what, pk_kind_name(vm, v));
	return buf;
}

/* Why a value the frames of a trace hold is not a (filename, lineno) pair. */
static const char *pk_explain_frame(const struct pk_vm *vm, const struct pk_value *f, uint32_t k,
				    char *buf, size_t size)
{
	const struct pk_tuple *t;
	char what[48];

	if (f->kind == PK_FRAME)
		return NULL;
	if (f->kind != PK_TUPLE) {
		snprintf(buf, size, "its frame %u is %s, not a (filename, lineno) tuple", k,
			 pk_kind_name(vm, f));
		return buf;
	}
	t = &vm->tuples[f->a];
	if (t->n != 2) {
		snprintf(buf, size, "its frame %u is a tuple of %u items, not (filename, lineno)",
			 k, t->n);
		return buf;
	}
	if (vm->elems[t->first].kind != PK_STR) {
		snprintf(buf, size, "the filename of its frame %u is %s, not a str", k,
			 pk_kind_name(vm, &vm->elems[t->first]));
		return buf;
	}
	snprintf(what, sizeof(what), "the lineno of its frame %u", k);
	return pk_check_uint(vm, &vm->elems[t->first + 1], UINT32_MAX, what, buf, size);
}

/* Why v, found in a list of traces, is not a trace (what the tuple
 * recognition refused); never NULL. */
static const char *pk_explain_trace(const struct pk_vm *vm, const struct pk_value *v, char *buf,
				    size_t size)
{
	const struct pk_value *e, *frames;
	const struct pk_tuple *t;
	const char *why;

	if (!pk_is_tuple(v)) {
		snprintf(buf, size, "it is %s, not a tuple", pk_kind_name(vm, v));
		return buf;
	}
	if (v->kind == PK_FRAME || v->kind == PK_FRAMES) {
		snprintf(buf, size, "it is %s, not (domain, size, frames, total_nframe)",
			 v->kind == PK_FRAME ? "a (filename, lineno) pair" : "a tuple of frames");
		return buf;
	}
	t = &vm->tuples[v->a];
	if (t->n != 3 && t->n != 4) {
		snprintf(buf, size, "it is a tuple of %u items, not (domain, size, frames, "
			 "total_nframe)", t->n);
		return buf;
	}
	e = vm->elems + t->first;
	if ((why = pk_check_uint(vm, &e[0], UINT32_MAX, "its domain", buf, size)))
		return why;
	if ((why = pk_check_uint(vm, &e[1], UINT64_MAX, "its size", buf, size)))
		return why;
	if (t->n == 4 && e[3].kind != PK_NONE &&
	    (why = pk_check_uint(vm, &e[3], UINT32_MAX - 1, "its total_nframe", buf, size)))
		return why;
	frames = &e[2];
	if (frames->kind == PK_FRAME) {
		snprintf(buf, size, "its frames are one (filename, lineno) pair, not a tuple of "
			 "them");
		return buf;
	}
	if (frames->kind == PK_TUPLE) {
		const struct pk_tuple *ft = &vm->tuples[frames->a];
		uint32_t k;

		if (ft->n == 0) {
			snprintf(buf, size, "its traceback has no frame");
			return buf;
		}
		for (k = 0; k < ft->n; k++)
			if ((why = pk_explain_frame(vm, &vm->elems[ft->first + k], k, buf, size)))
				return why;
	} else if (frames->kind != PK_FRAMES) {
		snprintf(buf, size, "its frames are %s, not a tuple", pk_kind_name(vm, frames));
		return buf;
	}
	snprintf(buf, size, "it is not a (domain, size, frames, total_nframe) tuple");
	return buf;
}

/* ---- tuples: recognising frames, frame sequences and traces ------------------------ */

static int pk_tbmap_grow(struct pk_vm *vm)
{
	struct pk_tbmap *m = &vm->tbmap, n;
	uint64_t cap = m->keys ? (m->mask + 1) * 2 : 64, i;

	n.keys = malloc(cap * sizeof(*n.keys));
	n.vals = malloc(cap * sizeof(*n.vals));
	if (!n.keys || !n.vals) {
		free(n.keys);
		free(n.vals);
		return pk_nomem(vm);
	}
	memset(n.keys, 0xff, cap * sizeof(*n.keys));
	n.mask = cap - 1;
	n.count = m->count;
	for (i = 0; m->keys && i <= m->mask; i++) {
		uint64_t j;

		if (m->keys[i] == UINT64_MAX)
			continue;
		for (j = tm_hash_mix(m->keys[i]) & n.mask; n.keys[j] != UINT64_MAX;
		     j = (j + 1) & n.mask)
			;
		n.keys[j] = m->keys[i];
		n.vals[j] = m->vals[i];
	}
	free(m->keys);
	free(m->vals);
	*m = n;
	return 0;
}

/* The traceback (frame sequence fs, total_nframe), interned once per pair. */
static int pk_traceback(struct pk_vm *vm, uint32_t fs_index, uint32_t total, tm_id *out)
{
	struct pk_fseq *fs = &vm->fseqs[fs_index];
	struct pk_tbmap *m = &vm->tbmap;
	uint64_t key = (uint64_t)fs_index << 32 | total, j;
	tm_id tb;

	if (fs->last_tb != TM_ID_NONE && fs->last_total == total) {
		*out = fs->last_tb;
		return 0;
	}
	if ((m->count + 1) * 2 > (m->keys ? m->mask + 1 : 0) && pk_tbmap_grow(vm))
		return -1;
	for (j = tm_hash_mix(key) & m->mask; m->keys[j] != UINT64_MAX; j = (j + 1) & m->mask) {
		if (m->keys[j] == key) {
			tb = m->vals[j];
			goto found;
		}
	}
	/* A new traceback stores its frame ids: bounded by the input size, so
	 * that a frames tuple reused with ever new total_nframe values cannot
	 * make us store it again and again without limit. */
	if (vm->s->nframe_ids + (uint64_t)fs->n > vm->frame_id_budget)
		return pk_fail(vm, "the tracebacks hold more frames than a pickle of %" PRIu64
			       " bytes can describe", vm->total);
	tb = tm_intern_traceback(vm->s, vm->fbuf + fs->first, fs->n, total);
	if (tb == TM_ID_NONE)
		return pk_fail(vm, "cannot store traceback (out of memory or too many)");
	m->keys[j] = key;
	m->vals[j] = tb;
	m->count++;
found:
	fs->last_total = total;
	fs->last_tb = tb;
	*out = tb;
	return 0;
}

/*
 * The key of a trace of frame sequence fs_index: what a PK_TRACE value holds,
 * an index into vm->keys, which gives its traceback and domain. The traces of
 * an aggregated load are summed per key.
 *
 * dump() memoizes one frames tuple per traceback, so its traces share one
 * total_nframe and a domain or a few, but are scattered through the file: a
 * small cache per frame sequence maps their domains to keys, and makes most
 * traces a comparison or two. A key is made when the cache misses, without
 * looking for the same (traceback, domain) elsewhere (a table of all pairs,
 * much bigger than the CPU caches, cost a tenth of the load): a pair can so
 * have more than one key -- when a traceback is written as several frames
 * tuples, or has more domains than the cache holds -- and its traces are then
 * summed in several parts, which the analysis adds up (snapshot.h).
 */
static int pk_trace_key_slow(struct pk_vm *vm, uint32_t fs_index, uint32_t domain,
			     uint32_t total, tm_id *out)
{
	struct pk_fseq_key *fk = &vm->fkeys[fs_index];
	unsigned k;

	if (fk->tb != TM_ID_NONE && fk->total == total) {
		for (k = 0; k < PK_FSEQ_DOMAINS && fk->key[k] != TM_ID_NONE; k++) {
			if (fk->domain[k] == domain) {
				*out = fk->key[k];
				return 0;
			}
		}
	} else {
		tm_id tb = TM_ID_NONE;

		if (pk_traceback(vm, fs_index, total, &tb))
			return -1;
		fk = &vm->fkeys[fs_index];
		fk->total = total;
		fk->tb = tb;
		for (k = 0; k < PK_FSEQ_DOMAINS; k++)
			fk->key[k] = TM_ID_NONE;
		k = 0;
	}
	if (vm->nkeys >= UINT32_MAX - 1)
		return pk_fail(vm, "more than %u trace keys", UINT32_MAX - 2);
	if (vm->nkeys == vm->keys_cap) {
		size_t cap = vm->keys_cap;

		if (pk_reserve(vm, (void **)&vm->keys, &cap, (size_t)vm->nkeys + 1,
			       sizeof(*vm->keys)))
			return -1;
		vm->keys_cap = cap > UINT32_MAX - 1 ? UINT32_MAX - 1 : (uint32_t)cap;
	}
	vm->keys[vm->nkeys] = (struct pk_key){ fk->tb, domain, fs_index };
	/* a free slot, else (more domains than slots) one by rotation */
	if (k == PK_FSEQ_DOMAINS)
		k = vm->nkeys % PK_FSEQ_DOMAINS;
	fk->domain[k] = domain;
	fk->key[k] = vm->nkeys;
	*out = vm->nkeys++;
	return 0;
}

static inline int pk_trace_key(struct pk_vm *vm, uint32_t fs_index, uint32_t domain,
			       uint32_t total, tm_id *out)
{
	struct pk_fseq_mru *m = &vm->fmru[fs_index];

	if (vm->no_domains)
		domain = 0;     /* checked by the caller, then dropped */
	if (m->key != TM_ID_NONE && m->total == total && m->domain == domain) {
		*out = m->key;
		return 0;
	}
	if (pk_trace_key_slow(vm, fs_index, domain, total, out))
		return -1;
	vm->fmru[fs_index] = (struct pk_fseq_mru){ total, domain, *out };
	return 0;
}

static int pk_frame(struct pk_vm *vm, const struct pk_value *name, uint32_t lineno,
		    struct pk_value *out)
{
	struct pk_str *str = &vm->strs[name->a];
	tm_id fid;

	if (str->sid == TM_ID_NONE) {
		str->sid = tm_intern_string(vm->s, pk_str_data(vm, str), str->len);
		if (str->sid == TM_ID_NONE)
			return pk_fail(vm, "cannot store filename (out of memory or too many)");
	}
	fid = tm_intern_frame(vm->s, str->sid, lineno);
	if (fid == TM_ID_NONE)
		return pk_fail(vm, "cannot store frame (out of memory or too many)");
	*out = (struct pk_value){ .kind = PK_FRAME, .a = fid };
	return 0;
}

/* Replaces the n values on top of the stack by the tuple they form. */
static int pk_build_tuple(struct pk_vm *vm, size_t n)
{
	struct pk_value *it = vm->stack + vm->sp - n, out;
	size_t i;

	if (n == 2 && it[0].kind == PK_STR && it[1].kind == PK_INT && it[1].u <= UINT32_MAX) {
		if (pk_frame(vm, &it[0], (uint32_t)it[1].u, &out))
			return -1;
		goto done;
	}
	if ((n == 3 || n == 4) && it[2].kind == PK_FRAMES && it[0].kind == PK_INT &&
	    it[0].u <= UINT32_MAX && it[1].kind == PK_INT &&
	    (n == 3 || it[3].kind == PK_NONE || (it[3].kind == PK_INT && it[3].u < UINT32_MAX))) {
		uint32_t total = n == 4 && it[3].kind == PK_INT ? (uint32_t)it[3].u
							       : TM_TOTAL_NFRAME_NONE;
		tm_id key = TM_ID_NONE;

		if (pk_trace_key(vm, it[2].a, (uint32_t)it[0].u, total, &key))
			return -1;
		out = (struct pk_value){ .kind = PK_TRACE, .a = key, .u = it[1].u };
		goto done;
	}
	for (i = 0; i < n && it[i].kind == PK_FRAME; i++)
		;
	if (n && i == n) {
		if (n > UINT32_MAX || vm->nfseqs >= UINT32_MAX)
			return pk_fail(vm, "tuple of frames too long");
		if (PK_RESERVE(vm, vm->fbuf, vm->fbuf_cap, vm->fbuf_len + n) ||
		    PK_RESERVE(vm, vm->fseqs, vm->fseqs_cap, vm->nfseqs + 1) ||
		    PK_RESERVE(vm, vm->fkeys, vm->fkeys_cap, vm->nfseqs + 1) ||
		    PK_RESERVE(vm, vm->fmru, vm->fmru_cap, vm->nfseqs + 1))
			return -1;
		for (i = 0; i < n; i++)
			vm->fbuf[vm->fbuf_len + i] = it[i].a;
		vm->fseqs[vm->nfseqs] = (struct pk_fseq){ vm->fbuf_len, (uint32_t)n, 0,
							  TM_ID_NONE };
		vm->fkeys[vm->nfseqs].tb = TM_ID_NONE;
		vm->fmru[vm->nfseqs].key = TM_ID_NONE;
		vm->fbuf_len += n;
		out = (struct pk_value){ .kind = PK_FRAMES, .a = (uint32_t)vm->nfseqs++ };
		goto done;
	}
	if (n > UINT32_MAX || vm->ntuples >= UINT32_MAX)
		return pk_fail(vm, "tuple too long");
	if (PK_RESERVE(vm, vm->elems, vm->elems_cap, vm->elems_len + n) ||
	    PK_RESERVE(vm, vm->tuples, vm->tuples_cap, vm->ntuples + 1))
		return -1;
	if (n)
		memcpy(vm->elems + vm->elems_len, it, n * sizeof(*it));
	vm->tuples[vm->ntuples] = (struct pk_tuple){ vm->elems_len, (uint32_t)n };
	vm->elems_len += n;
	out = (struct pk_value){ .kind = PK_TUPLE, .a = (uint32_t)vm->ntuples++ };
done:
	vm->sp -= n;
	vm->stack[vm->sp++] = out;      /* n == 0: the caller made room (pk_room) */
	return 0;
}

static int pk_counted_tuple(struct pk_vm *vm, size_t n)
{
	if (pk_avail(vm) < n)
		return pk_underflow(vm, n);
	if (pk_room(vm))
		return -1;
	return pk_build_tuple(vm, n);
}

/* ---- lists, dicts, objects ------------------------------------------------------ */

static int pk_new_list(struct pk_vm *vm)
{
	if (vm->nlists >= UINT32_MAX)
		return pk_fail(vm, "too many lists");
	if (PK_RESERVE(vm, vm->lists, vm->lists_cap, vm->nlists + 1))
		return -1;
	vm->lists[vm->nlists] = (struct pk_list){ .too_big_at = UINT64_MAX };
	return pk_push(vm, (struct pk_value){ .kind = PK_LIST, .a = (uint32_t)vm->nlists++ });
}

/* Key ids are dense (0, 1, 2... in order of first appearance): a Fibonacci
 * hash spreads them evenly over the slots. */
static inline uint64_t pk_slot_hash(tm_id key, unsigned bits)
{
	return (key * 0x9e3779b97f4a7c15ULL) >> (64 - bits);
}

/* Doubles an aggregated list's slot table (kept at most half full). */
static int pk_list_rehash(struct pk_vm *vm, struct pk_list *l)
{
	unsigned bits = l->slots ? l->slot_bits + 1 : 6;
	uint64_t size = (uint64_t)1 << bits, old = l->slots ? (uint64_t)1 << l->slot_bits : 0;
	uint64_t i, j;
	struct pk_slot *slots;

	if (bits > 40 || !(slots = malloc((size_t)size * sizeof(*slots))))
		return pk_nomem(vm);
	memset(slots, 0xff, (size_t)size * sizeof(*slots));
	for (i = 0; i < old; i++) {
		if (l->slots[i].key == TM_ID_NONE)
			continue;
		for (j = pk_slot_hash(l->slots[i].key, bits); slots[j].key != TM_ID_NONE;
		     j = (j + 1) & (size - 1))
			;
		slots[j] = l->slots[i];
	}
	free(l->slots);
	l->slots = slots;
	l->slot_bits = bits;
	return 0;
}

/* The item of an aggregated list for key, added (empty) when new. */
static int pk_list_item(struct pk_vm *vm, struct pk_list *l, tm_id key, uint64_t *item)
{
	struct pk_slot *slot;
	uint64_t mask, j;

	if (!l->slots || (l->n + 1) * 2 > (uint64_t)1 << l->slot_bits) {
		if (pk_list_rehash(vm, l))
			return -1;
	}
	mask = ((uint64_t)1 << l->slot_bits) - 1;
	for (j = pk_slot_hash(key, l->slot_bits);; j = (j + 1) & mask) {
		slot = &l->slots[j];
		if (slot->key == key) {
			*item = slot->item;
			return 0;
		}
		if (slot->key == TM_ID_NONE)
			break;
	}
	if (l->n == l->cap) {
		size_t cap = (size_t)l->cap, cap2 = cap;

		/* items and counts keep one capacity (the snapshot's traces_cap) */
		if (pk_reserve(vm, (void **)&l->items, &cap, (size_t)l->n + 1, sizeof(*l->items)) ||
		    pk_reserve(vm, (void **)&l->counts, &cap2, (size_t)l->n + 1,
			       sizeof(*l->counts)))
			return -1;
		l->cap = cap < cap2 ? cap : cap2;
	}
	l->items[l->n] = (struct tm_trace){ 0, 0, vm->keys[key].domain, vm->keys[key].traceback };
	l->counts[l->n] = 0;
	slot->key = key;
	slot->item = (uint32_t)l->n;
	*item = l->n++;
	return 0;
}

/* Makes vm->acc cover key: zero sums up to it (keys are numbered in order). */
static int pk_acc_grow(struct pk_vm *vm, tm_id key)
{
	if (PK_RESERVE(vm, vm->acc, vm->acc_cap, (size_t)key + 1))
		return -1;
	memset(vm->acc + vm->acc_len, 0, ((size_t)key + 1 - vm->acc_len) * sizeof(*vm->acc));
	vm->acc_len = (size_t)key + 1;
	return 0;
}

/* Appends stack[from..sp) to the list at stack[from - 1] and pops them. */
static int pk_append(struct pk_vm *vm, size_t from)
{
	const struct pk_value *lv = &vm->stack[from - 1];
	size_t n = vm->sp - from, i;
	struct pk_list *l;

	if (lv->kind != PK_LIST)
		return pk_fail(vm, "appends to %s, not a list", pk_kind_name(vm, lv));
	l = &vm->lists[lv->a];
	if (vm->aggregate && n && vm->acc_list == UINT32_MAX)
		vm->acc_list = lv->a;
	if (!vm->aggregate && l->n + n > l->cap) {
		size_t cap = (size_t)l->cap;

		if (pk_reserve(vm, (void **)&l->items, &cap, (size_t)l->n + n, sizeof(*l->items)))
			return -1;
		l->cap = cap;
	}
	for (i = 0; i < n; i++) {
		const struct pk_value *v = &vm->stack[from + i];
		uint64_t item;

		if (v->kind != PK_TRACE) {
			char why[200];

			/* the only list a snapshot has is its list of traces */
			return pk_fail(vm, "item %" PRIu64 " of a list is not a trace: %s",
				       l->ntraces, pk_explain_trace(vm, v, why, sizeof(why)));
		}
		/* sums and differences of sizes must fit int64 (snapshot.h); the
		 * error waits for the end: only the snapshot's own list matters */
		if (l->too_big_at == UINT64_MAX) {
			if (v->u > (uint64_t)INT64_MAX - l->total)
				l->too_big_at = l->ntraces;
			else
				l->total += v->u;
		}
		l->ntraces++;
		if (vm->aggregate && lv->a == vm->acc_list) {
			/* the sums are far bigger than the caches: fetch ahead */
			if (i + 8 < n && vm->stack[from + i + 8].a < vm->acc_len)
				__builtin_prefetch(&vm->acc[vm->stack[from + i + 8].a], 1);
			if (v->a >= vm->acc_len && pk_acc_grow(vm, v->a))
				return -1;
			vm->acc[v->a].size += v->u;
			vm->acc[v->a].count++;
		} else if (vm->aggregate) {
			if (pk_list_item(vm, l, v->a, &item))
				return -1;
			l->items[item].size += v->u;
			l->counts[item]++;
		} else {
			const struct pk_key *key = &vm->keys[v->a];

			l->items[l->n++] = (struct tm_trace){ 0, v->u, key->domain, key->traceback };
		}
	}
	vm->sp = from;
	return 0;
}

static int pk_new_dict(struct pk_vm *vm)
{
	if (vm->ndicts >= UINT32_MAX)
		return pk_fail(vm, "too many dicts");
	if (PK_RESERVE(vm, vm->dicts, vm->dicts_cap, vm->ndicts + 1))
		return -1;
	memset(&vm->dicts[vm->ndicts], 0, sizeof(vm->dicts[0]));
	return pk_push(vm, (struct pk_value){ .kind = PK_DICT, .a = (uint32_t)vm->ndicts++ });
}

/* Sets the pairs stack[from..sp) into the dict at stack[from - 1], pops them. */
static int pk_setitems(struct pk_vm *vm, size_t from)
{
	const struct pk_value *dv = &vm->stack[from - 1];
	struct pk_attrs *d;
	size_t i;

	if (dv->kind != PK_DICT)
		return pk_fail(vm, "sets items of %s, not a dict", pk_kind_name(vm, dv));
	if ((vm->sp - from) % 2)
		return pk_fail(vm, "odd number of items (keys without value)");
	d = &vm->dicts[dv->a];
	for (i = from; i < vm->sp; i += 2) {
		const struct pk_value *k = &vm->stack[i];
		unsigned a;

		if (k->kind != PK_STR)
			return pk_fail(vm, "a dict key is %s, not a str", pk_kind_name(vm, k));
		for (a = 0; a < PK_NATTRS; a++)
			if (pk_str_is(vm, k, pk_attr_names[a]))
				d->v[a] = vm->stack[i + 1];
	}
	vm->sp = from;
	return 0;
}

static int pk_new_object(struct pk_vm *vm, const struct pk_value *cls)
{
	if (cls->kind != PK_CLASS || (cls->a != PK_G_SNAPSHOT && cls->a != PK_G_TRACES))
		return pk_fail(vm, "creates an instance of %s: only tracemalloc.Snapshot and "
			       "tracemalloc._Traces are allowed", pk_kind_name(vm, cls));
	if (vm->nobjects >= UINT32_MAX)
		return pk_fail(vm, "too many objects");
	if (PK_RESERVE(vm, vm->objects, vm->objects_cap, vm->nobjects + 1))
		return -1;
	memset(&vm->objects[vm->nobjects], 0, sizeof(vm->objects[0]));
	vm->objects[vm->nobjects].cls = cls->a;
	return pk_push(vm, (struct pk_value){ .kind = PK_OBJECT, .a = (uint32_t)vm->nobjects++ });
}

/* ---- globals --------------------------------------------------------------------- */

static bool pk_name_is(const unsigned char *p, size_t n, const char *lit)
{
	return strlen(lit) == n && memcmp(p, lit, n) == 0;
}

/* Looks a global up by name only: nothing is imported or resolved. Protocols
 * 0-2 name copyreg and builtins by their Python 2 names, which the
 * unpickler maps back (Lib/_compat_pickle.py) when the protocol is < 3. */
static int pk_global(struct pk_vm *vm, const unsigned char *mod, size_t mlen,
		     const unsigned char *name, size_t nlen)
{
	bool py2 = vm->proto < 3;
	int g = -1;

	if (pk_name_is(mod, mlen, "tracemalloc")) {
		if (pk_name_is(name, nlen, "Snapshot"))
			g = PK_G_SNAPSHOT;
		else if (pk_name_is(name, nlen, "_Traces"))
			g = PK_G_TRACES;
	} else if (pk_name_is(mod, mlen, "copyreg") || (py2 && pk_name_is(mod, mlen, "copy_reg"))) {
		if (pk_name_is(name, nlen, "_reconstructor"))
			g = PK_G_RECONSTRUCTOR;
	} else if (pk_name_is(mod, mlen, "builtins") ||
		   (py2 && pk_name_is(mod, mlen, "__builtin__"))) {
		if (pk_name_is(name, nlen, "object"))
			g = PK_G_OBJECT;
	}
	if (g < 0) {
		char m[96], nm[96];

		pk_quote(m, sizeof(m), mod, mlen);
		pk_quote(nm, sizeof(nm), name, nlen);
		return pk_fail(vm, "global %s.%s is not allowed in a tracemalloc snapshot (only "
			       "tracemalloc.Snapshot and tracemalloc._Traces are)", m, nm);
	}
	return pk_push(vm, (struct pk_value){ .kind = PK_CLASS, .a = (uint32_t)g });
}

/* ---- the memo -------------------------------------------------------------------- */

/*
 * Memo entries are 8 bytes: the kind in the low 4 bits, the value above.
 * dump() memoizes every trace tuple, so a file of a million traces has a memo
 * of a million entries among which the few thousand frames tuples that every
 * trace looks up are scattered; with small entries those lookups stay in the
 * cache (with 24-byte values, loading such a file took 3 times as long).
 * A trace (that dump() memoizes but never looks up again) is its key id and
 * its size in 28 bits: the placeholder costs 8 bytes, whatever the file.
 * Values that do not fit (traces of 256 MiB or more, negative ints, ints of
 * 2**60 or more) are appended to vm->memo_big and the entry holds their index.
 */
#define PK_MEMO_TRACE_SIZE_BITS 28u
#define PK_MEMO_BIG 15u
/* A frames tuple with the key of the last trace made of it (see
 * pk_fast_trace()): its key in bits 4..35, a tag of that trace's total_nframe
 * above. Its value is the frames tuple (PK_FRAMES) of the key's sequence. */
#define PK_MEMO_FRAMES_KEYED 14u
#define PK_MEMO_TOTAL_BITS 28u
#define PK_MEMO_TOTAL_NONE ((1u << PK_MEMO_TOTAL_BITS) - 1)
_Static_assert(PK_OBJECT < PK_MEMO_FRAMES_KEYED, "memo entry kinds fit in 4 bits");

static int pk_memo_encode(struct pk_vm *vm, const struct pk_value *v, uint64_t *out)
{
	switch (v->kind) {
	case PK_INT:
		if (v->u >> 60)
			break;
		*out = v->u << 4 | PK_INT;
		return 0;
	case PK_TRACE:
		if (v->u >> PK_MEMO_TRACE_SIZE_BITS)
			break;
		*out = (v->u << 32 | v->a) << 4 | PK_TRACE;
		return 0;
	case PK_NEGINT:
	case PK_HUGEINT:
		break;
	default:        /* the value is all in `a` */
		*out = (uint64_t)v->a << 4 | v->kind;
		return 0;
	}
	if (PK_RESERVE(vm, vm->memo_big, vm->memo_big_cap, vm->memo_nbig + 1))
		return -1;
	vm->memo_big[vm->memo_nbig] = *v;
	*out = (uint64_t)vm->memo_nbig++ << 4 | PK_MEMO_BIG;
	return 0;
}

static struct pk_value pk_memo_decode(const struct pk_vm *vm, uint64_t e)
{
	unsigned kind = (unsigned)(e & 15);

	if (kind == PK_MEMO_BIG)
		return vm->memo_big[e >> 4];
	if (kind == PK_INT)
		return pk_int(e >> 4);
	if (kind == PK_TRACE)
		return (struct pk_value){ .kind = PK_TRACE, .a = (uint32_t)(e >> 4), .u = e >> 36 };
	if (kind == PK_MEMO_FRAMES_KEYED)
		return (struct pk_value){ .kind = PK_FRAMES, .a = vm->keys[(uint32_t)(e >> 4)].fs };
	return (struct pk_value){ .kind = (uint8_t)kind, .a = (uint32_t)(e >> 4) };
}

static int pk_memo_put(struct pk_vm *vm, uint64_t idx)
{
	const struct pk_value *v;
	uint64_t e;

	if (!pk_avail(vm))
		return pk_underflow(vm, 1);
	if (idx >= (uint64_t)vm->memo_stores + TM_PICKLE_MEMO_SLACK)
		return pk_fail(vm, "memo index %" PRIu64 " skips far ahead of the %zu entries "
			       "stored so far", idx, vm->memo_stores);
	if (idx >= vm->memo_init) {
		if (PK_RESERVE(vm, vm->memo, vm->memo_cap, (size_t)idx + 1))
			return -1;
		memset(vm->memo + vm->memo_init, 0,
		       ((size_t)idx + 1 - vm->memo_init) * sizeof(*vm->memo));
		vm->memo_init = (size_t)idx + 1;
	}
	v = &vm->stack[vm->sp - 1];
	if (pk_memo_encode(vm, v, &e))
		return -1;
	if (vm->memo[idx] == PK_UNSET)
		vm->memo_len++;
	vm->memo[idx] = e;
	vm->memo_stores++;
	return 0;
}

static int pk_memo_get(struct pk_vm *vm, uint64_t idx)
{
	if (idx >= vm->memo_init || vm->memo[idx] == PK_UNSET)
		return pk_fail(vm, "memo entry %" PRIu64 " was never stored", idx);
	return pk_push(vm, pk_memo_decode(vm, vm->memo[idx]));
}

static int pk_text_index(struct pk_vm *vm, uint64_t *idx)
{
	const unsigned char *p;
	size_t n, i;

	if (pk_readline(vm, &p, &n))
		return -1;
	*idx = 0;
	for (i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9' || *idx > UINT32_MAX)
			break;
		*idx = *idx * 10 + (p[i] - '0');
	}
	if (n == 0 || i < n) {
		char q[96];

		pk_quote(q, sizeof(q), p, n);
		return pk_fail(vm, "'%s' is not a memo index", q);
	}
	return 0;
}

/* ---- the end: checking what was built ------------------------------------------------ */

/* The items of the list whose sums are in vm->acc: one per key used, in key
 * order (the order in which the pairs first appeared). */
static int pk_acc_items(struct pk_vm *vm, struct pk_list *l)
{
	size_t k, n = 0;

	for (k = 0; k < vm->acc_len; k++)
		n += vm->acc[k].count != 0;
	if (!n)
		return 0;
	l->items = malloc(n * sizeof(*l->items));
	l->counts = malloc(n * sizeof(*l->counts));
	if (!l->items || !l->counts) {
		tm_error_set(vm->err, "out of memory for %zu aggregated traces", n);
		return -1;
	}
	for (k = 0; k < vm->acc_len; k++) {
		if (!vm->acc[k].count)
			continue;
		l->items[l->n] = (struct tm_trace){ 0, vm->acc[k].size, vm->keys[k].domain,
						    vm->keys[k].traceback };
		l->counts[l->n++] = vm->acc[k].count;
	}
	l->cap = l->n;
	return 0;
}

static struct tm_snapshot *pk_finish(struct pk_vm *vm)
{
	const struct pk_value *root, *traces, *list, *limit;
	const struct pk_attrs *sa, *ta;
	struct pk_list *l;
	char why[200];

	if (!pk_avail(vm)) {
		pk_underflow(vm, 1);
		return NULL;
	}
	root = &vm->stack[vm->sp - 1];
	if (root->kind != PK_OBJECT || vm->objects[root->a].cls != PK_G_SNAPSHOT) {
		tm_error_set(vm->err, "not a tracemalloc snapshot: the pickle holds %s, not a "
			     "tracemalloc.Snapshot object", pk_kind_name(vm, root));
		return NULL;
	}
	sa = &vm->objects[root->a].attrs;
	traces = &sa->v[PK_ATTR_TRACES];
	limit = &sa->v[PK_ATTR_LIMIT];
	if (traces->kind == PK_UNSET || limit->kind == PK_UNSET) {
		tm_error_set(vm->err, "not a tracemalloc snapshot: the Snapshot has no '%s' "
			     "attribute", traces->kind == PK_UNSET ? "traces" : "traceback_limit");
		return NULL;
	}
	if (traces->kind != PK_OBJECT || vm->objects[traces->a].cls != PK_G_TRACES) {
		tm_error_set(vm->err, "not a tracemalloc snapshot: Snapshot.traces is %s, not a "
			     "tracemalloc._Traces object", pk_kind_name(vm, traces));
		return NULL;
	}
	if (pk_check_uint(vm, limit, UINT32_MAX, "Snapshot.traceback_limit", why, sizeof(why))) {
		tm_error_set(vm->err, "not a tracemalloc snapshot: %s", why);
		return NULL;
	}
	ta = &vm->objects[traces->a].attrs;
	list = &ta->v[PK_ATTR_TRACES_LIST];
	if (list->kind != PK_LIST) {
		tm_error_set(vm->err, "not a tracemalloc snapshot: Snapshot.traces._traces is %s, "
			     "not a list", pk_kind_name(vm, list));
		return NULL;
	}
	l = &vm->lists[list->a];
	if (l->too_big_at != UINT64_MAX) {
		tm_error_set(vm->err, "the total size of the traces exceeds %" PRId64 " bytes (at "
			     "trace %" PRIu64 ")", INT64_MAX, l->too_big_at);
		return NULL;
	}
	if (vm->aggregate && list->a == vm->acc_list && pk_acc_items(vm, l))
		return NULL;
	vm->s->traces = l->items;
	vm->s->trace_counts = l->counts;
	vm->s->ntraces = l->n;
	vm->s->traces_cap = l->cap;
	vm->s->traceback_limit = (uint32_t)limit->u;
	l->items = NULL;
	l->counts = NULL;
	return vm->s;
}

/* ---- the machine ------------------------------------------------------------------- */

static int pk_step(struct pk_vm *vm)
{
	const unsigned char *p;
	struct pk_value v;
	size_t at, n;
	uint64_t idx;

	switch (vm->op) {
	case PK_OP_PROTO:
		if (!pk_has(vm, 1))
			return pk_truncated(vm);
		vm->proto = vm->data[vm->pos++];
		if (vm->proto > TM_PICKLE_HIGHEST_PROTOCOL)
			return pk_fail(vm, "unsupported pickle protocol %u (at most %u)",
				       vm->proto, TM_PICKLE_HIGHEST_PROTOCOL);
		return 0;
	case PK_OP_FRAME:
		/* framing only groups opcodes; as CPython, require the frame's bytes */
		if (!pk_has(vm, 8))
			return pk_truncated(vm);
		idx = pk_le(vm->data + vm->pos, 8);
		vm->pos += 8;
		if (idx > pk_left(vm))
			return pk_fail(vm, "frame of %" PRIu64 " bytes runs past the end of the "
				       "data (%" PRIu64 " bytes left: truncated file?)", idx,
				       pk_left(vm));
		return 0;
	case PK_OP_MARK:
		if (vm->nmarks >= TM_PICKLE_MAX_MARKS)
			return pk_fail(vm, "MARKs nest deeper than %u", TM_PICKLE_MAX_MARKS);
		if (PK_RESERVE(vm, vm->marks, vm->marks_cap, vm->nmarks + 1))
			return -1;
		vm->marks[vm->nmarks++] = vm->sp;
		vm->fence = vm->sp;
		return 0;
	case PK_OP_POP:
		/* pops a mark when one is on top, as CPython's load_pop */
		if (vm->nmarks && vm->marks[vm->nmarks - 1] >= vm->sp)
			return pk_pop_mark(vm, &at);
		if (!pk_avail(vm))
			return pk_underflow(vm, 1);
		vm->sp--;
		return 0;
	case PK_OP_POP_MARK:
		if (pk_pop_mark(vm, &at))
			return -1;
		vm->sp = at;
		return 0;
	case PK_OP_DUP:
		if (!pk_avail(vm))
			return pk_underflow(vm, 1);
		return pk_push(vm, vm->stack[vm->sp - 1]);
	case PK_OP_NONE:
		return pk_push(vm, (struct pk_value){ .kind = PK_NONE });
	case PK_OP_NEWTRUE:
	case PK_OP_NEWFALSE:
		return pk_push(vm, pk_int(vm->op == PK_OP_NEWTRUE));
	case PK_OP_BININT1:
	case PK_OP_BININT2:
	case PK_OP_BININT:
		n = vm->op == PK_OP_BININT1 ? 1 : vm->op == PK_OP_BININT2 ? 2 : 4;
		if (!pk_has(vm, n))
			return pk_truncated(vm);
		idx = pk_le(vm->data + vm->pos, (unsigned)n);
		vm->pos += n;
		return pk_push(vm, n == 4 ? pk_signed((int32_t)(uint32_t)idx) : pk_int(idx));
	case PK_OP_LONG1:
	case PK_OP_LONG4:
		n = vm->op == PK_OP_LONG1 ? 1 : 4;
		if (!pk_has(vm, n))
			return pk_truncated(vm);
		idx = pk_le(vm->data + vm->pos, (unsigned)n);
		vm->pos += n;
		if (n == 4 && (int32_t)(uint32_t)idx < 0)
			return pk_fail(vm, "negative byte count");
		if (idx > pk_left(vm))
			return pk_fail(vm, "integer of %" PRIu64 " bytes runs past the end of the "
				       "data (%" PRIu64 " bytes left: truncated file?)", idx,
				       pk_left(vm));
		if (!pk_has(vm, (size_t)idx))
			return pk_truncated(vm);        /* a failed read */
		v = pk_long_bytes(vm->data + vm->pos, (size_t)idx);
		vm->pos += (size_t)idx;
		return pk_push(vm, v);
	case PK_OP_INT:
	case PK_OP_LONG:
		if (pk_readline(vm, &p, &n))
			return -1;
		if (vm->op == PK_OP_LONG && n && p[n - 1] == 'L')
			n--;    /* Python 2's suffix, optional as in CPython */
		if (pk_parse_decimal(vm, p, n, &v))
			return -1;
		return pk_push(vm, v);
	case PK_OP_SHORT_BINUNICODE:
		return pk_binunicode(vm, 1);
	case PK_OP_BINUNICODE:
		return pk_binunicode(vm, 4);
	case PK_OP_BINUNICODE8:
		return pk_binunicode(vm, 8);
	case PK_OP_UNICODE:
		return pk_unicode(vm);
	case PK_OP_EMPTY_TUPLE:
		return pk_counted_tuple(vm, 0);
	case PK_OP_TUPLE1:
	case PK_OP_TUPLE2:
	case PK_OP_TUPLE3:
		return pk_counted_tuple(vm, vm->op - PK_OP_TUPLE1 + 1);
	case PK_OP_TUPLE:
		if (pk_pop_mark(vm, &at) || pk_room(vm))
			return -1;
		return pk_build_tuple(vm, vm->sp - at);
	case PK_OP_EMPTY_LIST:
		return pk_new_list(vm);
	case PK_OP_LIST:
		if (pk_pop_mark(vm, &at) || pk_new_list(vm))
			return -1;
		/* the new list goes below the items, as if they were appended */
		v = vm->stack[vm->sp - 1];
		memmove(vm->stack + at + 1, vm->stack + at, (vm->sp - 1 - at) * sizeof(v));
		vm->stack[at] = v;
		return pk_append(vm, at + 1);
	case PK_OP_APPEND:
		if (pk_avail(vm) < 2)
			return pk_underflow(vm, 2);
		return pk_append(vm, vm->sp - 1);
	case PK_OP_APPENDS:
		if (pk_pop_mark(vm, &at))
			return -1;
		if (at <= vm->fence)
			return pk_fail(vm, "no list below the MARK");
		return pk_append(vm, at);
	case PK_OP_EMPTY_DICT:
		return pk_new_dict(vm);
	case PK_OP_DICT:
		if (pk_pop_mark(vm, &at) || pk_new_dict(vm))
			return -1;
		v = vm->stack[vm->sp - 1];
		memmove(vm->stack + at + 1, vm->stack + at, (vm->sp - 1 - at) * sizeof(v));
		vm->stack[at] = v;
		return pk_setitems(vm, at + 1);
	case PK_OP_SETITEM:
		if (pk_avail(vm) < 3)
			return pk_underflow(vm, 3);
		return pk_setitems(vm, vm->sp - 2);
	case PK_OP_SETITEMS:
		if (pk_pop_mark(vm, &at))
			return -1;
		if (at <= vm->fence)
			return pk_fail(vm, "no dict below the MARK");
		return pk_setitems(vm, at);
	case PK_OP_GLOBAL: {
		size_t mod_end, name_end;

		/* both lines in the window before either is used */
		if (pk_line_end(vm, 0, &mod_end) || pk_line_end(vm, mod_end + 1, &name_end))
			return -1;
		p = vm->data + vm->pos;
		vm->pos += name_end + 1;
		return pk_global(vm, p, mod_end, p + mod_end + 1, name_end - mod_end - 1);
	}
	case PK_OP_STACK_GLOBAL: {
		const struct pk_value *mv, *nv;
		const struct pk_str *ms, *ns;

		if (pk_avail(vm) < 2)
			return pk_underflow(vm, 2);
		mv = &vm->stack[vm->sp - 2];
		nv = &vm->stack[vm->sp - 1];
		if (mv->kind != PK_STR || nv->kind != PK_STR)
			return pk_fail(vm, "module and name must be str");
		ms = &vm->strs[mv->a];
		ns = &vm->strs[nv->a];
		vm->sp -= 2;
		return pk_global(vm, (const unsigned char *)pk_str_data(vm, ms), ms->len,
				 (const unsigned char *)pk_str_data(vm, ns), ns->len);
	}
	case PK_OP_NEWOBJ:
	case PK_OP_NEWOBJ_EX: {
		size_t nargs = vm->op == PK_OP_NEWOBJ ? 2 : 3;
		struct pk_value cls;

		if (pk_avail(vm) < nargs)
			return pk_underflow(vm, nargs);
		if (!pk_is_tuple(&vm->stack[vm->sp - nargs + 1]))
			return pk_fail(vm, "arguments are %s, not a tuple",
				       pk_kind_name(vm, &vm->stack[vm->sp - nargs + 1]));
		if (nargs == 3 && vm->stack[vm->sp - 1].kind != PK_DICT)
			return pk_fail(vm, "keyword arguments are %s, not a dict",
				       pk_kind_name(vm, &vm->stack[vm->sp - 1]));
		cls = vm->stack[vm->sp - nargs];
		vm->sp -= nargs;
		return pk_new_object(vm, &cls);
	}
	case PK_OP_REDUCE: {
		/* only protocols 0/1's copyreg._reconstructor(cls, object, None),
		 * which is object.__new__(cls) */
		const struct pk_value *fn, *args, *e;
		struct pk_value cls;

		if (pk_avail(vm) < 2)
			return pk_underflow(vm, 2);
		fn = &vm->stack[vm->sp - 2];
		args = &vm->stack[vm->sp - 1];
		if (fn->kind != PK_CLASS || fn->a != PK_G_RECONSTRUCTOR || args->kind != PK_TUPLE ||
		    vm->tuples[args->a].n != 3)
			return pk_refuse(vm);
		e = vm->elems + vm->tuples[args->a].first;
		if (e[0].kind != PK_CLASS || e[1].kind != PK_CLASS || e[1].a != PK_G_OBJECT ||
		    e[2].kind != PK_NONE)
			return pk_refuse(vm);
		cls = e[0];
		vm->sp -= 2;
		return pk_new_object(vm, &cls);
	}
	case PK_OP_BUILD: {
		const struct pk_value *inst, *state;
		struct pk_attrs *attrs;
		unsigned a;

		if (pk_avail(vm) < 2)
			return pk_underflow(vm, 2);
		inst = &vm->stack[vm->sp - 2];
		state = &vm->stack[vm->sp - 1];
		if (inst->kind != PK_OBJECT)
			return pk_fail(vm, "sets the state of %s: only tracemalloc.Snapshot and "
				       "tracemalloc._Traces objects are built",
				       pk_kind_name(vm, inst));
		if (state->kind != PK_DICT)
			return pk_fail(vm, "state is %s, not a dict", pk_kind_name(vm, state));
		/* inst.__dict__.update(state): copied, later changes to the dict
		 * do not reach the object */
		attrs = &vm->objects[inst->a].attrs;
		for (a = 0; a < PK_NATTRS; a++)
			if (vm->dicts[state->a].v[a].kind != PK_UNSET)
				attrs->v[a] = vm->dicts[state->a].v[a];
		vm->sp--;
		return 0;
	}
	case PK_OP_MEMOIZE:
		return pk_memo_put(vm, vm->memo_len);
	case PK_OP_BINPUT:
	case PK_OP_LONG_BINPUT:
		n = vm->op == PK_OP_BINPUT ? 1 : 4;
		if (!pk_has(vm, n))
			return pk_truncated(vm);
		idx = pk_le(vm->data + vm->pos, (unsigned)n);
		vm->pos += n;
		return pk_memo_put(vm, idx);
	case PK_OP_PUT:
		if (pk_text_index(vm, &idx))
			return -1;
		return pk_memo_put(vm, idx);
	case PK_OP_BINGET:
	case PK_OP_LONG_BINGET:
		n = vm->op == PK_OP_BINGET ? 1 : 4;
		if (!pk_has(vm, n))
			return pk_truncated(vm);
		idx = pk_le(vm->data + vm->pos, (unsigned)n);
		vm->pos += n;
		return pk_memo_get(vm, idx);
	case PK_OP_GET:
		if (pk_text_index(vm, &idx))
			return -1;
		return pk_memo_get(vm, idx);
	default:
		if (pk_op_name(vm->op))
			return pk_refuse(vm);
		tm_error_set(vm->err, "byte 0x%02x at offset %zu is not a pickle opcode", vm->op,
			     vm->op_pos);
		return -1;
	}
}

static void pk_vm_free(struct pk_vm *vm)
{
	size_t i;

	free(vm->stack);
	free(vm->marks);
	free(vm->memo);
	free(vm->memo_big);
	free(vm->strs);
	free(vm->arena);
	free(vm->fseqs);
	free(vm->fkeys);
	free(vm->fmru);
	free(vm->fbuf);
	free(vm->tuples);
	free(vm->elems);
	for (i = 0; i < vm->nlists; i++) {
		free(vm->lists[i].items);
		free(vm->lists[i].counts);
		free(vm->lists[i].slots);
	}
	free(vm->lists);
	free(vm->dicts);
	free(vm->objects);
	free(vm->tbmap.keys);
	free(vm->tbmap.vals);
	free(vm->keys);
	free(vm->acc);
	free(vm->buf);
}

/* ---- the trace fast path ------------------------------------------------------------ */

/*
 * dump() writes each trace as
 *   MARK, domain, size, BINGET/LONG_BINGET of its frames tuple, total_nframe
 *   (or NONE), TUPLE, MEMOIZE
 * with the ints as BININT1/BININT2/BININT (LONG1 for big sizes). A million
 * traces are seven million opcodes; pk_fast_trace() runs such a sequence as
 * one step, with exactly the effect the opcodes have one by one (the same
 * stack, memo and checks, and the same errors, reported at the same opcode).
 * Anything else -- another opcode, a value that does not make a trace (a
 * negative int, a memo entry that is not a frames tuple), a stack or mark
 * limit -- is left untouched to the opcode-by-opcode path.
 */

/* The longest sequence: MARK, 3 LONG1 ints of 8 bytes, LONG_BINGET, TUPLE,
 * LONG_BINPUT. */
#define PK_FAST_TRACE_MAX (1 + 3 * 10 + 5 + 1 + 5)

/* A non-negative int opcode at p[*i]: BININT1, BININT2, BININT, or LONG1 of
 * at most 8 bytes. */
static inline bool pk_fast_uint(const unsigned char *p, size_t *i, uint64_t *v)
{
	const unsigned char *q = p + *i;

	switch (q[0]) {
	case PK_OP_BININT1:
		*v = q[1];
		*i += 2;
		return true;
	case PK_OP_BININT2:
		*v = (uint64_t)q[1] | (uint64_t)q[2] << 8;
		*i += 3;
		return true;
	case PK_OP_BININT:
		if (q[4] & 0x80)
			return false;
		*v = pk_le(q + 1, 4);
		*i += 5;
		return true;
	case PK_OP_LONG1:
		if (q[1] > 8 || (q[1] && (q[1 + q[1]] & 0x80)))
			return false;
		*v = pk_le(q + 2, q[1]);
		*i += 2 + (size_t)q[1];
		return true;
	default:
		return false;
	}
}

/* 1 when it ran the trace sequence at the cursor (a MARK), 0 when it did
 * nothing, -1 on error. */
static int pk_fast_trace(struct pk_vm *vm)
{
	const unsigned char *p;
	uint64_t domain, size, total, idx, e, tag, memo_idx = 0;
	uint32_t fs;
	size_t i = 1, tuple_at;
	unsigned memo_op = 0;
	tm_id key = TM_ID_NONE;

	if (vm->len - vm->pos < PK_FAST_TRACE_MAX) {
		if (pk_left(vm) < PK_FAST_TRACE_MAX)
			return 0;       /* the end of the input: one by one */
		if (!pk_has(vm, PK_FAST_TRACE_MAX))
			return -1;      /* a failed read */
	}
	/* the limits the opcodes would check: MARK, four pushes, and TUPLE's
	 * room for its result */
	if (vm->nmarks >= TM_PICKLE_MAX_MARKS || vm->stack_cap - vm->sp < 5)
		return 0;
	p = vm->data + vm->pos;
	if (!pk_fast_uint(p, &i, &domain) || domain > UINT32_MAX || !pk_fast_uint(p, &i, &size))
		return 0;
	if (p[i] == PK_OP_BINGET) {
		idx = p[i + 1];
		i += 2;
	} else if (p[i] == PK_OP_LONG_BINGET) {
		idx = pk_le(p + i + 1, 4);
		i += 5;
	} else {
		return 0;
	}
	if (idx >= vm->memo_init)
		return 0;
	e = vm->memo[idx];
	if ((e & 15) != PK_MEMO_FRAMES_KEYED && (e & 15) != PK_FRAMES)
		return 0;
	if (p[i] == PK_OP_NONE) {
		total = TM_TOTAL_NFRAME_NONE;
		i++;
	} else if (!pk_fast_uint(p, &i, &total) || total >= UINT32_MAX) {
		return 0;
	}
	if (p[i] != PK_OP_TUPLE)
		return 0;
	tuple_at = i++;
	switch (p[i]) {
	case PK_OP_MEMOIZE:
		memo_op = p[i];
		memo_idx = vm->memo_len;
		i += 1;
		break;
	case PK_OP_BINPUT:
		memo_op = p[i];
		memo_idx = p[i + 1];
		i += 2;
		break;
	case PK_OP_LONG_BINPUT:
		memo_op = p[i];
		memo_idx = pk_le(p + i + 1, 4);
		i += 5;
		break;
	}
	/*
	 * TUPLE: the trace's key, as pk_build_tuple() makes it. The frames
	 * tuple's memo entry keeps the key of its last trace (with a tag of its
	 * total_nframe): most traces find their key there, in the one entry
	 * they read anyway, instead of in pk_trace_key()'s cache, another table
	 * and another wait for memory per trace.
	 */
	tag = total == TM_TOTAL_NFRAME_NONE ? PK_MEMO_TOTAL_NONE : total;
	if ((e & 15) == PK_MEMO_FRAMES_KEYED) {
		key = (uint32_t)(e >> 4);
		if ((e >> 36) == tag && (vm->no_domains || vm->keys[key].domain == domain))
			goto have_key;
		fs = vm->keys[key].fs;
	} else {
		fs = (uint32_t)(e >> 4);
	}
	vm->op = PK_OP_TUPLE;
	vm->op_pos = vm->base + vm->pos + tuple_at;
	if (pk_trace_key(vm, fs, (uint32_t)domain, (uint32_t)total, &key))
		return -1;
	if (tag <= PK_MEMO_TOTAL_NONE)
		vm->memo[idx] = ((uint64_t)tag << 32 | key) << 4 | PK_MEMO_FRAMES_KEYED;
have_key:
	vm->stack[vm->sp++] = (struct pk_value){ .kind = PK_TRACE, .a = key, .u = size };
	/* dump()'s MEMOIZE of a trace: a new entry at the end of the memo, what
	 * pk_memo_put() does in this case */
	if (memo_op == PK_OP_MEMOIZE && memo_idx == vm->memo_init && memo_idx < vm->memo_cap &&
	    !(size >> PK_MEMO_TRACE_SIZE_BITS)) {
		vm->memo[vm->memo_init++] = (size << 32 | key) << 4 | PK_TRACE;
		vm->memo_len++;
		vm->memo_stores++;
		vm->pos += i;
		return 1;
	}
	if (memo_op) {
		vm->op = memo_op;
		vm->op_pos = vm->base + vm->pos + tuple_at + 1;
		vm->pos += i;
		return pk_memo_put(vm, memo_idx) ? -1 : 1;
	}
	vm->pos += i;
	return 1;
}

/* ---- loading -------------------------------------------------------------------------- */

struct tm_snapshot *tm_pickle_load_input(const struct tm_input *in, unsigned flags,
					 struct tm_error *err)
{
	struct pk_vm vm = { .total = in->size, .err = err,
			    .aggregate = flags & (TM_LOAD_AGGREGATE | TM_LOAD_NO_DOMAINS),
			    .no_domains = flags & TM_LOAD_NO_DOMAINS, .acc_list = UINT32_MAX };
	struct tm_snapshot *result = NULL;
	uint64_t memo_guess;

	if (in->fd < 0 && !in->window) {
		vm.data = in->mem;      /* in place */
		vm.len = (size_t)in->size;
	} else {
		vm.in = in;
		vm.buf_cap = in->window ? in->window : TM_INPUT_WINDOW;
		if (vm.buf_cap > in->size)
			vm.buf_cap = (size_t)in->size;
		vm.buf = malloc(vm.buf_cap ? vm.buf_cap : 1);
		vm.data = vm.buf;
		if (!vm.buf) {
			tm_error_set(err, "out of memory");
			return NULL;
		}
	}
	vm.s = tm_snapshot_new();
	if (!vm.s) {
		tm_error_set(err, "out of memory");
		free(vm.buf);
		return NULL;
	}
	/* see pk_traceback(): dump() spends two bytes or more per frame of each
	 * distinct traceback; the fixed part (64 MiB of ids) leaves room for
	 * snapshots built by hand that share one frames tuple among many
	 * total_nframe values */
	vm.frame_id_budget = vm.total / 2 + TM_PICKLE_FRAME_ID_SLACK;
	/* a dump() pickle memoizes about one value per 15 bytes: room for
	 * them from the start (untouched until used) */
	memo_guess = vm.total / 14 + 16;
	vm.memo = memo_guess <= SIZE_MAX / sizeof(*vm.memo)
			  ? malloc((size_t)memo_guess * sizeof(*vm.memo)) : NULL;
	if (!vm.memo) {
		tm_error_set(err, "out of memory");
		goto out;
	}
	vm.memo_cap = (size_t)memo_guess;
	for (;;) {
		if (vm.pos >= vm.len && !pk_has(&vm, 1)) {
			if (!vm.io_failed)
				tm_error_set(err, "pickle data ends at offset %" PRIu64 " without a "
					     "STOP opcode (truncated file?)", vm.total);
			goto out;
		}
		vm.op_pos = vm.base + vm.pos;
		vm.op = vm.data[vm.pos];
		if (vm.op == PK_OP_MARK) {
			int r = pk_fast_trace(&vm);

			if (r < 0)
				break;
			if (r > 0)
				continue;
			vm.op = PK_OP_MARK;
			vm.op_pos = vm.base + vm.pos;
		}
		vm.pos++;
		if (vm.op == PK_OP_STOP) {
			/* like pickle.load(), ignore whatever follows STOP */
			result = pk_finish(&vm);
			break;
		}
		if (pk_step(&vm))
			break;
	}
out:
	pk_vm_free(&vm);
	if (!result)
		tm_snapshot_free(vm.s);
	return result;
}

struct tm_snapshot *tm_pickle_load_mem(const void *data, size_t len, struct tm_error *err)
{
	struct tm_input in = { .fd = -1, .mem = data, .size = len };

	return tm_pickle_load_input(&in, 0, err);
}
