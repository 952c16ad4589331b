// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* /proc/PID/maps parsing and load-bias computation: see procmaps.h. */
#include "tracer/procmaps.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

static const char *errno_text(int e)
{
	return strerror(e < 0 ? -e : e);
}

/* Parses "HEX" up to a terminator; advances *p. */
static bool parse_hex(const char **p, uint64_t *out)
{
	const char *s = *p;
	uint64_t v = 0;
	int digits = 0;

	for (;; s++, digits++) {
		int d;

		if (*s >= '0' && *s <= '9')
			d = *s - '0';
		else if (*s >= 'a' && *s <= 'f')
			d = *s - 'a' + 10;
		else if (*s >= 'A' && *s <= 'F')
			d = *s - 'A' + 10;
		else
			break;
		if (digits >= 16)
			return false;
		v = v << 4 | (uint64_t)d;
	}
	if (digits == 0)
		return false;
	*out = v;
	*p = s;
	return true;
}

static bool parse_dec(const char **p, uint64_t *out)
{
	const char *s = *p;
	uint64_t v = 0;
	int digits = 0;

	for (; *s >= '0' && *s <= '9'; s++, digits++) {
		if (v > (UINT64_MAX - 9) / 10)
			return false;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	if (digits == 0)
		return false;
	*out = v;
	*p = s;
	return true;
}

static bool expect(const char **p, char c)
{
	if (**p != c)
		return false;
	(*p)++;
	return true;
}

bool procmaps_parse_line(const char *s, struct procmaps_entry *e)
{
	uint64_t major, minor;
	const char *perm;

	memset(e, 0, sizeof(*e));
	if (!parse_hex(&s, &e->start) || !expect(&s, '-') || !parse_hex(&s, &e->end) ||
	    !expect(&s, ' '))
		return false;
	perm = s;
	for (int i = 0; i < 4; i++)
		if (perm[i] == '\0')
			return false;
	if (perm[0] == 'r')
		e->perms |= PROCMAPS_R;
	if (perm[1] == 'w')
		e->perms |= PROCMAPS_W;
	if (perm[2] == 'x')
		e->perms |= PROCMAPS_X;
	if (perm[3] == 'p')
		e->perms |= PROCMAPS_P;
	s += 4;
	if (!expect(&s, ' ') || !parse_hex(&s, &e->offset) || !expect(&s, ' ') ||
	    !parse_hex(&s, &major) || !expect(&s, ':') || !parse_hex(&s, &minor) ||
	    !expect(&s, ' ') || !parse_dec(&s, &e->inode))
		return false;
	if (e->end <= e->start || major > UINT32_MAX || minor > UINT32_MAX)
		return false;
	e->dev_major = (uint32_t)major;
	e->dev_minor = (uint32_t)minor;
	while (*s == ' ')
		s++;
	size_t len = strlen(s);
	static const char deleted[] = " (deleted)";
	if (len >= sizeof(deleted) - 1 && strcmp(s + len - (sizeof(deleted) - 1), deleted) == 0) {
		e->deleted = true;
		len -= sizeof(deleted) - 1;
	}
	e->path = strndup(s, len);
	return e->path != NULL;
}

int procmaps_read(pid_t pid, struct procmaps *m, struct tm_error *err)
{
	char path[64], *line = NULL;
	size_t cap = 0;
	FILE *f;
	int ret = 0;

	memset(m, 0, sizeof(*m));
	m->pid = pid;
	if (pid <= 0) {
		tm_error_set(err, "invalid process id %d", (int)pid);
		return -EINVAL;
	}
	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	f = fopen(path, "re");
	if (!f) {
		ret = -errno;
		if (ret == -ENOENT)
			tm_error_set(err, "no process with id %d", (int)pid);
		else
			tm_error_set(err, "cannot read %s: %s", path, errno_text(ret));
		return ret == -ENOENT ? -ESRCH : ret;
	}
	line = malloc(PROCMAPS_MAX_LINE + 2);
	if (!line) {
		ret = -ENOMEM;
		tm_error_set(err, "out of memory reading %s", path);
		goto out;
	}
	while (fgets(line, PROCMAPS_MAX_LINE + 2, f)) {
		size_t len = strlen(line);
		struct procmaps_entry e;

		if (len > 0 && line[len - 1] == '\n')
			line[--len] = '\0';
		else if (!feof(f)) {
			ret = -EINVAL;
			tm_error_set(err, "%s: line %zu longer than %d bytes", path, m->n + 1,
				     PROCMAPS_MAX_LINE);
			goto out;
		}
		if (!procmaps_parse_line(line, &e)) {
			ret = -EINVAL;
			tm_error_set(err, "%s: malformed line %zu", path, m->n + 1);
			goto out;
		}
		if (m->n == cap) {
			size_t ncap = cap ? cap * 2 : 64;
			struct procmaps_entry *nv;

			if (ncap > PROCMAPS_MAX_ENTRIES) {
				free(e.path);
				ret = -E2BIG;
				tm_error_set(err, "%s: more than %u mappings", path, PROCMAPS_MAX_ENTRIES);
				goto out;
			}
			nv = realloc(m->v, ncap * sizeof(*nv));
			if (!nv) {
				free(e.path);
				ret = -ENOMEM;
				tm_error_set(err, "out of memory reading %s", path);
				goto out;
			}
			m->v = nv;
			cap = ncap;
		}
		m->v[m->n++] = e;
	}
	if (ferror(f)) {
		ret = errno ? -errno : -EIO;
		tm_error_set(err, "cannot read %s: %s", path, errno_text(ret));
		goto out;
	}
	if (m->n == 0) {
		/* A zombie or a kernel thread has no mappings at all. */
		ret = -ESRCH;
		tm_error_set(err, "process %d has no memory mappings (exited, zombie or kernel thread)",
			     (int)pid);
	}
out:
	free(line);
	fclose(f);
	if (ret)
		procmaps_free(m);
	return ret;
}

void procmaps_free(struct procmaps *m)
{
	for (size_t i = 0; i < m->n; i++)
		free(m->v[i].path);
	free(m->v);
	m->v = NULL;
	m->n = 0;
}

const struct procmaps_entry *procmaps_find_addr(const struct procmaps *m, uint64_t addr)
{
	/* maps is sorted by address: binary search. */
	size_t lo = 0, hi = m->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (addr < m->v[mid].start)
			hi = mid;
		else if (addr >= m->v[mid].end)
			lo = mid + 1;
		else
			return &m->v[mid];
	}
	return NULL;
}

const struct procmaps_entry *procmaps_find_file(const struct procmaps *m, const char *path)
{
	for (size_t i = 0; i < m->n; i++)
		if (strcmp(m->v[i].path, path) == 0)
			return &m->v[i];
	return NULL;
}

int procmaps_host_path(pid_t pid, const char *target_path, char *out, size_t out_size)
{
	if (target_path[0] != '/')
		return -EINVAL;
	int n = snprintf(out, out_size, "/proc/%d/root%s", (int)pid, target_path);
	if (n < 0 || (size_t)n >= out_size)
		return -ENAMETOOLONG;
	return 0;
}

int procmaps_check_file(const struct procmaps_entry *e, const char *host_path, struct tm_error *err)
{
	struct stat st;

	if (stat(host_path, &st) != 0) {
		int ret = -errno;

		tm_error_set(err, "cannot open %s: %s", host_path, errno_text(ret));
		return ret;
	}
	if (st.st_ino != e->inode || major(st.st_dev) != e->dev_major ||
	    minor(st.st_dev) != e->dev_minor) {
		tm_error_set(err, "%s is not the file the process mapped (device/inode differ: "
			     "replaced on disk since it was loaded?)", host_path);
		return -ESTALE;
	}
	return 0;
}

/* The bias a mapping implies if it maps (part of) segment seg, or false.
 * The kernel maps a segment from the page holding p_offset; p_vaddr and
 * p_offset are congruent modulo the page size, so start - offset -
 * (p_vaddr - p_offset) is the bias for any mapping inside the segment. */
static bool bias_for(const struct procmaps_entry *e, const struct procmaps_segment *seg, uint64_t *bias)
{
	uint64_t seg_page = seg->offset & ~(uint64_t)0xfff;

	if (e->offset < seg_page || e->offset >= seg->offset + seg->filesz)
		return false;
	*bias = e->start - e->offset - (seg->vaddr - seg->offset);
	return true;
}

/* Does every mapping of path agree that b is a possible bias? */
static bool bias_fits_all(const struct procmaps *m, const char *path,
			  const struct procmaps_segment *seg, size_t nseg, uint64_t b)
{
	for (size_t i = 0; i < m->n; i++) {
		bool ok = false;

		if (strcmp(m->v[i].path, path) != 0)
			continue;
		for (size_t s = 0; s < nseg && !ok; s++) {
			uint64_t c;

			ok = bias_for(&m->v[i], &seg[s], &c) && c == b;
		}
		if (!ok)
			return false;
	}
	return true;
}

int procmaps_load_bias(const struct procmaps *m, const char *path,
		       const struct procmaps_segment *seg, size_t nseg,
		       int64_t *bias, struct tm_error *err)
{
	const struct procmaps_entry *first = procmaps_find_file(m, path);

	if (!first) {
		tm_error_set(err, "%s is not mapped in process %d", path, (int)m->pid);
		return -ENOENT;
	}
	/* A page can belong to two segments (the end of one and the start of
	 * the next share a page in the file), so a single mapping may suggest
	 * two biases: keep the one every mapping of the file agrees with. */
	for (size_t s = 0; s < nseg; s++) {
		uint64_t b;

		if (bias_for(first, &seg[s], &b) && bias_fits_all(m, path, seg, nseg, b)) {
			*bias = (int64_t)b;
			return 0;
		}
	}
	tm_error_set(err, "%s: its mappings in process %d do not match its PT_LOAD segments "
		     "with a single load bias", path, (int)m->pid);
	return -EINVAL;
}
