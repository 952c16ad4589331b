"""gdb -batch -x disc_gdb_offsets.py LIBPYTHON: prints the structure offsets
tmbpf's tables (user/tracer/pyoffsets.c) hold, as gdb computes them from the
library's DWARF, one "name value" per line ("name -" if the field does not
exist in this version). Used by tests/tracer/test_discovery.c."""
import gdb


def off(*exprs):
    for e in exprs:
        try:
            return int(gdb.parse_and_eval("(long)&(%s)" % e))
        except gdb.error:
            pass
    return None


def size(t):
    try:
        return gdb.lookup_type(t).sizeof
    except gdb.error:
        return None


R = "((_PyRuntimeState*)0)"
T = "((PyThreadState*)0)"
F = "((struct _frame*)0)"
I = "((struct _PyInterpreterFrame*)0)"
C = "((PyCodeObject*)0)"
facts = [
    ("rt_tss", off(R + "->gilstate.autoTSSkey", R + "->autoTSSkey")),
    ("rt_interp_head", off(R + "->interpreters.head")),
    ("rt_interp_main", off(R + "->interpreters.main")),
    ("rt_alloc_raw", off(R + "->allocators.standard.raw")),
    ("rt_alloc_mem", off(R + "->allocators.standard.mem")),
    ("rt_alloc_obj", off(R + "->allocators.standard.obj")),
    ("is_next", off("((PyInterpreterState*)0)->next")),
    ("is_threads_head", off("((PyInterpreterState*)0)->tstate_head", "((PyInterpreterState*)0)->threads.head")),
    ("ts_next", off(T + "->next")),
    ("ts_frame", off(T + "->frame", T + "->cframe", T + "->current_frame")),
    ("ts_thread_id", off(T + "->thread_id")),
    ("ts_native_thread_id", off(T + "->native_thread_id")),
    ("cframe_current_frame", off("((_PyCFrame*)0)->current_frame")),
    ("f_back", off(I + "->previous", F + "->f_back")),
    ("f_code", off(I + "->f_code", I + "->f_executable", F + "->f_code")),
    ("f_lasti", off(I + "->prev_instr", I + "->instr_ptr", F + "->f_lasti")),
    ("f_trace", off(F + "->f_trace") if off(I + "->previous") is None else None),
    ("f_lineno", off(F + "->f_lineno") if off(I + "->previous") is None else None),
    ("f_owner", off(I + "->owner")),
    ("co_filename", off(C + "->co_filename")),
    ("co_name", off(C + "->co_name")),
    ("co_qualname", off(C + "->co_qualname")),
    ("co_firstlineno", off(C + "->co_firstlineno")),
    ("co_linetable", off(C + "->co_lnotab", C + "->co_linetable")),
    ("co_code", off(C + "->co_code")),
    ("co_firsttraceable", off(C + "->_co_firsttraceable")),
    ("co_code_adaptive", off(C + "->co_code_adaptive")),
    ("sizeof_code", size("PyCodeObject")),
    ("u_length", off("((PyASCIIObject*)0)->length")),
    ("u_state", off("((PyASCIIObject*)0)->state")),
    ("u_ascii_size", size("PyASCIIObject")),
    ("u_compact_size", size("PyCompactUnicodeObject")),
    ("u_data", off("((PyUnicodeObject*)0)->data")),
    ("b_size", off("((PyBytesObject*)0)->ob_base.ob_size")),
    ("b_sval", off("((PyBytesObject*)0)->ob_sval")),
    ("tp_name", off("((PyTypeObject*)0)->tp_name")),
    ("tp_flags", off("((PyTypeObject*)0)->tp_flags")),
    ("sizeof_allocator", size("PyMemAllocatorEx")),
]
state = gdb.lookup_type("PyASCIIObject")["state"].type
bits = {f.name: f.bitpos for f in state.fields()}
facts += [("u_bit_kind", bits.get("kind")), ("u_bit_compact", bits.get("compact")),
          ("u_bit_ascii", bits.get("ascii")), ("u_bit_ready", bits.get("ready"))]
for name, value in facts:
    print("OFF", name, "-" if value is None else value)
