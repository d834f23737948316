"""PNG charts for replies: a fine-tune's losses, and a server's model history.

Drawn with matplotlib's object API on the Agg canvas (no pyplot, no global figure state, no
display), and matplotlib is imported only when the first chart is drawn, so a bot that never
draws one never pays for it (README: what it costs). Inputs are plain numbers; drawing takes
tens of milliseconds, so callers run it in a worker thread (``asyncio.to_thread``). One lock
serialises drawing: matplotlib's font and text caches are not meant for concurrent use.
"""
from __future__ import annotations

import io
import math
import threading
from dataclasses import dataclass
from typing import Protocol, Sequence

_DRAWING = threading.Lock()
_DPI = 100
_GREEN, _BLUE, _ORANGE, _GREY = "#3ba55c", "#5865f2", "#e67e22", "#99aab5"


class EpochLoss(Protocol):
    """One epoch of one ensemble member, as training reports it (``model.Progress`` fits)."""

    member: int
    epoch: int
    train_loss: float
    val_loss: float


@dataclass(frozen=True)
class VersionPoint:
    """One fine-tune of a server, for the history chart."""

    version: int
    val_loss_before: float | None
    val_loss_after: float | None
    promoted: bool
    served: bool


def fine_tune_png(history: Sequence[EpochLoss], val_before: float | None, val_after: float | None) -> bytes:
    """Training and validation loss per epoch (one line pair per network), and the server's
    validation loss before and after, side by side."""
    with _DRAWING:
        figure, canvas = _figure(8.0, 3.2)
        losses, verdict = figure.subplots(1, 2, gridspec_kw={"width_ratios": [3, 1]})
        members = sorted({p.member for p in history})
        for member in members:  # one pair of lines per network of the ensemble, labelled once
            points = sorted((p.epoch, p.train_loss, p.val_loss) for p in history if p.member == member)
            epochs = [e for e, _, _ in points]
            first = member == members[0]
            losses.plot(epochs, [_finite(t) for _, t, _ in points], color=_BLUE, alpha=0.8,
                        label="training" if first else None)
            losses.plot(epochs, [_finite(v) for _, _, v in points], color=_GREEN, linestyle="--", alpha=0.9,
                        label="validation" if first else None)
        networks = f" ({len(members)} networks)" if len(members) > 1 else ""
        losses.set(title=f"Loss per epoch{networks}", xlabel="epoch", ylabel="nats per letter")
        if history:
            losses.legend(fontsize="small")
        else:
            losses.text(0.5, 0.5, "no epoch finished", ha="center", va="center", transform=losses.transAxes)
        losses.xaxis.get_major_locator().set_params(integer=True)
        _before_after(verdict, _finite(val_before), _finite(val_after))
        return _png(figure, canvas)


def history_png(points: Sequence[VersionPoint]) -> bytes:
    """Validation loss of each version of a server (promoted, discarded, the one served)."""
    with _DRAWING:
        figure, canvas = _figure(7.0, 3.2)
        axes = figure.subplots()
        promoted = [p for p in points if p.promoted and p.val_loss_after is not None]
        discarded = [p for p in points if not p.promoted and p.val_loss_after is not None]
        axes.plot([p.version for p in promoted], [p.val_loss_after for p in promoted], color=_GREEN,
                  marker="o", label="promoted")
        axes.scatter([p.version for p in discarded], [p.val_loss_after for p in discarded], color=_ORANGE,
                     marker="x", label="discarded", zorder=3)
        before = [p for p in points if p.val_loss_before is not None]
        axes.scatter([p.version for p in before], [p.val_loss_before for p in before], color=_GREY,
                     marker=".", label="model before it", zorder=2)
        for p in points:
            if p.served and p.val_loss_after is not None:
                axes.annotate("served", (p.version, p.val_loss_after), textcoords="offset points",
                              xytext=(0, 8), ha="center", fontsize="small")
        axes.set(title="This server's model versions", xlabel="version", ylabel="validation loss (nats/letter)")
        axes.xaxis.get_major_locator().set_params(integer=True)
        if points:
            axes.legend(fontsize="small")
        return _png(figure, canvas)


def _before_after(axes, before: float, after: float) -> None:
    """The server's validation loss before and after, as a slope: the change is what matters,
    so the axis is zoomed onto the two values rather than starting at zero."""
    colour = _GREEN if _better_or_equal(before, after) else _ORANGE
    xs, ys = [0, 1], [before, after]
    axes.plot(xs, ys, color=colour, marker="o", markersize=8)
    for x, y in zip(xs, ys, strict=True):
        if not math.isnan(y):
            axes.annotate(f"{y:.3f}", (x, y), textcoords="offset points", xytext=(0, 8), ha="center",
                          fontsize="small")
    finite = [y for y in ys if not math.isnan(y)]
    if finite:
        low, high = min(finite), max(finite)
        pad = max(0.02, (high - low) * 0.4)
        axes.set_ylim(low - pad, high + pad)
    axes.set_xlim(-0.4, 1.4)
    axes.set_xticks(xs, ["before", "after"])
    axes.set(title="Validation", ylabel="nats per letter")


def _figure(width: float, height: float):
    # Imported here, not at the top: matplotlib costs tens of MB and ~0.5 s to import.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=_DPI, layout="constrained")
    return figure, FigureCanvasAgg(figure)


def _png(figure, canvas) -> bytes:
    buffer = io.BytesIO()
    canvas.print_png(buffer)
    figure.clear()
    return buffer.getvalue()


def _finite(value: float | None) -> float:
    return value if value is not None and math.isfinite(value) else math.nan


def _better_or_equal(before: float, after: float) -> bool:
    return math.isnan(before) or (not math.isnan(after) and after <= before)
