#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Checks tmbpf's JSON writer against Python's json module (test_json.c).

  cli_json_check.py strings FILE
      FILE has one record per line: HEX<TAB>JSON, the hex of the raw bytes given
      to jsonw_string_len() and the document the writer produced from them. The
      bytes are decoded as tmbpf stores strings (UTF-8 with 'surrogatepass', and
      a byte that is no part of valid UTF-8 taken as 'surrogateescape' would take
      it); the document must be exactly json.dumps(that string) plus a newline,
      and parse back with json.loads (strict) to json.loads(json.dumps(string)).

  cli_json_check.py doc JSONFILE EXPRFILE [--indent N]
      JSONFILE must be exactly json.dumps(eval(EXPRFILE), indent=N) + "\\n" and
      json.loads(JSONFILE) must equal the expected object.

Prints one line and exits 1 on the first mismatch.
"""
import codecs
import json
import sys


def tmbpf_errors(exc):
    """Decode error handler: a surrogate encoded in UTF-8 (ED A0..BF xx, what
    'surrogatepass' writes) is that code point; any other bad byte b becomes
    U+DC00+b, as 'surrogateescape' reads it."""
    b = exc.object
    i = exc.start
    if (i + 2 < len(b) and b[i] == 0xED and 0xA0 <= b[i + 1] <= 0xBF
            and 0x80 <= b[i + 2] <= 0xBF):
        cp = 0xD000 | ((b[i + 1] & 0x3F) << 6) | (b[i + 2] & 0x3F)
        return chr(cp), i + 3
    return chr(0xDC00 + b[i]), i + 1


codecs.register_error("tmbpf", tmbpf_errors)


def fail(msg):
    print(msg)
    sys.exit(1)


def check_strings(path):
    n = 0
    with open(path, "rb") as f:
        data = f.read()
    for lineno, line in enumerate(data.split(b"\n")[:-1], 1):
        hexpart, _, doc = line.partition(b"\t")
        raw = bytes.fromhex(hexpart.decode("ascii"))
        expected = raw.decode("utf-8", "tmbpf")
        try:
            text = doc.decode("ascii")
        except UnicodeDecodeError:
            fail("record %d: output is not ASCII: %r" % (lineno, doc))
        want = json.dumps(expected)
        if text != want:
            fail("record %d: input %r: got %s, json.dumps gives %s"
                 % (lineno, raw, text, want))
        if json.loads(text) != json.loads(want):
            fail("record %d: does not parse back" % lineno)
        n += 1
    if n == 0:
        fail("no records")
    print("OK %d strings" % n)


def check_doc(json_path, expr_path, indent):
    with open(json_path, "rb") as f:
        text = f.read().decode("ascii")
    with open(expr_path, "r") as f:
        expected = eval(f.read(), {"inf": float("inf")})
    want = json.dumps(expected, indent=indent) + "\n"
    if text != want:
        fail("got %r, json.dumps gives %r" % (text, want))
    if json.loads(text) != expected:
        fail("parsed %r, expected %r" % (json.loads(text), expected))
    print("OK")


def main():
    if sys.argv[1] == "strings":
        check_strings(sys.argv[2])
    elif sys.argv[1] == "doc":
        indent = None
        if len(sys.argv) > 4 and sys.argv[4] == "--indent":
            indent = int(sys.argv[5])
        check_doc(sys.argv[2], sys.argv[3], indent)
    else:
        fail("unknown mode %r" % sys.argv[1])


if __name__ == "__main__":
    main()
