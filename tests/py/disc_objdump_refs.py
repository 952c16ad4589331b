"""Counts, in `objdump -d` output of FILE, the references an LTO build makes
to CPython's allocator tables and default allocator functions, independently
of tmbpf's own decoder (ground truth for the inlining analysis).

usage: disc_objdump_refs.py FILE TABLE_VADDR,TABLE_VADDR,TABLE_VADDR TARGET,TARGET,...
prints: "slots N" (memory operands objdump resolves into any 40-byte table,
lea excluded) and "targets N" (immediates, RIP-relative lea and direct
call/jmp/jcc naming a target). Non-PIE executables only: objdump resolves
RIP-relative and absolute operands, not GOT-relative ones."""
import re
import subprocess
import sys

path = sys.argv[1]
tables = [int(x, 16) for x in sys.argv[2].split(",")]
targets = {int(x, 16) for x in sys.argv[3].split(",")}
dis = subprocess.run(["objdump", "-d", "--no-show-raw-insn", "-j", ".text", path],
                     capture_output=True, text=True, check=True).stdout
slots = refs = 0
for line in dis.splitlines():
    m = re.match(r"\s*[0-9a-f]+:\s+(\S+)\s*(.*)", line)
    if not m:
        continue
    mnem, ops = m.group(1), m.group(2)
    c = re.search(r"# ([0-9a-f]+)", ops)
    if c and mnem != "lea":
        a = int(c.group(1), 16)
        slots += sum(1 for t in tables if t <= a < t + 40)
    if mnem == "lea" and c and int(c.group(1), 16) in targets:
        refs += 1
    refs += sum(1 for i in re.findall(r"\$0x([0-9a-f]+)", ops) if int(i, 16) in targets)
    b = re.match(r"(call|jmp|j[a-z]+)\s+([0-9a-f]+) <", mnem + " " + ops)
    if b and int(b.group(2), 16) in targets:
        refs += 1
print("slots", slots)
print("targets", refs)
