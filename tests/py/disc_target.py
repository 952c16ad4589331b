"""Ground truth for tests/tracer/test_discovery.c, printed from inside the
interpreter with ctypes, then the process waits on stdin so that the test can
inspect it from outside.

Output: one fact per line, "key value...", then "READY". Addresses in hex.
  version MAJOR MINOR MICRO HEXVERSION
  runtime ADDR                        &_PyRuntime
  code_type ADDR                      &PyCode_Type
  tstate ADDR                         PyGILState_GetThisThreadState()
  pthread_self ADDR                   pthread_self() (= the thread pointer on glibc)
  alloc DOMAIN CTX MALLOC CALLOC REALLOC FREE   PyMem_GetAllocator(domain)
  frame CODE_ID LINENO FILENAME       the main thread's Python stack, innermost first,
                                      as sys._getframe() sees it while blocked below
Usage: python disc_target.py [tracemalloc]
"""
import ctypes
import sys

api = ctypes.pythonapi
libc = ctypes.CDLL(None)


class PyMemAllocatorEx(ctypes.Structure):
    _fields_ = [(name, ctypes.c_void_p) for name in ("ctx", "malloc", "calloc", "realloc", "free")]


def out(*words):
    sys.stdout.write(" ".join(str(w) for w in words) + "\n")


def facts():
    v = sys.version_info
    out("version", v.major, v.minor, v.micro, hex(sys.hexversion))
    out("runtime", hex(ctypes.addressof(ctypes.c_char.in_dll(api, "_PyRuntime"))))
    out("code_type", hex(id(type(facts.__code__))))
    api.PyGILState_GetThisThreadState.restype = ctypes.c_void_p
    out("tstate", hex(api.PyGILState_GetThisThreadState() or 0))
    libc.pthread_self.restype = ctypes.c_ulong
    out("pthread_self", hex(libc.pthread_self()))
    api.PyMem_GetAllocator.argtypes = [ctypes.c_int, ctypes.POINTER(PyMemAllocatorEx)]
    api.PyMem_GetAllocator.restype = None
    for domain in range(3):          # PYMEM_DOMAIN_RAW, _MEM, _OBJ
        a = PyMemAllocatorEx()
        api.PyMem_GetAllocator(domain, ctypes.byref(a))
        out("alloc", domain, *(hex(getattr(a, f) or 0) for f, _ in a._fields_))


def emit_stack():
    f = sys._getframe(1)             # the caller; its current line is the blocking call
    while f is not None:
        out("frame", hex(id(f.f_code)), f.f_lineno, f.f_code.co_filename)
        f = f.f_back


def wait_here():
    emit_stack(); out("READY"); sys.stdout.flush(); sys.stdin.readline()


def nested(depth):
    if depth:
        return nested(depth - 1)
    return wait_here()


if len(sys.argv) > 1 and sys.argv[1] == "tracemalloc":
    import tracemalloc
    tracemalloc.start(5)
facts()
nested(2)
