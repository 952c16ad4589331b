// SPDX-License-Identifier: MIT
/*
 * uprobe-floor: runs CMD with empty BPF programs on given uprobe points, the
 * floor against which scripts/bench-overhead measures the exact tier.
 *
 *   uprobe-floor [--count FILE] --probe BINARY:OFFSET[:entry|:both|:return]... -- CMD [ARG...]
 *
 * It starts CMD the way `tmbpf run` does (user/cli/cmd_run.c): fork; the child
 * waits on a pipe; the parent attaches one perf-event uprobe per point bound
 * to the child's PID (return probe first, then entry, each with a BPF cookie,
 * as user/tracer/exact_tracer.c attaches), then lets the child exec CMD. So
 * the only difference from `tmbpf run` in the traced process is what the BPF
 * programs do (bpf/floor.bpf.c: nothing).
 *
 * --count FILE loads the counting variant instead and, when CMD has exited,
 * writes one line per probe: "ENTRY_HITS RETURN_HITS BINARY:OFFSET" (-1 where
 * the point has no such probe). FILE is replaced atomically. Each SIGUSR1
 * meanwhile writes the counts so far to FILE.1, FILE.2, ... (the benchmark
 * marks the start and the end of a workload's loop that way).
 *
 * Exit status: CMD's (128+N if it died of signal N), 127 if it could not be
 * started, 1 on an error of this program, 2 on a usage error; errors are one
 * line on stderr.
 *
 * A benchmark tool, built by `make build/bench/uprobe-floor`; it needs root.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "floor.skel.h"

#define MAX_PROBES 64                   /* FLOOR_MAX_COUNTERS / 2 in bpf/floor.bpf.c */

struct probe_point {
	char *binary;
	uint64_t offset;
	bool entry, ret;
};

static const char *prog_name = "uprobe-floor";

static void die(int status, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", prog_name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(status);
}

/* Our own messages name what failed, with errno: one line per error. */
static int libbpf_quiet(enum libbpf_print_level level, const char *fmt, va_list args)
{
	(void)level;
	(void)fmt;
	(void)args;
	return 0;
}

/* BINARY:OFFSET[:entry|:both|:return]; the binary may itself contain ':'. */
static void parse_probe(const char *spec, struct probe_point *p)
{
	char *s = strdup(spec), *colon, *end;

	if (!s)
		die(1, "out of memory");
	p->entry = true;
	p->ret = false;
	colon = strrchr(s, ':');
	if (colon && (!strcmp(colon, ":entry") || !strcmp(colon, ":both") ||
		      !strcmp(colon, ":return"))) {
		p->entry = strcmp(colon, ":return") != 0;
		p->ret = strcmp(colon, ":entry") != 0;
		*colon = '\0';
		colon = strrchr(s, ':');
	}
	if (!colon || colon == s)
		die(2, "invalid probe '%s' (BINARY:OFFSET[:entry|:both|:return])", spec);
	errno = 0;
	p->offset = strtoull(colon + 1, &end, 0);
	if (!colon[1] || *end || errno)
		die(2, "invalid offset in probe '%s'", spec);
	*colon = '\0';
	p->binary = s;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: %s [--count FILE] --probe BINARY:OFFSET[:entry|:both|:return]... "
		"-- CMD [ARG...]\n", prog_name);
}

static void attach(struct floor_bpf *skel, pid_t pid, const struct probe_point *p,
		   size_t index, bool retprobe, struct bpf_link **out)
{
	LIBBPF_OPTS(bpf_uprobe_opts, uo);
	struct bpf_program *prog = retprobe ? skel->progs.floor_return : skel->progs.floor_entry;

	uo.retprobe = retprobe;
	uo.bpf_cookie = 2 * index + (retprobe ? 1 : 0);
	*out = bpf_program__attach_uprobe_opts(prog, pid, p->binary, p->offset, &uo);
	if (!*out)
		die(1, "cannot attach a %s to %s:0x%" PRIx64 ": %s",
		    retprobe ? "uretprobe" : "uprobe", p->binary, p->offset, strerror(errno));
}

/* Sum of one per-CPU counter. */
static uint64_t counter(struct floor_bpf *skel, uint32_t slot)
{
	int ncpu = libbpf_num_possible_cpus();
	uint64_t *v, total = 0;

	if (ncpu <= 0)
		die(1, "cannot count the possible CPUs");
	v = calloc((size_t)ncpu, sizeof(*v));
	if (!v)
		die(1, "out of memory");
	if (bpf_map__lookup_elem(skel->maps.hits, &slot, sizeof(slot), v,
				 sizeof(*v) * (size_t)ncpu, 0))
		die(1, "cannot read the hit counters: %s", strerror(errno));
	for (int i = 0; i < ncpu; i++)
		total += v[i];
	free(v);
	return total;
}

static void write_counts(struct floor_bpf *skel, const struct probe_point *probes, size_t n,
			 const char *path)
{
	char *tmp = NULL;
	FILE *f;

	if (asprintf(&tmp, "%s.tmp.%d", path, (int)getpid()) < 0)
		die(1, "out of memory");
	f = fopen(tmp, "w");
	if (!f)
		die(1, "cannot write %s: %s", tmp, strerror(errno));
	for (size_t i = 0; i < n; i++) {
		int64_t e = probes[i].entry ? (int64_t)counter(skel, 2 * (uint32_t)i) : -1;
		int64_t r = probes[i].ret ? (int64_t)counter(skel, 2 * (uint32_t)i + 1) : -1;

		fprintf(f, "%" PRId64 " %" PRId64 " %s:0x%" PRIx64 "\n", e, r, probes[i].binary,
			probes[i].offset);
	}
	if (fflush(f) || ferror(f) || fsync(fileno(f)) || fclose(f)) {
		unlink(tmp);
		die(1, "cannot write %s: %s", tmp, strerror(errno));
	}
	if (rename(tmp, path)) {
		int e = errno;

		unlink(tmp);
		die(1, "cannot rename %s to %s: %s", tmp, path, strerror(e));
	}
	free(tmp);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "count", required_argument, NULL, 'c' },
		{ "probe", required_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct probe_point probes[MAX_PROBES];
	struct bpf_link *links[2 * MAX_PROBES];
	size_t nprobes = 0, nlinks = 0;
	const char *count_path = NULL;
	int sync_pipe[2], err_pipe[2], status, child_errno, c;
	struct floor_bpf *skel;
	sigset_t waited, old_mask;
	pid_t child;

	while ((c = getopt_long(argc, argv, "+c:p:h", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			count_path = optarg;
			break;
		case 'p':
			if (nprobes == MAX_PROBES)
				die(2, "too many probes (at most %d)", MAX_PROBES);
			parse_probe(optarg, &probes[nprobes++]);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind >= argc || !nprobes) {
		usage(stderr);
		return 2;
	}
	if (geteuid() != 0)
		die(1, "needs root (BPF programs and uprobes)");
	libbpf_set_print(libbpf_quiet);

	skel = floor_bpf__open();
	if (!skel)
		die(1, "cannot open the BPF object: %s", strerror(errno));
	skel->rodata->count_hits = count_path != NULL;
	if (floor_bpf__load(skel))
		die(1, "cannot load the BPF programs: %s", strerror(errno));

	if (pipe2(sync_pipe, O_CLOEXEC) || pipe2(err_pipe, O_CLOEXEC))
		die(1, "cannot create a pipe: %s", strerror(errno));
	/* the end of the child and mark requests are taken synchronously */
	sigemptyset(&waited);
	sigaddset(&waited, SIGCHLD);
	sigaddset(&waited, SIGUSR1);
	sigprocmask(SIG_BLOCK, &waited, &old_mask);
	fflush(NULL);
	child = fork();
	if (child < 0)
		die(1, "cannot fork: %s", strerror(errno));
	if (child == 0) {
		char go;
		int e;

		close(sync_pipe[1]);
		close(err_pipe[0]);
		sigprocmask(SIG_SETMASK, &old_mask, NULL);
		if (read(sync_pipe[0], &go, 1) != 1)
			_exit(127);             /* the parent gave up before the start */
		execvp(argv[optind], argv + optind);
		e = errno;
		(void)!write(err_pipe[1], &e, sizeof(e));
		_exit(127);
	}
	close(sync_pipe[0]);
	close(err_pipe[1]);
	for (size_t i = 0; i < nprobes; i++) {
		/* return probe first, as the exact tier attaches */
		if (probes[i].ret)
			attach(skel, child, &probes[i], i, true, &links[nlinks++]);
		if (probes[i].entry)
			attach(skel, child, &probes[i], i, false, &links[nlinks++]);
	}
	/* the child's terminal signals reach it directly; wait for its end */
	signal(SIGINT, SIG_IGN);
	signal(SIGQUIT, SIG_IGN);
	if (write(sync_pipe[1], "x", 1) != 1)
		die(1, "cannot start CMD: %s", strerror(errno));
	close(sync_pipe[1]);
	if (read(err_pipe[0], &child_errno, sizeof(child_errno)) == sizeof(child_errno)) {
		waitpid(child, NULL, 0);
		fprintf(stderr, "%s: cannot run '%s': %s\n", prog_name, argv[optind],
			strerror(child_errno));
		return 127;
	}
	close(err_pipe[0]);
	for (unsigned marks = 0;;) {
		siginfo_t si;
		char *mark_path = NULL;

		if (sigwaitinfo(&waited, &si) < 0) {
			if (errno == EINTR)
				continue;
			die(1, "sigwaitinfo: %s", strerror(errno));
		}
		if (si.si_signo == SIGUSR1) {
			if (!count_path)
				continue;
			if (asprintf(&mark_path, "%s.%u", count_path, ++marks) < 0)
				die(1, "out of memory");
			write_counts(skel, probes, nprobes, mark_path);
			free(mark_path);
			continue;
		}
		if (waitpid(child, &status, WNOHANG) == child)
			break;
	}
	if (count_path)
		write_counts(skel, probes, nprobes, count_path);
	for (size_t i = 0; i < nlinks; i++)
		bpf_link__destroy(links[i]);
	floor_bpf__destroy(skel);
	for (size_t i = 0; i < nprobes; i++)
		free(probes[i].binary);
	return WIFEXITED(status) ? WEXITSTATUS(status) :
	       WIFSIGNALED(status) ? 128 + WTERMSIG(status) : 1;
}
