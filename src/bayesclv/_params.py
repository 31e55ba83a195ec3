"""Hyper-parameter constraints, checked by the estimators and segmenters at ``fit``.

Each constraint says whether a value is allowed (``check``) and what is allowed, for the
error message (``describe``), as scikit-learn's ``_parameter_constraints`` do.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Check", "Interval", "Options", "interval_levels", "level_label"]


@dataclass(frozen=True)
class Interval:
    """A numeric hyper-parameter constraint (``None`` allowed if ``allow_none``)."""

    kind: type
    low: float | None = None
    high: float | None = None
    closed: str = "both"
    allow_none: bool = False

    def check(self, value: Any) -> bool:  # noqa: D102
        if value is None:
            return self.allow_none
        if isinstance(value, bool):
            return False
        base = numbers.Integral if self.kind is int else numbers.Real
        if not isinstance(value, base) or not np.isfinite(value):
            return False
        low_ok = self.low is None or (
            value >= self.low if self.closed in ("both", "left") else value > self.low
        )
        high_ok = self.high is None or (
            value <= self.high if self.closed in ("both", "right") else value < self.high
        )
        return low_ok and high_ok

    def describe(self) -> str:  # noqa: D102
        low = "-inf" if self.low is None else self.low
        high = "inf" if self.high is None else self.high
        brackets = {"both": "[]", "left": "[)", "right": "(]", "neither": "()"}[self.closed]
        text = f"{self.kind.__name__} in {brackets[0]}{low}, {high}{brackets[1]}"
        return text + (" or None" if self.allow_none else "")


@dataclass(frozen=True)
class Options:
    """A hyper-parameter that must be one of a fixed set of values."""

    values: tuple
    allow_none: bool = False

    def check(self, value: Any) -> bool:  # noqa: D102
        return (value is None and self.allow_none) or value in self.values

    def describe(self) -> str:  # noqa: D102
        return "one of " + ", ".join(repr(v) for v in self.values)



class Check:
    """A constraint given by a predicate and the text that describes it."""

    def __init__(self, func: Callable[[Any], bool], text: str) -> None:
        self.check, self._text = func, text

    def describe(self) -> str:
        return self._text


def interval_levels(levels: Any) -> list[float]:
    """Probabilities of central intervals: numbers in (0, 1), sorted, without repeats."""
    try:
        values = sorted({float(level) for level in np.atleast_1d(np.asarray(levels,
                                                                             dtype=object))})
    except (TypeError, ValueError) as error:
        raise ValueError(f"levels must be numbers in (0, 1); got {levels!r}.") from error
    if not values or any(not 0.0 < v < 1.0 for v in values):
        raise ValueError(f"levels must be numbers in (0, 1); got {levels!r}.")
    return values


def level_label(level: float) -> str:
    """A level as the percent in column names: ``0.9 -> '90'``, ``0.975 -> '97.5'``."""
    return f"{100 * level:g}"
