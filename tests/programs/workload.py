# workload.py — a Python workload for programs/run_programs.sh: builds and tears down dicts,
# lists, sets, strings and bytearrays, then prints a digest that must be identical with and
# without strata. Run with PYTHONMALLOC=malloc so every object goes through malloc.
import hashlib
import json
import random

rng = random.Random(1234)
table = {}
for i in range(200000):
    table.setdefault("key%d" % rng.randrange(1000000), []).append(i)
ranked = sorted(table.items(), key=lambda kv: (len(kv[1]), kv[0]))
joined = "".join(k for k, _ in ranked[:50000])
strings = [str(i) * (i % 17) for i in range(100000)]
seen = {s[:5] for s in strings if s}
buf = bytearray()
for i in range(20000):
    buf += bytes([i % 251]) * (i % 97)  # grows by realloc
for k in list(table)[::2]:
    del table[k]  # frees half the lists
nested = [{"n": i, "t": (i, str(i)), "l": list(range(i % 50))} for i in range(30000)]

digest = hashlib.sha256()
digest.update(json.dumps(ranked[:1000]).encode())
digest.update(joined.encode())
digest.update("|".join(strings).encode())
digest.update(",".join(sorted(seen)).encode())
digest.update(bytes(buf))
digest.update(json.dumps(nested[::97]).encode())
print(len(table), len(joined), len(seen), len(buf), digest.hexdigest())
