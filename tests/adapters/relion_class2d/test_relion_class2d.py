"""RELION's 2D classification through the adapter, on planted shapes with known poses.

Three shapes (a disc, a bar, an L) at random in-plane rotations and shifts, CTF applied,
protein bright, in noise; RELION must put them in three classes, and the poses it reports,
converted to cryolive's conventions, must match the planted ones. Tests that run RELION skip
locally when ``relion_refine`` is not on PATH and fail in CI (``need_service``).
"""

from __future__ import annotations

import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import starfile
from numpy.typing import NDArray
from scipy import ndimage

from cryolive.adapters.relion_class2d import (
    RelionClass2DError,
    find_relion_refine,
    run_relion_class2d,
)
from cryolive.engines.class2d import Class2DResult, Class2DSettings
from cryolive.engines.ctf import Optics, ctf_2d
from cryolive.engines.extract import Particles
from cryolive.engines.picking import MicrographCtf
from cryolive.io.particle_files import (
    MicrographParticles,
    OpticsGroup,
    write_particles_star,
    write_stack,
)

BOX_PX = 40
PIXEL_A = 3.0
PER_MICROGRAPH = 60
AMPLITUDE = 12.0
DEFOCI_A = (15000.0, 19000.0, 23000.0)
SETTINGS = Class2DSettings(
    n_classes=3, particle_diameter_a=96.0, iterations=6, angle_step_deg=6.0, max_shift_a=9.0, seed=1
)


@dataclass(frozen=True)
class Planted:
    star: Path
    kinds: NDArray[np.int64]  # 0 disc, 1 bar, 2 L
    angles_deg: NDArray[np.float64]  # from +x towards +y (axis 0)
    shifts_px: NDArray[np.float64]  # (n, 2) particle centre from box centre, (y, x)
    images: NDArray[np.float32]
    ctfs: NDArray[np.float32]  # (n, b, b) each particle's CTF, full FFT grid


def rotate_shift(
    image: NDArray[np.floating], angle_deg: float, shift_px: NDArray[np.floating]
) -> NDArray[np.float64]:
    """``image`` turned by ``angle_deg`` about the box centre (from +x towards +y), then moved
    by ``shift_px`` (y, x)."""
    centre = image.shape[0] // 2
    yy, xx = np.mgrid[: image.shape[0], : image.shape[1]].astype(float)
    y = yy - centre - shift_px[0]
    x = xx - centre - shift_px[1]
    t = np.deg2rad(angle_deg)
    source_x = np.cos(t) * x + np.sin(t) * y + centre
    source_y = -np.sin(t) * x + np.cos(t) * y + centre
    return np.asarray(ndimage.map_coordinates(image, [source_y, source_x], order=1))


def shape(kind: int) -> NDArray[np.float64]:
    """The unrotated shape, 1 inside and 0 outside, slightly blurred."""
    yy, xx = np.mgrid[:BOX_PX, :BOX_PX] - BOX_PX // 2
    if kind == 0:
        body = xx**2 + yy**2 <= 6.5**2
    elif kind == 1:
        body = (np.abs(xx) <= 10) & (np.abs(yy) <= 3)
    else:
        body = ((np.abs(xx + 1) <= 10) & (np.abs(yy - 7) <= 2.5)) | (
            (np.abs(xx - 8) <= 2.5) & (np.abs(yy + 1) <= 10)
        )
    return np.asarray(ndimage.gaussian_filter(body.astype(float), 0.8))


def plant(folder: Path, rng: np.random.Generator) -> Planted:
    n = PER_MICROGRAPH * len(DEFOCI_A)
    kinds = rng.integers(0, 3, n)
    angles = rng.uniform(0.0, 360.0, n)
    shifts = rng.uniform(-2.0, 2.0, (n, 2))
    shapes = [shape(kind) for kind in range(3)]
    yy, xx = np.mgrid[:BOX_PX, :BOX_PX] - BOX_PX // 2
    background = np.hypot(yy, xx) > 16
    micrographs, images, ctfs = [], [], []
    for m, defocus_a in enumerate(DEFOCI_A):
        ctf_info = MicrographCtf(
            defocus_u_a=defocus_a, defocus_v_a=defocus_a - 300.0, astigmatism_angle_deg=30.0
        )
        ctf = ctf_2d(
            (BOX_PX, BOX_PX),
            optics=Optics(pixel_size_a=PIXEL_A),
            defocus_u_a=ctf_info.defocus_u_a,
            defocus_v_a=ctf_info.defocus_v_a,
            astigmatism_angle_deg=30.0,
        )
        stack = []
        for i in range(m * PER_MICROGRAPH, (m + 1) * PER_MICROGRAPH):
            body = rotate_shift(shapes[kinds[i]], angles[i], shifts[i])
            # -sin χ darkens protein; extraction inverts, so protein is bright again.
            image = -AMPLITUDE * np.fft.ifft2(np.fft.fft2(body) * ctf).real
            image += rng.normal(0.0, 1.0, image.shape)
            image = (image - image[background].mean()) / image[background].std()
            stack.append(image.astype(np.float32))
            ctfs.append(ctf)
        name = f"mic{m}"
        write_stack(folder / f"{name}.mrcs", np.stack(stack), pixel_size_a=PIXEL_A)
        centres = np.full(PER_MICROGRAPH, 100.0, dtype=np.float32)
        particles = Particles(
            images=np.stack(stack),
            x_px=centres,
            y_px=centres,
            pixel_size_a=PIXEL_A,
            box_px=BOX_PX,
            dropped=0,
        )
        micrographs.append(
            MicrographParticles(
                micrograph_name=f"{name}.mrc",
                stack_name=f"{name}.mrcs",
                particles=particles,
                ctf=ctf_info,
            )
        )
        images += stack
    star = folder / "particles.star"
    optics = OpticsGroup(
        micrograph_pixel_size_a=PIXEL_A, image_pixel_size_a=PIXEL_A, image_size_px=BOX_PX
    )
    write_particles_star(star, micrographs, optics=optics)
    return Planted(
        star=star,
        kinds=kinds,
        angles_deg=angles,
        shifts_px=shifts,
        images=np.stack(images),
        ctfs=np.stack(ctfs),
    )


@pytest.fixture(scope="module")
def relion_run(
    tmp_path_factory: pytest.TempPathFactory, need_service: Callable[[str, str], None]
) -> tuple[Planted, Class2DResult, list[tuple[int, int]]]:
    if find_relion_refine() is None:
        need_service("relion_refine", "not on PATH (Debian: apt-get install relion)")
    folder = tmp_path_factory.mktemp("relion_class2d")
    planted = plant(folder, np.random.default_rng(1))
    calls: list[tuple[int, int]] = []
    result = run_relion_class2d(
        planted.star,
        folder / "out",
        settings=SETTINGS,
        progress=lambda done, total: calls.append((done, total)),
    )
    return planted, result, calls


def test_relion_separates_the_three_shapes(
    relion_run: tuple[Planted, Class2DResult, list[tuple[int, int]]],
) -> None:
    planted, result, calls = relion_run
    n = len(planted.kinds)
    assert result.engine == "relion_refine"
    assert result.averages.shape == (3, BOX_PX, BOX_PX)
    assert result.averages.dtype == np.float32
    assert result.pixel_size_a == PIXEL_A
    assert result.particles_per_class.sum() == n
    assert np.all(np.isfinite(result.resolution_a)) and np.all(result.resolution_a > 2 * PIXEL_A)
    assert np.all((result.probability > 0) & (result.probability <= 1))
    assert result.score.shape == (3,) and np.all((result.score >= 0) & (result.score <= 1))
    assert result.selected.all()  # three compact, resolved shapes: all good classes (~0.95)
    dominant = []
    for k in range(3):
        members = planted.kinds[result.assignment == k]
        counts = np.bincount(members, minlength=3)
        dominant.append(int(counts.argmax()))
        assert counts.max() > 0.8 * counts.sum(), f"class {k} is mixed: {counts}"
    assert sorted(dominant) == [0, 1, 2]
    agreement = np.mean(np.asarray(dominant)[result.assignment] == planted.kinds)
    assert agreement > 0.9
    assert calls[-1] == (SETTINGS.iterations, SETTINGS.iterations)
    assert [done for done, _ in calls] == sorted({done for done, _ in calls})


def test_relion_poses_are_in_cryolives_convention(
    relion_run: tuple[Planted, Class2DResult, list[tuple[int, int]]],
) -> None:
    planted, result, _ = relion_run
    for k in range(3):
        members = np.flatnonzero(result.assignment == k)
        kind = int(np.bincount(planted.kinds[members], minlength=3).argmax())
        members = members[planted.kinds[members] == kind]
        if kind != 0:  # a disc has no orientation (its centre, below, still has one)
            # psi turns the average onto the particle: planted angle - psi is the average's
            # own angle, one value per class (mod 180° for the bar, whose ends look alike).
            period = 180.0 if kind == 1 else 360.0
            phase = np.deg2rad(
                (planted.angles_deg[members] - result.psi_deg[members]) * 360.0 / period
            )
            mean = np.angle(np.mean(np.exp(1j * phase)))
            error_deg = np.rad2deg(np.angle(np.exp(1j * (phase - mean)))) * period / 360.0
            # RELION samples psi every 6° (3° after oversampling): measured median 1.5°.
            assert np.median(np.abs(error_deg)) < 4.0, f"kind {kind}"
            assert np.mean(np.abs(error_deg) < 15.0) > 0.9, f"kind {kind}"
        # shift_a is where the particle's centre sits: the planted shift plus the class's
        # own offset, to within RELION's 1 px sampling (measured RMS 0.5-0.9 px; the bar's
        # position along its length is the least certain).
        residual = result.shift_a[members] / PIXEL_A - planted.shifts_px[members]
        residual -= np.median(residual, axis=0)
        assert np.sqrt(np.mean(np.sum(residual**2, axis=1))) < 1.2, f"kind {kind}"


def test_the_average_turned_by_psi_and_moved_by_the_shift_matches_the_particle(
    relion_run: tuple[Planted, Class2DResult, list[tuple[int, int]]],
) -> None:
    planted, result, _ = relion_run
    k = int(np.bincount(result.assignment[planted.kinds == 2]).argmax())  # the L's class
    members = np.flatnonzero((result.assignment == k) & (planted.kinds == 2))
    strongest = members[np.argsort(result.probability[members])[::-1][:20]]
    offsets_deg = np.arange(0.0, 360.0, 30.0)
    scores = np.zeros(len(offsets_deg))
    for i in strongest:
        for j, offset in enumerate(offsets_deg):
            model = rotate_shift(
                result.averages[k], result.psi_deg[i] + offset, result.shift_a[i] / PIXEL_A
            )
            # The particle carries its micrograph's CTF (protein bright: -(-sin χ) = sin χ).
            model = -np.fft.ifft2(np.fft.fft2(model) * planted.ctfs[i]).real
            scores[j] += np.corrcoef(model.ravel(), planted.images[i].ravel())[0, 1]
    assert scores.argmax() == 0, scores
    # and the shift's sign: moving the other way matches worse
    flipped = 0.0
    for i in strongest:
        model = rotate_shift(result.averages[k], result.psi_deg[i], -result.shift_a[i] / PIXEL_A)
        model = -np.fft.ifft2(np.fft.fft2(model) * planted.ctfs[i]).real
        flipped += np.corrcoef(model.ravel(), planted.images[i].ravel())[0, 1]
    assert scores[0] > flipped


def write_minimal_star(path: Path, *, optics: bool = True, ctf: bool = True) -> None:
    particles = {
        "rlnImageName": ["000001@stack.mrcs", "000002@stack.mrcs"],
        "rlnOpticsGroup": [1, 1],
    }
    if ctf:
        particles |= {
            "rlnDefocusU": [15000.0] * 2,
            "rlnDefocusV": [15000.0] * 2,
            "rlnDefocusAngle": [0.0] * 2,
        }
    blocks = {"particles": pd.DataFrame(particles)}
    if optics:
        blocks = {
            "optics": pd.DataFrame(
                {
                    "rlnOpticsGroupName": ["opticsGroup1"],
                    "rlnOpticsGroup": [1],
                    "rlnImagePixelSize": [PIXEL_A],
                    "rlnImageSize": [BOX_PX],
                    "rlnVoltage": [300.0],
                    "rlnSphericalAberration": [2.7],
                    "rlnAmplitudeContrast": [0.07],
                    "rlnImageDimensionality": [2],
                }
            )
        } | blocks
    starfile.write(blocks, path, overwrite=True)


SMALL = Class2DSettings(n_classes=2, iterations=1, full_iterations=1, particle_diameter_a=96.0)


def test_a_missing_star_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="star_path"):
        run_relion_class2d(tmp_path / "absent.star", tmp_path / "out", settings=SMALL)


def test_a_star_file_without_optics_or_ctf_is_refused(tmp_path: Path) -> None:
    write_minimal_star(tmp_path / "no_optics.star", optics=False)
    with pytest.raises(ValueError, match="no data_optics"):
        run_relion_class2d(tmp_path / "no_optics.star", tmp_path / "out", settings=SMALL)
    write_minimal_star(tmp_path / "no_ctf.star", ctf=False)
    with pytest.raises(ValueError, match="rlnDefocusU"):
        run_relion_class2d(tmp_path / "no_ctf.star", tmp_path / "out", settings=SMALL)
    write_minimal_star(tmp_path / "ok.star")
    with pytest.raises(ValueError, match="n_classes"):
        run_relion_class2d(
            tmp_path / "ok.star", tmp_path / "out", settings=Class2DSettings(n_classes=5)
        )


def test_a_missing_executable_is_a_relion_error(tmp_path: Path) -> None:
    write_minimal_star(tmp_path / "ok.star")
    with pytest.raises(RelionClass2DError, match="not on PATH"):
        run_relion_class2d(
            tmp_path / "ok.star",
            tmp_path / "out",
            settings=SMALL,
            executable="relion_refine_that_is_not_installed",
        )


def test_a_failing_run_reports_the_tail_of_its_log(tmp_path: Path) -> None:
    write_minimal_star(tmp_path / "ok.star")
    fake = tmp_path / "fake_refine"
    fake.write_text("#!/bin/sh\necho 'ERROR: the fake refine gave up'\nexit 3\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    with pytest.raises(RelionClass2DError, match=r"(?s)exit 3.*fake refine gave up"):
        run_relion_class2d(
            tmp_path / "ok.star", tmp_path / "out", settings=SMALL, executable=str(fake)
        )


def test_files_of_an_earlier_run_do_not_pass_for_a_run_that_wrote_nothing(tmp_path: Path) -> None:
    write_minimal_star(tmp_path / "ok.star")
    out = tmp_path / "out"
    out.mkdir()
    for kind in ("classes.mrcs", "model.star", "data.star"):
        (out / f"run_it001_{kind}").write_text("from an earlier run")
    fake = tmp_path / "idle_refine"
    fake.write_text("#!/bin/sh\nexit 0\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    with pytest.raises(RelionClass2DError, match="exit 0"):
        run_relion_class2d(tmp_path / "ok.star", out, settings=SMALL, executable=str(fake))


def test_a_run_past_its_time_limit_is_stopped(tmp_path: Path) -> None:
    write_minimal_star(tmp_path / "ok.star")
    fake = tmp_path / "slow_refine"
    fake.write_text("#!/bin/sh\necho 'thinking'\nexec sleep 30\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    with pytest.raises(RelionClass2DError, match=r"(?s)ran past 1.0 s.*thinking"):
        run_relion_class2d(
            tmp_path / "ok.star",
            tmp_path / "out",
            settings=SMALL,
            executable=str(fake),
            timeout_s=1.0,
        )


def test_relion_failing_on_a_missing_stack_is_a_relion_error(
    tmp_path: Path, need_service: Callable[[str, str], None]
) -> None:
    if find_relion_refine() is None:
        need_service("relion_refine", "not on PATH (Debian: apt-get install relion)")
    write_minimal_star(tmp_path / "ok.star")  # names stack.mrcs, which is not there
    with pytest.raises(RelionClass2DError, match=r"(?s)failed.*Cannot read file stack\.mrcs"):
        run_relion_class2d(tmp_path / "ok.star", tmp_path / "out", settings=SMALL, timeout_s=60)
