"""Workload (tests/tracer/test_run_attach.c): caches. A bounded LRU cache
of computed tuples (entries are evicted) and an unbounded dict of rendered
pages that only grows."""
import functools


@functools.lru_cache(maxsize=300)
def squares(n):
    return tuple(i * i for i in range(n % 97 + 3))


PAGES = {}


def render(key):
    page = PAGES.get(key)
    if page is None:
        page = PAGES[key] = ("<p>%s</p>" % key).encode() * 20
    return page


total = 0
for i in range(1500):
    total += len(squares(i % 700))
    total += len(render("page-%d" % (i % 600)))
print("cache", total, squares.cache_info().currsize, len(PAGES))
