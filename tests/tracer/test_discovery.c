// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Interpreter discovery against live interpreters: every supported CPython on
 * this machine is started on tests/py/disc_target.py, which prints from the
 * inside (ctypes) what our code must find from the outside: version,
 * _PyRuntime, PyCode_Type, its own thread state, pthread_self(), the
 * allocator tables and its Python stack. Offsets are also checked against
 * gdb's reading of each libpython's DWARF, the decoder against objdump.
 *
 * Needs root (reading another process's memory). Interpreters that are not
 * installed are skipped with a warning naming them.
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "live_python.h"
#include "tracer/elfinfo.h"
#include "tracer/glibc_tsd.h"
#include "tracer/pycode.h"
#include "tracer/pyinterp.h"
#include "tracer/remote.h"
#include "tracer/x86dec.h"

/* The first line starting with "key ", or NULL. */
static const char *fact(const struct disc_proc *p, const char *key)
{
	size_t kl = strlen(key);

	for (size_t i = 0; i < p->nlines; i++)
		if (strncmp(p->lines[i], key, kl) == 0 && p->lines[i][kl] == ' ')
			return p->lines[i] + kl + 1;
	return NULL;
}

static uint64_t fact_hex(const struct disc_proc *p, const char *key)
{
	const char *v = fact(p, key);

	cr_assert_not_null(v, "target did not print %s", key);
	return strtoull(v, NULL, 16);
}

static char script_path[] = "tests/py/disc_target.py";

/* ---------------------------------------------------------------- user-space frame walk */

/* What the BPF walker does, written out here against remote reads, to check
 * that the offsets it will be given walk the real chain. */
struct walked {
	uint64_t code;
	int32_t addr;
};

static size_t walk_frames(struct remote *mem, const struct py_interp *pi, uint64_t tstate,
			  struct walked *out, size_t max)
{
	const struct py_offsets *o = &pi->off;
	uint64_t f = 0;
	size_t n = 0;

	if (o->layout == PY_LAYOUT_FRAMEOBJ_38 || o->layout == PY_LAYOUT_FRAMEOBJ_310) {
		cr_assert_eq(remote_read_u64(mem, tstate + o->ts_frame, &f), 0);
		while (f && n < max) {
			int32_t lasti;

			cr_assert_eq(remote_read_u64(mem, f + o->f_code, &out[n].code), 0);
			cr_assert_eq(remote_read_s32(mem, f + o->f_lasti, &lasti), 0);
			out[n].addr = o->layout == PY_LAYOUT_FRAMEOBJ_38 ? lasti : 2 * lasti;
			n++;
			cr_assert_eq(remote_read_u64(mem, f + o->f_back, &f), 0);
		}
		return n;
	}
	if (o->layout == PY_LAYOUT_INTERP_313) {
		cr_assert_eq(remote_read_u64(mem, tstate + o->ts_frame, &f), 0);
	} else {
		uint64_t cframe;

		cr_assert_eq(remote_read_u64(mem, tstate + o->ts_frame, &cframe), 0);
		cr_assert_eq(remote_read_u64(mem, cframe + o->cframe_current_frame, &f), 0);
	}
	for (int guard = 0; f && n < max && guard < 1000; guard++) {
		uint8_t owner;
		uint64_t code, instr;
		int32_t first;

		cr_assert_eq(remote_read(mem, f + o->f_owner, &owner, 1), 0);
		cr_assert_eq(remote_read_u64(mem, f + o->f_code, &code), 0);
		cr_assert_eq(remote_read_u64(mem, f + o->f_lasti, &instr), 0);
		if (!(o->layout == PY_LAYOUT_INTERP_313 && owner == PY_OWNED_BY_CSTACK)) {
			uint64_t start = code + o->co_code_adaptive;

			cr_assert_eq(remote_read_s32(mem, code + o->co_firsttraceable, &first), 0);
			if (owner == PY_OWNED_BY_GENERATOR || instr >= start + 2 * (uint64_t)first) {
				out[n].code = code;
				out[n].addr = (int32_t)(instr - start);
				n++;
			}
		}
		cr_assert_eq(remote_read_u64(mem, f + o->f_back, &f), 0);
	}
	return n;
}

/* ---------------------------------------------------------------- live discovery */

static void check_allocators(const struct disc_proc *p, const struct py_allocator live[3])
{
	for (int d = 0; d < 3; d++) {
		const char *v = NULL;
		unsigned dom;
		unsigned long long e[5];

		for (size_t i = 0; i < p->nlines && !v; i++)
			if (sscanf(p->lines[i], "alloc %u %llx %llx %llx %llx %llx", &dom, &e[0], &e[1], &e[2],
				   &e[3], &e[4]) == 6 && dom == (unsigned)d)
				v = p->lines[i];
		cr_assert_not_null(v, "no allocator line for domain %d", d);
		const uint64_t *got = &live[d].ctx;
		for (int s = 0; s < 5; s++)
			cr_expect_eq(got[s], e[s], "domain %d slot %d: read %#llx, PyMem_GetAllocator says %#llx",
				     d, s, (unsigned long long)got[s], e[s]);
	}
}

static void live_discovery(const struct disc_python *py)
{
	char path[512];
	struct disc_proc p;
	struct tm_error err;
	static struct py_interp pi_storage;
	struct py_interp *pi = &pi_storage;
	struct remote mem;

	disc_require(py, path, sizeof(path));
	char *argv[] = { path, script_path, NULL };
	disc_spawn(&p, argv, NULL);
	disc_read_ready(&p);

	int ret = py_interp_open_pid(p.pid, pi, &err);
	cr_assert_eq(ret, 0, "%s: %s", py->name, err.msg);
	remote_init(&mem, p.pid);

	/* version */
	unsigned major, minor, micro;
	unsigned long hex;
	cr_assert_eq(sscanf(fact(&p, "version"), "%u %u %u %lx", &major, &minor, &micro, &hex), 4);
	cr_expect_eq(pi->major, major);
	cr_expect_eq(pi->minor, minor);
	cr_expect_eq(pi->micro, micro, "%s: micro %u, sys.version_info says %u", py->name, pi->micro, micro);
	cr_expect_eq(pi->hexversion, hex, "%s: hexversion %#x vs sys.hexversion %#lx", py->name,
		     pi->hexversion, hex);
	cr_expect_eq(pi->off.py_version, hex >> 8);
	cr_expect_eq(pi->shared_lib, py->version != NULL, "%s: shared lib %d", py->name, pi->shared_lib);
	/* addresses */
	cr_assert(pi->bias_known);
	cr_expect_eq(py_interp_addr(pi, pi->runtime_vaddr), fact_hex(&p, "runtime"),
		     "%s: _PyRuntime %#llx + bias %#llx != %#llx", py->name,
		     (unsigned long long)pi->runtime_vaddr, (unsigned long long)pi->bias,
		     (unsigned long long)fact_hex(&p, "runtime"));
	cr_expect_eq(py_interp_addr(pi, pi->code_type_vaddr), fact_hex(&p, "code_type"));
	/* TSS key through the derived offset, tstate through glibc's TSD */
	uint32_t key;
	uint64_t tstate, expect_tstate = fact_hex(&p, "tstate"), fsbase = fact_hex(&p, "pthread_self");
	cr_assert_eq(py_interp_read_tss_key(pi, &mem, &key), 0);
	cr_assert_eq(glibc_tsd_read(&pi->tsd, &mem, fsbase, key, &tstate), 0);
	cr_expect_eq(tstate, expect_tstate, "%s: tstate via TSD key %u = %#llx, "
		     "PyGILState_GetThisThreadState() = %#llx", py->name, key,
		     (unsigned long long)tstate, (unsigned long long)expect_tstate);
	/* The interpreter's thread list leads to the same thread state:
	 * thread_id is pthread_self(), native_thread_id (3.11+) the TID. */
	uint64_t rt = py_interp_addr(pi, pi->runtime_vaddr), interp, t;
	bool found_in_list = false;
	cr_assert_eq(remote_read_u64(&mem, rt + pi->uoff.rt_interp_head, &interp), 0);
	cr_assert_eq(remote_read_u64(&mem, interp + pi->uoff.is_threads_head, &t), 0);
	for (int i = 0; t && i < 64 && !found_in_list; i++) {
		uint64_t tid;

		cr_assert_eq(remote_read_u64(&mem, t + pi->uoff.ts_thread_id, &tid), 0);
		if (tid == fsbase) {
			found_in_list = true;
			cr_expect_eq(t, expect_tstate);
			if (pi->uoff.ts_native_thread_id) {
				uint64_t native;

				cr_assert_eq(remote_read_u64(&mem, t + pi->uoff.ts_native_thread_id, &native), 0);
				cr_expect_eq(native, (uint64_t)p.pid, "main thread's TID is the pid");
			}
		} else {
			cr_assert_eq(remote_read_u64(&mem, t + pi->uoff.ts_next, &t), 0);
		}
	}
	cr_expect(found_in_list, "%s: main thread not in the interpreter's thread list", py->name);
	/* allocator tables: live, and (default configuration) the static ones */
	struct py_allocator live[3], initial[3];
	cr_assert_eq(py_interp_read_allocators(pi, &mem, live), 0);
	check_allocators(&p, live);
	for (int d = 0; d < 3; d++) {
		initial[d] = pi->tables[d].initial;
		uint64_t *s = &initial[d].malloc;
		for (int k = 0; k < 4; k++)
			s[k] = py_interp_addr(pi, s[k]);
	}
	check_allocators(&p, initial);
	/* the Python stack, walked with the BPF offsets, decoded with pycode */
	struct walked w[64];
	size_t nw = walk_frames(&mem, pi, tstate, w, 64);
	struct py_code_reader rd = {
		.mem = &mem, .off = &pi->uoff,
		.code_type = py_interp_addr(pi, pi->code_type_vaddr),
		.unicode_type = py_interp_addr(pi, pi->unicode_type_vaddr),
		.bytes_type = py_interp_addr(pi, pi->bytes_type_vaddr),
	};
	size_t nf = 0;
	for (size_t i = 0; i < p.nlines; i++) {
		unsigned long long code;
		unsigned line;
		int pos;

		if (sscanf(p.lines[i], "frame %llx %u %n", &code, &line, &pos) != 2)
			continue;
		cr_assert_lt(nf, nw, "%s: walked only %zu frames", py->name, nw);
		struct py_code_info ci;
		cr_assert_eq(w[nf].code, code, "%s: frame %zu code %#llx, Python says %#llx", py->name,
			     nf, (unsigned long long)w[nf].code, code);
		cr_assert_eq(py_code_read(&rd, w[nf].code, &ci), 0);
		cr_expect_eq(py_code_lineno(&ci, pi->uoff.linetable_kind, w[nf].addr), line,
			     "%s: frame %zu line %u, Python says %u", py->name, nf,
			     py_code_lineno(&ci, pi->uoff.linetable_kind, w[nf].addr), line);
		cr_expect_str_eq(ci.filename, p.lines[i] + pos);
		py_code_info_free(&ci);
		nf++;
	}
	cr_expect_eq(nf, nw, "%s: walked %zu frames, Python has %zu", py->name, nw, nf);
	cr_log_info("%s: %s %s (version from %s), bias %#llx, _PyRuntime %#llx (%s), TSS key %u, "
		    "%zu frames walked", py->name, pi->version, pi->host_path,
		    pi->version_source == PY_VERSION_SRC_PY_VERSION ? "Py_Version" : "Py_GetVersion",
		    (unsigned long long)pi->bias, (unsigned long long)pi->runtime_vaddr, pi->runtime_how,
		    key, nw);

	/* The binary, before it runs, must give the same module and plan. */
	static struct py_interp pb_storage;
	struct py_interp *pb = &pb_storage;
	ret = py_interp_open_binary(path, pb, &err);
	cr_assert_eq(ret, 0, "%s: %s", py->name, err.msg);
	char real[PATH_MAX];
	cr_assert_not_null(realpath(pi->target_path, real));
	cr_expect_str_eq(pb->host_path, real);
	cr_expect_eq(pb->hexversion, pi->hexversion);
	cr_expect_eq(pb->runtime_vaddr, pi->runtime_vaddr);
	cr_expect_eq(memcmp(&pb->off, &pi->off, sizeof(pb->off)), 0, "%s: offsets differ", py->name);
	for (int i = 0; i < PY_FN_COUNT; i++)
		cr_expect_eq(pb->funcs[i].vaddr, pi->funcs[i].vaddr, "%s", py_func_name(i));
	for (int d = 0; d < 3; d++)
		cr_expect_eq(pb->tables[d].vaddr, pi->tables[d].vaddr);
	cr_expect_eq(pb->bias_known, false);

	remote_close(&mem);
	disc_stop(&p);
}

/* PYTHONMALLOC=malloc_debug and a running tracemalloc replace the tables'
 * contents: the live read must see the replacement. */
static void changed_allocators(const struct disc_python *py)
{
	char path[512];
	struct disc_proc p;
	struct tm_error err;
	static struct py_interp pi_storage;
	struct py_interp *pi = &pi_storage;
	struct remote mem;
	char env[] = "PYTHONMALLOC=malloc_debug";
	char *envv[] = { env, NULL };

	disc_require(py, path, sizeof(path));
	char arg[] = "tracemalloc";
	char *argv[] = { path, script_path, arg, NULL };
	disc_spawn(&p, argv, envv);
	disc_read_ready(&p);
	cr_assert_eq(py_interp_open_pid(p.pid, pi, &err), 0, "%s: %s", py->name, err.msg);
	remote_init(&mem, p.pid);
	struct py_allocator live[3];
	cr_assert_eq(py_interp_read_allocators(pi, &mem, live), 0);
	check_allocators(&p, live);
	for (int d = 0; d < 3; d++)
		cr_expect_neq(live[d].malloc, py_interp_addr(pi, pi->tables[d].initial.malloc),
			      "%s: domain %d still has its default malloc", py->name, d);
	remote_close(&mem);
	disc_stop(&p);
}

#define PER_PYTHON2(suite, prefix, fn)                                                        \
	Test(suite, prefix##_py38) { fn(&disc_pythons[0]); }                                 \
	Test(suite, prefix##_py39) { fn(&disc_pythons[1]); }                                 \
	Test(suite, prefix##_py310) { fn(&disc_pythons[2]); }                                \
	Test(suite, prefix##_py311) { fn(&disc_pythons[3]); }                                \
	Test(suite, prefix##_py312) { fn(&disc_pythons[4]); }                                \
	Test(suite, prefix##_py313) { fn(&disc_pythons[5]); }                                \
	Test(suite, prefix##_debian311) { fn(&disc_pythons[6]); }

PER_PYTHON2(discovery, live, live_discovery)
PER_PYTHON2(discovery, allocators_changed, changed_allocators)

/* ---------------------------------------------------------------- errors */

Test(discovery, bad_pid)
{
	static struct py_interp pi_storage;
	struct py_interp *pi = &pi_storage;
	struct tm_error err;
	int max;
	FILE *f = fopen("/proc/sys/kernel/pid_max", "r");

	cr_assert_not_null(f);
	cr_assert_eq(fscanf(f, "%d", &max), 1);
	fclose(f);
	cr_expect_eq(py_interp_open_pid(max + 1, pi, &err), -ESRCH);
	cr_expect_not_null(strstr(err.msg, "no process with id"), "got: %s", err.msg);
	cr_expect_eq(py_interp_open_pid(0, pi, &err), -EINVAL);
	cr_expect_not_null(strstr(err.msg, "invalid process id"), "got: %s", err.msg);
}

Test(discovery, not_python)
{
	struct disc_proc p;
	static struct py_interp pi_storage;
	struct py_interp *pi = &pi_storage;
	struct tm_error err;
	char sleep_path[] = "/bin/sleep", secs[] = "30";
	char *argv[] = { sleep_path, secs, NULL };

	disc_require(NULL, NULL, 0);
	disc_spawn(&p, argv, NULL);
	usleep(100000);                 /* let exec complete */
	cr_expect_eq(py_interp_open_pid(p.pid, pi, &err), -ENOENT);
	cr_expect_not_null(strstr(err.msg, "is not running CPython"), "got: %s", err.msg);
	cr_expect_not_null(strstr(err.msg, "(sleep)"), "got: %s", err.msg);
	kill(p.pid, SIGKILL);
	disc_stop(&p);
}

static void unsupported(const char *version, const char *exe, const char *expect)
{
	char path[512], root[256];
	static struct py_interp pi_storage;
	struct py_interp *pi = &pi_storage;
	struct tm_error err;

	disc_pyenv_root(root, sizeof(root));
	snprintf(path, sizeof(path), "%s/versions/%s/bin/%s", root, version, exe);
	if (access(path, X_OK) != 0) {
		cr_log_info("SKIPPED unsupported-version check for %s: %s is not installed", version, path);
		fprintf(stderr, "SKIPPED unsupported-version check for %s: %s is not installed\n", version, path);
		cr_skip_test("%s missing", path);
	}
	/* before it runs */
	cr_expect_eq(py_interp_open_binary(path, pi, &err), -ENOTSUP, "%s: %s", version, err.msg);
	cr_expect_not_null(strstr(err.msg, expect), "got: %s", err.msg);
	cr_expect_not_null(strstr(err.msg, "supported versions are " PY_SUPPORTED_VERSIONS), "got: %s", err.msg);
	/* running */
	if (geteuid() == 0) {
		struct disc_proc p;
		char c[] = "-c", code[] = "import sys; print('READY'); sys.stdout.flush(); sys.stdin.readline()";
		char *argv[] = { path, c, code, NULL };

		disc_spawn(&p, argv, NULL);
		disc_read_ready(&p);
		cr_expect_eq(py_interp_open_pid(p.pid, pi, &err), -ENOTSUP, "%s: %s", version, err.msg);
		cr_expect_not_null(strstr(err.msg, expect), "got: %s", err.msg);
		cr_expect_not_null(strstr(err.msg, PY_SUPPORTED_VERSIONS), "got: %s", err.msg);
		disc_stop(&p);
	}
}

Test(discovery, unsupported_37) { unsupported("3.7.16", "python3.7", "CPython 3.7.16"); }
Test(discovery, unsupported_36) { unsupported("3.6.15", "python3.6", "CPython 3.6.15"); }
Test(discovery, unsupported_27) { unsupported("2.7.18", "python2.7", "CPython 2.7.18"); }

Test(discovery, not_an_interpreter_binary)
{
	static struct py_interp pi_storage;
	struct py_interp *pi = &pi_storage;
	struct tm_error err;

	cr_expect_eq(py_interp_open_binary("/bin/sleep", pi, &err), -ENOENT);
	cr_expect_not_null(strstr(err.msg, "is not a CPython interpreter"), "got: %s", err.msg);
	cr_expect_neq(py_interp_open_binary("/nonexistent/python", pi, &err), 0);
	cr_expect_not_null(strstr(err.msg, "No such file"), "got: %s", err.msg);
}

/* ---------------------------------------------------------------- offsets vs DWARF */

static void offsets_vs_dwarf(const struct disc_python *py)
{
	char path[512], lib[600], cmd[1400], line[256];
	FILE *f;

	if (!py->version) {
		cr_log_info("debian-3.11 has no DWARF: its offsets are checked by the live walk");
		return;
	}
	disc_python_path(py, path, sizeof(path));
	snprintf(lib, sizeof(lib), "%.*s/lib/libpython3.%u.so.1.0", (int)(strstr(path, "/bin/") - path),
		 path, py->minor);
	if (access(lib, R_OK) != 0 || system("command -v gdb >/dev/null 2>&1") != 0) {
		cr_log_info("SKIPPED DWARF offset check for %s: %s or gdb missing", py->name, lib);
		fprintf(stderr, "SKIPPED DWARF offset check for %s: %s or gdb missing\n", py->name, lib);
		cr_skip_test("no gdb or library");
	}
	const struct py_version_offsets *t = pyoffsets_for_minor(py->minor);
	const struct py_offsets *b = &t->bpf;
	const struct py_user_offsets *u = &t->user;
	const struct {
		const char *name;
		uint32_t value;
	} mine[] = {
		{ "rt_tss", u->rt_tss }, { "rt_interp_head", u->rt_interp_head },
		{ "rt_interp_main", u->rt_interp_main }, { "rt_alloc_raw", u->rt_alloc_raw },
		{ "rt_alloc_mem", u->rt_alloc_mem }, { "rt_alloc_obj", u->rt_alloc_obj },
		{ "is_next", u->is_next }, { "is_threads_head", u->is_threads_head },
		{ "ts_next", u->ts_next }, { "ts_frame", b->ts_frame }, { "ts_thread_id", u->ts_thread_id },
		{ "ts_native_thread_id", u->ts_native_thread_id },
		{ "cframe_current_frame", b->cframe_current_frame }, { "f_back", b->f_back },
		{ "f_code", b->f_code }, { "f_lasti", b->f_lasti }, { "f_trace", b->f_trace },
		{ "f_lineno", b->f_lineno }, { "f_owner", b->f_owner },
		{ "co_filename", u->co_filename }, { "co_name", u->co_name },
		{ "co_qualname", u->co_qualname }, { "co_firstlineno", u->co_firstlineno },
		{ "co_linetable", u->co_linetable }, { "co_code", u->co_code },
		{ "co_firsttraceable", b->co_firsttraceable }, { "co_code_adaptive", b->co_code_adaptive },
		{ "sizeof_code", u->sizeof_code }, { "u_length", u->u_length }, { "u_state", u->u_state },
		{ "u_ascii_size", u->u_ascii_size }, { "u_compact_size", u->u_compact_size },
		{ "u_data", u->u_data }, { "b_size", u->b_size }, { "b_sval", u->b_sval },
		{ "tp_name", u->tp_name }, { "tp_flags", u->tp_flags }, { "sizeof_allocator", 40 },
		{ "u_bit_kind", 2 }, { "u_bit_compact", 5 }, { "u_bit_ascii", 6 },
		{ "u_bit_ready", u->u_has_ready ? 7 : 0 },
	};
	snprintf(cmd, sizeof(cmd), "gdb -nx -batch -x tests/py/disc_gdb_offsets.py '%s' 2>/dev/null", lib);
	f = popen(cmd, "r");
	cr_assert_not_null(f);
	size_t checked = 0;
	while (fgets(line, sizeof(line), f)) {
		char name[64], value[32];

		if (sscanf(line, "OFF %63s %31s", name, value) != 2)
			continue;
		for (size_t i = 0; i < sizeof(mine) / sizeof(mine[0]); i++) {
			if (strcmp(mine[i].name, name) != 0)
				continue;
			/* "-": no such field in this version; the table must say 0. */
			uint32_t dwarf = value[0] == '-' ? 0 : (uint32_t)strtoul(value, NULL, 10);
			cr_expect_eq(mine[i].value, dwarf, "%s: %s = %u in the table, %s in DWARF",
				     py->name, name, mine[i].value, value);
			checked++;
		}
	}
	pclose(f);
	cr_expect_eq(checked, sizeof(mine) / sizeof(mine[0]), "%s: gdb reported %zu of %zu fields",
		     py->name, checked, sizeof(mine) / sizeof(mine[0]));
	cr_log_info("%s: %zu offsets equal to gdb's reading of %s", py->name, checked, lib);
}

PER_PYTHON2(discovery, offsets_dwarf, offsets_vs_dwarf)

/* ---------------------------------------------------------------- 3.13 _Py_DebugOffsets */

Test(discovery, debug_offsets_checks)
{
	char path[512];
	static struct py_interp pi_storage;
	struct py_interp *pi = &pi_storage;
	struct tm_error err;
	struct elf_file ef;
	uint8_t raw[PY_DEBUG_OFFSETS_SIZE], bad[PY_DEBUG_OFFSETS_SIZE];

	disc_python_path(&disc_pythons[5], path, sizeof(path));
	if (access(path, X_OK) != 0) {
		cr_log_info("SKIPPED _Py_DebugOffsets checks: %s is not installed", path);
		fprintf(stderr, "SKIPPED _Py_DebugOffsets checks: %s is not installed\n", path);
		cr_skip_test("3.13 missing");
	}
	cr_assert_eq(py_interp_open_binary(path, pi, &err), 0, "%s", err.msg);
	cr_expect(pi->debug_offsets_used);
	cr_assert_eq(elf_file_open(&ef, pi->host_path, &err), 0);
	cr_assert_eq(elf_file_read(&ef, pi->runtime_vaddr, raw, sizeof(raw)), 0);
	elf_file_close(&ef);

	const struct py_version_offsets *t = pyoffsets_for_minor(13);
	struct py_offsets b = t->bpf;
	struct py_user_offsets u = t->user;
	cr_expect_eq(pyoffsets_apply_debug_offsets(raw, sizeof(raw), pi->hexversion, &b, &u, &err), 0,
		     "%s", err.msg);
	/* a field the table knows, changed */
	memcpy(bad, raw, sizeof(bad));
	bad[280] += 8;                  /* code_object.filename */
	cr_expect_eq(pyoffsets_apply_debug_offsets(bad, sizeof(bad), pi->hexversion, &b, &u, &err), -EINVAL);
	cr_expect_not_null(strstr(err.msg, "code_object.filename = 120"), "got: %s", err.msg);
	cr_expect_eq(u.co_filename, 112, "a rejected block must not change the offsets");
	/* free-threaded */
	memcpy(bad, raw, sizeof(bad));
	bad[16] = 1;
	cr_expect_eq(pyoffsets_apply_debug_offsets(bad, sizeof(bad), pi->hexversion, &b, &u, &err), -EINVAL);
	cr_expect_not_null(strstr(err.msg, "free-threaded"), "got: %s", err.msg);
	/* no cookie */
	memcpy(bad, raw, sizeof(bad));
	bad[0] = 'X';
	cr_expect_eq(pyoffsets_apply_debug_offsets(bad, sizeof(bad), pi->hexversion, &b, &u, &err), -EINVAL);
	cr_expect_not_null(strstr(err.msg, "cookie"), "got: %s", err.msg);
	/* another version */
	cr_expect_eq(pyoffsets_apply_debug_offsets(raw, sizeof(raw), 0x030c01f0, &b, &u, &err), -EINVAL);
}

/* ---------------------------------------------------------------- glibc, decoder, probes */

Test(discovery, glibc_tsd_offsets)
{
	struct glibc_tsd t;
	struct tm_error err;
	char libc[PATH_MAX];

	/* glibc 2.36 (Debian 12): objdump -d of pthread_getspecific shows
	 * add $0x31,%rax; shl $4 (0x310) and %fs:0x510(,%rax,8). */
	cr_assert_eq(elf_resolve_library(NULL, "/", "libc.so.6", "", NULL, libc, sizeof(libc), &err), 0,
		     "%s", err.msg);
	cr_assert_eq(glibc_tsd_from_file(libc, &t, &err), 0, "%s", err.msg);
	cr_expect_eq(t.first_block, 0x310);
	cr_expect_eq(t.second_level, 0x510);
	cr_expect_neq(glibc_tsd_from_file("/bin/sleep", &t, &err), 0);
	cr_expect_not_null(strstr(err.msg, "not glibc"), "got: %s", err.msg);
}

/* glibc_tsd_read must find what glibc's own pthread_getspecific returns,
 * for first-level keys and for keys >= 32 (second level). */
Test(discovery, glibc_tsd_read_self)
{
	struct glibc_tsd t;
	struct tm_error err;
	struct remote mem;
	char libc[PATH_MAX];
	pthread_key_t keys[40];
	static int values[40];

	disc_require(NULL, NULL, 0);
	cr_assert_eq(elf_resolve_library(NULL, "/", "libc.so.6", "", NULL, libc, sizeof(libc), &err), 0);
	cr_assert_eq(glibc_tsd_from_file(libc, &t, &err), 0, "%s", err.msg);
	for (int i = 0; i < 40; i++) {
		cr_assert_eq(pthread_key_create(&keys[i], NULL), 0);
		cr_assert_eq(pthread_setspecific(keys[i], &values[i]), 0);
	}
	cr_assert_geq(keys[39], 32, "need a second-level key");
	remote_init(&mem, getpid());
	for (int i = 0; i < 40; i++) {
		uint64_t v;

		cr_assert_eq(glibc_tsd_read(&t, &mem, (uint64_t)pthread_self(), keys[i], &v), 0);
		cr_expect_eq(v, (uint64_t)(uintptr_t)pthread_getspecific(keys[i]), "key %u", keys[i]);
	}
	remote_close(&mem);
}

/* Every instruction boundary and RIP-relative target in .text must match
 * objdump's disassembly. */
static void decoder_vs_objdump(const char *path, const char *label)
{
	struct elf_file ef;
	struct elf_section text;
	struct tm_error err;
	char cmd[1200], line[512];
	struct x86_insn in;

	if (access(path, R_OK) != 0 || system("command -v objdump >/dev/null 2>&1") != 0) {
		cr_log_info("SKIPPED decoder check on %s: file or objdump missing", path);
		fprintf(stderr, "SKIPPED decoder check on %s: file or objdump missing\n", path);
		cr_skip_test("missing");
	}
	cr_assert_eq(elf_file_open(&ef, path, &err), 0, "%s", err.msg);
	cr_assert_eq(elf_file_section(&ef, ".text", &text), 0);
	const uint8_t *code = elf_file_bytes(&ef, text.addr, text.size);
	cr_assert_not_null(code);
	snprintf(cmd, sizeof(cmd), "objdump -d --no-show-raw-insn -j .text '%s'", path);
	FILE *f = popen(cmd, "r");
	cr_assert_not_null(f);
	uint64_t off = 0, n = 0, rip = 0, mismatches = 0;
	while (fgets(line, sizeof(line), f)) {
		unsigned long long a;
		int pos = -1;

		if (sscanf(line, " %llx:%n", &a, &pos) != 1 || pos < 0 || line[pos] != '\t')
			continue;
		if (a != text.addr + off) {
			if (mismatches++ < 5)
				cr_log_error("%s: objdump has an instruction at %#llx, we at %#llx", label, a,
					     (unsigned long long)(text.addr + off));
			off = a - text.addr;
		}
		int len = x86_decode(code + off, text.size - off, text.addr + off, &in);
		if (len < 0) {
			if (mismatches++ < 5)
				cr_log_error("%s: cannot decode at %#llx: %s", label, a, line);
			len = 1;
		}
		/* objdump annotates RIP-relative operands with "# target". */
		char *hash = strstr(line, "# ");
		if (hash) {
			unsigned long long target = strtoull(hash + 2, NULL, 16);

			if ((in.base != X86_RIP || target != in.mem_target) && mismatches++ < 5)
				cr_log_error("%s: %#llx: RIP target %#llx, objdump %#llx", label, a,
					     (unsigned long long)in.mem_target, target);
			rip++;
		}
		off += (uint64_t)len;
		n++;
	}
	pclose(f);
	elf_file_close(&ef);
	cr_expect_eq(mismatches, 0, "%s: %llu disagreements with objdump", label,
		     (unsigned long long)mismatches);
	cr_expect_gt(n, 100000);
	cr_log_info("%s: %llu instructions, %llu RIP-relative targets, all equal to objdump's", label,
		    (unsigned long long)n, (unsigned long long)rip);
}

static void decoder_python(const struct disc_python *py)
{
	char path[512], lib[600];

	disc_python_path(py, path, sizeof(path));
	if (py->version)
		snprintf(lib, sizeof(lib), "%.*s/lib/libpython3.%u.so.1.0",
			 (int)(strstr(path, "/bin/") - path), path, py->minor);
	else
		snprintf(lib, sizeof(lib), "%s", path);
	decoder_vs_objdump(lib, py->name);
}

PER_PYTHON2(discovery, x86dec_objdump, decoder_python)

Test(discovery, x86dec_objdump_libc)
{
	char libc[PATH_MAX];
	struct tm_error err;

	cr_assert_eq(elf_resolve_library(NULL, "/", "libc.so.6", "", NULL, libc, sizeof(libc), &err), 0);
	decoder_vs_objdump(libc, "libc");   /* has AVX2/EVEX string functions */
}

Test(discovery, x86dec_uprobe_classes)
{
	static const struct {
		uint8_t bytes[8];
		int len;
		bool emulated;
	} cases[] = {
		{ { 0x55 }, 1, true },                          /* push %rbp */
		{ { 0x41, 0x56 }, 2, true },                    /* push %r14 */
		{ { 0x90 }, 1, true },                          /* nop */
		{ { 0x66, 0x90 }, 2, true },                    /* xchg %ax,%ax = prefix + nop */
		{ { 0x41, 0x90 }, 2, false },                   /* xchg %eax,%r8d: not a nop */
		{ { 0x78, 0x10 }, 2, true },                    /* js */
		{ { 0x0f, 0x84, 1, 0, 0, 0 }, 6, true },        /* je rel32 */
		{ { 0xe8, 0, 0, 0, 0 }, 5, true },              /* call rel32 */
		{ { 0xe9, 0, 0, 0, 0 }, 5, true },              /* jmp rel32 */
		{ { 0xeb, 0 }, 2, true },                       /* jmp rel8 */
		{ { 0x66, 0xe8, 0, 0 }, -1, false },            /* callw: rejected by the kernel */
		{ { 0xf3, 0x0f, 0x1e, 0xfa }, 4, false },       /* endbr64 */
		{ { 0x48, 0x89, 0xfe }, 3, false },             /* mov %rdi,%rsi */
		{ { 0x0f, 0x1f, 0x44, 0, 0 }, 5, false },       /* nopl: single-stepped */
		{ { 0xc3 }, 1, false },                         /* ret */
	};
	struct x86_insn in;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int n = x86_decode(cases[i].bytes, sizeof(cases[i].bytes), 0x1000, &in);

		if (cases[i].len > 0)
			cr_expect_eq(n, cases[i].len, "case %zu: length %d", i, n);
		cr_expect_eq(n > 0 && x86_uprobe_emulated(&in), cases[i].emulated, "case %zu", i);
	}
	/* Truncated input never reads past the end. */
	static const uint8_t movabs[10] = { 0x48, 0xb8, 1, 2, 3, 4, 5, 6, 7, 8 };
	for (size_t len = 0; len < sizeof(movabs); len++)
		cr_expect_eq(x86_decode(movabs, len, 0, &in), -1, "len %zu", len);
	cr_expect_eq(x86_decode(movabs, sizeof(movabs), 0, &in), 10);
	cr_expect_eq((uint64_t)in.imm, 0x0807060504030201ull);
}

/* The placement rules on hand-assembled functions (bytes from `as`). */
Test(discovery, x86dec_probe_rules)
{
	const uint32_t RDI = X86_REGBIT(X86_RDI), RSI = X86_REGBIT(X86_RSI);
	bool emu;
	/* mov %rdi,%rsi; test %rdi,%rdi; js +0; mov 0x70(%rax),%rax; jmp *%rax */
	static const uint8_t tail[] = { 0x48, 0x89, 0xfe, 0x48, 0x85, 0xff, 0x78, 0x00,
					0x48, 0x8b, 0x40, 0x70, 0xff, 0xe0 };
	cr_expect_eq(x86_probe_offset(tail, sizeof(tail), 0x1000, RDI, &emu), 6);
	cr_expect(emu);
	/* ...the same, but rsi is an argument: mov %rdi,%rsi clobbers it */
	cr_expect_eq(x86_probe_offset(tail, sizeof(tail), 0x1000, RDI | RSI, &emu), 0);
	cr_expect(!emu);
	/* ...jump through a register computed from an index: a jump table */
	static const uint8_t table[] = { 0x48, 0x85, 0xff, 0x78, 0x00,
					 0x48, 0x63, 0x04, 0xb8, 0x48, 0x01, 0xd0, 0xff, 0xe0 };
	cr_expect_eq(x86_probe_offset(table, sizeof(table), 0x1000, RDI, &emu), 0);
	/* ...a backward jump onto the probe (jmp -7 lands on the js at +3) */
	static const uint8_t back[] = { 0x48, 0x85, 0xff, 0x78, 0x02, 0xeb, 0xfc, 0xc3 };
	cr_expect_eq(x86_probe_offset(back, sizeof(back), 0x1000, RDI, &emu), 0);
	/* push %rbp first: offset 0 is emulated */
	static const uint8_t push[] = { 0x55, 0x48, 0x89, 0xe5, 0xc3 };
	cr_expect_eq(x86_probe_offset(push, sizeof(push), 0x1000, RDI, &emu), 0);
	cr_expect(emu);
	/* sub $8,%rsp before the branch: the return address moved */
	static const uint8_t stack[] = { 0x48, 0x83, 0xec, 0x08, 0x78, 0x00, 0xc3 };
	cr_expect_eq(x86_probe_offset(stack, sizeof(stack), 0x1000, RDI, &emu), 0);
	cr_expect(!emu);
}

/* Probe placement, against the disassembly (objdump -d):
 *   pyenv PyObject_Malloc: mov %rdi,%rsi; test %rdi,%rdi; js  -> +6
 *   pyenv PyObject_Free (3.8): mov _PyObject+0x20(%rip),%rax; ... jmp *: no
 *     emulated instruction before a control transfer -> 0, single-stepped
 *   Debian PyTraceMalloc_Track: cmpl $0,..(%rip); push %r14 -> +7
 *   Debian PyObject_Malloc: push %rbx at +0 -> 0, emulated */
Test(discovery, probe_offsets)
{
	static struct py_interp pi_storage;
	struct py_interp *pi = &pi_storage;
	struct tm_error err;
	char path[512];
	size_t checked = 0;

	for (size_t i = 0; i < disc_npythons; i++) {
		disc_python_path(&disc_pythons[i], path, sizeof(path));
		if (access(path, X_OK) != 0) {
			cr_log_info("SKIPPED probe offsets for %s: %s missing", disc_pythons[i].name, path);
			fprintf(stderr, "SKIPPED probe offsets for %s: %s missing\n", disc_pythons[i].name, path);
			continue;
		}
		cr_assert_eq(py_interp_open_binary(path, pi, &err), 0, "%s", err.msg);
		if (disc_pythons[i].version) {
			cr_expect_eq(pi->funcs[PY_FN_OBJ_MALLOC].probe_offset, 6, "%s", disc_pythons[i].name);
			cr_expect(pi->funcs[PY_FN_OBJ_MALLOC].probe_emulated);
			cr_expect(!pi->funcs[PY_FN_OBJ_MALLOC].entry_emulated);
		} else {
			cr_expect_eq(pi->funcs[PY_FN_TRACEMALLOC_TRACK].probe_offset, 7);
			cr_expect(pi->funcs[PY_FN_TRACEMALLOC_TRACK].probe_emulated);
			cr_expect_eq(pi->funcs[PY_FN_OBJ_MALLOC].probe_offset, 0);
			cr_expect(pi->funcs[PY_FN_OBJ_MALLOC].probe_emulated);
		}
		if (disc_pythons[i].minor == 8 && disc_pythons[i].version) {
			cr_expect_eq(pi->funcs[PY_FN_OBJ_FREE].probe_offset, 0);
			cr_expect(!pi->funcs[PY_FN_OBJ_FREE].probe_emulated);
		}
		/* Every probe point is inside its function and file-backed. */
		for (int f = 0; f < PY_FN_COUNT; f++)
			if (pi->funcs[f].found && pi->funcs[f].size)
				cr_expect_lt(pi->funcs[f].probe_offset, pi->funcs[f].size);
		checked++;
	}
	cr_expect_gt(checked, 0, "no interpreter available");
}

/* ---------------------------------------------------------------- inlining verdict */

/* Every count of the inlining analysis (inside and outside the expected
 * functions together) must equal what objdump's own operand resolution
 * gives (RIP-relative and absolute operands: static tables, non-PIE). */
static void crosscheck_objdump(const struct py_interp *pi, const char *path)
{
	char cmd[1024], line[128];
	unsigned long long slots = ~0ull, targets = ~0ull;
	const struct py_inline_report *r = &pi->inl;

	snprintf(cmd, sizeof(cmd),
		 "python3 tests/py/disc_objdump_refs.py '%s' %llx,%llx,%llx %llx,%llx,%llx,%llx,%llx,%llx,%llx,%llx",
		 path, (unsigned long long)pi->tables[0].vaddr, (unsigned long long)pi->tables[1].vaddr,
		 (unsigned long long)pi->tables[2].vaddr,
		 (unsigned long long)pi->tables[0].initial.malloc, (unsigned long long)pi->tables[0].initial.calloc,
		 (unsigned long long)pi->tables[0].initial.realloc, (unsigned long long)pi->tables[0].initial.free,
		 (unsigned long long)pi->tables[2].initial.malloc, (unsigned long long)pi->tables[2].initial.calloc,
		 (unsigned long long)pi->tables[2].initial.realloc, (unsigned long long)pi->tables[2].initial.free);
	FILE *f = popen(cmd, "r");
	cr_assert_not_null(f);
	while (fgets(line, sizeof(line), f)) {
		sscanf(line, "slots %llu", &slots);
		sscanf(line, "targets %llu", &targets);
	}
	pclose(f);
	uint64_t mine_slots = r->slot_refs[0] + r->slot_refs[1] + r->slot_refs[2] + r->slot_refs_inside;
	uint64_t mine_targets = r->target_imm + r->target_lea + r->target_calls + r->target_refs_inside;
	cr_expect_eq(mine_slots, slots, "%s: slot references: ours %llu, objdump %llu", path,
		     (unsigned long long)mine_slots, slots);
	cr_expect_eq(mine_targets, targets, "%s: target references: ours %llu, objdump %llu", path,
		     (unsigned long long)mine_targets, targets);
}

static void inlining(const struct disc_python *py)
{
	char path[512];
	static struct py_interp pi_storage;
	struct py_interp *pi = &pi_storage;
	struct tm_error err;

	disc_python_path(py, path, sizeof(path));
	if (access(path, X_OK) != 0) {
		cr_log_info("SKIPPED inlining verdict for %s: %s missing", py->name, path);
		fprintf(stderr, "SKIPPED inlining verdict for %s: %s missing\n", py->name, path);
		cr_skip_test("missing");
	}
	cr_assert_eq(py_interp_open_binary(path, pi, &err), 0, "%s", err.msg);
	const struct py_inline_report *r = &pi->inl;
	cr_assert(r->analyzed);
	cr_expect_eq(r->undecoded, 0);
	printf("inlining %-12s %s\n", py->name, r->verdict);
	cr_log_info("inlining %s: %s", py->name, r->verdict);
	if (py->version) {
		/* pyenv: no LTO */
		cr_expect(r->complete, "%s: %s", py->name, r->verdict);
		cr_expect_gt(r->slot_refs_inside, 0, "the public API itself must be seen using the tables");
		/* <= 3.11 tables are static: objdump resolves every reference.
		 * 3.12+ reach them through _PyRuntime's GOT entry. */
		if (py->minor <= 11) {
			char lib[600];

			snprintf(lib, sizeof(lib), "%.*s/lib/libpython3.%u.so.1.0",
				 (int)(strstr(path, "/bin/") - path), path, py->minor);
			crosscheck_objdump(pi, lib);
		}
	} else {
		cr_expect(!r->complete, "%s: %s", py->name, r->verdict);
		crosscheck_objdump(pi, path);
		/* cpython-internals.md §B.7: ~168 loads of _PyObject.malloc alone,
		 * ~191 guards against &_PyObject_Malloc: far more than the API. */
		cr_expect_gt(r->slot_refs[2], 168);
		cr_expect_gt(r->target_imm, 191);
	}
}

PER_PYTHON2(discovery, inlining, inlining)

/* gdb embeds Debian's shared libpython3.11 (found through DT_NEEDED and
 * ld.so.cache): a stripped PIE library, built without the executable's
 * allocator inlining. */
Test(discovery, embedded_libpython_gdb)
{
	static struct py_interp pi;
	struct tm_error err;

	if (access("/usr/bin/gdb", X_OK) != 0) {
		cr_log_info("SKIPPED embedded-interpreter check: /usr/bin/gdb missing");
		fprintf(stderr, "SKIPPED embedded-interpreter check: /usr/bin/gdb missing\n");
		cr_skip_test("no gdb");
	}
	cr_assert_eq(py_interp_open_binary("/usr/bin/gdb", &pi, &err), 0, "%s", err.msg);
	cr_expect(pi.shared_lib);
	cr_expect_not_null(strstr(pi.host_path, "libpython3."), "%s", pi.host_path);
	cr_expect_eq(pi.version_source, PY_VERSION_SRC_PY_VERSION);
	cr_expect_str_eq(pi.tables[2].how, "RIP-relative operand of PyObject_Malloc");
	printf("inlining %-12s %s\n", "gdb-libpy", pi.inl.verdict);
	cr_expect(pi.inl.complete, "%s", pi.inl.verdict);
	crosscheck_objdump(&pi, pi.host_path);
}
