// SPDX-License-Identifier: MIT
/*
 * tmbpf run [OPTION...] -- CMD [ARG...]: starts CMD with the probes already in
 * place, so every allocation from its first one is seen (what PYTHONTRACEMALLOC
 * gives), writes a snapshot when the interpreter finalises (and every
 * --interval), prints tracemalloc's "display top" report, and exits with CMD's
 * exit status.
 *
 * The child waits on a pipe until the uprobes (perf events bound to its PID,
 * which survive exec) are attached; only then does it exec CMD.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli_trace.h"
#include "tracer/bpf_util.h"

static const char run_doc[] =
	"Run CMD (a CPython 3.8-3.13 program) with its allocations traced from the "
	"start, as PYTHONTRACEMALLOC would, but from outside: write a snapshot when "
	"the interpreter finalises and print the top lines by size."
	"\v"
	"The exact tier (default) puts uprobes on the functions CPython's allocator "
	"domains call; it sees what tracemalloc sees, at a cost per allocation "
	"(a debugging tool). On LTO builds that inline the allocator (Debian's "
	"python3), CMD runs with PYTHONMALLOC=malloc so that every object and memory "
	"domain call reaches a probed function; tmbpf says so. --growth traces memory "
	"growth from tracepoints instead, with no trap in CMD.\n"
	"\n"
	"Examples:\n"
	"  tmbpf run -- python3 app.py\n"
	"  tmbpf run --nframe 25 -o leak.tmbpf --interval 10 -- python3 server.py\n"
	"  tmbpf diff leak.1.tmbpf leak.3.tmbpf      # what grew between two snapshots\n"
	"\n"
	"Exit status: CMD's, or 128+N if it died of signal N; 127 if it could not be "
	"started; 1 or 2 for tmbpf's own runtime or usage errors (one line on stderr).";

static const struct argp_option run_options[] = {
	CLI_HELP_OPTION,
	{ 0 },
};

static const struct argp_option *const run_tables[] = {
	cli_trace_options, cli_analysis_options, run_options, NULL,
};

static int run_parse_opt(int key, char *arg, void *ctx)
{
	int r = cli_trace_parse_opt(ctx, key, arg);

	if (r == 1) {
		cli_err("run: unexpected option");
		return -1;
	}
	return r;
}

static const struct cli_spec run_spec = {
	.name = "run",
	.args_doc = "-- CMD [ARG...]",
	.doc = run_doc,
	.options = run_tables,
	.min_args = 1,
	.max_args = INT_MAX,
	.options_first = true,
	.parse_opt = run_parse_opt,
};

/* execvp()'s search: the path CMD will run as, or -1 after cli_err(). */
static int find_program(const char *name, char *out, size_t outsz)
{
	const char *path = getenv("PATH");
	struct stat st;

	if (strchr(name, '/')) {
		if (stat(name, &st)) {
			cli_err("cannot run '%s': %s", name, strerror(errno));
			return -1;
		}
		if (!S_ISREG(st.st_mode)) {
			cli_err("cannot run '%s': %s", name,
				S_ISDIR(st.st_mode) ? strerror(EISDIR) : "not a regular file");
			return -1;
		}
		snprintf(out, outsz, "%s", name);
		return 0;
	}
	if (!path)
		path = "/usr/local/bin:/usr/bin:/bin";
	while (*path) {
		size_t len = strcspn(path, ":");

		if (snprintf(out, outsz, "%.*s/%s", (int)len, len ? path : ".", name) < (int)outsz &&
		    !stat(out, &st) && S_ISREG(st.st_mode) && !access(out, X_OK))
			return 0;
		path += len + (path[len] == ':');
	}
	cli_err("cannot run '%s': not found in PATH", name);
	return -1;
}

/* The interpreter that will run prog: prog itself, or its "#!" line's. */
static int find_interpreter(const char *prog, char *out, size_t outsz)
{
	char line[PATH_MAX + 64], *p, *word;
	FILE *f = fopen(prog, "r");

	if (!f) {
		cli_err("cannot run '%s': %s", prog, strerror(errno));
		return -1;
	}
	if (!fgets(line, sizeof(line), f) || strncmp(line, "#!", 2)) {
		fclose(f);
		snprintf(out, outsz, "%s", prog);
		return 0;
	}
	fclose(f);
	p = line + 2;
	p[strcspn(p, "\n")] = '\0';
	word = strtok(p, " \t");
	if (!word) {
		cli_err("cannot run '%s': empty #! line", prog);
		return -1;
	}
	if (!strcmp(word, "/usr/bin/env") || !strcmp(word, "/bin/env")) {
		word = strtok(NULL, " \t");
		while (word && word[0] == '-')
			word = strtok(NULL, " \t");
		if (!word) {
			cli_err("cannot run '%s': its #! line names no program", prog);
			return -1;
		}
		return find_program(word, out, outsz);
	}
	snprintf(out, outsz, "%s", word);
	return 0;
}

static char *join_args(char **args, int n)
{
	size_t len = 1;
	char *s;

	for (int i = 0; i < n; i++)
		len += strlen(args[i]) + 1;
	s = malloc(len);
	if (!s)
		return NULL;
	s[0] = '\0';
	for (int i = 0; i < n; i++) {
		if (i)
			strcat(s, " ");
		strcat(s, args[i]);
	}
	return s;
}

static volatile sig_atomic_t forward_sig;

static void on_forward(int sig)
{
	forward_sig = sig;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Growth tier: the interpreter's load address is needed, so the process is
 * added once its interpreter is mapped (the first milliseconds of start-up
 * are not traced). */
static int add_growth_child(struct trace_cli *tc, pid_t pid, const char *command)
{
	struct tm_error err = { "" };
	double deadline = now_s() + 5;

	for (;;) {
		struct py_interp *pi = calloc(1, sizeof(*pi));
		int status;

		if (!pi) {
			cli_err("out of memory");
			return -1;
		}
		if (py_interp_open_pid_walker(pid, pi, &err) == 0) {
			if (!cli_trace_add(tc, pid, pi, NULL, command, &err)) {
				free(pi);
				cli_err("%s", err.msg);
				return -1;
			}
			return 0;
		}
		free(pi);
		if (waitpid(pid, &status, WNOHANG) == pid || now_s() > deadline) {
			cli_err("PID %d: %s", (int)pid, err.msg);
			return -1;
		}
		usleep(1000);
	}
}

static int run_run(int argc, char **argv)
{
	struct trace_cli tc;
	struct capture_plan *plan = NULL;
	struct py_interp *pi = NULL;
	struct tm_error err = { "" };
	char prog[PATH_MAX], interp[PATH_MAX], *command = NULL;
	int sync_pipe[2] = { -1, -1 }, err_pipe[2] = { -1, -1 };
	int nargs, ret = CLI_EXIT_RUNTIME, status = 0, child_errno = 0;
	char **args;
	pid_t child = -1;
	double next_snapshot = 0;
	struct sigaction sa;

	cli_trace_init(&tc);
	ret = cli_parse(&run_spec, argc, argv, &tc, &args, &nargs);
	if (ret) {
		ret = ret == CLI_PARSE_HELP ? CLI_EXIT_OK : CLI_EXIT_USAGE;
		goto out;
	}
	ret = CLI_EXIT_USAGE;
	if (cli_trace_finish(&tc))
		goto out;
	ret = CLI_EXIT_RUNTIME;
	if (cli_trace_check_root("run"))
		goto out;
	/* a CMD that cannot be started exits 127, as when its exec fails */
	ret = 127;
	if (find_program(args[0], prog, sizeof(prog)) || find_interpreter(prog, interp, sizeof(interp)))
		goto out;
	ret = CLI_EXIT_RUNTIME;
	command = join_args(args, nargs);
	pi = calloc(1, sizeof(*pi));
	plan = calloc(1, sizeof(*plan));
	if (!command || !pi || !plan) {
		cli_err("out of memory");
		goto out;
	}
	if (py_interp_open_binary(interp, pi, &err)) {
		cli_err("%s", err.msg);
		goto out;
	}
	if (!tc.growth) {
		if (capture_plan_for_run(pi, getenv("PYTHONMALLOC"), tc.reattribute, plan, &err)) {
			cli_err("%s", err.msg);
			goto out;
		}
		if (plan->set_pythonmalloc)
			fprintf(stderr, "tmbpf: %s is an LTO build that inlines its allocator; running "
				"CMD with PYTHONMALLOC=%s so that allocations reach the probes\n",
				pi->host_path, plan->set_pythonmalloc);
	}
	if (cli_trace_open(&tc, NULL, NULL))
		goto out;
	if (pipe2(sync_pipe, O_CLOEXEC) || pipe2(err_pipe, O_CLOEXEC)) {
		cli_err("cannot create a pipe: %s", strerror(errno));
		goto out;
	}
	fflush(NULL);
	child = fork();
	if (child < 0) {
		cli_err("cannot fork: %s", strerror(errno));
		goto out;
	}
	if (child == 0) {
		char go;
		int e;

		close(sync_pipe[1]);
		close(err_pipe[0]);
		if (read(sync_pipe[0], &go, 1) != 1)
			_exit(127);             /* tmbpf gave up before the start */
		if (plan->set_pythonmalloc)
			setenv("PYTHONMALLOC", plan->set_pythonmalloc, 1);
		execv(prog, args);
		e = errno;
		(void)!write(err_pipe[1], &e, sizeof(e));
		_exit(127);
	}
	close(sync_pipe[0]);
	sync_pipe[0] = -1;
	close(err_pipe[1]);
	err_pipe[1] = -1;
	if (!tc.growth) {
		struct py_interp *mine = malloc(sizeof(*mine));

		if (!mine || (*mine = *pi, !cli_trace_add(&tc, child, mine, plan, command, &err))) {
			cli_err("%s", mine ? err.msg : "out of memory");
			free(mine);
			kill(child, SIGKILL);
			waitpid(child, NULL, 0);
			child = -1;
			goto out;
		}
	}
	/* Ctrl-C reaches CMD through the terminal; tmbpf waits for it to end */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_IGN;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGQUIT, &sa, NULL);
	sa.sa_handler = on_forward;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	if (write(sync_pipe[1], "x", 1) != 1) {
		cli_err("cannot start CMD: %s", strerror(errno));
		goto out;
	}
	close(sync_pipe[1]);
	sync_pipe[1] = -1;
	if (read(err_pipe[0], &child_errno, sizeof(child_errno)) == sizeof(child_errno)) {
		cli_err("cannot run '%s': %s", prog, strerror(child_errno));
		waitpid(child, NULL, 0);
		child = -1;
		ret = 127;
		goto out;
	}
	if (tc.growth && add_growth_child(&tc, child, command))
		goto wait_child;
	if (tc.interval > 0)
		next_snapshot = now_s() + tc.interval;
	for (;;) {
		pid_t w;

		if (forward_sig) {
			kill(child, forward_sig);
			forward_sig = 0;
		}
		if (cli_trace_poll(&tc, 100) < 0 && errno != EINTR) {
			cli_err("reading BPF events failed: %s", strerror(errno));
			break;
		}
		w = waitpid(child, &status, WNOHANG);
		if (w == child) {
			child = -1;
			break;
		}
		if (tc.interval > 0 && now_s() >= next_snapshot && tc.nprocs &&
		    !(tc.exact && exact_tracer_finalized(tc.exact, tc.procs[0]->pid))) {
			struct tm_snapshot *s = cli_trace_snapshot_to_file(&tc, tc.procs[0]);

			tm_snapshot_free(s);
			next_snapshot += tc.interval;
		}
	}
wait_child:
	if (child > 0 && waitpid(child, &status, 0) == child)
		child = -1;
	for (size_t i = 0; i < tc.nprocs; i++)
		tc.procs[i]->exited = true;
	ret = cli_trace_finish_all(&tc) ? CLI_EXIT_RUNTIME :
	      WIFEXITED(status) ? WEXITSTATUS(status) :
	      WIFSIGNALED(status) ? 128 + WTERMSIG(status) : CLI_EXIT_RUNTIME;
out:
	if (child > 0) {
		kill(child, SIGKILL);
		waitpid(child, NULL, 0);
	}
	for (int i = 0; i < 2; i++) {
		if (sync_pipe[i] >= 0)
			close(sync_pipe[i]);
		if (err_pipe[i] >= 0)
			close(err_pipe[i]);
	}
	cli_trace_destroy(&tc);
	free(pi);
	free(plan);
	free(command);
	return ret;
}

const struct cli_command cli_cmd_run = {
	.name = "run",
	.summary = "Run a Python program with its allocations traced from the start",
	.run = run_run,
};
