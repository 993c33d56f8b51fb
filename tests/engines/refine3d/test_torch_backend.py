"""The PyTorch backend of the orientation search finds the numpy path's poses and scores and
refines as far. Runs on torch's CPU device (a GPU when CUDA is there). PyTorch is an optional
extra: without it these tests skip on a developer's machine and fail in CI (``CI`` set)."""

from __future__ import annotations

import os

import numpy as np
import pytest

from cryolive.engines.recon3d import (
    ParticleStack3D,
    euler_to_matrix,
    image_transforms,
    orientation_grid,
    particle_ctf,
    phantom,
)
from cryolive.engines.refine3d import (
    SliceCutter,
    global_search,
    local_search,
    perturbations,
    refine3d,
    search_data,
    torch_available,
)
from cryolive.simulate.particles3d import simulate_particles_3d, without_truth

pytestmark = pytest.mark.skipif(
    not torch_available() and not os.environ.get("CI"), reason="PyTorch is not installed"
)

BOX, PIXEL = 24, 4.0


@pytest.fixture(scope="module")
def device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


@pytest.fixture(scope="module")
def truth() -> np.ndarray:
    return phantom(BOX, np.random.default_rng(1))


@pytest.fixture(scope="module")
def stack(truth: np.ndarray) -> ParticleStack3D:
    return simulate_particles_3d(
        truth, count=400, pixel_size_a=PIXEL, rng=np.random.default_rng(2), snr=0.3,
        projection="fourier",
    )  # fmt: skip


def _data(stack: ParticleStack3D, k_max: int = 6):  # type: ignore[no-untyped-def]
    ft = image_transforms(stack.images[:120])
    ctf = particle_ctf(
        BOX, PIXEL, stack.defocus[:120], voltage_kv=stack.voltage_kv, cs_mm=stack.cs_mm,
        amplitude_contrast=stack.amplitude_contrast,
    )  # fmt: skip
    noise = np.ones(BOX // 2 + 2)
    return search_data(ft, ctf, noise, k_max)


def _agree(idx_np: np.ndarray, idx_t: np.ndarray, s_np: np.ndarray, s_t: np.ndarray) -> None:
    # ties (and float32 near-ties) may pick another index; the scores must agree regardless
    assert np.mean(idx_np != idx_t) <= 0.02, np.mean(idx_np != idx_t)
    np.testing.assert_allclose(s_t, s_np, rtol=1e-4, atol=1e-4 * np.abs(s_np).max())


def test_global_search_matches_numpy(truth: np.ndarray, stack: ParticleStack3D, device: str):
    data = _data(stack)
    cutter = SliceCutter(truth)
    grid = orientation_grid(15.0)
    shifts = np.array([[x, y] for x in (-1.5, 0.0, 1.5) for y in (-1.5, 0.0, 1.5)])
    r_np, s_np, best_np = global_search(data, cutter, grid, shifts)
    r_t, s_t, best_t = global_search(data, cutter, grid, shifts, device=device)
    _agree(r_np * len(shifts) + s_np, r_t * len(shifts) + s_t, best_np, best_t)
    assert best_t.dtype == np.float32 and r_t.dtype == np.int64
    assert not np.array_equal(best_t, best_np), "the torch path must have run (other sums)"
    assert len(np.unique(r_np)) > 30  # a real search: many different orientations won


def test_local_search_matches_numpy(truth: np.ndarray, stack: ParticleStack3D, device: str):
    assert stack.angles_deg is not None and stack.origins_a is not None
    data = _data(stack)
    cutter = SliceCutter(truth)
    # start 4° (a rotation about x) off the truth, search ±3° steps and ±1 px
    tilt = np.array([[1, 0, 0], [0, np.cos(0.07), -np.sin(0.07)], [0, np.sin(0.07), np.cos(0.07)]])
    start = tilt @ euler_to_matrix(stack.angles_deg[:120])
    origins = stack.origins_a[:120] / PIXEL
    offsets = np.array([[x, y] for x in (-1.0, 0.0, 1.0) for y in (-1.0, 0.0, 1.0)])
    deltas = perturbations(3.0)
    out_np = local_search(data, cutter, start, origins, deltas, offsets, top=3)
    out_t = local_search(data, cutter, start, origins, deltas, offsets, top=3, device=device)
    _agree(out_np[0].reshape(120, -1), out_t[0].reshape(120, -1), out_np[2], out_t[2])
    same = np.all(np.isclose(out_np[0], out_t[0]).reshape(120, -1), axis=1)
    assert same.mean() >= 0.98 and np.isclose(out_np[1], out_t[1]).all(axis=1).mean() >= 0.98
    # the top poses and their posterior weights
    np.testing.assert_allclose(out_t[3].weights[same], out_np[3].weights[same], atol=1e-3)
    assert not np.allclose(out_np[0], start)  # it moved: the search ran
    assert not np.array_equal(out_t[2], out_np[2]), "the torch path must have run (other sums)"


def test_refinement_on_torch_reaches_the_numpy_resolution(
    truth: np.ndarray, stack: ParticleStack3D, device: str
) -> None:
    settings = dict(initial_lowpass_a=25.0, max_iterations=3)
    res_np = refine3d(without_truth(stack), truth, **settings)  # type: ignore[arg-type]
    res_t = refine3d(without_truth(stack), truth, device=device, **settings)  # type: ignore[arg-type]
    shell_np = BOX * PIXEL / res_np.resolution_a
    shell_t = BOX * PIXEL / res_t.resolution_a
    assert abs(shell_np - shell_t) <= 1.0, (res_np.resolution_a, res_t.resolution_a)
    assert res_t.resolution_a < 20.0  # it refined past the 25 Å start


def test_missing_device_is_refused(truth: np.ndarray, stack: ParticleStack3D) -> None:
    with pytest.raises(ValueError, match="device 'nosuchdevice'"):
        refine3d(without_truth(stack), truth, device="nosuchdevice")
