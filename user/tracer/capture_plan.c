// SPDX-License-Identifier: MIT
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "tracer/capture_plan.h"
#include "tracer/elfinfo.h"
#include "tracer/procmaps.h"
#include "tracer/remote.h"
#include "tracer/x86dec.h"

static const enum exact_fn slot_fn[4] = {
	EXACT_FN_MALLOC, EXACT_FN_CALLOC, EXACT_FN_REALLOC, EXACT_FN_FREE,
};
static const char *const domain_name[3] = { "raw", "mem", "obj" };

/* A function of some module, as the plan needs it. */
struct code_site {
	const char *host_path;
	const struct elf_file *ef;
	bool in_interp;                 /* the module holding _PyRuntime (cookie vaddr usable) */
	uint64_t vaddr;                 /* link-time start of the function */
};

struct symbol_query {
	uint64_t vaddr;
	char name[96];
	uint64_t size;
	bool found;
};

static int find_symbol_at(void *ctx, const char *name, const struct elf_sym *sym)
{
	struct symbol_query *q = ctx;

	if (sym->value != q->vaddr || sym->type != 2 /* STT_FUNC */)
		return 0;
	snprintf(q->name, sizeof(q->name), "%s", name);
	q->size = sym->size;
	q->found = true;
	return 1;
}

static const char *store_binary(struct capture_plan *plan, const char *path)
{
	for (size_t i = 0; i < plan->nbinaries; i++)
		if (!strcmp(plan->binaries[i], path))
			return plan->binaries[i];
	if (plan->nbinaries == sizeof(plan->binaries) / sizeof(plan->binaries[0]))
		return NULL;
	snprintf(plan->binaries[plan->nbinaries], PATH_MAX, "%s", path);
	return plan->binaries[plan->nbinaries++];
}

static bool have_probe(const struct capture_plan *plan, const char *binary, uint64_t off,
		       enum exact_fn fn)
{
	for (size_t i = 0; i < plan->nprobes; i++)
		if (plan->probes[i].file_offset == off && plan->probes[i].fn == fn &&
		    !strcmp(plan->probes[i].binary, binary))
			return true;
	return false;
}

/* A stripped binary's function has no symbol to give its size: its extent,
 * up to the next function with unwind information (.eh_frame_hdr), stands
 * in. Only for small functions (the default allocators are a few
 * instructions ending in a jump to libc): a big one may have a .cold part
 * elsewhere that jumps back into its first instructions. 0 if unknown. */
#define UNWIND_EXTENT_MAX 256

static uint64_t unwind_extent(const struct elf_file *ef, uint64_t vaddr)
{
	uint64_t *starts = NULL, size = 0;
	size_t n = 0, lo = 0, hi;

	if (elf_file_function_starts(ef, &starts, &n) || !n)
		goto out;
	hi = n;
	while (lo < hi) {                       /* first start > vaddr */
		size_t mid = lo + (hi - lo) / 2;

		if (starts[mid] <= vaddr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo > 0 && starts[lo - 1] == vaddr && lo < n && starts[lo] - vaddr <= UNWIND_EXTENT_MAX)
		size = starts[lo] - vaddr;
out:
	free(starts);
	return size;
}

/* Adds a probe at the best place of a function that takes an allocator ctx
 * first (a table target): the first instruction the kernel emulates before
 * rsp or the argument registers change, when the symbol gives the function's
 * extent; its entry otherwise. */
static int add_target_probe(struct capture_plan *plan, const struct code_site *site,
			    enum exact_fn fn, const char *what, struct tm_error *err)
{
	struct symbol_query q = { .vaddr = site->vaddr };
	struct exact_probe *p;
	uint32_t off = 0;
	uint64_t file_off;
	bool emulated = false;
	const char *binary;

	elf_file_foreach_symbol(site->ef, find_symbol_at, &q);
	if (!q.found)
		q.size = unwind_extent(site->ef, site->vaddr);
	if (q.size) {
		const uint8_t *code = elf_file_bytes(site->ef, site->vaddr, q.size);

		if (code)
			off = x86_probe_offset(code, q.size, site->vaddr,
					       X86_REGBIT(X86_RSI) | X86_REGBIT(X86_RDX), &emulated);
	} else {
		const uint8_t *code = elf_file_bytes(site->ef, site->vaddr, X86_MAX_INSN);
		struct x86_insn insn;

		emulated = code && x86_decode(code, X86_MAX_INSN, site->vaddr, &insn) > 0 &&
			   x86_uprobe_emulated(&insn);
	}
	if (elf_file_vaddr_to_offset(site->ef, site->vaddr + off, &file_off)) {
		tm_error_set(err, "%s: the %s function at 0x%llx is not in the file", site->host_path,
			     what, (unsigned long long)site->vaddr);
		return -1;
	}
	binary = store_binary(plan, site->host_path);
	if (!binary || plan->nprobes == CAPTURE_MAX_PROBES) {
		tm_error_set(err, "too many probe points");
		return -1;
	}
	if (have_probe(plan, binary, file_off, fn))
		return 0;                       /* mem and obj share their targets */
	p = &plan->probes[plan->nprobes];
	snprintf(plan->names[plan->nprobes], sizeof(plan->names[0]), "%s (%s)",
		 q.found ? q.name : "unnamed function", what);
	p->name = plan->names[plan->nprobes];
	p->binary = binary;
	p->file_offset = file_off;
	p->vaddr = site->in_interp ? site->vaddr + off : 0;
	p->fn = fn;
	p->ctx_arg = true;
	p->optional = false;
	if (!emulated)
		plan->single_stepped++;
	plan->nprobes++;
	return 0;
}

static uint64_t slot(const struct py_allocator *a, int k)
{
	switch (k) {
	case 0: return a->malloc;
	case 1: return a->calloc;
	case 2: return a->realloc;
	default: return a->free;
	}
}

/* The four functions an allocator table points at (addresses minus bias are
 * link-time addresses in the interpreter's file). */
static int add_table_probes(struct capture_plan *plan, const struct py_interp *pi,
			    const struct elf_file *ef, int domain, const struct py_allocator *a,
			    uint64_t bias, struct tm_error *err)
{
	static const char *const slot_name[4] = { "malloc", "calloc", "realloc", "free" };

	for (int k = 0; k < 4; k++) {
		struct code_site site = { pi->host_path, ef, true, slot(a, k) - bias };
		char what[48];

		snprintf(what, sizeof(what), "%s domain %s", domain_name[domain], slot_name[k]);
		if (add_target_probe(plan, &site, slot_fn[k], what, err))
			return -1;
	}
	return 0;
}

/* Adds a probe on one of the interpreter's known functions (public API,
 * PyTraceMalloc_*, Py_FinalizeEx, _Py_NewReference). */
static int add_func_probe(struct capture_plan *plan, const struct py_interp *pi,
			  enum py_func_id id, enum exact_fn fn, bool optional,
			  struct tm_error *err)
{
	const struct py_func *f = &pi->funcs[id];
	struct exact_probe *p;
	const char *binary;

	if (!f->found) {
		if (optional)
			return 0;
		tm_error_set(err, "%s: %s not found", pi->host_path, py_func_name(id));
		return -1;
	}
	binary = store_binary(plan, pi->host_path);
	if (!binary || plan->nprobes == CAPTURE_MAX_PROBES) {
		tm_error_set(err, "too many probe points");
		return -1;
	}
	p = &plan->probes[plan->nprobes];
	snprintf(plan->names[plan->nprobes], sizeof(plan->names[0]), "%s", py_func_name(id));
	p->name = plan->names[plan->nprobes];
	p->binary = binary;
	p->file_offset = f->file_offset + f->probe_offset;
	p->vaddr = f->vaddr + f->probe_offset;
	p->fn = fn;
	p->ctx_arg = false;
	p->optional = optional;
	if (!f->probe_emulated)
		plan->single_stepped++;
	plan->nprobes++;
	return 0;
}

/* An optional probe at the entry of a function known only by its symbol.
 * Returns 1 if added, 0 if the symbol is not there, -1 if the plan is full. */
static int add_symbol_probe(struct capture_plan *plan, const struct py_interp *pi,
			    const char *name, enum exact_fn fn)
{
	struct exact_probe *p;
	struct elf_file ef;
	struct elf_sym sym;
	struct tm_error err;
	uint64_t off;
	int found;

	if (elf_file_open(&ef, pi->host_path, &err))
		return 0;
	found = !elf_file_symbol(&ef, name, &sym) && sym.type == 2 /* STT_FUNC */ &&
		!elf_file_vaddr_to_offset(&ef, sym.value, &off);
	elf_file_close(&ef);
	if (!found)
		return 0;
	if (plan->nprobes == CAPTURE_MAX_PROBES)
		return -1;
	p = &plan->probes[plan->nprobes];
	snprintf(plan->names[plan->nprobes], sizeof(plan->names[0]), "%s", name);
	p->name = plan->names[plan->nprobes];
	p->binary = store_binary(plan, pi->host_path);
	p->file_offset = off;
	/* the cookie teaches BPF the load bias from an entry probe's address;
	 * a return probe only sees where the function returns to */
	p->vaddr = fn == EXACT_FN_START ? 0 : sym.value;
	p->fn = fn;
	p->ctx_arg = false;
	p->optional = true;
	plan->single_stepped++;
	plan->nprobes++;
	return 1;
}

static int add_common_probes(struct capture_plan *plan, const struct py_interp *pi,
			     bool reattribute, struct tm_error *err)
{
	if (add_func_probe(plan, pi, PY_FN_TRACEMALLOC_TRACK, EXACT_FN_TRACK, false, err) ||
	    add_func_probe(plan, pi, PY_FN_TRACEMALLOC_UNTRACK, EXACT_FN_UNTRACK, false, err) ||
	    add_func_probe(plan, pi, PY_FN_FINALIZE_EX, EXACT_FN_FINALIZE, true, err))
		return -1;
	/* 3.13's Py_Exit() (sys.exit(), SystemExit) and Py_Finalize() call the
	 * internal _Py_Finalize() without passing through Py_FinalizeEx(); in
	 * 3.8-3.12 they call Py_FinalizeEx() and freezing twice is harmless */
	if (add_symbol_probe(plan, pi, "Py_Exit", EXACT_FN_FINALIZE) < 0 ||
	    add_symbol_probe(plan, pi, "Py_Finalize", EXACT_FN_FINALIZE) < 0) {
		tm_error_set(err, "too many probe points");
		return -1;
	}
	/* free-list reuse: _Py_NewReference is exported from 3.9 on; 3.8 inlines
	 * it and only calls out (_PyTraceMalloc_NewReference) while the target's
	 * own tracemalloc is tracing, which is then the one place to see reuse */
	if (reattribute && pi->funcs[PY_FN_NEW_REFERENCE].found)
		return add_func_probe(plan, pi, PY_FN_NEW_REFERENCE, EXACT_FN_NEWREF, true, err);
	if (reattribute)
		return add_symbol_probe(plan, pi, "_PyTraceMalloc_NewReference", EXACT_FN_NEWREF) < 0 ? -1 : 0;
	return 0;
}

/* PYTHONTRACEMALLOC starts tracing in init_interp_main() right after
 * _PySignal_Init() returns (3.8-3.13, checked with gdb); allocations of the
 * interpreter's start-up before that are not in its snapshots. Recording from
 * the same point makes `tmbpf run` and PYTHONTRACEMALLOC=N comparable. The
 * symbol is local (.symtab): stripped binaries record from the first
 * allocation instead. Returns 0 (gate or no gate) or -1 (full plan). */
static int add_start_gate(struct capture_plan *plan, const struct py_interp *pi)
{
	int r = add_symbol_probe(plan, pi, "_PySignal_Init", EXACT_FN_START);

	if (r == 1)
		plan->start_gate = true;
	return r < 0 ? -1 : 0;
}

static int add_public_api(struct capture_plan *plan, const struct py_interp *pi, int domain,
			  struct tm_error *err)
{
	static const enum py_func_id first[3] = { PY_FN_RAW_MALLOC, PY_FN_MEM_MALLOC, PY_FN_OBJ_MALLOC };

	for (int k = 0; k < 4; k++)
		if (add_func_probe(plan, pi, (enum py_func_id)(first[domain] + k), slot_fn[k], false, err))
			return -1;
	return 0;
}


/* The plan from the interpreter file alone: `run` (may_set_env: it chooses
 * the child's PYTHONMALLOC) and host-wide mode (one plan per file). */
static int plan_from_file(const struct py_interp *pi, const char *user_pythonmalloc,
			  bool reattribute, bool may_set_env, struct capture_plan *plan,
			  struct tm_error *err)
{
	struct elf_file ef;
	const char *pm = user_pythonmalloc && *user_pythonmalloc ? user_pythonmalloc : NULL;
	bool use_raw_targets = false, public_api = false;
	int ret = -1;

	memset(plan, 0, sizeof(*plan));
	if (!pi->inl.complete && !pm && may_set_env) {
		/* LTO build: only a table that no longer holds its default target is
		 * called through at every site; PYTHONMALLOC=malloc does that for
		 * the object and memory domains */
		pm = "malloc";
		plan->set_pythonmalloc = "malloc";
	}
	if (pm && !strcmp(pm, "malloc"))
		use_raw_targets = true;
	else if (pm && strcmp(pm, "pymalloc"))
		public_api = true;              /* debug hooks: not known before they are set up */
	if (elf_file_open(&ef, pi->host_path, err))
		return -1;
	for (int d = 0; d < 3; d++) {
		const struct py_alloc_table *tab = &pi->tables[use_raw_targets ? PY_DOMAIN_RAW : d];

		if (public_api || !tab->found) {
			if (add_public_api(plan, pi, d, err))
				goto out;
			continue;
		}
		if (add_table_probes(plan, pi, &ef, d, &tab->initial, 0, err))
			goto out;
	}
	if (add_common_probes(plan, pi, reattribute, err))
		goto out;
	if (may_set_env && add_start_gate(plan, pi))
		goto out;
	if (pi->inl.complete) {
		plan->coverage = TM_COVERAGE_COMPLETE;
		snprintf(plan->coverage_note, sizeof(plan->coverage_note),
			 "every call of the three allocator domains (%s)", pi->inl.verdict);
	} else if (use_raw_targets) {
		plan->coverage = TM_COVERAGE_PARTIAL;
		snprintf(plan->coverage_note, sizeof(plan->coverage_note),
			 "object and memory domains complete with PYTHONMALLOC=malloc; raw-domain calls that this LTO build inlined into a direct malloc() are not seen (%s)",
			 pi->inl.verdict);
	} else {
		plan->coverage = TM_COVERAGE_PARTIAL;
		snprintf(plan->coverage_note, sizeof(plan->coverage_note),
			 "%s%s on an LTO build: allocations inlined into callers are not seen (%s)",
			 pm ? "PYTHONMALLOC=" : "the default allocator", pm ? pm : "", pi->inl.verdict);
	}
	ret = 0;
out:
	elf_file_close(&ef);
	return ret;
}

int capture_plan_for_run(const struct py_interp *pi, const char *user_pythonmalloc,
			 bool reattribute, struct capture_plan *plan, struct tm_error *err)
{
	return plan_from_file(pi, user_pythonmalloc, reattribute, true, plan, err);
}

int capture_plan_for_file(const struct py_interp *pi, bool reattribute,
			  struct capture_plan *plan, struct tm_error *err)
{
	return plan_from_file(pi, NULL, reattribute, false, plan, err);
}

int capture_plan_for_pid(const struct py_interp *pi, bool reattribute,
			 struct capture_plan *plan, struct tm_error *err)
{
	struct py_allocator live[3];
	struct elf_file ef;
	struct remote mem;
	bool partial = false;
	char partial_domains[32] = "";
	int ret = -1;

	memset(plan, 0, sizeof(*plan));
	if (remote_init(&mem, pi->pid) < 0) {
		tm_error_set(err, "cannot read the memory of PID %d: %s", (int)pi->pid, strerror(errno));
		return -1;
	}
	if (py_interp_read_allocators(pi, &mem, live) < 0) {
		tm_error_set(err, "PID %d: cannot read the allocator tables of its interpreter",
			     (int)pi->pid);
		remote_close(&mem);
		return -1;
	}
	remote_close(&mem);
	if (elf_file_open(&ef, pi->host_path, err))
		return -1;
	for (int d = 0; d < 3; d++) {
		const struct py_alloc_table *tab = &pi->tables[d];
		bool all_in_module = true;

		/* a domain whose table still holds the targets an LTO build inlined
		 * is only partly visible, whichever function we probe */
		if (!pi->inl.complete && tab->found &&
		    live[d].malloc - (uint64_t)pi->bias == tab->initial.malloc) {
			partial = true;
			strcat(partial_domains, partial_domains[0] ? ", " : "");
			strcat(partial_domains, domain_name[d]);
		}
		for (int k = 0; k < 4; k++) {
			uint64_t v = slot(&live[d], k) - (uint64_t)pi->bias;

			if (!elf_file_bytes(&ef, v, 1)) {
				all_in_module = false;  /* a custom allocator in another module */
				break;
			}
		}
		if (!all_in_module) {
			if (add_public_api(plan, pi, d, err))
				goto out;
			continue;
		}
		if (add_table_probes(plan, pi, &ef, d, &live[d], (uint64_t)pi->bias, err))
			goto out;
	}
	if (add_common_probes(plan, pi, reattribute, err))
		goto out;
	if (!partial) {
		plan->coverage = TM_COVERAGE_COMPLETE;
		snprintf(plan->coverage_note, sizeof(plan->coverage_note),
			 "every call of the three allocator domains (%s)", pi->inl.verdict);
	} else {
		plan->coverage = TM_COVERAGE_PARTIAL;
		snprintf(plan->coverage_note, sizeof(plan->coverage_note),
			 "LTO build with its default allocator in the %s domain(s): calls inlined into callers are not seen; for complete coverage start it with `tmbpf run` (or PYTHONMALLOC=malloc) (%s)",
			 partial_domains, pi->inl.verdict);
	}
	ret = 0;
out:
	elf_file_close(&ef);
	return ret;
}
