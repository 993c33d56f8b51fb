"""Reference-free 2D classification by expectation-maximisation over mini-batches.

Each iteration scores a batch of particles against every in-plane pose of every class
(:func:`coarse_search`, one matrix product at a coarse pixel size, both sides whitened by the
particles' power spectrum so that each frequency counts by its signal-to-noise), turns the
best score per class into class probabilities (a Gaussian likelihood with a fitted scale and
equal class priors, tempered early on so that similar classes share particles before each
settles on a view), and averages the batch into new classes with a Wiener filter from the
FRC of two half-sets, each aligned only to its own averages. Early iterations use random
batches of ``batch_per_class`` x K particles, as cryoSPARC's online EM does; the last
``full_iterations`` use every particle and refine each pose locally at the working pixel
size. A class that falls under half its share is given half of the largest class, split
along the first principal component of that class's aligned particles, after each mini-batch
iteration (as RELION and cryoSPARC re-seed empty classes). After the last iteration a class
that no particle chose is given part of the largest class the same way, and each class's image
is the average of exactly the particles assigned to it (never the soft share of others).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray
from scipy import fft as sfft

from cryolive.engines.class2d._align import (
    Coarse,
    coarse_search,
    disc_pixels,
    local_refine,
    shift_grid,
)
from cryolive.engines.class2d._average import Averages, average_classes, centre_of_mass
from cryolive.engines.class2d._frc import ring_index
from cryolive.engines.class2d._geometry import (
    fourier_crop,
    fourier_shift,
    soft_disc,
    transform_stack,
)
from cryolive.engines.class2d._prepare import prepare, working_box
from cryolive.engines.class2d._score import score_classes, selection_report
from cryolive.engines.class2d._types import Class2DResult, Class2DSettings, ParticleSet

INITIAL_LOWPASS_A = 30.0
COARSE_DIAMETER_PX = 24  # the particle's diameter in coarse pixels
START_GAP = 1.0  # log-likelihood gap, best to second class, at the first iteration
END_GAP = 8.0
MIN_PROBABILITY = 0.05
SPLIT_LOWPASS_A = 40.0  # resolution of the images a class is split by
OVERSIZED_SHARE = 1.6  # a class over 1.6x its share is split first
SEEDED_HEAD_START = 0.5  # how far along the schedules a run from given classes starts
RESEED_SHARE = 0.5  # a class under half its share of particles is given half of the largest
# Outlier particles (see _outliers): a fit under this fraction of its class's median fit ...
NOISE_FIT = 0.35
# ... or whitened energy this many robust standard deviations under the median.
ENERGY_OUTLIER_SD = 3.0


def classify_2d(
    particles: ParticleSet,
    settings: Class2DSettings,
    *,
    initial_averages: NDArray[np.float32] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Class2DResult:
    """Classify ``particles`` into ``settings.n_classes`` classes.

    Parameters
    ----------
    particles
        Extracted particles (protein bright) with their CTF.
    settings
        Classes, mask diameter, iterations, sampling.
    initial_averages : (k, b, b), optional
        Classes to start from (a previous batch's averages at any box of the same field of
        view); random particles low-passed to 30 Å otherwise.
    progress
        Called with (iterations done, iterations) after each iteration.
    """
    k = settings.n_classes
    n = len(particles)
    if n < 2 * k:
        raise ValueError(f"particles: need at least 2 per class ({2 * k}), got {n}")
    if not np.isfinite(particles.images).all():
        raise ValueError("particles: images hold NaN or infinite values")
    rng = np.random.default_rng(settings.seed)
    box = working_box(particles.box_px, particles.pixel_size_a, settings.working_resolution_a)
    prep = prepare(particles, box)
    pixel = prep.pixel_size_a
    radius = min(0.5 * settings.particle_diameter_a / pixel, 0.5 * box - 2)
    mask = soft_disc(box, radius, edge_px=3.0)
    coarse_box = max(16, 2 * round(box * COARSE_DIAMETER_PX / (4 * radius)))
    coarse_box = min(box, coarse_box)
    coarse_scale = box / coarse_box  # working pixels per coarse pixel
    coarse_radius = radius / coarse_scale
    pixels = disc_pixels(coarse_box, coarse_radius)
    coarse = fourier_crop(prep.images, coarse_box)
    whiten = _whitening(coarse)
    features = np.ascontiguousarray(_filtered(coarse, whiten).reshape(n, -1)[:, pixels])
    del coarse
    angles = np.arange(0.0, 360.0, 360.0 / round(360.0 / settings.angle_step_deg))
    shifts = shift_grid(settings.max_shift_a / (pixel * coarse_scale))

    if initial_averages is not None:
        if initial_averages.ndim != 3 or initial_averages.shape[0] != k:
            raise ValueError(f"initial_averages: must be ({k}, b, b), got {initial_averages.shape}")
        references = fourier_crop(np.asarray(initial_averages, dtype=np.float32), box)
    else:
        seeds = rng.choice(n, size=k, replace=False)
        references = _lowpass(prep.images[seeds], pixel, INITIAL_LOWPASS_A)
    # Two half-sets (even and odd particles) each aligned only to its own averages, so that
    # the FRC between them measures signal, not noise aligned to the same noise.
    halves = np.stack([references, references])
    total = settings.iterations
    batch = min(n, settings.batch_per_class * k)
    head_start = SEEDED_HEAD_START if initial_averages is not None else 0.0
    log: list[str] = []
    result: Averages | None = None
    state: tuple[NDArray[np.int64], NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]
    fit: tuple[NDArray[np.float64], NDArray[np.float64]]
    for it in range(total):
        full = it >= total - settings.full_iterations
        subset = (
            np.arange(n) if full or batch >= n else np.sort(rng.choice(n, batch, replace=False))
        )
        # Seeded classes are already formed: start half-way along the low-pass and annealing.
        advance = head_start + (1.0 - head_start) * it / max(1, total - 1)
        limit_a = max(
            2.0 * pixel * coarse_scale,
            INITIAL_LOWPASS_A - (INITIAL_LOWPASS_A - 2.0 * pixel * coarse_scale) * advance * 1.5,
        )
        found = _search_halves(
            features,
            subset,
            _lowpass(halves * mask, pixel, limit_a),
            coarse_box,
            whiten,
            angles=angles,
            shifts=shifts,
            pixels=pixels,
        )
        score = np.maximum(found.score.astype(np.float64), 0.0)
        energy = np.einsum("ij,ij->i", features[subset], features[subset])
        sigma2 = max(float(np.mean(energy - score.max(axis=1) ** 2)) / len(pixels), 1e-12)
        loglik = score**2 / (2.0 * sigma2)
        temperature = _temperature(
            loglik,
            head_start + (1.0 - head_start) * it / max(1, total - settings.full_iterations),
        )
        loglik = loglik / temperature  # classes have equal priors: none grows by its size
        loglik -= loglik.max(axis=1, keepdims=True)
        prob = np.exp(loglik)
        prob /= prob.sum(axis=1, keepdims=True)
        angle = found.angle_deg
        shift = found.shift_px * coarse_scale
        best = prob.argmax(axis=1)
        if full:
            rows = np.arange(len(subset))
            fine_angle, fine_shift, _ = local_refine(
                prep.images[subset],
                halves,
                best,
                angle[rows, best],
                shift[rows, best],
                step_deg=float(angles[1] - angles[0]) if len(angles) > 1 else 360.0,
                search_px=coarse_scale,
                half=subset % 2,
                mask=mask,
            )
            angle = angle.copy()
            shift = shift.copy()
            angle[rows, best] = fine_angle
            shift[rows, best] = fine_shift
        third = np.sort(prob, axis=1)[:, -min(3, k)][:, None]
        keep = (prob >= MIN_PROBABILITY) & (prob >= third)  # at most the three likeliest
        i_idx, c_idx = np.nonzero(keep)
        weight = prob[i_idx, c_idx]
        weight = weight / np.bincount(i_idx, weights=weight, minlength=len(subset))[i_idx]
        result = average_classes(
            prep.images,
            prep.ctf2_rings,
            n_classes=k,
            particle=subset[i_idx],
            klass=c_idx,
            weight=weight,
            angle_deg=angle[i_idx, c_idx],
            shift_px=shift[i_idx, c_idx],
            pixel_size_a=pixel,
            angle_bins=4 * len(angles) if full else len(angles),
            order=3 if full else 1,
        )
        halves = result.halves
        last = it == total - 1
        if not last:
            halves = np.stack([_recentre(h, mask) for h in halves])
            if it < total - settings.full_iterations - 1:
                halves = _reseed(
                    halves,
                    result,
                    energy - score.max(axis=1) ** 2,
                    prep.images,
                    subset,
                    best,
                    angle,
                    shift,
                    mask,
                    pixel,
                    limit_a,
                    coarse_box,
                )
        state = (best, prob[np.arange(len(subset)), best], angle, shift)
        if last:
            fit = (score, energy)
        log.append(
            f"iteration {it + 1}/{total}: {len(subset)} particles, sigma² {sigma2:.3g}, "
            f"temperature {temperature:.2f}, median top probability "
            f"{float(np.median(prob.max(axis=1))):.2f}, classes holding ≥1% "
            f"{int((result.weight >= 0.01 * result.weight.sum()).sum())}/{k}"
        )
        if progress is not None:
            progress(it + 1, total)
    assert result is not None
    best, probability, angle, shift = state
    rows = np.arange(n)
    psi = np.asarray(angle[rows, best], dtype=np.float64)
    offset = np.asarray(shift[rows, best], dtype=np.float64)
    best, moved = _fill_empty(best, k, prep.images, psi, offset, mask, pixel, coarse_box)
    if moved:
        log.append(f"after the last iteration: {moved} particles moved into empty classes")

    # Each class drawn from exactly its own particles (weight 1 each), never the soft share
    # of particles that chose another class; a floor on the filter keeps a class whose
    # half-sets disagree from being drawn as a flat image.
    def draw(
        assignment: NDArray[np.int64],
    ) -> tuple[NDArray[np.float32], NDArray[np.int64], NDArray[np.float64]]:
        drawn = average_classes(
            prep.images,
            prep.ctf2_rings,
            n_classes=k,
            particle=rows,
            klass=assignment,
            weight=np.ones(n),
            angle_deg=psi,
            shift_px=offset,
            pixel_size_a=pixel,
            angle_bins=4 * len(angles),
            order=3,
            lowpass_floor_a=INITIAL_LOWPASS_A,
        )
        images = (drawn.averages * mask).astype(np.float32)
        counts = np.bincount(assignment, minlength=k).astype(np.int64)
        return images, counts, np.where(counts >= 2, drawn.resolution_a, np.inf)

    def judge(
        images: NDArray[np.float32], counts: NDArray[np.int64], res: NDArray[np.float64]
    ) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
        return score_classes(
            images,
            pixel_size_a=pixel,
            particle_diameter_a=settings.particle_diameter_a,
            resolution_a=res,
            particles=counts,
            min_particles=settings.min_class_particles,
        )

    averages, counts, resolution = draw(best)
    score_, selected = judge(averages, counts, resolution)
    outlier = _outliers(fit[0], fit[1], state[0])
    misplaced = outlier & selected[best]
    if misplaced.any() and not selected.all():
        # Poor fits in a selected class go to the unselected class they fit best.
        rejected = np.flatnonzero(~selected)
        best = best.copy()
        best[misplaced] = rejected[np.argmax(fit[0][np.ix_(misplaced, rejected)], axis=1)]
        averages, counts, resolution = draw(best)
        score_, selected = judge(averages, counts, resolution)
        log.append(
            f"{int(misplaced.sum())} particles that fit their class poorly (noise-like or "
            "with a power spectrum unlike the particles') moved to unselected classes"
        )
    elif misplaced.any():
        log.append(f"{int(misplaced.sum())} poorly fitting particles kept: no unselected class")
    selection = selection_report(
        score_, selected, counts, min_particles=settings.min_class_particles
    )
    log.append(selection)
    return Class2DResult(
        averages=averages,
        pixel_size_a=pixel,
        assignment=best.astype(np.int64),
        psi_deg=psi % 360.0,
        shift_a=offset * pixel,
        probability=np.asarray(probability, dtype=np.float64),
        particles_per_class=counts,
        resolution_a=resolution.astype(np.float64),
        score=score_,
        selected=selected,
        engine="cryolive",
        iterations=total,
        log=log,
        selection=selection,
    )


def _temperature(loglik: NDArray[np.float64], progress: float) -> float:
    """Temperature that makes the median best-to-second gap START_GAP → END_GAP (then 1).

    Deterministic annealing: early iterations share particles among similar classes, so
    that no class captures a view before the others have formed.
    """
    if progress >= 1.0 or loglik.shape[1] < 2:
        return 1.0
    top2 = np.sort(loglik, axis=1)[:, -2:]
    gap = float(np.median(top2[:, 1] - top2[:, 0]))
    target = START_GAP * (END_GAP / START_GAP) ** progress
    return float(max(1.0, gap / target))


def _whitening(images: NDArray[np.float32]) -> NDArray[np.float32]:
    """1/sqrt of the particles' mean power per ring, on the rfft2 grid (b, b/2 + 1).

    Particles are mostly noise, so their power spectrum is the noise's; weighting both sides
    of a correlation by it makes the correlation the cross term of the Gaussian likelihood
    with coloured noise (each frequency counted by its signal-to-noise), instead of one that
    the low frequencies, where every view is a similar blob, dominate.
    """
    b = images.shape[-1]
    rings = np.minimum(ring_index(b), b // 2)
    power = (np.abs(sfft.rfft2(images, workers=-1)) ** 2).mean(axis=0)
    summed = np.bincount(rings.ravel(), weights=power.ravel(), minlength=b // 2 + 1)
    per_ring = summed / np.maximum(np.bincount(rings.ravel(), minlength=b // 2 + 1), 1)
    weight = 1.0 / np.sqrt(np.maximum(per_ring, 1e-12 * per_ring.max()))
    weight[0] = 0.0  # the mean carries no shape
    return np.asarray(weight[rings], dtype=np.float32)


def _filtered(images: NDArray[np.float32], weight: NDArray[np.float32]) -> NDArray[np.float32]:
    """``images`` (n, b, b) multiplied in Fourier space by ``weight`` (b, b/2 + 1)."""
    b = images.shape[-1]
    out = sfft.irfft2(sfft.rfft2(images, workers=-1) * weight, s=(b, b), workers=-1)
    return np.asarray(out, dtype=np.float32)


def _search_halves(
    features: NDArray[np.float32],
    subset: NDArray[np.int64],
    halves: NDArray[np.float32],
    coarse_box: int,
    whiten: NDArray[np.float32],
    *,
    angles: NDArray[np.float64],
    shifts: NDArray[np.int64],
    pixels: NDArray[np.int64],
) -> Coarse:
    """Coarse search of each half-set of ``subset`` against its own averages (2, k, b, b)."""
    parts = []
    for h in (0, 1):
        chosen = subset % 2 == h
        parts.append(
            (
                chosen,
                coarse_search(
                    features[subset[chosen]],
                    _filtered(fourier_crop(halves[h], coarse_box), whiten),
                    angles_deg=angles,
                    shifts_px=shifts,
                    pixels=pixels,
                ),
            )
        )
    k = halves.shape[1]
    score = np.empty((len(subset), k), dtype=np.float32)
    angle = np.empty((len(subset), k))
    shift = np.empty((len(subset), k, 2))
    for chosen, found in parts:
        score[chosen] = found.score
        angle[chosen] = found.angle_deg
        shift[chosen] = found.shift_px
    return Coarse(score=score, angle_deg=angle, shift_px=shift)


def _lowpass(
    images: NDArray[np.float32], pixel_size_a: float, resolution_a: float
) -> NDArray[np.float32]:
    """Gaussian low-pass with its half-maximum at 1/``resolution_a``."""
    b = images.shape[-1]
    ky = np.fft.fftfreq(b, d=pixel_size_a)[:, None]
    kx = np.fft.rfftfreq(b, d=pixel_size_a)[None, :]
    k2 = ky * ky + kx * kx
    gauss = np.exp(-math.log(2.0) * k2 * resolution_a * resolution_a)
    out = np.fft.irfft2(np.fft.rfft2(images) * gauss, s=(b, b))
    return np.asarray(out, dtype=np.float32)


def _recentre(references: NDArray[np.float32], mask: NDArray[np.float32]) -> NDArray[np.float32]:
    """Move each average's centre of mass to the box centre."""
    offsets = np.array([centre_of_mass(ref, mask) for ref in references])
    return fourier_shift(references, -offsets)


def _reseed(
    halves: NDArray[np.float32],
    result: Averages,
    residual: NDArray[np.float64],
    images: NDArray[np.float32],
    subset: NDArray[np.int64],
    best: NDArray[np.int64],
    angle: NDArray[np.float64],
    shift: NDArray[np.float64],
    mask: NDArray[np.float32],
    pixel_size_a: float,
    limit_a: float,
    coarse_box: int,
) -> NDArray[np.float32]:
    """Give each class that has (nearly) emptied half of another class.

    The class split is the largest when one holds over OVERSIZED_SHARE of its share (most
    likely two views), otherwise the one whose particles leave the most energy unexplained
    (``residual``: views mixed with junk). Its particles, aligned, are split by the sign of
    their first principal component, which separates what differs most in it. The
    two halves' averages (low-passed to ``limit_a``, the resolution the other classes are
    compared at, so that the new classes compete on equal terms) replace the largest class
    and the empty one.
    ``halves`` are the half-set averages (2, k, b, b); both get the same seeds.
    """
    k = halves.shape[1]
    share = result.weight / max(float(result.weight.sum()), 1e-12)
    chosen_by = np.bincount(best, minlength=k)
    empty = [int(c) for c in np.flatnonzero((share < RESEED_SHARE / k) | (chosen_by == 0))]
    unexplained = np.bincount(best, weights=residual, minlength=k)
    if share.max() > OVERSIZED_SHARE / k:
        unexplained = share.astype(np.float64)
    out = halves.copy()
    taken: set[int] = set(empty)
    while empty:
        order = [int(c) for c in np.argsort(unexplained)[::-1] if int(c) not in taken]
        if not order:
            break
        largest = order[0]
        taken.add(largest)
        rows = np.flatnonzero(best == largest)
        if len(rows) < 20:
            break
        aligned = transform_stack(
            images, subset[rows], angle[rows, largest], shift[rows, largest], inverse=True
        )
        # coarse shapes only: the split follows the views, not the defoci (CTF·X differs most
        # between particles at different defoci beyond the CTF's first zero)
        small = fourier_crop(_lowpass(aligned * mask, pixel_size_a, SPLIT_LOWPASS_A), coarse_box)
        flat = small.reshape(len(rows), -1).astype(np.float64)
        flat -= flat.mean(axis=0)
        side = _first_component(flat) > 0
        if side.all() or not side.any():
            continue
        target = empty.pop(0)
        for c, part in ((largest, side), (target, ~side)):
            seed = _lowpass(aligned[part].mean(axis=0)[None], pixel_size_a, limit_a)[0]
            out[0, c] = seed
            out[1, c] = seed
    return out


def _fill_empty(
    best: NDArray[np.int64],
    k: int,
    images: NDArray[np.float32],
    psi_deg: NDArray[np.float64],
    shift_px: NDArray[np.float64],
    mask: NDArray[np.float32],
    pixel_size_a: float,
    coarse_box: int,
) -> tuple[NDArray[np.int64], int]:
    """Give every class that no particle chose part of the largest class.

    The largest class's particles, aligned by their poses (which stay valid: the new class's
    average is made of them in those poses), are split by the sign of their first principal
    component at 40 Å (at its median when the sign leaves one side empty); one side moves to
    the empty class. Returns the new assignment (n,) and how many particles moved.
    """
    best = best.copy()
    moved = 0
    while True:
        counts = np.bincount(best, minlength=k)
        empty = np.flatnonzero(counts == 0)
        largest = int(np.argmax(counts))
        if len(empty) == 0 or counts[largest] < 2:
            return best, moved
        rows = np.flatnonzero(best == largest)
        aligned = transform_stack(images, rows, psi_deg[rows], shift_px[rows], inverse=True)
        small = fourier_crop(_lowpass(aligned * mask, pixel_size_a, SPLIT_LOWPASS_A), coarse_box)
        flat = small.reshape(len(rows), -1).astype(np.float64)
        flat -= flat.mean(axis=0)
        component = _first_component(flat)
        side = component > 0
        if side.all() or not side.any():
            side = component > np.median(component)
        if side.all() or not side.any():
            side = np.arange(len(rows)) % 2 == 0
        best[rows[~side]] = int(empty[0])
        moved += int((~side).sum())


def _first_component(centred: NDArray[np.float64], iterations: int = 30) -> NDArray[np.float64]:
    """Scores of the rows of ``centred`` on its first principal axis (power iteration)."""
    rng = np.random.default_rng(0)
    axis = np.asarray(rng.normal(size=centred.shape[1]), dtype=np.float64)
    for _ in range(iterations):
        axis = centred.T @ (centred @ axis)
        axis = axis / max(float(np.linalg.norm(axis)), 1e-300)
    return np.asarray(centred @ axis, dtype=np.float64)


def _outliers(
    score: NDArray[np.float64], energy: NDArray[np.float64], best: NDArray[np.int64]
) -> NDArray[np.bool_]:
    """Particles that are unlike the others: junk that a class of particles took in.

    ``score`` (n, k) is each particle's best correlation with each (unit-norm) class in the
    last search, ``energy`` (n,) its squared norm, both whitened by the particles' mean
    power spectrum; ``best`` (n,) the class each chose. Two tests, either enough:

    - its fit (correlation over its own norm, at its class) is under NOISE_FIT of the median
      fit of the particles that chose the same class: nothing of the class is in the box
      (an empty box, a carbon edge matched to noise);
    - its whitened energy is ENERGY_OUTLIER_SD robust standard deviations under the median:
      boxes are normalised to unit variance, so one whose variance is held by large, smooth
      density (ice, carbon edges, aggregates) keeps little power at the frequencies where the
      particles' signal lies.
    """
    n, k = score.shape
    fit = score[np.arange(n), best] / np.sqrt(np.maximum(energy, 1e-30))
    typical = np.zeros(k)
    for c in range(k):
        chosen = fit[best == c]
        if len(chosen):
            typical[c] = float(np.median(chosen))
    poor = fit < NOISE_FIT * typical[best]
    centre = float(np.median(energy))
    spread = 1.4826 * float(np.median(np.abs(energy - centre)))
    faint = energy < centre - ENERGY_OUTLIER_SD * spread
    return np.asarray(poor | faint, dtype=np.bool_)
