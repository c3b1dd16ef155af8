"""Side-by-side measurement: interleaved rounds, per-round ratios, their median and range."""

from __future__ import annotations

import statistics
from collections.abc import Iterator

from spawn import Child, Runner, Sample

__all__ = ["Spread", "differences_mib", "ms", "ratios", "rotation", "rounds_of"]


class Spread:
    """Median and range of per-round values."""

    def __init__(self, values: list[float]) -> None:
        self.values = values
        self.median = statistics.median(values)
        self.low = min(values)
        self.high = max(values)

    def fmt(self, digits: int = 2) -> str:
        return f"{self.median:.{digits}f} ({self.low:.{digits}f}-{self.high:.{digits}f})"


def ratios(a: list[Sample], b: list[Sample], metric: str = "wall") -> Spread:
    """a/b per round."""
    return Spread([x.value(metric) / y.value(metric) for x, y in zip(a, b)])


def differences_mib(a: list[Sample], b: list[Sample]) -> Spread:
    return Spread([(x.rss_kib - y.rss_kib) / 1024 for x, y in zip(a, b)])


def ms(samples: list[Sample], metric: str = "wall") -> str:
    return f"{statistics.median(s.value(metric) for s in samples) * 1000:.1f}"


def rotation(names: list[str], rounds: int) -> Iterator[tuple[int, str]]:
    """(round, name) for every name once per round, the order rotating by one each round.

    Drift and background load then hit every name alike.
    """
    for r in range(rounds):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            yield r, name


def rounds_of(
    runner: Runner, children: dict[str, Child], rounds: int, expected: str | None = None
) -> dict[str, list[Sample]]:
    """Run every child once per round (``rotation``); every check must be ``expected``."""
    results: dict[str, list[Sample]] = {name: [] for name in children}
    for _, name in rotation(list(children), rounds):
        sample = runner.run(children[name])
        if expected is not None and sample.check != expected:
            raise RuntimeError(f"{name}: check {sample.check} != expected {expected}")
        results[name].append(sample)
    return results
