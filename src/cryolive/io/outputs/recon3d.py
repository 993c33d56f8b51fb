"""The files of live 3D: the particles gathered for a 3D run, and what the 3D commands write,
read back for the records and the web.

Layout (``io.layout`` gives the job folders)::

    Class3D/jobNNN/run_001/particles.star, particles.mrcs     the selected 2D particles, windowed
                          InitialModel/initial_model.mrc       ``cryolive initial-model``
                          Class3D/class001.mrc …, model.star, run_data.star   ``cryolive class3d``
    Refine3D/jobNNN/run_001_class002/particles.star            that class's particles
                          Refine/refined.mrc, half1.mrc, half2.mrc, run_data.star, fsc.star
                          PostProcess/postprocess.mrc, mask.mrc, postprocess.star

The refinement's recorded map is ``PostProcess/postprocess.mrc``; :func:`refinement_files`
finds the rest from it. STAR tables are RELION 3.1's (``model_classes``: rlnClassDistribution,
rlnEstimatedResolution, rlnOverallFourierCompleteness, rlnAccuracyRotations,
rlnAccuracyTranslationsAngst; ``postprocess.star``: data_general rlnFinalResolution,
rlnBfactorUsedForSharpening, data_fsc rlnResolution (1/Å) and the FSC columns); a column a
writer left out reads as None.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import starfile
from numpy.typing import NDArray

from cryolive.engines.class2d import fourier_crop
from cryolive.io.maps import MapFileError, read_map
from cryolive.io.particle_files import (
    ParticleStarError,
    read_particle_tables,
    read_particles_3d,
    write_stack,
)

POSE_2D: tuple[str, ...] = ("rlnClassNumber", "rlnAnglePsi", "rlnOriginXAngst", "rlnOriginYAngst")
POSE_2D += ("rlnMaxValueProbDistribution", "rlnOriginX", "rlnOriginY")
FSC_COLUMNS = {
    "rlnFourierShellCorrelationCorrected": "corrected",
    "rlnFourierShellCorrelationMaskedMaps": "masked",
    "rlnFourierShellCorrelationUnmaskedMaps": "unmasked",
    "rlnCorrectedFourierShellCorrelationPhaseRandomizedMaskedMaps": "phase_randomised",
    "rlnFourierShellCorrelation": "half_maps",
    "rlnGoldStandardFsc": "half_maps",
}


@dataclass(frozen=True)
class Box3D:
    """The box a 3D run uses: ``window_px`` of the extracted images, resampled to ``box_px``
    (``pixel_size_a`` after resampling)."""

    window_px: int
    box_px: int
    pixel_size_a: float


def box_for_3d(
    *,
    diameter_a: float,
    pixel_size_a: float,
    extracted_box_px: int,
    box_factor: float,
    max_pixel_a: float,
) -> Box3D:
    """Window the particles to ``box_factor`` x the diameter (even, within the extracted box)
    and downscale them (Fourier cropping) to the smallest even box whose pixel is at most
    ``max_pixel_a``; never upscale."""
    for name, value in (("diameter_a", diameter_a), ("pixel_size_a", pixel_size_a)):
        if not value > 0:
            raise ValueError(f"{name}: must be > 0, got {value}")
    if extracted_box_px < 4 or box_factor < 1 or not max_pixel_a > 0:
        raise ValueError("extracted_box_px must be >= 4, box_factor >= 1, max_pixel_a > 0")
    window = 2 * math.ceil(box_factor * diameter_a / pixel_size_a / 2)
    window = min(window, extracted_box_px - extracted_box_px % 2)
    box = window
    if pixel_size_a < max_pixel_a:
        box = min(window, 2 * math.ceil(window * pixel_size_a / max_pixel_a / 2))
    return Box3D(window_px=window, box_px=box, pixel_size_a=pixel_size_a * window / box)


def _window(images: NDArray[np.float32], size: int) -> NDArray[np.float32]:
    b = images.shape[-1]
    start = (b - size) // 2
    return np.ascontiguousarray(images[:, start : start + size, start : start + size])


def gather_particles(
    stars: list[Path],
    out_dir: Path,
    *,
    diameter_a: float,
    box_factor: float,
    max_pixel_a: float,
    chunk: int = 2000,
) -> tuple[Path, int, Box3D]:
    """Join particles.star files (2D classes' selected particles) into ``out_dir``'s
    ``particles.star`` with their images windowed and downscaled (:func:`box_for_3d`) into
    ``particles.mrcs``; 2D poses are dropped. Returns (the STAR file, particles, the box)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    tables = read_particle_tables(stars, relative_to=out_dir)
    particles = tables.particles.drop(columns=[c for c in POSE_2D if c in tables.particles])
    optics = tables.optics.copy()
    joined = out_dir / "joined.star"
    starfile.write({"optics": optics, "particles": particles}, joined, overwrite=True)
    stack, _ = read_particles_3d(joined)
    box = box_for_3d(
        diameter_a=diameter_a,
        pixel_size_a=stack.pixel_size_a,
        extracted_box_px=stack.images.shape[-1],
        box_factor=box_factor,
        max_pixel_a=max_pixel_a,
    )
    images = np.concatenate(
        [
            fourier_crop(
                _window(np.asarray(stack.images[i : i + chunk]), box.window_px), box.box_px
            )
            for i in range(0, len(particles), chunk)
        ]
    )
    write_stack(out_dir / "particles.mrcs", images, pixel_size_a=box.pixel_size_a)
    particles = particles.reset_index(drop=True)
    particles["rlnImageName"] = [f"{i + 1:06d}@particles.mrcs" for i in range(len(particles))]
    optics["rlnImagePixelSize"] = round(box.pixel_size_a, 6)
    optics["rlnImageSize"] = box.box_px
    star = out_dir / "particles.star"
    starfile.write({"optics": optics, "particles": particles}, star, overwrite=True)
    joined.unlink()
    return star, len(particles), box


def _tables(path: Path) -> dict[str, pd.DataFrame]:
    if not path.is_file():
        raise ParticleStarError(path, "does not exist")
    try:
        read = starfile.read(path, always_dict=True)
    except Exception as exc:  # starfile raises many kinds on a bad file
        raise ParticleStarError(path, f"not a STAR file ({type(exc).__name__})") from exc
    return {k: v if isinstance(v, pd.DataFrame) else pd.DataFrame([v]) for k, v in read.items()}


def _finite(value: object) -> float | None:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


@dataclass(frozen=True)
class ClassOutput:
    """One class of a ``cryolive class3d`` run, from its files."""

    class_number: int
    map_path: Path
    particles: int
    distribution: float
    resolution_a: float | None
    completeness: float | None
    rotation_accuracy_deg: float | None
    translation_accuracy_a: float | None
    angles_deg: NDArray[np.float64]  # (n, 3) rot, tilt, psi of the class's particles


def read_initial_model_resolution(folder: Path) -> float | None:
    """The estimated resolution (Å) of a ``cryolive initial-model`` run's main map (its
    largest class, ``initial_model.mrc``): run_model.star's rlnEstimatedResolution of the
    class of largest rlnClassDistribution; None when the file does not give one."""
    path = folder / "run_model.star"
    if not path.is_file():
        return None
    classes = _tables(path).get("model_classes", pd.DataFrame())
    if classes.empty or "rlnEstimatedResolution" not in classes:
        return None
    row = 0
    if "rlnClassDistribution" in classes:
        row = int(np.argmax(classes["rlnClassDistribution"].to_numpy(dtype=np.float64)))
    value = _finite(classes["rlnEstimatedResolution"].iloc[row])
    return value if value is not None and value > 0 else None


def read_class3d_outputs(folder: Path) -> list[ClassOutput]:
    """The classes of a 3D classification: ``classNNN.mrc``, ``model.star``, ``run_data.star``.

    The particles of a class are the run_data.star rows with its rlnClassNumber; its
    distribution is model.star's rlnClassDistribution or else its share of the particles.
    """
    data = _tables(folder / "run_data.star")
    particles = data.get("particles")
    if particles is None or "rlnClassNumber" not in particles:
        raise ParticleStarError(folder / "run_data.star", "lacks data_particles rlnClassNumber")
    model = _tables(folder / "model.star") if (folder / "model.star").is_file() else {}
    classes = model.get("model_classes", pd.DataFrame())
    maps = sorted(folder.glob("class[0-9][0-9][0-9].mrc"))
    if not maps:
        raise ParticleStarError(folder, "holds no classNNN.mrc")
    numbers = particles["rlnClassNumber"].to_numpy(dtype=np.int64)
    angle_columns = ["rlnAngleRot", "rlnAngleTilt", "rlnAnglePsi"]
    angles = (
        particles[angle_columns].to_numpy(dtype=np.float64)
        if all(c in particles for c in angle_columns)
        else np.zeros((len(particles), 3))
    )
    out = []
    for path in maps:
        k = int(path.stem.removeprefix("class"))
        row = classes.iloc[k - 1] if k <= len(classes) else pd.Series(dtype=object)
        count = int((numbers == k).sum())
        share = _finite(row.get("rlnClassDistribution"))
        resolution = _finite(row.get("rlnEstimatedResolution"))
        completeness = _finite(row.get("rlnOverallFourierCompleteness"))
        out.append(
            ClassOutput(
                class_number=k,
                map_path=path,
                particles=count,
                distribution=min(
                    1.0, max(0.0, share if share is not None else count / len(numbers))
                ),
                resolution_a=resolution if resolution and resolution < 999 else None,
                completeness=None if completeness is None else min(1.0, max(0.0, completeness)),
                rotation_accuracy_deg=_finite(row.get("rlnAccuracyRotations")),
                translation_accuracy_a=_finite(row.get("rlnAccuracyTranslationsAngst")),
                angles_deg=angles[numbers == k],
            )
        )
    return out


def read_angles(path: Path, *, class_number: int | None = None) -> NDArray[np.float64]:
    """(n, 3) rot, tilt, psi in degrees of a RELION 3.1 data STAR file's particles (those of
    one rlnClassNumber if given)."""
    particles = _tables(path).get("particles")
    columns = ["rlnAngleRot", "rlnAngleTilt", "rlnAnglePsi"]
    if particles is None or not all(c in particles for c in columns):
        raise ParticleStarError(path, "lacks data_particles with rlnAngleRot/Tilt/Psi")
    if class_number is not None:
        if "rlnClassNumber" not in particles:
            raise ParticleStarError(path, "lacks rlnClassNumber")
        particles = particles[particles["rlnClassNumber"] == class_number]
    try:
        return np.asarray(particles[columns].to_numpy(dtype=np.float64), dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ParticleStarError(path, "an angle column holds something else") from exc


@dataclass(frozen=True)
class FscCurves:
    """FSC curves against resolution (``resolution_per_a``: 1/Å, one per shell)."""

    resolution_per_a: list[float]
    curves: dict[str, list[float]]  # name (half_maps, masked, unmasked, corrected …) -> FSC
    final_resolution_a: float | None
    bfactor_a2: float | None


def read_fsc(path: Path) -> FscCurves:
    """FSC curves of a postprocess.star (or a refinement's fsc.star): data_fsc's
    rlnResolution (1/Å; else from rlnAngstromResolution) and every FSC column it has; the
    final resolution and sharpening B-factor of data_general when present."""
    tables = _tables(path)
    fsc = tables.get("fsc")
    if fsc is None:
        fsc = next((t for t in tables.values() if any(c in t for c in FSC_COLUMNS)), None)
    if fsc is None or not any(c in fsc for c in FSC_COLUMNS):
        raise ParticleStarError(path, "holds no FSC table")
    if "rlnResolution" in fsc:
        resolution = fsc["rlnResolution"].to_numpy(dtype=np.float64)
    elif "rlnAngstromResolution" in fsc:
        angstrom = fsc["rlnAngstromResolution"].to_numpy(dtype=np.float64)
        resolution = np.where(angstrom > 0, 1.0 / np.maximum(angstrom, 1e-9), 0.0)
    else:
        raise ParticleStarError(path, "FSC table lacks rlnResolution")
    curves = {
        name: [round(float(v), 5) for v in fsc[column].to_numpy(dtype=np.float64)]
        for column, name in FSC_COLUMNS.items()
        if column in fsc
    }
    general = tables.get("general", pd.DataFrame())
    first = general.iloc[0] if len(general) else pd.Series(dtype=object)
    return FscCurves(
        resolution_per_a=[round(float(r), 6) for r in resolution],
        curves=curves,
        final_resolution_a=_finite(first.get("rlnFinalResolution")),
        bfactor_a2=_finite(first.get("rlnBfactorUsedForSharpening")),
    )


@dataclass(frozen=True)
class RefinementFiles:
    postprocess_map: Path
    postprocess_star: Path
    mask: Path
    refined_map: Path
    half1: Path
    half2: Path
    run_data: Path
    fsc: Path


def refinement_files(postprocess_map: Path) -> RefinementFiles:
    """The files of a refinement, from its recorded (postprocessed) map."""
    post = postprocess_map.parent
    refine = post.parent / "Refine"
    return RefinementFiles(
        postprocess_map=postprocess_map,
        postprocess_star=post / "postprocess.star",
        mask=post / "mask.mrc",
        refined_map=refine / "refined.mrc",
        half1=refine / "half1.mrc",
        half2=refine / "half2.mrc",
        run_data=refine / "run_data.star",
        fsc=refine / "fsc.star",
    )


def map_preview(path: Path, *, max_box: int = 40) -> tuple[NDArray[np.float32], float]:
    """A map downscaled (Fourier cropping, each axis) to at most ``max_box`` voxels a side,
    for the browser; (volume (z, y, x), its voxel size in Å)."""
    volume, voxel = read_map(path)
    n = volume.shape[0]
    if volume.ndim != 3 or len(set(volume.shape)) != 1:
        raise MapFileError(f"{path}: not a cubic map ({volume.shape})")
    if n <= max_box:
        return volume, voxel
    box = max_box - max_box % 2
    spectrum = np.fft.fftshift(np.fft.fftn(volume))
    lo = n // 2 - box // 2
    cropped = spectrum[lo : lo + box, lo : lo + box, lo : lo + box]
    small = np.fft.ifftn(np.fft.ifftshift(cropped)).real * (box / n) ** 3
    return np.asarray(small, dtype=np.float32), voxel * n / box
