"""Workload (tests/tracer/test_run_attach.c): text processing. Deterministic
text from a fixed vocabulary, tokenized with re, counted, indexed by line and
formatted into a report that is kept."""
import collections
import re

VOCAB = ("alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu "
         "nu xi omicron pi rho sigma tau upsilon phi chi psi omega").split()


def make_lines(n):
    state, lines = 12345, []
    for _ in range(n):
        words = []
        for _ in range(12):
            state = (state * 1103515245 + 12345) & 0x7FFFFFFF
            words.append(VOCAB[state % len(VOCAB)] + str(state % 7))
        lines.append(" ".join(words))
    return lines


LINES = make_lines(600)
WORD = re.compile(r"[a-z]+\d")
counts = collections.Counter()
index = collections.defaultdict(list)
for lineno, line in enumerate(LINES):
    for word in WORD.findall(line):
        counts[word] += 1
        index[word].append(lineno)
REPORT = ["%-12s %5d %s" % (w, c, index[w][:5]) for w, c in counts.most_common()]
print("text", len(counts), len(REPORT))
