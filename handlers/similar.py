"""Near-duplicate texts grouped: comments on a section that say nearly the same thing, a new case like an open
one. Texts are compared without diacritics, case, punctuation or word order (storage/text.py `fold`, words sorted), by
rapidfuzz's normalised Indel similarity.

Grouping is a leader scheme: each text joins the first group whose leader (its earliest text) is at least
`threshold` similar, or leads a new group. Each text is compared with the leaders only, and only with those of
a length the threshold allows, so a section of n comments costs n × groups comparisons, not n².
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from rapidfuzz import fuzz, process

from storage.text import fold

if TYPE_CHECKING:
    from storage import Store
    from storage.cases import Case

WORD = re.compile(r"\w+")
THRESHOLD = 85  # percent; 100 groups only identical texts (after folding)


def key(text: str) -> str:
    """What is compared: folded, without punctuation, words in order of the alphabet."""
    return " ".join(sorted(WORD.findall(fold(text))))


def group(texts: Sequence[str], threshold: int = THRESHOLD) -> list[list[int]]:
    """Indices of `texts` in groups, largest first; a group's first index is its representative (its leader)."""
    groups: list[list[int]] = []
    lengths: list[int] = []  # the leaders' key lengths, sorted; their keys and groups in the same order
    keys: list[str] = []
    owners: list[int] = []
    share = threshold / (200 - threshold)  # a ratio ≥ t needs shorter/longer ≥ t / (200 − t)
    for index, text in enumerate(texts):
        k = key(text)
        low, high = bisect.bisect_left(lengths, len(k) * share), bisect.bisect_right(lengths, len(k) / share)
        best = process.extractOne(k, keys[low:high], scorer=fuzz.ratio, score_cutoff=threshold) if high > low else None
        if best is None:
            at = bisect.bisect_right(lengths, len(k))
            lengths.insert(at, len(k))
            keys.insert(at, k)
            owners.insert(at, len(groups))
            groups.append([index])
        else:
            groups[owners[low + best[2]]].append(index)
    return sorted(groups, key=lambda g: (-len(g), g[0]))


def most_similar(text: str, others: Sequence[str], threshold: int = THRESHOLD) -> int | None:
    """The index of the text among `others` most like `text`, if any is at least `threshold` similar."""
    best = process.extractOne(key(text), [key(other) for other in others], scorer=fuzz.ratio, score_cutoff=threshold)
    return best[2] if best is not None else None


async def similar_open_case(store: Store, case: Case, threshold: int) -> str | None:
    """The code of an open case in the same commune that an open `case` may repeat, for the cadre's card."""
    if not case.is_open:
        return None
    nearby = await store.cases.open_nearby(case)
    best = most_similar(case.content, [content for _, content in nearby], threshold)
    return nearby[best][0] if best is not None else None
