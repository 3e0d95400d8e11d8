"""Tables of bench_update.py's measurements (markdown) and bench/README.md."""

from __future__ import annotations

import dataclasses
import statistics

VARIANTS = ("a built", "a built in-place", "b fused", "c stock", "d torch",
            "d torch-foreach")
SHORT = {"a built": "a", "a built in-place": "a-ip", "b fused": "b", "c stock": "c",
         "d torch": "d", "d torch-foreach": "d-fe"}
MIB = 2.0**20


@dataclasses.dataclass
class Row:
    tree: str
    config: str
    kind: str  # 'update' or 'accumulate'
    k: int
    groups: int
    times: dict  # label -> per-round median seconds
    faults: dict  # label -> median minor page faults per micro-step
    info: dict  # label -> compile_s, temp, fresh (jax variants)
    state: dict  # label -> optimizer state bytes / parameter bytes
    param_bytes: int
    devs: dict  # label -> max |x - x_a| / max(1, |x_a|) after the warm-up


def ratio(row, num, den):
    a, b = row.times.get(num), row.times.get(den)
    if not a or not b:
        return None
    return statistics.median(x / y for x, y in zip(a, b))


def peak(row, label, info):
    """Peak memory of a micro-step over the parameter bytes: what the training step holds
    (params, gradients, optimizer state with any accumulator) plus the call's fresh
    outputs and scratch (donated buffers are written in place and add nothing)."""
    if info is None or label not in row.state:
        return None
    return 2 + row.state[label] + (info["fresh"] + info["temp"]) / row.param_bytes


def _fmt(x, spec, missing="-"):
    return missing if x is None else format(x, spec)


def _mark(x, limit):
    return "" if x is None else (" ok" if x <= limit else " **x**")


def _table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def step_tables(rows: list[Row]) -> list[str]:
    if not rows:
        return []
    present = [v for v in VARIANTS if any(v in r.times for r in rows)]
    header = (["tree", "config", "micro-step"] + [f"{SHORT[v]} ms" for v in present]
              + ["a/b (<=1.15)", "a-ip/b (<=1.15)", "a/c (<=1.0)", "d/a", "d-fe/a"])
    body = []
    for r in rows:
        kind = r.kind if r.k == 1 else f"{r.kind} (k={r.k})"
        cells = [r.tree, r.config, kind]
        cells += [_fmt(statistics.median(r.times[v]) * 1e3 if v in r.times else None, ".1f")
                  for v in present]
        ab, ac = ratio(r, "a built", "b fused"), ratio(r, "a built", "c stock")
        aib = ratio(r, "a built in-place", "b fused")
        cells += [_fmt(ab, ".2f") + _mark(ab, 1.15), _fmt(aib, ".2f") + _mark(aib, 1.15),
                  _fmt(ac, ".2f") + _mark(ac, 1.0),
                  _fmt(ratio(r, "d torch", "a built"), ".2f"),
                  _fmt(ratio(r, "d torch-foreach", "a built"), ".2f")]
        body.append(cells)
    times = "### Step time (median of per-round medians) and ratios\n\n" + _table(header, body)

    header = ["tree", "config", "micro-step", "compile s a / a-ip / b / c",
              "state / params a / b / c / d", "scratch % of params a / a-ip / b / c (<5)",
              "fresh outputs MiB a / a-ip / b / c", "peak x params a / a-ip / b / c",
              "page faults / step a / a-ip / b / c / d",
              "max dev. from a: a-ip / b / c / d"]
    body = []
    for r in rows:
        jax_labels = ["a built", "a built in-place", "b fused", "c stock"]
        info = [r.info.get(v) for v in jax_labels]
        scratch = [None if i is None else 100 * i["temp"] / r.param_bytes for i in info]
        a_scratch = max((s for s in scratch[:2] if s is not None), default=None)
        body.append([
            r.tree, r.config, r.kind,
            " / ".join(_fmt(i and i["compile_s"], ".1f") for i in info),
            " / ".join(_fmt(r.state.get(v), ".2f")
                       for v in ("a built", "b fused", "c stock", "d torch")),
            " / ".join(_fmt(s, ".1f") for s in scratch) + _mark(a_scratch, 5.0),
            " / ".join(_fmt(i and i["fresh"] / MIB, ".0f") for i in info),
            " / ".join(_fmt(peak(r, v, i), ".2f") for v, i in zip(jax_labels, info)),
            " / ".join(_fmt(r.faults.get(v), ".0f") for v in jax_labels + ["d torch"]),
            " / ".join(_fmt(r.devs.get(v), ".0e")
                       for v in ("a built in-place", "b fused", "c stock", "d torch")),
        ])
    memory = ("### Compile time, memory, agreement\n\n" + _table(header, body))
    return [times, memory]


def compile_tables(scan) -> list[str]:
    if not scan:
        return []
    header = ["config", "tree", "groups (lr, wd, lars_exclude)", "build_optimizer s", "compile a s",
              "compile c (stock optax) s", "compile optax.sgd s", "a/c", "a/sgd (<=1)"]
    body = [[c, t, str(g), f"{b:.2f}", f"{o:.1f}", f"{k:.1f}", f"{s:.1f}", f"{o / k:.2f}",
             f"{o / s:.2f}" + _mark(o / s, 1)]
            for c, t, g, b, o, k, s in scan]
    text = "### Compile time scan\n\n" + _table(header, body)
    by_label = {c: o for c, _, _, _, o, _, _ in scan}
    if "ViT ft, layer decay" in by_label and "ViT ft, one group" in by_label:
        r = by_label["ViT ft, layer decay"] / by_label["ViT ft, one group"]
        text += (f"\n\nLayer decay vs one group, compile-time ratio: {r:.2f}"
                 f"{_mark(r, 1.5)} (target <= 1.5)")
    return [text]


INTRO = """\
# Update-step benchmark

`bench/bench_update.py` measures one optimizer micro-step on parameter trees
shaped like ResNet-50 (161 tensors, 25.6M parameters) and ViT-B/16 (150 tensors,
85.8M) with MMSelfSup's torch names, float32, for the configs in `configs/`:

- **simclr**: `selfsup/simclr/...` (LARS, bn/bias without decay and LARS
  adaptation, linear warmup + cosine by epoch) with `grad_clip=dict(max_norm=2.0)`;
- **byol**: `selfsup/byol/...accum16...` (LARS, `update_interval=16`);
- **mae**: `selfsup/mae/...` (AdamW, no decay on norms / biases / embeddings,
  StepFixCosineAnnealing);
- **vit_ft**: `benchmarks/classification/vit-base-p16_ft-...` (AdamW, layer decay
  0.65: 14 lr levels, clip 5.0); ViT tree only.

Variants, run in interleaved rounds (a, b, c, d, a, b, ...):

- **a** `build_optimizer`'s transformation, `step = update + apply_updates` in
  `jax.jit(step, donate_argnums=(0, 1))`;
- **a-ip** the same transformation stepped with `oss.update_and_apply(tx, grads,
  state, params)` (same values bit for bit; the params are written inside the
  optimizer's own conditional step, so an accumulate-only micro-step does not
  touch them);
- **b** a hand-fused jnp step with the same maths (`bench/fused.py`): the practical
  limit. With accumulation, accumulate-only micro-steps are `acc += g / k`. Its
  agreement with (a) is checked in every run (column "max dev.") and, exactly in
  float64, by `parity_tests/test_bench_smoke.py`;
- **c** the nearest stock optax chain (`optax.lars` / `optax.adamw` with masks,
  `multi_transform` for lr groups, `clip_by_global_norm`, `MultiSteps`), not
  numerically identical (by-epoch stairs, optax.lars details);
- **d** `torch_ref` in eager torch (the config's optimizer + hooks for named
  parameters, stepped in mmcv's hook order); **d-fe** the same with
  `foreach=True` (torch.optim's multi-tensor kernels; MMSelfSup's LARS has none).
  Its eager steps vary a lot within and between runs on a shared machine (the same
  SimCLR step was seen at 0.1 s and at 2-4 s): read d/a as an order of magnitude.

Columns: times are medians over rounds of each round's median; ratios are
computed per round, then medianed. *compile*: trace + lower + compile of the
jitted step (the first call's overhead; the compile scan also compiles c and
`optax.sgd` on the same tree; b with accumulation: the update function
on update rows, its start + accumulate functions on accumulate-only rows).
*state / params*: optimizer state bytes over parameter bytes (b includes its
accumulator; d: torch's optimizer state, without `.grad`). *scratch*: XLA's
temp allocation (`compiled.memory_analysis().temp_size_in_bytes`) in percent of
the parameter bytes. *fresh outputs*: output bytes not aliased to the donated
inputs (new buffers every step). *peak x params*: the memory a micro-step needs, over
the parameter bytes: params + gradients + optimizer state (with the accumulator) +
fresh outputs + scratch; the floor is 2 + the state column. *page faults / step*:
minor page faults of the process per micro-step (4 KiB each: memory touched for the first time, i.e.
buffers allocated and released every step). *max dev. from a*: largest
`|x - x_a| / max(1, |x_a|)` of the parameters after the warm-up steps.

Targets (reported, never asserted; the test suite has no timings): a/b (and
a-ip/b) <= 1.15
for every config on both trees, update and accumulate-only micro-steps alike;
a/c <= 1.0; scratch < 5% of the parameter bytes; optimizer state = the
optimizer's own buffers plus one accumulator when accumulating; compile time
not growing with the number of groups (layer decay vs one group within 1.5x)
and at most optax.sgd's (momentum 0.9) at 1k / 3k / 10k leaves.

Commands:

```bash
python bench/bench_update.py --quick                      # ResNet-50, SimCLR + BYOL (< 3 min)
python bench/bench_update.py                              # everything; 10-20 min on 2 cores
# only a full run rewrites bench/README.md; a partial one prints (--readme FILE to write it)
python bench/bench_update.py --leaves 1000,3000,10000 --skip-steps   # compile scan incl. 10k
python bench/bench_update.py --quick --dump-hlo /tmp/hlo --hlo-only  # HLO of a, b, c
python bench/hlo_summary.py /tmp/hlo/resnet50_simclr_a_step.txt      # its big buffers
python bench/dispatch_floor.py --tree vit-b16   # accumulate micro-step: call overhead vs work
python bench/compile_layouts.py --leaves 1000   # compile s, kernels, distinct kernels
```

`--dump-hlo` writes each variant's optimized HLO and prints, per function, the
parameter-sized buffers its ENTRY computation materialises (`bench/hlo_summary.py`):
copies of donated inputs, `jnp.where` selects, `new_p - p` subtractions, ...

Options: `--trees resnet50,vit-b16`, `--configs simclr,byol,mae,vit_ft`,
`--rounds N`, `--steps N` (update steps per round), `--cycles N` (accumulation
cycles per round), `--no-torch`, `--readme PATH` ('' to skip), `--note TEXT`.
"""


KEPT = "## Where the targets stand"  # a hand-written section after the tables, kept


def write_readme(path, tables, *, command, machine, when, wall, load, note):
    try:
        with open(path) as f:
            old = f.read()
        kept = old[old.index(KEPT):] if KEPT in old else ""
    except OSError:
        kept = ""
    lines = [INTRO, "## Latest results", "",
             f"`{command}` on {when}, {wall:.0f} s wall.", "",
             f"Machine: {machine}. Load average {load[0]:.1f} at the start, "
             f"{load[1]:.1f} at the end.", ""]
    if note:
        lines += [note, ""]
    for t in tables:
        lines += [t, ""]
    if kept:
        lines += [kept.rstrip("\n"), ""]
    with open(path, "w") as f:
        f.write("\n".join(lines))
