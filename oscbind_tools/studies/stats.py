"""The statistics the chapters quote: 95 % t-intervals, the paired t-test, Welch's test, Holm's correction.

Plain Python on lists of numbers (no SciPy): ``interval95`` for a mean, ``paired_p`` for per-seed differences,
``welch_p`` for two independent groups, ``holm`` over a family of tests, and ``resolve``, which gives each comparison
of a family its p, its Holm-adjusted p and what it says at Holm p < 0.05.
"""

from __future__ import annotations

import math


# Two-sided 95 % quantiles of Student's t for 1..30 degrees of freedom (beyond 30, the normal 1.96 is
# within 2 % of the true value).
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
         2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)


def interval95(values) -> tuple[float, float, int]:
    """Mean, half-width of its 95 % t-interval (nan for one value), and n."""
    v = [float(x) for x in values]
    n = len(v)
    if n == 0:
        return float("nan"), float("nan"), 0
    mean = sum(v) / n
    if n < 2:
        return mean, float("nan"), n
    sd = (sum((x - mean) ** 2 for x in v) / (n - 1)) ** 0.5
    t = t_quantile(n - 1)
    return mean, t * sd / n**0.5, n


def median(values) -> float:
    v = sorted(float(x) for x in values)
    return float("nan") if not v else (v[len(v) // 2] if len(v) % 2 else (v[len(v) // 2 - 1] + v[len(v) // 2]) / 2)


def mean_by(rows: list[dict], keys: tuple[str, ...], value: str) -> dict[tuple, dict]:
    """Group rows by keys; for each group the mean of ``value``, the count n and the values themselves."""
    groups: dict[tuple, list[float]] = {}
    for r in rows:
        groups.setdefault(tuple(r[k] for k in keys), []).append(r[value])
    return {k: {"mean": sum(v) / len(v), "n": len(v), "values": v} for k, v in groups.items()}


def column(rows: list[dict], key: str) -> list[float]:
    """One column of rows, missing values left out."""
    return [r[key] for r in rows if r.get(key) is not None]


def _beta_fraction(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz), converging for x < (a+1)/(a+b+2)."""
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        for numerator in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
                          -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-15:
            break
    return h


def incomplete_beta(a: float, b: float, x: float) -> float:
    """The regularised incomplete beta function I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1) / (a + b + 2):
        return front * _beta_fraction(a, b, x) / a
    return 1.0 - front * _beta_fraction(b, a, 1.0 - x) / b


def paired_p(differences) -> float:
    """Two-sided p-value of the paired t-test that the mean of per-seed differences is 0 (nan below 2 values)."""
    v = [float(x) for x in differences]
    n = len(v)
    if n < 2:
        return float("nan")
    mean = sum(v) / n
    sd = (sum((x - mean) ** 2 for x in v) / (n - 1)) ** 0.5
    if sd == 0:
        return 0.0 if mean != 0 else 1.0
    t = mean / (sd / n**0.5)
    df = n - 1
    return incomplete_beta(df / 2, 0.5, df / (df + t * t))


def holm(pvalues: list[float]) -> list[float]:
    """Holm's step-down adjustment of a family of p-values (same order as given)."""
    order = sorted(range(len(pvalues)), key=lambda i: pvalues[i])
    adjusted, running = [0.0] * len(pvalues), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(pvalues) - rank) * pvalues[i]))
        adjusted[i] = running
    return adjusted


def resolve(family: list[dict], higher: str, lower: str, min_n: int = 0) -> list[dict]:
    """One family of comparisons (each a dict with its per-seed "differences"), each given its paired-t p, Holm's
    p over the family, the family's size, and what it says at Holm p < 0.05: higher, lower, or "not resolved".
    A comparison with fewer than ``min_n`` differences is "not tested" (p nan): it stays in the family with p = 1,
    so a planned comparison that could not be made never makes the others easier to resolve."""
    tested = [len(row["differences"]) >= min_n for row in family]
    pvalues = [paired_p(row["differences"]) if ok else 1.0 for row, ok in zip(family, tested)]
    for row, ok, p, adjusted in zip(family, tested, pvalues, holm(pvalues)):
        said = ("not tested" if not ok else "not resolved" if adjusted >= 0.05
                else higher if sum(row["differences"]) > 0 else lower)
        row.update(p=p if ok else math.nan, holm=adjusted, family=len(family), said=said)
    return family


def direction(values, lower: str, higher: str, neither: str) -> str:
    """Which words a 95 % interval of values supports: below 0, above 0, or neither."""
    mean, half, n = interval95(values)
    if n < 2:
        return "not measured"
    return lower if mean + half < 0 else higher if mean - half > 0 else neither


def verdict(differences) -> str:
    """What a 95 % interval of paired differences resolves: "better", "worse", "indistinguishable"."""
    return direction(differences, "worse", "better", "indistinguishable")


def effect_size_label(d: float) -> str:
    """Cohen's conventional words for |d|: negligible (< 0.2), small (< 0.5), medium (< 0.8), large; nan: undefined."""
    if d != d:  # nan: no spread to standardise by
        return "undefined"
    return next(word for limit, word in ((0.2, "negligible"), (0.5, "small"), (0.8, "medium"), (float("inf"), "large"))
                if abs(d) < limit)


def t_quantile(df: int) -> float:
    """The two-sided 95 % quantile of Student's t for df degrees of freedom (the normal 1.96 beyond 30)."""
    return _T975[df - 1] if 1 <= df <= len(_T975) else 1.96


def welch_summary(a: tuple[float, float, int], b: tuple[float, float, int]) -> tuple[float, float]:
    """Welch's two-sided test of mean(a) = mean(b) from each group's (mean, standard error, n): (t, p)."""
    (ma, sa, na), (mb, sb, nb) = a, b
    se = math.sqrt(sa**2 + sb**2)
    if se == 0:
        return (0.0, 1.0) if ma == mb else (math.copysign(math.inf, ma - mb), 0.0)
    t = (ma - mb) / se
    df = (sa**2 + sb**2) ** 2 / (sa**4 / (na - 1) + sb**4 / (nb - 1))
    return t, incomplete_beta(df / 2, 0.5, df / (df + t * t))


def welch_p(a, b) -> float:
    """Welch's two-sided p-value that two independent groups of numbers have the same mean (nan below 2 values each)."""
    stats = []
    for group in (a, b):
        v = [float(x) for x in group]
        if len(v) < 2:
            return float("nan")
        mean = sum(v) / len(v)
        sd = (sum((x - mean) ** 2 for x in v) / (len(v) - 1)) ** 0.5
        stats.append((mean, sd / len(v) ** 0.5, len(v)))
    return welch_summary(*stats)[1]


def from_interval(mean: float, half_width: float, n: int) -> tuple[float, float, int]:
    """(mean, standard error, n) of a published cell given as mean and 95 % t half-width over n values."""
    return mean, half_width / t_quantile(n - 1), n
