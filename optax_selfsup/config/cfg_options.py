"""``--cfg-options`` overrides, as mmcv's ``DictAction`` parses them, merged into a config.

``merge_options(cfg, ["optimizer.lr=0.1", "runner.max_epochs=2"])``: dotted keys
create nested dicts, an integer key indexes into a list; values are numbers,
booleans, None, lists ``[a,b]`` / ``a,b`` and tuples ``(a,b)``, nested.
"""

from __future__ import annotations

from ..errors import ConfigError
from .mmcv1_files import merge


def _parse_scalar(text: str):
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    if text == "None":
        return None
    return text


_CLOSING = {"(": ")", "[": "]"}


def _check_brackets(text: str) -> None:
    """Every '(' / '[' closed by its own ')' / ']' in order (mmcv: "Imbalanced brackets")."""
    stack = []
    for ch in text:
        if ch in _CLOSING:
            stack.append(_CLOSING[ch])
        elif ch in ")]":
            if not stack or stack.pop() != ch:
                raise ValueError(f"unexpected {ch!r}")
    if stack:
        raise ValueError(f"{stack[-1]!r} missing")


def _split_top_level(text: str) -> list[str]:
    """``text`` split at the commas outside brackets (brackets already checked)."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    if start < len(text):
        parts.append(text[start:])
    return parts


def _closes_at_end(text: str) -> bool:
    """Whether the bracket opening ``text`` is the one closing it at the end."""
    depth = 0
    for i, ch in enumerate(text):
        depth += ch in "(["
        depth -= ch in ")]"
        if depth == 0:
            return i == len(text) - 1
    return False


def _parse_value(text: str):
    if text[:1] in "([" and text and _closes_at_end(text):
        items = [_parse_value(p) for p in _split_top_level(text[1:-1])]
        return tuple(items) if text[0] == "(" else items
    if "," not in text:
        return _parse_scalar(text)
    return [_parse_value(p) for p in _split_top_level(text)]


def parse_option_value(text: str):
    """mmcv ``DictAction``: numbers, booleans, None, lists ``[a,b]`` / ``a,b`` and tuples
    ``(a,b)``, nested; unbalanced brackets are a ConfigError."""
    text = text.strip("'\"").replace(" ", "")
    try:
        _check_brackets(text)
    except ValueError as err:
        raise ConfigError(f"imbalanced brackets in {text!r} ({err})") from None
    return _parse_value(text)


def _option_key(key, option) -> list[str]:
    parts = str(key).split(".")
    if not str(key).strip():
        raise ConfigError(f"--cfg-options {option!r}: no key before '='; write KEY=VALUE, "
                          "e.g. optimizer.lr=0.1")
    if not all(parts):
        raise ConfigError(f"--cfg-options {option!r}: the key {key!r} has an empty part; "
                          "write KEY=VALUE with a dotted KEY such as optimizer.lr")
    return parts


def merge_options(cfg: dict, options) -> dict:
    """Apply ``--cfg-options`` style overrides: ``["optimizer.lr=0.1", ...]`` or a dict.

    Dotted keys create nested dicts; an integer key indexes into a list. A missing
    key or value, an empty key part (``a..b``) or unbalanced brackets are errors
    naming the option.
    """
    if isinstance(options, dict):
        items = [(key, value, f"{key}={value!r}") for key, value in options.items()]
    else:
        items = []
        for option in options:
            if "=" not in option:
                raise ConfigError(f"--cfg-options {option!r}: expected KEY=VALUE")
            key, text = option.split("=", 1)
            if not text.strip():
                raise ConfigError(f"--cfg-options {option!r}: no value after '='; write "
                                  f"{key or 'KEY'}=VALUE (\"{key or 'KEY'}=''\" for an empty "
                                  "string, None for None)")
            try:
                value = parse_option_value(text)
            except ConfigError as err:
                raise ConfigError(f"--cfg-options {option!r}: {err}") from None
            items.append((key, value, option))
    nested: dict = {}
    for key, value, option in items:
        node = nested
        *parents, last = _option_key(key, option)
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--cfg-options {option!r}: {part!r} is also given a "
                                  f"value ({node!r}) by another option")
        node[last] = value
    return merge(nested, cfg, allow_list_keys=True, path="--cfg-options: ")
