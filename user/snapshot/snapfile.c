// SPDX-License-Identifier: MIT
/*
 * Snapshot files: which format a file is in, loading a path or a buffer, and
 * the atomic creation every tmbpf writer uses. The formats themselves are in
 * native.c, pickle_read.c and pickle_write.c.
 */
#include "snapshot/snapfile.h"
#include "snapshot/snapfile_priv.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- format detection ---------------------------------------------------------- */

static bool is_name_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '.';
}

/*
 * Native files start with their magic (a file shorter than it that matches it
 * is a truncated native file). Pickles of protocol 2 and later start with
 * PROTO; a Snapshot pickled with protocol 0 or 1 starts with GLOBAL
 * "copy_reg\n_reconstructor\n". Anything else is not a snapshot, which
 * gives a clearer message than running a text file as pickle opcodes.
 */
enum tm_file_format tm_detect_format(const void *data, size_t len)
{
	const unsigned char *p = data;
	size_t i;

	if (len == 0)
		return TM_FORMAT_UNKNOWN;
	if (memcmp(p, TM_NATIVE_MAGIC, len < TM_NATIVE_MAGIC_LEN ? len : TM_NATIVE_MAGIC_LEN) == 0)
		return TM_FORMAT_NATIVE;
	if (p[0] == PK_OP_PROTO)
		return TM_FORMAT_PICKLE;
	if (p[0] == PK_OP_GLOBAL) {
		for (i = 1; i < len && i < 256 && p[i] != '\n'; i++)
			if (!is_name_char(p[i]))
				return TM_FORMAT_UNKNOWN;
		if (i > 1 && (i == len || p[i] == '\n'))
			return TM_FORMAT_PICKLE;
	}
	return TM_FORMAT_UNKNOWN;
}

/* ---- loading --------------------------------------------------------------------- */

int tm_input_read(const struct tm_input *in, uint64_t off, void *buf, size_t n,
		  struct tm_error *err)
{
	size_t done = 0;

	if (off > in->size || n > in->size - off) {
		/* the loaders check lengths against the size first: a bug if reached */
		tm_error_set(err, "internal error: read of %zu bytes at %" PRIu64 " past the end "
			     "(%" PRIu64 " bytes)", n, off, in->size);
		return -1;
	}
	while (done < n) {
		size_t want = n - done;
		ssize_t got;

		if (in->max_read && want > in->max_read)
			want = in->max_read;
		if (in->fd < 0) {
			memcpy((char *)buf + done, (const char *)in->mem + off + done, want);
			got = (ssize_t)want;
		} else {
			got = pread(in->fd, (char *)buf + done, want, (off_t)(off + done));
			if (got < 0 && errno == EINTR)
				continue;
			if (got < 0) {
				tm_error_set(err, "cannot read: %s", strerror(errno));
				return -1;
			}
			if (got == 0) {
				tm_error_set(err, "cannot read: the file was shortened while being "
					     "read (%" PRIu64 " bytes instead of %" PRIu64 ")",
					     off + done, in->size);
				return -1;
			}
		}
		done += (size_t)got;
	}
	return 0;
}

struct tm_snapshot *tm_snapshot_load_input(const struct tm_input *in, unsigned flags,
					   struct tm_error *err)
{
	/* tm_detect_format() looks at most this far */
	unsigned char head[256];
	size_t n = in->size < sizeof(head) ? (size_t)in->size : sizeof(head);

	if (in->size == 0) {
		tm_error_set(err, "empty file (not a snapshot)");
		return NULL;
	}
	if (tm_input_read(in, 0, head, n, err))
		return NULL;
	switch (tm_detect_format(head, n)) {
	case TM_FORMAT_NATIVE:
		return tm_native_load_input(in, flags, err);
	case TM_FORMAT_PICKLE:
		return tm_pickle_load_input(in, flags, err);
	default:
		tm_error_set(err, "not a snapshot (neither a tmbpf native file nor a pickle)");
		return NULL;
	}
}

struct tm_snapshot *tm_snapshot_load_mem_opts(const void *data, size_t len, unsigned flags,
					      struct tm_error *err)
{
	struct tm_input in = { .fd = -1, .mem = data, .size = len };

	return tm_snapshot_load_input(&in, flags, err);
}

struct tm_snapshot *tm_snapshot_load_mem(const void *data, size_t len, struct tm_error *err)
{
	return tm_snapshot_load_mem_opts(data, len, 0, err);
}

/* Reads all of fd; 0, or -1 with errno set. */
static int read_all(int fd, size_t hint, char **out, size_t *outlen)
{
	size_t cap = hint ? hint + 1 : 65536, len = 0;
	char *buf = malloc(cap), *p;

	if (!buf)
		return -1;
	for (;;) {
		ssize_t n;

		if (len == cap) {
			if (cap > SIZE_MAX / 2 || !(p = realloc(buf, cap * 2))) {
				free(buf);
				errno = ENOMEM;
				return -1;
			}
			buf = p;
			cap *= 2;
		}
		n = read(fd, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;

			free(buf);
			errno = e;
			return -1;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	*out = buf;
	*outlen = len;
	return 0;
}

/*
 * A regular file is read where it is with pread (the loaders read it table
 * by table or through a window: never the whole file at once); anything else
 * (a pipe, /dev/stdin, a /proc file whose size says 0) is read whole first.
 * Not an mmap: a file truncated by someone else while mapped would kill us
 * with SIGBUS instead of giving an error.
 */
struct tm_snapshot *tm_snapshot_load_opts(const char *path, unsigned flags, struct tm_error *err)
{
	struct tm_snapshot *s;
	struct tm_error why;
	struct stat st;
	char *data = NULL;
	size_t len;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		tm_error_set(err, "%s: cannot open: %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) != 0) {
		tm_error_set(err, "%s: cannot read: %s", path, strerror(errno));
		close(fd);
		return NULL;
	}
	if (S_ISDIR(st.st_mode)) {
		close(fd);
		tm_error_set(err, "%s: is a directory, not a snapshot file", path);
		return NULL;
	}
	if (S_ISREG(st.st_mode) && st.st_size > 0) {
		struct tm_input in = { .fd = fd, .size = (uint64_t)st.st_size };

		posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
		s = tm_snapshot_load_input(&in, flags, &why);
	} else if (read_all(fd, 0, &data, &len)) {
		tm_error_set(err, "%s: cannot read: %s", path, strerror(errno));
		close(fd);
		return NULL;
	} else {
		s = tm_snapshot_load_mem_opts(data, len, flags, &why);
		free(data);
	}
	close(fd);
	if (!s)
		tm_error_set(err, "%s: %s", path, why.msg);
	return s;
}

struct tm_snapshot *tm_snapshot_load(const char *path, struct tm_error *err)
{
	return tm_snapshot_load_opts(path, 0, err);
}

/* ---- atomic files ---------------------------------------------------------------- */

/* The process umask, read without changing it (umask() would, for every
 * thread) from /proc; 022 if that is not available. */
static mode_t current_umask(void)
{
	FILE *f = fopen("/proc/self/status", "re");
	char line[256];
	unsigned mask = 022;

	if (!f)
		return 022;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Umask: %o", &mask) == 1)
			break;
	fclose(f);
	return (mode_t)mask & 0777;
}

/*
 * The temporary file is ".NAME.tmp-XXXXXX" next to NAME, so that rename() is
 * atomic (same filesystem). It gets the mode the final file would get from
 * fopen(): an existing file's mode, else 0666 minus the umask.
 */
int tm_atomic_open(struct tm_atomic_file *af, const char *path, struct tm_error *err)
{
	const char *slash = strrchr(path, '/');
	const char *base = slash ? slash + 1 : path;
	int dir_len = (int)(base - path), fd;
	struct stat st;
	mode_t mode;

	memset(af, 0, sizeof(*af));
	if (!*base) {
		tm_error_set(err, "%s: is a directory, not a file name", path);
		return -1;
	}
	if (strlen(base) > 200)
		base += strlen(base) - 200;     /* keep the temporary name short */
	if (asprintf(&af->tmp_path, "%.*s.%s.tmp-XXXXXX", dir_len, path, base) < 0) {
		af->tmp_path = NULL;
		tm_error_set(err, "%s: out of memory", path);
		return -1;
	}
	af->path = strdup(path);
	if (!af->path) {
		tm_error_set(err, "%s: out of memory", path);
		goto fail;
	}
	fd = mkostemp(af->tmp_path, O_CLOEXEC);
	if (fd < 0) {
		tm_error_set(err, "%s: cannot create a temporary file next to it: %s", path,
			     strerror(errno));
		goto fail;
	}
	mode = stat(path, &st) == 0 && S_ISREG(st.st_mode) ? st.st_mode & 07777
							   : 0666 & ~current_umask();
	if (fchmod(fd, mode) != 0 || !(af->fp = fdopen(fd, "wb"))) {
		tm_error_set(err, "%s: cannot write a temporary file: %s", path, strerror(errno));
		close(fd);
		unlink(af->tmp_path);
		goto fail;
	}
	/* snapshots are written in large pieces; a big buffer saves syscalls */
	setvbuf(af->fp, NULL, _IOFBF, 1 << 20);
	return 0;
fail:
	free(af->path);
	free(af->tmp_path);
	memset(af, 0, sizeof(*af));
	return -1;
}

static void atomic_release(struct tm_atomic_file *af)
{
	free(af->path);
	free(af->tmp_path);
	memset(af, 0, sizeof(*af));
}

int tm_atomic_commit(struct tm_atomic_file *af, struct tm_error *err)
{
	const char *what = "cannot write";
	int e = 0, dfd;
	char *dir, *slash;

	if (fflush(af->fp) != 0 || ferror(af->fp))
		e = errno ? errno : EIO;
	else if (fsync(fileno(af->fp)) != 0)
		e = errno;
	if (fclose(af->fp) != 0 && !e)
		e = errno;
	af->fp = NULL;
	if (!e && rename(af->tmp_path, af->path) != 0) {
		e = errno;
		what = "cannot replace";
	}
	if (e) {
		tm_error_set(err, "%s: %s: %s", af->path, what, strerror(e));
		unlink(af->tmp_path);
		atomic_release(af);
		return -1;
	}
	/* make the rename itself durable (best effort: the file is complete) */
	dir = strdup(af->path);
	if (dir) {
		slash = strrchr(dir, '/');
		if (slash)
			slash[1] = '\0';
		dfd = open(slash ? dir : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd >= 0) {
			fsync(dfd);
			close(dfd);
		}
		free(dir);
	}
	atomic_release(af);
	return 0;
}

void tm_atomic_abort(struct tm_atomic_file *af)
{
	if (af->fp)
		fclose(af->fp);
	if (af->tmp_path)
		unlink(af->tmp_path);
	atomic_release(af);
}

/* ---- comparison ------------------------------------------------------------------ */

bool tm_snapshot_same_traces(const struct tm_snapshot *a, const struct tm_snapshot *b,
			     bool with_address, bool none_is_nframe, char *why, size_t why_size)
{
	uint64_t i;

	if (a->ntraces != b->ntraces) {
		snprintf(why, why_size, "%" PRIu64 " traces vs %" PRIu64, a->ntraces, b->ntraces);
		return false;
	}
	if (a->traceback_limit != b->traceback_limit) {
		snprintf(why, why_size, "traceback_limit %u vs %u", a->traceback_limit,
			 b->traceback_limit);
		return false;
	}
	for (i = 0; i < a->ntraces; i++) {
		const struct tm_trace *ta = &a->traces[i], *tb = &b->traces[i];
		const struct tm_traceback *ba = &a->tracebacks[ta->traceback];
		const struct tm_traceback *bb = &b->tracebacks[tb->traceback];
		const tm_id *fa = tm_traceback_frames(a, ta->traceback);
		const tm_id *fb = tm_traceback_frames(b, tb->traceback);
		uint32_t total = ba->total_nframe, k;

		if (none_is_nframe && total == TM_TOTAL_NFRAME_NONE)
			total = ba->nframe;
		if (ta->domain != tb->domain || ta->size != tb->size ||
		    tm_trace_count(a, i) != tm_trace_count(b, i) ||
		    (with_address && ta->address != tb->address) || ba->nframe != bb->nframe ||
		    total != bb->total_nframe) {
			snprintf(why, why_size, "trace %" PRIu64 ": (domain %u, size %" PRIu64
				 ", %" PRIu64 " blocks, address %#" PRIx64 ", %u frames, total %u) "
				 "vs (%u, %" PRIu64 ", %" PRIu64 ", %#" PRIx64 ", %u, %u)", i,
				 ta->domain, ta->size, tm_trace_count(a, i), ta->address, ba->nframe,
				 total, tb->domain, tb->size, tm_trace_count(b, i), tb->address,
				 bb->nframe, bb->total_nframe);
			return false;
		}
		for (k = 0; k < ba->nframe; k++) {
			const struct tm_frame *xa = &a->frames[fa[k]], *xb = &b->frames[fb[k]];
			struct tm_str sa = tm_string(a, xa->filename), sb = tm_string(b, xb->filename);

			if (xa->lineno != xb->lineno || sa.len != sb.len ||
			    memcmp(sa.data, sb.data, sa.len) != 0) {
				snprintf(why, why_size, "trace %" PRIu64 " frame %u: %.*s:%u vs %.*s:%u",
					 i, k, (int)(sa.len > 80 ? 80 : sa.len), sa.data, xa->lineno,
					 (int)(sb.len > 80 ? 80 : sb.len), sb.data, xb->lineno);
				return false;
			}
		}
	}
	return true;
}

/* Sums per (traceback by value, domain): sorted entries of one snapshot. */
struct sum_entry {
	const struct tm_snapshot *s;
	uint64_t trace;         /* its first trace */
	uint32_t domain;        /* 0 when domains are ignored */
	uint64_t size, count;
};

/* Traceback of trace ta of a vs trace tb of b, by value (frames, then
 * total_nframe), then domain. */
static int sum_entry_cmp(const struct sum_entry *x, const struct sum_entry *y)
{
	const struct tm_snapshot *a = x->s, *b = y->s;
	tm_id ia = a->traces[x->trace].traceback, ib = b->traces[y->trace].traceback;
	const struct tm_traceback *ta = &a->tracebacks[ia], *tb = &b->tracebacks[ib];
	const tm_id *fa = tm_traceback_frames(a, ia), *fb = tm_traceback_frames(b, ib);
	uint32_t k;

	if (ta->nframe != tb->nframe)
		return ta->nframe < tb->nframe ? -1 : 1;
	for (k = 0; k < ta->nframe; k++) {
		const struct tm_frame *xa = &a->frames[fa[k]], *xb = &b->frames[fb[k]];
		int c = tm_str_cmp(tm_string(a, xa->filename), tm_string(b, xb->filename));

		if (c)
			return c;
		if (xa->lineno != xb->lineno)
			return xa->lineno < xb->lineno ? -1 : 1;
	}
	if (ta->total_nframe != tb->total_nframe)
		return ta->total_nframe < tb->total_nframe ? -1 : 1;
	if (x->domain != y->domain)
		return x->domain < y->domain ? -1 : 1;
	return 0;
}

static int sum_entry_qsort(const void *p, const void *q)
{
	return sum_entry_cmp(p, q);
}

/* The merged, sorted sums of s; NULL on allocation failure. */
static struct sum_entry *sum_entries(const struct tm_snapshot *s, bool no_domains, size_t *n)
{
	struct sum_entry *e = malloc((s->ntraces ? s->ntraces : 1) * sizeof(*e));
	size_t i, k = 0;

	if (!e)
		return NULL;
	for (i = 0; i < s->ntraces; i++)
		e[i] = (struct sum_entry){ s, i, no_domains ? 0 : s->traces[i].domain,
					   s->traces[i].size, tm_trace_count(s, i) };
	qsort(e, s->ntraces, sizeof(*e), sum_entry_qsort);
	for (i = 0; i < s->ntraces; i++) {
		if (k && !sum_entry_cmp(&e[k - 1], &e[i])) {
			e[k - 1].size += e[i].size;
			e[k - 1].count += e[i].count;
		} else {
			e[k++] = e[i];
		}
	}
	*n = k;
	return e;
}

bool tm_snapshot_same_sums(const struct tm_snapshot *a, const struct tm_snapshot *b,
			   bool no_domains, char *why, size_t why_size)
{
	struct sum_entry *ea, *eb;
	size_t na = 0, nb = 0, i;
	bool same = false;

	if (a->traceback_limit != b->traceback_limit) {
		snprintf(why, why_size, "traceback_limit %u vs %u", a->traceback_limit,
			 b->traceback_limit);
		return false;
	}
	ea = sum_entries(a, no_domains, &na);
	eb = sum_entries(b, no_domains, &nb);
	if (!ea || !eb) {
		snprintf(why, why_size, "out of memory");
		goto out;
	}
	for (i = 0; i < na && i < nb; i++) {
		if (sum_entry_cmp(&ea[i], &eb[i]) || ea[i].size != eb[i].size ||
		    ea[i].count != eb[i].count) {
			snprintf(why, why_size, "sum %zu: domain %u, %" PRIu64 " bytes in %" PRIu64
				 " blocks (trace %" PRIu64 ") vs domain %u, %" PRIu64 " in %" PRIu64
				 " (trace %" PRIu64 ")", i, ea[i].domain, ea[i].size, ea[i].count,
				 ea[i].trace, eb[i].domain, eb[i].size, eb[i].count, eb[i].trace);
			goto out;
		}
	}
	if (na != nb) {
		snprintf(why, why_size, "%zu (traceback, domain) sums vs %zu", na, nb);
		goto out;
	}
	same = true;
out:
	free(ea);
	free(eb);
	return same;
}
