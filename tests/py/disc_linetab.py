"""Ground truth for the line-table decoders (tests/tracer/test_pycode.c).

Imports ~20 stdlib modules, walks all their code objects recursively (through
co_consts) and prints, for each, what the interpreter's own PyCode_Addr2Line
returns for every address a frame can report: -2, -1 and every even byte
offset from 0 to the end of the bytecode (inclusive: one past the last
instruction). The code objects stay referenced, so their addresses (id())
stay valid while the process waits on stdin.

Output: "code ID FIRSTLINENO NBYTES NAME" then "lines L(-2) L(-1) L(0) L(2) ...",
one pair per code object, then "READY N_CODES N_ADDRS".
"""
import ctypes
import importlib
import sys

MODULES = ["os", "re", "json", "collections", "argparse", "ast", "inspect", "typing",
           "dataclasses", "enum", "functools", "pathlib", "subprocess", "threading",
           "textwrap", "tracemalloc", "unittest", "email.message", "http.client", "decimal",
           "asyncio", "logging"]

addr2line = ctypes.pythonapi.PyCode_Addr2Line
addr2line.argtypes = [ctypes.py_object, ctypes.c_int]
addr2line.restype = ctypes.c_int

keep = []
seen = set()


def walk(code):
    if id(code) in seen:
        return
    seen.add(id(code))
    keep.append(code)
    for c in code.co_consts:
        if isinstance(c, type(walk.__code__)):
            walk(c)


def module_codes(mod):
    # Recompile the module's source: the module object keeps only functions,
    # not its top-level code object; recompiling gives every code object.
    spec = getattr(mod, "__spec__", None)
    loader = getattr(spec, "loader", None)
    code = loader.get_code(spec.name) if loader is not None and hasattr(loader, "get_code") else None
    if code is not None:
        walk(code)


for name in MODULES:
    try:
        module_codes(importlib.import_module(name))
    except Exception as e:  # a missing optional module only shrinks the sample
        sys.stderr.write("disc_linetab: skipped %s: %r\n" % (name, e))

out = sys.stdout.write
naddrs = 0
for code in keep:
    nbytes = len(code.co_code)
    addrs = [-2, -1] + list(range(0, nbytes + 1, 2))
    naddrs += len(addrs)
    out("code %x %d %d %s\n" % (id(code), code.co_firstlineno, nbytes, code.co_name))
    out("lines " + " ".join(str(addr2line(code, a)) for a in addrs) + "\n")
out("READY %d %d\n" % (len(keep), naddrs))
sys.stdout.flush()
sys.stdin.readline()
