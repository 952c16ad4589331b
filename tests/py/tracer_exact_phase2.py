"""The allocations compared by tests/tracer/test_exactness.c: everything the
exact tier and in-process tracemalloc both see while this module's run() runs.
Deterministic, and made of the cases that are easy to get wrong: pymalloc
blocks, big blocks forwarded to the raw domain, realloc growth and shrink,
free-list reuse (floats, tuples, lists, dicts), class instances (GC header,
managed dict), generators, recursion, raw-domain calls without the GIL,
PyTraceMalloc_Track/Untrack, and eight threads allocating at once."""
import ctypes
import threading

NUMPY_DOMAIN = 389047
keep = []


def small_objects(n):
    out = []
    for i in range(n):
        out.append((i, str(i), [i] * (i % 7)))
    return out


class Node:
    def __init__(self, k):
        self.k = k
        self.children = []


def instances(n):
    nodes = [Node(i) for i in range(n)]
    for a, b in zip(nodes, nodes[1:]):
        a.children.append(b)
    return nodes


def big_buffers():
    out = [bytes(600 + 37 * i) for i in range(200)]       # > 512 B: raw domain via pymalloc
    out += [bytearray(150 * 1024) for _ in range(4)]       # mmap-sized
    return out


def grow_and_shrink():
    b = bytearray()
    for i in range(3000):
        b += b"x" * (i % 50)                                # realloc growth
    lst = []
    for i in range(5000):
        lst.append(i)
    del lst[100:]                                           # realloc shrink
    return b, lst


def reuse_free_lists(n):
    kept = []
    for i in range(n):
        t = (i, i + 1)                                      # freed tuples feed the free list
        f = i * 1.5
        kept.append((t[0] * 2.0, [f], {"k": f}))           # reused float/list/dict blocks
    return kept


def gen(n):
    for i in range(n):
        yield [i] * 3


def recurse(depth):
    if depth == 0:
        return [bytes(100) for _ in range(50)]
    return recurse(depth - 1)


def raw_without_gil():
    libc_view = ctypes.CDLL(None)                           # CDLL calls release the GIL
    raw_malloc = libc_view.PyMem_RawMalloc
    raw_malloc.restype = ctypes.c_void_p
    raw_malloc.argtypes = [ctypes.c_size_t]
    return [raw_malloc(4096 + i) for i in range(20)]


def tracked_buffers():
    track = ctypes.pythonapi.PyTraceMalloc_Track
    track.argtypes = [ctypes.c_uint, ctypes.c_void_p, ctypes.c_size_t]
    untrack = ctypes.pythonapi.PyTraceMalloc_Untrack
    untrack.argtypes = [ctypes.c_uint, ctypes.c_void_p]
    bufs = [ctypes.create_string_buffer(1000 + i) for i in range(10)]
    for b in bufs:
        track(NUMPY_DOMAIN, ctypes.addressof(b), 8000 + len(b))
    untrack(NUMPY_DOMAIN, ctypes.addressof(bufs[0]))
    return bufs


def worker(i, out):
    out[i] = [str(j) * (i + 1) for j in range(2000)]


def threads():
    out = [None] * 8
    ts = [threading.Thread(target=worker, args=(i, out)) for i in range(8)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return out


def run():
    keep.append(small_objects(3000))
    keep.append(instances(2000))
    keep.append(big_buffers())
    keep.append(grow_and_shrink())
    keep.append(reuse_free_lists(3000))
    keep.append(list(gen(500)))
    keep.append(recurse(20))
    keep.append(raw_without_gil())
    keep.append(tracked_buffers())
    keep.append(threads())
    transient = [str(i) for i in range(10000)]              # allocated and freed
    del transient
