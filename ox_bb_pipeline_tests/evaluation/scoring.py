"""Scores for labelled detections: confusion counts, precision, recall, and the Youden index."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass
class Score:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0  # only where negatives are labelled (benchmark suites)

    def add(self, other: Score) -> Score:
        return Score(self.tp + other.tp, self.fp + other.fp, self.fn + other.fn, self.tn + other.tn)

    @property
    def precision(self) -> float | None:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else None

    @property
    def recall(self) -> float | None:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else None

    @property
    def fpr(self) -> float | None:
        return self.fp / (self.fp + self.tn) if self.fp + self.tn else None

    @property
    def youden(self) -> float | None:
        """TPR − FPR; defined only where both positives and negatives are labelled."""
        if self.recall is None or self.fpr is None:
            return None
        return self.recall - self.fpr

    def as_dict(self) -> dict:
        return {
            **asdict(self),
            "precision": self.precision,
            "recall": self.recall,
            "fpr": self.fpr,
            "youden": self.youden,
        }
