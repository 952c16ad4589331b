// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Interpreter discovery: see pyinterp.h. */
#include "tracer/pyinterp.h"

#include <elf.h>
#include <errno.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tracer/elfinfo.h"
#include "tracer/procmaps.h"
#include "tracer/remote.h"
#include "tracer/x86dec.h"

static const char *const func_names[PY_FN_COUNT] = {
	[PY_FN_RAW_MALLOC] = "PyMem_RawMalloc", [PY_FN_RAW_CALLOC] = "PyMem_RawCalloc",
	[PY_FN_RAW_REALLOC] = "PyMem_RawRealloc", [PY_FN_RAW_FREE] = "PyMem_RawFree",
	[PY_FN_MEM_MALLOC] = "PyMem_Malloc", [PY_FN_MEM_CALLOC] = "PyMem_Calloc",
	[PY_FN_MEM_REALLOC] = "PyMem_Realloc", [PY_FN_MEM_FREE] = "PyMem_Free",
	[PY_FN_OBJ_MALLOC] = "PyObject_Malloc", [PY_FN_OBJ_CALLOC] = "PyObject_Calloc",
	[PY_FN_OBJ_REALLOC] = "PyObject_Realloc", [PY_FN_OBJ_FREE] = "PyObject_Free",
	[PY_FN_TRACEMALLOC_TRACK] = "PyTraceMalloc_Track",
	[PY_FN_TRACEMALLOC_UNTRACK] = "PyTraceMalloc_Untrack",
	[PY_FN_FINALIZE_EX] = "Py_FinalizeEx",
	[PY_FN_NEW_REFERENCE] = "_Py_NewReference",
	[PY_FN_EVAL_FRAME] = "_PyEval_EvalFrameDefault",
};

#define RDI X86_REGBIT(X86_RDI)
#define RSI X86_REGBIT(X86_RSI)
#define RDX X86_REGBIT(X86_RDX)

/* The argument registers each probe reads (entry probes see them intact only
 * if nothing before the probe point wrote them). */
static const uint32_t func_args[PY_FN_COUNT] = {
	[PY_FN_RAW_MALLOC] = RDI, [PY_FN_RAW_CALLOC] = RDI | RSI,
	[PY_FN_RAW_REALLOC] = RDI | RSI, [PY_FN_RAW_FREE] = RDI,
	[PY_FN_MEM_MALLOC] = RDI, [PY_FN_MEM_CALLOC] = RDI | RSI,
	[PY_FN_MEM_REALLOC] = RDI | RSI, [PY_FN_MEM_FREE] = RDI,
	[PY_FN_OBJ_MALLOC] = RDI, [PY_FN_OBJ_CALLOC] = RDI | RSI,
	[PY_FN_OBJ_REALLOC] = RDI | RSI, [PY_FN_OBJ_FREE] = RDI,
	[PY_FN_TRACEMALLOC_TRACK] = RDI | RSI | RDX,
	[PY_FN_TRACEMALLOC_UNTRACK] = RDI | RSI,
	[PY_FN_FINALIZE_EX] = 0,
	[PY_FN_NEW_REFERENCE] = RDI,
	[PY_FN_EVAL_FRAME] = RDI | RSI | RDX,
};

const char *py_func_name(enum py_func_id id)
{
	return (unsigned)id < PY_FN_COUNT ? func_names[id] : "?";
}

/* Static allocator tables of 3.8 - 3.11 (file-static, .symtab only). */
static const char *const table_symbols[3] = { "_PyMem_Raw", "_PyMem", "_PyObject" };
/* Their first user, whose first RIP-relative loads name them in a stripped binary. */
static const enum py_func_id table_users[3] = { PY_FN_RAW_MALLOC, PY_FN_MEM_MALLOC, PY_FN_OBJ_MALLOC };
static const char *const domain_names[3] = { "raw", "mem", "obj" };

/* ---------------------------------------------------------------- version */

/* "3.11.2", "3.13.0rc1" -> numbers and PY_VERSION_HEX. */
static bool parse_version(const char *s, struct py_interp *pi)
{
	unsigned major, minor, micro = 0, serial = 0, level = 0xf;
	int n = 0;

	if (sscanf(s, "%u.%u%n", &major, &minor, &n) != 2)
		return false;
	s += n;
	if (*s == '.') {
		if (sscanf(s, ".%u%n", &micro, &n) != 1)
			return false;
		s += n;
	}
	if (s[0] == 'a' || s[0] == 'b') {
		level = s[0] == 'a' ? 0xa : 0xb;
		serial = (unsigned)atoi(s + 1);
	} else if (s[0] == 'r' && s[1] == 'c') {
		level = 0xc;
		serial = (unsigned)atoi(s + 2);
	}
	if (major > 9 || minor > 99 || micro > 99 || serial > 15)
		return false;
	pi->major = major;
	pi->minor = minor;
	pi->micro = micro;
	pi->hexversion = major << 24 | minor << 16 | micro << 8 | level << 4 | serial;
	return true;
}

static void version_from_hex(struct py_interp *pi, uint32_t hex)
{
	static const char *const lv[16] = { [0xa] = "a", [0xb] = "b", [0xc] = "rc" };
	unsigned level = (hex >> 4) & 0xf;

	pi->hexversion = hex;
	pi->major = hex >> 24;
	pi->minor = (hex >> 16) & 0xff;
	pi->micro = (hex >> 8) & 0xff;
	if (level == 0xf)
		snprintf(pi->version, sizeof(pi->version), "%u.%u.%u", pi->major, pi->minor, pi->micro);
	else
		snprintf(pi->version, sizeof(pi->version), "%u.%u.%u%s%u", pi->major, pi->minor,
			 pi->micro, lv[level] ? lv[level] : "?", hex & 0xf);
}

/* Is s (at most max bytes, NUL-terminated inside) a version string like
 * "3.8.18" or "3.13.0rc1"? */
static bool looks_like_version(const uint8_t *s, size_t max)
{
	size_t i = 0, dots = 0;

	if (max < 4 || s[0] < '2' || s[0] > '3' || s[1] != '.')
		return false;
	for (i = 0; i < max && s[i]; i++) {
		if (s[i] == '.')
			dots++;
		else if (!((s[i] >= '0' && s[i] <= '9') || s[i] == 'a' || s[i] == 'b' || s[i] == 'r' ||
			   s[i] == 'c' || s[i] == '+'))
			return false;
	}
	return i < max && i >= 3 && dots >= 1 && dots <= 2;
}

/* <= 3.10: Py_GetVersion() formats "%.80s (%.80s) %.80s" with PY_VERSION as
 * its first argument; find that string among its RIP-relative operands. */
static bool version_from_getversion(const struct elf_file *ef, struct py_interp *pi)
{
	struct elf_sym sym;
	const uint8_t *code;
	struct x86_insn in;

	if (elf_file_dynsym(ef, "Py_GetVersion", &sym) != 0)
		return false;
	size_t size = sym.size && sym.size < 256 ? sym.size : 256;
	if (!(code = elf_file_bytes(ef, sym.value, size)))
		return false;
	for (size_t off = 0; off < size;) {
		int n = x86_decode(code + off, size - off, sym.value + off, &in);

		if (n < 0)
			break;
		off += (size_t)n;
		if (in.base == X86_RIP && in.opcode == 0x8d && in.map == X86_MAP_1) {
			uint8_t buf[24];

			if (elf_file_read(ef, in.mem_target, buf, sizeof(buf)) == 0 &&
			    looks_like_version(buf, sizeof(buf))) {
				if (!parse_version((const char *)buf, pi))
					continue;
				snprintf(pi->version, sizeof(pi->version), "%s", (const char *)buf);
				pi->version_source = PY_VERSION_SRC_GETVERSION;
				return true;
			}
		}
		if (in.branch == X86_BR_RET)
			break;
	}
	return false;
}

/* libpython3.8.so.1.0, libpython3.7m.so, python3.11: major.minor only. */
static bool version_from_name(const char *name, struct py_interp *pi)
{
	const char *base = strrchr(name, '/');
	unsigned major, minor;

	base = base ? base + 1 : name;
	if (sscanf(base, "libpython%u.%u", &major, &minor) != 2 &&
	    sscanf(base, "python%u.%u", &major, &minor) != 2)
		return false;
	pi->major = major;
	pi->minor = minor;
	pi->micro = 0;
	pi->hexversion = major << 24 | minor << 16;
	snprintf(pi->version, sizeof(pi->version), "%u.%u", major, minor);
	pi->version_source = PY_VERSION_SRC_SONAME;
	return true;
}

static int detect_version(const struct elf_file *ef, struct py_interp *pi, struct tm_error *err)
{
	struct elf_sym sym;

	/* "const unsigned long Py_Version": 8 bytes on x86-64 (4 in a few builds). */
	if (elf_file_symbol(ef, "Py_Version", &sym) == 0 && (sym.size == 4 || sym.size == 8)) {
		uint32_t hex;

		if (elf_file_read(ef, sym.value, &hex, sizeof(hex)) == 0 && (hex >> 24) == 3) {
			version_from_hex(pi, hex);
			pi->version_source = PY_VERSION_SRC_PY_VERSION;
			return 0;
		}
	}
	if (version_from_getversion(ef, pi))
		return 0;
	if (ef->soname && version_from_name(ef->soname, pi))
		return 0;
	if (version_from_name(pi->target_path, pi))
		return 0;
	tm_error_set(err, "%s: cannot tell which CPython version this is", pi->host_path);
	return -ENOEXEC;
}

/* ---------------------------------------------------------------- module checks */

/* Does this file hold an interpreter (not merely use one, as extension
 * modules do)? Py_GetVersion is defined by every CPython 2.x/3.x. */
static bool defines_interpreter(const struct elf_file *ef)
{
	struct elf_sym sym;

	return elf_file_dynsym(ef, "Py_GetVersion", &sym) == 0 && sym.type == 2 /* STT_FUNC */;
}

static int check_build(const struct elf_file *ef, struct py_interp *pi, struct tm_error *err)
{
	struct elf_sym sym;

	if (pi->major != 3 || pi->minor < PY_MIN_MINOR || pi->minor > PY_MAX_MINOR) {
		tm_error_set(err, "CPython %s (%s) is not supported: supported versions are %s",
			     pi->version, pi->host_path, PY_SUPPORTED_VERSIONS);
		return -ENOTSUP;
	}
	/* Free-threaded builds name their library libpython3.13t (3.13 also says
	 * so in _Py_DebugOffsets, checked later). */
	char ft[32];
	snprintf(ft, sizeof(ft), "python%u.%ut", pi->major, pi->minor);
	if ((ef->soname && strstr(ef->soname, ft)) || strstr(pi->target_path, ft)) {
		tm_error_set(err, "%s is a free-threaded CPython build: not supported", pi->host_path);
		return -ENOTSUP;
	}
	/* Py_REF_DEBUG (implied by Py_DEBUG) exports these; release builds do not. */
	if (elf_file_dynsym(ef, "_Py_NegativeRefcount", &sym) == 0 ||
	    elf_file_dynsym(ef, "_Py_RefTotal", &sym) == 0) {
		tm_error_set(err, "%s is a debug build of CPython (Py_DEBUG): its object layout "
			     "differs; only release builds are supported", pi->host_path);
		return -ENOTSUP;
	}
	return 0;
}

/* ---------------------------------------------------------------- symbols and tables */

static int find_runtime(const struct elf_file *ef, struct py_interp *pi, struct tm_error *err)
{
	struct elf_sym sym;
	struct elf_section sec;

	if (elf_file_symbol(ef, "_PyRuntime", &sym) == 0 && sym.type == 1 /* STT_OBJECT */) {
		pi->runtime_vaddr = sym.value;
		snprintf(pi->runtime_how, sizeof(pi->runtime_how), "symbol _PyRuntime");
		return 0;
	}
	/* 3.10+ put _PyRuntime alone in its own section (for stripped binaries). */
	if (elf_file_section(ef, ".PyRuntime", &sec) == 0 && sec.addr) {
		pi->runtime_vaddr = sec.addr;
		snprintf(pi->runtime_how, sizeof(pi->runtime_how), "section .PyRuntime");
		return 0;
	}
	tm_error_set(err, "%s: cannot find _PyRuntime (no symbol, no .PyRuntime section)", pi->host_path);
	return -ENOENT;
}

static void find_funcs(const struct elf_file *ef, struct py_interp *pi)
{
	for (int i = 0; i < PY_FN_COUNT; i++) {
		struct py_func *f = &pi->funcs[i];
		struct elf_sym sym;
		const uint8_t *code;

		memset(f, 0, sizeof(*f));
		if (elf_file_symbol(ef, func_names[i], &sym) != 0 || sym.type != 2 /* STT_FUNC */)
			continue;
		if (elf_file_vaddr_to_offset(ef, sym.value, &f->file_offset) != 0)
			continue;
		struct elf_sym dyn;
		f->found = true;
		f->exported = elf_file_dynsym(ef, func_names[i], &dyn) == 0;
		f->vaddr = sym.value;
		f->size = sym.size;
		if (sym.size && (code = elf_file_bytes(ef, sym.value, sym.size)) != NULL) {
			struct x86_insn in;

			f->probe_offset = x86_probe_offset(code, sym.size, sym.value, func_args[i],
							   &f->probe_emulated);
			f->entry_emulated = x86_decode(code, sym.size, sym.value, &in) > 0 &&
					    x86_uprobe_emulated(&in);
		}
	}
}

static void find_types(const struct elf_file *ef, struct py_interp *pi)
{
	struct elf_sym sym;

	if (elf_file_symbol(ef, "PyCode_Type", &sym) == 0)
		pi->code_type_vaddr = sym.value;
	if (elf_file_symbol(ef, "PyUnicode_Type", &sym) == 0)
		pi->unicode_type_vaddr = sym.value;
	if (elf_file_symbol(ef, "PyBytes_Type", &sym) == 0)
		pi->bytes_type_vaddr = sym.value;
	/* the code of 3.13's __init__ shim frames, the one kind of incomplete
	 * frame that is not on top of the stack (see pywalk.bpf.h) */
	if (elf_file_symbol(ef, "_Py_InitCleanup", &sym) == 0 && sym.type == 1 /* STT_OBJECT */)
		pi->init_cleanup_vaddr = sym.value;
}

/* The table used by a public allocator function of a stripped binary: its
 * first RIP-relative loads read table.ctx (+0) and table.malloc (+8), so the
 * lowest target is the table and it must be 8 below another one. */
static bool table_from_user(const struct elf_file *ef, const struct py_func *f, uint64_t *table)
{
	const uint8_t *code;
	uint64_t lo = UINT64_MAX, targets[8];
	size_t nt = 0;
	struct x86_insn in;

	if (!f->found || !f->size || !(code = elf_file_bytes(ef, f->vaddr, f->size)))
		return false;
	for (size_t off = 0, i = 0; off < f->size && i < 12 && nt < 8; i++) {
		int n = x86_decode(code + off, f->size - off, f->vaddr + off, &in);

		if (n < 0)
			break;
		off += (size_t)n;
		if (in.base == X86_RIP && in.map == X86_MAP_1 && (in.opcode == 0x8b || in.opcode == 0xff)) {
			targets[nt++] = in.mem_target;
			if (in.mem_target < lo)
				lo = in.mem_target;
		}
		if (in.branch == X86_BR_RET || in.branch == X86_BR_JMP || in.branch == X86_BR_JMP_IND)
			break;
	}
	for (size_t i = 0; i < nt; i++) {
		if (targets[i] == lo + 8) {
			*table = lo;
			return true;
		}
	}
	return false;
}

static int find_tables(const struct elf_file *ef, struct py_interp *pi, struct tm_error *err)
{
	for (int d = 0; d < 3; d++) {
		struct py_alloc_table *t = &pi->tables[d];
		struct elf_sym sym;
		uint32_t rt_off = d == 0 ? pi->uoff.rt_alloc_raw : d == 1 ? pi->uoff.rt_alloc_mem
									 : pi->uoff.rt_alloc_obj;

		if (rt_off) {
			t->vaddr = pi->runtime_vaddr + rt_off;
			snprintf(t->how, sizeof(t->how), "_PyRuntime.allocators.standard.%s (+%u)",
				 domain_names[d], rt_off);
		} else if (elf_file_symbol(ef, table_symbols[d], &sym) == 0 && sym.type == 1 && sym.size == 40) {
			t->vaddr = sym.value;
			snprintf(t->how, sizeof(t->how), "symbol %s", table_symbols[d]);
		} else if (table_from_user(ef, &pi->funcs[table_users[d]], &t->vaddr)) {
			snprintf(t->how, sizeof(t->how), "RIP-relative operand of %s",
				 func_names[table_users[d]]);
		} else {
			tm_error_set(err, "%s: cannot locate the %s allocator table (no %s symbol, and %s "
				     "does not load it the expected way)", pi->host_path, domain_names[d],
				     table_symbols[d], func_names[table_users[d]]);
			return -ENOENT;
		}
		uint64_t *slots = &t->initial.ctx;
		for (int s = 0; s < 5; s++) {
			if (elf_file_pointer_at(ef, t->vaddr + 8u * s, &slots[s]) != 0) {
				tm_error_set(err, "%s: cannot read the %s allocator table at %#" PRIx64,
					     pi->host_path, domain_names[d], t->vaddr);
				return -EINVAL;
			}
		}
		t->found = true;
	}
	return 0;
}

/* ---------------------------------------------------------------- inlining analysis */

/* Functions that legitimately touch the allocator tables or call the default
 * allocators: the public API, allocator set-up and introspection, and the
 * default allocators themselves. References anywhere else are inlined copies
 * of the API (LTO), which no probe on the public functions would see. */
static const char *const expected_users[] = {
	"PyMem_RawMalloc", "PyMem_RawCalloc", "PyMem_RawRealloc", "PyMem_RawFree",
	"PyMem_Malloc", "PyMem_Calloc", "PyMem_Realloc", "PyMem_Free",
	"PyObject_Malloc", "PyObject_Calloc", "PyObject_Realloc", "PyObject_Free",
	"PyMem_SetAllocator", "PyMem_GetAllocator", "PyMem_SetupDebugHooks",
	"_PyMem_SetupAllocators", "_PyMem_SetDefaultAllocator", "_PyMem_GetAllocatorName",
	"_PyMem_GetCurrentAllocatorName", "_PyMem_DebugEnabled", "_PyMem_PymallocEnabled",
	"_PyMem_SetupDebugHooksDomain", "_PyObject_DebugMallocStats",
	"set_allocator_unlocked", "get_allocator_unlocked", "set_up_allocators_unlocked",
	"set_up_debug_hooks_unlocked", "set_up_debug_hooks_domain_unlocked",
	"set_default_allocator_unlocked", "get_current_allocator_name_unlocked",
	"_PyMem_init_obmalloc", "_PyInterpreterState_GetAllocatedBlocks",
	"_PyObject_Malloc", "_PyObject_Calloc", "_PyObject_Realloc", "_PyObject_Free",
	"_PyMem_RawMalloc", "_PyMem_RawCalloc", "_PyMem_RawRealloc", "_PyMem_RawFree",
	NULL,
};

struct func_range {
	uint64_t lo, hi;
	bool expected;
};

struct range_ctx {
	struct func_range *v;
	size_t n, cap;
};

static bool is_expected_user(const char *name)
{
	size_t len = strcspn(name, ".");        /* "foo.cold", "foo.part.0" belong to foo */

	for (int i = 0; expected_users[i]; i++)
		if (strlen(expected_users[i]) == len && strncmp(expected_users[i], name, len) == 0)
			return true;
	return false;
}

static int add_range(struct range_ctx *r, const struct elf_sym *sym)
{
	if (r->n == r->cap) {
		size_t ncap = r->cap ? r->cap * 2 : 64;
		struct func_range *nv = realloc(r->v, ncap * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		r->v = nv;
		r->cap = ncap;
	}
	r->v[r->n++] = (struct func_range){ sym->value, sym->value + sym->size, true };
	return 0;
}

static int range_cb(void *ctx, const char *name, const struct elf_sym *sym)
{
	if (sym->type != 2 /* STT_FUNC */ || !is_expected_user(name))
		return 0;
	return add_range(ctx, sym);
}

static bool in_expected(const struct range_ctx *r, uint64_t addr)
{
	for (size_t i = 0; i < r->n; i++)
		if (addr >= r->v[i].lo && addr < r->v[i].hi)
			return true;
	return false;
}

struct got_ctx {
	uint64_t runtime;
	uint64_t slots[4];
	size_t n;
};

/* GOT entries that hold &_PyRuntime (shared libraries reach it that way). */
static int got_cb(void *ctx, uint64_t offset, uint32_t type, uint64_t sym_value, bool defined,
		  int64_t addend)
{
	struct got_ctx *g = ctx;

	if (g->n < 4 && ((type == R_X86_64_GLOB_DAT && defined && sym_value + (uint64_t)addend == g->runtime) ||
			 (type == R_X86_64_RELATIVE && (uint64_t)addend == g->runtime)))
		g->slots[g->n++] = offset;
	return 0;
}

static void analyze_inlining(const struct elf_file *ef, struct py_interp *pi)
{
	struct py_inline_report *rep = &pi->inl;
	struct range_ctx ranges = { 0 };
	struct got_ctx got = { .runtime = pi->runtime_vaddr };
	struct elf_section text;
	const uint8_t *code;
	uint64_t targets[8];
	size_t ntargets = 0;

	memset(rep, 0, sizeof(*rep));
	if (elf_file_section(ef, ".text", &text) != 0 || text.type == 8 /* SHT_NOBITS */ ||
	    !(code = elf_file_bytes(ef, text.addr, text.size))) {
		snprintf(rep->verdict, sizeof(rep->verdict), "not analyzed: no .text section");
		return;
	}
	/* The default allocators: what the static tables point at. */
	for (int d = 0; d < 3; d++) {
		const uint64_t *s = &pi->tables[d].initial.malloc;

		for (int k = 0; k < 4; k++) {
			bool dup = false;

			for (size_t j = 0; j < ntargets; j++)
				dup |= targets[j] == s[k];
			if (!dup && s[k] && ntargets < 8)
				targets[ntargets++] = s[k];
		}
	}
	if (elf_file_foreach_symbol(ef, range_cb, &ranges) < 0) {
		free(ranges.v);
		snprintf(rep->verdict, sizeof(rep->verdict), "not analyzed: out of memory");
		return;
	}
	elf_file_foreach_rela(ef, got_cb, &got);
	/* The default allocators' own bodies call each other (realloc calls
	 * malloc and free): they are expected users too. A stripped binary has
	 * no symbol for them, so their extent is taken from the unwind table:
	 * up to the next function start. */
	uint64_t *starts;
	size_t nstarts;
	if (elf_file_function_starts(ef, &starts, &nstarts) == 0) {
		for (size_t t = 0; t < ntargets; t++) {
			size_t lo = 0, hi = nstarts;

			while (lo < hi) {       /* first start > target */
				size_t mid = lo + (hi - lo) / 2;

				if (starts[mid] <= targets[t])
					lo = mid + 1;
				else
					hi = mid;
			}
			if (lo < nstarts && lo > 0 && starts[lo - 1] == targets[t]) {
				struct elf_sym fake = { .value = targets[t], .size = starts[lo] - targets[t], .type = 2 };

				if (add_range(&ranges, &fake) < 0)
					break;
			}
		}
		free(starts);
	}

	/* Registers known to hold an address (from lea sym(%rip) or a GOT load),
	 * forgotten when written or at any control transfer. */
	uint64_t known[16];
	uint32_t known_mask = 0;
	struct x86_insn in;

	for (uint64_t off = 0; off < text.size;) {
		int n = x86_decode(code + off, text.size - off, text.addr + off, &in);

		if (n < 0) {
			rep->undecoded++;
			off++;
			known_mask = 0;
			continue;
		}
		off += (uint64_t)n;
		rep->insns++;
		bool inside = in_expected(&ranges, in.addr);

		/* Memory operand address, when we can tell it. */
		uint64_t ea = 0;
		bool have_ea = false;
		if (in.mem && in.seg == 0) {
			if (in.base == X86_RIP || (in.base == X86_NOREG && in.index == X86_NOREG)) {
				ea = in.mem_target;
				have_ea = true;
			} else if (in.base >= 0 && in.base < 16 && in.index == X86_NOREG &&
				   (known_mask & X86_REGBIT(in.base))) {
				ea = known[in.base] + (uint64_t)in.disp;
				have_ea = true;
			}
		}
		if (have_ea && !(in.opcode == 0x8d && in.map == X86_MAP_1 && in.base == X86_RIP)) {
			for (int d = 0; d < 3; d++) {
				if (ea >= pi->tables[d].vaddr && ea < pi->tables[d].vaddr + 40) {
					if (inside)
						rep->slot_refs_inside++;
					else
						rep->slot_refs[d]++;
				}
			}
		}
		for (size_t t = 0; t < ntargets; t++) {
			uint64_t a = targets[t];
			bool imm = in.imm_size >= 4 && in.branch == X86_BR_NONE && (uint64_t)in.imm == a;
			bool lea = in.opcode == 0x8d && in.map == X86_MAP_1 && in.base == X86_RIP &&
				   in.mem_target == a;
			bool call = (in.branch == X86_BR_CALL || in.branch == X86_BR_JMP ||
				     in.branch == X86_BR_JCC) && in.target == a;

			if (!(imm || lea || call))
				continue;
			if (inside)
				rep->target_refs_inside++;
			else if (imm)
				rep->target_imm++;
			else if (lea)
				rep->target_lea++;
			else
				rep->target_calls++;
		}
		/* Track registers holding &_PyRuntime or a table address. */
		uint32_t w = 0;
		bool known_w = x86_insn_writes(&in, &w);
		if (in.branch != X86_BR_NONE || !known_w) {
			known_mask = 0;
		} else {
			known_mask &= ~w;
		}
		if (in.map == X86_MAP_1 && in.base == X86_RIP && in.rex_w && in.reg >= 0 && in.reg < 16) {
			bool is_got = false;

			for (size_t g = 0; g < got.n; g++)
				is_got |= in.opcode == 0x8b && in.mem_target == got.slots[g];
			if (is_got) {
				known[in.reg] = pi->runtime_vaddr;
				known_mask |= X86_REGBIT(in.reg);
			} else if (in.opcode == 0x8d) {
				known[in.reg] = in.mem_target;
				known_mask |= X86_REGBIT(in.reg);
			}
		}
	}
	free(ranges.v);
	rep->analyzed = true;
	uint64_t slots = rep->slot_refs[0] + rep->slot_refs[1] + rep->slot_refs[2];
	uint64_t tgts = rep->target_imm + rep->target_lea + rep->target_calls;
	rep->complete = slots == 0 && tgts == 0;
	if (rep->complete)
		snprintf(rep->verdict, sizeof(rep->verdict),
			 "complete: the allocator tables and default allocators are used only by the "
			 "public API and allocator set-up (%" PRIu64 " + %" PRIu64 " references there)",
			 rep->slot_refs_inside, rep->target_refs_inside);
	else
		snprintf(rep->verdict, sizeof(rep->verdict),
			 "inlined: %" PRIu64 " table-slot loads (raw %" PRIu64 ", mem %" PRIu64 ", obj %" PRIu64
			 ") and %" PRIu64 " default-allocator guards/calls (imm %" PRIu64 ", lea %" PRIu64
			 ", call %" PRIu64 ") outside the API",
			 slots, rep->slot_refs[0], rep->slot_refs[1], rep->slot_refs[2], tgts,
			 rep->target_imm, rep->target_lea, rep->target_calls);
}

/* ---------------------------------------------------------------- common set-up */

/* full: also the allocator tables and the inlining analysis (the exact
 * tier's capture plan; most of the cost) */
static int finish_module(struct elf_file *ef, struct py_interp *pi, const uint8_t *debug_raw,
			 const char *debug_from, bool full, struct tm_error *err)
{
	const struct py_version_offsets *tab;
	int ret;

	pi->shared_lib = ef->type == 3 /* ET_DYN */ && (ef->soname || strstr(pi->host_path, ".so"));
	pi->exec_type = elf_file_is_exec(ef);
	ret = detect_version(ef, pi, err);
	if (ret)
		return ret;
	ret = check_build(ef, pi, err);
	if (ret)
		return ret;
	tab = pyoffsets_for_minor(pi->minor);
	pi->off = tab->bpf;
	pi->uoff = tab->user;
	pi->off.py_version = pi->hexversion >> 8;
	ret = find_runtime(ef, pi, err);
	if (ret)
		return ret;
	if (pi->uoff.rt_debug_offsets) {
		uint8_t raw[PY_DEBUG_OFFSETS_SIZE];

		if (!debug_raw) {
			if (elf_file_read(ef, pi->runtime_vaddr, raw, sizeof(raw)) != 0) {
				tm_error_set(err, "%s: cannot read _PyRuntime from the file", pi->host_path);
				return -EINVAL;
			}
			debug_raw = raw;
			debug_from = "file";
		}
		ret = pyoffsets_apply_debug_offsets(debug_raw, PY_DEBUG_OFFSETS_SIZE, pi->hexversion,
						    &pi->off, &pi->uoff, err);
		if (ret)
			return ret;
		pi->debug_offsets_used = true;
		snprintf(pi->debug_offsets_from, sizeof(pi->debug_offsets_from), "%s", debug_from);
	}
	find_types(ef, pi);
	if (!pi->code_type_vaddr || !pi->unicode_type_vaddr || !pi->bytes_type_vaddr) {
		tm_error_set(err, "%s does not export PyCode_Type/PyUnicode_Type/PyBytes_Type", pi->host_path);
		return -ENOENT;
	}
	find_funcs(ef, pi);
	for (int i = PY_FN_RAW_MALLOC; i <= PY_FN_OBJ_FREE; i++) {
		if (!pi->funcs[i].found) {
			tm_error_set(err, "%s does not define %s", pi->host_path, func_names[i]);
			return -ENOENT;
		}
	}
	if (full) {
		ret = find_tables(ef, pi, err);
		if (ret)
			return ret;
		analyze_inlining(ef, pi);
	}
	pi->off.tsd_first_block = pi->tsd.first_block;
	pi->off.tsd_second_level = pi->tsd.second_level;
	return 0;
}

/* ---------------------------------------------------------------- live process */

static int open_pid(pid_t pid, struct py_interp *pi, bool full, struct tm_error *err)
{
	struct procmaps maps;
	struct elf_file ef;
	bool found = false;
	int ret;

	memset(pi, 0, sizeof(*pi));
	ret = procmaps_read(pid, &maps, err);
	if (ret)
		return ret;
	pi->pid = pid;
	for (size_t i = 0; i < maps.n && !found; i++) {
		const struct procmaps_entry *e = &maps.v[i];
		char host[PATH_MAX];
		struct tm_error ignored;

		if (e->path[0] != '/' || !(e->perms & PROCMAPS_X))
			continue;
		/* One look per file: skip files already seen in an earlier mapping. */
		bool seen = false;
		for (size_t j = 0; j < i && !seen; j++)
			seen = (maps.v[j].perms & PROCMAPS_X) && strcmp(maps.v[j].path, e->path) == 0;
		if (seen || procmaps_host_path(pid, e->path, host, sizeof(host)) != 0)
			continue;
		if (elf_file_open(&ef, host, &ignored) != 0)
			continue;
		if (defines_interpreter(&ef)) {
			ret = procmaps_check_file(e, host, err);
			if (ret) {
				elf_file_close(&ef);
				goto out;
			}
			snprintf(pi->host_path, sizeof(pi->host_path), "%s", host);
			snprintf(pi->target_path, sizeof(pi->target_path), "%s", e->path);
			found = true;
			break;
		}
		elf_file_close(&ef);
	}
	if (!found) {
		char comm[64] = "?";
		char path[64];
		FILE *f;

		snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
		if ((f = fopen(path, "re")) != NULL) {
			if (fgets(comm, sizeof(comm), f))
				comm[strcspn(comm, "\n")] = '\0';
			fclose(f);
		}
		tm_error_set(err, "process %d (%s) is not running CPython: no mapped file defines "
			     "Py_GetVersion", (int)pid, comm);
		ret = -ENOENT;
		goto out;
	}
	ret = procmaps_load_bias(&maps, pi->target_path, ef.loads, ef.nloads, &pi->bias, err);
	if (ret)
		goto close;
	pi->bias_known = true;
	/* Version first (an unsupported version must say so, not fail later). */
	ret = detect_version(&ef, pi, err);
	if (ret)
		goto close;
	ret = check_build(&ef, pi, err);
	if (ret)
		goto close;
	ret = glibc_tsd_for_pid(pid, &maps, &pi->tsd, err);
	if (ret)
		goto close;
	/* 3.13: the live _Py_DebugOffsets is what the running interpreter uses. */
	uint8_t raw[PY_DEBUG_OFFSETS_SIZE];
	const uint8_t *debug_raw = NULL;
	const struct py_version_offsets *tab = pyoffsets_for_minor(pi->minor);
	if (tab->user.rt_debug_offsets) {
		struct remote mem;

		ret = find_runtime(&ef, pi, err);
		if (ret)
			goto close;
		remote_init(&mem, pid);
		ret = remote_read(&mem, py_interp_addr(pi, pi->runtime_vaddr), raw, sizeof(raw));
		remote_close(&mem);
		if (ret) {
			tm_error_set(err, "process %d: cannot read _PyRuntime at %#" PRIx64 ": %s", (int)pid,
				     py_interp_addr(pi, pi->runtime_vaddr), strerror(-ret));
			goto close;
		}
		debug_raw = raw;
	}
	ret = finish_module(&ef, pi, debug_raw, "live process", full, err);
close:
	elf_file_close(&ef);
out:
	procmaps_free(&maps);
	return ret;
}

int py_interp_open_pid(pid_t pid, struct py_interp *pi, struct tm_error *err)
{
	return open_pid(pid, pi, true, err);
}

int py_interp_open_pid_walker(pid_t pid, struct py_interp *pi, struct tm_error *err)
{
	return open_pid(pid, pi, false, err);
}

/* ---------------------------------------------------------------- binary before start */

int py_interp_open_binary(const char *path, struct py_interp *pi, struct tm_error *err)
{
	struct elf_file exe, lib, *mod = &exe;
	char real[PATH_MAX], origin[PATH_MAX], found[PATH_MAX], libc[PATH_MAX];
	const char *ldpath = getenv("LD_LIBRARY_PATH");
	bool have_lib = false;
	int ret;

	memset(pi, 0, sizeof(*pi));
	if (!realpath(path, real)) {
		ret = -errno;
		tm_error_set(err, "cannot open %s: %s", path, strerror(errno));
		return ret;
	}
	ret = elf_file_open(&exe, real, err);
	if (ret)
		return ret;
	snprintf(origin, sizeof(origin), "%s", real);
	dirname(origin);
	if (!defines_interpreter(&exe)) {
		for (size_t i = 0; i < exe.nneeded; i++) {
			if (strncmp(exe.needed[i], "libpython", 9) != 0)
				continue;
			ret = elf_resolve_library(&exe, origin, exe.needed[i], "", ldpath, found,
						  sizeof(found), err);
			if (ret)
				goto close_exe;
			ret = elf_file_open(&lib, found, err);
			if (ret)
				goto close_exe;
			have_lib = true;
			break;
		}
		if (!have_lib || !defines_interpreter(&lib)) {
			tm_error_set(err, "%s is not a CPython interpreter: it neither defines Py_GetVersion "
				     "nor loads a libpython that does", path);
			ret = -ENOENT;
			goto close;
		}
		mod = &lib;
		snprintf(pi->host_path, sizeof(pi->host_path), "%s", found);
	} else {
		snprintf(pi->host_path, sizeof(pi->host_path), "%s", real);
	}
	snprintf(pi->target_path, sizeof(pi->target_path), "%s", pi->host_path);
	/* Version before libc, so that an unsupported version says so. */
	ret = detect_version(mod, pi, err);
	if (!ret)
		ret = check_build(mod, pi, err);
	if (ret)
		goto close;
	ret = elf_resolve_library(&exe, origin, "libc.so.6", "", ldpath, libc, sizeof(libc), err);
	if (!ret)
		ret = glibc_tsd_from_file(libc, &pi->tsd, err);
	if (ret)
		goto close;
	ret = finish_module(mod, pi, NULL, "file", true, err);
close:
	if (have_lib)
		elf_file_close(&lib);
close_exe:
	elf_file_close(&exe);
	return ret;
}

/* ---------------------------------------------------------------- live reads */

int py_interp_read_allocators(const struct py_interp *pi, struct remote *mem,
			      struct py_allocator out[3])
{
	if (!pi->bias_known)
		return -EINVAL;
	for (int d = 0; d < 3; d++) {
		int ret = remote_read(mem, py_interp_addr(pi, pi->tables[d].vaddr), &out[d], sizeof(out[d]));

		if (ret)
			return ret;
	}
	return 0;
}

int py_interp_read_tss_key(const struct py_interp *pi, struct remote *mem, uint32_t *key)
{
	int32_t initialized;
	uint64_t rt = py_interp_addr(pi, pi->runtime_vaddr);
	int ret;

	if (!pi->bias_known)
		return -EINVAL;
	ret = remote_read_s32(mem, rt + pi->off.rt_tss_initialized, &initialized);
	if (ret)
		return ret;
	if (!initialized)
		return -ENOENT;
	return remote_read_u32(mem, rt + pi->off.rt_tss_key, key);
}

void py_interp_fill_proc(const struct py_interp *pi, uint32_t tss_key, bool tss_key_known,
			 struct py_proc *out)
{
	memset(out, 0, sizeof(*out));
	out->off = pi->off;
	out->runtime_vaddr = pi->runtime_vaddr;
	out->bias = pi->bias;
	out->bias_known = pi->bias_known;
	out->tss_key = tss_key;
	out->tss_key_known = tss_key_known;
}
