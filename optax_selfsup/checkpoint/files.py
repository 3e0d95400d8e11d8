"""The files of a checkpoint directory, read and checked without orbax.

Everything a save or a restore can find wrong before orbax starts: a directory
that is a file, an ``extra`` that JSON cannot hold, a step folder that is empty
or half written, a metadata file cut short. Checking first keeps orbax's
background machinery from starting on a save that cannot succeed, and turns its
errors (a bare ``JSONDecodeError`` without a file name) into one line naming the
file.
"""

from __future__ import annotations

import json
import numbers
import os

import numpy as np

from .errors import CheckpointError

ITEMS = ("params", "opt_state")  # the array items every step holds
# orbax's JSON files in a step (array data is in binary OCDBT files, read by tensorstore,
# whose errors name the file already); _CHECKPOINT_METADATA is left out: orbax reads
# around a damaged one
_JSON_NAMES = ("_METADATA", "_sharding", "metadata", "optimizer.json")


def directory_of(directory, what: str) -> str:
    """The absolute path of ``directory``; ``NotADirectoryError`` when it or a parent
    is a file (orbax would start writing and fail in a background thread)."""
    path = os.path.abspath(os.fspath(directory))
    probe = path
    while not os.path.exists(probe):
        parent = os.path.dirname(probe)
        if parent == probe:
            break
        probe = parent
    if os.path.exists(probe) and not os.path.isdir(probe):
        where = "is a file" if probe == path else f"is inside {probe!r}, which is a file"
        raise NotADirectoryError(f"{what}: directory={os.fspath(directory)!r} {where}; "
                                 "checkpoints go in a directory")
    return path


def step_numbers(path: str) -> list[int]:
    """The step folders of a checkpoint directory (orbax names them by the step number;
    half-written ones end in ``.orbax-checkpoint-tmp...`` and are not steps)."""
    if not os.path.isdir(path):
        return []
    return sorted(int(n) for n in os.listdir(path)
                  if n.isdigit() and os.path.isdir(os.path.join(path, n)))


def missing_items(step_dir: str) -> list[str]:
    """The files a complete optax_selfsup step has and ``step_dir`` lacks."""
    return [f"{item}/_METADATA" for item in ITEMS
            if not os.path.isfile(os.path.join(step_dir, item, "_METADATA"))]


def check_json_files(step_dir: str, source: str) -> None:
    """Parse every JSON file orbax wrote in the step; a damaged one is named."""
    for root, _, files in os.walk(step_dir):
        for name in files:
            if name in _JSON_NAMES or os.path.basename(root) == "array_metadatas":
                path = os.path.join(root, name)
                try:
                    with open(path, encoding="utf-8") as f:
                        json.load(f)
                except (ValueError, UnicodeDecodeError) as err:
                    raise CheckpointError(
                        f"{source}: {path} is damaged ({type(err).__name__}: {err}; "
                        f"{os.path.getsize(path)} bytes): the step was cut short or "
                        "overwritten; restore another step") from None


def read_json(path: str):
    """A JSON file orbax wrote (the optimizer record), None when there is none."""
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def jsonable(value, where: str = "extra"):
    """``value`` with NumPy scalars (and 0-d arrays) as Python numbers; a ``CheckpointError``
    naming the key for what JSON cannot hold or would change (a non-string dict key comes
    back as a string). Tuples are saved as lists."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise CheckpointError(f"save_checkpoint: {where} has the key {key!r} "
                                      f"({type(key).__name__}); JSON keys are strings and it "
                                      "would come back as a string: use str keys")
            out[key] = jsonable(item, f"{where}[{key!r}]")
        return out
    if isinstance(value, (list, tuple)):
        return [jsonable(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, np.generic) or (hasattr(value, "shape") and hasattr(value, "dtype")
                                         and tuple(value.shape) == ()):
        item = np.asarray(value).item()
        if isinstance(item, (bool, numbers.Number)) and not isinstance(item, complex):
            return item
    shape = getattr(value, "shape", None)
    hint = (f"an array of shape {tuple(shape)}: save arrays in params or opt_state, or "
            "convert it with .tolist()" if shape is not None else
            f"a {type(value).__name__}, which JSON cannot hold")
    raise CheckpointError(f"save_checkpoint: {where} is {hint}; extra holds JSON values "
                          "(str, int, float, bool, None, lists, dicts with str keys)")


def check_leaves(tree, what: str) -> None:
    """Every leaf of ``tree`` must be an array or a number (what orbax can write)."""
    import jax

    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        if isinstance(leaf, (np.ndarray, np.generic, jax.Array, numbers.Number)):
            continue
        name = jax.tree_util.keystr(path)
        kind = "an abstract jax.ShapeDtypeStruct (no values)" if isinstance(
            leaf, jax.ShapeDtypeStruct) else f"a {type(leaf).__name__}"
        raise CheckpointError(f"save_checkpoint: {what}{name} is {kind}; params and opt_state "
                              "hold arrays and numbers only")
