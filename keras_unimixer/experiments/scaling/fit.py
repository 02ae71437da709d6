"""Power-law fits `AUC = a * N^alpha` with confidence intervals from seeds."""

from __future__ import annotations

import math

import numpy as np

# Two-sided 95% Student-t quantiles by degrees of freedom (1..10); 1.96 beyond.
_T95 = {
    1: 12.706,
    2: 4.303,
    3: 3.182,
    4: 2.776,
    5: 2.571,
    6: 2.447,
    7: 2.365,
    8: 2.306,
    9: 2.262,
    10: 2.228,
}


def t95(degrees_of_freedom: int) -> float:
    return _T95.get(degrees_of_freedom, 1.96) if degrees_of_freedom >= 1 else math.nan


def _least_squares(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """`(slope, intercept, standard error of the slope)` of the line `y = intercept + slope x`."""
    design = np.stack([np.ones_like(x), x], axis=1)
    (intercept, slope), *_ = np.linalg.lstsq(design, y, rcond=None)
    residuals = y - design @ np.array([intercept, slope])
    dof = len(x) - 2
    if dof > 0:
        variance = residuals @ residuals / dof
        standard_error = math.sqrt(variance / np.sum((x - x.mean()) ** 2))
    else:
        standard_error = math.nan
    return float(slope), float(intercept), standard_error


def _interval(per_seed: list[float], standard_error: float, num_points: int) -> tuple[float, str]:
    """`(half-width, method)` of a 95% interval: the t-interval of the per-seed estimates' mean
    with several seeds, else the regression's own over `num_points` points."""
    if len(per_seed) > 1:
        spread = float(np.std(per_seed, ddof=1)) / math.sqrt(len(per_seed))
        return t95(len(per_seed) - 1) * spread, f"t-interval over {len(per_seed)} seeds"
    return t95(num_points - 2) * standard_error, "regression standard error"


def log_linear_fit(sizes, values) -> tuple[float, float, float]:
    """`(alpha, a, standard error of alpha)`: least squares on `log y = log a + alpha log N`."""
    x = np.log(np.asarray(sizes, dtype="float64"))
    y = np.log(np.asarray(values, dtype="float64"))
    if len(np.unique(x)) < 2:
        raise ValueError("A power-law fit needs at least 2 distinct sizes.")
    alpha, intercept, standard_error = _least_squares(x, y)
    return alpha, float(math.exp(intercept)), standard_error


def fit_power_law(rows, x_key: str = "dense_params", y_key: str = "test_auc") -> dict:
    """Fit one architecture's runs: `rows` are dicts with `x_key`, `y_key` and `seed`.

    With several seeds, alpha is fitted per seed and the interval is the 95% t-interval of the
    per-seed exponents; with one seed, it is the regression's 95% interval.
    """
    sizes = [row[x_key] for row in rows]
    values = [row[y_key] for row in rows]
    alpha, scale, standard_error = log_linear_fit(sizes, values)
    seeds = sorted({row["seed"] for row in rows})
    per_seed = []
    if len(seeds) > 1:
        for seed in seeds:
            chosen = [row for row in rows if row["seed"] == seed]
            if len({row[x_key] for row in chosen}) >= 2:
                per_seed.append(
                    log_linear_fit([r[x_key] for r in chosen], [r[y_key] for r in chosen])[0]
                )
    half_width, method = _interval(per_seed, standard_error, len(rows))
    return {
        "alpha": alpha,
        "a": scale,
        "alpha_low": alpha - half_width,
        "alpha_high": alpha + half_width,
        "interval": method,
        "num_runs": len(rows),
    }


def fit_gain_law(rows, reference: dict, x_key: str = "dense_params") -> dict | None:
    """The paper's law for the GAIN over a fixed reference model: `dAUC = a * N^alpha`.

    Args:
        rows: one architecture's runs (`x_key`, `test_auc`, `seed`).
        reference: seed -> the reference model's test AUC (same data and seed); a key
            `(seed, train_rows)` gives the reference trained on those rows, used for the runs
            trained on as many (a proportional budget) in preference to the seed's.
        x_key: `"dense_params"` (N in millions, as the paper) or `"flops_per_example"`.

    Returns:
        `fit_power_law`'s result on the gains, plus `excluded` (runs with no positive gain, which
        a power law cannot fit), or None when fewer than 2 sizes keep a positive gain.
    """
    scale = 1e6 if x_key == "dense_params" else 1.0
    gains = []
    for row in rows:
        base = _reference_auc(row, reference)
        if base is not None:
            gains.append({**row, x_key: row[x_key] / scale, "gain": row["test_auc"] - base})
    positive = [row for row in gains if row["gain"] > 0]
    if len({row[x_key] for row in positive}) < 2:
        return None
    fit = fit_power_law(positive, x_key=x_key, y_key="gain")
    return {**fit, "excluded": len(gains) - len(positive)}


def _reference_auc(row: dict, reference: dict) -> float | None:
    """The reference's test AUC for `row`: trained on the run's own rows where there is one,
    else the seed's."""
    return reference.get((row["seed"], row.get("train_rows")), reference.get(row["seed"]))


def fit_gain_trend(rows, reference: dict, x_key: str = "dense_params") -> dict | None:
    """How the gain over the reference changes with size where the power law cannot say:
    `dAUC = b + slope * log10 N`, fitted on every gain, negative ones included.

    The paper's law `dAUC = a N^alpha` needs positive gains; a model below its reference at every
    size has none, yet its gap may close (or widen) with size. `slope` is the gain's change per
    tenfold of `x_key`, with the 95% t-interval over per-seed slopes (the regression's with one
    seed). `reference` as in `fit_gain_law`. None when fewer than 2 sizes have a reference.
    """
    gains = {}
    for row in rows:
        base = _reference_auc(row, reference)
        if base is not None:
            gains.setdefault(row["seed"], []).append((row[x_key], row["test_auc"] - base))
    points = [point for seed_points in gains.values() for point in seed_points]
    if len({size for size, _ in points}) < 2:
        return None
    slope, intercept, standard_error = _linear_fit(points)
    per_seed = [
        _linear_fit(seed_points)[0]
        for seed_points in gains.values()
        if len({size for size, _ in seed_points}) >= 2
    ]
    half_width, method = _interval(per_seed, standard_error, len(points))
    largest = max(size for size, _ in points)
    return {
        "slope_per_decade": slope,
        "slope_low": slope - half_width,
        "slope_high": slope + half_width,
        "intercept": intercept,
        "mean_gain_at_largest": float(np.mean([g for size, g in points if size == largest])),
        "interval": method,
        "num_runs": len(points),
    }


def _linear_fit(points) -> tuple[float, float, float]:
    """`(slope, intercept, standard error of the slope)` of `y = intercept + slope log10 x`."""
    x = np.log10(np.asarray([size for size, _ in points], dtype="float64"))
    y = np.asarray([value for _, value in points], dtype="float64")
    return _least_squares(x, y)
