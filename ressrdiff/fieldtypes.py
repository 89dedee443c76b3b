"""Type checks of config values against a dataclass's field annotations.

YAML and ``--set`` hand over whatever was typed: ``steps: 1.5``, ``steps: true`` or
``base_channels: "sixteen"`` would otherwise be accepted and fail later with a traceback (or,
worse, train 2 steps and record 1.5). :func:`field_type_error` says, in one line naming the key,
what a value should have been. An integer field takes an ``int`` (not a ``bool``, not a
``float``), a float field any real number but a ``bool``, a bool field only ``true``/``false``;
other annotations (strings, mappings, unions with them) are left to the classes themselves.
"""

from __future__ import annotations

import dataclasses
import numbers
from collections.abc import Mapping
from typing import Any

__all__ = ["field_type_error", "check_field_types"]

_WORDS = {
    "int": "an integer",
    "float": "a number",
    "bool": "true or false",
    "tuple[int, ...]": "a list of integers",
}


def _accepts(kind: str, v: Any) -> bool | None:
    """Whether ``v`` fits the annotation ``kind`` (None: a kind not checked here)."""
    if kind == "None":
        return v is None
    if kind == "int":
        return isinstance(v, numbers.Integral) and not isinstance(v, bool)
    if kind == "float":
        return isinstance(v, numbers.Real) and not isinstance(v, bool)
    if kind == "bool":
        return isinstance(v, bool)
    if kind == "tuple[int, ...]":
        return isinstance(v, list | tuple) and all(_accepts("int", x) for x in v)
    return None


def field_type_error(annotation: Any, value: Any, where: str) -> str | None:
    """The one-line complaint when ``value`` does not fit ``annotation`` (a string such as
    ``"int | None"``), else None. Annotations with kinds not listed above are not checked."""
    kinds = [k.strip() for k in str(annotation).split("|")]
    verdicts = [_accepts(k, value) for k in kinds]
    if any(v is None for v in verdicts) or any(verdicts):
        return None
    words = [_WORDS[k] for k in kinds if k in _WORDS]
    if "None" in kinds:
        words.append("null")
    return f"{where} must be {' or '.join(words)}, got {value!r}"


def check_field_types(cls: type, values: Mapping[str, Any], prefix: str = "") -> str | None:
    """The first complaint of :func:`field_type_error` over the fields of dataclass ``cls``
    present in ``values`` (each named ``{prefix}{field}``), else None."""
    for f in dataclasses.fields(cls):
        if f.name in values:
            msg = field_type_error(f.type, values[f.name], f"{prefix}{f.name}")
            if msg:
                return msg
    return None
