"""Figures of one trained run: filters, feature maps, curves, confusion matrix, worst mistakes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure

from cnn_jax import config as C
from cnn_jax.models.forward import predict
from cnn_jax.models.registry import make_model
from cnn_jax.models.summary import model_name
from cnn_jax.ops.pooling import pool_kind
from cnn_jax.protocol import per_seed_summary, seeds_of

Maps = list[tuple[str, np.ndarray]]


def describe(cfg: C.Config) -> str:
    """A one-line description of a run's model and training settings, for figure titles."""
    o, t = cfg.optimizer, cfg.train
    act = getattr(cfg.model, "activation", None)
    text = (f"{model_name(cfg.model)}{f', {act}' if act else ''}, {o.name} lr={o.lr:g}"
            f"{'' if o.schedule == 'constant' else ' ' + o.schedule}, batch {t.batch_size}")
    text += f", L2 {o.l2:g}" if o.l2 else ""
    return text + (f", {cfg.data.train_limit} train images" if cfg.data.train_limit else "")


def seed_params(params: Any, index: int) -> Any:
    """One seed's parameters out of a tree stacked along a leading seed axis."""
    return jax.tree_util.tree_map(lambda a: jnp.asarray(a[index]), params)


def predict_probs(model: Any, params: Any, x: np.ndarray, batch: int = 1000) -> np.ndarray:
    """Softmax probabilities of `model` for every image in x, in batches."""
    one = jax.tree_util.tree_map(lambda a: jnp.asarray(a)[None], params)  # a seed axis of one
    return predict(model, one, x, batch, fn=jax.nn.softmax)[0]


def conv_maps(model: Any, params: Any, image: np.ndarray) -> Maps:
    """Per conv block, ("conv{i}", conv maps) and ("conv{i} pooled", block output), HWC."""
    _, state = model.apply({"params": params}, image[None], mutable=["intermediates"])
    inter = state["intermediates"]
    maps = []
    for i in range(len(model.cfg.conv)):
        block = inter[f"conv{i}"]
        maps.append((f"conv{i}", np.asarray(block["conv"][0][0])))
        if pool_kind(model.cfg.conv[i].pool.kind).pools:
            maps.append((f"conv{i} pooled", np.asarray(block["out"][0][0])))
    return maps


def confusion_matrix(y: np.ndarray, pred: np.ndarray, n: int = 10) -> np.ndarray:
    """counts[true, predicted]."""
    counts = np.zeros((n, n), np.int64)
    np.add.at(counts, (np.asarray(y), np.asarray(pred)), 1)
    return counts


def worst_mistakes(probs: np.ndarray, y: np.ndarray, k: int = 24) -> np.ndarray:
    """Indices of the k misclassified rows with the highest predicted-class probability."""
    pred = probs.argmax(1)
    wrong = np.flatnonzero(pred != y)
    return wrong[np.argsort(-probs[wrong, pred[wrong]], kind="stable")][:k]


def _figure(width: float, height: float, layout: str | None = None) -> Figure:
    fig = Figure(figsize=(width, height), layout=layout)
    FigureCanvasAgg(fig)
    return fig


def _grid_shape(n: int, max_cols: int = 10) -> tuple[int, int]:
    cols = min(n, max_cols)
    return -(-n // cols), cols


def montage(maps: np.ndarray, cols: int, pad: int = 1) -> np.ndarray:
    """Tile (h, w, n) maps into one 2-D array, row-major, separated by NaN gutters."""
    h, w, n = maps.shape
    rows = -(-n // cols)
    out = np.full((rows * (h + pad) - pad, cols * (w + pad) - pad), np.nan)
    for i in range(n):
        r, c = divmod(i, cols)
        out[r * (h + pad):r * (h + pad) + h, c * (w + pad):c * (w + pad) + w] = maps[..., i]
    return out


def filters_figure(kernel: np.ndarray, title: str) -> Figure:
    """The first conv layer's kernels (k, k, 1, F), one symmetric grey scale, dark = positive."""
    k = np.asarray(kernel)[:, :, 0, :]
    n = k.shape[-1]
    rows, cols = _grid_shape(n)
    vmax = float(np.abs(k).max()) or 1.0
    fig = _figure(0.8 * cols + 1.0, 0.85 * rows + 0.75, layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if i < n:
            im = ax.imshow(k[..., i], cmap="gray_r", vmin=-vmax, vmax=vmax, interpolation="nearest")
            ax.set_title(f"{i}", fontsize=8, pad=2)
    fig.colorbar(im, ax=axes, shrink=0.9, pad=0.02, label="weight (dark = positive)")
    fig.suptitle(title, fontsize=10)
    return fig


def feature_maps_figure(image: np.ndarray, caption: str, maps: Maps) -> Figure:
    """The input digit, then each conv layer's maps and pooled maps, one shared scale per row."""
    tiles = [montage(m, min(m.shape[-1], 10)) for _, m in maps]
    ratios = [t.shape[0] / t.shape[1] for t in tiles]
    fig = _figure(9.0, 2.2 + 8.0 * sum(ratios) + 0.5 * len(tiles))
    axes = fig.subplots(len(tiles) + 1, 1, height_ratios=[0.22, *ratios])
    axes[0].imshow(np.asarray(image)[..., 0], cmap="gray_r", interpolation="nearest")
    axes[0].set_title(caption, fontsize=9)
    axes[0].set_axis_off()
    for ax, (name, m), tile in zip(axes[1:], maps, tiles, strict=True):
        lo, hi = float(np.min(m)), float(np.max(m))
        im = ax.imshow(tile, cmap="viridis", vmin=lo, vmax=max(hi, lo + 1e-6),
                       interpolation="nearest")
        h, w, n = m.shape
        for i in range(n):
            r, c = divmod(i, min(n, 10))
            ax.text(c * (w + 1), r * (h + 1), f" {i}", color="white", fontsize=6, va="top",
                    ha="left")
        what = "after pooling" if "pooled" in name else "conv + bias + activation, before pooling"
        ax.set_title(f"{name}: {n} maps {h}x{w} ({what}); shared colour scale", fontsize=9)
        ax.set_axis_off()
        fig.colorbar(im, ax=ax, fraction=0.03, pad=0.01)
    return fig


def _per_seed(history: Sequence[Mapping[str, Any]], key: str) -> np.ndarray:
    """(epochs, seeds) array of a per-seed metric; None becomes NaN."""
    return np.array([[np.nan if v is None else v for v in h[key]] for h in history], float)


def curves_figure(history: Sequence[Mapping[str, Any]], seeds: Sequence[int],
                  title: str) -> Figure:
    """Train loss, and validation / test accuracy per epoch, one line per seed."""
    epochs = np.array([h["epoch"] for h in history])
    loss, val, test = (_per_seed(history, k) for k in ("train_loss", "val_acc", "test_acc"))
    summary = per_seed_summary(history, seeds)
    best = [list(epochs).index(s["best_val_epoch"]) if s["status"] == "ok" else 0 for s in summary]
    at_best = np.array([s["test_acc"] if s["status"] == "ok" else np.nan for s in summary], float)
    fig = _figure(10.0, 3.8)
    ax_loss, ax_acc = fig.subplots(1, 2)
    few, marker = len(seeds) <= 3, "o" if len(epochs) <= 30 else None
    ok = int(np.isfinite(at_best).sum())
    for s, seed in enumerate(seeds):
        colour, show = f"C{s % 10}", few or s == 0
        tag = (f" seed {seed}" if len(seeds) > 1 else "") if few else " (each seed)"
        style = {"marker": marker, "color": colour, "lw": 1.5 if few else 0.8}
        ax_loss.plot(epochs, loss[:, s], label=f"train{tag}" if show else None, **style)
        ax_acc.plot(epochs, 100 * val[:, s], label=f"val{tag}" if show else None, **style)
        ax_acc.plot(epochs, 100 * test[:, s], ls="--", mfc="white",
                    label=f"test{tag}" if show else None, **style)
        star = (f"test at best val (epoch {epochs[best[s]]}): {100 * at_best[s]:.2f}%" if few
                else f"test at best val: mean {100 * np.nanmean(at_best):.2f}% "
                     f"± {100 * np.nanstd(at_best):.2f}, {ok} of {len(seeds)} seeds")
        if np.isfinite(at_best[s]):
            ax_acc.plot(epochs[best[s]], 100 * at_best[s], "*", ms=14 if few else 9,
                        color=colour, mec="k", zorder=3, label=star if show else None)
    ax_loss.set_title("training loss (mean over the epoch's minibatches)", fontsize=9)
    ax_loss.set_ylabel("cross-entropy")
    ax_acc.set_title("validation (solid) and test (dashed) accuracy", fontsize=9)
    ax_acc.set_ylabel("accuracy (%)")
    for ax in (ax_loss, ax_acc):
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        if len(epochs) <= 20:
            ax.set_xticks(epochs)
        ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def confusion_figure(counts: np.ndarray, title: str) -> Figure:
    """The confusion matrix with its counts and per-class error rates; log colour scale."""
    n = counts.shape[0]
    fig = _figure(7.0, 5.8)
    ax = fig.add_subplot()
    norm = LogNorm(vmin=1, vmax=max(int(counts.max()), 2))
    im = ax.imshow(np.where(counts > 0, counts, np.nan), cmap="Blues", norm=norm)
    for t in range(n):
        for p in range(n):
            if counts[t, p]:
                ax.text(p, t, str(int(counts[t, p])), ha="center", va="center", fontsize=8,
                        color="white" if norm(counts[t, p]) > 0.6 else "black",
                        fontweight="bold" if t == p else "normal")
        wrong = 100 * (1 - counts[t, t] / max(counts[t].sum(), 1))
        ax.text(n - 0.2, t, f"{wrong:.1f}%", ha="left", va="center", fontsize=8, color="crimson")
    ax.text(n - 0.2, -0.7, "error", ha="left", va="center", fontsize=8, color="crimson")
    ax.set_xticks(range(n))
    ax.set_yticks(range(n))
    ax.set_xlabel("predicted digit")
    ax.set_ylabel("true digit")
    ax.set_title(title, fontsize=10, pad=14)
    fig.colorbar(im, ax=ax, shrink=0.85, pad=0.11, label="test images (log scale)")
    return fig


def mistakes_figure(images: np.ndarray, labels: np.ndarray, probs: np.ndarray,
                    index: np.ndarray, title: str) -> Figure:
    """Misclassified digits, each titled with its test index, label, prediction, probabilities."""
    n = len(images)
    rows, cols = _grid_shape(max(n, 1), 8)
    fig = _figure(1.3 * cols, 1.55 * rows + 0.6)
    axes = fig.subplots(rows, cols, squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if i < n:
            pred, true = int(probs[i].argmax()), int(labels[i])
            ax.imshow(np.asarray(images[i])[..., 0], cmap="gray_r", interpolation="nearest")
            ax.set_title(f"#{int(index[i])}: {true} → {pred}\n"
                         f"p({pred})={probs[i, pred]:.0%} p({true})={probs[i, true]:.0%}",
                         fontsize=7.5, pad=2)
    if n == 0:
        axes.flat[0].text(0.5, 0.5, "no mistakes", ha="center", va="center")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def has_conv_figures(model: Any) -> bool:
    """Whether a model config gets filter and feature-map figures: a ConvNet with conv layers."""
    return isinstance(model, C.ModelConfig) and bool(model.conv)


def run_figures(cfg: C.Config, best: Any, splits: Any, history: Sequence[Mapping[str, Any]],
                seed_index: int = 0, digit: int = 0) -> tuple[dict[str, Figure], float]:
    """A run's figures from its best-validation params (stacked over seeds); and test accuracy.
    Filters and feature maps are a ConvNet's (`has_conv_figures`); the curves, confusion matrix
    and mistakes any registered model's."""
    seeds = seeds_of(cfg)
    x, y = splits.test_x, splits.test_y
    if not 0 <= seed_index < len(seeds):
        raise ValueError(f"--seed-index={seed_index} is out of range: {len(seeds)} seed(s)")
    if not 0 <= digit < len(y):
        raise ValueError(f"--digit={digit} is out of range: {len(y)} test images")
    model, params, seed = make_model(cfg.model), seed_params(best, seed_index), seeds[seed_index]
    probs = predict_probs(model, params, x)
    pred, acc = probs.argmax(1), float((probs.argmax(1) == y).mean())
    tag = f"{model_name(cfg.model)}, seed {seed}, best-validation params"
    figs = {}
    if has_conv_figures(cfg.model):
        figs["filters"] = filters_figure(params["conv0"]["kernel"], f"conv0 kernels ({tag})\n"
                                         "dark = positive weight (responds to ink)")
        caption = (f"input: test image #{digit}, label {y[digit]}, predicted {pred[digit]} "
                   f"(p={probs[digit].max():.1%}); {tag}")
        figs["feature_maps"] = feature_maps_figure(x[digit], caption,
                                                   conv_maps(model, params, x[digit]))
    if history:
        figs["curves"] = curves_figure(history, seeds, describe(cfg))
    figs["confusion"] = confusion_figure(confusion_matrix(y, pred, probs.shape[1]),
                                         f"test confusion ({tag})\naccuracy {acc:.2%}, "
                                         f"{int((pred != y).sum())} errors")
    worst = worst_mistakes(probs, y)
    figs["mistakes"] = mistakes_figure(x[worst], y[worst], probs[worst], worst,
                                       f"most confident test mistakes ({tag})\n"
                                       "#test index: label → predicted")
    return figs, acc
