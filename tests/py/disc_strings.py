"""Code objects whose filename, name and qualname use every str storage kind
(Latin-1, UCS-2, UCS-4, lone surrogates), for tests/tracer/test_pycode.c.
Prints "code ID FILENAME_HEX NAME_HEX QUALNAME_HEX" (each the UTF-8 bytes that
pickle would write: encode('utf-8', 'surrogatepass'), hex; qualname "-" before
3.11), then "READY N" and waits on stdin."""
import sys

FILENAMES = ["plain.py", "caf\xe9.py", "\xff\xfe\xe0.py", "\u03c0/\u4e2d\u6587.py",
             "\U0001f600/emoji.py", "bad\udcff.py", "mix\udc80\u4e2d\U0001f600.py",
             "x" * 300 + "\u0100.py", ""]
NAMES = ["f", "f\xe9", "f\u4e2d", "f\U0001d4b3"]   # identifiers of each kind

keep = []


def hexu(s):
    return s.encode("utf-8", "surrogatepass").hex() or "-"


for i, filename in enumerate(FILENAMES):
    name = NAMES[i % len(NAMES)]
    src = "class C%d:\n    def %s(self):\n        return 1\n" % (i, name)
    module = compile(src, filename, "exec")
    cls = [c for c in module.co_consts if hasattr(c, "co_code")][0]
    func = [c for c in cls.co_consts if hasattr(c, "co_code")][0]
    for code in (module, cls, func):
        keep.append(code)
        qual = hexu(code.co_qualname) if hasattr(code, "co_qualname") else "-"
        print("code %x %s %s %s" % (id(code), hexu(code.co_filename), hexu(code.co_name), qual))
print("READY %d" % len(keep))
sys.stdout.flush()
sys.stdin.readline()
