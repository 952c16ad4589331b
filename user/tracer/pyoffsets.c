// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* CPython structure offsets per version: see pyoffsets.h. */
#include "tracer/pyoffsets.h"

#include <errno.h>
#include <string.h>

/* Unicode, bytes and object header: identical 3.8 - 3.11, and 3.12 - 3.13
 * (3.12 removed wstr and the "ready" bit). */
#define UNICODE_38 \
	.u_length = 16, .u_state = 32, .u_ascii_size = 48, .u_compact_size = 72, \
	.u_data = 72, .u_has_ready = true
#define UNICODE_312 \
	.u_length = 16, .u_state = 32, .u_ascii_size = 40, .u_compact_size = 56, \
	.u_data = 56, .u_has_ready = false
#define COMMON .ob_type = 8, .tp_name = 24, .tp_flags = 168, .b_size = 16, .b_sval = 32, .ts_next = 8

static const struct py_version_offsets tables[] = {
	{
		.minor = 8,
		.bpf = {
			.layout = PY_LAYOUT_FRAMEOBJ_38,
			.rt_tss_initialized = 1392, .rt_tss_key = 1396,
			.ts_frame = 24,
			.f_back = 24, .f_code = 32, .f_lasti = 104, .f_trace = 80, .f_lineno = 108,
		},
		.user = {
			COMMON, UNICODE_38,
			.co_filename = 104, .co_name = 112, .co_firstlineno = 40,
			.co_linetable = 120, .co_code = 48, .sizeof_code = 176,
			.linetable_kind = PY_LINETABLE_LNOTAB,
			.rt_interp_head = 32, .rt_interp_main = 40, .rt_tss = 1392,
			.is_next = 0, .is_threads_head = 8, .ts_thread_id = 176,
		},
	},
	{
		.minor = 9,
		.bpf = {
			.layout = PY_LAYOUT_FRAMEOBJ_38,
			.rt_tss_initialized = 584, .rt_tss_key = 588,
			.ts_frame = 24,
			.f_back = 24, .f_code = 32, .f_lasti = 104, .f_trace = 80, .f_lineno = 108,
		},
		.user = {
			COMMON, UNICODE_38,
			.co_filename = 104, .co_name = 112, .co_firstlineno = 40,
			.co_linetable = 120, .co_code = 48, .sizeof_code = 176,
			.linetable_kind = PY_LINETABLE_LNOTAB,
			.rt_interp_head = 32, .rt_interp_main = 40, .rt_tss = 584,
			.is_next = 0, .is_threads_head = 8, .ts_thread_id = 176,
		},
	},
	{
		.minor = 10,
		.bpf = {
			.layout = PY_LAYOUT_FRAMEOBJ_310,
			.rt_tss_initialized = 584, .rt_tss_key = 588,
			.ts_frame = 24,
			.f_back = 24, .f_code = 32, .f_lasti = 96, .f_trace = 72, .f_lineno = 100,
		},
		.user = {
			COMMON, UNICODE_38,
			.co_filename = 104, .co_name = 112, .co_firstlineno = 40,
			.co_linetable = 120, .co_code = 48, .sizeof_code = 176,
			.linetable_kind = PY_LINETABLE_310,
			.rt_interp_head = 32, .rt_interp_main = 40, .rt_tss = 584,
			.is_next = 0, .is_threads_head = 8, .ts_thread_id = 176,
		},
	},
	{
		.minor = 11,
		.bpf = {
			.layout = PY_LAYOUT_INTERP_311,
			.rt_tss_initialized = 592, .rt_tss_key = 596,
			.ts_frame = 56, .cframe_current_frame = 8,
			.f_back = 48, .f_code = 32, .f_lasti = 56, .f_owner = 69,
			.co_firsttraceable = 168, .co_code_adaptive = 184,
		},
		.user = {
			COMMON, UNICODE_38,
			.co_filename = 112, .co_name = 120, .co_qualname = 128, .co_firstlineno = 72,
			.co_linetable = 136, .co_ob_size = 16, .co_code_adaptive = 184,
			.sizeof_code = 192, .linetable_kind = PY_LINETABLE_311,
			.rt_interp_head = 40, .rt_interp_main = 48, .rt_tss = 592,
			.is_next = 0, .is_threads_head = 16, .ts_thread_id = 152,
			.ts_native_thread_id = 160,
		},
	},
	{
		.minor = 12,
		.bpf = {
			.layout = PY_LAYOUT_INTERP_312,
			.rt_tss_initialized = 1544, .rt_tss_key = 1548,
			.ts_frame = 56, .cframe_current_frame = 0,
			.f_back = 8, .f_code = 0, .f_lasti = 56, .f_owner = 70,
			.co_firsttraceable = 176, .co_code_adaptive = 192,
		},
		.user = {
			COMMON, UNICODE_312,
			.co_filename = 112, .co_name = 120, .co_qualname = 128, .co_firstlineno = 68,
			.co_linetable = 136, .co_ob_size = 16, .co_code_adaptive = 192,
			.sizeof_code = 200, .linetable_kind = PY_LINETABLE_311,
			.rt_interp_head = 40, .rt_interp_main = 48, .rt_tss = 1544,
			.rt_alloc_raw = 96, .rt_alloc_mem = 136, .rt_alloc_obj = 176,
			.is_next = 0, .is_threads_head = 72, .ts_thread_id = 136,
			.ts_native_thread_id = 144,
		},
	},
	{
		.minor = 13,
		.bpf = {
			.layout = PY_LAYOUT_INTERP_313,
			.rt_tss_initialized = 2160, .rt_tss_key = 2164,
			.ts_frame = 72,
			.f_back = 8, .f_code = 0, .f_lasti = 56, .f_owner = 70,
			.co_firsttraceable = 184, .co_code_adaptive = 200,
		},
		.user = {
			COMMON, UNICODE_312,
			.co_filename = 112, .co_name = 120, .co_qualname = 128, .co_firstlineno = 68,
			.co_linetable = 136, .co_ob_size = 16, .co_code_adaptive = 200,
			.sizeof_code = 208, .linetable_kind = PY_LINETABLE_311,
			.rt_interp_head = 632, .rt_interp_main = 640, .rt_tss = 2160,
			.rt_alloc_raw = 704, .rt_alloc_mem = 744, .rt_alloc_obj = 784,
			.rt_debug_offsets = true,
			.is_next = 7264, .is_threads_head = 7344, .ts_thread_id = 152,
			.ts_native_thread_id = 160,
		},
	},
};

const struct py_version_offsets *pyoffsets_for_minor(unsigned minor)
{
	for (size_t i = 0; i < sizeof(tables) / sizeof(tables[0]); i++)
		if (tables[i].minor == minor)
			return &tables[i];
	return NULL;
}

/* Offsets of the _Py_DebugOffsets fields we use (3.13.0 layout; every field
 * is a uint64_t). */
enum {
	DO_VERSION = 8,
	DO_FREE_THREADED = 16,
	DO_RT_INTERPRETERS_HEAD = 40,
	DO_IS_NEXT = 64,
	DO_IS_THREADS_HEAD = 72,
	DO_TS_NEXT = 168,
	DO_TS_CURRENT_FRAME = 184,
	DO_TS_THREAD_ID = 192,
	DO_TS_NATIVE_THREAD_ID = 200,
	DO_IF_PREVIOUS = 232,
	DO_IF_EXECUTABLE = 240,
	DO_IF_INSTR_PTR = 248,
	DO_IF_OWNER = 264,
	DO_CO_SIZE = 272,
	DO_CO_FILENAME = 280,
	DO_CO_NAME = 288,
	DO_CO_QUALNAME = 296,
	DO_CO_LINETABLE = 304,
	DO_CO_FIRSTLINENO = 312,
	DO_CO_CODE_ADAPTIVE = 344,
	DO_OB_TYPE = 360,
	DO_TP_NAME = 376,
	DO_TP_FLAGS = 392,
	DO_BYTES_OB_SIZE = 520,
	DO_BYTES_OB_SVAL = 528,
	DO_UNICODE_STATE = 544,
	DO_UNICODE_LENGTH = 552,
	DO_UNICODE_ASCII_SIZE = 560,
};

static uint64_t get_u64(const uint8_t *raw, size_t off)
{
	uint64_t v;

	memcpy(&v, raw + off, sizeof(v));
	return v;
}

bool pyoffsets_debug_version(const uint8_t *raw, size_t len, uint64_t *version,
			     uint64_t *free_threaded)
{
	if (len < 24 || memcmp(raw, PY_DEBUG_OFFSETS_COOKIE, 8) != 0)
		return false;
	*version = get_u64(raw, DO_VERSION);
	*free_threaded = get_u64(raw, DO_FREE_THREADED);
	return true;
}

int pyoffsets_apply_debug_offsets(const uint8_t *raw, size_t len, uint32_t hexversion,
				  struct py_offsets *bpf, struct py_user_offsets *user,
				  struct tm_error *err)
{
	uint64_t version, free_threaded;

	if (len < PY_DEBUG_OFFSETS_SIZE || !pyoffsets_debug_version(raw, len, &version, &free_threaded)) {
		tm_error_set(err, "_PyRuntime does not start with _Py_DebugOffsets (cookie \"%s\" missing)",
			     PY_DEBUG_OFFSETS_COOKIE);
		return -EINVAL;
	}
	if ((version >> 16) != (hexversion >> 16)) {
		tm_error_set(err, "_Py_DebugOffsets says version %#llx, the binary says %#x",
			     (unsigned long long)version, hexversion);
		return -EINVAL;
	}
	if (free_threaded) {
		tm_error_set(err, "free-threaded CPython builds are not supported (_Py_DebugOffsets.free_threaded = 1)");
		return -EINVAL;
	}
	/* Each field: where it is in _Py_DebugOffsets and where it goes. */
	const struct {
		const char *name;
		size_t at;
		uint32_t *dst;
	} fields[] = {
		{ "runtime_state.interpreters_head", DO_RT_INTERPRETERS_HEAD, &user->rt_interp_head },
		{ "interpreter_state.next", DO_IS_NEXT, &user->is_next },
		{ "interpreter_state.threads_head", DO_IS_THREADS_HEAD, &user->is_threads_head },
		{ "thread_state.next", DO_TS_NEXT, &user->ts_next },
		{ "thread_state.current_frame", DO_TS_CURRENT_FRAME, &bpf->ts_frame },
		{ "thread_state.thread_id", DO_TS_THREAD_ID, &user->ts_thread_id },
		{ "thread_state.native_thread_id", DO_TS_NATIVE_THREAD_ID, &user->ts_native_thread_id },
		{ "interpreter_frame.previous", DO_IF_PREVIOUS, &bpf->f_back },
		{ "interpreter_frame.executable", DO_IF_EXECUTABLE, &bpf->f_code },
		{ "interpreter_frame.instr_ptr", DO_IF_INSTR_PTR, &bpf->f_lasti },
		{ "interpreter_frame.owner", DO_IF_OWNER, &bpf->f_owner },
		{ "code_object.size", DO_CO_SIZE, &user->sizeof_code },
		{ "code_object.filename", DO_CO_FILENAME, &user->co_filename },
		{ "code_object.name", DO_CO_NAME, &user->co_name },
		{ "code_object.qualname", DO_CO_QUALNAME, &user->co_qualname },
		{ "code_object.linetable", DO_CO_LINETABLE, &user->co_linetable },
		{ "code_object.firstlineno", DO_CO_FIRSTLINENO, &user->co_firstlineno },
		{ "code_object.co_code_adaptive", DO_CO_CODE_ADAPTIVE, &user->co_code_adaptive },
		{ "code_object.co_code_adaptive", DO_CO_CODE_ADAPTIVE, &bpf->co_code_adaptive },
		{ "pyobject.ob_type", DO_OB_TYPE, &user->ob_type },
		{ "type_object.tp_name", DO_TP_NAME, &user->tp_name },
		{ "type_object.tp_flags", DO_TP_FLAGS, &user->tp_flags },
		{ "bytes_object.ob_size", DO_BYTES_OB_SIZE, &user->b_size },
		{ "bytes_object.ob_sval", DO_BYTES_OB_SVAL, &user->b_sval },
		{ "unicode_object.state", DO_UNICODE_STATE, &user->u_state },
		{ "unicode_object.length", DO_UNICODE_LENGTH, &user->u_length },
		{ "unicode_object.asciiobject_size", DO_UNICODE_ASCII_SIZE, &user->u_ascii_size },
	};
	/* Check everything first, so a mismatch leaves the offsets untouched. */
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		uint64_t v = get_u64(raw, fields[i].at);

		if (v != *fields[i].dst) {
			tm_error_set(err, "_Py_DebugOffsets.%s = %llu but this CPython %u.%u build was "
				     "expected to have %u: unusual build, refusing to guess the other offsets",
				     fields[i].name, (unsigned long long)v, hexversion >> 24,
				     (hexversion >> 16) & 0xff, *fields[i].dst);
			return -EINVAL;
		}
	}
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
		*fields[i].dst = (uint32_t)get_u64(raw, fields[i].at);
	return 0;
}
