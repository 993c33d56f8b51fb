"""3D classification: K references from one, hard assignment of class and orientation by the
least-squares score at an adaptive resolution limit, per-class reconstruction and low-pass
(after RELION's 3D classification, Scheres 2012, doi:10.1016/j.jsb.2012.09.006)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from cryolive.engines._search3d import (
    Prepared,
    Translations,
    align,
    centred,
    lowpass,
    offset_grid,
    prepare,
    refine_origins,
    resize_volume,
    search,
    sgd_step,
    soft_mask,
    symmetrise,
    symmetry_rotations,
    working_box,
)
from cryolive.engines.class3d._metrics import angular_efficiency, half_set_resolution_a
from cryolive.engines.initial_model import centred_transforms
from cryolive.engines.recon3d import (
    ParticleStack3D,
    Reconstructor,
    fsc,
    matrix_to_euler,
    orientation_grid,
    particle_ctf,
    shift_phases,
)

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Class3DResult:
    """Classes and per-particle assignments of :func:`classify3d`.

    Attributes
    ----------
    maps : (K, b, b, b) float32
        Each class's reconstruction from all its particles, low-passed to its resolution.
    angles_deg : (n, 3) float64
        Each particle's rot, tilt, psi (RELION) in its class.
    classes : (n,) int64
        Each particle's class, 0-based.
    class_sizes : (K,) int64
    resolution_a : (K,) float64
        FSC 0.143 between the class's two half-set reconstructions (Å; the box size when empty).
    angular_efficiency : (K,) float64
        Coverage of viewing directions, 0 … 1 (see :func:`angular_efficiency`).
    origins_a : (n, 2) float64
        Each particle's origin (x, y Å, as rlnOriginXAngst/YAngst): its given origin plus the
        offset the translation search found.
    """

    maps: NDArray[np.float32]
    angles_deg: NDArray[np.float64]
    classes: NDArray[np.int64]
    class_sizes: NDArray[np.int64]
    resolution_a: NDArray[np.float64]
    angular_efficiency: NDArray[np.float64]
    origins_a: NDArray[np.float64]
    pixel_size_a: float
    changes: tuple[float, ...]  # fraction of particles changing class, per iteration

    @property
    def class_fractions(self) -> NDArray[np.float64]:
        return np.asarray(self.class_sizes / max(1, int(self.class_sizes.sum())), np.float64)

    @property
    def score(self) -> NDArray[np.float64]:
        """Ranking metric per class: angular efficiency / resolution (Å⁻¹); 0 for classes
        holding under 5 % of the particles. Higher is better."""
        big = self.class_fractions >= 0.05
        return np.where(big, self.angular_efficiency / self.resolution_a, 0.0)

    @property
    def best_class(self) -> int:
        return int(np.argmax(self.score))


def classify3d(
    stack: ParticleStack3D,
    reference: NDArray[np.floating],
    *,
    classes: int = 4,
    iterations: int = 4,
    initial_lowpass_a: float = 30.0,
    max_resolution_a: float = 12.0,
    angle_step_deg: float = 10.0,
    mask_diameter_a: float | None = None,
    symmetry: str = "C1",
    sgd_steps: int = 40,
    batch_size: int = 100,
    step: float = 0.5,
    offset_range_px: float = 4.0,
    rng: np.random.Generator,
    progress: Progress | None = None,
) -> Class3DResult:
    """Split particles into ``classes`` 3D classes, starting from one ``reference`` map.

    Parameters
    ----------
    stack : ParticleStack3D
        White particles with their CTF; origins, when given, are where the translation
        search starts.
    reference : (b, b, b) float
        A map of the particles' box and pixel (e.g. the initial model), in register with them.
    classes, iterations : int
    initial_lowpass_a : float
        The reference is low-passed to this (Å) and the first iteration searched to it.
    max_resolution_a : float
        The search never goes past this (Å); below it, each iteration's limit is one shell past
        the best class's FSC 0.5 between random halves.
    angle_step_deg : float
        Orientation grid (global search every iteration).
    mask_diameter_a : float or None
        Soft spherical mask of the classes (default 85 % of the box).
    symmetry : str
        ``C1``, ``Cn`` or ``Dn``.
    sgd_steps, batch_size, step : int, int, float
        Stochastic steps before the iterations: minibatches of ``batch_size``, hard assignment,
        each class moved ``step`` of the way to its minibatch reconstruction.
    offset_range_px : float
        Translation search: each particle's origin is refined up to this far (pixels; at most
        a quarter of the box) from its given origin (0: origins kept as given), jointly with
        the orientations on offsets one working-box pixel apart (±2 against the reference,
        then ±1 about the current origin), and on a ±½-pixel grid in the last iteration.
    rng : numpy.random.Generator

    Notes
    -----
    The K starting references are reconstructions of random halves of the particles at their
    orientations against the low-passed reference, so they differ by noise only; the classes
    grow apart as particles choose the reference that explains them best (hard assignment of
    class and orientation by the least-squares score, the CTF on the image side). A class left
    with under 1 % of the particles is reseeded from a random half of the largest.
    """
    ref = np.asarray(reference, dtype=np.float32)
    _check(stack, ref, classes, iterations, initial_lowpass_a, max_resolution_a, sgd_steps)
    if not offset_range_px >= 0:
        raise ValueError(f"offset_range_px must be at least 0, got {offset_range_px}")
    group = symmetry_rotations(symmetry)
    box, pixel = stack.box, stack.pixel_size_a
    max_a = max(max_resolution_a, 2.0 * pixel * box / (box - 6))
    start_shell = box * pixel / max(initial_lowpass_a, max_a)
    max_shell = box * pixel / max_a
    small = working_box(box, max_shell)
    optics = {
        "voltage_kv": stack.voltage_kv,
        "cs_mm": stack.cs_mm,
        "amplitude_contrast": stack.amplitude_contrast,
    }
    full = centred_transforms(stack)
    parts = prepare(full, stack.defocus, pixel, small, **optics)
    radius = 0.5 * (mask_diameter_a / pixel if mask_diameter_a else 0.85 * box)
    mask = soft_mask(small, radius * small / box, edge_px=max(1.5, 3.0 * small / box))
    grid = orientation_grid(angle_step_deg)
    n = stack.count
    total = sgd_steps + iterations + 1
    reach = min(offset_range_px, box / 4) * pixel
    wide = local = fine_offsets = None
    if offset_range_px > 0:
        wide = Translations(offset_grid(parts.pixel_size_a, 2), reach, joint=True)
        local = Translations(offset_grid(parts.pixel_size_a, 1), reach, joint=True)
        fine_offsets = Translations(offset_grid(0.5 * pixel, 1), reach)
    offsets = local.offsets_a if local is not None else np.zeros((1, 2))
    origins = np.zeros((n, 2))
    start = resize_volume(lowpass(ref, start_shell), small) * mask
    rot, _, origins = align(parts, [start], grid, start_shell, origins, wide)
    models = []
    for _ in range(classes):
        half = rng.permutation(n)[: n // 2]
        models.append(_model(parts, half, grid[rot[half]], start_shell, mask, group, origins))
    batch = min(batch_size, n)
    for it in range(sgd_steps):
        limit = start_shell + (max_shell - start_shell) * it / max(1, sgd_steps - 1)
        idx = rng.choice(n, size=batch, replace=False)
        models, origins = sgd_step(
            parts, models, grid, limit, batch=idx, step=step, mask=mask, group=group,
            origins_a=origins, translations=local,
        )  # fmt: skip
        if progress is not None:
            progress(it + 1, total)
    cls = np.full(n, -1, dtype=np.int64)
    limit = start_shell
    changes = []
    for it in range(iterations):
        scored = [
            search(parts, m, grid, limit, origins_a=origins, offsets_a=offsets, max_origin_a=reach)
            for m in models
        ]
        s_all = np.stack([t[0] for t in scored])  # (K, n)
        r_all = np.stack([t[1] for t in scored])
        sigma2 = float(np.median(np.stack([t[2] for t in scored]).min(axis=0)))
        prob = _probabilities(s_all, sigma2)
        new = np.argmax(prob, axis=0).astype(np.int64)
        rot = r_all[new, np.arange(n)]
        origins = np.stack([t[3] for t in scored])[new, np.arange(n)]
        changes.append(float(np.mean(new != cls)))
        cls = new
        if it == iterations - 1 and fine_offsets is not None:
            for k in range(classes):
                sel = np.flatnonzero(cls == k)
                sub = Prepared(parts.transforms[sel], parts.ctf[sel], parts.box, parts.pixel_size_a)
                origins[sel] = _origins(
                    sub, models[k], grid[rot[sel]], limit, origins[sel], fine_offsets
                )
        shells = []
        for k in range(classes):
            weights = prob[k]
            if weights.sum() < max(5, n // 100):
                donor = np.flatnonzero(cls == np.argmax(np.bincount(cls, minlength=classes)))
                weights = np.zeros(n)
                weights[rng.permutation(donor)[: len(donor) // 2]] = 1.0
            models[k], shell = _class_model(
                parts, weights, grid[r_all[k]], limit, mask, group, origins
            )
            shells.append(shell)
        limit = float(np.clip(max(shells) + 1.0, start_shell, max_shell))
        if progress is not None:
            progress(sgd_steps + it + 1, total)
    ctf_full = particle_ctf(box, pixel, stack.defocus, **optics)
    full = np.asarray(full * np.conj(shift_phases(box, origins / pixel)), dtype=np.complex64)
    halves = stack.subset if stack.subset is not None else 1 + (rng.permutation(n) % 2)
    mask_full = soft_mask(box, radius)
    maps = np.zeros((classes, box, box, box), dtype=np.float32)
    res = np.full(classes, float(box * pixel))
    eff = np.zeros(classes)
    rotations = grid[rot]
    for k in range(classes):
        members = np.flatnonzero(cls == k)
        if len(members) == 0:
            continue
        res[k], merged = half_set_resolution_a(
            full[members], rotations[members], ctf_full[members], halves[members], pixel
        )
        maps[k] = symmetrise(lowpass(merged, box * pixel / res[k]) * mask_full, group)
        eff[k] = angular_efficiency(rotations[members])
    if progress is not None:
        progress(total, total)
    return Class3DResult(
        maps=maps,
        angles_deg=matrix_to_euler(rotations),
        classes=cls,
        class_sizes=np.bincount(cls, minlength=classes).astype(np.int64),
        resolution_a=res,
        angular_efficiency=eff,
        origins_a=np.asarray(
            (stack.origins_a if stack.origins_a is not None else 0.0) + origins, dtype=np.float64
        ),
        pixel_size_a=pixel,
        changes=tuple(changes),
    )


def _origins(
    parts: Prepared,
    model: NDArray[np.float32],
    rotations: NDArray[np.float64],
    limit: float,
    origins_a: NDArray[np.float64],
    search: Translations | None,
) -> NDArray[np.float64]:
    """The particles' origins refined at their orientations against ``model`` (kept if None)."""
    if search is None:
        return origins_a
    return refine_origins(
        parts, model, rotations, limit, origins_a=origins_a, offsets_a=search.offsets_a,
        max_origin_a=search.max_origin_a,
    )  # fmt: skip


def _model(
    parts: Prepared,
    idx: NDArray[np.int64],
    rotations: NDArray[np.float64],
    limit: float,
    mask: NDArray[np.float32],
    group: NDArray[np.float64],
    origins_a: NDArray[np.float64],
) -> NDArray[np.float32]:
    rec = Reconstructor(parts.box)
    rec.insert(centred(parts, idx, origins_a), rotations, parts.ctf[idx])
    return symmetrise(lowpass(rec.reconstruct(), limit) * mask, group)


def _probabilities(scores: NDArray[np.float64], sigma2: float) -> NDArray[np.float64]:
    """Class probabilities (K, n) from least-squares scores: log-likelihood = 2·score/σ²."""
    log_l = 2.0 * (scores - scores.max(axis=0)) / max(sigma2, 1e-30)
    p = np.exp(log_l)
    return np.asarray(p / p.sum(axis=0), dtype=np.float64)


def _class_model(
    parts: Prepared,
    weights: NDArray[np.float64],
    rotations: NDArray[np.float64],
    limit: float,
    mask: NDArray[np.float32],
    group: NDArray[np.float64],
    origins_a: NDArray[np.float64],
) -> tuple[NDArray[np.float32], float]:
    """The class's map from every particle weighted by its probability (at its best orientation
    in the class), low-passed one shell past its FSC 0.5 between halves, and that shell."""
    recs = [Reconstructor(parts.box), Reconstructor(parts.box)]
    idx = np.flatnonzero(weights > 1e-3)
    for h in (0, 1):
        sel = idx[h::2]
        if len(sel):
            recs[h].insert(
                centred(parts, sel, origins_a), rotations[sel], parts.ctf[sel], weights[sel]
            )
    curve = fsc(recs[0].reconstruct(), recs[1].reconstruct())
    below = np.flatnonzero(curve[1:] < 0.5)
    shell = float(below[0]) if below.size else float(len(curve) - 1)
    recs[0].merge(recs[1])
    model = lowpass(recs[0].reconstruct(), max(limit, shell + 1.0))
    return symmetrise(model * mask, group), shell


def _check(
    stack: ParticleStack3D,
    reference: NDArray[np.float32],
    classes: int,
    iterations: int,
    initial_lowpass_a: float,
    max_resolution_a: float,
    sgd_steps: int,
) -> None:
    if classes < 1:
        raise ValueError(f"classes must be at least 1, got {classes}")
    if iterations < 1:
        raise ValueError(f"iterations must be at least 1, got {iterations}")
    if sgd_steps < 0:
        raise ValueError(f"sgd_steps must be at least 0, got {sgd_steps}")
    if reference.ndim != 3 or reference.shape != (stack.box,) * 3:
        raise ValueError(
            f"reference: need a ({stack.box}, {stack.box}, {stack.box}) map like the particles' "
            f"box, got {reference.shape}"
        )
    if not np.isfinite(reference).all():
        raise ValueError("reference holds non-finite values")
    if stack.count < 20 * classes:
        raise ValueError(f"{stack.count} particles: need at least {20 * classes} for {classes}")
    if not initial_lowpass_a > 0 or not max_resolution_a > 0:
        raise ValueError("initial_lowpass_a and max_resolution_a must be positive")
