// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* glibc thread-specific-data offsets from pthread_getspecific: see glibc_tsd.h. */
#include "tracer/glibc_tsd.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "tracer/elfinfo.h"
#include "tracer/remote.h"
#include "tracer/x86dec.h"

/* What a register holds while we follow pthread_getspecific, as
 * mul*key + add (+ the thread pointer when self is set). */
struct symval {
	bool known;
	bool self;
	uint64_t mul;
	int64_t add;
};

#define MAX_FUNC_BYTES 512

static int analyze(const uint8_t *code, size_t size, uint64_t addr, struct glibc_tsd *out)
{
	struct symval reg[16] = { 0 };
	int64_t first = INT64_MAX;
	int64_t second = -1;
	struct x86_insn in;

	/* The key arrives in edi. */
	reg[X86_RDI] = (struct symval){ .known = true, .mul = 1 };
	for (size_t off = 0; off < size;) {
		int n = x86_decode(code + off, size - off, addr + off, &in);

		if (n < 0)
			break;
		off += (size_t)n;
		if (in.vex || in.map != X86_MAP_1)
			continue;
		uint8_t op = in.opcode;

		/* Any memory operand with %fs and an index scaled by 8: the
		 * second-level array, indexed by key / 32. */
		if (in.mem && in.seg == 0x64 && in.base == X86_NOREG && in.index != X86_NOREG &&
		    in.scale == 8 && second < 0 && in.disp > 0)
			second = in.disp;
		/* A memory operand based on self + 16*key + b: an entry field. */
		if (in.mem && in.seg == 0 && in.base >= 0 && in.base < 16 && in.index == X86_NOREG) {
			struct symval *v = &reg[in.base];

			if (v->known && v->self && v->mul == GLIBC_TSD_ENTRY_SIZE && v->add + in.disp >= 0 &&
			    v->add + in.disp < first)
				first = v->add + in.disp;
		}
		if ((op == 0x89 || op == 0x8b) && in.mod == 3) {          /* mov reg, reg */
			int dst = op == 0x89 ? in.rm : in.reg, src = op == 0x89 ? in.reg : in.rm;

			reg[dst] = reg[src];
			reg[dst].self = reg[src].self && in.rex_w;
			continue;
		}
		if (op == 0x83 || op == 0x81) {
			if (in.mod != 3)
				continue;
			struct symval *v = &reg[in.rm];

			if ((in.reg & 7) == 0)                          /* add $imm */
				v->add += in.imm;
			else if ((in.reg & 7) != 7)                     /* not cmp */
				v->known = false;
			continue;
		}
		if (op == 0xc1 && in.mod == 3) {
			struct symval *v = &reg[in.rm];

			if ((in.reg & 7) == 4 && in.imm >= 0 && in.imm < 8) {   /* shl $n */
				v->mul <<= in.imm;
				v->add *= (int64_t)1 << in.imm;
			} else {
				v->known = false;
			}
			continue;
		}
		if (op == 0x03 && in.seg == 0x64 && in.base == X86_NOREG && in.index == X86_NOREG &&
		    in.disp == 0x10) {                                  /* add %fs:0x10, reg */
			reg[in.reg].self = true;
			continue;
		}
		if (op == 0x8d && in.base >= 0 && in.base < 16 && in.index == X86_NOREG) {   /* lea */
			reg[in.reg] = reg[in.base];
			reg[in.reg].add += in.disp;
			continue;
		}
		/* Anything else that writes a register makes it unknown. */
		uint32_t w;
		if (x86_insn_writes(&in, &w)) {
			for (int r = 0; r < 16; r++)
				if (w & X86_REGBIT(r))
					reg[r].known = false;
		}
	}
	if (first == INT64_MAX || second < 0 || first > UINT32_MAX || second > UINT32_MAX)
		return -ENOENT;
	/* specific[] directly follows specific_1stblock[32] in struct pthread. */
	if (second - first != GLIBC_TSD_KEYS_PER_BLOCK * GLIBC_TSD_ENTRY_SIZE)
		return -EINVAL;
	out->first_block = (uint32_t)first;
	out->second_level = (uint32_t)second;
	return 0;
}

int glibc_tsd_from_file(const char *host_path, struct glibc_tsd *out, struct tm_error *err)
{
	struct elf_file ef;
	struct elf_sym sym;
	const uint8_t *code;
	int ret;

	memset(out, 0, sizeof(*out));
	ret = elf_file_open(&ef, host_path, err);
	if (ret)
		return ret;
	if (elf_file_dynsym(&ef, "pthread_getspecific", &sym) != 0 || sym.type != 2 /* STT_FUNC */) {
		tm_error_set(err, "%s does not export pthread_getspecific: not glibc", host_path);
		ret = -ENOENT;
		goto out;
	}
	size_t size = sym.size && sym.size < MAX_FUNC_BYTES ? sym.size : MAX_FUNC_BYTES;
	while (size > 0 && !(code = elf_file_bytes(&ef, sym.value, size)))
		size /= 2;
	if (size == 0) {
		tm_error_set(err, "%s: pthread_getspecific is not in the file", host_path);
		ret = -EINVAL;
		goto out;
	}
	ret = analyze(code, size, sym.value, out);
	if (ret) {
		tm_error_set(err, "%s: pthread_getspecific does not have the expected glibc shape "
			     "(cannot locate thread-specific data)", host_path);
		goto out;
	}
	snprintf(out->libc_path, sizeof(out->libc_path), "%s", host_path);
out:
	elf_file_close(&ef);
	return ret;
}

/* Is this mapping's file the C library? "libc.so.6", "libc-2.31.so". */
static bool is_libc_path(const char *path)
{
	const char *base = strrchr(path, '/');

	base = base ? base + 1 : path;
	return strncmp(base, "libc.so", 7) == 0 ||
	       (strncmp(base, "libc-", 5) == 0 && strstr(base, ".so") != NULL);
}

int glibc_tsd_for_pid(pid_t pid, const struct procmaps *maps, struct glibc_tsd *out,
		      struct tm_error *err)
{
	for (size_t i = 0; i < maps->n; i++) {
		const struct procmaps_entry *e = &maps->v[i];
		char host[4096];

		if (!e->path[0] || e->path[0] != '/' || !is_libc_path(e->path))
			continue;
		if (procmaps_host_path(pid, e->path, host, sizeof(host)) != 0)
			continue;
		int ret = procmaps_check_file(e, host, err);
		if (ret)
			return ret;
		return glibc_tsd_from_file(host, out, err);
	}
	tm_error_set(err, "process %d has no glibc mapped (statically linked or another libc): "
		     "cannot locate its threads' thread-specific data", (int)pid);
	return -ENOENT;
}

int glibc_tsd_read(const struct glibc_tsd *t, struct remote *r, uint64_t fsbase, uint32_t key,
		   uint64_t *value)
{
	uint64_t block;
	int ret;

	if (key >= GLIBC_TSD_MAX_KEYS)
		return -EINVAL;
	if (key < GLIBC_TSD_KEYS_PER_BLOCK)
		return remote_read_u64(r, glibc_tsd_first_block_slot(t, fsbase, key), value);
	ret = remote_read_u64(r, fsbase + t->second_level + 8ull * (key / GLIBC_TSD_KEYS_PER_BLOCK),
			      &block);
	if (ret)
		return ret;
	if (block == 0) {
		*value = 0;             /* no block allocated: no key in it was set */
		return 0;
	}
	return remote_read_u64(r, block + (uint64_t)GLIBC_TSD_ENTRY_SIZE * (key % GLIBC_TSD_KEYS_PER_BLOCK) +
			       GLIBC_TSD_DATA_OFFSET, value);
}
