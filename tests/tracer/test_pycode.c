// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Code objects read from outside, against the interpreter's own answers:
 *   linetab:   every code object of ~20 stdlib modules, every address a frame
 *              can report: our decoder vs ctypes PyCode_Addr2Line;
 *   strings:   filenames/names of every str kind vs encode('utf-8',
 *              'surrogatepass');
 *   pycode:    hostile or odd objects built in this process's own memory
 *              (non-compact and not-ready strings, wrong types, caps, cache
 *              revalidation), with the outcomes tracemalloc's rules give.
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "live_python.h"
#include "tracer/pycode.h"
#include "tracer/pyinterp.h"
#include "tracer/remote.h"

static struct py_interp interp;

static void reader_for(struct py_code_reader *rd, struct remote *mem, const struct py_interp *pi)
{
	memset(rd, 0, sizeof(*rd));
	rd->mem = mem;
	rd->off = &pi->uoff;
	rd->code_type = py_interp_addr(pi, pi->code_type_vaddr);
	rd->unicode_type = py_interp_addr(pi, pi->unicode_type_vaddr);
	rd->bytes_type = py_interp_addr(pi, pi->bytes_type_vaddr);
}

/* ---------------------------------------------------------------- line tables */

static void linetab(const struct disc_python *py)
{
	char path[512], script[] = "tests/py/disc_linetab.py";
	struct disc_proc p;
	struct tm_error err;
	struct remote mem;
	struct py_code_reader rd;

	disc_require(py, path, sizeof(path));
	char *argv[] = { path, script, NULL };
	disc_spawn(&p, argv, NULL);
	disc_read_ready(&p);
	cr_assert_eq(py_interp_open_pid(p.pid, &interp, &err), 0, "%s: %s", py->name, err.msg);
	remote_init(&mem, p.pid);
	reader_for(&rd, &mem, &interp);
	struct py_code_cache *cache = py_code_cache_new(1 << 16);
	cr_assert_not_null(cache);

	enum py_linetable_kind kind = interp.uoff.linetable_kind;
	uint64_t ncodes = 0, naddrs = 0, mismatches = 0, nolines = 0;
	for (size_t i = 0; i + 1 < p.nlines; i++) {
		unsigned long long id;
		int first, nbytes, pos;

		if (sscanf(p.lines[i], "code %llx %d %d %n", &id, &first, &nbytes, &pos) != 3)
			continue;
		const char *name = p.lines[i] + pos;
		const char *lines = p.lines[i + 1];
		cr_assert(strncmp(lines, "lines ", 6) == 0);
		int e;
		const struct py_code_info *ci = py_code_cache_get(cache, &rd, id, &e);
		cr_assert_not_null(ci, "%s: code %#llx (%s): error %d", py->name, id, name, e);
		cr_expect_eq(ci->firstlineno, first);
		cr_expect_str_eq(ci->name, name);
		/* addresses -2, -1, 0, 2, ..., nbytes */
		const char *s = lines + 6;
		for (int k = 0;; k++) {
			int32_t addr = k == 0 ? -2 : k == 1 ? -1 : 2 * (k - 2), got;
			char *end;
			long want = strtol(s, &end, 10);

			if (end == s)
				break;
			s = end;
			cr_assert_leq(addr, nbytes);
			cr_assert_eq(py_addr2line(kind, ci->linetable, ci->linetable_len, ci->firstlineno,
						  addr, &got), 0, "%s: malformed table?", py->name);
			if (got != want && mismatches++ < 10)
				cr_log_error("%s: %s (code %#llx) addr %d: ours %d, PyCode_Addr2Line %ld",
					     py->name, name, id, addr, got, want);
			nolines += want < 0;
			naddrs++;
		}
		ncodes++;
		i++;
	}
	/* The cache answers again from memory, after one header read each. */
	for (size_t i = 0; i < p.nlines; i++) {
		unsigned long long id;
		int e;

		if (sscanf(p.lines[i], "code %llx", &id) == 1)
			cr_assert_not_null(py_code_cache_get(cache, &rd, id, &e));
	}
	cr_expect_eq(rd.stats.cache_hits, ncodes);
	cr_expect_eq(rd.stats.ok, ncodes);
	cr_expect_eq(rd.stats.cache_stale, 0);

	unsigned long long want_codes, want_addrs;
	cr_assert_eq(sscanf(p.lines[p.nlines - 1], "READY %llu %llu", &want_codes, &want_addrs), 2);
	cr_expect_eq(ncodes, want_codes);
	cr_expect_eq(naddrs, want_addrs);
	cr_expect_eq(mismatches, 0, "%s: %llu of %llu addresses differ", py->name,
		     (unsigned long long)mismatches, (unsigned long long)naddrs);
	cr_expect_gt(ncodes, 1000);
	printf("linetab %-12s %llu code objects, %llu addresses (%llu without a line), %llu mismatches\n",
	       py->name, (unsigned long long)ncodes, (unsigned long long)naddrs,
	       (unsigned long long)nolines, (unsigned long long)mismatches);
	cr_log_info("linetab %s: %llu code objects, %llu addresses, %llu mismatches", py->name,
		    (unsigned long long)ncodes, (unsigned long long)naddrs, (unsigned long long)mismatches);
	py_code_cache_free(cache);
	remote_close(&mem);
	disc_stop(&p);
}

#define PER_PYTHON2(suite, prefix, fn)                                                        \
	Test(suite, prefix##_py38) { fn(&disc_pythons[0]); }                                 \
	Test(suite, prefix##_py39) { fn(&disc_pythons[1]); }                                 \
	Test(suite, prefix##_py310) { fn(&disc_pythons[2]); }                                \
	Test(suite, prefix##_py311) { fn(&disc_pythons[3]); }                                \
	Test(suite, prefix##_py312) { fn(&disc_pythons[4]); }                                \
	Test(suite, prefix##_py313) { fn(&disc_pythons[5]); }                                \
	Test(suite, prefix##_debian311) { fn(&disc_pythons[6]); }

PER_PYTHON2(linetab, addr2line, linetab)

/* ---------------------------------------------------------------- strings of every kind */

static void hex_to_str(const char *hex, char *out, size_t size)
{
	size_t n = 0;

	if (strcmp(hex, "-") != 0)
		for (; hex[0] && hex[1] && n + 1 < size; hex += 2)
			sscanf(hex, "%2hhx", (unsigned char *)&out[n++]);
	out[n] = '\0';
}

static void strings(const struct disc_python *py)
{
	char path[512], script[] = "tests/py/disc_strings.py";
	struct disc_proc p;
	struct tm_error err;
	struct remote mem;
	struct py_code_reader rd;
	size_t n = 0;

	disc_require(py, path, sizeof(path));
	char *argv[] = { path, script, NULL };
	disc_spawn(&p, argv, NULL);
	disc_read_ready(&p);
	cr_assert_eq(py_interp_open_pid(p.pid, &interp, &err), 0, "%s: %s", py->name, err.msg);
	remote_init(&mem, p.pid);
	reader_for(&rd, &mem, &interp);
	for (size_t i = 0; i < p.nlines; i++) {
		unsigned long long id;
		char fh[2048], nh[256], qh[256], fn[1024], nm[128], qn[128];
		struct py_code_info ci;

		if (sscanf(p.lines[i], "code %llx %2047s %255s %255s", &id, fh, nh, qh) != 4)
			continue;
		hex_to_str(fh, fn, sizeof(fn));
		hex_to_str(nh, nm, sizeof(nm));
		hex_to_str(qh, qn, sizeof(qn));
		cr_assert_eq(py_code_read(&rd, id, &ci), 0, "%s: %#llx", py->name, id);
		cr_expect_eq(ci.filename_len, strlen(fn));
		cr_expect_str_eq(ci.filename, fn, "%s: filename", py->name);
		cr_expect(!ci.filename_unknown);
		cr_expect_str_eq(ci.name, nm);
		if (strcmp(qh, "-") == 0)
			cr_expect_null(ci.qualname);
		else
			cr_expect_str_eq(ci.qualname, qn);
		py_code_info_free(&ci);
		n++;
	}
	cr_expect_eq(n, 27);
	cr_log_info("strings %s: %zu code objects, filenames/names of kinds 1, 2, 4 and surrogates", py->name, n);
	remote_close(&mem);
	disc_stop(&p);
}

PER_PYTHON2(strings, kinds, strings)

/* ---------------------------------------------------------------- synthetic objects */

/* Fake CPython objects in our own memory, read through the same remote path
 * (process_vm_readv on ourselves). Layout: 3.11 offsets (with "ready"), and
 * 3.12 for the cases where the bit means something else. */
struct fake {
	uint64_t code_type[4], unicode_type[4], bytes_type[4];
	uint64_t other_type[32], str_subclass_type[32];
	uint8_t code[256];
	uint8_t str[128];
	uint8_t str_data[64];
	uint8_t table[64];
};

static struct fake fk;
static struct remote self_mem;
static struct py_code_reader self_rd;
static struct py_user_offsets off311, off312;

static void put64(uint8_t *base, uint32_t off, uint64_t v)
{
	memcpy(base + off, &v, 8);
}

static void put32(uint8_t *base, uint32_t off, uint32_t v)
{
	memcpy(base + off, &v, 4);
}

/* A compact ASCII str "ab.py" at fk.str. */
static void make_ascii_str(const struct py_user_offsets *o)
{
	memset(fk.str, 0, sizeof(fk.str));
	put64(fk.str, o->ob_type, (uint64_t)(uintptr_t)fk.unicode_type);
	put64(fk.str, o->u_length, 5);
	/* kind 1, compact, ascii, ready: bits 2, 5, 6, 7 */
	put32(fk.str, o->u_state, 1u << 2 | 1u << 5 | 1u << 6 | 1u << 7);
	memcpy(fk.str + o->u_ascii_size, "ab.py", 6);
}

/* A code object with filename fk.str and a 3.11 line table. */
static void make_code(const struct py_user_offsets *o)
{
	memset(fk.code, 0, sizeof(fk.code));
	put64(fk.code, o->ob_type, (uint64_t)(uintptr_t)fk.code_type);
	put64(fk.code, o->co_filename, (uint64_t)(uintptr_t)fk.str);
	put64(fk.code, o->co_name, (uint64_t)(uintptr_t)fk.str);
	put64(fk.code, o->co_linetable, (uint64_t)(uintptr_t)fk.table);
	put32(fk.code, o->co_firstlineno, 10);
	memset(fk.table, 0, sizeof(fk.table));
	put64(fk.table, o->ob_type, (uint64_t)(uintptr_t)fk.bytes_type);
	put64(fk.table, o->b_size, 2);
	/* one entry: code 10 (ONE_LINE0), 1 code unit, then 2 column bytes... only 1 here */
	fk.table[o->b_sval] = 0x80 | 10 << 3 | 0;
	fk.table[o->b_sval + 1] = 0x80 | 11 << 3 | 0;  /* ONE_LINE1: line 11 at bytes 2..3 */
}

static void synth_setup(void)
{
	off311 = pyoffsets_for_minor(11)->user;
	off312 = pyoffsets_for_minor(12)->user;
	remote_init(&self_mem, getpid());
	memset(&self_rd, 0, sizeof(self_rd));
	self_rd.mem = &self_mem;
	self_rd.off = &off311;
	self_rd.code_type = (uint64_t)(uintptr_t)fk.code_type;
	self_rd.unicode_type = (uint64_t)(uintptr_t)fk.unicode_type;
	self_rd.bytes_type = (uint64_t)(uintptr_t)fk.bytes_type;
	make_ascii_str(&off311);
	make_code(&off311);
}

static void synth_teardown(void)
{
	remote_close(&self_mem);
}

TestSuite(pycode, .init = synth_setup, .fini = synth_teardown);

Test(pycode, compact_ascii_and_code)
{
	struct py_code_info ci;

	cr_assert_eq(py_code_read(&self_rd, (uint64_t)(uintptr_t)fk.code, &ci), 0);
	cr_expect_str_eq(ci.filename, "ab.py");
	cr_expect_eq(ci.firstlineno, 10);
	cr_expect_eq(py_code_lineno(&ci, PY_LINETABLE_311, 0), 10);
	cr_expect_eq(py_code_lineno(&ci, PY_LINETABLE_311, 2), 11);
	cr_expect_eq(py_code_lineno(&ci, PY_LINETABLE_311, 4), 0, "past the table: -1, clamped");
	cr_expect_eq(py_code_lineno(&ci, PY_LINETABLE_311, -2), 10);
	py_code_info_free(&ci);
}

Test(pycode, non_compact_legacy_string)
{
	char *s;
	uint32_t len;

	/* PyUnicodeObject with kind 2 data elsewhere: "\u03c0\u00e9" */
	put32(fk.str, off311.u_state, 2u << 2 | 1u << 7);              /* kind 2, not compact, ready */
	put64(fk.str, off311.u_length, 2);
	put64(fk.str, off311.u_data, (uint64_t)(uintptr_t)fk.str_data);
	fk.str_data[0] = 0xc0; fk.str_data[1] = 0x03; fk.str_data[2] = 0xe9; fk.str_data[3] = 0x00;
	cr_assert_eq(py_read_str(&self_rd, (uint64_t)(uintptr_t)fk.str, &s, &len), 0);
	cr_expect_eq(len, 4);
	cr_expect_str_eq(s, "\xcf\x80\xc3\xa9");
	free(s);
}

Test(pycode, not_ready_is_unknown_until_312)
{
	char *s;
	uint32_t len;
	struct py_code_info ci;

	/* <= 3.11: ready bit clear -> tracemalloc records "<unknown>" */
	put32(fk.str, off311.u_state, 1u << 2 | 1u << 5 | 1u << 6);
	cr_expect_eq(py_read_str(&self_rd, (uint64_t)(uintptr_t)fk.str, &s, &len), 1);
	cr_assert_eq(py_code_read(&self_rd, (uint64_t)(uintptr_t)fk.code, &ci), 0);
	cr_expect_str_eq(ci.filename, "<unknown>");
	cr_expect(ci.filename_unknown);
	cr_expect_eq(self_rd.stats.unknown_filename, 1);
	py_code_info_free(&ci);
	/* 3.12+: bit 7 is "statically allocated", there is no readiness */
	self_rd.off = &off312;
	make_ascii_str(&off312);
	put32(fk.str, off312.u_state, 1u << 2 | 1u << 5 | 1u << 6);
	cr_expect_eq(py_read_str(&self_rd, (uint64_t)(uintptr_t)fk.str, &s, &len), 0);
	cr_expect_str_eq(s, "ab.py");
	free(s);
}

Test(pycode, filename_not_a_str)
{
	struct py_code_info ci;
	char *s;
	uint32_t len;

	/* An object of a type without Py_TPFLAGS_UNICODE_SUBCLASS. */
	put64(fk.str, off311.ob_type, (uint64_t)(uintptr_t)fk.other_type);
	cr_assert_eq(py_code_read(&self_rd, (uint64_t)(uintptr_t)fk.code, &ci), 0);
	cr_expect_str_eq(ci.filename, "<unknown>");
	py_code_info_free(&ci);
	/* A str subclass counts as str (PyUnicode_Check). */
	fk.str_subclass_type[off311.tp_flags / 8] = 1ull << 28;
	put64(fk.str, off311.ob_type, (uint64_t)(uintptr_t)fk.str_subclass_type);
	cr_expect_eq(py_read_str(&self_rd, (uint64_t)(uintptr_t)fk.str, &s, &len), 0);
	cr_expect_str_eq(s, "ab.py");
	free(s);
	/* NULL co_filename */
	put64(fk.code, off311.co_filename, 0);
	cr_assert_eq(py_code_read(&self_rd, (uint64_t)(uintptr_t)fk.code, &ci), 0);
	cr_expect_str_eq(ci.filename, "<unknown>");
	py_code_info_free(&ci);
}

Test(pycode, hostile_strings)
{
	char *s;
	uint32_t len;

	put32(fk.str, off311.u_state, 3u << 2 | 1u << 5 | 1u << 7);    /* kind 3 */
	cr_expect_eq(py_read_str(&self_rd, (uint64_t)(uintptr_t)fk.str, &s, &len), -EINVAL);
	put32(fk.str, off311.u_state, 1u << 2 | 1u << 5 | 1u << 6 | 1u << 7);
	put64(fk.str, off311.u_length, (uint64_t)PY_STR_MAX_CHARS + 1);
	cr_expect_eq(py_read_str(&self_rd, (uint64_t)(uintptr_t)fk.str, &s, &len), -E2BIG);
	put64(fk.str, off311.u_length, UINT64_MAX);                    /* negative Py_ssize_t */
	cr_expect_eq(py_read_str(&self_rd, (uint64_t)(uintptr_t)fk.str, &s, &len), -E2BIG);
	/* UCS-4 above U+10FFFF */
	put32(fk.str, off311.u_state, 4u << 2 | 1u << 7);
	put64(fk.str, off311.u_length, 1);
	put64(fk.str, off311.u_data, (uint64_t)(uintptr_t)fk.str_data);
	put32(fk.str_data, 0, 0x110000);
	cr_expect_eq(py_read_str(&self_rd, (uint64_t)(uintptr_t)fk.str, &s, &len), -EINVAL);
	/* data pointer into an unmapped page */
	void *page = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(page, MAP_FAILED);
	put64(fk.str, off311.u_data, (uint64_t)(uintptr_t)page);
	cr_expect_eq(py_read_str(&self_rd, (uint64_t)(uintptr_t)fk.str, &s, &len), -EFAULT);
	cr_expect_eq(py_read_str(&self_rd, (uint64_t)(uintptr_t)page, &s, &len), -EFAULT);
	munmap(page, 4096);
	cr_expect_eq(self_rd.stats.bad_string, 2);
	cr_expect_eq(self_rd.stats.string_too_long, 2);
}

Test(pycode, hostile_code_objects)
{
	struct py_code_info ci;

	put64(fk.code, off311.ob_type, (uint64_t)(uintptr_t)fk.other_type);
	cr_expect_eq(py_code_read(&self_rd, (uint64_t)(uintptr_t)fk.code, &ci), -EINVAL);
	cr_expect_eq(self_rd.stats.not_code, 1);
	make_code(&off311);
	put64(fk.table, off311.ob_type, (uint64_t)(uintptr_t)fk.other_type);   /* table not bytes */
	cr_expect_eq(py_code_read(&self_rd, (uint64_t)(uintptr_t)fk.code, &ci), -EINVAL);
	make_code(&off311);
	put64(fk.table, off311.b_size, (uint64_t)PY_LINETABLE_MAX + 1);
	cr_expect_eq(py_code_read(&self_rd, (uint64_t)(uintptr_t)fk.code, &ci), -E2BIG);
	cr_expect_eq(self_rd.stats.table_too_long, 1);
	cr_expect_eq(py_code_read(&self_rd, 8, &ci), -EFAULT);
	cr_expect_eq(self_rd.stats.bad_table, 1);
}

Test(pycode, cache_revalidates)
{
	struct py_code_cache *c = py_code_cache_new(16);
	uint64_t code = (uint64_t)(uintptr_t)fk.code;
	const struct py_code_info *ci;
	int e;

	cr_assert_not_null(c);
	ci = py_code_cache_get(c, &self_rd, code, &e);
	cr_assert_not_null(ci);
	cr_expect_str_eq(ci->filename, "ab.py");
	ci = py_code_cache_get(c, &self_rd, code, &e);
	cr_expect_eq(self_rd.stats.cache_hits, 1);
	/* The object died and another code object took its address. */
	static uint8_t other_str[128];
	memcpy(other_str, fk.str, sizeof(other_str));
	memcpy(other_str + off311.u_ascii_size, "cd.py", 6);
	put64(fk.code, off311.co_filename, (uint64_t)(uintptr_t)other_str);
	ci = py_code_cache_get(c, &self_rd, code, &e);
	cr_assert_not_null(ci);
	cr_expect_str_eq(ci->filename, "cd.py");
	cr_expect_eq(self_rd.stats.cache_stale, 1);
	/* Same pointers, new first line: also re-read. */
	put32(fk.code, off311.co_firstlineno, 99);
	ci = py_code_cache_get(c, &self_rd, code, &e);
	cr_expect_eq(ci->firstlineno, 99);
	cr_expect_eq(self_rd.stats.cache_stale, 2);
	/* Not a code object any more: an error, and the entry is gone. */
	put64(fk.code, off311.ob_type, (uint64_t)(uintptr_t)fk.other_type);
	cr_expect_null(py_code_cache_get(c, &self_rd, code, &e));
	cr_expect_eq(e, -EINVAL);
	cr_expect_eq(py_code_cache_size(c), 0);
	/* Many entries: evictions keep every answer right. */
	put64(fk.code, off311.ob_type, (uint64_t)(uintptr_t)fk.code_type);
	put64(fk.code, off311.co_filename, (uint64_t)(uintptr_t)fk.str);
	for (int i = 0; i < 100; i++) {
		ci = py_code_cache_get(c, &self_rd, code, &e);
		cr_assert_not_null(ci);
		cr_expect_str_eq(ci->filename, "ab.py");
	}
	py_code_cache_free(c);
}

/* ---------------------------------------------------------------- pure decoders */

Test(pycode, malformed_tables_are_errors)
{
	int32_t line;
	/* 3.11 NO_COLUMNS entry whose varint never ends */
	static const uint8_t t1[] = { 0x80 | 13 << 3, 0x41 };
	cr_expect_eq(py_addr2line(PY_LINETABLE_311, t1, sizeof(t1), 1, 4, &line), -EINVAL);
	/* a varint wider than CPython's unsigned int */
	static const uint8_t t2[] = { 0x80 | 13 << 3, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x3f };
	cr_expect_eq(py_addr2line(PY_LINETABLE_311, t2, sizeof(t2), 1, 4, &line), -EINVAL);
	/* 3.10 table ending in a run of zero-length entries (CPython asserts) */
	static const uint8_t t3[] = { 2, 1, 0, 1 };
	cr_expect_eq(py_addr2line(PY_LINETABLE_310, t3, sizeof(t3), 1, 2, &line), -EINVAL);
	cr_expect_eq(py_addr2line(PY_LINETABLE_310, t3, sizeof(t3), 1, 0, &line), 0);
	cr_expect_eq(line, 2);
	/* empty tables: "no line" for any address, first line for negative ones */
	cr_expect_eq(py_addr2line(PY_LINETABLE_311, NULL, 0, 7, 0, &line), 0);
	cr_expect_eq(line, -1);
	cr_expect_eq(py_addr2line(PY_LINETABLE_311, NULL, 0, 7, -2, &line), 0);
	cr_expect_eq(line, 7);
	cr_expect_eq(py_addr2line(PY_LINETABLE_LNOTAB, NULL, 0, 7, 100, &line), 0);
	cr_expect_eq(line, 7);
	cr_expect_eq(py_addr2line((enum py_linetable_kind)0, NULL, 0, 7, 100, &line), -EINVAL);
}
