/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * What the tracer needs from an ELF file (libelf): symbols, sections, bytes at
 * a link-time address, address <-> file offset, dynamic-section strings.
 *
 * The file may come from a container's root filesystem, so it is untrusted:
 * every offset and size read from it is checked against the file's size
 * before use, and strings from string tables are bounded.
 */
#ifndef TMBPF_TRACER_ELFINFO_H
#define TMBPF_TRACER_ELFINFO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "snapshot/snapshot.h"          /* struct tm_error */
#include "tracer/procmaps.h"            /* struct procmaps_segment */

#define ELF_MAX_NEEDED 64               /* DT_NEEDED entries kept */
#define ELF_MAX_LOADS 16                /* PT_LOAD segments accepted */

struct elf_sym {
	uint64_t value;                 /* st_value: link-time vaddr (TLS: offset in the block) */
	uint64_t size;
	unsigned type;                  /* STT_* */
	unsigned bind;                  /* STB_* */
	bool from_dynsym;               /* found in .dynsym (exported), else .symtab */
};

struct elf_section {
	uint64_t addr;                  /* sh_addr */
	uint64_t offset;                /* sh_offset */
	uint64_t size;
	uint32_t type;                  /* SHT_* (SHT_NOBITS: no bytes in the file) */
	uint64_t flags;
};

struct elf_file {
	char *path;
	int fd;
	void *elf;                      /* Elf * (kept opaque so callers need no <libelf.h>) */
	const uint8_t *image;           /* the whole file, mapped read-only */
	size_t image_size;
	uint16_t type;                  /* ET_EXEC or ET_DYN */
	struct procmaps_segment loads[ELF_MAX_LOADS];
	uint64_t load_memsz[ELF_MAX_LOADS];
	size_t nloads;
	/* dynamic section strings (pointers into the image; NULL if absent) */
	const char *soname;
	const char *rpath;
	const char *runpath;
	const char *needed[ELF_MAX_NEEDED];
	size_t nneeded;
	/* symbol tables: section indexes, 0 if absent */
	size_t symtab_idx, dynsym_idx;
};

/* Opens path. Errors: cannot open, not a 64-bit little-endian x86-64 ELF
 * executable or shared object, corrupt headers. Returns 0 or -errno. */
int elf_file_open(struct elf_file *ef, const char *path, struct tm_error *err);
void elf_file_close(struct elf_file *ef);

static inline bool elf_file_is_exec(const struct elf_file *ef)
{
	return ef->type == 2 /* ET_EXEC */;
}

/* Looks name up among the defined symbols, .symtab first (it has local
 * symbols too), then .dynsym. Returns 0, or -ENOENT. */
int elf_file_symbol(const struct elf_file *ef, const char *name, struct elf_sym *out);
/* Same, but only in .dynsym (what the dynamic linker sees). */
int elf_file_dynsym(const struct elf_file *ef, const char *name, struct elf_sym *out);

/* Calls fn for every defined symbol of type STT_FUNC/STT_OBJECT with a
 * non-zero size (both tables; a symbol may be reported twice). Stops and
 * returns fn's value if fn returns non-zero. */
int elf_file_foreach_symbol(const struct elf_file *ef,
			    int (*fn)(void *ctx, const char *name, const struct elf_sym *sym),
			    void *ctx);

/* The section named name. Returns 0, or -ENOENT. */
int elf_file_section(const struct elf_file *ef, const char *name, struct elf_section *out);

/* File bytes at link-time vaddr: a pointer into the mapped image valid until
 * close, or NULL if [vaddr, vaddr+len) is not entirely file-backed inside one
 * PT_LOAD segment. */
const uint8_t *elf_file_bytes(const struct elf_file *ef, uint64_t vaddr, size_t len);

/* Copies len bytes at vaddr: the file's bytes, or zeros for the part of a
 * segment past p_filesz (.bss: its initial contents are zero). Returns 0, or
 * -EFAULT if the range is not inside one PT_LOAD segment. */
int elf_file_read(const struct elf_file *ef, uint64_t vaddr, void *buf, size_t len);

/* File offset of link-time vaddr (what uprobe attachment takes). Returns 0,
 * or -EFAULT if vaddr is not file-backed. */
int elf_file_vaddr_to_offset(const struct elf_file *ef, uint64_t vaddr, uint64_t *offset);
/* Link-time vaddr of a file offset. Returns 0, or -EFAULT. */
int elf_file_offset_to_vaddr(const struct elf_file *ef, uint64_t offset, uint64_t *vaddr);

/* Calls fn for every entry of every SHT_RELA section: r_offset, type
 * (R_X86_64_*), the value of its symbol (0 if none or undefined) and its
 * addend. Stops and returns fn's value if fn returns non-zero. */
int elf_file_foreach_rela(const struct elf_file *ef,
			  int (*fn)(void *ctx, uint64_t offset, uint32_t type, uint64_t sym_value,
				    bool sym_defined, int64_t addend),
			  void *ctx);

/* The pointer-sized value stored at vaddr once the dynamic linker has run,
 * in link-time terms: a relocation's target (R_X86_64_RELATIVE: addend;
 * R_X86_64_64/GLOB_DAT: symbol + addend, when the symbol is defined here),
 * else the file's bytes (ET_EXEC data needs no relocation). Returns 0, or
 * -EFAULT / -ENOENT (relocated against an undefined symbol). */
int elf_file_pointer_at(const struct elf_file *ef, uint64_t vaddr, uint64_t *value);

/* Start addresses of every function that has unwind information, from the
 * binary-search table of .eh_frame_hdr (present in stripped binaries too),
 * sorted. *starts is malloc'ed. Returns 0, or -ENOENT (no table, or an
 * encoding other than GNU ld's datarel|sdata4). */
int elf_file_function_starts(const struct elf_file *ef, uint64_t **starts, size_t *n);

/* Resolves a DT_NEEDED name the way the dynamic linker would for an
 * executable ef (DT_RPATH when there is no DT_RUNPATH, LD_LIBRARY_PATH when
 * ld_library_path is non-NULL, DT_RUNPATH, /etc/ld.so.cache, then the default
 * directories), with $ORIGIN expanded to ef's directory. root is prepended to
 * every absolute path looked at ("" for the host, "/proc/PID/root" for a
 * target); out receives the path inside root. Names containing '/' are used
 * as they are. Returns 0, or -ENOENT with err set. */
int elf_resolve_library(const struct elf_file *ef, const char *origin_dir, const char *name,
			const char *root, const char *ld_library_path,
			char *out, size_t out_size, struct tm_error *err);

#endif /* TMBPF_TRACER_ELFINFO_H */
