"""Does CPython's pickle.load() accept each file? (tests/unit/test_pickle.c)

usage: python3 files_verdict.py FILE...

Prints "A FILE" (accepted) or "R FILE EXCEPTION" (refused) per file. Loads
with an Unpickler that refuses every global except the ones a tracemalloc
snapshot uses, so that no file can run code here; the C test only asks for
files whose verdict does not depend on that restriction.
"""
import pickle
import sys

# (with the Python 2 names protocols 0-2 use, which find_class() maps)
ALLOWED = {("tracemalloc", "Snapshot"), ("tracemalloc", "_Traces"),
           ("copyreg", "_reconstructor"), ("builtins", "object"),
           ("copy_reg", "_reconstructor"), ("__builtin__", "object")}


class SafeUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) in ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError("global %s.%s refused by the test" % (module, name))


for path in sys.argv[1:]:
    try:
        with open(path, "rb") as f:     # as Snapshot.load() does
            SafeUnpickler(f).load()
        print("A %s" % path)
    except Exception as e:
        print("R %s %s" % (path, type(e).__name__))
