"""RELION 3.1's ``relion_mask_create`` and ``relion_postprocess`` on two half maps, written
as ``cryolive postprocess`` writes: postprocess.mrc, postprocess_masked.mrc, mask.mrc and
postprocess.star (RELION's own: data_general rlnFinalResolution, rlnBfactorUsedForSharpening;
data_fsc with the corrected, masked, unmasked and phase-randomised curves; data_guinier)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cryolive.adapters.relion_refine3d._process import Relion3DError, require, run
from cryolive.adapters.relion_refine3d._star import read_block
from cryolive.engines.postprocess import solvent_threshold
from cryolive.io.maps import MapFileError, read_map, write_map

MASK_CREATE = "relion_mask_create"
POSTPROCESS = "relion_postprocess"
LOG_NAME = "relion_postprocess.log"
OUTPUTS = ("postprocess.mrc", "postprocess_masked.mrc", "postprocess.star")


@dataclass(frozen=True)
class RelionPostprocess:
    """What :func:`run_relion_postprocess` wrote and RELION found."""

    sharpened: Path
    sharpened_masked: Path
    mask: Path
    star: Path
    resolution_a: float  # FSC 0.143 of the masked maps, corrected (rlnFinalResolution)
    bfactor_a2: float  # cryolive's sign: positive sharpened (-rlnBfactorUsedForSharpening)


def _half(path: Path, name: str) -> tuple[np.ndarray, float]:
    try:
        return read_map(path)
    except MapFileError as exc:
        raise ValueError(f"{name}: {exc}") from exc


def run_relion_postprocess(
    half1: Path,
    half2: Path,
    out_dir: Path,
    *,
    pixel_size_a: float | None = None,
    mask: Path | None = None,
    bfactor: float | None = None,
    lowpass_a: float = 15.0,
    extend_px: float = 3.0,
    edge_px: float = 6.0,
    threads: int = 1,
    timeout_s: float | None = None,
) -> RelionPostprocess:
    """Mask (unless ``mask`` is given), FSC corrected for masking, B-factor and sharpening
    by RELION.

    The mask is ``relion_mask_create`` of the halves' average low-passed to ``lowpass_a`` Å,
    thresholded where cryolive's automatic mask is
    (:func:`cryolive.engines.postprocess.solvent_threshold`), grown ``extend_px`` and given a
    soft edge ``edge_px`` wide. The B-factor is fitted (``--auto_bfac`` from 10 Å) unless
    ``bfactor`` (Å², positive sharpens; RELION's ``--adhoc_bfac`` is its negative) is given.

    Raises
    ------
    ValueError
        Unreadable or mismatched maps, no voxel size, a mask of another shape.
    RelionMissingError
        ``relion_mask_create`` or ``relion_postprocess`` not installed.
    Relion3DError
        RELION failed (e.g. too few shells for the B-factor fit) or wrote nothing usable.
    """
    h1, voxel = _half(half1, "half1")
    h2, _ = _half(half2, "half2")
    if h1.shape != h2.shape or h1.ndim != 3:
        raise ValueError(f"half2: shape {h2.shape} differs from half1's {h1.shape}")
    pixel = pixel_size_a if pixel_size_a is not None else voxel
    if not pixel > 0:
        raise ValueError("pixel_size_a: the half maps' header has none; give one")
    if mask is not None and _half(mask, "mask")[0].shape != h1.shape:
        raise ValueError(f"mask: {mask} is not of the half maps' shape {h1.shape}")
    exe_mask, exe_post = require(MASK_CREATE), require(POSTPROCESS)
    out_dir.mkdir(parents=True, exist_ok=True)
    work = out_dir / "relion"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir()
    log = out_dir / LOG_NAME
    log.write_text("")
    mask_path = out_dir / "mask.mrc"
    if mask is None:
        average = (h1 + h2) / 2
        _, threshold = solvent_threshold(average, pixel, lowpass_a=lowpass_a)
        avg_path = write_map(work / "average.mrc", average.astype(np.float32), pixel_size_a=pixel)
        command = [
            exe_mask, "--i", str(avg_path.resolve()), "--o", str(mask_path.resolve()),
            "--lowpass", f"{lowpass_a:g}", "--ini_threshold", f"{threshold:.6g}",
            "--extend_inimask", f"{extend_px:g}", "--width_soft_edge", f"{edge_px:g}",
            "--angpix", f"{pixel:g}", "--j", str(threads),
        ]  # fmt: skip
        run(command, cwd=work, log_path=log, timeout_s=timeout_s)
    elif mask.resolve() != mask_path.resolve():
        shutil.copyfile(mask, mask_path)
    command = [
        exe_post, "--i", str(half1.resolve()), "--i2", str(half2.resolve()),
        "--mask", str(mask_path.resolve()), "--angpix", f"{pixel:g}",
        "--o", str((work / "postprocess").resolve()),
    ]  # fmt: skip
    command += ["--adhoc_bfac", f"{-bfactor:g}"] if bfactor is not None else ["--auto_bfac"]
    run(command, cwd=work, log_path=log, timeout_s=timeout_s)
    for name in OUTPUTS:
        if not (work / name).is_file():
            raise Relion3DError(f"{POSTPROCESS} wrote no {name} (see {log})")
        shutil.copyfile(work / name, out_dir / name)
    try:
        general = read_block(out_dir / "postprocess.star", "general")
        resolution = float(general["rlnFinalResolution"].iloc[0])
        used = float(general["rlnBfactorUsedForSharpening"].iloc[0])
    except (ValueError, KeyError) as exc:
        raise Relion3DError(f"{out_dir / 'postprocess.star'}: {exc}") from exc
    return RelionPostprocess(
        sharpened=out_dir / "postprocess.mrc",
        sharpened_masked=out_dir / "postprocess_masked.mrc",
        mask=mask_path,
        star=out_dir / "postprocess.star",
        resolution_a=resolution,
        bfactor_a2=-used,
    )
