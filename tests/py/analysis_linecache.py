#!/usr/bin/python3
"""linecache oracle for tests/unit/test_format.c.

Usage: analysis_linecache.py MAXLINE NAME...   (run from the directory that
holds the files; names are raw bytes, decoded like any argv: surrogateescape)

For every NAME (in order, numbered from 0) and lineno 0..MAXLINE prints
    INDEX LINENO HEX
where HEX is linecache.getline(NAME, lineno).strip() -- what
tracemalloc.Traceback.format() shows -- as UTF-8 (surrogatepass) hex.
"""
import linecache
import sys


def main():
    maxline = int(sys.argv[1])
    for index, name in enumerate(sys.argv[2:]):
        for lineno in range(maxline + 1):
            line = linecache.getline(name, lineno).strip()
            print(index, lineno, line.encode("utf-8", "surrogatepass").hex())


if __name__ == "__main__":
    main()
