// SPDX-License-Identifier: MIT
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include "tracer/elfinfo.h"
#include "tracer/procmaps.h"
#include "tracer/symbolizer.h"

#define CODE_CACHE_ENTRIES 65536

/* A code object as BPF copied it when its first stack was recorded. */
struct code_copy {
	uint64_t code;                  /* 0 = empty slot */
	uint32_t ident;
	int32_t firstlineno;
	uint64_t str_type;              /* ob_type of co_filename */
	char *filename;                 /* UTF-8 (surrogatepass); NULL = not copied */
	uint32_t filename_len;
	bool filename_unknown;          /* not ready (<= 3.11): tracemalloc's "<unknown>" */
	uint8_t *linetable;             /* NULL = not copied */
	uint32_t linetable_len;
};

struct code_table {
	struct code_copy *slots;
	size_t nslots, used;
};

struct sym_proc {
	pid_t pid;
	bool ready;                     /* bias known, reader set up */
	bool failed;                    /* the module could not be located: give up */
	struct py_interp pi;
	struct remote mem;
	struct py_code_reader rd;
	struct py_code_cache *cache;
	uint64_t replaced;              /* code object at the address is not the recorded one */
	uint64_t from_copy;             /* frames resolved from BPF's copy */
	struct code_table copies;
};

struct symbolizer {
	struct sym_proc **procs;
	size_t n, cap;
};

struct symbolizer *symbolizer_new(void)
{
	return calloc(1, sizeof(struct symbolizer));
}

static void code_table_free(struct code_table *t)
{
	for (size_t i = 0; i < t->nslots; i++) {
		free(t->slots[i].filename);
		free(t->slots[i].linetable);
	}
	free(t->slots);
	memset(t, 0, sizeof(*t));
}

static size_t code_slot(uint64_t code, uint32_t ident, size_t mask)
{
	return (size_t)(((code >> 4) ^ ((uint64_t)ident << 17)) * 0x9e3779b97f4a7c15ull >> 24) & mask;
}

static struct code_copy *code_find(const struct code_table *t, uint64_t code, uint32_t ident,
				   int32_t firstlineno)
{
	size_t mask = t->nslots - 1;

	if (!t->nslots)
		return NULL;
	for (size_t j = code_slot(code, ident, mask); t->slots[j].code; j = (j + 1) & mask)
		if (t->slots[j].code == code && t->slots[j].ident == ident &&
		    t->slots[j].firstlineno == firstlineno)
			return &t->slots[j];
	return NULL;
}

static struct code_copy *code_insert(struct code_table *t, uint64_t code, uint32_t ident,
				     int32_t firstlineno)
{
	struct code_copy *c = code_find(t, code, ident, firstlineno);
	size_t mask, j;

	if (c)
		return c;
	if ((t->used + 1) * 4 > t->nslots * 3) {
		size_t n = t->nslots ? t->nslots * 2 : 256;
		struct code_copy *slots = calloc(n, sizeof(*slots));

		if (!slots)
			return NULL;
		for (size_t i = 0; i < t->nslots; i++) {
			if (!t->slots[i].code)
				continue;
			for (j = code_slot(t->slots[i].code, t->slots[i].ident, n - 1); slots[j].code;
			     j = (j + 1) & (n - 1))
				;
			slots[j] = t->slots[i];
		}
		free(t->slots);
		t->slots = slots;
		t->nslots = n;
	}
	mask = t->nslots - 1;
	for (j = code_slot(code, ident, mask); t->slots[j].code; j = (j + 1) & mask)
		;
	c = &t->slots[j];
	c->code = code;
	c->ident = ident;
	c->firstlineno = firstlineno;
	t->used++;
	return c;
}

static void sym_proc_free(struct sym_proc *p)
{
	if (!p)
		return;
	code_table_free(&p->copies);
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
	{
		const struct code_copy *c = code_find(&p->copies, f->code, f->ident, f->firstlineno);

		/* BPF's copy, when complete and the filename is an exact str */
		if (c && c->linetable && (c->filename_unknown ||
					  (c->filename && c->str_type == p->rd.unicode_type))) {
			int32_t line = 0;

			if (c->filename_unknown) {
				*filename = PY_UNKNOWN_FILENAME;
				*len = sizeof(PY_UNKNOWN_FILENAME) - 1;
			} else {
				*filename = c->filename;
				*len = c->filename_len;
			}
			if (f->flags & PYF_LINENO)
				line = f->addr;
			else if (py_addr2line((enum py_linetable_kind)p->pi.uoff.linetable_kind,
					      c->linetable, c->linetable_len, c->firstlineno, f->addr,
					      &line) != 0)
				line = 0;
			*lineno = line < 0 ? 0 : (uint32_t)line;
			p->from_copy++;
			return 0;
		}
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

static void add_code(void *ctx, pid_t pid, const struct code_event *ev, size_t len)
{
	symbolizer_add_code(ctx, pid, ev, len);
}

struct frame_resolver symbolizer_resolver(struct symbolizer *sy)
{
	struct frame_resolver r = { resolve, add_code, sy };

	return r;
}

void symbolizer_add_code(struct symbolizer *sy, pid_t pid, const struct code_event *ev, size_t len)
{
	struct sym_proc *p = find(sy, pid);
	const struct py_user_offsets *u;
	struct code_copy *c;
	size_t head = offsetof(struct code_event, data);

	if (!p || len < head + PY_CODE_STR_MAX || ev->str_nbytes > PY_CODE_STR_MAX ||
	    ev->lt_nbytes > PY_CODE_LT_MAX || len < head + PY_CODE_STR_MAX + ev->lt_nbytes)
		return;
	c = code_insert(&p->copies, ev->code, ev->ident, ev->firstlineno);
	if (!c || c->linetable)
		return;                 /* no memory, or already known */
	u = &p->pi.uoff;
	if ((ev->flags & CODE_EV_STR) && u->u_length >= 16 && u->u_state + 4 <= 8 + PY_CODE_STR_OBJ) {
		uint64_t length;
		uint32_t state, kind;

		memcpy(&c->str_type, ev->str_obj, sizeof(c->str_type));
		memcpy(&length, ev->str_obj + (u->u_length - 8), sizeof(length));
		memcpy(&state, ev->str_obj + (u->u_state - 8), sizeof(state));
		kind = (state >> 2) & 7;
		if (u->u_has_ready && !(state & (1u << 7))) {
			c->filename_unknown = true;
		} else if (kind && length * kind == ev->str_nbytes) {
			char *out = malloc(4 * length + 1);
			long n = out ? py_str_to_utf8(kind, ev->data, length, out) : -1;

			if (n >= 0) {
				c->filename = out;
				c->filename_len = (uint32_t)n;
			} else {
				free(out);
			}
		}
	}
	if (ev->flags & CODE_EV_LT) {
		c->linetable = malloc(ev->lt_nbytes ? ev->lt_nbytes : 1);
		if (c->linetable) {
			memcpy(c->linetable, ev->data + PY_CODE_STR_MAX, ev->lt_nbytes);
			c->linetable_len = ev->lt_nbytes;
		}
	}
}

uint64_t symbolizer_from_copy(const struct symbolizer *sy, pid_t pid)
{
	struct sym_proc *p = find(sy, pid);

	return p ? p->from_copy : 0;
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
	out->off.u_length = u->u_length;
	out->off.u_state = u->u_state;
	out->off.u_ascii_data = u->u_ascii_size;
	out->off.u_compact_data = u->u_compact_size;
	out->off.b_size = u->b_size;
	out->off.b_sval = u->b_sval;
	out->init_cleanup_vaddr = pi->init_cleanup_vaddr;
	out->count_fast = out->off.layout == PY_LAYOUT_INTERP_311 ||
			  out->off.layout == PY_LAYOUT_INTERP_312 ||
			  (out->off.layout == PY_LAYOUT_INTERP_313 && pi->init_cleanup_vaddr);
}

void symbolizer_proc_config(const struct py_interp *pi, struct py_proc *out)
{
	uint32_t key = 0;
	bool key_known = false;

	if (pi->bias_known && pi->pid) {
		struct remote mem;

		remote_init(&mem, pi->pid);
		key_known = py_interp_read_tss_key(pi, &mem, &key) == 0;
		remote_close(&mem);
	}
	symbolizer_fill_proc(pi, key, key_known, out);
}

struct py_code_stats symbolizer_stats(const struct symbolizer *sy, pid_t pid)
{
	struct sym_proc *p = find(sy, pid);
	struct py_code_stats zero = {};

	return p ? p->rd.stats : zero;
}
