"""Specimens (procedural, model, map), orientations and an EER visit."""

from __future__ import annotations

from pathlib import Path

import mrcfile
import numpy as np
import pytest
from typer.testing import CliRunner

from cryolive.cli import build_app
from cryolive.io.movies import read_movie
from cryolive.simulate import (
    MovieConfig,
    SpecimenSpec,
    VisitConfig,
    VisitTruth,
    euler_zyz_matrix,
    procedural_specimen,
    random_orientations,
    simulate_visit,
    specimen_from_map,
    specimen_from_model,
)

PDB = """\
ATOM      1  N   ALA A   1      11.104   6.134  -6.504  1.00  0.00           N
ATOM      2  CA  ALA A   1      11.639   6.071  -5.147  1.00  0.00           C
ATOM      3  C   ALA A   1      13.140   5.856  -5.150  1.00  0.00           C
ATOM      4  O   ALA A   1      13.662   5.104  -5.979  1.00  0.00           O
ATOM      5  SG  CYS A   2      10.000   4.000  -3.000  1.00  0.00           S
END
"""


def test_procedural_specimen_is_reproducible_and_bounded() -> None:
    a, b = procedural_specimen(seed=4), procedural_specimen(seed=4)
    np.testing.assert_array_equal(a.coords_a, b.coords_a)
    assert not np.array_equal(a.coords_a, procedural_specimen(seed=5).coords_a)
    assert a.coords_a.dtype == np.float32 and a.coords_a.shape == (1500, 3)
    assert a.radius_a <= 2 * 45.0
    with pytest.raises(ValueError, match="n_residues"):
        procedural_specimen(seed=1, n_residues=0)


def test_specimen_from_model_weights_atoms_by_atomic_number(tmp_path: Path) -> None:
    (tmp_path / "m.pdb").write_text(PDB)
    specimen = specimen_from_model(tmp_path / "m.pdb")
    assert specimen.coords_a.shape == (5, 3)
    np.testing.assert_allclose(
        specimen.phase_rad_a2[[1, 4]] / specimen.phase_rad_a2[1], [1, 16 / 6]
    )
    (tmp_path / "bad.pdb").write_text("this is not a model")
    with pytest.raises(ValueError, match="path"):
        specimen_from_model(tmp_path / "bad.pdb")


def test_specimen_from_map_takes_the_voxels_above_threshold(tmp_path: Path) -> None:
    density = np.zeros((16, 16, 16), np.float32)
    density[4:8, 5:9, 6:10] = 1.0
    with mrcfile.new(tmp_path / "m.mrc") as mrc:
        mrc.set_data(density)
        mrc.voxel_size = 2.0
    specimen = specimen_from_map(tmp_path / "m.mrc", threshold=0.5 - 1e-3)
    assert specimen.coords_a.shape == (64, 3)
    np.testing.assert_allclose(np.ptp(specimen.coords_a, axis=0), [6.0, 6.0, 6.0])
    with pytest.raises(ValueError, match="threshold"):
        specimen_from_map(tmp_path / "m.mrc", threshold=5.0)
    (tmp_path / "junk.mrc").write_bytes(b"junk" * 400)
    with pytest.raises(ValueError, match="cannot read"):
        specimen_from_map(tmp_path / "junk.mrc")
    with mrcfile.new(tmp_path / "flat.mrc") as mrc:
        mrc.set_data(np.ones((4, 4), np.float32))
    with pytest.raises(ValueError, match="not a 3D map"):
        specimen_from_map(tmp_path / "flat.mrc")


def test_orientations_uniform_or_preferred() -> None:
    rng = np.random.default_rng(0)
    uniform = random_orientations(20000, rng)
    assert abs(np.cos(np.deg2rad(uniform[:, 1])).mean()) < 0.02
    preferred = random_orientations(20000, rng, preferred_view_kappa=20.0)
    assert np.median(preferred[:, 1]) < 20.0
    rot = euler_zyz_matrix(*uniform[:5].T)
    np.testing.assert_allclose(
        rot @ rot.transpose(0, 2, 1), np.broadcast_to(np.eye(3), (5, 3, 3)), atol=1e-12
    )
    with pytest.raises(ValueError, match="preferred_view_kappa"):
        random_orientations(3, rng, preferred_view_kappa=-1)


def test_two_species_particles_do_not_overlap(tmp_path: Path) -> None:
    config = VisitConfig(
        movies_per_grid=1, shape_px=(512, 512),
        specimens=(
            SpecimenSpec(seed=1, name="big"),
            SpecimenSpec(seed=2, radius_a=25, n_residues=300, name="small"),
        ),
        movie=MovieConfig(n_frames=2, particle_density=0.5),
    )  # fmt: skip
    movie = simulate_visit(config, tmp_path).grids[0].movies[0]
    xy = np.array([(p.x_px, p.y_px) for p in movie.particles])
    assert {p.species for p in movie.particles} == {"big", "small"}
    radius = max(procedural_specimen(seed=1).radius_a, 25.0)
    distances = np.hypot(*(xy[:, None, :] - xy[None, :, :]).transpose(2, 0, 1))
    np.fill_diagonal(distances, np.inf)
    assert distances.min() >= 2 * radius - 1e-6


def test_eer_visit_counts_match_the_dose(tmp_path: Path) -> None:
    config = VisitConfig(
        detector="falcon4i", shape_px=(128, 128), movies_per_grid=1,
        movie=MovieConfig(
            n_frames=4, eer_frames_per_fraction=50, particle_density=0.0, gain_spread=0.0,
            hot_pixel_fraction=0, dead_pixel_fraction=0, inelastic_mean_free_path_a=1e12,
        ),
    )  # fmt: skip
    movie = simulate_visit(config, tmp_path).grids[0].movies[0]
    assert movie.movie.endswith("_EER.eer") and movie.shape_px == (200, 128, 128)
    fractions = read_movie(tmp_path / movie.movie, eer_group=50)
    assert fractions.shape == (4, 128, 128)
    expected = movie.dose_per_frame_e_per_px * fractions.size
    assert abs(int(fractions.sum()) - expected) < 4 * np.sqrt(expected)


def test_cli_writes_a_visit_and_refuses_bad_faults(tmp_path: Path) -> None:
    runner = CliRunner()
    args = ["simulate", "--grids", "2", "--movies", "2", "--frames", "3", "--fault", "zero_byte=1"]
    result = runner.invoke(build_app(), [*args, str(tmp_path / "v")])
    assert result.exit_code == 0, result.output
    truth = VisitTruth.read(tmp_path / "v" / "truth.json")
    assert [g.raw_folder for g in truth.grids] == ["raw", "raw2"]
    assert {f.kind for f in truth.faults} == {"zero_byte"} and len(truth.faults) == 4
    bad = runner.invoke(build_app(), ["simulate", "--fault", "melted=0.1", str(tmp_path / "w")])
    assert bad.exit_code == 2 and "melted" in bad.output
    assert not (tmp_path / "w").exists()
    assert MovieConfig.model_validate(truth.config["movie"]) == MovieConfig(n_frames=3)


def test_cli_writes_the_easy_preset_and_refuses_an_unknown_one(tmp_path: Path) -> None:
    runner = CliRunner()
    args = ["simulate", "--movies", "1", "--frames", "2", "--preset", "easy"]
    result = runner.invoke(build_app(), [*args, str(tmp_path / "v")])
    assert result.exit_code == 0, result.output
    truth = VisitTruth.read(tmp_path / "v" / "truth.json")
    assert MovieConfig.model_validate(truth.config["movie"]) == MovieConfig.preset(
        "easy", n_frames=2
    )
    bad = runner.invoke(build_app(), ["simulate", "--preset", "hard", str(tmp_path / "w")])
    assert bad.exit_code == 2 and "preset" in bad.output and "easy" in bad.output
    assert not (tmp_path / "w").exists()


def test_eer_with_too_few_detector_frames_is_refused(tmp_path: Path) -> None:
    config = VisitConfig(
        detector="falcon4i", shape_px=(64, 64), movies_per_grid=1,
        movie=MovieConfig(n_frames=4, eer_frames_per_fraction=2),
    )  # fmt: skip
    with pytest.raises(ValueError, match="eer_frames_per_fraction"):
        simulate_visit(config, tmp_path)


def test_the_truth_map_holds_the_specimen_where_its_atoms_are(tmp_path: Path) -> None:
    from cryolive.io.maps import read_map
    from cryolive.simulate import write_truth_map

    specimen = procedural_specimen(seed=4)
    volume, voxel = read_map(write_truth_map(tmp_path / "truth" / "map.mrc", specimen))
    assert voxel == pytest.approx(2.0)
    # every atom's phase is in the map (smoothing spreads it, keeps it)
    assert volume.sum() * voxel**3 == pytest.approx(specimen.phase_rad_a2.sum(), rel=1e-3)
    # its centre of mass is the atoms' (the specimen is centred), in the box's centre
    grid = np.indices(volume.shape).reshape(3, -1)
    centre = (grid * volume.ravel()).sum(axis=1) / volume.sum()
    np.testing.assert_allclose(centre, volume.shape[0] // 2, atol=0.5)
    # and it is the specimen's shape: x extent from atoms matches the map's
    assert volume.shape[0] * voxel >= 2 * specimen.radius_a
