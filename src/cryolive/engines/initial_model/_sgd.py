"""De novo initial models by stochastic gradient descent on minibatches (after cryoSPARC's
ab-initio and RELION 4's VDAM: Punjani et al. 2017, doi:10.1038/nmeth.4169)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from cryolive.engines._search3d import (
    Prepared,
    Translations,
    align,
    half_set_resolution_a,
    lowpass,
    offset_grid,
    prepare,
    resize_volume,
    sgd_step,
    soft_mask,
    symmetrise,
    symmetry_rotations,
    working_box,
)
from cryolive.engines.recon3d import (
    ParticleStack3D,
    Reconstructor,
    image_transforms,
    matrix_to_euler,
    orientation_grid,
    particle_ctf,
    random_rotations,
    shift_phases,
)

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class InitialModelResult:
    """Maps and per-particle assignments of :func:`initial_model`.

    Attributes
    ----------
    maps : (K, b, b, b) float32
        One map per class at the particles' box and pixel, low-passed to ``resolution_a``.
    angles_deg : (n, 3) float64
        Each particle's rot, tilt, psi (RELION) against its class's map.
    classes : (n,) int64
        Each particle's class, 0-based.
    class_sizes : (K,) int64
    resolution_a : (K,) float64
        Each class's estimated resolution (Å): FSC 0.143 between the reconstructions of its
        particles' two half sets at their final orientations and origins (the box size when a
        half is empty).
    search_limit_a : float
        The final resolution limit of the search (Å); the maps are low-passed to the coarser
        of it and their estimate.
    origins_a : (n, 2) float64
        Each particle's origin (x, y Å, as rlnOriginXAngst/YAngst): its given origin plus the
        offset the translation search found.
    """

    maps: NDArray[np.float32]
    angles_deg: NDArray[np.float64]
    classes: NDArray[np.int64]
    class_sizes: NDArray[np.int64]
    resolution_a: NDArray[np.float64]
    search_limit_a: float
    origins_a: NDArray[np.float64]
    pixel_size_a: float
    symmetry: str

    @property
    def best_class(self) -> int:
        """The largest class (the one ``initial_model.mrc`` holds)."""
        return int(np.argmax(self.class_sizes))

    @property
    def class_fractions(self) -> NDArray[np.float64]:
        return np.asarray(self.class_sizes / max(1, int(self.class_sizes.sum())), np.float64)


def centred_transforms(stack: ParticleStack3D) -> NDArray[np.complex64]:
    """The particles' transforms moved back by their origins (so they match unshifted slices)."""
    f = image_transforms(stack.images)
    if stack.origins_a is not None:
        f = f * np.conj(shift_phases(stack.box, stack.origins_a / stack.pixel_size_a))
    return np.asarray(f, dtype=np.complex64)


def _reconstruct(
    parts: Prepared, idx: NDArray[np.int64], rotations: NDArray[np.float64]
) -> NDArray[np.float32]:
    rec = Reconstructor(parts.box)
    rec.insert(parts.transforms[idx], rotations, parts.ctf[idx])
    return rec.reconstruct()


def initial_model(
    stack: ParticleStack3D,
    *,
    classes: int = 1,
    symmetry: str = "C1",
    iterations: int = 30,
    batch_size: int = 200,
    start_resolution_a: float = 30.0,
    final_resolution_a: float = 15.0,
    angle_step_deg: float = 15.0,
    final_angle_step_deg: float = 10.0,
    mask_diameter_a: float | None = None,
    step: float = 0.5,
    offset_range_px: float = 4.0,
    rng: np.random.Generator,
    progress: Progress | None = None,
) -> InitialModelResult:
    """De novo map(s) from particles without a reference.

    Parameters
    ----------
    stack : ParticleStack3D
        White particles with their CTF; origins, when given, are applied.
    classes : int
        K maps, the particles split between them by best score (hard assignment).
    symmetry : str
        ``C1``, ``Cn`` or ``Dn``: each model is averaged over the group after each step.
    iterations, batch_size : int
        SGD steps and particles per step.
    start_resolution_a, final_resolution_a : float
        The resolution limit (Å) of the search, annealed linearly from the first to the second.
    angle_step_deg, final_angle_step_deg : float
        Orientation grid of the minibatches, and of the final assignment of every particle.
    mask_diameter_a : float or None
        Soft spherical mask applied to the models (default 85 % of the box).
    step : float
        SGD step: the model moves this fraction of the way to each minibatch's reconstruction.
    offset_range_px : float
        Translation search: each particle's origin is refined up to this far (pixels) from its
        given origin, at most a quarter of the box (0: origins kept as given).
    rng : numpy.random.Generator

    Notes
    -----
    The first models are reconstructions of random minibatches at random orientations (blobs).
    Each step then aligns a minibatch to every current model at the annealed resolution limit
    (exhaustive search on the orientation grid, least-squares score with the CTF on the image
    side, in a box cropped to the limit), reconstructs each class's members at their best
    orientations and moves the model part of the way there. Last, every particle is assigned
    on the finer grid and each class reconstructed at full box from all its particles.
    The hand of a de novo map is undetermined (a mirrored map explains projections equally).
    """
    _check(
        stack, classes, iterations, batch_size, start_resolution_a, final_resolution_a, step,
        offset_range_px,
    )  # fmt: skip
    group = symmetry_rotations(symmetry)
    box, pixel = stack.box, stack.pixel_size_a
    nyquist_a = 2.0 * pixel
    final_a = max(final_resolution_a, nyquist_a * box / (box - 6))
    start_a = max(start_resolution_a, final_a)
    start_shell, final_shell = box * pixel / start_a, box * pixel / final_a
    small = working_box(box, final_shell)
    full = centred_transforms(stack)
    optics = {
        "voltage_kv": stack.voltage_kv,
        "cs_mm": stack.cs_mm,
        "amplitude_contrast": stack.amplitude_contrast,
    }
    parts = prepare(full, stack.defocus, pixel, small, **optics)
    radius = 0.5 * (mask_diameter_a / pixel if mask_diameter_a else 0.85 * box)
    mask_small = soft_mask(small, radius * small / box, edge_px=max(1.5, 3.0 * small / box))
    n = stack.count
    batch = min(batch_size, n)
    models = []
    for _ in range(classes):
        idx = rng.choice(n, size=batch, replace=False)
        rec = _reconstruct(parts, idx, random_rotations(batch, rng))
        models.append(symmetrise(lowpass(rec, start_shell) * mask_small, group))
    grid = orientation_grid(angle_step_deg)
    local = fine_offsets = None
    if offset_range_px > 0:
        reach = min(offset_range_px, box / 4) * pixel
        local = Translations(offset_grid(parts.pixel_size_a, 1), reach, joint=True)
        fine_offsets = Translations(offset_grid(0.5 * pixel, 1), reach)
    origins = np.zeros((n, 2))
    total = iterations + 1
    for it in range(iterations):
        frac = it / max(1, iterations - 1)
        limit = start_shell + (final_shell - start_shell) * frac
        idx = rng.choice(n, size=batch, replace=False)
        models, origins = sgd_step(
            parts, models, grid, limit, batch=idx, step=step, mask=mask_small, group=group,
            origins_a=origins, translations=local,
        )  # fmt: skip
        if progress is not None:
            progress(it + 1, total)
    fine = orientation_grid(final_angle_step_deg)
    if local is not None:
        _, _, origins = align(parts, models, grid, final_shell, origins, local)
    rot, cls, origins = align(parts, models, fine, final_shell, origins, fine_offsets)
    ctf_full = particle_ctf(box, pixel, stack.defocus, **optics)
    full = np.asarray(full * np.conj(shift_phases(box, origins / pixel)), dtype=np.complex64)
    halves = stack.subset if stack.subset is not None else 1 + (rng.permutation(n) % 2)
    mask_full = soft_mask(box, radius)
    maps = np.zeros((classes, box, box, box), dtype=np.float32)
    res = np.full(classes, float(box * pixel))
    for k in range(classes):
        members = np.flatnonzero(cls == k)
        if len(members) == 0:
            maps[k] = resize_volume(models[k], box)
            continue
        res[k], merged = half_set_resolution_a(
            full[members], fine[rot[members]], ctf_full[members], halves[members], pixel
        )
        shell = min(final_shell, box * pixel / res[k])
        maps[k] = symmetrise(lowpass(merged, shell) * mask_full, group)
    if progress is not None:
        progress(total, total)
    given = stack.origins_a if stack.origins_a is not None else np.zeros((n, 2))
    return InitialModelResult(
        maps=maps,
        angles_deg=matrix_to_euler(fine[rot]),
        classes=cls,
        class_sizes=np.bincount(cls, minlength=classes).astype(np.int64),
        resolution_a=res,
        search_limit_a=float(final_a),
        origins_a=np.asarray(given + origins, dtype=np.float64),
        pixel_size_a=pixel,
        symmetry=symmetry.strip().upper(),
    )


def _check(
    stack: ParticleStack3D,
    classes: int,
    iterations: int,
    batch_size: int,
    start_a: float,
    final_a: float,
    step: float,
    offset_range_px: float,
) -> None:
    if classes < 1:
        raise ValueError(f"classes must be at least 1, got {classes}")
    if iterations < 1:
        raise ValueError(f"iterations must be at least 1, got {iterations}")
    if batch_size < 20:
        raise ValueError(f"batch_size must be at least 20, got {batch_size}")
    if stack.count < max(20, 10 * classes):
        raise ValueError(
            f"{stack.count} particles: need at least {max(20, 10 * classes)} "
            f"for {classes} class(es)"
        )
    if stack.box < 16:
        raise ValueError(f"box must be at least 16 pixels, got {stack.box}")
    if not final_a > 0 or not start_a > 0:
        raise ValueError("start_resolution_a and final_resolution_a must be positive")
    if not 0 < step <= 1:
        raise ValueError(f"step must lie in (0, 1], got {step}")
    if not offset_range_px >= 0:
        raise ValueError(f"offset_range_px must be at least 0, got {offset_range_px}")
