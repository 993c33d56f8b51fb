"""Reading RELION 3.1 particles.star files (the pipeline's writer's output) into a ParticleSet."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import starfile

from cryolive.engines.extract import Particles
from cryolive.engines.picking import MicrographCtf
from cryolive.io.particle_files import (
    MicrographParticles,
    OpticsGroup,
    ParticleStarError,
    read_particle_stars,
    read_particles_star,
    write_particles_star,
    write_stack,
)


def _write(
    folder: Path, name: str, n: int, *, box: int = 16, pixel_a: float = 1.5, seed: int = 0
) -> tuple[Path, np.ndarray]:
    """One micrograph's stack and star, as the pipeline writes them; return star and images."""
    rng = np.random.default_rng(seed)
    images = rng.standard_normal((n, box, box)).astype(np.float32)
    folder.mkdir(parents=True, exist_ok=True)
    write_stack(folder / f"{name}.mrcs", images, pixel_size_a=pixel_a)
    xy = rng.uniform(0, 1000, (2, n)).astype(np.float32)
    particles = Particles(
        images=images, x_px=xy[0], y_px=xy[1], pixel_size_a=pixel_a, box_px=box, dropped=0
    )
    ctf = MicrographCtf(defocus_u_a=15000.0 + seed, defocus_v_a=14000.0, astigmatism_angle_deg=30.0)
    optics = OpticsGroup(
        micrograph_pixel_size_a=pixel_a, image_pixel_size_a=pixel_a, image_size_px=box,
        voltage_kv=200.0, cs_mm=1.4, amplitude_contrast=0.1,
    )  # fmt: skip
    star = folder / f"{name}.star"
    write_particles_star(
        star,
        [MicrographParticles(micrograph_name=f"{name}.mrc", stack_name=f"{name}.mrcs",
                             particles=particles, ctf=ctf)],
        optics=optics,
    )  # fmt: skip
    return star, images


def test_round_trip_with_the_pipeline_writer(tmp_path: Path) -> None:
    star, images = _write(tmp_path, "mic1", 7)
    ps = read_particles_star(star)
    assert np.array_equal(ps.images, images)
    assert ps.pixel_size_a == 1.5 and ps.voltage_kv == 200.0
    assert ps.cs_mm == 1.4 and ps.amplitude_contrast == pytest.approx(0.1)
    assert np.all(ps.defocus_u_a == 15000.0) and np.all(ps.defocus_v_a == 14000.0)
    assert np.all(ps.astigmatism_angle_deg == 30.0)


def test_several_stars_join_in_order(tmp_path: Path) -> None:
    star1, im1 = _write(tmp_path / "a", "mic1", 3, seed=1)
    star2, im2 = _write(tmp_path / "b", "mic2", 5, seed=2)
    ps = read_particle_stars([star1, star2])
    assert np.array_equal(ps.images, np.concatenate([im1, im2]))
    assert list(ps.defocus_u_a) == [15001.0] * 3 + [15002.0] * 5


def test_per_particle_ctf_and_shuffled_images(tmp_path: Path) -> None:
    star, images = _write(tmp_path, "mic1", 6)
    table = starfile.read(star, always_dict=True)
    particles = table["particles"].iloc[::-1].reset_index(drop=True)
    particles["rlnDefocusU"] = np.arange(6) * 1000.0 + 9000.0
    starfile.write({"optics": table["optics"], "particles": particles}, star, overwrite=True)
    ps = read_particles_star(star)
    assert np.array_equal(ps.images, images[::-1])
    assert list(ps.defocus_u_a) == [9000.0, 10000.0, 11000.0, 12000.0, 13000.0, 14000.0]


def _edit(star: Path, block: str, change: object) -> None:
    table = starfile.read(star, always_dict=True)
    table[block] = change(table[block])  # type: ignore[operator]
    starfile.write(table, star, overwrite=True)


def test_not_a_star_file(tmp_path: Path) -> None:
    path = tmp_path / "notes.star"
    path.write_text("these are notes\nnot a table\n")
    with pytest.raises(ParticleStarError, match="not a STAR file") as info:
        read_particles_star(path)
    assert info.value.path == path and isinstance(info.value, ValueError)
    with pytest.raises(ParticleStarError, match="no such file"):
        read_particles_star(tmp_path / "absent.star")


@pytest.mark.parametrize("block", ["optics", "particles"])
def test_missing_table(tmp_path: Path, block: str) -> None:
    star, _ = _write(tmp_path, "mic1", 2)
    table = starfile.read(star, always_dict=True)
    del table[block]
    starfile.write(table, star, overwrite=True)
    with pytest.raises(ParticleStarError, match=f"no data_{block} table"):
        read_particles_star(star)


@pytest.mark.parametrize(
    ("block", "column"), [("particles", "rlnDefocusV"), ("optics", "rlnImagePixelSize")]
)
def test_missing_column(tmp_path: Path, block: str, column: str) -> None:
    star, _ = _write(tmp_path, "mic1", 2)
    _edit(star, block, lambda t: t.drop(columns=[column]))
    with pytest.raises(ParticleStarError, match=f"lacks column.*{column}"):
        read_particles_star(star)


def test_missing_stack(tmp_path: Path) -> None:
    star, _ = _write(tmp_path, "mic1", 2)
    (tmp_path / "mic1.mrcs").unlink()
    with pytest.raises(ParticleStarError, match=r"mic1\.mrcs does not exist"):
        read_particles_star(star)


def test_index_out_of_range(tmp_path: Path) -> None:
    star, _ = _write(tmp_path, "mic1", 3)

    def beyond(t):  # type: ignore[no-untyped-def]
        t.loc[1, "rlnImageName"] = "000009@mic1.mrcs"
        return t

    _edit(star, "particles", beyond)
    with pytest.raises(ParticleStarError, match=r"image 9 out of range.*holds 3"):
        read_particles_star(star)


def test_bad_image_name(tmp_path: Path) -> None:
    star, _ = _write(tmp_path, "mic1", 2)

    def broken(t):  # type: ignore[no-untyped-def]
        t.loc[0, "rlnImageName"] = "mic1.mrcs"
        return t

    _edit(star, "particles", broken)
    with pytest.raises(ParticleStarError, match="not INDEX@STACK"):
        read_particles_star(star)


def test_mixed_box_sizes(tmp_path: Path) -> None:
    star1, _ = _write(tmp_path, "mic1", 2, box=16)
    star2, _ = _write(tmp_path, "mic2", 2, box=24)
    with pytest.raises(ParticleStarError, match="mixed box sizes") as info:
        read_particle_stars([star1, star2])
    assert info.value.path == star2


def test_mixed_pixel_sizes(tmp_path: Path) -> None:
    star1, _ = _write(tmp_path, "mic1", 2, pixel_a=1.5)
    star2, _ = _write(tmp_path, "mic2", 2, pixel_a=1.0)
    with pytest.raises(ParticleStarError, match="mixed pixel_size_a"):
        read_particle_stars([star1, star2])
    # two optics groups of different pixel sizes within one file
    two = tmp_path / "two.star"
    table = starfile.read(star1, always_dict=True)
    optics = table["optics"]
    second = optics.copy()
    second["rlnOpticsGroup"] = 2
    second["rlnImagePixelSize"] = 3.0
    particles = table["particles"]
    particles.loc[1, "rlnOpticsGroup"] = 2
    starfile.write({"optics": pd.concat([optics, second]), "particles": particles}, two)
    with pytest.raises(ParticleStarError, match="mixed rlnImagePixelSize"):
        read_particles_star(two)
