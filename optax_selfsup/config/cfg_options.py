"""``--cfg-options`` overrides, as mmcv's ``DictAction`` parses them, merged into a config.

``merge_options(cfg, ["optimizer.lr=0.1", "runner.max_epochs=2"])``: dotted keys
create nested dicts, an integer key indexes into a list; values are numbers,
booleans, None, lists ``[a,b]`` / ``a,b`` and tuples ``(a,b)``, nested.

What mmcv's ``DictAction`` crashes on (a ``TypeError``, ``ValueError`` or
``RecursionError``) is refused here, naming the option: a word or a negative
number as the index of a list, a list item replaced by a value or given a key
when it is not a dict, a key given to a number or a string, and dicts written as values
(``dict(a=1,b=2)``, ``{...}``), which mmcv cannot parse: their keys are set one
by one instead (``norm_cfg.type=BN norm_cfg.requires_grad=True``).
"""

from __future__ import annotations

import re

from ..errors import ConfigError
from .mmcv1_files import DELETE_KEY, merge


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
    parts = _split_top_level(text)
    if len(parts) == 1:  # e.g. f(1,2): mmcv's DictAction recurses until RecursionError
        raise ConfigError(f"cannot parse {text!r}: brackets must enclose a whole list or "
                          "tuple item, as in [1,2] or (1,(2,3))")
    return [_parse_value(p) for p in parts]


_DICT_VALUE = re.compile(r"(^|[\[(,])dict\(|^\{")
_KEYWORDS = re.compile(r"[A-Za-z_]\w*=[^=]+")


def _dict_value_error(key: str | None, text: str) -> ConfigError:
    """A dict written as a value: mmcv cannot parse one (RecursionError or a string)."""
    key = key or "KEY"
    inner = text[len("dict("):-1] if text.startswith("dict(") and text.endswith(")") else None
    parts = _split_top_level(inner) if inner else []
    replace = (f", adding {key}._delete_=True to replace the config's {key} rather than "
               "update it")
    if parts and all(_KEYWORDS.fullmatch(p) for p in parts):
        how = f"set its keys one by one: {' '.join(f'{key}.{p}' for p in parts)}{replace}"
    elif text.startswith(("dict(", "{")):
        how = f"set its keys one by one: {key}.KEY=VALUE ...{replace}"
    else:
        how = (f"set the keys of the list's dict items one by one ({key}.0.type=VALUE; the "
               "list must exist in the config) or write the list in a config file")
    return ConfigError(f"--cfg-options {key}={text}: a dict cannot be written as a value "
                       f"(mmcv's DictAction cannot parse one either); {how}")


def parse_option_value(text: str, key: str | None = None):
    """mmcv ``DictAction``: numbers, booleans, None, lists ``[a,b]`` / ``a,b`` and tuples
    ``(a,b)``, nested; unbalanced brackets and dicts (``dict(a=1)``, ``{...}``) are a
    ConfigError (``key``, the option's key, names it in the message)."""
    text = text.strip("'\"").replace(" ", "")
    try:
        _check_brackets(text)
    except ValueError as err:
        raise ConfigError(f"imbalanced brackets in {text!r} ({err})") from None
    if _DICT_VALUE.search(text):
        raise _dict_value_error(key, text)
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
            if _DICT_VALUE.search(text.strip("'\"").replace(" ", "")):
                raise _dict_value_error(key, text.strip("'\"").replace(" ", ""))
            try:
                value = parse_option_value(text, key)
            except ConfigError as err:
                raise ConfigError(f"--cfg-options {option!r}: {err}") from None
            items.append((key, value, option))
    nested: dict = {}
    options = []
    for key, value, option in items:
        node = nested
        *parents, last = parts = _option_key(key, option)
        options.append((parts, option))
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--cfg-options {option!r}: {part!r} is also given a "
                                  f"value ({node!r}) by another option")
        node[last] = value
    _check_paths(nested, cfg, [], options)
    return merge(nested, cfg, allow_list_keys=True, path="--cfg-options: ")


def _check_paths(nested: dict, base, where: list[str], options) -> None:
    """Refuse, naming the option, what mmcv's merge crashes on: a list indexed by anything
    but 0..len-1, a list item replaced by a value, a key given to a non-dict."""
    for key, value in nested.items():
        here = [*where, key]
        name = ".".join(here)
        # the option that set this path (a dict given to merge_options sets a whole subtree)
        option = next(opt for parts, opt in options
                      if parts[:len(here)] == here or here[:len(parts)] == parts)
        if isinstance(base, list):
            parent = ".".join(where)
            span = f"0..{len(base) - 1}" if base else "none: it is empty"
            if not key.isdigit():
                what = f"not {key!r}" + (" (no negative indices, as in mmcv)"
                                         if re.fullmatch(r"-\d+", key) else "")
                raise ConfigError(
                    f"--cfg-options {option!r}: {parent!r} is a list, indexed by its items' "
                    f"numbers ({span}), {what}; set a key of one of its dict items "
                    f"({parent}.0.KEY=VALUE) or replace the whole list ({parent}=[...])")
            index = int(key)
            if index >= len(base):
                raise ConfigError(f"--cfg-options {option!r}: index {index} is past the end of "
                                  f"the list {parent!r} (items {span})")
            if not isinstance(value, dict):
                raise ConfigError(
                    f"--cfg-options {option!r}: an item of the list {parent!r} cannot be "
                    f"replaced by a value (mmcv merges options into list items); set a key of "
                    f"a dict item ({name}.KEY=VALUE) or replace the whole list "
                    f"({parent}=[...])")
            item = base[index]
        elif isinstance(value, dict) and key in base and not value.get(DELETE_KEY):
            item = base[key]
        else:
            continue
        if not isinstance(item, dict | list):
            inner = next(iter(value))
            parent = ".".join(where)
            how = f"replace the whole list ({parent}=[...])" if isinstance(base, list) else \
                f"replace it ({name}=VALUE)"
            raise ConfigError(
                f"--cfg-options {option!r}: {name} is {item!r} ({type(item).__name__}), not a "
                f"dict: it has no key {inner!r}; {how}")
        _check_paths(value, item, here, options)
