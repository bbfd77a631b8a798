"""Temperature sampling over document groups (languages, sources) towards a token budget, and
FineWeb-2-style rehydration of deduplicated documents by their cluster size.

Group g with n_g tokens gets the share p_g = n_g^α / Σ n^α of the budget B (mT5, XLM-R:
α = 0.3 lifts small languages); its documents are written r_g = B·p_g / n_g times on
average, never more than `max_repeats` (UniMax's cap on repeating small groups). A
document is written ⌊r_g⌋ times plus once more when a hash of its id and the seed falls
under r_g - ⌊r_g⌋: the choice depends on nothing else, so reruns and any number of
workers choose alike.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from strata.spec.pipeline import BalanceSpec


def sampling_rates(tokens_by_group: dict[str, int], spec: BalanceSpec) -> dict[str, float]:
    """Expected copies of each group's documents."""
    total = sum(tokens_by_group.values())
    budget = spec.token_budget or total
    weights = {g: n**spec.alpha for g, n in tokens_by_group.items() if n > 0}
    norm = sum(weights.values())
    return {g: min(budget * w / norm / tokens_by_group[g], spec.max_repeats) for g, w in weights.items()}


def order_key(seed: int, key: str) -> int:
    """A 64-bit draw from the first 8 bytes of BLAKE2b(seed, key), little-endian."""
    digest = hashlib.blake2b(f"{seed}\0{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def hash_fraction(seed: int, key: str) -> float:
    """A uniform draw in [0, 1) from BLAKE2b of the seed and a key."""
    return order_key(seed, key) / 2**64


def copies(doc_id: str, rate: float, seed: int) -> int:
    """How many times to write one document of a group sampled at `rate`."""
    whole = int(rate)
    return whole + int(hash_fraction(seed, doc_id) < rate - whole)


def rehydrated_copies(cluster_size: int, table: dict[int, int]) -> int:
    """Copies of a kept document whose near-duplicate cluster had `cluster_size` members."""
    sizes = [k for k in table if k <= cluster_size]
    return table[max(sizes)] if sizes else 1


def group_key(language: str, source: str, by: Sequence[str]) -> str:
    """The group a document belongs to, e.g. "fr" or "fr/www.debian.org"."""
    values = {"language": language or "unknown", "source": source}
    return "/".join(values[b] for b in by)
