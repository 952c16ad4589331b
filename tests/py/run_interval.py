"""Workload (tests/tracer/test_run_attach.c) for `tmbpf run --interval`: leaks
about 20 KB every 50 ms on one line for about 2.5 seconds."""
import time

LEAK = []
for i in range(50):
    LEAK.append(b"L" * 20000 + str(i).encode())         # LEAKS
    time.sleep(0.05)
print("interval", len(LEAK))
