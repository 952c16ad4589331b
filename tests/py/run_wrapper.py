"""WRAPPER for tests/tracer/test_run_attach.c: runs a program as __main__ and,
only when tracemalloc is tracing (PYTHONTRACEMALLOC=1), dumps
tracemalloc.take_snapshot() to OUT at exit, as the tracemalloc docs suggest
for a whole program.

Usage: run_wrapper.py OUT SCRIPT [ARG...]
       run_wrapper.py OUT -m MODULE [ARG...]

The same code runs under `tmbpf run` (tracemalloc not tracing: nothing is
dumped) and under PYTHONTRACEMALLOC=1 (the ground truth), so both processes
allocate the same blocks. The atexit handler runs inside Py_FinalizeEx, right
after the point where `tmbpf run` freezes its traces.
"""
import atexit
import runpy
import sys
import tracemalloc

OUT = sys.argv[1]


def _dump_at_exit():
    if tracemalloc.is_tracing():
        tracemalloc.take_snapshot().dump(OUT)


atexit.register(_dump_at_exit)

if sys.argv[2] == "-m":
    module = sys.argv[3]
    sys.argv = [module] + sys.argv[4:]      # argv[0] becomes the module's file
    runpy.run_module(module, run_name="__main__", alter_sys=True)
else:
    sys.argv = sys.argv[2:]
    runpy.run_path(sys.argv[0], run_name="__main__")
