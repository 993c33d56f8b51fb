"""Plan one exposure (what is planted) and render its noiseless frames."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from scipy import fft as sfft

from cryolive.simulate._config import MovieConfig
from cryolive.simulate._motion import drift_trajectory, local_motion
from cryolive.simulate._optics import critical_exposure_e_per_a2, ctf_2d, rfft_frequencies
from cryolive.simulate._orient import euler_zyz_matrix, random_orientations
from cryolive.simulate._specimen import Specimen


@dataclass(frozen=True)
class ExposurePlan:
    """Everything drawn for one exposure. Lengths in Å, positions and motion in pixels."""

    shape_px: tuple[int, int]
    pixel_size_a: float
    defocus_u_a: float
    defocus_v_a: float
    astigmatism_angle_deg: float
    phase_shift_deg: float
    ice_coeffs: tuple[float, float, float, float]  # mean, gradient x, gradient y, curvature
    positions_px: np.ndarray  # (p, 2) y, x in frame 0
    orientations_deg: np.ndarray  # (p, 3) rot, tilt, psi
    species: np.ndarray  # (p,) index into the specimen list
    drift_px: np.ndarray  # (n, 2) dy, dx
    tile_px: int
    tile_centres: tuple[np.ndarray, np.ndarray]
    local_px: np.ndarray  # (n, ty, tx, 2)

    def ice_thickness_a(self, y: np.ndarray, x: np.ndarray) -> np.ndarray:
        """Ice thickness (Å) at pixel coordinates (any broadcastable shapes)."""
        mean, gx, gy, curv = self.ice_coeffs
        ny, nx = self.shape_px
        u, v = x / nx - 0.5, y / ny - 0.5
        return mean * (1.0 + gx * u + gy * v + curv * (u * u + v * v - 1.0 / 6.0))


def _place(
    n_target: int, shape: tuple[int, int], radius_px: float, rng: np.random.Generator
) -> np.ndarray:
    """Up to ``n_target`` centres (y, x) at least 2 radii apart and a radius from the edge."""
    ny, nx = shape
    if ny <= 2 * radius_px or nx <= 2 * radius_px or n_target == 0:
        return np.zeros((0, 2))
    chosen: list[np.ndarray] = []
    candidates = rng.uniform(
        (radius_px, radius_px), (ny - radius_px, nx - radius_px), (8 * n_target, 2)
    )
    accepted = np.empty((0, 2))
    for c in candidates:
        if accepted.size and np.min(((accepted - c) ** 2).sum(axis=1)) < (2 * radius_px) ** 2:
            continue
        chosen.append(c)
        accepted = np.asarray(chosen)
        if len(chosen) == n_target:
            break
    return accepted


def plan_exposure(
    config: MovieConfig,
    specimens: list[Specimen],
    abundances: np.ndarray,
    *,
    shape_px: tuple[int, int],
    pixel_size_a: float,
    rng: np.random.Generator,
) -> ExposurePlan:
    """Draw defocus, astigmatism, ice, particles and motion for one exposure."""
    mean_defocus = rng.uniform(*config.defocus_range_a)
    half_ast = rng.uniform(0, config.astigmatism_max_a) / 2
    radius_px = max(s.radius_a for s in specimens) / pixel_size_a
    area = shape_px[0] * shape_px[1]
    n_target = int(config.particle_density * area / (np.pi * radius_px**2))
    positions = _place(n_target, shape_px, radius_px, rng)
    species = rng.choice(len(specimens), size=len(positions), p=abundances / abundances.sum())
    tile = int(max(64, -(-max(shape_px) // 16)))
    cy, cx, local = local_motion(
        config.n_frames, shape_px, rng, peak_px=config.local_motion_px, tile_px=tile
    )
    return ExposurePlan(
        shape_px=shape_px,
        pixel_size_a=pixel_size_a,
        defocus_u_a=mean_defocus + half_ast,
        defocus_v_a=mean_defocus - half_ast,
        astigmatism_angle_deg=float(rng.uniform(-90, 90)),
        phase_shift_deg=config.phase_shift_deg or 0.0,
        ice_coeffs=(
            float(rng.uniform(*config.ice_thickness_range_a)),
            float(rng.uniform(-config.ice_gradient, config.ice_gradient)),
            float(rng.uniform(-config.ice_gradient, config.ice_gradient)),
            float(rng.uniform(-config.ice_gradient, config.ice_gradient)),
        ),
        positions_px=positions,
        orientations_deg=random_orientations(
            len(positions), rng, preferred_view_kappa=config.preferred_view_kappa
        ),
        species=species,
        drift_px=drift_trajectory(
            config.n_frames,
            rng,
            total_px=config.drift_total_px,
            jitter_px=config.drift_jitter_px,
            settle_frames=config.drift_settle_frames,
            creep_fraction=config.drift_creep_fraction,
        ),
        tile_px=tile,
        tile_centres=(cy, cx),
        local_px=local,
    )


def _splat(phase_map: np.ndarray, y: np.ndarray, x: np.ndarray, weight: np.ndarray) -> None:
    """Add ``weight`` at sub-pixel (y, x) with bilinear weights, in place (one bincount)."""
    ny, nx = phase_map.shape
    y0, x0 = np.floor(y).astype(np.int64), np.floor(x).astype(np.int64)
    fy, fx = y - y0, x - x0
    index, share = [], []
    for dy, dx, w in (
        (0, 0, (1 - fy) * (1 - fx)),
        (0, 1, (1 - fy) * fx),
        (1, 0, fy * (1 - fx)),
        (1, 1, fy * fx),
    ):
        index.append(np.clip(y0 + dy, 0, ny - 1) * nx + np.clip(x0 + dx, 0, nx - 1))
        share.append(weight * w)
    total = np.bincount(np.concatenate(index), weights=np.concatenate(share), minlength=ny * nx)
    phase_map += total.reshape(ny, nx).astype(np.float32)


class ExposureRenderer:
    """Noiseless expected electrons per pixel, frame by frame, for one planned exposure.

    The image is formed on a padded grid of FFT-friendly size (so that drift never wraps
    content around an edge) as I = a(x) (1 + 2 CTF * phase) with a(x) = exp(-t(x) / mfp)
    the fraction of electrons left by the energy filter after inelastic scattering in ice
    of thickness t. Whole-frame drift is an exact Fourier phase ramp; radiation damage
    attenuates the particles' signal by exp(-N / 2 N_e(k)); local motion moves tiles by a
    bilinear sub-pixel shift on top.
    """

    def __init__(
        self,
        plan: ExposurePlan,
        config: MovieConfig,
        specimens: list[Specimen],
        *,
        rng: np.random.Generator,
    ) -> None:
        self.plan, self.config = plan, config
        ny, nx = plan.shape_px
        motion = np.abs(plan.drift_px).max() + np.abs(plan.local_px).max(initial=0)
        self.margin = int(np.ceil(motion)) + 4
        self.padded = (_fast_size(ny + 2 * self.margin), _fast_size(nx + 2 * self.margin))
        p = plan.pixel_size_a
        py, px = self.padded
        phase = np.zeros(self.padded, dtype=np.float32)
        for index, specimen in enumerate(specimens):
            chosen = plan.species == index
            if not np.any(chosen):
                continue
            rot = euler_zyz_matrix(*plan.orientations_deg[chosen].T)
            xyz = np.einsum("pij,aj->pai", rot, specimen.coords_a.astype(np.float64))
            centres = plan.positions_px[chosen] + self.margin
            ys = (xyz[..., 1] / p + centres[:, None, 0]).ravel()
            xs = (xyz[..., 0] / p + centres[:, None, 1]).ravel()
            contrast = config.particle_contrast / p**2  # against the ice it displaces
            w = np.broadcast_to(specimen.phase_rad_a2 * contrast, xyz.shape[:2]).ravel()
            _splat(phase, ys, xs, w)
        yy = np.arange(py, dtype=np.float32)[:, None] - self.margin
        xx = np.arange(px, dtype=np.float32)[None, :] - self.margin
        thickness = np.clip(plan.ice_thickness_a(yy, xx), 1.0, None).astype(np.float32)
        self.thickness = thickness
        ice_noise = rng.standard_normal(self.padded, dtype=np.float32)
        ice_noise *= np.sqrt(thickness / 300.0) * np.float32(config.ice_phase_noise_rad / p)
        ctf = 2.0 * ctf_2d(
            self.padded,
            pixel_size_a=p,
            defocus_u_a=plan.defocus_u_a,
            defocus_v_a=plan.defocus_v_a,
            astigmatism_angle_deg=plan.astigmatism_angle_deg,
            voltage_kv=config.voltage_kv,
            cs_mm=config.cs_mm,
            amplitude_contrast=config.amplitude_contrast,
            phase_shift_deg=plan.phase_shift_deg,
            bfactor_a2=config.envelope_bfactor_a2,
        )
        ky, kx = rfft_frequencies(self.padded, p)
        k2 = kx * kx + ky * ky
        atom_blur = np.exp(-2 * np.pi**2 * 0.7**2 * k2).astype(np.float32)
        att = np.exp(-thickness / np.float32(config.inelastic_mean_free_path_a))
        if config.ice_texture > 0:
            att *= _ice_texture(self.padded, p, config.ice_texture, rng)
        c_ice = sfft.irfft2(sfft.rfft2(ice_noise, workers=-1) * ctf, s=self.padded, workers=-1)
        c_part = sfft.irfft2(
            sfft.rfft2(phase, workers=-1) * ctf * atom_blur, s=self.padded, workers=-1
        )
        dose_per_frame_a2 = config.dose_e_per_a2 / config.n_frames
        self.electrons_per_px = np.float32(dose_per_frame_a2 * p * p)
        att *= self.electrons_per_px  # spectra in electrons per pixel and frame
        self._base = sfft.rfft2(att * (1.0 + c_ice), workers=-1).astype(np.complex64, copy=False)
        self._particles = sfft.rfft2(att * c_part, workers=-1).astype(np.complex64, copy=False)
        self._ky = (-2j * np.pi * np.fft.fftfreq(py)).astype(np.complex64)[:, None]
        self._kx = (-2j * np.pi * np.fft.rfftfreq(px)).astype(np.complex64)
        self._damage_step = (
            np.exp(-dose_per_frame_a2 / (2 * critical_exposure_e_per_a2(np.sqrt(k2)))).astype(
                np.float32
            )
            if config.radiation_damage
            else None
        )

    def frames(self) -> Iterator[np.ndarray]:
        """Yield (y, x) float32 expected electrons per pixel of each frame, in order."""
        ny, nx = self.plan.shape_px
        m = self.margin
        particles = self._particles.copy()
        if self._damage_step is not None:
            particles *= np.sqrt(self._damage_step)  # middle of the first frame
        spectrum = np.empty_like(self._base)
        chunks = np.array_split(np.arange(spectrum.shape[0]), 2)
        bounds = [slice(c[0], c[-1] + 1) for c in chunks]
        damage = self._damage_step
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="cryolive-render") as pool:
            for t in range(self.config.n_frames):
                dy, dx = self.plan.drift_px[t]
                ramp_y = np.exp(self._ky * np.float32(dy))
                ramp_x = np.exp(self._kx * np.float32(dx))

                def shifted(
                    rows: slice,
                    t: int = t,
                    ramp_y: np.ndarray = ramp_y,
                    ramp_x: np.ndarray = ramp_x,
                ) -> None:
                    # this frame's spectrum, shifted; then the particles' damage for the next one
                    out = spectrum[rows]
                    np.add(self._base[rows], particles[rows], out=out)
                    out *= ramp_y[rows]
                    out *= ramp_x
                    if damage is not None and t + 1 < self.config.n_frames:
                        particles[rows] *= damage[rows]

                list(pool.map(shifted, bounds))
                image = sfft.irfft2(spectrum, s=self.padded, workers=-1, overwrite_x=True)
                local = self.plan.local_px[t]
                if np.any(local):
                    frame = _warp_tiles(
                        image, local, tile=self.plan.tile_px, margin=m, shape=(ny, nx)
                    )
                else:
                    frame = image[m : m + ny, m : m + nx]
                yield np.maximum(frame, 0.0, out=frame if frame.base is None else None)


def _ice_texture(
    shape: tuple[int, int], pixel_size_a: float, sd: float, rng: np.random.Generator
) -> np.ndarray:
    """(y, x) float32 factor 1 + texture: white noise with its power kept below ~1/200 Å⁻¹
    (a Gaussian filter exp(-(200 Å k)² / 2)), scaled to a relative sd of ``sd``, clipped to
    stay positive."""
    ky, kx = rfft_frequencies(shape, pixel_size_a)
    lowpass = np.exp(-0.5 * 200.0**2 * (kx * kx + ky * ky)).astype(np.float32)
    noise = rng.standard_normal(shape, dtype=np.float32)
    field: np.ndarray = sfft.irfft2(sfft.rfft2(noise, workers=-1) * lowpass, s=shape, workers=-1)
    field -= field.mean()  # a texture, not a change of the mean transmission
    field *= np.float32(sd / max(float(field.std()), 1e-12))
    return np.asarray(np.clip(1.0 + field, 0.1, None), dtype=np.float32)


def _fast_size(n: int) -> int:
    """Smallest multiple of 32 >= n with no prime factor above 11 (quick for pocketfft)."""
    size = -(-n // 32) * 32
    while True:
        rest = size
        for p in (2, 3, 5, 7, 11):
            while rest % p == 0:
                rest //= p
        if rest == 1:
            return size
        size += 32


def _warp_tiles(
    image: np.ndarray, shifts: np.ndarray, *, tile: int, margin: int, shape: tuple[int, int]
) -> np.ndarray:
    """Move each tile's content by its own sub-pixel (dy, dx) (bilinear), then crop."""
    ny, nx = shape
    out = np.empty(shape, dtype=np.float32)
    for iy in range(shifts.shape[0]):
        for ix in range(shifts.shape[1]):
            dy, dx = shifts[iy, ix]
            y0, y1 = iy * tile, min((iy + 1) * tile, ny)
            x0, x1 = ix * tile, min((ix + 1) * tile, nx)
            sy, sx = int(np.floor(dy)), int(np.floor(dx))
            fy, fx = np.float32(dy - sy), np.float32(dx - sx)
            ya, xa = y0 + margin - sy, x0 + margin - sx
            h, w = y1 - y0, x1 - x0
            a = image[ya : ya + h, xa : xa + w]
            b = image[ya : ya + h, xa - 1 : xa - 1 + w]
            c = image[ya - 1 : ya - 1 + h, xa : xa + w]
            d = image[ya - 1 : ya - 1 + h, xa - 1 : xa - 1 + w]
            out[y0:y1, x0:x1] = (1 - fy) * ((1 - fx) * a + fx * b) + fy * ((1 - fx) * c + fx * d)
    return out
