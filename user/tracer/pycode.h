/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * From (code object pointer, instruction offset) to (filename, lineno), by
 * reading the target's memory, the way tracemalloc turns a frame into a
 * (filename, lineno) pair.
 *
 * Everything read from the target is untrusted: the object must be a code
 * object (ob_type is PyCode_Type's runtime address), strings and line tables
 * have size caps, and every failure is an explicit, counted error.
 *
 * The pure decoders (line tables, str -> UTF-8) take bytes and are fuzzed
 * (tests/fuzz/fuzz_linetable.c); they depend on nothing else.
 */
#ifndef TMBPF_TRACER_PYCODE_H
#define TMBPF_TRACER_PYCODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tracer/pyoffsets.h"
#include "tracer/remote.h"

/* Caps on what we read from a code object. */
#define PY_STR_MAX_CHARS 32768u         /* code points of a filename / name */
#define PY_LINETABLE_MAX (1u << 20)     /* bytes of a line table */

#define PY_UNKNOWN_FILENAME "<unknown>"  /* tracemalloc's unknown_filename */

/* ---------------------------------------------------------------- pure decoders */

/* Line of byte offset addr, exactly as that version's PyCode_Addr2Line
 * computes it from the line table (table, len) and co_firstlineno:
 * PY_LINETABLE_LNOTAB (3.8/3.9, addr = f_lasti in bytes), PY_LINETABLE_310
 * (addr = 2 * f_lasti), PY_LINETABLE_311 (addr = instr - code start, bytes).
 * Returns 0 with *line set (-1 = "no line"; callers clamp negative to 0 as
 * tracemalloc does), or -EINVAL if the table is malformed (a varint runs off
 * the end, a line leaves the int range): CPython's own tables never are. */
int py_addr2line(enum py_linetable_kind kind, const uint8_t *table, size_t len,
		 int32_t firstlineno, int32_t addr, int32_t *line);

/* Encodes length code points of kind 1 (Latin-1), 2 (UCS-2) or 4 (UCS-4)
 * from data as UTF-8, lone surrogates encoded as Python's 'surrogatepass'
 * does (3 bytes each, never paired). out must hold 4*length+1 bytes; the
 * result is NUL-terminated. Returns the UTF-8 length, or -EINVAL (bad kind,
 * a code point above U+10FFFF). */
long py_str_to_utf8(unsigned kind, const uint8_t *data, size_t length, char *out);

/* ---------------------------------------------------------------- reading code objects */

struct py_code_stats {
	uint64_t ok;                    /* code objects read */
	uint64_t not_code;              /* ob_type is not PyCode_Type */
	uint64_t read_faults;           /* a read of the object or its parts failed */
	uint64_t bad_string;            /* a name with an impossible kind/length/code point */
	uint64_t string_too_long;       /* over PY_STR_MAX_CHARS */
	uint64_t table_too_long;        /* line table over PY_LINETABLE_MAX */
	uint64_t bad_table;             /* line table not a bytes object / malformed */
	uint64_t unknown_filename;      /* co_filename NULL, not a str, or not ready (<= 3.11) */
	uint64_t cache_hits;
	uint64_t cache_stale;           /* cached address now holds another code object */
};

/* What one needs to read code objects of one process. */
struct py_code_reader {
	struct remote *mem;
	const struct py_user_offsets *off;
	uint64_t code_type;             /* runtime address of PyCode_Type */
	uint64_t unicode_type;          /* runtime address of PyUnicode_Type */
	uint64_t bytes_type;            /* runtime address of PyBytes_Type */
	struct py_code_stats stats;
};

struct py_code_info {
	uint64_t code;                  /* the object's address */
	/* validation keys: what the object held when it was read */
	uint64_t filename_ptr;
	uint64_t linetable_ptr;
	int32_t firstlineno;
	/* decoded (all NUL-terminated UTF-8; filename is "<unknown>" when
	 * tracemalloc would record that) */
	char *filename;
	uint32_t filename_len;
	bool filename_unknown;
	char *name;                     /* "" if unreadable */
	char *qualname;                 /* 3.11+; NULL before */
	uint8_t *linetable;
	uint32_t linetable_len;
};

/* Reads the code object at code. Returns 0, or a negative errno (counted in
 * rd->stats): -EINVAL not a code object / malformed parts, -EFAULT unreadable,
 * -E2BIG over a cap. */
int py_code_read(struct py_code_reader *rd, uint64_t code, struct py_code_info *out);
void py_code_info_free(struct py_code_info *ci);

/* Line for byte offset addr (what the frame walker recorded), clamped to
 * >= 0 as tracemalloc does. Malformed tables give 0. */
uint32_t py_code_lineno(const struct py_code_info *ci, enum py_linetable_kind kind, int32_t addr);

/* Reads a str object at addr as UTF-8 into a malloc'ed buffer (*out, *len).
 * Returns 0; 1 if addr is NULL, not a str or (<= 3.11) not ready - the cases
 * tracemalloc records as "<unknown>"; or a negative errno. */
int py_read_str(struct py_code_reader *rd, uint64_t addr, char **out, uint32_t *len);

/* ---------------------------------------------------------------- cache */

/* Code objects by address. A hit is re-validated with one small read (the
 * object header: ob_type, co_filename, the line table pointer and
 * co_firstlineno must be unchanged), so an address reused by another code
 * object after the first one died is read again. */
struct py_code_cache;

struct py_code_cache *py_code_cache_new(size_t max_entries);
void py_code_cache_free(struct py_code_cache *c);
/* The info for code (valid until the next call on this cache), or NULL with
 * *err a negative errno. */
const struct py_code_info *py_code_cache_get(struct py_code_cache *c, struct py_code_reader *rd,
					     uint64_t code, int *err);
size_t py_code_cache_size(const struct py_code_cache *c);

#endif /* TMBPF_TRACER_PYCODE_H */
