"""Figures: scaling curves (log-scale x) and heat maps of learned mixing matrices."""

from __future__ import annotations

from pathlib import Path


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_scaling(rows, fits, path, x_key: str = "dense_params", title: str = "") -> Path:
    """One curve per model: mean test AUC over seeds (error bars: min-max) and its fitted law."""
    import numpy as np

    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(6.4, 4.4))
    for name in dict.fromkeys(row["model"] for row in rows if row["size"] != "reference"):
        chosen = [row for row in rows if row["model"] == name and row["size"] != "reference"]
        sizes = sorted({row[x_key] for row in chosen})
        aucs = [[r["test_auc"] for r in chosen if r[x_key] == size] for size in sizes]
        means = np.array([np.mean(a) for a in aucs])
        errors = np.array([[m - min(a), max(a) - m] for m, a in zip(means, aucs, strict=True)]).T
        fit = next(
            (
                f
                for f in fits
                if f["model"] == name and f["against"] == x_key and f.get("law", "auc") == "auc"
            ),
            None,
        )
        label = name if fit is None else f"{name} (alpha={fit['alpha']:.4f})"
        line = axis.errorbar(sizes, means, yerr=errors, marker="o", capsize=3, label=label)
        if fit is not None:
            grid = np.geomspace(min(sizes), max(sizes), 50)
            axis.plot(grid, fit["a"] * grid ** fit["alpha"], "--", color=line[0].get_color())
    axis.set_xscale("log")
    axis.set_xlabel("dense parameters" if x_key == "dense_params" else "FLOPs per example")
    axis.set_ylabel("test AUC")
    axis.set_title(title)
    axis.grid(True, which="both", alpha=0.3)
    axis.legend(fontsize=8)
    return _save(plt, figure, path, dpi=120)


def _save(plt, figure, path, dpi: int) -> Path:
    figure.tight_layout()
    path = Path(path)
    figure.savefig(path, dpi=dpi)
    plt.close(figure)
    return path


def plot_matrices(matrices: dict, path, title: str = "") -> Path:
    """Heat maps of named 2-D arrays side by side."""
    plt = _pyplot()
    figure, axes = plt.subplots(1, len(matrices), figsize=(4 * len(matrices), 3.8), squeeze=False)
    for axis, (name, matrix) in zip(axes[0], matrices.items(), strict=True):
        image = axis.imshow(matrix, cmap="viridis", interpolation="nearest")
        axis.set_title(name, fontsize=9)
        figure.colorbar(image, ax=axis, fraction=0.046)
    figure.suptitle(title)
    return _save(plt, figure, path, dpi=110)


def plot_learning_curves(output, path, seed: int = 0) -> Path | None:
    """Validation AUC per epoch of every run of a ladder (one seed), or against training examples
    seen where the runs have a curve inside the epoch: is the largest size still learning when it
    stops (data-starved), or did it converge?"""
    import json

    histories = {
        path.parent.name: json.loads(path.read_text()).get("history", {})
        for path in sorted(Path(output, "runs").glob(f"*_seed{seed}/metrics.json"))
    }
    # Runs with a curve inside the epoch (`eval_every_examples`) are drawn against examples seen.
    by_examples = any(history.get("curve_val_auc") for history in histories.values())
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(6.4, 4.4))
    drawn = 0
    for name, history in histories.items():
        if by_examples and history.get("curve_val_auc"):
            x, values = history["curve_examples"], history["curve_val_auc"]
        elif not by_examples and history.get("val_auc"):
            values = history["val_auc"]
            x = range(1, len(values) + 1)
        else:
            continue
        axis.plot(x, values, marker=".", label=name)
        drawn += 1
    if not drawn:
        plt.close(figure)
        return None
    axis.set_xlabel("training examples seen" if by_examples else "epoch")
    axis.set_ylabel("validation AUC (exact)")
    axis.grid(True, alpha=0.3)
    axis.legend(fontsize=6)
    return _save(plt, figure, path, dpi=120)
