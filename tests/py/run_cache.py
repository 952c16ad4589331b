"""Workload (tests/tracer/test_run_attach.c): caches. A bounded LRU cache
of computed tuples (entries are evicted), an unbounded dict of rendered
pages that only grows, and an access log. Its own lines hold more than the
interpreter's small start-up lines, whose sizes move by a few blocks with
the memory layout of a run (free-list reuse in abc's weak sets): the top 10
compared with PYTHONTRACEMALLOC is then about this program."""
import functools


@functools.lru_cache(maxsize=300)
def squares(n):
    return tuple(i * i for i in range(n % 97 + 3))


PAGES = {}
ACCESS_LOG = []


def render(key):
    page = PAGES.get(key)
    if page is None:
        page = PAGES[key] = ("<p>%s</p>" % key).encode() * 20
    return page


total = 0
for i in range(1500):
    total += len(squares(i % 700))
    total += len(render("page-%d" % (i % 600)))
    ACCESS_LOG.append(("page-%d" % (i % 600), i, i % 7))
print("cache", total, squares.cache_info().currsize, len(PAGES), len(ACCESS_LOG))
