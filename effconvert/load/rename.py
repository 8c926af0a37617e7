"""Key renaming by ordered regex rules: the shared machinery of every checkpoint remap.

A remap is a list of (pattern, replacement) rules applied in order to each key; a replacement may
be a function of the match (for index arithmetic such as `network.5` -> `stages.3.downsample`).
A table of `Pair`s states each rename once and yields both directions (`both_ways`); a rule list
(`rules`) serves the few renames that are not one-to-one (a key whose new name depends on the
rest of the checkpoint), written once per direction.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import torch

from .family import StateDict

Replacement = str | Callable[[re.Match], str]
Rule = tuple[re.Pattern, Replacement]


def rules(pairs: Iterable[tuple[str, Replacement]]) -> tuple[Rule, ...]:
    return tuple((re.compile(pattern), repl) for pattern, repl in pairs)


def rename_key(key: str, rule_list: Sequence[Rule]) -> str:
    for pattern, repl in rule_list:
        key = pattern.sub(repl, key)
    return key


def rename_state(
    state: StateDict,
    rule_list: Sequence[Rule],
    *,
    drop: Callable[[str], bool] = lambda k: False,
    reshape: Callable[[str, torch.Tensor], torch.Tensor] = lambda k, v: v,
) -> StateDict:
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


# ---- both directions from one table ---------------------------------------------------------

_PLACEHOLDER = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True)
class Pair:
    """One rename, both ways. `authors` and `timm` are key fragments in which `{name}` stands for
    an integer; the fragments are matched literally otherwise (a leading `^` or trailing `$`
    anchors). `to_timm` / `to_authors` map the integers across (index arithmetic such as
    `stage{i}.` <-> `stages.{i}.` with i - 1 / i + 1); both default to keeping them."""

    authors: str
    timm: str
    to_timm: Callable[[dict[str, int]], dict[str, int]] | None = None
    to_authors: Callable[[dict[str, int]], dict[str, int]] | None = None


def _compile(fragment: str) -> re.Pattern:
    head, body, tail = (
        ("^" if fragment.startswith("^") else ""),
        fragment.strip("^$"),
        ("$" if fragment.endswith("$") else ""),
    )
    parts, last = [], 0
    for m in _PLACEHOLDER.finditer(body):
        parts += [re.escape(body[last : m.start()]), rf"(?P<{m[1]}>\d+)"]
        last = m.end()
    parts.append(re.escape(body[last:]))
    return re.compile(head + "".join(parts) + tail)


def _direction(pairs: Sequence[Pair], *, to_timm: bool) -> tuple[Rule, ...]:
    def rule(pair: Pair) -> Rule:
        source, target = (pair.authors, pair.timm) if to_timm else (pair.timm, pair.authors)
        mapping = pair.to_timm if to_timm else pair.to_authors
        template = target.strip("^$")

        def replace(m: re.Match) -> str:
            values = {k: int(v) for k, v in m.groupdict().items()}
            return template.format(**(mapping(values) if mapping else values))

        return _compile(source), replace

    return tuple(rule(p) for p in pairs)


def both_ways(pairs: Sequence[Pair]) -> tuple[tuple[Rule, ...], tuple[Rule, ...]]:
    """(authors -> timm rules, timm -> authors rules) from one table."""
    return _direction(pairs, to_timm=True), _direction(pairs, to_timm=False)


def remaps(pairs: Sequence[Pair]) -> tuple[Callable[[StateDict], StateDict], Callable[[StateDict], StateDict]]:
    """(authors -> timm, timm -> authors) state-dict functions from one Pair table."""
    to_timm, to_authors = both_ways(pairs)
    return (lambda state: rename_state(state, to_timm)), (lambda state: rename_state(state, to_authors))


def shift(name: str, by: int) -> dict:
    """`to_timm`/`to_authors` for a Pair whose integer `name` is `by` lower on the timm side."""
    return {"to_timm": lambda v: {**v, name: v[name] + by}, "to_authors": lambda v: {**v, name: v[name] - by}}
