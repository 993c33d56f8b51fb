"""Stand-ins for the 3D commands (``cryolive initial-model``, ``class3d``, ``refine3d``,
``postprocess``) that write exactly their file contracts with planted values, so that the
layer driving them (services, writer, web) is tested without the engines.

Planted truths the tests check against:
- initial-model: its map, and run_model.star with the estimate INITIAL_MODEL_RESOLUTION_A.
- class3d: class 1 holds half the particles, views spread evenly, resolution 8 Å; the other
  classes share the rest, all seen from one view, resolution 25 Å.
- postprocess: the final resolution follows the Rosenthal-Henderson law for ``BFACTOR_A2``:
  1/d² = (2/B) ln(N / N0), with N the refined particles (``d(N0) = 1/sqrt(...)``).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import starfile

from cryolive.engines.recon3d import phantom
from cryolive.io.maps import read_map, write_map

BFACTOR_A2 = 120.0
INITIAL_MODEL_RESOLUTION_A = 21.5  # the initial model's estimate in its run_model.star
N0 = 5.0  # particles at which the planted resolution is infinite (1/d² = 0)
GOOD_RESOLUTION_A = 8.0
POOR_RESOLUTION_A = 25.0


def planted_resolution_a(particles: int) -> float:
    return 1.0 / math.sqrt(2.0 / BFACTOR_A2 * math.log(particles / N0))


def _read(star: Path) -> tuple[pd.DataFrame, pd.DataFrame, int, float]:
    tables = starfile.read(star, always_dict=True)
    optics, particles = tables["optics"], tables["particles"]
    box = int(optics["rlnImageSize"].iloc[0])
    pixel = float(optics["rlnImagePixelSize"].iloc[0])
    return optics, particles, box, pixel


def _rebase(particles: pd.DataFrame, star: Path, out: Path) -> pd.DataFrame:
    particles = particles.copy()
    names = []
    for name in particles["rlnImageName"]:
        index, _, stack = str(name).partition("@")
        path = Path(stack) if Path(stack).is_absolute() else star.parent / stack
        names.append(f"{index}@{os.path.relpath(path.resolve(), out.resolve())}")
    particles["rlnImageName"] = names
    return particles


def _uniform_angles(rng: np.random.Generator, n: int) -> np.ndarray:
    return np.column_stack(
        [
            rng.uniform(-180, 180, n),
            np.degrees(np.arccos(rng.uniform(-1, 1, n))),
            rng.uniform(-180, 180, n),
        ]
    )


def _fsc_table(resolution_a: float, box: int, pixel: float) -> pd.DataFrame:
    shells = np.arange(box // 2 + 1)
    s = shells / (box * pixel)
    curve = 1.0 / (1.0 + np.exp((s - 1.0 / resolution_a) * 40.0 * pixel * box / 10))
    curve[0] = 1.0
    return pd.DataFrame(
        {
            "rlnSpectralIndex": shells,
            "rlnResolution": np.round(s, 6),
            "rlnAngstromResolution": np.where(s > 0, 1.0 / np.maximum(s, 1e-9), 999.0),
            "rlnFourierShellCorrelationCorrected": np.round(curve, 4),
            "rlnFourierShellCorrelationUnmaskedMaps": np.round(curve * 0.9, 4),
            "rlnFourierShellCorrelationMaskedMaps": np.round(curve, 4),
        }
    )


def run_step(
    step: str,
    arguments: Sequence[str],
    *,
    out_dir: Path,
    timeout_s: float,
    runner: object = None,
    stopped: object = None,
) -> None:
    """What ``cryolive STEP ARGUMENTS --out OUT_DIR`` writes, by contract (``runner`` and
    ``stopped`` unused)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(len(str(out_dir)))
    args = list(arguments)
    if step == "postprocess":
        half1 = Path(args[0])
        refine = half1.parent
        n = len(starfile.read(refine / "run_data.star", always_dict=True)["particles"])
        volume, pixel = read_map(half1)
        box = volume.shape[0]
        resolution = planted_resolution_a(n)
        write_map(out_dir / "postprocess.mrc", volume, pixel_size_a=pixel)
        write_map(
            out_dir / "mask.mrc", (volume > volume.mean()).astype(np.float32), pixel_size_a=pixel
        )
        starfile.write(
            {
                "general": pd.DataFrame(
                    {
                        "rlnFinalResolution": [round(resolution, 4)],
                        "rlnBfactorUsedForSharpening": [-60.0],
                    }
                ),
                "fsc": _fsc_table(resolution, box, pixel),
            },
            out_dir / "postprocess.star",
            overwrite=True,
        )
        return
    star = Path(args[0])
    optics, particles, box, pixel = _read(star)
    particles = _rebase(particles, star, out_dir)
    volume = phantom(box, rng)
    if step == "initial-model":
        write_map(out_dir / "initial_model.mrc", volume, pixel_size_a=pixel)
        model = {
            "model_classes": pd.DataFrame(
                {
                    "rlnReferenceImage": ["initial_model.mrc"],
                    "rlnClassDistribution": [1.0],
                    "rlnEstimatedResolution": [INITIAL_MODEL_RESOLUTION_A],
                }
            )
        }
        starfile.write(model, out_dir / "run_model.star", overwrite=True)
        starfile.write(
            {"optics": optics, "particles": particles}, out_dir / "run_data.star", overwrite=True
        )
    elif step == "class3d":
        k = int(args[args.index("--classes") + 1]) if "--classes" in args else 4
        n = len(particles)
        numbers = np.ones(n, dtype=np.int64)
        rest = np.arange(n) % 2 == 1
        numbers[rest] = 2 + (np.arange(rest.sum()) % max(1, k - 1)) if k > 1 else 1
        angles = _uniform_angles(rng, n)
        angles[numbers != 1, 0] = 10.0  # one view
        angles[numbers != 1, 1] = 90.0
        particles["rlnClassNumber"] = numbers
        particles["rlnAngleRot"], particles["rlnAngleTilt"], particles["rlnAnglePsi"] = angles.T
        starfile.write(
            {"optics": optics, "particles": particles}, out_dir / "run_data.star", overwrite=True
        )
        counts = np.bincount(numbers, minlength=k + 1)[1:]
        for c in range(1, k + 1):
            write_map(out_dir / f"class{c:03d}.mrc", phantom(box, rng), pixel_size_a=pixel)
        starfile.write(
            {
                "model_general": pd.DataFrame({"rlnNrClasses": [k], "rlnPixelSize": [pixel]}),
                "model_classes": pd.DataFrame(
                    {
                        "rlnReferenceImage": [f"class{c:03d}.mrc" for c in range(1, k + 1)],
                        "rlnClassDistribution": counts / n,
                        "rlnEstimatedResolution": [GOOD_RESOLUTION_A]
                        + [POOR_RESOLUTION_A] * (k - 1),
                        "rlnOverallFourierCompleteness": [0.95] * k,
                        "rlnAccuracyRotations": [4.0] * k,
                        "rlnAccuracyTranslationsAngst": [1.5] * k,
                    }
                ),
            },
            out_dir / "model.star",
            overwrite=True,
        )
    elif step == "refine3d":
        angles = _uniform_angles(rng, len(particles))
        particles["rlnAngleRot"], particles["rlnAngleTilt"], particles["rlnAnglePsi"] = angles.T
        starfile.write(
            {"optics": optics, "particles": particles}, out_dir / "run_data.star", overwrite=True
        )
        write_map(out_dir / "refined.mrc", volume, pixel_size_a=pixel)
        for half in ("half1", "half2"):
            noisy = volume + rng.normal(0, 0.05, volume.shape).astype(np.float32)
            write_map(out_dir / f"{half}.mrc", noisy, pixel_size_a=pixel)
        resolution = planted_resolution_a(len(particles))
        starfile.write(
            {"fsc": _fsc_table(resolution, box, pixel)}, out_dir / "fsc.star", overwrite=True
        )
    else:
        raise AssertionError(f"no such 3D command: {step}")
