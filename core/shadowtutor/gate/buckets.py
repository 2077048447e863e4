"""Similarity calibration: the mean review score by similarity bucket, and the threshold it
suggests (from which every well-filled bucket meets the review bar)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Bucket:
    low: float
    high: float
    n: int
    mean_score: float | None


@dataclass(frozen=True)
class Calibration:
    method: str
    buckets: tuple[Bucket, ...]
    suggested: float | None  # lowest bucket edge from which every bucket averages >= target
    target: float
    reviewed: int  # reviews (a pair reviewed by two people counts twice)
    pairs: int | None = None  # distinct reviewed pairs, when the pair ids were given

    @property
    def label(self) -> str:
        """ "515 reviews of 441 pairs": what the chart's numbers count, in words."""
        reviews = f"{self.reviewed:,} review{'' if self.reviewed == 1 else 's'}"
        if self.pairs is None:
            return reviews
        plural = "" if self.pairs == 1 else "s"
        if self.pairs == self.reviewed:
            return f"{self.pairs:,} reviewed pair{plural}"
        return f"{reviews} of {self.pairs:,} pair{plural}"


def calibrate(
    pairs: Iterable[tuple[float, float]],
    *,
    method: str,
    target: float = 4.0,
    width: float = 0.1,
    min_bucket: int = 5,
    pair_ids: Iterable[str] | None = None,
) -> Calibration:
    """Mean review score by similarity bucket, from (similarity, student_score) of each
    review, and the suggested threshold: the lowest bucket edge from which every bucket with at
    least ``min_bucket`` reviews averages at least ``target``. With ``pair_ids`` (one per
    review) the distinct pairs are counted too: several reviewers may review one pair."""
    nb = max(1, round(1 / width))
    sums, counts = [0.0] * nb, [0] * nb
    for sim, score in pairs:
        i = min(nb - 1, max(0, int(float(sim) / width)))
        sums[i] += float(score)
        counts[i] += 1
    buckets = tuple(
        Bucket(
            round(i * width, 4),
            round((i + 1) * width, 4),
            counts[i],
            sums[i] / counts[i] if counts[i] else None,
        )
        for i in range(nb)
    )
    suggested = None
    for b in reversed(buckets):
        if b.n < min_bucket:
            continue
        if b.mean_score is not None and b.mean_score >= target:
            suggested = b.low
        else:
            break
    distinct = None if pair_ids is None else len(set(pair_ids))
    return Calibration(method, buckets, suggested, target, sum(counts), distinct)
