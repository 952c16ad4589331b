"""Workload (tests/tracer/test_run_attach.c): a leak. Every request keeps its
record in a module-level list; temporary copies are freed on return."""


class Request:
    def __init__(self, n):
        self.n = n
        self.body = ("payload-%06d;" % n) * 40
        self.headers = {"id": n, "path": "/item/%d" % n}


LEAKED = []


def handle(n):
    req = Request(n)
    scratch = [req.body.upper() for _ in range(3)]      # freed on return
    LEAKED.append(req)
    return len(scratch)


for i in range(1500):
    handle(i)
print("leak", len(LEAKED))
