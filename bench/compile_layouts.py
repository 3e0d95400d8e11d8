"""Why the compile time grows with the number of tensors, and what does not help.

    python bench/compile_layouts.py [--leaves 1000] [--variants "optax.sgd,oss SGD"]

On a tree of ``--leaves`` tiny tensors (bench/trees.py ``tiny_shapes``), compiles
one ``update + apply_updates`` step, each variant in a fresh process (XLA caches
nothing across them), and prints the compile seconds, the number of XLA
kernels (fusions) in the compiled step and how many of them are distinct. The
variants are simple single-group optimizers, so their seconds differ from the
full benchmark's compile scan, which compiles the SimCLR config's two groups:

- stock ``optax.sgd`` (momentum): two elementwise kernels per tensor;
- ``oss.torch_optimizer('SGD')``: the same kernels (it keeps no step count
  without dampening, as torch keeps none);
- stock ``optax.lars`` and ``optax.clip_by_global_norm`` + ``optax.lars`` (the
  nearest stock chain to SimCLR's LARS + clip);
- ``oss.torch_optimizer('LARS', clip=...)`` (what ``build_optimizer`` builds for it);
- ``oss.torch_optimizer('AdamW')`` and stock ``optax.adamw``;
- ``packed``: the same LARS + clip maths on the tensors concatenated into one
  vector (per-tensor norms by ``segment_sum``) with the momentum kept in that
  flat layout and the updates sliced back per tensor: one kernel per tensor, but
  every slice is a distinct kernel, so it stays several times slower to compile
  than ``optax.sgd``.

It also prints how many of those kernels are distinct (names ignored): XLA
compiles identical kernels once, so a tree that repeats a few shapes (this one,
or a transformer's blocks) costs little as long as no tensor's kernels depend on
its position in the tree. LARS needs two reductions per tensor (the parameter's
and the gradient's norm) and XLA's CPU backend compiles each small reduction as
several kernels, so any per-tensor LARS (stock ``optax.lars`` included) compiles
several times slower than SGD; see bench/README.md.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

VARIANTS = ("optax.sgd", "oss SGD", "optax.lars", "optax clip + lars", "oss LARS + clip",
            "oss AdamW", "optax.adamw", "packed LARS + clip")


def kernel_counts(compiled_text: str) -> tuple[int, int]:
    """(kernels, distinct kernels) of an optimized HLO module: its fusions, and how
    many of them differ in their instructions (names ignored)."""
    text = re.sub(r", metadata=\{[^}]*\}", "", compiled_text)
    kernels = len(re.findall(r" fusion\([^\n]*calls=", text))
    called = set(re.findall(r" fusion\([^\n]*calls=(%[\w.-]+)", text))
    bodies = re.findall(r"\n(%[\w.-]+) \(([^)]*)\) -> [^{]*\{\n(.*?)\n\}", text, re.S)
    anonymous = lambda t: re.sub(r"%?[A-Za-z_][\w-]*\.\d+(\.\d+)*|\bparam_\d+", "x", t)
    return kernels, len({anonymous(a + b) for name, a, b in bodies if name in called})


def build(name):
    import optax

    import optax_selfsup as oss

    if name == "optax.sgd":
        return optax.sgd(0.1, momentum=0.9)
    if name == "oss SGD":
        return oss.torch_optimizer("SGD", lr=0.1, momentum=0.9)
    if name == "optax.lars":
        return optax.lars(0.1, weight_decay=1e-6, momentum=0.9)
    if name == "optax clip + lars":
        return optax.chain(optax.clip_by_global_norm(2.0),
                           optax.lars(0.1, weight_decay=1e-6, momentum=0.9))
    if name == "oss LARS + clip":
        return oss.torch_optimizer("LARS", lr=0.1, momentum=0.9, weight_decay=1e-6,
                                   clip=(2.0, 2))
    if name == "oss AdamW":
        return oss.torch_optimizer("AdamW", lr=1e-3, weight_decay=0.05)
    if name == "optax.adamw":
        return optax.adamw(1e-3, weight_decay=0.05)
    raise KeyError(name)


def packed_step(params):
    """LARS + clip on the concatenated tensors; momentum stored flat."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    leaves, treedef = jax.tree.flatten(params)
    sizes = [x.size for x in leaves]
    offsets = np.cumsum([0] + sizes)
    segment = np.repeat(np.arange(len(leaves)), sizes).astype(np.int32)
    n = len(leaves)

    def step(params, momentum, grads):
        flat = lambda t: jnp.concatenate([x.ravel() for x in jax.tree.leaves(t)])
        p, g = flat(params), flat(grads)
        g_sq = jax.ops.segment_sum(g * g, segment, n, indices_are_sorted=True)
        total = jnp.sqrt(jnp.sum(g_sq))
        coef = jnp.minimum(2.0 / (total + 1e-6), 1.0)
        g_norm = jnp.sqrt(g_sq) * coef
        p_norm = jnp.sqrt(jax.ops.segment_sum(p * p, segment, n, indices_are_sorted=True))
        trust = jnp.where((p_norm != 0) & (g_norm != 0),
                          1e-3 * p_norm / (g_norm + 1e-6 * p_norm + 1e-8), 1.0)
        momentum = 0.9 * momentum + (g * coef + 1e-6 * p) * (trust * 0.1)[segment]
        new_p = [(p - momentum)[offsets[i]:offsets[i + 1]].reshape(x.shape)
                 for i, x in enumerate(leaves)]
        return jax.tree.unflatten(treedef, new_p), momentum

    return step, jnp.zeros((int(offsets[-1]),), jnp.float32)


def one(name, leaves):
    """Compile one variant here; print 'seconds kernels distinct'."""
    import jax
    from trees import make_tree, tiny_shapes
    from variants import compile_aot, optax_step

    params = make_tree(tiny_shapes(leaves))
    spec = lambda t: jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), t)
    if name == "packed LARS + clip":
        fn, state = packed_step(params)
        step = jax.jit(fn, donate_argnums=(0, 1))
    else:
        tx = build(name)
        state = tx.init(params)
        step = optax_step(tx)  # update + apply_updates, params and state donated
    compiled, info = compile_aot(step, spec(params), spec(state), spec(params))
    seconds = info["compile_s"]
    kernels, distinct = kernel_counts(compiled.as_text())
    print(f"{seconds:.2f} {kernels} {distinct}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--leaves", type=int, default=1000)
    ap.add_argument("--variants", default=",".join(VARIANTS),
                    help="comma list of: " + ", ".join(VARIANTS))
    ap.add_argument("--one", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.leaves < 1:
        ap.error(f"--leaves={args.leaves} must be at least 1")
    if args.one:
        return one(args.one, args.leaves)
    names = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in names if v not in VARIANTS]
    if unknown:
        ap.error(f"unknown variant(s) {unknown}; choose from {', '.join(VARIANTS)}")
    rows = []
    for name in names:
        out = subprocess.run([sys.executable, __file__, "--one", name, "--leaves",
                              str(args.leaves)], capture_output=True, text=True)
        if out.returncode:
            sys.exit(f"compile_layouts: variant {name!r} failed:\n{out.stderr.strip()}")
        seconds, kernels, distinct = out.stdout.split()[-3:]
        rows.append((name, float(seconds), int(kernels), int(distinct)))
        print(f"  {name}: {seconds} s, {kernels} kernels ({distinct} distinct)", flush=True)
    base = {n: s for n, s, _, _ in rows}.get("optax.sgd")
    print(f"\n| variant ({args.leaves} tiny tensors) | compile s | kernels | kernels / tensor"
          " | distinct kernels |" + (" x optax.sgd |" if base else ""))
    print("|---|---|---|---|---|" + ("---|" if base else ""))
    for name, seconds, kernels, distinct in rows:
        print(f"| {name} | {seconds:.1f} | {kernels} | {kernels / args.leaves:.1f} | {distinct} |"
              + (f" {seconds / base:.1f} |" if base else ""))


if __name__ == "__main__":
    main()
