"""Gold-standard 3D refinement by projection matching (see docs/refine3d.md)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from cryolive.engines._search3d import symmetrise, symmetry_rotations
from cryolive.engines.recon3d import (
    ParticleStack3D,
    Reconstructor,
    fsc,
    image_transforms,
    matrix_to_euler,
    orientation_grid,
    particle_ctf,
    resolution_at,
    shell_index,
    shift_phases,
)
from cryolive.engines.refine3d._maps import lowpass, soft_sphere
from cryolive.engines.refine3d._search import (
    SliceCutter,
    global_search,
    local_search,
    perturbations,
    search_data,
)
from cryolive.engines.refine3d._torch import torch_device

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Iteration:
    """One iteration: its search, the resolution after it and how far the particles moved."""

    number: int
    mode: str  # "global" or "local"
    step_deg: float
    shift_step_px: float
    resolution_a: float
    angle_change_deg: float  # median over particles
    shift_change_px: float  # median over particles
    seconds: float


@dataclass(frozen=True)
class HalfMaps:
    """Two half maps, their full-set map and the FSC between the halves (shells 0 … b//2).

    From :func:`reconstruct_halves` and in :class:`Refine3DResult` the maps are unfiltered (no
    Wiener term from the FSC, no low-pass: RELION's ``_unfil`` maps), as post-processing wants
    them; only the references the refinement iterates with are filtered, internally.
    """

    half1: NDArray[np.float32]
    half2: NDArray[np.float32]
    full: NDArray[np.float32]
    fsc: NDArray[np.float64]


@dataclass(frozen=True)
class Refine3DResult:
    """What :func:`refine3d` found.

    ``half1``, ``half2`` and ``full_map`` are the final reconstructions, unfiltered, to Nyquist
    (RELION's ``run_half{1,2}_class001_unfil.mrc``): post-processing estimates its own FSC
    weighting and mask. ``angles_deg`` (n, 3) rot, tilt, psi; ``origins_a`` (n, 2) x, y in Å
    (the image is the projection moved by its origin); ``subset`` (n,) 1 or 2; ``fsc`` per
    shell 0 … b//2 between the unmasked half maps; ``resolution_a`` where it falls below
    0.143. With a point group other than C1 the angles are those of the asymmetric unit
    (:func:`fold_to_asymmetric_unit`) and the maps are symmetrised.
    """

    half1: NDArray[np.float32]
    half2: NDArray[np.float32]
    full_map: NDArray[np.float32]
    angles_deg: NDArray[np.float64]
    origins_a: NDArray[np.float64]
    subset: NDArray[np.int64]
    fsc: NDArray[np.float64]
    resolution_a: float
    pixel_size_a: float
    history: list[Iteration] = field(default_factory=list)
    converged: bool = False
    symmetry: str = "C1"

    @property
    def iterations(self) -> int:
        return len(self.history)


def _ssnr(curve: NDArray[np.float64]) -> NDArray[np.float64]:
    c = np.clip(curve, 0.0, 0.999)
    return c / (1.0 - c)


def _insert(
    rec: Reconstructor,
    transforms: NDArray[np.complex64],
    ctf: NDArray[np.float32],
    rotations: NDArray[np.float64],
    origins_px: NDArray[np.float64],
    group: NDArray[np.float64],
    weights: NDArray[np.float64] | None = None,
) -> None:
    """Insert each image at every orientation equivalent under ``group``: A·R for R in it (the
    image of a map with V(Rᵀx) = V(x) at A·R is its image at A), which symmetrises the map.
    ``weights`` (n,) scale whole images (a pose's posterior)."""
    centred = transforms * np.conj(shift_phases(rec.box, origins_px))
    for r in group:
        rec.insert(centred, rotations @ r, ctf, weights)


def _wrap(angle_deg: NDArray[np.float64]) -> NDArray[np.float64]:
    return np.asarray((angle_deg + 180.0) % 360.0 - 180.0, dtype=np.float64)


def _order(symmetry: str) -> tuple[str, int]:
    name = symmetry.strip().upper()
    symmetry_rotations(name)  # refuses what it does not know
    return name[0], int(name[1:])


def in_asymmetric_unit(angles_deg: NDArray[np.floating], symmetry: str) -> NDArray[np.bool_]:
    """Whether each (rot, tilt, psi) lies in RELION's asymmetric unit of ``symmetry``:
    -180/n ≤ rot < 180/n for Cn and Dn, and tilt ≤ 90 for Dn (any psi)."""
    kind, n = _order(symmetry)
    a = np.asarray(angles_deg, dtype=np.float64).reshape(-1, 3)
    rot = _wrap(a[:, 0])
    tol = 1e-6
    ok = (rot >= -180.0 / n - tol) & (rot < 180.0 / n - tol)
    if kind == "D":
        ok &= a[:, 1] <= 90.0 + tol
    return np.asarray(ok)


def fold_to_asymmetric_unit(rotations: NDArray[np.floating], symmetry: str) -> NDArray[np.float64]:
    """Each (n, 3, 3) RELION matrix A replaced by its equivalent A·R (R in the group) whose
    angles lie in the asymmetric unit (:func:`in_asymmetric_unit`), as RELION writes them."""
    group = symmetry_rotations(symmetry)
    a = np.asarray(rotations, dtype=np.float64).reshape(-1, 3, 3)
    if len(group) == 1:
        return a.copy()
    kind, n = _order(symmetry)
    cand = np.einsum("nij,gjk->ngik", a, group)  # (n, G, 3, 3)
    angles = matrix_to_euler(cand.reshape(-1, 3, 3)).reshape(len(a), len(group), 3)
    # inside the unit: the smallest |rot| (exactly one of rot + 360k/n lies in ±180/n) with, for
    # Dn, tilt ≤ 90 (the 2-fold on x takes tilt to 180 - tilt)
    cost = np.abs(_wrap(angles[..., 0])) / (180.0 / n)
    if kind == "D":
        cost = cost + 10.0 * (angles[..., 1] > 90.0 + 1e-6)
    pick = np.argmin(cost, axis=1)
    return np.asarray(cand[np.arange(len(a)), pick], dtype=np.float64)


def asymmetric_unit_grid(step_deg: float, symmetry: str) -> NDArray[np.float64]:
    """The rotations of ``orientation_grid(step_deg)`` whose angles lie in the asymmetric unit:
    about 1/|G| of them; their equivalents cover all orientations."""
    grid = orientation_grid(step_deg)
    if len(symmetry_rotations(symmetry)) == 1:
        return grid
    return grid[in_asymmetric_unit(matrix_to_euler(grid), symmetry)]


def reconstruct_halves(
    stack: ParticleStack3D,
    rotations: NDArray[np.floating],
    origins_px: NDArray[np.floating],
    subset: NDArray[np.integer],
    *,
    symmetry: str = "C1",
) -> HalfMaps:
    """Half maps and the full map (unfiltered, as :func:`refine3d` returns them) of
    ``stack``'s particles at the given (n, 3, 3) ``rotations`` and (n, 2) ``origins_px``,
    split by ``subset`` (1, 2), each symmetrised under ``symmetry`` (every image inserted at its
    equivalent orientations).

    With the true angles and origins this is the best reconstruction those images allow.
    """
    group = symmetry_rotations(symmetry)
    rots = np.asarray(rotations, dtype=np.float64)
    org = np.asarray(origins_px, dtype=np.float64)
    sub = np.asarray(subset)
    ft = image_transforms(stack.images)
    ctf = _ctf(stack)
    recs = []
    for half in (1, 2):
        rec = Reconstructor(stack.box)
        sel = sub == half
        _insert(rec, ft[sel], ctf[sel], rots[sel], org[sel], group)
        recs.append(rec)
    return _unfiltered(recs[0], recs[1])


def _ctf(stack: ParticleStack3D) -> NDArray[np.float32]:
    return particle_ctf(
        stack.box, stack.pixel_size_a, stack.defocus, voltage_kv=stack.voltage_kv,
        cs_mm=stack.cs_mm, amplitude_contrast=stack.amplitude_contrast,
    )  # fmt: skip


def _maps(rec1: Reconstructor, rec2: Reconstructor) -> HalfMaps:
    """The filtered half maps the refinement iterates with (each Wiener-filtered by
    SSNR = FSC/(1-FSC) of the unfiltered halves) and that FSC; no full map (an empty array)."""
    curve = fsc(rec1.reconstruct(), rec2.reconstruct())
    half1 = rec1.reconstruct(_ssnr(curve))
    half2 = rec2.reconstruct(_ssnr(curve))
    return HalfMaps(half1, half2, np.zeros((0, 0, 0), dtype=np.float32), curve)


def _unfiltered(rec1: Reconstructor, rec2: Reconstructor) -> HalfMaps:
    """The final maps for post-processing: both halves and their merge reconstructed without
    a Wiener term (only the small constant that keeps empty voxels at 0) and without low-pass,
    all shells to Nyquist; the FSC is that of those halves. Merges ``rec2`` into ``rec1``."""
    half1, half2 = rec1.reconstruct(), rec2.reconstruct()
    curve = fsc(half1, half2)
    rec1.merge(rec2)
    return HalfMaps(half1, half2, rec1.reconstruct(), curve)


def _noise_power(transforms: NDArray[np.complex64], box: int) -> NDArray[np.float64]:
    shells = shell_index(box)
    power = (np.abs(transforms) ** 2).mean(axis=0)
    n = box // 2 + 2
    total = np.bincount(shells.ravel(), power.ravel(), minlength=n)[:n]
    count = np.bincount(shells.ravel(), minlength=n)[:n]
    out = total / np.maximum(count, 1)
    return np.maximum(out, out[out > 0].min() if (out > 0).any() else 1.0)


def _check(
    stack: ParticleStack3D, reference: NDArray[np.floating], symmetry: str, max_iterations: int
) -> None:
    symmetry_rotations(symmetry)  # a ValueError naming the groups it knows
    ref = np.asarray(reference)
    if ref.shape != (stack.box,) * 3:
        raise ValueError(
            f"reference: shape {ref.shape} does not match the particles' box {stack.box}"
        )
    if not np.isfinite(ref).all() or not np.any(ref):
        raise ValueError("reference: must be finite and not all zero")
    if stack.box < 16 or stack.box % 2:
        raise ValueError(f"particles: box must be even and at least 16, got {stack.box}")
    if stack.count < 20:
        raise ValueError(f"particles: need at least 20 for two half sets, got {stack.count}")
    if max_iterations < 1:
        raise ValueError(f"max_iterations must be at least 1, got {max_iterations}")


def _halves(stack: ParticleStack3D, rng: np.random.Generator) -> NDArray[np.int64]:
    if stack.subset is not None and {1, 2} <= set(np.unique(stack.subset).tolist()):
        return np.asarray(stack.subset, dtype=np.int64)
    sub = np.tile(np.array([1, 2], dtype=np.int64), stack.count // 2 + 1)[: stack.count]
    return rng.permutation(sub)


def _shift_grid(max_px: float, step_px: float) -> NDArray[np.float64]:
    r = np.arange(-max_px, max_px + 1e-9, step_px)
    gx, gy = np.meshgrid(r, r)
    return np.column_stack([gx.ravel(), gy.ravel()])


def refine3d(
    stack: ParticleStack3D,
    reference: NDArray[np.floating],
    *,
    symmetry: str = "C1",
    initial_lowpass_a: float = 30.0,
    initial_step_deg: float = 15.0,
    min_step_deg: float = 1.875,
    max_shift_px: float = 3.0,
    mask_diameter_a: float | None = None,
    max_iterations: int = 15,
    seed: int = 0,
    poses: int = 1,
    progress: Progress | None = None,
    device: str | None = None,
) -> Refine3DResult:
    """Gold-standard refinement of ``stack`` (angles and origins unknown) from ``reference``.

    Parameters
    ----------
    stack : ParticleStack3D
        Particles with CTF; ``subset`` (rlnRandomSubset) splits the half sets, else random.
    reference : (b, b, b) float
        Starting map [z, y, x], any scale; low-passed to ``initial_lowpass_a`` for both halves.
    symmetry : str
        Point group ``Cn`` or ``Dn`` (RELION's axes: n-fold on z, Dn's 2-fold on x; the
        reference must be in that frame). The global search covers the asymmetric unit only,
        every reconstruction (each half on its own) is symmetrised, and the angles returned are
        folded into the asymmetric unit.
    initial_step_deg : float
        Angular step of the global search (first iterations); local searches then start at half
        of it and halve (angles and shifts) whenever the resolution stops improving.
    min_step_deg : float
        Finest angular step; refinement converges when the step has reached it and neither the
        resolution nor the angles improve.
    max_shift_px : float
        Translations searched globally (±, in 5 x 5 steps); local searches refine them.
    mask_diameter_a : float, optional
        Soft spherical mask on the references; default 90 % of the box.
    max_iterations : int
        Upper bound on iterations.
    seed : int
        Seed for the random half split (when the stack has none).
    poses : int
        In local searches, insert each image at its ``poses`` best poses weighted by their
        posterior (:func:`~cryolive.engines.refine3d._search.pose_weights`), a step toward
        RELION's marginalisation; 1 (default) inserts the best pose only.
    progress : callable(done, total), optional
        Called after each iteration.
    device : str, optional
        A PyTorch device ("cuda", "cpu" …): the searches' products with the reference slices,
        their norms and the argmax run there in float32 (slicing, reconstruction and FSC stay
        in numpy). None (default): pure numpy. A ValueError when PyTorch or the device is
        missing.

    Returns
    -------
    Refine3DResult

    Notes
    -----
    Each half set is refined against its own reference only (gold standard): the half maps'
    FSC gives the resolution (0.143), the Wiener term of each half's next reference
    (SSNR = FSC/(1-FSC)) and its low-pass. The maps returned are the last iteration's
    reconstructions unfiltered (every image, all shells to Nyquist), for post-processing.
    References: Scheres & Chen (2012) Nat. Methods 9:853, doi:10.1038/nmeth.2115; Scheres (2012)
    J. Struct. Biol. 180:519, doi:10.1016/j.jsb.2012.09.006.
    """
    _check(stack, reference, symmetry, max_iterations)
    if poses < 1:
        raise ValueError(f"poses must be at least 1, got {poses}")
    if device is not None:
        torch_device(device)  # refuses before any work when PyTorch or the device is missing
    group = symmetry_rotations(symmetry)
    rng = np.random.default_rng(seed)
    box, pixel = stack.box, stack.pixel_size_a
    nyq = box // 2
    subset = _halves(stack, rng)
    ft = image_transforms(stack.images)
    ctf = _ctf(stack)
    noise = _noise_power(ft, box)
    diameter = mask_diameter_a if mask_diameter_a is not None else 0.9 * box * pixel
    mask = soft_sphere(box, min(diameter / pixel / 2.0, nyq - 3.0))
    start_shell = max(2.0, min(box * pixel / initial_lowpass_a, nyq - 3.0))
    ref0 = lowpass(symmetrise(np.asarray(reference, dtype=np.float32), group) * mask, start_shell)
    refs = [ref0, ref0]
    cut_shell = start_shell
    rotations = np.zeros((stack.count, 3, 3))
    origins = np.zeros((stack.count, 2))
    halves = [np.flatnonzero(subset == h) for h in (1, 2)]
    mode, step, shift_step = "global", float(initial_step_deg), 1.0
    best_res, history, converged = math.inf, [], False
    maps: HalfMaps | None = None
    for it in range(1, max_iterations + 1):
        t0 = time.perf_counter()
        k_max = min(nyq - 1, math.ceil(cut_shell + 2.0))
        old_rot, old_org = rotations.copy(), origins.copy()
        recs = []
        for h, idx in enumerate(halves):
            data = search_data(ft[idx], ctf[idx], noise, k_max)
            cutter = SliceCutter(refs[h])
            if mode == "global":
                grid = asymmetric_unit_grid(step, symmetry)
                shifts = _shift_grid(max_shift_px, max_shift_px / 2.0)
                r_idx, s_idx, _ = global_search(data, cutter, grid, shifts, device)
                rotations[idx], origins[idx] = grid[r_idx], shifts[s_idx]
                found = None
            else:
                offsets = _shift_grid(shift_step, shift_step)
                rotations[idx], origins[idx], _, found = local_search(
                    data, cutter, rotations[idx], origins[idx], perturbations(step), offsets,
                    top=poses, device=device,
                )  # fmt: skip
            limit = 2 * max_shift_px
            origins[idx] = np.clip(origins[idx], -limit, limit)
            rec = Reconstructor(box)
            if found is None or poses <= 1:
                _insert(rec, ft[idx], ctf[idx], rotations[idx], origins[idx], group)
            else:
                k = found.weights.shape[1]
                _insert(
                    rec, np.repeat(ft[idx], k, axis=0), np.repeat(ctf[idx], k, axis=0),
                    found.rotations.reshape(-1, 3, 3),
                    np.clip(found.origins_px.reshape(-1, 2), -limit, limit), group,
                    found.weights.reshape(-1),
                )  # fmt: skip
            recs.append(rec)
        maps = _maps(recs[0], recs[1])
        res = resolution_at(maps.fsc, box, pixel, 0.143)
        cut_shell = min(box * pixel / res, nyq - 2.0)
        refs = [lowpass(m * mask, cut_shell) for m in (maps.half1, maps.half2)]
        trace = np.einsum("nij,nij->n", old_rot, rotations)
        moved = np.degrees(np.arccos(np.clip((trace - 1.0) / 2.0, -1.0, 1.0)))
        shift_moved = np.hypot(*(origins - old_org).T)
        history.append(
            Iteration(
                number=it, mode=mode, step_deg=step, shift_step_px=shift_step,
                resolution_a=res, angle_change_deg=float(np.median(moved)) if it > 1 else math.nan,
                shift_change_px=float(np.median(shift_moved)),
                seconds=time.perf_counter() - t0,
            )
        )  # fmt: skip
        if progress is not None:
            progress(it, max_iterations)
        improved = res < best_res * 0.99
        best_res = min(best_res, res)
        if mode == "global":
            mode, step = "local", step / 2.0
        elif not improved:
            if step / 2.0 >= min_step_deg * 0.999:
                step, shift_step = step / 2.0, max(shift_step / 2.0, 0.125)
            elif float(np.median(moved)) <= step:
                converged = True
                break
    assert maps is not None
    final = _unfiltered(recs[0], recs[1])  # the last iteration's sums: every image, to Nyquist
    angles = matrix_to_euler(fold_to_asymmetric_unit(rotations, symmetry))
    return Refine3DResult(
        half1=final.half1,
        half2=final.half2,
        full_map=final.full,
        angles_deg=angles,
        origins_a=origins * pixel,
        subset=subset,
        fsc=maps.fsc,
        resolution_a=history[-1].resolution_a,
        pixel_size_a=pixel,
        history=history,
        converged=converged,
        symmetry=symmetry.strip().upper(),
    )
