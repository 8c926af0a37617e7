"""Key renaming by ordered regex rules: the shared machinery of every checkpoint remap.

A remap is a list of (pattern, replacement) rules applied in order to each key; a replacement may
be a function of the match (for index arithmetic such as `network.5` -> `stages.3.downsample`).
Writing each direction as its own rule list keeps both readable and lets tests round-trip them.
"""

from __future__ import annotations

import re
from typing import Callable, Iterable, Sequence, Union

import torch

from .family import StateDict

Replacement = Union[str, Callable[[re.Match], str]]
Rule = tuple[re.Pattern, Replacement]


def rules(pairs: Iterable[tuple[str, Replacement]]) -> tuple[Rule, ...]:
    return tuple((re.compile(pattern), repl) for pattern, repl in pairs)


def rename_key(key: str, rule_list: Sequence[Rule]) -> str:
    for pattern, repl in rule_list:
        key = pattern.sub(repl, key)
    return key


def rename_state(state: StateDict, rule_list: Sequence[Rule], *, drop: Callable[[str], bool] = lambda k: False,
                 reshape: Callable[[str, torch.Tensor], torch.Tensor] = lambda k, v: v) -> StateDict:
    """Rename every key; `drop` removes keys (on the source names), `reshape` adapts values (on the new names)."""
    out: StateDict = {}
    for key, value in state.items():
        if drop(key):
            continue
        new = rename_key(key, rule_list)
        if new in out:
            raise ValueError(f"remap collision: two keys map to {new!r}")
        out[new] = reshape(new, value)
    return out
