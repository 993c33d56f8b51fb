"""The report's pages, each a matplotlib ``Figure`` (no pyplot: no global state, safe in the
web server's threads)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import numpy as np
from matplotlib import colormaps
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from cryolive.report._data import CollectionReport, VisitReport

PAGE = (11.69, 8.27)  # A4 landscape, inches
# (series column, label, factor to the unit shown, bounds key)
MEASURES = (
    ("defocus_a", "Defocus (µm)", 1e-4, "defocus_um"),
    ("total_motion_a", "Total motion (Å)", 1.0, "total_motion_a"),
    ("resolution_a", "CTF resolution (Å)", 1.0, "resolution_a"),
    ("ice_median", "Relative ice thickness", 1.0, "ice_median"),
    ("particles", "Particles per micrograph", 1.0, "particles"),
)
Bounds = Mapping[str, tuple[float, float]]
CurationLimits = Mapping[str, tuple[float | None, float | None]]


def _when(value: dt.datetime | None) -> str:
    return "-" if value is None else f"{value:%Y-%m-%d %H:%M} UTC"


def _number(value: Any, fmt: str = "{:.2f}") -> str:
    return "-" if value is None else fmt.format(value)


def title_page(report: VisitReport) -> Figure:
    fig = Figure(figsize=PAGE)
    v = report.visit
    first, last = report.span
    fig.text(0.05, 0.9, f"Session report: {v.name}", fontsize=24, weight="bold")
    fig.text(
        0.05,
        0.84,
        f"Microscope {v.microscope or 'unknown'} · visit {_when(v.start)} to {_when(v.end)}\n"
        f"Movies from {_when(first)} to {_when(last)} · report made {_when(report.made_at)}",
        fontsize=11,
        va="top",
    )
    ax = fig.add_axes((0.05, 0.08, 0.9, 0.66))
    ax.axis("off")
    header = [
        "Collection",
        "kV",
        "Pixel (Å)",
        "Dose (e⁻/Å²)",
        "Movies",
        "Motion",
        "CTF",
        "Ice",
        "Picked",
        "Particles",
        "Mean res. (Å)",
        "Best res. (Å)",
    ]
    cells = []
    for c in report.collections:
        s, r = c.summary, c.row
        cells.append(
            [
                r.name[:28],
                _number(r.voltage_kv, "{:.0f}"),
                _number(r.pixel_size_a, "{:.3f}"),
                _number(r.dose_e_per_a2, "{:.1f}"),
                str(s["movies"]),
                str(s["motion_corrected"]),
                str(s["ctf_estimated"]),
                str(s["ice_measured"]),
                str(s["picked"]),
                _number(s["particles"], "{:d}"),
                _number(s["mean_resolution_a"]),
                _number(s["best_resolution_a"]),
            ]
        )
    if cells:
        table = ax.table(cellText=cells, colLabels=header, loc="upper left", cellLoc="center")
        table.auto_set_font_size(False)
        table.set_fontsize(9)
        table.scale(1, 1.4)
    else:
        ax.text(0, 1, "No data collection.", va="top")
    return fig


def _values(c: CollectionReport, column: str, factor: float) -> tuple[np.ndarray, np.ndarray]:
    """(minutes since the collection's first movie, values) where both are known."""
    created = c.series["created"]
    raw = c.series[column]
    pairs = [(t, v) for t, v in zip(created, raw, strict=True) if t is not None and v is not None]
    if not pairs:
        return np.zeros(0), np.zeros(0)
    t0 = min(t for t in created if t is not None)
    times = np.array([(t - t0) / 60 for t, _ in pairs], dtype=float)
    return times, np.array([v * factor for _, v in pairs], dtype=float)


def _bound_lines(
    ax: Any, bounds: Bounds, key: str, *, vertical: bool, curation: CurationLimits | None = None
) -> None:
    """Alert bounds dashed red; the collection's curation thresholds solid green."""
    line = ax.axvline if vertical else ax.axhline
    for value in bounds.get(key, ()):
        line(value, color="tab:red", linestyle="--", linewidth=1)
    for limit in (curation or {}).get(key, ()):
        if limit is not None:
            line(limit, color="tab:green", linestyle="-", linewidth=1.2)


def series_page(c: CollectionReport, bounds: Bounds) -> Figure:
    """The measures over time, one panel each, with the bounds as dashed lines."""
    fig = Figure(figsize=PAGE)
    fig.suptitle(f"{c.row.name}: measures over time", fontsize=14)
    axes = fig.subplots(len(MEASURES), 1, sharex=True)
    fig.subplots_adjust(left=0.08, right=0.97, top=0.93, bottom=0.075, hspace=0.12)
    for ax, (column, label, factor, key) in zip(axes, MEASURES, strict=True):
        times, values = _values(c, column, factor)
        ax.plot(times, values, ".", markersize=3, color="tab:blue")
        ax.set_ylabel(label, fontsize=8)
        _bound_lines(ax, bounds, key, vertical=False, curation=c.curation)
        if not len(values):
            ax.text(0.5, 0.5, "no values", transform=ax.transAxes, ha="center", va="center")
    axes[-1].set_xlabel("Minutes since the first movie")
    return fig


def histogram_page(c: CollectionReport, bounds: Bounds) -> Figure:
    fig = Figure(figsize=PAGE)
    counted = ""
    if c.accepted is not None and c.accepted[1]:
        counted = f" (curation: {c.accepted[0]} of {c.accepted[1]} movies accepted)"
    fig.suptitle(f"{c.row.name}: distributions{counted}", fontsize=14)
    axes = fig.subplots(2, 3).ravel()
    fig.subplots_adjust(left=0.075, right=0.97, top=0.91, bottom=0.08, wspace=0.3, hspace=0.3)
    for ax, (column, label, factor, key) in zip(axes, MEASURES, strict=False):
        _, values = _values(c, column, factor)
        if len(values):
            ax.hist(values, bins=min(40, max(5, len(values) // 3)), color="tab:blue")
        else:
            ax.text(0.5, 0.5, "no values", transform=ax.transAxes, ha="center", va="center")
        _bound_lines(ax, bounds, key, vertical=True, curation=c.curation)
        ax.set_xlabel(label)
        ax.set_ylabel("Movies")
    axes[-1].axis("off")
    return fig


def atlas_page(c: CollectionReport) -> Figure | None:
    """The atlas, its grid squares outlined and coloured by their mean CTF resolution."""
    if c.atlas is None or c.atlas_image is None:
        return None
    fig = Figure(figsize=PAGE)
    fig.suptitle(f"{c.row.name}: atlas, squares by mean CTF resolution", fontsize=14)
    ax = fig.add_axes((0.05, 0.04, 0.8, 0.88))
    ax.imshow(c.atlas_image, cmap="gray")
    ax.set_axis_off()
    found = [s.stats.resolution_a for s in c.atlas.squares if s.stats.resolution_a is not None]
    norm = Normalize(min(found, default=2.0), max(found, default=8.0) + 1e-6)
    cmap = colormaps["viridis_r"]
    for s in c.atlas.squares:
        if s.x_px is None or s.y_px is None:
            continue
        w, h = s.width_px or 20, s.height_px or 20
        res = s.stats.resolution_a
        colour = "lightgrey" if res is None else cmap(norm(res))
        ax.add_patch(
            Rectangle(
                (s.x_px - w / 2, s.y_px - h / 2),
                w,
                h,
                fill=res is not None,
                alpha=0.6 if res is not None else 1.0,
                facecolor=colour,
                edgecolor=colour,
                linewidth=1.5,
            )
        )
        ax.text(s.x_px, s.y_px, str(s.label or ""), color="white", fontsize=7, ha="center")
    if found:
        from matplotlib.cm import ScalarMappable

        bar = fig.add_axes((0.88, 0.1, 0.02, 0.76))
        fig.colorbar(ScalarMappable(norm, cmap), cax=bar, label="Mean CTF resolution (Å)")
    return fig


def classes_page(c: CollectionReport) -> Figure | None:
    """The best 2D class averages (most particles first)."""
    if not c.classes:
        return None
    fig = Figure(figsize=PAGE)
    fig.suptitle(f"{c.row.name}: best 2D classes", fontsize=14)
    n = len(c.classes)
    cols = min(6, n)
    rows = -(-n // cols)
    axes = np.atleast_1d(fig.subplots(rows, cols)).ravel()
    fig.subplots_adjust(left=0.03, right=0.97, top=0.88, bottom=0.03, hspace=0.35)
    for ax in axes:
        ax.set_axis_off()
    for ax, k in zip(axes, c.classes, strict=False):
        ax.imshow(k.image, cmap="gray")
        res = "" if k.resolution_a is None else f", {k.resolution_a:.1f} Å"
        ax.set_title(
            f"batch {k.batch} class {k.class_number}\n{k.particles} particles{res}", fontsize=7
        )
    return fig


def jobs_page(report: VisitReport) -> Figure:
    """The processing jobs of every collection, their status, work outcomes and messages."""
    fig = Figure(figsize=PAGE)
    fig.text(0.05, 0.94, "Processing jobs and failures", fontsize=14, weight="bold")
    ax = fig.add_axes((0.03, 0.05, 0.94, 0.85))
    ax.axis("off")
    cells = []
    for c in report.collections:
        for j in c.jobs:
            outcomes = ", ".join(f"{k} {v}" for k, v in sorted(j.outcomes.items())) or "-"
            cells.append(
                [
                    c.row.name[:20],
                    str(j.program_id),
                    j.name[:30],
                    j.status,
                    _when(j.start),
                    _when(j.end),
                    outcomes,
                    j.message[:60],
                ]
            )
    if not cells:
        ax.text(0, 1, "No processing job.", va="top")
        return fig
    header = ["Collection", "Program", "Job", "Status", "Started", "Ended", "Work", "Messages"]
    table = ax.table(cellText=cells[:40], colLabels=header, loc="upper left", cellLoc="left")
    table.auto_set_font_size(False)
    table.set_fontsize(7)
    table.auto_set_column_width(list(range(len(header))))
    if len(cells) > 40:
        ax.text(0, 0, f"… and {len(cells) - 40} more jobs", fontsize=8)
    return fig


def recon3d_page(c: CollectionReport) -> Figure | None:
    """The 3D results: each run's classes and each refinement, with the B-factor plot."""
    found = c.results3d
    if found is None or not (found.runs or found.refinements):
        return None
    fig = Figure(figsize=PAGE)
    fig.suptitle(f"{c.row.name}: 3D", fontsize=14)
    text_ax, plot_ax = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.3, 1]})
    fig.subplots_adjust(left=0.04, right=0.96, top=0.9, bottom=0.1, wspace=0.25)
    lines = []
    for run in found.runs:
        lines.append(f"3D run {run.run_number}: {run.particles:,} particles")
        for k in run.classes:
            mark = " (refined next)" if k.selected else ""
            lines.append(
                f"    class {k.class_number}: {k.particles:,} particles, "
                f"{_number(k.resolution_a, '{:.1f}')} Å{mark}"
            )
    for r in found.refinements:
        lines.append(
            f"Refinement of run {r.run_number}: {r.particles:,} particles, "
            f"{_number(r.resolution_a, '{:.2f}')} Å (FSC 0.143), "
            f"B {_number(r.bfactor_a2, '{:.0f}')} Å²"
        )
    text_ax.axis("off")
    text_ax.text(0, 1, "\n".join(lines[:40]), va="top", family="monospace", fontsize=9)
    points = [p for r in found.refinements for p in r.points]
    if len(points) >= 2:
        n = np.array([p.particles for p in points], dtype=float)
        inv_d2 = np.array([1.0 / p.resolution_a**2 for p in points])
        plot_ax.plot(np.log(n), inv_d2, "o", color="tab:blue")
        slope, intercept = np.polyfit(np.log(n), inv_d2, 1)
        xs = np.linspace(np.log(n).min(), np.log(n).max(), 20)
        plot_ax.plot(xs, slope * xs + intercept, "-", color="tab:orange")
        if slope > 0:
            plot_ax.set_title(f"B-factor plot: B = 2 / slope = {2 / slope:.0f} Å²")
        plot_ax.set_xlabel("ln(particles)")
        plot_ax.set_ylabel("1 / resolution² (Å⁻²)")
    else:
        plot_ax.axis("off")
        plot_ax.text(0.5, 0.5, "no B-factor plot yet", ha="center", va="center")
    return fig
