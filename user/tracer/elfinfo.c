// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* ELF file queries through libelf: see elfinfo.h. */
#include "tracer/elfinfo.h"

#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static bool libelf_ready(void)
{
	static int state;               /* 0 unknown, 1 ok, -1 failed */

	if (state == 0)
		state = elf_version(EV_CURRENT) == EV_NONE ? -1 : 1;
	return state == 1;
}

static int read_dynamic(struct elf_file *ef, Elf *elf, struct tm_error *err)
{
	Elf_Scn *scn = NULL;

	while ((scn = elf_nextscn(elf, scn)) != NULL) {
		GElf_Shdr sh;
		Elf_Data *data;

		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_DYNAMIC)
			continue;
		data = elf_getdata(scn, NULL);
		if (!data || sh.sh_entsize == 0)
			break;
		size_t n = data->d_size / sizeof(Elf64_Dyn);
		for (size_t i = 0; i < n; i++) {
			GElf_Dyn d;
			const char *s;

			if (!gelf_getdyn(data, (int)i, &d) || d.d_tag == DT_NULL)
				break;
			if (d.d_tag != DT_NEEDED && d.d_tag != DT_RPATH &&
			    d.d_tag != DT_RUNPATH && d.d_tag != DT_SONAME)
				continue;
			/* elf_strptr checks the index and the terminating NUL. */
			s = elf_strptr(elf, sh.sh_link, d.d_un.d_val);
			if (!s) {
				tm_error_set(err, "%s: corrupt dynamic string table", ef->path);
				return -EINVAL;
			}
			if (d.d_tag == DT_NEEDED) {
				if (ef->nneeded < ELF_MAX_NEEDED)
					ef->needed[ef->nneeded++] = s;
			} else if (d.d_tag == DT_RPATH) {
				ef->rpath = s;
			} else if (d.d_tag == DT_RUNPATH) {
				ef->runpath = s;
			} else {
				ef->soname = s;
			}
		}
		break;
	}
	return 0;
}

int elf_file_open(struct elf_file *ef, const char *path, struct tm_error *err)
{
	GElf_Ehdr eh;
	size_t phnum, shstrndx;
	Elf *elf;
	int ret;

	memset(ef, 0, sizeof(*ef));
	ef->fd = -1;
	if (!libelf_ready()) {
		tm_error_set(err, "libelf initialisation failed: %s", elf_errmsg(-1));
		return -EINVAL;
	}
	ef->path = strdup(path);
	if (!ef->path) {
		tm_error_set(err, "out of memory");
		return -ENOMEM;
	}
	ef->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (ef->fd < 0) {
		ret = -errno;
		tm_error_set(err, "cannot open %s: %s", path, strerror(errno));
		goto fail;
	}
	elf = elf_begin(ef->fd, ELF_C_READ_MMAP, NULL);
	ef->elf = elf;
	if (!elf || elf_kind(elf) != ELF_K_ELF) {
		ret = -ENOEXEC;
		tm_error_set(err, "%s is not an ELF file", path);
		goto fail;
	}
	if (!gelf_getehdr(elf, &eh) || gelf_getclass(elf) != ELFCLASS64 ||
	    eh.e_ident[EI_DATA] != ELFDATA2LSB || eh.e_machine != EM_X86_64) {
		ret = -ENOEXEC;
		tm_error_set(err, "%s is not a 64-bit x86-64 ELF file", path);
		goto fail;
	}
	if (eh.e_type != ET_EXEC && eh.e_type != ET_DYN) {
		ret = -ENOEXEC;
		tm_error_set(err, "%s is neither an executable nor a shared object", path);
		goto fail;
	}
	ef->type = eh.e_type;
	ef->image = (const uint8_t *)elf_rawfile(elf, &ef->image_size);
	if (!ef->image || elf_getphdrnum(elf, &phnum) != 0 || elf_getshdrstrndx(elf, &shstrndx) != 0) {
		ret = -ENOEXEC;
		tm_error_set(err, "%s: corrupt ELF headers (%s)", path, elf_errmsg(-1));
		goto fail;
	}
	for (size_t i = 0; i < phnum; i++) {
		GElf_Phdr ph;

		if (!gelf_getphdr(elf, (int)i, &ph) || ph.p_type != PT_LOAD)
			continue;
		if (ef->nloads == ELF_MAX_LOADS || ph.p_filesz > ph.p_memsz ||
		    ph.p_offset > ef->image_size || ph.p_filesz > ef->image_size - ph.p_offset ||
		    ph.p_vaddr + ph.p_memsz < ph.p_vaddr ||
		    (ph.p_vaddr & 0xfff) != (ph.p_offset & 0xfff)) {
			ret = -ENOEXEC;
			tm_error_set(err, "%s: corrupt or unusual PT_LOAD segment %zu", path, i);
			goto fail;
		}
		ef->loads[ef->nloads].vaddr = ph.p_vaddr;
		ef->loads[ef->nloads].offset = ph.p_offset;
		ef->loads[ef->nloads].filesz = ph.p_filesz;
		ef->load_memsz[ef->nloads] = ph.p_memsz;
		ef->nloads++;
	}
	if (ef->nloads == 0) {
		ret = -ENOEXEC;
		tm_error_set(err, "%s has no loadable segment", path);
		goto fail;
	}
	Elf_Scn *scn = NULL;
	while ((scn = elf_nextscn(elf, scn)) != NULL) {
		GElf_Shdr sh;

		if (!gelf_getshdr(scn, &sh))
			continue;
		if (sh.sh_type == SHT_SYMTAB)
			ef->symtab_idx = elf_ndxscn(scn);
		else if (sh.sh_type == SHT_DYNSYM)
			ef->dynsym_idx = elf_ndxscn(scn);
	}
	ret = read_dynamic(ef, elf, err);
	if (ret)
		goto fail;
	return 0;
fail:
	elf_file_close(ef);
	return ret;
}

void elf_file_close(struct elf_file *ef)
{
	if (ef->elf)
		elf_end((Elf *)ef->elf);
	if (ef->fd >= 0)
		close(ef->fd);
	free(ef->path);
	memset(ef, 0, sizeof(*ef));
	ef->fd = -1;
}

/* Walks one symbol table; fn returns non-zero to stop. */
static int walk_symtab(const struct elf_file *ef, size_t idx, bool dyn,
		       int (*fn)(void *ctx, const char *name, const GElf_Sym *s, bool dyn),
		       void *ctx)
{
	Elf *elf = (Elf *)ef->elf;
	Elf_Scn *scn;
	GElf_Shdr sh;
	Elf_Data *data;

	if (idx == 0 || !(scn = elf_getscn(elf, idx)) || !gelf_getshdr(scn, &sh) ||
	    sh.sh_entsize == 0 || !(data = elf_getdata(scn, NULL)))
		return 0;
	size_t n = data->d_size / sizeof(Elf64_Sym);
	for (size_t i = 1; i < n; i++) {
		GElf_Sym s;
		const char *name;
		int r;

		if (!gelf_getsym(data, (int)i, &s) || s.st_shndx == SHN_UNDEF || s.st_name == 0)
			continue;
		name = elf_strptr(elf, sh.sh_link, s.st_name);
		if (!name)
			continue;
		r = fn(ctx, name, &s, dyn);
		if (r)
			return r;
	}
	return 0;
}

struct find_ctx {
	const char *name;
	struct elf_sym *out;
};

static void to_elf_sym(const GElf_Sym *s, bool dyn, struct elf_sym *out)
{
	out->value = s->st_value;
	out->size = s->st_size;
	out->type = GELF_ST_TYPE(s->st_info);
	out->bind = GELF_ST_BIND(s->st_info);
	out->from_dynsym = dyn;
}

static int find_cb(void *ctx, const char *name, const GElf_Sym *s, bool dyn)
{
	struct find_ctx *f = ctx;
	unsigned type = GELF_ST_TYPE(s->st_info);

	if (strcmp(name, f->name) != 0 || type == STT_SECTION || type == STT_FILE)
		return 0;
	to_elf_sym(s, dyn, f->out);
	return 1;
}

int elf_file_symbol(const struct elf_file *ef, const char *name, struct elf_sym *out)
{
	struct find_ctx f = { name, out };

	if (walk_symtab(ef, ef->symtab_idx, false, find_cb, &f))
		return 0;
	return elf_file_dynsym(ef, name, out);
}

int elf_file_dynsym(const struct elf_file *ef, const char *name, struct elf_sym *out)
{
	struct find_ctx f = { name, out };

	return walk_symtab(ef, ef->dynsym_idx, true, find_cb, &f) ? 0 : -ENOENT;
}

struct each_ctx {
	int (*fn)(void *ctx, const char *name, const struct elf_sym *sym);
	void *ctx;
};

static int each_cb(void *ctx, const char *name, const GElf_Sym *s, bool dyn)
{
	struct each_ctx *e = ctx;
	unsigned type = GELF_ST_TYPE(s->st_info);
	struct elf_sym sym;

	if ((type != STT_FUNC && type != STT_OBJECT) || s->st_size == 0)
		return 0;
	to_elf_sym(s, dyn, &sym);
	return e->fn(e->ctx, name, &sym);
}

int elf_file_foreach_symbol(const struct elf_file *ef,
			    int (*fn)(void *ctx, const char *name, const struct elf_sym *sym),
			    void *ctx)
{
	struct each_ctx e = { fn, ctx };
	int r = walk_symtab(ef, ef->symtab_idx, false, each_cb, &e);

	return r ? r : walk_symtab(ef, ef->dynsym_idx, true, each_cb, &e);
}

int elf_file_section(const struct elf_file *ef, const char *name, struct elf_section *out)
{
	Elf *elf = (Elf *)ef->elf;
	Elf_Scn *scn = NULL;
	size_t shstrndx;

	if (elf_getshdrstrndx(elf, &shstrndx) != 0)
		return -ENOENT;
	while ((scn = elf_nextscn(elf, scn)) != NULL) {
		GElf_Shdr sh;
		const char *n;

		if (!gelf_getshdr(scn, &sh) || !(n = elf_strptr(elf, shstrndx, sh.sh_name)))
			continue;
		if (strcmp(n, name) != 0)
			continue;
		if (sh.sh_type != SHT_NOBITS &&
		    (sh.sh_offset > ef->image_size || sh.sh_size > ef->image_size - sh.sh_offset))
			return -ENOENT;         /* a section outside the file is no section */
		out->addr = sh.sh_addr;
		out->offset = sh.sh_offset;
		out->size = sh.sh_size;
		out->type = sh.sh_type;
		out->flags = sh.sh_flags;
		return 0;
	}
	return -ENOENT;
}

/* The PT_LOAD segment whose memory image holds [vaddr, vaddr+len), or -1. */
static int load_for(const struct elf_file *ef, uint64_t vaddr, size_t len)
{
	for (size_t i = 0; i < ef->nloads; i++) {
		uint64_t lo = ef->loads[i].vaddr, memsz = ef->load_memsz[i];

		if (vaddr >= lo && vaddr - lo <= memsz && len <= memsz - (vaddr - lo))
			return (int)i;
	}
	return -1;
}

const uint8_t *elf_file_bytes(const struct elf_file *ef, uint64_t vaddr, size_t len)
{
	int i = load_for(ef, vaddr, len);

	if (i < 0)
		return NULL;
	uint64_t rel = vaddr - ef->loads[i].vaddr;
	if (rel > ef->loads[i].filesz || len > ef->loads[i].filesz - rel)
		return NULL;
	return ef->image + ef->loads[i].offset + rel;
}

int elf_file_read(const struct elf_file *ef, uint64_t vaddr, void *buf, size_t len)
{
	int i = load_for(ef, vaddr, len);

	if (i < 0)
		return -EFAULT;
	uint64_t rel = vaddr - ef->loads[i].vaddr, filesz = ef->loads[i].filesz;
	size_t from_file = 0;

	if (rel < filesz)
		from_file = (size_t)(filesz - rel < len ? filesz - rel : len);
	if (from_file)
		memcpy(buf, ef->image + ef->loads[i].offset + rel, from_file);
	memset((uint8_t *)buf + from_file, 0, len - from_file);
	return 0;
}

int elf_file_vaddr_to_offset(const struct elf_file *ef, uint64_t vaddr, uint64_t *offset)
{
	for (size_t i = 0; i < ef->nloads; i++) {
		const struct procmaps_segment *s = &ef->loads[i];

		if (vaddr >= s->vaddr && vaddr - s->vaddr < s->filesz) {
			*offset = s->offset + (vaddr - s->vaddr);
			return 0;
		}
	}
	return -EFAULT;
}

int elf_file_offset_to_vaddr(const struct elf_file *ef, uint64_t offset, uint64_t *vaddr)
{
	for (size_t i = 0; i < ef->nloads; i++) {
		const struct procmaps_segment *s = &ef->loads[i];

		if (offset >= s->offset && offset - s->offset < s->filesz) {
			*vaddr = s->vaddr + (offset - s->offset);
			return 0;
		}
	}
	return -EFAULT;
}

/* ---------------------------------------------------------------- library search */

/* Is root+path an ELF shared object for x86-64? (A 32-bit libc in a
 * multilib directory must be skipped, as ld.so does.) */
static bool usable_library(const char *root, const char *path)
{
	char full[4096];
	unsigned char hdr[20];
	int fd;
	bool ok;

	if (snprintf(full, sizeof(full), "%s%s", root, path) >= (int)sizeof(full))
		return false;
	fd = open(full, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	ok = read(fd, hdr, sizeof(hdr)) == (ssize_t)sizeof(hdr) &&
	     memcmp(hdr, ELFMAG, SELFMAG) == 0 && hdr[EI_CLASS] == ELFCLASS64 &&
	     hdr[EI_DATA] == ELFDATA2LSB && (hdr[18] | hdr[19] << 8) == EM_X86_64;
	close(fd);
	return ok;
}

/* Tries each directory of a ':'-separated list. */
static bool search_dirs(const char *list, const char *origin, const char *name,
			const char *root, char *out, size_t out_size)
{
	const char *p = list;

	while (p && *p) {
		const char *end = strchr(p, ':');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		char dir[2048];
		size_t dl = 0;

		/* Expand $ORIGIN / ${ORIGIN}; other dynamic string tokens ($LIB,
		 * $PLATFORM) are not expanded and such entries are skipped. */
		for (size_t i = 0; i < len && dl < sizeof(dir) - 1;) {
			size_t tok = 0;

			if (strncmp(p + i, "$ORIGIN", 7) == 0 && len - i >= 7)
				tok = 7;
			else if (strncmp(p + i, "${ORIGIN}", 9) == 0 && len - i >= 9)
				tok = 9;
			if (tok) {
				int n = snprintf(dir + dl, sizeof(dir) - dl, "%s", origin);

				if (n < 0 || (size_t)n >= sizeof(dir) - dl)
					goto next;
				dl += (size_t)n;
				i += tok;
			} else if (p[i] == '$') {
				goto next;
			} else {
				dir[dl++] = p[i++];
			}
		}
		dir[dl] = '\0';
		if (dl > 0 && dir[0] == '/' &&
		    snprintf(out, out_size, "%s/%s", dir, name) < (int)out_size &&
		    usable_library(root, out))
			return true;
next:
		p = end ? end + 1 : NULL;
	}
	return false;
}

/* /etc/ld.so.cache, format "glibc-ld.so.cache1.1" (glibc >= 2.32 writes only
 * this one). Every offset is checked against the file size. */
static bool search_ld_cache(const char *name, const char *root, char *out, size_t out_size)
{
	static const char magic[] = "glibc-ld.so.cache1.1";
	const size_t hdr_size = 48, ent_size = 24;
	char path[4096];
	bool found = false;
	struct stat st;
	uint8_t *buf = NULL;
	int fd;

	if (snprintf(path, sizeof(path), "%s/etc/ld.so.cache", root) >= (int)sizeof(path))
		return false;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	if (fstat(fd, &st) != 0 || st.st_size < (off_t)hdr_size || st.st_size > (64 << 20))
		goto out;
	size_t size = (size_t)st.st_size;
	buf = malloc(size + 1);
	if (!buf || read(fd, buf, size) != (ssize_t)size)
		goto out;
	buf[size] = '\0';               /* every string read below ends by then */
	if (memcmp(buf, magic, sizeof(magic) - 1) != 0)
		goto out;
	uint32_t nlibs;
	memcpy(&nlibs, buf + 20, 4);
	if (nlibs > (size - hdr_size) / ent_size)
		goto out;
	for (uint32_t i = 0; i < nlibs && !found; i++) {
		const uint8_t *e = buf + hdr_size + (size_t)i * ent_size;
		int32_t flags;
		uint32_t key, value;

		memcpy(&flags, e, 4);
		memcpy(&key, e + 4, 4);
		memcpy(&value, e + 8, 4);
		/* FLAG_ELF_LIBC6 (3) | FLAG_X8664_LIB64 (0x300) */
		if ((flags & 0xff) != 3 || (flags & 0xff00) != 0x300 || key >= size || value >= size)
			continue;
		if (strcmp((const char *)buf + key, name) != 0)
			continue;
		if (snprintf(out, out_size, "%s", (const char *)buf + value) < (int)out_size &&
		    usable_library(root, out))
			found = true;
	}
out:
	free(buf);
	close(fd);
	return found;
}

int elf_resolve_library(const struct elf_file *ef, const char *origin_dir, const char *name,
			const char *root, const char *ld_library_path,
			char *out, size_t out_size, struct tm_error *err)
{
	static const char defaults[] =
		"/lib/x86_64-linux-gnu:/usr/lib/x86_64-linux-gnu:/lib64:/usr/lib64:/lib:/usr/lib";

	if (strchr(name, '/')) {
		if (snprintf(out, out_size, "%s", name) < (int)out_size && usable_library(root, out))
			return 0;
		goto fail;
	}
	if (ef && !ef->runpath && ef->rpath &&
	    search_dirs(ef->rpath, origin_dir, name, root, out, out_size))
		return 0;
	if (ld_library_path && search_dirs(ld_library_path, origin_dir, name, root, out, out_size))
		return 0;
	if (ef && ef->runpath && search_dirs(ef->runpath, origin_dir, name, root, out, out_size))
		return 0;
	if (search_ld_cache(name, root, out, out_size))
		return 0;
	if (search_dirs(defaults, origin_dir, name, root, out, out_size))
		return 0;
fail:
	tm_error_set(err, "cannot find library %s (searched %s%s%s, ld.so.cache and the default "
		     "directories)", name, ef && ef->rpath ? "RPATH " : "",
		     ef && ef->runpath ? "RUNPATH " : "", ld_library_path ? "LD_LIBRARY_PATH" : "");
	return -ENOENT;
}

/* ---------------------------------------------------------------- relocations */

int elf_file_foreach_rela(const struct elf_file *ef,
			  int (*fn)(void *ctx, uint64_t offset, uint32_t type, uint64_t sym_value,
				    bool sym_defined, int64_t addend),
			  void *ctx)
{
	Elf *elf = (Elf *)ef->elf;
	Elf_Scn *scn = NULL;

	while ((scn = elf_nextscn(elf, scn)) != NULL) {
		GElf_Shdr sh, symsh;
		Elf_Data *data, *symdata = NULL;
		Elf_Scn *symscn;

		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_RELA || sh.sh_entsize == 0)
			continue;
		data = elf_getdata(scn, NULL);
		if (!data)
			continue;
		if (sh.sh_link && (symscn = elf_getscn(elf, sh.sh_link)) && gelf_getshdr(symscn, &symsh))
			symdata = elf_getdata(symscn, NULL);
		size_t n = data->d_size / sizeof(Elf64_Rela);
		for (size_t i = 0; i < n; i++) {
			GElf_Rela r;
			GElf_Sym s;
			uint64_t value = 0;
			bool defined = false;
			int ret;

			if (!gelf_getrela(data, (int)i, &r))
				break;
			size_t symi = GELF_R_SYM(r.r_info);
			if (symi && symdata && gelf_getsym(symdata, (int)symi, &s) && s.st_shndx != SHN_UNDEF) {
				value = s.st_value;
				defined = true;
			}
			ret = fn(ctx, r.r_offset, (uint32_t)GELF_R_TYPE(r.r_info), value, defined, r.r_addend);
			if (ret)
				return ret;
		}
	}
	return 0;
}

struct ptr_ctx {
	uint64_t vaddr;
	uint64_t value;
	int status;                     /* 1 found, -ENOENT undefined symbol */
};

static int ptr_cb(void *ctx, uint64_t offset, uint32_t type, uint64_t sym_value, bool defined,
		  int64_t addend)
{
	struct ptr_ctx *p = ctx;

	if (offset != p->vaddr)
		return 0;
	if (type == R_X86_64_RELATIVE) {
		p->value = (uint64_t)addend;
		p->status = 1;
	} else if (type == R_X86_64_64 || type == R_X86_64_GLOB_DAT) {
		p->value = sym_value + (uint64_t)addend;
		p->status = defined ? 1 : -ENOENT;
	} else {
		p->status = -ENOENT;
	}
	return 1;
}

int elf_file_pointer_at(const struct elf_file *ef, uint64_t vaddr, uint64_t *value)
{
	struct ptr_ctx p = { .vaddr = vaddr };

	elf_file_foreach_rela(ef, ptr_cb, &p);
	if (p.status == 1) {
		*value = p.value;
		return 0;
	}
	if (p.status < 0)
		return p.status;
	return elf_file_read(ef, vaddr, value, sizeof(*value));
}

/* ---------------------------------------------------------------- function starts */

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

int elf_file_function_starts(const struct elf_file *ef, uint64_t **starts, size_t *n)
{
	struct elf_section hdr;
	const uint8_t *p;
	uint32_t count;

	*starts = NULL;
	*n = 0;
	if (elf_file_section(ef, ".eh_frame_hdr", &hdr) != 0 || hdr.size < 12 ||
	    !(p = elf_file_bytes(ef, hdr.addr, hdr.size)))
		return -ENOENT;
	/* version 1; eh_frame_ptr pcrel|sdata4 (0x1b); fde_count udata4 (0x03);
	 * table datarel|sdata4 (0x3b): what GNU ld and lld write. */
	if (p[0] != 1 || p[1] != 0x1b || p[2] != 0x03 || p[3] != 0x3b)
		return -ENOENT;
	memcpy(&count, p + 8, 4);
	if (count > (hdr.size - 12) / 8)
		return -ENOENT;
	uint64_t *v = malloc((count ? count : 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (uint32_t i = 0; i < count; i++) {
		int32_t rel;

		memcpy(&rel, p + 12 + 8 * (size_t)i, 4);
		v[i] = hdr.addr + (uint64_t)(int64_t)rel;
	}
	/* The table is sorted by definition; sort anyway rather than trust it. */
	qsort(v, count, sizeof(*v), cmp_u64);
	*starts = v;
	*n = count;
	return 0;
}
