// SPDX-License-Identifier: MIT
#include <stdlib.h>
#include <string.h>
#include "tracer/stack_table.h"

static const char UNKNOWN[] = "<unknown>";

static size_t slot_of(uint64_t stack_id, uint32_t tgid, size_t mask)
{
	uint64_t h = stack_id ^ ((uint64_t)tgid * 0x9e3779b97f4a7c15ull);

	h ^= h >> 29;
	return (size_t)h & mask;
}

int stack_table_init(struct stack_table *st)
{
	tm_id name, frame;

	memset(st, 0, sizeof(*st));
	st->tables = tm_snapshot_new();
	st->nslots = 1024;
	st->slots = calloc(st->nslots, sizeof(*st->slots));
	if (!st->tables || !st->slots)
		goto fail;
	/* interned first so that every clone has it */
	name = tm_intern_string(st->tables, UNKNOWN, sizeof(UNKNOWN) - 1);
	frame = name == TM_ID_NONE ? TM_ID_NONE : tm_intern_frame(st->tables, name, 0);
	st->unknown_tb = frame == TM_ID_NONE ? TM_ID_NONE :
			 tm_intern_traceback(st->tables, &frame, 1, 1);
	if (st->unknown_tb == TM_ID_NONE)
		goto fail;
	return 0;
fail:
	stack_table_destroy(st);
	return -1;
}

void stack_table_destroy(struct stack_table *st)
{
	tm_snapshot_free(st->tables);
	free(st->slots);
	memset(st, 0, sizeof(*st));
}

static int grow(struct stack_table *st)
{
	size_t n = st->nslots * 2;
	struct stack_slot *slots = calloc(n, sizeof(*slots));

	if (!slots)
		return -1;
	for (size_t i = 0; i < st->nslots; i++) {
		struct stack_slot *o = &st->slots[i];
		size_t j;

		if (!o->stack_id)
			continue;
		for (j = slot_of(o->stack_id, o->tgid, n - 1); slots[j].stack_id; j = (j + 1) & (n - 1))
			;
		slots[j] = *o;
	}
	free(st->slots);
	st->slots = slots;
	st->nslots = n;
	return 0;
}

int stack_table_event(struct stack_table *st, const struct frame_resolver *resolver,
		      const void *data, size_t len)
{
	const struct stack_event_head *h = data;

	if (len < sizeof(uint32_t) * 2)
		return -1;
	if (h->type == PY_EV_CODE) {
		if (resolver->add_code)
			resolver->add_code(resolver->ctx, (pid_t)h->tgid, data, len);
		return 1;
	}
	if (h->type != PY_EV_STACK)
		return 0;
	if (len < sizeof(*h) || h->nframe == 0 || h->nframe > PY_MAX_NFRAME ||
	    len < sizeof(*h) + h->nframe * sizeof(struct py_frame))
		return -1;
	stack_table_add(st, (pid_t)h->tgid, h->stack_id, h->nframe, h->total_nframe,
			(const struct py_frame *)(h + 1), resolver);
	return 1;
}

tm_id stack_table_lookup(const struct stack_table *st, pid_t tgid, uint64_t stack_id)
{
	size_t mask = st->nslots - 1;

	if (!stack_id)
		return TM_ID_NONE;
	for (size_t j = slot_of(stack_id, (uint32_t)tgid, mask); st->slots[j].stack_id; j = (j + 1) & mask)
		if (st->slots[j].stack_id == stack_id && st->slots[j].tgid == (uint32_t)tgid)
			return st->slots[j].traceback;
	return TM_ID_NONE;
}

tm_id stack_table_unknown(const struct stack_table *st)
{
	return st->unknown_tb;
}

int stack_table_add(struct stack_table *st, pid_t tgid, uint64_t stack_id, uint32_t nframe,
		    uint32_t total_nframe, const struct py_frame *frames,
		    const struct frame_resolver *resolver)
{
	tm_id ids[PY_MAX_NFRAME], tb;
	size_t j, mask;

	if (!stack_id || stack_table_lookup(st, tgid, stack_id) != TM_ID_NONE)
		return 0;
	if (nframe > PY_MAX_NFRAME)
		nframe = PY_MAX_NFRAME;
	for (uint32_t i = 0; i < nframe; i++) {
		const char *filename = UNKNOWN;
		size_t len = sizeof(UNKNOWN) - 1;
		uint32_t lineno = 0;
		tm_id name;

		if (!(frames[i].flags & PYF_NONE) &&
		    resolver->resolve(resolver->ctx, tgid, &frames[i], &filename, &len, &lineno) < 0) {
			st->unresolved_frames++;
			filename = UNKNOWN;
			len = sizeof(UNKNOWN) - 1;
			lineno = 0;
		}
		name = tm_intern_string(st->tables, filename, len);
		ids[i] = name == TM_ID_NONE ? TM_ID_NONE : tm_intern_frame(st->tables, name, lineno);
		if (ids[i] == TM_ID_NONE)
			return -1;
	}
	tb = tm_intern_traceback(st->tables, ids, nframe, total_nframe);
	if (tb == TM_ID_NONE)
		return -1;
	if ((st->used + 1) * 4 > st->nslots * 3 && grow(st) < 0)
		return -1;
	mask = st->nslots - 1;
	for (j = slot_of(stack_id, (uint32_t)tgid, mask); st->slots[j].stack_id; j = (j + 1) & mask)
		;
	st->slots[j].stack_id = stack_id;
	st->slots[j].tgid = (uint32_t)tgid;
	st->slots[j].traceback = tb;
	st->used++;
	return 0;
}

int stack_builder_init(struct stack_builder *b, const struct stack_table *st, pid_t pid)
{
	uint32_t n = st->tables->ntracebacks;

	memset(b, 0, sizeof(*b));
	b->st = st;
	b->pid = pid;
	b->s = tm_snapshot_new();
	b->tb_map = malloc((n ? n : 1) * sizeof(*b->tb_map));
	if (!b->s || !b->tb_map) {
		stack_builder_abort(b);
		return -1;
	}
	for (uint32_t i = 0; i < n; i++)
		b->tb_map[i] = TM_ID_NONE;
	return 0;
}

tm_id stack_builder_traceback(struct stack_builder *b, uint64_t stack_id)
{
	const struct tm_snapshot *src = b->st->tables;
	tm_id tb = stack_table_lookup(b->st, b->pid, stack_id), ids[PY_MAX_NFRAME];
	const struct tm_traceback *t;
	uint32_t n;

	if (tb == TM_ID_NONE) {
		b->missing++;
		tb = b->st->unknown_tb;
	}
	if (b->tb_map[tb] != TM_ID_NONE)
		return b->tb_map[tb];
	t = &src->tracebacks[tb];
	n = t->nframe < PY_MAX_NFRAME ? t->nframe : PY_MAX_NFRAME;
	for (uint32_t i = 0; i < n; i++) {
		const struct tm_frame *f = &src->frames[tm_traceback_frames(src, tb)[i]];
		struct tm_str name = tm_string(src, f->filename);
		tm_id id = tm_intern_string(b->s, name.data, name.len);

		ids[i] = id == TM_ID_NONE ? TM_ID_NONE : tm_intern_frame(b->s, id, f->lineno);
		if (ids[i] == TM_ID_NONE)
			return TM_ID_NONE;
	}
	b->tb_map[tb] = tm_intern_traceback(b->s, ids, n, t->total_nframe);
	return b->tb_map[tb];
}

struct tm_snapshot *stack_builder_finish(struct stack_builder *b)
{
	struct tm_snapshot *s = b->s;

	free(b->tb_map);
	b->tb_map = NULL;
	b->s = NULL;
	return s;
}

void stack_builder_abort(struct stack_builder *b)
{
	tm_snapshot_free(b->s);
	free(b->tb_map);
	b->s = NULL;
	b->tb_map = NULL;
}
