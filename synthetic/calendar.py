"""Month arithmetic on integer day numbers (days since 1970-01-01), vectorised with numpy."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Month (1 or 2) whose activity the Chinese New Year holiday hits hardest, by year. The
#: holiday moves between late January and mid February; the generator dips that month.
CNY_MONTH: dict[int, int] = {
    2019: 2, 2020: 1, 2021: 2, 2022: 2, 2023: 1, 2024: 2, 2025: 1, 2026: 2, 2027: 2,
    2028: 1, 2029: 2, 2030: 2, 2031: 1, 2032: 2, 2033: 1, 2034: 2, 2035: 2,
}  # fmt: skip

_PAD = 72  # months of headroom either side of the window (loans start early, mature late)


def month_number(month: str) -> int:
    """'YYYY-MM' -> year * 12 + month - 1."""
    year, mon = month.split("-")
    if len(year) != 4 or not 1 <= int(mon) <= 12:
        raise ValueError(f"expected a month YYYY-MM, got {month!r}")
    return int(year) * 12 + int(mon) - 1


@dataclass(frozen=True)
class Calendar:
    """The generation window: `months` months ending with `end_month`; local month 0 is the
    first month of the window. Lookups accept local months from -_PAD to months + _PAD."""

    end_month: str
    months: int

    @property
    def g0(self) -> int:
        return month_number(self.end_month) - self.months + 1

    def _starts(self) -> np.ndarray:
        g = self.g0 - _PAD + np.arange(self.months + 2 * _PAD + 1, dtype=np.int64)
        return (g - 1970 * 12).astype("datetime64[M]").astype("datetime64[D]").astype(np.int64)

    def __post_init__(self) -> None:
        if self.months < 13:
            raise ValueError("months must be at least 13 (a year of history plus one)")
        object.__setattr__(self, "_ms", self._starts())

    def month_start(self, m: np.ndarray | int) -> np.ndarray:
        return self._ms[np.asarray(m) + _PAD]  # type: ignore[attr-defined]

    def month_end(self, m: np.ndarray | int) -> np.ndarray:
        return self._ms[np.asarray(m) + _PAD + 1] - 1  # type: ignore[attr-defined]

    def month_of_year(self, m: np.ndarray | int) -> np.ndarray:
        return (self.g0 + np.asarray(m)) % 12 + 1

    def year(self, m: np.ndarray | int) -> np.ndarray:
        return (self.g0 + np.asarray(m)) // 12

    def label(self, m: int) -> str:
        g = self.g0 + m
        return f"{g // 12:04d}-{g % 12 + 1:02d}"

    @property
    def labels(self) -> list[str]:
        return [self.label(m) for m in range(self.months)]

    @property
    def start_day(self) -> int:
        return int(self.month_start(0))

    @property
    def end_day(self) -> int:
        return int(self.month_end(self.months - 1))

    def cny_month_mask(self, m: np.ndarray) -> np.ndarray:
        """True where local month m is the Chinese New Year month of its year."""
        years = self.year(m)
        cny = np.array([CNY_MONTH.get(int(y), 2) for y in np.unique(years)])
        lookup = dict(zip(np.unique(years).tolist(), cny.tolist(), strict=True))
        return self.month_of_year(m) == np.vectorize(lookup.get)(years)
