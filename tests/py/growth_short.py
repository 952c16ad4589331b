"""Short-lived processes for the growth tier's host-wide tests.

    growth_short.py SECONDS HOW [TAG]

Grows memory at the SITE line for SECONDS (at least one tick), then ends as HOW
says:
    exit      returns (the interpreter finalises, freeing what it can)
    _exit     os._exit(0): it still holds its memory when it ends
    exec      execs itself as "growth_short.py SECONDS _exit TAG-exec": a new
              program under the same PID
    fork      forks two children that grow at the CHILD line and _exit, waits
              for them, then returns
    sleep     execs /bin/sleep SECONDS (another program, not Python)

Prints "START <pid> <TAG> <time.time()>" first, on stderr.
"""
import os
import sys
import time

TICK = 0.02
keep = []


def grow(seconds, site):
    end = time.monotonic() + seconds
    while True:
        site()
        if time.monotonic() >= end:
            break
        time.sleep(TICK)


def parent_site():
    keep.append(bytearray(b"\x33") * (128 << 10))               # SITE:short


def child_site():
    keep.append(bytearray(b"\x44") * (128 << 10))               # SITE:child


def main():
    seconds = float(sys.argv[1])
    how = sys.argv[2]
    tag = sys.argv[3] if len(sys.argv) > 3 else "-"
    sys.stderr.write("START %d %s %.6f\n" % (os.getpid(), tag, time.time()))
    sys.stderr.flush()
    if how == "fork":
        kids = []
        for _ in range(2):
            pid = os.fork()
            if pid == 0:
                grow(seconds, child_site)
                os._exit(0)
            kids.append(pid)
        for pid in kids:
            os.waitpid(pid, 0)
        return
    grow(seconds, parent_site)
    if how == "_exit":
        os._exit(0)
    if how == "exec":
        os.execv(sys.executable, [sys.executable, __file__, str(seconds), "_exit", tag + "-exec"])
    if how == "sleep":
        os.execv("/bin/sleep", ["sleep", str(seconds)])


if __name__ == "__main__":
    main()
