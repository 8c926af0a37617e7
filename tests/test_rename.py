"""The rename machinery: one Pair table gives both directions, and they invert each other.
Property-based (hypothesis) over fragment texts and integers; the real tables' key sets are
checked against the authors' own models in test_load_families.py."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from effconvert.load.rename import Pair, both_ways, rename_key, shift

WORD = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=8)


@given(authors=WORD, timm=WORD, index=st.integers(0, 999), by=st.integers(-5, 5), tail=WORD)
def test_a_pair_with_an_index_shift_inverts_itself(authors, timm, index, by, tail):
    if index + by < 0:
        return
    to_timm, to_authors = both_ways([Pair(f"^{authors}{{i}}.", f"^{timm}.{{i}}.", **shift("i", by))])
    key = f"{authors}{index}.{tail}.weight"
    renamed = rename_key(key, to_timm)
    assert renamed == f"{timm}.{index + by}.{tail}.weight"
    assert rename_key(renamed, to_authors) == key


@given(a=WORD, t=WORD, n=st.integers(0, 50), k=st.integers(0, 50))
def test_two_indices_and_literal_dots_are_matched_literally(a, t, n, k):
    to_timm, to_authors = both_ways(
        [
            Pair(
                f"^{a}.{{n}}.{{k}}.",
                f"^{t}.{{n}}.blocks.{{k}}.",
                to_timm=lambda v: {**v, "n": v["n"] * 2},
                to_authors=lambda v: {**v, "n": v["n"] // 2},
            )
        ]
    )
    key = f"{a}.{n}.{k}.conv.weight"
    assert rename_key(key, to_timm) == f"{t}.{2 * n}.blocks.{k}.conv.weight"
    assert rename_key(rename_key(key, to_timm), to_authors) == key
    # a dot in a fragment is a dot, not "any character"
    assert rename_key(f"{a}x{n}.{k}.conv.weight", to_timm) == f"{a}x{n}.{k}.conv.weight"


def test_anchors_and_end_of_key():
    to_timm, to_authors = both_ways([Pair("layer_scale_{i}$", "ls{i}.gamma$"), Pair("^dist_head.", "^head_dist.")])
    assert rename_key("network.0.1.layer_scale_2", to_timm) == "network.0.1.ls2.gamma"
    assert rename_key("network.0.1.layer_scale_2.extra", to_timm) == "network.0.1.layer_scale_2.extra"
    assert rename_key("x.dist_head.weight", to_timm) == "x.dist_head.weight"  # ^ anchors
    assert rename_key("head_dist.weight", to_authors) == "dist_head.weight"
