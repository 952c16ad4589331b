"""A small request-handling service with a memory leak, for `make demo`.

Each "request" parses a payload, renders a response and caches the rendered
response in a dict that is never evicted: the leak. Everything else the
service allocates is freed when the request is done.
"""
import json
import sys
import time

_response_cache = {}            # never evicted: grows with every distinct request


def parse(payload):
    return json.loads(payload)


def render(doc):
    lines = ["%s=%s" % (k, v) for k, v in sorted(doc.items())]
    return "\n".join(lines).encode() * 4


def handle(request_id):
    payload = json.dumps({"id": request_id, "user": "u%d" % (request_id % 97),
                          "items": list(range(request_id % 13))})
    doc = parse(payload)
    body = render(doc)
    _response_cache[request_id] = body          # the leak: one body per request
    return len(body)


def main(seconds):
    deadline = time.monotonic() + seconds
    served = 0
    while time.monotonic() < deadline:
        for _ in range(200):
            handle(served)
            served += 1
        time.sleep(0.05)
    print("served %d requests, cache holds %d responses" % (served, len(_response_cache)))


if __name__ == "__main__":
    main(float(sys.argv[1]) if len(sys.argv) > 1 else 6.0)
