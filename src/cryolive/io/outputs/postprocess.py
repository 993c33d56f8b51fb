"""What post-processing writes, as RELION 3.1's ``relion_postprocess`` does: the sharpened map
(``postprocess.mrc``), it masked (``postprocess_masked.mrc``), the mask (``mask.mrc``),
``postprocess.star`` (data_general, data_fsc, data_guinier) and a PNG of the FSC curves and the
Guinier plot; and the B-factor plot's PNG and STAR table.

Signs: ``rlnBfactorUsedForSharpening`` is RELION's, negative when the map is sharpened (the
negative of :attr:`PostprocessResult.bfactor_a2`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import starfile
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from cryolive.engines.postprocess import BfactorSeries, PostprocessResult
from cryolive.io.maps import write_map


@dataclass(frozen=True)
class PostprocessFiles:
    """Paths written by :func:`write_postprocess_outputs`."""

    sharpened: Path
    sharpened_masked: Path
    mask: Path
    star: Path
    plot: Path


def _tables(
    result: PostprocessResult, pixel_size_a: float, half1: str, half2: str, mask_name: str
) -> dict[str, pd.DataFrame | dict[str, float | str]]:
    c = result.fsc
    shells = np.arange(c.unmasked.size)
    inv_d = np.where(np.isfinite(c.resolution_a), 1.0 / c.resolution_a, 0.0)
    # a key-value block, as RELION writes data_general
    general: dict[str, float | str] = {
        "rlnFinalResolution": round(result.resolution_a, 4),
        "rlnBfactorUsedForSharpening": round(-result.bfactor_a2, 4),
        "rlnUnfilteredMapHalf1": half1,
        "rlnUnfilteredMapHalf2": half2,
        "rlnMaskName": mask_name,
        "rlnRandomiseFrom": round(float(c.resolution_a[c.randomise_from_shell]), 4),
    }
    if result.guinier is not None:
        general["rlnFittedSlopeGuinierPlot"] = result.guinier.slope
        general["rlnFittedInterceptGuinierPlot"] = result.guinier.intercept
    fsc = pd.DataFrame(
        {
            "rlnSpectralIndex": shells,
            "rlnResolution": inv_d,
            "rlnAngstromResolution": np.where(np.isfinite(c.resolution_a), c.resolution_a, 999.0),
            "rlnFourierShellCorrelationCorrected": c.corrected,
            "rlnFourierShellCorrelationUnmaskedMaps": c.unmasked,
            "rlnFourierShellCorrelationMaskedMaps": c.masked,
            "rlnCorrectedFourierShellCorrelationPhaseRandomizedMaskedMaps": c.phase_randomised,
        }
    )
    tables: dict[str, pd.DataFrame | dict[str, float | str]] = {"general": general, "fsc": fsc}
    g = result.guinier
    if g is not None:
        keep = np.isfinite(g.ln_amplitude) & (g.inv_d2 > 0)
        tables["guinier"] = pd.DataFrame(
            {
                "rlnResolutionSquared": g.inv_d2[keep],
                "rlnLogAmplitudesOriginal": g.ln_amplitude[keep],
            }
        )
    return tables


def _plot(result: PostprocessResult, path: Path) -> None:
    fig = Figure(figsize=(10, 4), dpi=100)
    FigureCanvasAgg(fig)
    left, right = fig.subplots(1, 2)
    c = result.fsc
    inv_d = np.where(np.isfinite(c.resolution_a), 1.0 / c.resolution_a, 0.0)
    for curve, label in (
        (c.corrected, "corrected"),
        (c.unmasked, "unmasked"),
        (c.masked, "masked"),
        (c.phase_randomised, "phase-randomised, masked"),
    ):
        left.plot(inv_d, curve, label=label)
    left.axhline(0.143, color="grey", lw=0.8, ls="--")
    left.set_xlabel("resolution (1/Å)")
    left.set_ylabel("FSC")
    left.set_title(f"FSC: {result.resolution_a:.2f} Å at 0.143")
    left.legend(fontsize=8)
    g = result.guinier
    if g is not None:
        right.plot(g.inv_d2, g.ln_amplitude, ".", label="ln |F| (signal)")
        x = np.array([g.fit_from_inv_d2, g.fit_to_inv_d2])
        right.plot(x, g.intercept + g.slope * x, "-", label=f"fit, B = {result.bfactor_a2:.0f} Å²")
        right.legend(fontsize=8)
    else:
        right.text(0.5, 0.5, f"B = {result.bfactor_a2:.0f} Å² (given)", ha="center")
    right.set_xlabel("1/d² (1/Å²)")
    right.set_ylabel("ln |F|")
    right.set_title("Guinier plot")
    fig.tight_layout()
    fig.savefig(path)


def write_postprocess_outputs(
    out_dir: Path,
    result: PostprocessResult,
    *,
    pixel_size_a: float,
    half1_name: str = "half1.mrc",
    half2_name: str = "half2.mrc",
) -> PostprocessFiles:
    """Write the maps, the mask, ``postprocess.star`` and ``postprocess_fsc.png`` into
    ``out_dir`` (made when missing)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = PostprocessFiles(
        sharpened=write_map(
            out_dir / "postprocess.mrc", result.sharpened, pixel_size_a=pixel_size_a
        ),
        sharpened_masked=write_map(
            out_dir / "postprocess_masked.mrc", result.sharpened_masked, pixel_size_a=pixel_size_a
        ),
        mask=write_map(out_dir / "mask.mrc", result.mask, pixel_size_a=pixel_size_a),
        star=out_dir / "postprocess.star",
        plot=out_dir / "postprocess_fsc.png",
    )
    tables = _tables(result, pixel_size_a, half1_name, half2_name, files.mask.name)
    starfile.write(tables, files.star, overwrite=True)
    _plot(result, files.plot)
    return files


def write_bfactor_plot(out_dir: Path, series: BfactorSeries) -> tuple[Path, Path]:
    """Write ``bfactor.png`` (1/d² against ln N with the fitted line) and ``bfactor.star`` (a
    table of cryolive's own, not RELION labels)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    star = out_dir / "bfactor.star"
    table = pd.DataFrame(
        {
            "particles": series.counts,
            "ln_particles": np.log(series.counts),
            "resolution_a": series.resolutions_a,
            "inv_d2": 1.0 / series.resolutions_a**2,
        }
    )
    general = {
        "bfactor_a2": round(series.bfactor_a2, 4),
        "slope": series.slope,
        "intercept": series.intercept,
    }
    starfile.write({"general": general, "bfactor": table}, star, overwrite=True)
    png = out_dir / "bfactor.png"
    fig = Figure(figsize=(5, 4), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    ln_n = np.log(series.counts)
    ax.plot(ln_n, 1.0 / series.resolutions_a**2, "o", label="refinements")
    x = np.linspace(ln_n.min(), ln_n.max(), 2)
    ax.plot(x, series.intercept + series.slope * x, "-", label=f"B = {series.bfactor_a2:.0f} Å²")
    ax.set_xlabel("ln(number of particles)")
    ax.set_ylabel("1/d² (1/Å²)")
    ax.set_title("B-factor plot (Rosenthal & Henderson)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(png)
    return png, star
