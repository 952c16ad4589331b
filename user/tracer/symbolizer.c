// SPDX-License-Identifier: MIT
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "tracer/elfinfo.h"
#include "tracer/procmaps.h"
#include "tracer/symbolizer.h"

#define CODE_CACHE_ENTRIES 65536

struct sym_proc {
	pid_t pid;
	bool ready;                     /* bias known, reader set up */
	bool failed;                    /* the module could not be located: give up */
	struct py_interp pi;
	struct remote mem;
	struct py_code_reader rd;
	struct py_code_cache *cache;
	uint64_t replaced;              /* code object at the address is not the recorded one */
};

struct symbolizer {
	struct sym_proc **procs;
	size_t n, cap;
};

struct symbolizer *symbolizer_new(void)
{
	return calloc(1, sizeof(struct symbolizer));
}

static void sym_proc_free(struct sym_proc *p)
{
	if (!p)
		return;
	remote_close(&p->mem);
	py_code_cache_free(p->cache);
	free(p);
}

void symbolizer_free(struct symbolizer *sy)
{
	if (!sy)
		return;
	for (size_t i = 0; i < sy->n; i++)
		sym_proc_free(sy->procs[i]);
	free(sy->procs);
	free(sy);
}

static struct sym_proc *find(const struct symbolizer *sy, pid_t pid)
{
	for (size_t i = 0; i < sy->n; i++)
		if (sy->procs[i]->pid == pid)
			return sy->procs[i];
	return NULL;
}

void symbolizer_remove(struct symbolizer *sy, pid_t pid)
{
	for (size_t i = 0; i < sy->n; i++) {
		if (sy->procs[i]->pid != pid)
			continue;
		sym_proc_free(sy->procs[i]);
		sy->procs[i] = sy->procs[--sy->n];
		return;
	}
}

int symbolizer_add(struct symbolizer *sy, pid_t pid, const struct py_interp *pi)
{
	struct sym_proc *p;

	symbolizer_remove(sy, pid);
	if (sy->n == sy->cap) {
		size_t c = sy->cap ? sy->cap * 2 : 8;
		struct sym_proc **n = realloc(sy->procs, c * sizeof(*n));

		if (!n)
			return -ENOMEM;
		sy->procs = n;
		sy->cap = c;
	}
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->pid = pid;
	p->pi = *pi;
	p->cache = py_code_cache_new(CODE_CACHE_ENTRIES);
	if (!p->cache) {
		free(p);
		return -ENOMEM;
	}
	remote_init(&p->mem, pid);
	sy->procs[sy->n++] = p;
	return 0;
}

/* First stack of a process started by tmbpf run: its interpreter is mapped
 * by now, so its load bias can be read. */
static int make_ready(struct sym_proc *p)
{
	if (!p->pi.bias_known) {
		struct procmaps maps;
		struct elf_file ef;
		struct tm_error err;
		int64_t bias;
		int r;

		if (procmaps_read(p->pid, &maps, &err) < 0)
			return -1;
		r = elf_file_open(&ef, p->pi.host_path, &err);
		if (!r) {
			r = procmaps_load_bias(&maps, p->pi.target_path, ef.loads, ef.nloads, &bias, &err);
			elf_file_close(&ef);
		}
		procmaps_free(&maps);
		if (r < 0)
			return -1;
		p->pi.bias = bias;
		p->pi.bias_known = true;
	}
	p->rd.mem = &p->mem;
	p->rd.off = &p->pi.uoff;
	p->rd.code_type = py_interp_addr(&p->pi, p->pi.code_type_vaddr);
	p->rd.unicode_type = py_interp_addr(&p->pi, p->pi.unicode_type_vaddr);
	p->rd.bytes_type = py_interp_addr(&p->pi, p->pi.bytes_type_vaddr);
	p->ready = true;
	return 0;
}

static int resolve(void *ctx, pid_t pid, const struct py_frame *f,
		   const char **filename, size_t *len, uint32_t *lineno)
{
	struct symbolizer *sy = ctx;
	struct sym_proc *p = find(sy, pid);
	const struct py_code_info *ci;
	int e;

	if (!p || p->failed)
		return -1;
	if (!p->ready && make_ready(p) < 0) {
		p->failed = true;
		return -1;
	}
	ci = py_code_cache_get(p->cache, &p->rd, f->code, &e);
	if (!ci)
		return -1;
	/* the frame was recorded with another code object that has died since */
	if (ci->firstlineno != f->firstlineno ||
	    py_code_ident(ci->filename_ptr, ci->linetable_ptr) != f->ident) {
		p->replaced++;
		return -1;
	}
	*filename = ci->filename;
	*len = ci->filename_len;
	if (f->flags & PYF_LINENO)
		*lineno = f->addr < 0 ? 0 : (uint32_t)f->addr;
	else
		*lineno = py_code_lineno(ci, (enum py_linetable_kind)p->pi.uoff.linetable_kind, f->addr);
	return 0;
}

struct frame_resolver symbolizer_resolver(struct symbolizer *sy)
{
	struct frame_resolver r = { resolve, sy };

	return r;
}

uint64_t symbolizer_replaced(const struct symbolizer *sy, pid_t pid)
{
	struct sym_proc *p = find(sy, pid);

	return p ? p->replaced : 0;
}

void symbolizer_fill_proc(const struct py_interp *pi, uint32_t tss_key, bool tss_key_known,
			  struct py_proc *out)
{
	const struct py_user_offsets *u = &pi->uoff;
	uint32_t lo, hi;

	py_interp_fill_proc(pi, tss_key, tss_key_known, out);
	out->off.co_firstlineno = u->co_firstlineno;
	out->off.co_filename = u->co_filename;
	out->off.co_linetable = u->co_linetable;
	lo = u->co_firstlineno;
	hi = u->co_firstlineno + 4;
	if (u->co_filename < lo)
		lo = u->co_filename;
	if (u->co_linetable < lo)
		lo = u->co_linetable;
	if (u->co_filename + 8 > hi)
		hi = u->co_filename + 8;
	if (u->co_linetable + 8 > hi)
		hi = u->co_linetable + 8;
	if (out->off.co_firsttraceable && out->off.co_firsttraceable + 4 > hi)
		hi = out->off.co_firsttraceable + 4;
	out->off.co_block_off = lo;
	out->off.co_block_len = hi - lo;
}

struct py_code_stats symbolizer_stats(const struct symbolizer *sy, pid_t pid)
{
	struct sym_proc *p = find(sy, pid);
	struct py_code_stats zero = {};

	return p ? p->rd.stats : zero;
}
