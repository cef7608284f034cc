"""Sensor groups and permutations: ``"emg+acc"`` -> the channels of those groups, in a fixed order."""

from __future__ import annotations

from itertools import combinations

from har.errors import BadInput

ALL = "all"


def parse_permutation(expr: str, groups: dict[str, list[str]], dataset: str = "") -> list[str]:
    """Group names of ``expr`` in the dataset's group order; BadInput names an unknown or repeated group."""
    expr = expr.strip()
    if expr == ALL:
        return list(groups)
    names = [part.strip() for part in expr.split("+")]
    where = f" of {dataset}" if dataset else ""
    for name in names:
        if name not in groups:
            raise BadInput(
                f"unknown sensor group {name!r} in {expr!r} (groups{where}: {', '.join(groups)}, or 'all')"
            )
    if len(set(names)) != len(names):
        raise BadInput(f"sensor permutation {expr!r} names a group twice")
    return [g for g in groups if g in names]


def canonical(expr: str, groups: dict[str, list[str]], dataset: str = "") -> str:
    """The permutation's canonical name: groups '+'-joined in the dataset's order, or 'all'."""
    chosen = parse_permutation(expr, groups, dataset)
    return ALL if expr.strip() == ALL else "+".join(chosen)


def channels_of(expr: str, groups: dict[str, list[str]], channels: list[str], dataset: str = "") -> list[int]:
    """Indices into ``channels`` of the permutation's channels, in channel order."""
    wanted = {c for g in parse_permutation(expr, groups, dataset) for c in groups[g]}
    return [i for i, c in enumerate(channels) if c in wanted]


def permutations(groups: dict[str, list[str]]) -> list[str]:
    """Every non-empty combination of groups, smallest first, then 'all'."""
    names = list(groups)
    combos = ["+".join(c) for k in range(1, len(names) + 1) for c in combinations(names, k)]
    return [*combos, ALL]
