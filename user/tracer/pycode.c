// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Code objects read from target memory: see pycode.h.
 *
 * The line-table decoders follow CPython's own code step by step
 * (Objects/codeobject.c of each version), so that malformed input aside they
 * give PyCode_Addr2Line's answer for every offset, including the odd ones
 * (offsets past the table, zero-length ranges, "no line" markers).
 */
#include "tracer/pycode.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- line tables */

/* 3.8 / 3.9 PyCode_Addr2Line over co_lnotab: pairs (addr delta: u8, line
 * delta: s8); a pair applies when its address is <= addr. */
static int addr2line_lnotab(const uint8_t *p, size_t len, int32_t firstlineno, int32_t addrq,
			    int32_t *line)
{
	int64_t l = firstlineno, addr = 0;

	for (size_t i = 0; i + 1 < len; i += 2) {
		addr += p[i];
		if (addr > addrq)
			break;
		l += (int8_t)p[i + 1];
	}
	if (l < INT_MIN || l > INT_MAX)
		return -EINVAL;
	*line = (int32_t)l;
	return 0;
}

/* The PyCodeAddressRange walk shared by 3.10 and 3.11+. */
struct addr_range {
	const uint8_t *next, *limit;
	int64_t start, end;             /* [ar_start, ar_end) in bytes */
	int64_t line;                   /* ar_line */
	int64_t computed_line;
};

/* 3.10 advance(): (length in bytes: u8, line delta: s8, -128 = no line). */
static void advance_310(struct addr_range *r)
{
	r->start = r->end;
	r->end += r->next[0];
	int ldelta = (int8_t)r->next[1];
	r->next += 2;
	if (ldelta == -128) {
		r->line = -1;
	} else {
		r->computed_line += ldelta;
		r->line = r->computed_line;
	}
}

/* 3.10 PyLineTable_NextAddressRange: skips zero-length ranges (which only
 * carry line deltas). CPython asserts that the table does not end inside
 * such a run; we stop there instead of reading past the end. */
static int next_range_310(struct addr_range *r)
{
	if (r->limit - r->next < 2)
		return 0;
	advance_310(r);
	while (r->start == r->end) {
		if (r->limit - r->next < 2)
			return -1;
		advance_310(r);
	}
	return 1;
}

/* 3.11+ varints: 6 payload bits per byte, bit 6 = more follows. Bounded by
 * the table's end and by the width of CPython's unsigned int. */
static int scan_varint(const uint8_t **pp, const uint8_t *limit, uint32_t *out)
{
	const uint8_t *p = *pp;
	uint32_t val;
	unsigned shift = 0;

	if (p >= limit)
		return -EINVAL;
	uint8_t b = *p++;
	val = b & 63;
	while (b & 64) {
		if (p >= limit)
			return -EINVAL;
		b = *p++;
		shift += 6;
		if (shift >= 32)
			return -EINVAL;
		val |= (uint32_t)(b & 63) << shift;
	}
	*pp = p;
	*out = val;
	return 0;
}

/* get_line_delta(): the line change an entry applies. */
static int line_delta_311(const uint8_t *entry, const uint8_t *limit, int64_t *delta)
{
	unsigned code = (entry[0] >> 3) & 15;
	const uint8_t *p = entry + 1;
	uint32_t u;

	switch (code) {
	case 13:                        /* PY_CODE_LOCATION_INFO_NO_COLUMNS */
	case 14:                        /* PY_CODE_LOCATION_INFO_LONG */
		if (scan_varint(&p, limit, &u))
			return -EINVAL;
		/* scan_signed_varint */
		*delta = (u & 1) ? -(int64_t)(u >> 1) : (int64_t)(u >> 1);
		return 0;
	case 10: case 11: case 12:      /* PY_CODE_LOCATION_INFO_ONE_LINE0..2 */
		*delta = code - 10;
		return 0;
	default:                        /* short forms and NONE (15) */
		*delta = 0;
		return 0;
	}
}

/* 3.11+ advance(). */
static int advance_311(struct addr_range *r)
{
	int64_t delta;

	if (line_delta_311(r->next, r->limit, &delta))
		return -EINVAL;
	r->computed_line += delta;
	if (r->computed_line < INT_MIN || r->computed_line > INT_MAX)
		return -EINVAL;
	/* is_no_line_marker(): code 15 */
	r->line = (r->next[0] >> 3) == 0x1f ? -1 : r->computed_line;
	r->start = r->end;
	r->end += ((r->next[0] & 7) + 1) * 2;   /* code units of 2 bytes */
	do {
		r->next++;
	} while (r->next < r->limit && (*r->next & 128) == 0);
	return 0;
}

int py_addr2line(enum py_linetable_kind kind, const uint8_t *table, size_t len,
		 int32_t firstlineno, int32_t addr, int32_t *line)
{
	struct addr_range r;

	if (kind == PY_LINETABLE_LNOTAB)
		return addr2line_lnotab(table, len, firstlineno, addr, line);
	if (kind != PY_LINETABLE_310 && kind != PY_LINETABLE_311)
		return -EINVAL;
	if (addr < 0) {
		*line = firstlineno;
		return 0;
	}
	/* _PyLineTable_InitAddressRange + _PyCode_CheckLineNumber. Starting
	 * from ar_start = -1 and only moving forward, the "previous range"
	 * loop of CheckLineNumber never runs for addr >= 0. */
	r.next = table;
	r.limit = table + len;
	r.start = -1;
	r.end = 0;
	r.line = -1;
	r.computed_line = firstlineno;
	while (r.end <= addr) {
		int more;

		if (kind == PY_LINETABLE_310) {
			more = next_range_310(&r);
			if (more < 0)
				return -EINVAL;
		} else {
			more = r.next < r.limit;
			if (more && advance_311(&r))
				return -EINVAL;
		}
		if (!more) {
			*line = -1;
			return 0;
		}
	}
	if (r.line < INT_MIN || r.line > INT_MAX)
		return -EINVAL;
	*line = (int32_t)r.line;
	return 0;
}

/* ---------------------------------------------------------------- strings */

long py_str_to_utf8(unsigned kind, const uint8_t *data, size_t length, char *out)
{
	size_t o = 0;

	if (kind != 1 && kind != 2 && kind != 4)
		return -EINVAL;
	for (size_t i = 0; i < length; i++) {
		uint32_t c;

		if (kind == 1) {
			c = data[i];
		} else if (kind == 2) {
			c = (uint32_t)data[2 * i] | (uint32_t)data[2 * i + 1] << 8;
		} else {
			memcpy(&c, data + 4 * i, 4);
		}
		if (c < 0x80) {
			out[o++] = (char)c;
		} else if (c < 0x800) {
			out[o++] = (char)(0xc0 | c >> 6);
			out[o++] = (char)(0x80 | (c & 0x3f));
		} else if (c < 0x10000) {
			/* Surrogates included: 'surrogatepass' writes them as
			 * plain 3-byte sequences, one per code point. */
			out[o++] = (char)(0xe0 | c >> 12);
			out[o++] = (char)(0x80 | ((c >> 6) & 0x3f));
			out[o++] = (char)(0x80 | (c & 0x3f));
		} else if (c <= 0x10ffff) {
			out[o++] = (char)(0xf0 | c >> 18);
			out[o++] = (char)(0x80 | ((c >> 12) & 0x3f));
			out[o++] = (char)(0x80 | ((c >> 6) & 0x3f));
			out[o++] = (char)(0x80 | (c & 0x3f));
		} else {
			return -EINVAL;
		}
	}
	out[o] = '\0';
	return (long)o;
}

/* ---------------------------------------------------------------- remote objects */

#define TPFLAGS_UNICODE_SUBCLASS (1ull << 28)

static uint64_t rd_u64(const uint8_t *buf, uint32_t off)
{
	uint64_t v;

	memcpy(&v, buf + off, sizeof(v));
	return v;
}

/* Is the object at addr a str (PyUnicode_Check: exact type, or a type with
 * Py_TPFLAGS_UNICODE_SUBCLASS)? 1 yes, 0 no, negative errno. */
static int is_str(struct py_code_reader *rd, uint64_t addr)
{
	uint64_t type, flags;
	int ret = remote_read_u64(rd->mem, addr + rd->off->ob_type, &type);

	if (ret)
		return ret;
	if (type == rd->unicode_type)
		return 1;
	ret = remote_read_u64(rd->mem, type + rd->off->tp_flags, &flags);
	if (ret)
		return ret;
	return (flags & TPFLAGS_UNICODE_SUBCLASS) != 0;
}

int py_read_str(struct py_code_reader *rd, uint64_t addr, char **out, uint32_t *out_len)
{
	const struct py_user_offsets *o = rd->off;
	uint8_t hdr[80];
	int ret;

	*out = NULL;
	*out_len = 0;
	if (addr == 0)
		return 1;
	ret = is_str(rd, addr);
	if (ret <= 0)
		return ret < 0 ? ret : 1;
	/* Everything up to the compact data (or the data pointer). */
	uint32_t hdr_len = o->u_compact_size > o->u_data + 8 ? o->u_compact_size : o->u_data + 8;
	if (hdr_len > sizeof(hdr))
		return -EINVAL;
	ret = remote_read(rd->mem, addr, hdr, hdr_len);
	if (ret) {
		rd->stats.read_faults++;
		return ret;
	}
	uint64_t length = rd_u64(hdr, o->u_length);
	uint32_t state;
	memcpy(&state, hdr + o->u_state, sizeof(state));
	unsigned kind = (state >> 2) & 7;
	bool compact = state & (1u << 5), ascii = state & (1u << 6);

	/* <= 3.11: a string that is not "ready" has no canonical data yet;
	 * tracemalloc does not make it ready (that could allocate). */
	if (o->u_has_ready && !(state & (1u << 7)))
		return 1;
	if (kind != 1 && kind != 2 && kind != 4) {
		rd->stats.bad_string++;
		return -EINVAL;
	}
	if (length > PY_STR_MAX_CHARS) {
		rd->stats.string_too_long++;
		return -E2BIG;
	}
	uint64_t data;
	if (compact)
		data = addr + (ascii ? o->u_ascii_size : o->u_compact_size);
	else
		data = rd_u64(hdr, o->u_data);
	size_t nbytes = (size_t)length * kind;
	uint8_t *raw = malloc(nbytes ? nbytes : 1);
	char *utf8 = malloc((size_t)length * 4 + 1);
	if (!raw || !utf8) {
		free(raw);
		free(utf8);
		return -ENOMEM;
	}
	ret = remote_read(rd->mem, data, raw, nbytes);
	if (ret) {
		rd->stats.read_faults++;
		goto fail;
	}
	long n = py_str_to_utf8(kind, raw, (size_t)length, utf8);
	if (n < 0) {
		rd->stats.bad_string++;
		ret = (int)n;
		goto fail;
	}
	free(raw);
	*out = utf8;
	*out_len = (uint32_t)n;
	return 0;
fail:
	free(raw);
	free(utf8);
	return ret;
}

/* Reads a bytes object (a line table). */
static int read_bytes(struct py_code_reader *rd, uint64_t addr, uint8_t **out, uint32_t *out_len)
{
	const struct py_user_offsets *o = rd->off;
	uint64_t type;
	int64_t size;
	int ret;

	if (addr == 0) {
		rd->stats.bad_table++;
		return -EINVAL;
	}
	if ((ret = remote_read_u64(rd->mem, addr + o->ob_type, &type)) != 0 ||
	    (ret = remote_read(rd->mem, addr + o->b_size, &size, sizeof(size))) != 0) {
		rd->stats.read_faults++;
		return ret;
	}
	if (type != rd->bytes_type || size < 0) {
		rd->stats.bad_table++;
		return -EINVAL;
	}
	if ((uint64_t)size > PY_LINETABLE_MAX) {
		rd->stats.table_too_long++;
		return -E2BIG;
	}
	uint8_t *buf = malloc(size ? (size_t)size : 1);
	if (!buf)
		return -ENOMEM;
	ret = remote_read(rd->mem, addr + o->b_sval, buf, (size_t)size);
	if (ret) {
		rd->stats.read_faults++;
		free(buf);
		return ret;
	}
	*out = buf;
	*out_len = (uint32_t)size;
	return 0;
}

void py_code_info_free(struct py_code_info *ci)
{
	free(ci->filename);
	free(ci->name);
	free(ci->qualname);
	free(ci->linetable);
	memset(ci, 0, sizeof(*ci));
}

/* The header fields that identify a code object (for reading and for
 * cache validation). */
struct code_header {
	uint64_t type, filename, name, qualname, linetable;
	int32_t firstlineno;
};

static int read_header(struct py_code_reader *rd, uint64_t code, struct code_header *h)
{
	const struct py_user_offsets *o = rd->off;
	uint8_t buf[256];
	int ret;

	if (o->sizeof_code > sizeof(buf))
		return -EINVAL;
	ret = remote_read(rd->mem, code, buf, o->sizeof_code);
	if (ret) {
		rd->stats.read_faults++;
		return ret;
	}
	h->type = rd_u64(buf, o->ob_type);
	if (h->type != rd->code_type) {
		rd->stats.not_code++;
		return -EINVAL;
	}
	h->filename = rd_u64(buf, o->co_filename);
	h->name = rd_u64(buf, o->co_name);
	h->qualname = o->co_qualname ? rd_u64(buf, o->co_qualname) : 0;
	h->linetable = rd_u64(buf, o->co_linetable);
	memcpy(&h->firstlineno, buf + o->co_firstlineno, sizeof(h->firstlineno));
	return 0;
}

static char *dup_empty(void)
{
	return calloc(1, 1);
}

int py_code_read(struct py_code_reader *rd, uint64_t code, struct py_code_info *out)
{
	struct code_header h;
	int ret;

	memset(out, 0, sizeof(*out));
	ret = read_header(rd, code, &h);
	if (ret)
		return ret;
	out->code = code;
	out->filename_ptr = h.filename;
	out->linetable_ptr = h.linetable;
	out->firstlineno = h.firstlineno;

	ret = py_read_str(rd, h.filename, &out->filename, &out->filename_len);
	if (ret < 0)
		goto fail;
	if (ret == 1) {
		rd->stats.unknown_filename++;
		out->filename_unknown = true;
		out->filename = strdup(PY_UNKNOWN_FILENAME);
		out->filename_len = sizeof(PY_UNKNOWN_FILENAME) - 1;
		if (!out->filename) {
			ret = -ENOMEM;
			goto fail;
		}
	}
	/* Names are for display only: an unreadable one is "", not a failure. */
	uint32_t len;
	if (py_read_str(rd, h.name, &out->name, &len) != 0)
		out->name = dup_empty();
	if (rd->off->co_qualname && py_read_str(rd, h.qualname, &out->qualname, &len) != 0)
		out->qualname = dup_empty();
	ret = read_bytes(rd, h.linetable, &out->linetable, &out->linetable_len);
	if (ret)
		goto fail;
	rd->stats.ok++;
	return 0;
fail:
	py_code_info_free(out);
	return ret;
}

uint32_t py_code_lineno(const struct py_code_info *ci, enum py_linetable_kind kind, int32_t addr)
{
	int32_t line;

	if (py_addr2line(kind, ci->linetable, ci->linetable_len, ci->firstlineno, addr, &line) != 0)
		return 0;
	return line < 0 ? 0 : (uint32_t)line;
}

/* ---------------------------------------------------------------- cache */

struct cache_slot {
	bool used;
	struct py_code_info info;
};

struct py_code_cache {
	struct cache_slot *slots;
	size_t cap;                     /* power of two, >= 2 * max */
	size_t max;
	size_t n;
};

struct py_code_cache *py_code_cache_new(size_t max_entries)
{
	struct py_code_cache *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	if (max_entries < 16)
		max_entries = 16;
	c->max = max_entries;
	/* start small: host-wide tracing keeps one cache per process, and most
	 * processes run a few hundred code objects */
	c->cap = 64;
	c->slots = calloc(c->cap, sizeof(*c->slots));
	if (!c->slots) {
		free(c);
		return NULL;
	}
	return c;
}

static size_t hash_addr(uint64_t a)
{
	/* Objects are 16-byte aligned: mix the bits above that. */
	a ^= a >> 33;
	a *= 0xff51afd7ed558ccdull;
	a ^= a >> 33;
	return (size_t)a;
}

/* Doubles the table (load factor stays <= 1/2). 0, or -1 on ENOMEM. */
static int cache_grow(struct py_code_cache *c)
{
	size_t cap = c->cap * 2, mask = cap - 1;
	struct cache_slot *slots = calloc(cap, sizeof(*slots));

	if (!slots)
		return -1;
	for (size_t k = 0; k < c->cap; k++) {
		size_t j;

		if (!c->slots[k].used)
			continue;
		for (j = hash_addr(c->slots[k].info.code) & mask; slots[j].used; j = (j + 1) & mask)
			;
		slots[j] = c->slots[k];
	}
	free(c->slots);
	c->slots = slots;
	c->cap = cap;
	return 0;
}

static void cache_clear(struct py_code_cache *c)
{
	for (size_t i = 0; i < c->cap; i++) {
		if (c->slots[i].used)
			py_code_info_free(&c->slots[i].info);
		c->slots[i].used = false;
	}
	c->n = 0;
}

void py_code_cache_free(struct py_code_cache *c)
{
	if (!c)
		return;
	cache_clear(c);
	free(c->slots);
	free(c);
}

size_t py_code_cache_size(const struct py_code_cache *c)
{
	return c->n;
}


/* Linear-probing deletion by backward shift: later entries of the same
 * probe run move up so that lookups never stop early at the hole. */
static void cache_remove(struct py_code_cache *c, size_t i)
{
	size_t mask = c->cap - 1, j = i;

	py_code_info_free(&c->slots[i].info);
	c->slots[i].used = false;
	c->n--;
	for (;;) {
		j = (j + 1) & mask;
		if (!c->slots[j].used)
			return;
		size_t k = hash_addr(c->slots[j].info.code) & mask;
		/* Leave slot j alone if its home k lies cyclically in (i, j]. */
		bool stays = i <= j ? (k > i && k <= j) : (k > i || k <= j);
		if (stays)
			continue;
		c->slots[i] = c->slots[j];
		c->slots[j].used = false;
		memset(&c->slots[j].info, 0, sizeof(c->slots[j].info));
		i = j;
	}
}

const struct py_code_info *py_code_cache_get(struct py_code_cache *c, struct py_code_reader *rd,
					     uint64_t code, int *err)
{
	size_t mask = c->cap - 1, i = hash_addr(code) & mask;
	struct code_header h;
	int ret;

	for (; c->slots[i].used; i = (i + 1) & mask) {
		struct py_code_info *ci = &c->slots[i].info;

		if (ci->code != code)
			continue;
		ret = read_header(rd, code, &h);
		if (ret == 0 && h.filename == ci->filename_ptr && h.linetable == ci->linetable_ptr &&
		    h.firstlineno == ci->firstlineno) {
			rd->stats.cache_hits++;
			return ci;
		}
		/* Another object (or none) lives here now: read it again in place. */
		rd->stats.cache_stale++;
		py_code_info_free(ci);
		if (ret == 0)
			ret = py_code_read(rd, code, ci);
		if (ret) {
			cache_remove(c, i);
			*err = ret;
			return NULL;
		}
		return ci;
	}
	if (c->n >= c->max) {
		cache_clear(c);
		i = hash_addr(code) & mask;
	} else if ((c->n + 1) * 2 > c->cap) {
		if (cache_grow(c) == 0) {
			mask = c->cap - 1;
			for (i = hash_addr(code) & mask; c->slots[i].used; i = (i + 1) & mask)
				;
		} else if (c->n + 1 >= c->cap) {
			cache_clear(c);         /* no memory to grow: start over */
			i = hash_addr(code) & mask;
		}
	}
	ret = py_code_read(rd, code, &c->slots[i].info);
	if (ret) {
		*err = ret;
		return NULL;
	}
	c->slots[i].used = true;
	c->n++;
	return &c->slots[i].info;
}
