"""Where a compiled step moves parameter-sized data: a summary of optimized HLO text.

    python bench/bench_update.py --quick --dump-hlo /tmp/hlo
    python bench/hlo_summary.py /tmp/hlo/resnet50_simclr_a_step.txt [more files]

Lists the instructions of the ENTRY computation that produce arrays (the
buffers XLA materialises), grouped by what they are: ``copy`` of a donated
input (XLA copies an input it must still read after an aliased output
overwrote it), loop fusions by their name (``select`` = jnp.where,
``subtract`` = ``new_p - p``, ...), reductions, broadcasts (zeros). Bytes are
the output sizes, i.e. one write each (and at least one read later).
"""

from __future__ import annotations

import collections
import math
import re
import sys

SHAPE = re.compile(r"^\s*(?:ROOT )?%?([\w.\-]+) = (f32|f64|bf16|f16|s32|pred)\[([0-9,]*)\]\S* "
                   r"(\w+)\((.*)$")
BYTES = {"f32": 4, "f64": 8, "bf16": 2, "f16": 2, "s32": 4, "pred": 1}


def entry_lines(text):
    start = text.index("\nENTRY")
    body = text[start:].split("\n")[2:]
    return body[: next(i for i, ln in enumerate(body) if ln.startswith("}"))]


def summarize(text, min_elements=1 << 16):
    groups = collections.defaultdict(lambda: [0, 0])
    lines = entry_lines(text)
    inputs = {m.group(1) for m in map(SHAPE.match, lines) if m and m.group(4) == "parameter"}
    for line in lines:
        m = SHAPE.match(line)
        if not m:
            continue
        name, dtype, dims, op, rest = m.groups()
        n = math.prod(int(d) for d in dims.split(",")) if dims else 1
        if n < min_elements or op in ("parameter", "bitcast", "get", "tuple"):
            continue
        if op == "copy":
            source = rest.split(")")[0].lstrip("%")
            key = "copy of an input" if source in inputs else "copy of a computed value"
        elif op == "fusion":
            kind = re.search(r"kind=(\w+)", line)
            base = re.sub(r"[._]\d+$", "", name)
            key = f"fusion {base} ({kind.group(1) if kind else '?'})"
        else:
            key = op
        groups[key][0] += 1
        groups[key][1] += n * BYTES[dtype]
    return groups


def main(paths):
    for path in paths:
        with open(path) as f:
            groups = summarize(f.read())
        total = sum(b for _, b in groups.values())
        print(f"{path}: {total / 2**20:.0f} MiB written by large ENTRY instructions")
        for key, (count, size) in sorted(groups.items(), key=lambda kv: -kv[1][1]):
            print(f"  {size / 2**20:8.1f} MiB  {count:4d} x  {key}")


if __name__ == "__main__":
    main(sys.argv[1:])
