// SPDX-License-Identifier: MIT
/*
 * The pickle reader against real CPython: every interpreter present dumps
 * real and synthetic snapshots (tests/py/files_dump.py) and prints what it
 * reads back from each file; tmbpf must read exactly the same traces.
 * Then hostile and malformed pickles: each one gives its own clear error,
 * and where tmbpf claims to accept or refuse like CPython's pickle.load(),
 * CPython is asked (tests/py/files_verdict.py).
 */
#include "files_util.h"

#define DUMP_SCRIPT "tests/py/files_dump.py"
#define VERDICT_SCRIPT "tests/py/files_verdict.py"

/* ---- snapshots dumped by CPython ------------------------------------------------- */

static bool has_op(const char *ops, const char *op)
{
	size_t n = strlen(op);
	const char *p = ops;

	while ((p = strstr(p, op))) {
		if ((p == ops || p[-1] == ',') && (p[n] == ',' || p[n] == '\0' || p[n] == '\n'))
			return true;
		p += n;
	}
	return false;
}

static void check_python_dumps(size_t which)
{
	const struct files_python *py = &files_pythons[which];
	char pybuf[4096], dump_ops[2048] = "", other_ops[2048] = "";
	const char *python = files_python_path(py, pybuf, sizeof(pybuf));
	char *dir, *out, *line;
	int ncases = 0, ntraces = 0;

	if (!python)
		cr_skip_test("CPython %s is missing: its dumps are not checked", py->name);
	dir = analysis_tmpdir();
	out = files_run_python(python, DUMP_SCRIPT, (const char *const[]){ dir, NULL });
	for (line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
		char name[128], ops[1024], text_path[4096];
		struct tm_snapshot *got, *want;
		char *text;

		cr_assert_eq(sscanf(line, "case %127s %1023s", name, ops), 2, "bad line %s", line);
		/* what Snapshot.dump() itself writes vs other protocols/writers */
		strncat(strncmp(name, "proto", 5) && strncmp(name, "optimized", 9) &&
				strncmp(name, "recipe", 6) ? dump_ops : other_ops,
			ops, sizeof(dump_ops) - strlen(dump_ops) - 2);
		strcat(strncmp(name, "proto", 5) ? dump_ops : other_ops, ",");

		got = files_load(files_path(dir, strcat(strcpy(text_path, name), ".pickle")));
		text = files_read(files_path(dir, strcat(strcpy(text_path, name), ".expected")),
				  NULL);
		want = files_parse_expected(text);
		snprintf(text_path, sizeof(text_path), "CPython %s, case %s", py->name, name);
		files_assert_same(got, want, text_path);
		/* 3.8 writes 3-tuples: no total_nframe at all */
		for (uint32_t t = 0; t < got->ntracebacks && py->py38; t++)
			cr_assert_eq(got->tracebacks[t].total_nframe, TM_TOTAL_NFRAME_NONE);
		ntraces += (int)got->ntraces;
		tm_snapshot_free(got);
		tm_snapshot_free(want);
		free(text);
		ncases++;
	}
	cr_assert_geq(ncases, 20, "CPython %s: only %d cases", py->name, ncases);
	/* the dumps used every opcode a large and a small dump() has ... */
	static const char *const dump_needs[] = {
		"PROTO", "FRAME", "MEMOIZE", "BINGET", "LONG_BINGET", "STACK_GLOBAL", "NEWOBJ",
		"BUILD", "APPEND", "APPENDS", "SETITEMS", "SETITEM", "TUPLE", "TUPLE1", "TUPLE2",
		"TUPLE3", "BININT", "BININT1", "BININT2", "LONG1", "SHORT_BINUNICODE",
	};
	for (size_t i = 0; i < sizeof(dump_needs) / sizeof(dump_needs[0]); i++)
		cr_assert(has_op(dump_ops, dump_needs[i]), "CPython %s: no dump used %s (%s)",
			  py->name, dump_needs[i], dump_ops);
	/* ... and the other protocols the text and Python 2 era opcodes */
	static const char *const other_needs[] = {
		"GLOBAL", "REDUCE", "PUT", "GET", "BINPUT", "LONG_BINPUT", "INT", "LONG",
		"UNICODE", "BINUNICODE", "DICT", "LIST", "NONE",
	};
	for (size_t i = 0; i < sizeof(other_needs) / sizeof(other_needs[0]); i++)
		cr_assert(has_op(other_ops, other_needs[i]), "CPython %s: no pickle used %s (%s)",
			  py->name, other_needs[i], other_ops);
	cr_log_info("CPython %s: %d pickles, %d traces read identically", py->name, ncases,
		    ntraces);
	free(out);
	analysis_rmtree(dir);
}

Test(pickle, reads_cpython_3_8_dumps, .timeout = 120) { check_python_dumps(0); }
Test(pickle, reads_cpython_3_9_dumps, .timeout = 120) { check_python_dumps(1); }
Test(pickle, reads_cpython_3_10_dumps, .timeout = 120) { check_python_dumps(2); }
Test(pickle, reads_cpython_3_11_dumps, .timeout = 120) { check_python_dumps(3); }
Test(pickle, reads_cpython_3_12_dumps, .timeout = 120) { check_python_dumps(4); }
Test(pickle, reads_cpython_3_13_dumps, .timeout = 120) { check_python_dumps(5); }
Test(pickle, reads_debian_python3_dumps, .timeout = 120) { check_python_dumps(6); }

/* ---- hand-made pickles ------------------------------------------------------------- */

/* A protocol-4 snapshot as dump() lays it out, cut where cases differ:
 * HEAD LIST <list content> TAIL. Memo: 'a.py' is 12 in TRACE1. */
#define HEAD "\x80\x04" "\x8c\x0b" "tracemalloc\x94" "\x8c\x08" "Snapshot\x94"         \
	     "\x93\x94)\x81\x94}\x94(" "\x8c\x06" "traces\x94" "h\x00" "\x8c\x07" "_Traces\x94" \
	     "\x93\x94)\x81\x94}\x94" "\x8c\x07" "_traces\x94"
#define LIST "]\x94"
#define LIMIT "\x8c\x0f" "traceback_limit\x94"
#define TAIL "sb" LIMIT "K\x01" "ub."
/* (0, 1, (('a.py', 1),), 1) */
#define TRACE1 "(K\x00K\x01\x8c\x04" "a.py\x94K\x01\x86\x94\x85\x94K\x01t"
#define SNAP(list_content) HEAD LIST list_content TAIL
#define B(lit) lit, sizeof(lit) - 1

struct pickle_case {
	const char *name;
	const char *data;
	size_t len;
	char cpython;           /* pickle.load(): 'A' accepts, 'R' refuses, '-' not asked */
	const char *error;      /* what tmbpf says; NULL: it loads the snapshot */
};

static const struct pickle_case cases[] = {
	/* valid, for reference */
	{ "minimal", B(SNAP(TRACE1 "a")), 'A', NULL },
	{ "trailing_data", B(SNAP(TRACE1 "a") "garbage\x00\xff"), 'A', NULL },
	{ "none_total", B(SNAP("(K\x00K\x01\x8c\x04" "a.py\x94K\x01\x86\x94\x85\x94Nt" "a")),
	  'A', NULL },
	{ "bool_size", B(SNAP("(K\x00\x88\x8c\x04" "a.py\x94K\x01\x86\x94\x85\x94K\x01t" "a")),
	  'A', NULL },

	/* globals other than tracemalloc's two, by every route */
	{ "os_system_global", B("\x80\x02" "cos\nsystem\n" "(X\x02\x00\x00\x00idtR."), '-',
	  "pickle opcode 0x63 (GLOBAL) at offset 2: global os.system is not allowed in a "
	  "tracemalloc snapshot (only tracemalloc.Snapshot and tracemalloc._Traces are)" },
	{ "os_system_stack_global", B("\x80\x04\x8c\x02os\x8c\x06system\x93\x8c\x02idR."), '-',
	  "pickle opcode 0x93 (STACK_GLOBAL) at offset 14: global os.system is not allowed" },
	{ "posix_system", B("\x80\x02" "cposix\nsystem\nq\x00."), '-', "global posix.system" },
	{ "builtins_eval", B("\x80\x04" "cbuiltins\neval\n(V1+1\ntR."), '-',
	  "global builtins.eval is not allowed" },
	{ "py2_builtin_eval", B("c__builtin__\neval\n(V1\ntR."), '-',
	  "global __builtin__.eval is not allowed" },
	{ "copyreg_other", B("ccopy_reg\n_reconstructor\n(cos\nsystem\n"), '-',
	  "global os.system is not allowed" },
	{ "unprintable_name", B("\x80\x04" "cx\x01y\n\xff\n."), '-',
	  "global x\\x01y.\\xff is not allowed" },
	/* REDUCE: only copyreg._reconstructor(cls, object, None), never a call */
	{ "reduce_snapshot",
	  B("\x80\x04\x8c\x0b" "tracemalloc\x8c\x08" "Snapshot\x93)R."), 'R',
	  "pickle opcode 0x52 (REDUCE) at offset 27 is not allowed in a tracemalloc snapshot" },
	{ "reduce_reconstructor_bad_base",
	  B("ccopy_reg\n_reconstructor\n(ctracemalloc\nSnapshot\nctracemalloc\n_Traces\nNtR."),
	  'A', "(REDUCE) at offset 71 is not allowed" },
	{ "newobj_object", B("\x80\x02" "c__builtin__\nobject\n)\x81."), 'A',
	  "pickle opcode 0x81 (NEWOBJ) at offset 23: creates an instance of the class "
	  "builtins.object: only tracemalloc.Snapshot and tracemalloc._Traces are allowed" },
	{ "newobj_ex_kwargs_not_dict",
	  B("\x80\x04\x8c\x0b" "tracemalloc\x8c\x08" "Snapshot\x93))\x92."), 'R',
	  "keyword arguments are a tuple, not a dict" },
	/* BUILD on what is not a Snapshot or _Traces object */
	{ "build_on_dict", B("\x80\x04}}b."), 'R',
	  "pickle opcode 0x62 (BUILD) at offset 4: sets the state of a dict: only "
	  "tracemalloc.Snapshot and tracemalloc._Traces objects are built" },
	{ "build_on_class", B("\x80\x04\x8c\x0b" "tracemalloc\x8c\x08" "Snapshot\x93}b."), '-',
	  "sets the state of the class tracemalloc.Snapshot" },
	{ "build_list_state", B("\x80\x04\x8c\x0b" "tracemalloc\x8c\x08" "Snapshot\x93)\x81]b."),
	  'R', "(BUILD) at offset 29: state is a list, not a dict" },

	/* stack, marks and memo */
	{ "stack_underflow", B("\x80\x04\x86."), 'R',
	  "pickle opcode 0x86 (TUPLE2) at offset 2: needs 2 values on the stack (stack underflow)" },
	{ "pop_across_mark", B("\x80\x04K\x01(K\x02\x86."), 'R',
	  "(TUPLE2) at offset 7: needs 2 values above the last MARK" },
	{ "tuple_without_mark", B("\x80\x04t."), 'R', "(TUPLE) at offset 2: no MARK to close" },
	{ "appends_without_list", B("\x80\x04(K\x01" "e."), 'R', "(APPENDS) at offset 5: no list" },
	{ "append_to_dict", B("\x80\x04}K\x01" "a."), 'R', "appends to a dict, not a list" },
	{ "empty_stack_stop", B("\x80\x04."), 'R',
	  "pickle opcode 0x2e (STOP) at offset 2: needs 1 value on the stack" },
	{ "memo_get_unset", B("\x80\x04N\x94h\x05."), 'R',
	  "pickle opcode 0x68 (BINGET) at offset 4: memo entry 5 was never stored" },
	{ "long_binget_unset", B("\x80\x04N\x94j\x00\x01\x00\x00."), 'R',
	  "(LONG_BINGET) at offset 4: memo entry 256 was never stored" },
	{ "text_get_unset", B("N\x94g7\n."), 'R', "(GET) at offset 2: memo entry 7" },
	{ "text_get_negative", B("Ng-1\n."), 'R', "(GET) at offset 1: '-1' is not a memo index" },
	{ "memoize_empty", B("\x80\x04\x94."), 'R', "(MEMOIZE) at offset 2: needs 1 value" },
	/* a memo index far beyond what was stored would make the memo huge
	 * (CPython allocates it; not asked) */
	{ "long_binput_far", B("\x80\x04Nr\x00\x00\x00\x40."), '-',
	  "(LONG_BINPUT) at offset 3: memo index 1073741824 skips far ahead of the 0 entries "
	  "stored so far" },
	{ "list_holds_itself", B("\x80\x05]\x94h\x00" "a."), 'A',
	  "(APPEND) at offset 6: item 0 of a list is not a trace: it is a list, not a tuple" },

	/* lengths beyond the data */
	{ "binunicode8_huge", B("\x80\x04\x8d\x00\x00\x00\x00\x00\x00\x00\x40" "abc."), 'R',
	  "pickle opcode 0x8d (BINUNICODE8) at offset 2: string of 4611686018427387904 bytes "
	  "runs past the end of the data (4 bytes left: truncated file?)" },
	{ "binunicode_huge", B("\x80\x04X\xff\xff\xff\xff" "ab."), 'R',
	  "string of 4294967295 bytes runs past the end of the data (3 bytes left: truncated file?)" },
	{ "short_binunicode_cut", B("\x80\x04\x8c\x05" "ab"), 'R',
	  "string of 5 bytes runs past the end of the data (2 bytes left: truncated file?)" },
	{ "long4_huge", B("\x80\x04\x8b\xff\xff\xff\x7f\x00."), 'R',
	  "(LONG4) at offset 2: integer of 2147483647 bytes runs past the end" },
	{ "long4_negative", B("\x80\x04\x8b\xff\xff\xff\xff\x00."), 'R',
	  "(LONG4) at offset 2: negative byte count" },
	{ "frame_past_end", B("\x80\x04\x95\xe8\x03\x00\x00\x00\x00\x00\x00N."), 'R',
	  "(FRAME) at offset 2: frame of 1000 bytes runs past the end of the data (2 bytes left: truncated file?)" },
	{ "binint_cut", B("\x80\x04J\x01\x02"), 'R',
	  "pickle data ends at offset 5 inside opcode 0x4a (BININT) at offset 2" },
	{ "global_without_newline", B("ctracemalloc\nSnap"), 'R',
	  "pickle data ends at offset 17 inside opcode 0x63 (GLOBAL) at offset 0" },
	{ "missing_stop", B("\x80\x04N"), 'R', "pickle data ends at offset 3 without a STOP" },
	{ "deep_marks", NULL, 0, 'R', "MARKs nest deeper than 4096" },

	/* opcodes a snapshot never holds */
	{ "bad_opcode", B("\x80\x04\xff."), 'R', "byte 0xff at offset 2 is not a pickle opcode" },
	{ "binfloat", B("\x80\x04G\x3f\xf0\x00\x00\x00\x00\x00\x00."), 'A',
	  "pickle opcode 0x47 (BINFLOAT) at offset 2 is not allowed in a tracemalloc snapshot" },
	{ "float_text", B("F1.5\n."), 'A', "opcode 0x46 (FLOAT) at offset 0 is not allowed" },
	{ "persid", B("\x80\x04P1\n."), 'R', "opcode 0x50 (PERSID) at offset 2 is not allowed" },
	{ "ext1", B("\x80\x04\x82\x01."), 'R', "opcode 0x82 (EXT1) at offset 2 is not allowed" },
	{ "bytes", B("\x80\x04" "C\x01x."), 'A', "(SHORT_BINBYTES) at offset 2 is not allowed" },
	{ "inst", B("(itracemalloc\nSnapshot\n."), 'A', "(INST) at offset 1 is not allowed" },
	{ "next_buffer", B("\x80\x05\x97."), 'R', "(NEXT_BUFFER) at offset 2 is not allowed" },
	{ "protocol_6", B("\x80\x06N."), 'R',
	  "pickle opcode 0x80 (PROTO) at offset 0: unsupported pickle protocol 6 (at most 5)" },

	/* strings */
	{ "utf8_invalid", B("\x80\x04\x8c\x02\xff\xfe."), 'R',
	  "(SHORT_BINUNICODE) at offset 2: string is not valid UTF-8 (byte 0xff at offset 4)" },
	{ "utf8_overlong", B("\x80\x04\x8c\x02\xc0\xaf."), 'R', "not valid UTF-8 (byte 0xc0" },
	{ "utf8_above_max", B("\x80\x04\x8c\x04\xf4\x90\x80\x80."), 'R',
	  "not valid UTF-8 (byte 0xf4" },
	{ "utf8_cut", B("\x80\x04\x8c\x02" "a\xe2."), 'R', "not valid UTF-8 (byte 0xe2 at offset 5)" },
	/* a surrogate encoded with surrogatepass is fine: the error is about structure */
	{ "utf8_surrogate", B("\x80\x04\x8c\x03\xed\xb3\xbf."), 'A',
	  "not a tracemalloc snapshot: the pickle holds a str" },
	{ "unicode_bad_escape", B("V\\u12\n."), 'R', "(UNICODE) at offset 0: truncated \\u escape" },
	{ "unicode_not_hex", B("V\\u12zz\n."), 'R', "bad \\u escape" },
	{ "unicode_out_of_range", B("V\\U00110000\n."), 'R', "\\U00110000 is out of the Unicode range" },
	{ "int_leading_zero", B("I010\n."), 'A', "(INT) at offset 0: '010' is not a decimal integer" },
	{ "long_text_bad", B("L12a3L\n."), 'R', "'12a3' is not a decimal integer" },
	{ "stack_global_not_str", B("\x80\x04K\x01K\x02\x93."), 'R',
	  "(STACK_GLOBAL) at offset 6: module and name must be str" },

	/* dicts */
	{ "setitems_odd", B("\x80\x04}(\x8c\x01" "au."), 'R', "(SETITEMS) at offset 7: odd number" },
	{ "dict_key_int", B("\x80\x04}K\x01K\x02s."), 'A', "(SETITEM) at offset 7: a dict key is an "
	  "int, not a str" },

	/* pickles of other things */
	{ "int_pickle", B("\x80\x05K*."), 'A',
	  "not a tracemalloc snapshot: the pickle holds an int, not a tracemalloc.Snapshot object" },
	{ "dict_pickle", B("\x80\x05}\x94."), 'A', "the pickle holds a dict" },
	{ "list_pickle", B("\x80\x05]\x94" TRACE1 "a."), 'A', "the pickle holds a list" },
	{ "traces_object_pickle", B("\x80\x04\x8c\x0b" "tracemalloc\x8c\x07" "_Traces\x93)\x81."),
	  'A', "the pickle holds a tracemalloc._Traces object, not a tracemalloc.Snapshot" },

	/* traces of the wrong shape or range */
	{ "str_size", B(SNAP("(K\x00\x8c\x01" "1\x8c\x04" "a.py\x94K\x01\x86\x94\x85\x94K\x01t" "a")),
	  'A', "(APPEND) at offset 97: item 0 of a list is not a trace: its size is a str, not an "
	  "int" },
	{ "float_lineno", B(SNAP("(K\x00K\x01\x8c\x04" "a.pyG\x3f\xf0\x00\x00\x00\x00\x00\x00")),
	  'R', "(BINFLOAT) at offset 86 is not allowed" },
	{ "trace_is_list", B(SNAP("]\x94(K\x00K\x01\x8c\x04" "a.py\x94K\x01\x86\x94\x85\x94K\x01"
				  "e" "a")),
	  'A', "(APPENDS) at offset 97: item 0 of a list is not a trace: it is an int, not a tuple" },
	{ "frames_are_list", B(SNAP("(K\x00K\x01]\x8c\x04" "a.py\x94K\x01\x86" "a" "K\x01ta")), 'A',
	  "item 0 of a list is not a trace: it is a (filename, lineno) pair, not (domain, size, "
	  "frames, total_nframe)" },
	{ "one_frame_not_in_tuple", B(SNAP("(K\x00K\x01\x8c\x04" "a.py\x94K\x01\x86K\x01ta")), 'A',
	  "its frames are one (filename, lineno) pair, not a tuple of them" },
	{ "zero_frames", B(SNAP("(K\x00K\x01)K\x00ta")), 'A',
	  "item 0 of a list is not a trace: its traceback has no frame" },
	{ "negative_size", B(SNAP("(K\x00J\xff\xff\xff\xff\x8c\x04" "a.py\x94K\x01\x86\x94\x85\x94"
				  "K\x01ta")),
	  'A', "its size is -1, negative" },
	{ "huge_size", B(SNAP("(K\x00\x8a\x09\x00\x00\x00\x00\x00\x00\x00\x00\x01\x8c\x04"
			      "a.py\x94K\x01\x86\x94\x85\x94K\x01ta")),
	  'A', "its size is 2**64 or more, more than 18446744073709551615" },
	{ "huge_lineno", B(SNAP("(K\x00K\x01\x8c\x04" "a.py\x8a\x09\x00\x00\x00\x00\x00\x00\x00\x00"
				"\x01\x86\x85K\x01ta")),
	  'A', "the lineno of its frame 0 is 2**64 or more, more than 4294967295" },
	{ "lineno_2_32", B(SNAP("(K\x00K\x01\x8c\x04" "a.py\x8a\x05\x00\x00\x00\x00\x01\x86\x85"
				"K\x01ta")),
	  'A', "the lineno of its frame 0 is 4294967296, more than 4294967295" },
	{ "negative_lineno", B(SNAP("(K\x00K\x01\x8c\x04" "a.pyJ\xfe\xff\xff\xff\x86\x85K\x01ta")),
	  'A', "the lineno of its frame 0 is -2, negative" },
	{ "domain_2_32", B(SNAP("(\x8a\x05\x00\x00\x00\x00\x01K\x01\x8c\x04" "a.py\x94K\x01\x86\x94"
				"\x85\x94K\x01ta")),
	  'A', "its domain is 4294967296, more than 4294967295" },
	{ "huge_negative_domain", B(SNAP("(\x8a\x09\x00\x00\x00\x00\x00\x00\x00\x00\x80K\x01\x8c\x04"
					 "a.py\x94K\x01\x86\x94\x85\x94K\x01ta")),
	  'A', "its domain is negative" },
	{ "total_max", B(SNAP("(K\x00K\x01\x8c\x04" "a.py\x94K\x01\x86\x94\x85\x94\x8a\x05\xff\xff"
			      "\xff\xff\x00ta")),
	  'A', "its total_nframe is 4294967295, more than 4294967294" },
	{ "total_str", B(SNAP("(K\x00K\x01\x8c\x04" "a.py\x94K\x01\x86\x94\x85\x94\x8c\x01" "2ta")),
	  'A', "its total_nframe is a str, not an int" },
	{ "frame_3_items", B(SNAP("(K\x00K\x01(\x8c\x04" "a.pyK\x01K\x02t\x85K\x01ta")), 'A',
	  "its frame 0 is a tuple of 3 items, not (filename, lineno)" },
	{ "filename_int", B(SNAP("(K\x00K\x01K\x07K\x01\x86\x85K\x01ta")), 'A',
	  "the filename of its frame 0 is an int, not a str" },
	{ "second_frame_none", B(SNAP("(K\x00K\x01\x8c\x04" "a.pyK\x01\x86N\x86K\x01ta")), 'A',
	  "its frame 1 is None, not a (filename, lineno) tuple" },
	{ "trace_5_items", B(SNAP("(K\x00K\x01\x8c\x04" "a.py\x94K\x01\x86\x94\x85\x94K\x01K\x01ta")),
	  'A', "it is a tuple of 5 items, not (domain, size, frames, total_nframe)" },
	{ "total_over_int64",
	  B(SNAP("((K\x00\x8a\x08\x00\x00\x00\x00\x00\x00\x00\x40\x8c\x04" "a.py\x94K\x01\x86\x94"
		 "\x85\x94K\x01t(K\x00\x8a\x08\x00\x00\x00\x00\x00\x00\x00\x40h\x0eK\x01te")),
	  'A', "the total size of the traces exceeds 9223372036854775807 bytes (at trace 1)" },

	/* the snapshot's attributes */
	{ "no_limit", B(HEAD LIST TRACE1 "a" "sbu" "b."), 'A',
	  "not a tracemalloc snapshot: the Snapshot has no 'traceback_limit' attribute" },
	{ "no_traces", B("\x80\x04\x8c\x0b" "tracemalloc\x8c\x08" "Snapshot\x93)\x81}" LIMIT
			 "K\x01sb."),
	  'A', "the Snapshot has no 'traces' attribute" },
	{ "no_state", B("\x80\x04\x8c\x0b" "tracemalloc\x8c\x08" "Snapshot\x93)\x81."), 'A',
	  "the Snapshot has no 'traces' attribute" },
	{ "limit_str", B(HEAD LIST TRACE1 "a" "sb" LIMIT "\x8c\x01" "5" "ub."), 'A',
	  "not a tracemalloc snapshot: Snapshot.traceback_limit is a str, not an int" },
	{ "limit_negative", B(HEAD LIST TRACE1 "a" "sb" LIMIT "J\xff\xff\xff\xff" "ub."), 'A',
	  "Snapshot.traceback_limit is -1, negative" },
	{ "limit_2_32", B(HEAD LIST TRACE1 "a" "sb" LIMIT "\x8a\x05\x00\x00\x00\x00\x01" "ub."), 'A',
	  "Snapshot.traceback_limit is 4294967296, more than 4294967295" },
	{ "traces_tuple", B(HEAD ")" "sb" LIMIT "K\x01ub."), 'A',
	  "Snapshot.traces._traces is a tuple, not a list" },
	{ "no_traces_list", B(HEAD "N" "sb" LIMIT "K\x01ub."), 'A',
	  "Snapshot.traces._traces is None, not a list" },
	{ "traces_is_list", B("\x80\x04\x8c\x0b" "tracemalloc\x8c\x08" "Snapshot\x93)\x81}(\x8c\x06"
			      "traces]" LIMIT "K\x01ub."),
	  'A', "Snapshot.traces is a list, not a tracemalloc._Traces object" },
};

#define NCASES (sizeof(cases) / sizeof(cases[0]))

/* the deep_marks case: what the CLI's hostile test writes */
static char *deep_marks(size_t *len)
{
	size_t n = 100000, i = 0;
	char *p = malloc(2 * n + 4);

	cr_assert_not_null(p);
	p[i++] = '\x80';
	p[i++] = '\x05';
	memset(p + i, '(', n);
	i += n;
	p[i++] = ']';
	memset(p + i, 'e', n);
	i += n;
	p[i++] = '.';
	*len = i;
	return p;
}

static const char *case_data(const struct pickle_case *c, size_t *len, char **owned)
{
	*owned = NULL;
	if (!c->data) {
		*owned = deep_marks(len);
		return *owned;
	}
	*len = c->len;
	return c->data;
}

Test(pickle, hostile_and_malformed_pickles)
{
	for (size_t i = 0; i < NCASES; i++) {
		const struct pickle_case *c = &cases[i];
		struct tm_error err = { "" };
		struct tm_snapshot *s;
		char *owned;
		size_t len;
		const char *data = case_data(c, &len, &owned);

		s = tm_pickle_load_mem(data, len, &err);
		if (c->error) {
			cr_assert_null(s, "%s: loaded, expected: %s", c->name, c->error);
			cr_assert(strstr(err.msg, c->error), "%s:\n  got  '%s'\n  want '%s'",
				  c->name, err.msg, c->error);
			cr_assert_null(strchr(err.msg, '\n'));
		} else {
			cr_assert_not_null(s, "%s: %s", c->name, err.msg);
			cr_assert_eq(tm_snapshot_validate(s, &err), 0, "%s: %s", c->name, err.msg);
			tm_snapshot_free(s);
		}
		/* the dispatcher gives the same verdict */
		s = tm_snapshot_load_mem(data, len, &err);
		cr_assert_eq(s == NULL, c->error != NULL, "%s via tm_snapshot_load_mem", c->name);
		tm_snapshot_free(s);
		/* and so do the aggregated and streamed loads, with the same message */
		files_check_ways_with(tm_pickle_load_input, data, len, true, c->name);
		free(owned);
	}
}

/* What the valid cases hold: exactly these traces (values from the bytes). */
Test(pickle, hand_made_valid_pickles_hold_their_traces)
{
	static const struct {
		const char *name;
		uint64_t size;
		uint32_t total;
	} want[] = {
		{ "minimal", 1, 1 },
		{ "trailing_data", 1, 1 },
		{ "none_total", 1, TM_TOTAL_NFRAME_NONE },
		{ "bool_size", 1, 1 },      /* NEWTRUE: True == 1 in Python */
	};

	for (size_t w = 0; w < sizeof(want) / sizeof(want[0]); w++) {
		const struct pickle_case *c = NULL;
		struct tm_error err = { "" };
		struct tm_snapshot *s;

		for (size_t i = 0; i < NCASES; i++)
			if (!strcmp(cases[i].name, want[w].name))
				c = &cases[i];
		cr_assert_not_null(c);
		s = tm_pickle_load_mem(c->data, c->len, &err);
		cr_assert_not_null(s, "%s", err.msg);
		cr_assert_eq(s->ntraces, 1);
		cr_assert_eq(s->traceback_limit, 1);
		cr_assert_eq(s->traces[0].domain, 0);
		cr_assert_eq(s->traces[0].size, want[w].size);
		cr_assert_eq(s->traces[0].address, 0);
		cr_assert_eq(s->tracebacks[s->traces[0].traceback].nframe, 1);
		cr_assert_eq(s->tracebacks[s->traces[0].traceback].total_nframe, want[w].total);
		{
			const struct tm_frame *f = &s->frames[tm_traceback_frames(s, 0)[0]];
			struct tm_str name = tm_string(s, f->filename);

			cr_assert_eq(f->lineno, 1);
			cr_assert(name.len == 4 && !memcmp(name.data, "a.py", 4));
		}
		tm_snapshot_free(s);
	}
}

/* Where the table says what CPython's pickle.load() does with a file, CPython
 * agrees: trailing data is accepted like CPython, the malformed files are
 * refused by CPython too, and the 'A' cases tmbpf refuses are pickles CPython
 * loads but that are not snapshots it could analyse (documented choices). */
Test(pickle, cpython_verdicts_match_the_table, .timeout = 60)
{
	char *dir, *out, *line;
	const char *args[NCASES + 1];
	size_t nargs = 0;

	ANALYSIS_REQUIRE_PYTHON();
	dir = analysis_tmpdir();
	for (size_t i = 0; i < NCASES; i++) {
		char *owned;
		size_t len;
		const char *data = case_data(&cases[i], &len, &owned);

		if (cases[i].cpython == '-')
			continue;
		files_write(files_path(dir, cases[i].name), data, len);
		args[nargs++] = strdup(files_path(dir, cases[i].name));
		free(owned);
	}
	args[nargs] = NULL;
	out = files_run_python(ANALYSIS_PYTHON, VERDICT_SCRIPT, args);
	for (line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
		char verdict, path[4096];
		const char *name;

		cr_assert_eq(sscanf(line, "%c %4095s", &verdict, path), 2);
		name = strrchr(path, '/') + 1;
		for (size_t i = 0; i < NCASES; i++)
			if (!strcmp(cases[i].name, name))
				cr_assert_eq(verdict, cases[i].cpython, "%s: CPython says %s, table %c",
					     name, line, cases[i].cpython);
		nargs--;
	}
	cr_assert_eq(nargs, 0, "CPython did not judge every file");
	for (size_t i = 0; args[i]; i++)
		free((char *)args[i]);
	free(out);
	analysis_rmtree(dir);
}

/* Bigger than the limits: the reader stops at them, with the limit in the error. */
Test(pickle, limits)
{
	size_t n = TM_PICKLE_MAX_MARKS + 1, i;
	char *p = malloc(n + 3);

	cr_assert_not_null(p);
	p[0] = '\x80';
	p[1] = '\x04';
	memset(p + 2, '(', n);
	p[n + 2] = '.';
	files_expect_error(tm_pickle_load_mem, p, n + 3,
			   "pickle opcode 0x28 (MARK) at offset 4098: MARKs nest deeper than 4096",
			   "marks");
	/* exactly the limit is fine (then STOP finds no value) */
	p[TM_PICKLE_MAX_MARKS + 2] = '.';
	files_expect_error(tm_pickle_load_mem, p, TM_PICKLE_MAX_MARKS + 3,
			   "(STOP) at offset 4098: needs 1 value", "marks at the limit");
	free(p);

	/* memo indexes may run ahead of the stores by TM_PICKLE_MEMO_SLACK */
	{
		char ok[] = "\x80\x04Nr\xff\x03\x00\x00h\x00.", far[] = "\x80\x04Nr\x00\x04\x00\x00.";

		ok[4] = (char)((TM_PICKLE_MEMO_SLACK - 1) & 0xff);
		ok[5] = (char)((TM_PICKLE_MEMO_SLACK - 1) >> 8);
		files_expect_error(tm_pickle_load_mem, ok, sizeof(ok) - 1,
				   "(BINGET) at offset 8: memo entry 0 was never stored", "slack-1");
		files_expect_error(tm_pickle_load_mem, far, sizeof(far) - 1,
				   "memo index 1024 skips far ahead", "slack");
	}
	/* a long traceback reused with ever new total_nframe values would store
	 * its frames again and again: bounded by the input size */
	{
		size_t nf = 5000, cap = 64 + nf * 2 + 20000 * 16, len = 0;
		char *q = malloc(cap);

		cr_assert_not_null(q);
		len = (size_t)sprintf(q, "\x80\x04\x8c\x01" "a\x94K\x01\x86\x94(");
		for (i = 0; i < nf; i++) {
			q[len++] = 'h';
			q[len++] = 1;
		}
		q[len++] = 't';
		q[len++] = '\x94';      /* memo 2: the frames */
		for (i = 0; i < 20000 && len + 16 < cap; i++) {
			q[len++] = '(';
			q[len++] = 'K';
			q[len++] = 0;
			q[len++] = 'K';
			q[len++] = 1;
			q[len++] = 'h';
			q[len++] = 2;
			q[len++] = 'J';
			memcpy(q + len, &i, 4);
			len += 4;
			q[len++] = 't';
			q[len++] = '0';
		}
		q[len++] = '.';
		files_expect_error(tm_pickle_load_mem, q, len,
				   "the tracebacks hold more frames than a pickle of", "frame budget");
		/* while a snapshot that shares one frames tuple among a thousand
		 * total_nframe values (far more ids than bytes) loads */
		{
			struct tm_error err = { "" };
			struct tm_snapshot *s;
			/* inside the list's MARK: 'a' (memo 12), ('a', 1) (13), popped */
			static const char pre[] = HEAD LIST "(" "\x8c\x01" "a\x94K\x01\x86\x94" "0(";

			memcpy(q, pre, sizeof(pre) - 1);
			len = sizeof(pre) - 1;
			for (i = 0; i < 100; i++) {
				q[len++] = 'h';
				q[len++] = 13;
			}
			q[len++] = 't';
			q[len++] = '\x94';      /* memo 14: the 100 frames */
			q[len++] = '0';
			for (i = 0; i < 1000; i++) {
				q[len++] = '(';
				q[len++] = 'K';
				q[len++] = 0;
				q[len++] = 'K';
				q[len++] = 1;
				q[len++] = 'h';
				q[len++] = 14;
				q[len++] = 'J';
				memcpy(q + len, &i, 4);         /* total_nframe = i */
				len += 4;
				q[len++] = 't';
			}
			memcpy(q + len, "e" TAIL, sizeof("e" TAIL) - 1);
			len += sizeof("e" TAIL) - 1;
			s = tm_pickle_load_mem(q, len, &err);
			cr_assert_not_null(s, "%s", err.msg);
			cr_assert_eq(s->ntraces, 1000);
			cr_assert_eq(s->ntracebacks, 1000);
			cr_assert_eq(s->nframe_ids, 100000);
			cr_assert_gt(s->nframe_ids, len, "more frame ids than bytes");
			cr_assert_eq(s->tracebacks[s->traces[999].traceback].total_nframe, 999);
			tm_snapshot_free(s);
		}
		free(q);
	}
}

/* Every prefix of a real dump is refused with a "truncated"-style error. */
Test(pickle, every_prefix_of_a_dump_is_refused)
{
	static const char snap[] = SNAP("(" TRACE1 "(K\x05\x8a\x05\x00\x5e\xd0\xb2\x00h\x0eK\x01t" "e");
	struct tm_error err = { "" };
	struct tm_snapshot *s = tm_pickle_load_mem(snap, sizeof(snap) - 1, &err);

	cr_assert_not_null(s, "%s", err.msg);
	cr_assert_eq(s->ntraces, 2);
	cr_assert_eq(s->traces[1].domain, 5);
	cr_assert_eq(s->traces[1].size, 3000000000u);
	cr_assert_eq(s->traces[1].traceback, s->traces[0].traceback);
	tm_snapshot_free(s);
	files_check_ways_with(tm_pickle_load_input, snap, sizeof(snap) - 1, true, "whole dump");
	for (size_t n = 0; n < sizeof(snap) - 1; n++) {
		char what[64];

		s = tm_pickle_load_mem(snap, n, &err);
		cr_assert_null(s, "prefix of %zu bytes loaded", n);
		cr_assert(strstr(err.msg, "pickle data ends at offset") ||
				  strstr(err.msg, "runs past the end of the data"),
			  "prefix %zu: %s", n, err.msg);
		snprintf(what, sizeof(what), "prefix of %zu bytes", n);
		files_check_ways_with(tm_pickle_load_input, snap, n, false, what);
	}
}

Test(pickle, format_detection)
{
	static const struct {
		const char *data;
		size_t len;
		enum tm_file_format want;
	} d[] = {
		{ B("\x80\x05"), TM_FORMAT_PICKLE },
		{ B("\x80"), TM_FORMAT_PICKLE },
		{ B("ccopy_reg\n_reconstructor\n"), TM_FORMAT_PICKLE },
		{ B("ccopy_re"), TM_FORMAT_PICKLE },            /* cut short */
		{ B(TM_NATIVE_MAGIC "\x01\x00"), TM_FORMAT_NATIVE },
		{ B("\x89tmb"), TM_FORMAT_NATIVE },             /* cut short */
		{ B(""), TM_FORMAT_UNKNOWN },
		{ B("hello, world\n"), TM_FORMAT_UNKNOWN },
		{ B("cat food\n"), TM_FORMAT_UNKNOWN },
		{ B("c\n"), TM_FORMAT_UNKNOWN },
		{ B("{\"traces\": []}"), TM_FORMAT_UNKNOWN },
		{ B("\x89PNG\r\n\x1a\n"), TM_FORMAT_UNKNOWN },
		{ B("(lp0\n."), TM_FORMAT_UNKNOWN },           /* a protocol-0 list */
	};

	for (size_t i = 0; i < sizeof(d) / sizeof(d[0]); i++)
		cr_assert_eq(tm_detect_format(d[i].data, d[i].len), d[i].want, "case %zu", i);
	files_expect_error(tm_snapshot_load_mem, "hello", 5,
			   "not a snapshot (neither a tmbpf native file nor a pickle)", "text");
	files_expect_error(tm_snapshot_load_mem, "", 0, "empty", "empty");
}
