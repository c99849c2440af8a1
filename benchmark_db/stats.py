"""Statistics shared by the regression check, the query tool and the analytics tool.

Two questions, answered with rank methods so that outliers and skewed latency distributions do not fool them:

* `compare_samples(reference, current)`: did a benchmark get slower (or faster) between two runs? A
  Mann-Whitney U test on the raw samples plus the change of the median; a regression needs both
  significance (`p < alpha`) and a change of at least `threshold_pct`. With only a few values per side (one
  aggregate per run) there is no test to run: the threshold alone decides and the result says that the
  evidence is weaker.
* `detect_change_points(values)`: where did a history of per-run values step? Seeded binary segmentation
  with a standardised Mann-Whitney scan; every candidate is confirmed by a Mann-Whitney test between its
  neighbouring segments with a Bonferroni correction over the split positions and interval scales that
  were searched, a minimum segment length and a minimum effect size; positive lag-1 autocorrelation of the
  residuals (runs that drift together) shrinks the evidence accordingly. Locations are refined with a
  winsorised median (L1) cost. A single noisy point cannot make a segment, so it is never a change.
  The rank test has a floor: with the default alpha 0.005 no split of fewer than 13 values can reach
  significance after the correction (5 vs 5 at best p = 0.0079), so a series needs
  `MIN_RUNS_FOR_CHANGE_POINTS` (13) values before a step can be found, and 14 for a step with only 5 runs
  on one side; `min_runs_for_change_points()` computes the floor for another alpha or segment length.

Only numpy and scipy are imported; nothing here touches the database.
"""
from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

REGRESSION = "regression"
IMPROVEMENT = "improvement"
UNCHANGED = "unchanged"
EVIDENCE_SAMPLES = "samples"
EVIDENCE_AGGREGATES = "aggregates"

# Fewer values than this on either side and a rank test cannot reach significance at the usual alphas
# (with 4 vs 4 the smallest two-sided p is 0.029): the comparison falls back to the threshold.
MIN_SAMPLES = 5


def _finite(values: Iterable | None) -> np.ndarray:
    if values is None:
        return np.array([], dtype=float)
    if np.isscalar(values):
        values = [values]
    arr = np.asarray([v for v in values if v is not None], dtype=float).ravel()
    return arr[np.isfinite(arr)]


def _change_pct(before: float | None, after: float | None) -> float | None:
    if before is None or after is None or not math.isfinite(before) or not math.isfinite(after):
        return None
    if before == 0:
        return 0.0 if after == 0 else None
    return (after - before) / abs(before) * 100.0


def _round(value, digits=6):
    if value is None:
        return None
    value = float(value)
    return value if not math.isfinite(value) else round(value, digits)


class _DictAccess:
    """Lets result objects be read like dicts too (`cp["index"]`), as some callers expect."""

    def __getitem__(self, key):
        try:
            return getattr(self, key)
        except AttributeError:
            raise KeyError(key) from None

    def get(self, key, default=None):
        return getattr(self, key, default)

    def keys(self):
        return self.to_dict().keys()


@dataclass
class ComparisonResult(_DictAccess):
    """The answer of `compare_samples`. `change_pct` is the relative change of the median, current vs
    reference, in percent (positive = the value grew); `verdict` already accounts for the direction."""

    verdict: str
    evidence: str
    median_before: float | None
    median_after: float | None
    change_pct: float | None
    p_value: float | None
    n_before: int
    n_after: int
    threshold_pct: float
    alpha: float
    higher_is_worse: bool
    note: str = ""

    @property
    def is_regression(self) -> bool:
        return self.verdict == REGRESSION

    @property
    def is_improvement(self) -> bool:
        return self.verdict == IMPROVEMENT

    def to_dict(self) -> dict:
        data = asdict(self)
        for key in ("median_before", "median_after", "change_pct"):
            data[key] = _round(data[key])
        data["p_value"] = None if self.p_value is None else float(f"{self.p_value:.4g}")
        return data


def compare_samples(reference: Iterable[float] | float | None, current: Iterable[float] | float | None,
                    threshold_pct: float = 5.0, alpha: float = 0.01, *, higher_is_worse: bool = True,
                    min_samples: int = MIN_SAMPLES) -> ComparisonResult:
    """Compare the current values of a benchmark with its reference values.

    `reference` and `current` are raw samples (per-iteration latencies, per-run values) or, when that is all
    there is, one or a few aggregates. `higher_is_worse` is True for latency and memory, False for
    throughput. With at least `min_samples` values per side a two-sided Mann-Whitney U test is run and a
    regression needs `p < alpha` and a median change of at least `threshold_pct` percent in the worse
    direction (an improvement likewise in the better one). With fewer values only the threshold decides and
    `evidence` is "aggregates": a weaker statement, because noise cannot be told from change.
    """
    ref = _finite(reference)
    cur = _finite(current)
    threshold_pct = abs(float(threshold_pct))
    common = dict(n_before=int(ref.size), n_after=int(cur.size), threshold_pct=threshold_pct, alpha=float(alpha),
                  higher_is_worse=bool(higher_is_worse))
    if ref.size == 0 or cur.size == 0:
        return ComparisonResult(UNCHANGED, EVIDENCE_AGGREGATES,
                                float(np.median(ref)) if ref.size else None,
                                float(np.median(cur)) if cur.size else None, None, None,
                                note="nothing to compare: one side has no values", **common)
    before, after = float(np.median(ref)), float(np.median(cur))
    change = _change_pct(before, after)
    worse = change is not None and (change > 0 if higher_is_worse else change < 0)
    big_enough = change is not None and abs(change) >= threshold_pct
    if ref.size >= min_samples and cur.size >= min_samples:
        p_value = mann_whitney_p(ref, cur)
        significant = p_value < alpha
        if significant and big_enough:
            verdict = REGRESSION if worse else IMPROVEMENT
            note = f"significant (p={p_value:.2g} < {alpha:g}) and beyond the {threshold_pct:g}% threshold"
        elif big_enough:
            verdict, note = UNCHANGED, f"median moved {change:+.1f}% but not significantly (p={p_value:.2g})"
        elif significant and change is None:  # a reference median of 0: no percentage (this used to raise)
            verdict, note = UNCHANGED, (f"significant (p={p_value:.2g}), but the reference median is {before:g}, "
                                        "so the change has no percentage to hold against the threshold")
        elif significant:
            verdict, note = UNCHANGED, (f"significant (p={p_value:.2g}) but the median moved only {change:+.2f}%, "
                                        f"within the {threshold_pct:g}% threshold")
        else:
            verdict, note = UNCHANGED, "no significant change"
        return ComparisonResult(verdict, EVIDENCE_SAMPLES, before, after, change, p_value, note=note, **common)
    verdict = (REGRESSION if worse else IMPROVEMENT) if big_enough else UNCHANGED
    note = (f"only {ref.size} reference and {cur.size} current value(s): threshold only, no significance test; "
            "weaker evidence, keep raw samples to test it")
    return ComparisonResult(verdict, EVIDENCE_AGGREGATES, before, after, change, None, note=note, **common)


def mann_whitney_p(a: Sequence[float], b: Sequence[float]) -> float:
    """Two-sided Mann-Whitney U p-value: scipy's exact distribution for small samples, else the normal
    approximation with tie and continuity corrections (what scipy's asymptotic method computes, without
    its per-call overhead, which matters inside the change-point search)."""
    from scipy.stats import mannwhitneyu, norm, rankdata

    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    n1, n2 = a.size, b.size
    if n1 == 0 or n2 == 0:
        return 1.0
    both = np.concatenate([a, b])
    if np.all(both == both[0]):
        return 1.0
    if min(n1, n2) <= 8:
        return float(mannwhitneyu(a, b, alternative="two-sided").pvalue)
    ranks = rankdata(both)
    u1 = ranks[:n1].sum() - n1 * (n1 + 1) / 2.0
    n = n1 + n2
    _, counts = np.unique(both, return_counts=True)
    tie = float(np.sum(counts ** 3 - counts)) / (n * (n - 1))
    sd = math.sqrt(n1 * n2 / 12.0 * ((n + 1) - tie))
    if sd == 0:
        return 1.0
    z = (abs(u1 - n1 * n2 / 2.0) - 0.5) / sd
    return float(min(1.0, 2.0 * norm.sf(max(z, 0.0))))


# -------------------------------------------------------------------------------------------------------
# Change points


@dataclass
class ChangePoint(_DictAccess):
    """A step in a series: `values[index:]` differ from the values before. Medians are those of the
    neighbouring segments; `p_value` is Bonferroni-adjusted over the splits that were searched."""

    index: int
    median_before: float
    median_after: float
    change_pct: float | None
    p_value: float
    n_before: int = 0
    n_after: int = 0
    direction: str = field(default="")

    def to_dict(self) -> dict:
        return {"index": int(self.index), "median_before": _round(self.median_before),
                "median_after": _round(self.median_after), "change_pct": _round(self.change_pct, 4),
                "p_value": float(f"{self.p_value:.4g}"), "n_before": self.n_before, "n_after": self.n_after,
                "direction": self.direction}


def _bonferroni_factor(m: int, min_size: int) -> int:
    """How many tests a split of `m` values stands for: the split positions times the seeded-interval scales."""
    splits = max(1, m - 2 * min_size + 1)
    scales = 1 + max(0, int(math.floor(math.log2(max(1.0, m / (2 * min_size))))))
    return splits * scales


@functools.lru_cache(maxsize=64)
def min_runs_for_change_points(alpha: float = 0.005, min_size: int = 5) -> int:
    """The fewest values in which `detect_change_points(values, alpha=alpha, min_size=min_size)` can find a
    step at all: the smallest n whose most extreme rank split (every value on one side above every value on
    the other) still beats `alpha` after the Bonferroni correction. Below it the detector returns [] whatever
    the values; a step exactly at the floor must fall near the middle."""
    min_size = max(2, int(min_size))
    n = 2 * min_size
    while n < 10_000 and _best_split_p(n, min_size) * _bonferroni_factor(n, min_size) >= alpha:
        n += 1
    return n


def _best_split_p(n: int, min_size: int) -> float:
    """The smallest p `mann_whitney_p` gives any split of n distinct values into sides of `min_size` or more:
    complete separation, exact (2 / C(n, k)) while a side has 8 values or fewer, else its normal
    approximation. Plain math, so the floor is known without importing scipy."""
    best = 1.0
    for k in range(min_size, n - min_size + 1):
        n1, n2 = k, n - k
        if min(n1, n2) <= 8:
            p = 2.0 / math.comb(n, k)
        else:
            z = (n1 * n2 / 2.0 - 0.5) / math.sqrt(n1 * n2 * (n + 1) / 12.0)
            p = math.erfc(z / math.sqrt(2.0))
        best = min(best, p)
    return best


def _rank_scan(x: np.ndarray, min_size: int) -> tuple[int, float, int]:
    """Best split of `x` by the standardised Mann-Whitney statistic: (left size, |z|, splits searched)."""
    from scipy.stats import rankdata

    m = x.size
    if m < 2 * min_size:
        return -1, 0.0, 0
    ranks = rankdata(x)
    cum = np.cumsum(ranks)
    k = np.arange(min_size, m - min_size + 1)
    u = cum[k - 1] - k * (k + 1) / 2.0
    mean = k * (m - k) / 2.0
    _, counts = np.unique(x, return_counts=True)
    tie = float(np.sum(counts ** 3 - counts)) / (m * (m - 1)) if m > 1 else 0.0
    var = k * (m - k) / 12.0 * ((m + 1) - tie)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(var > 0, np.abs(u - mean) / np.sqrt(np.maximum(var, 1e-300)), 0.0)
    best = int(np.argmax(z))
    return int(k[best]), float(z[best]), int(k.size)


def _seeded_intervals(start: int, end: int, min_len: int) -> list[tuple[int, int]]:
    """Deterministic intervals on halving scales (seeded binary segmentation, Kovács et al. 2020), so a short
    excursion that cancels out over the whole segment is still seen by a narrower interval."""
    length = end - start
    intervals = [(start, end)]
    scale = 1
    while True:
        width = length / (2 ** scale)
        if width < min_len:
            break
        count = 2 ** (scale + 1) - 1
        for left in np.linspace(start, end - width, count):
            a = int(round(left))
            b = min(end, int(round(left + width)))
            if b - a >= min_len and (a, b) not in intervals:
                intervals.append((a, b))
        scale += 1
    return intervals


_CANDIDATES_TRIED = 4


def _lag1_autocorrelation(residuals: np.ndarray) -> float:
    """Lag-1 autocorrelation of the ranks of the residuals, counted only when clearly positive (above three
    standard errors under independence), capped at 0.9."""
    from scipy.stats import rankdata

    n = residuals.size
    if n < 8:
        return 0.0
    r = rankdata(residuals)
    r = r - r.mean()
    denom = float(np.dot(r, r))
    if denom == 0:
        return 0.0
    rho = float(np.dot(r[:-1], r[1:]) / denom)
    return min(rho, 0.9) if rho > 3.0 / math.sqrt(n) else 0.0


def _split_p(x: np.ndarray, lo: int, mid: int, hi: int, min_size: int, *,
             autocorrelation: bool = False) -> tuple[float, float, float]:
    """Mann-Whitney p of a change at `mid` within x[lo:hi], Bonferroni-adjusted for the positions the
    change could have been placed at; the median change in %; and the shift in units of the robust noise
    scale (pooled MAD of the two segments), the effect size that separates a step from noise."""
    left, right = x[lo:mid], x[mid:hi]
    m = hi - lo
    med_l, med_r = float(np.median(left)), float(np.median(right))
    p_raw = mann_whitney_p(left, right)
    rho = _lag1_autocorrelation(np.r_[left - med_l, right - med_r]) if autocorrelation else 0.0
    if rho > 0:
        # Runs that drift together (warm caches, thermal state) carry less information than independent
        # ones: shrink the rank statistic by the AR(1) variance inflation before judging it.
        from scipy.stats import norm

        z = float(norm.isf(p_raw / 2.0)) * math.sqrt((1.0 - rho) / (1.0 + rho))
        p_raw = max(p_raw, float(2.0 * norm.sf(z)))
    # Bonferroni over the split positions, and over the scales of seeded intervals that looked for it.
    p = min(1.0, p_raw * _bonferroni_factor(m, min_size))
    change = _change_pct(med_l, med_r)
    mad = np.median(np.abs(np.r_[left - med_l, right - med_r])) * 1.4826
    effect = abs(med_r - med_l) / mad if mad > 0 else math.inf
    return p, (0.0 if change is None else change), effect


def _l1_cost_split(x: np.ndarray, lo: int, hi: int, min_size: int, around: int | None = None) -> int:
    """The split of x[lo:hi] with the least total absolute deviation from the segment medians: a robust
    locator that is sharper than the rank scan when a few runs next to the step happen to lean its way."""
    first, last = lo + min_size, hi - min_size
    if around is not None and last - first > 400:  # long segments: search near the rank-scan estimate only
        first, last = max(first, around - 200), min(last, around + 200)
    best, best_cost = around if around is not None else first, math.inf
    seg = x[lo:hi]
    med = float(np.median(seg))
    spread = 3.0 * 1.4826 * float(np.median(np.abs(seg - med)))
    if spread > 0:  # winsorise: a cluster of wild outliers must not pull the split towards itself
        seg = np.clip(seg, med - spread, med + spread)
    for cut in range(first, last + 1):
        left, right = seg[:cut - lo], seg[cut - lo:]
        cost = float(np.abs(left - np.median(left)).sum() + np.abs(right - np.median(right)).sum())
        if cost < best_cost - 1e-12:
            best, best_cost = cut, cost
    return best


def _refine(x: np.ndarray, points: list[int], min_size: int) -> list[int]:
    """Move every change point to the best split between its neighbours, in order, twice over."""
    points = list(points)
    for _ in range(2):
        for i, cut in enumerate(points):
            lo = points[i - 1] if i > 0 else 0
            hi = points[i + 1] if i + 1 < len(points) else x.size
            if hi - lo >= 2 * min_size:
                points[i] = _l1_cost_split(x, lo, hi, min_size, around=cut)
        points = sorted(set(points))
    return points


def detect_change_points(values: Iterable[float], *, alpha: float = 0.005, min_size: int = 5,
                         min_change_pct: float = 2.0, max_points: int | None = None) -> list[ChangePoint]:
    """Change points in a history of per-run values (oldest first), most significant evidence kept.

    Each change point says where the new level starts (`index` into `values`), the medians of the
    segments on either side, the relative change and a Bonferroni-adjusted Mann-Whitney p-value. A change
    needs `p < alpha`, at least `min_size` runs on each side and a median change of at least
    `min_change_pct` percent, so lone outliers, slow noise and tiny drifts do not count. Non-finite values
    are ignored (indices still refer to the list given).

    The rank test sets a floor above `2 * min_size`: at the default alpha a series needs 13 finite values
    (`min_runs_for_change_points()`) before any step can be significant, 5 runs on each side of a 50% step
    are not enough on their own (best p 0.0079 > 0.005), and a step with 5 runs on one side needs 9 or more
    on the other. Shorter series have none.
    """
    raw = np.asarray([np.nan if v is None else v for v in values], dtype=float).ravel()
    keep = np.flatnonzero(np.isfinite(raw))
    x = raw[keep]
    n = x.size
    min_size = max(2, int(min_size))
    if n < 2 * min_size or n < min_runs_for_change_points(alpha, min_size):
        return []

    # 1. Candidates: recursive seeded binary segmentation, each split screened on its own interval.
    found: list[int] = []
    stack = [(0, n)]
    while stack:
        lo, hi = stack.pop()
        if hi - lo < 2 * min_size:
            continue
        candidates = []
        for a, b in _seeded_intervals(lo, hi, 2 * min_size):
            k, z, _ = _rank_scan(x[a:b], min_size)
            if k > 0:
                candidates.append((z, a, a + k, b))
        # Strongest first; a cluster of outliers can win a narrow interval yet fail its test, so the next
        # candidates (a few) still get their turn before the segment is declared flat.
        accepted = None
        for _, a, cut, b in sorted(candidates, key=lambda c: -c[0])[:_CANDIDATES_TRIED]:
            p, change, _ = _split_p(x, a, cut, b, min_size)
            if p < alpha and abs(change) >= min_change_pct:
                accepted = cut
                break
        if accepted is None:
            continue
        found.append(accepted)
        stack.extend([(lo, accepted), (accepted, hi)])

    # 2. Confirmation: each point against its neighbouring segments; drop the weakest until all hold.
    points = _refine(x, sorted(set(found)), min_size)
    while points:
        tests = []
        for i, cut in enumerate(points):
            lo = points[i - 1] if i > 0 else 0
            hi = points[i + 1] if i + 1 < len(points) else n
            p, change, effect = _split_p(x, lo, cut, hi, min_size, autocorrelation=True)
            ok = p < alpha and abs(change) >= min_change_pct and cut - lo >= min_size and hi - cut >= min_size
            tests.append((ok, p, change, lo, hi))
        failing = [i for i, t in enumerate(tests) if not t[0]]
        if not failing:
            break
        weakest = max(failing, key=lambda i: (tests[i][1], -abs(tests[i][2])))
        points.pop(weakest)
    else:
        return []

    result = []
    for i, cut in enumerate(points):
        lo = points[i - 1] if i > 0 else 0
        hi = points[i + 1] if i + 1 < len(points) else n
        p, change, effect = _split_p(x, lo, cut, hi, min_size, autocorrelation=True)
        result.append(ChangePoint(index=int(keep[cut]), median_before=float(np.median(x[lo:cut])),
                                  median_after=float(np.median(x[cut:hi])), change_pct=change, p_value=p,
                                  n_before=cut - lo, n_after=hi - cut,
                                  direction="up" if change > 0 else "down"))
    if max_points is not None and len(result) > max_points:
        keep_idx = sorted(sorted(range(len(result)), key=lambda i: result[i].p_value)[:max_points])
        result = [result[i] for i in keep_idx]
    return result


def robust_outliers(values: Iterable[float], threshold: float = 3.5) -> list[int]:
    """Indices whose modified z-score (0.6745 * |x - median| / MAD, Iglewicz and Hoaglin) exceeds
    `threshold`. With MAD 0 (over half the values equal) any value off the median is an outlier."""
    raw = np.asarray([np.nan if v is None else v for v in values], dtype=float).ravel()
    keep = np.flatnonzero(np.isfinite(raw))
    x = raw[keep]
    if x.size < 3:
        return []
    med = np.median(x)
    mad = np.median(np.abs(x - med))
    if mad == 0:
        return [int(keep[i]) for i in np.flatnonzero(x != med)]
    score = 0.6745 * np.abs(x - med) / mad
    return [int(keep[i]) for i in np.flatnonzero(score > threshold)]


# The default detector's floor (alpha 0.005, min_size 5): 13 values. Messages that say how many runs change
# points need read it from here rather than repeating a number.
MIN_RUNS_FOR_CHANGE_POINTS = min_runs_for_change_points()
