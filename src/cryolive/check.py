"""The daily check: compare what the pipeline recorded for a simulated visit with the truth
the simulator planted.

For every planted movie it finds the database's rows and says, per stage, whether there is
exactly one result (or, for a planted fault, a recorded failure and no result), and how far the
results are from the truth: CTF defocus error (Å and % of the defocus), whole-frame drift error
(RMSE, px, after both trajectories are put to zero at the first frame), and how well relative
ice thickness ranks the micrographs (Spearman).

It also checks how each movie was registered (:func:`check_registration`): every true movie
exactly once, with its own nominal defocus and dose, on the right foil hole and grid square
(Movie.foilHoleId → FoilHole.foilHoleLabel → GridSquare.gridSquareLabel → Atlas → the raw
folder's DataCollectionGroup), one DataCollection per raw folder and optics setting, and no
file that is not a movie (EPU's integrated image, a link to another visit's movie) registered.

When the simulator wrote the map its particles came from (``truth/map.mrc`` in the visit) and
a refinement of the visit exists, it reports the FSC of each refined map against the truth
(:func:`check_maps`): the truth is resampled to the refined map's voxel and box, aligned to it
(rotation search on either hand, then translation by cross-correlation) and compared; the
resolution where that FSC falls below 0.5 is the figure.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa
from ispyb.sqlalchemy import (
    CTF,
    Atlas,
    AutoProcProgramMessage,
    DataCollection,
    FoilHole,
    GridSquare,
    MotionCorrection,
    Movie,
)
from ispyb.sqlalchemy import RelativeIceThickness as Ice
from numpy.typing import NDArray
from scipy.spatial.transform import Rotation
from scipy.stats import spearmanr
from sqlalchemy.orm import Session

from cryolive.db.repo import recon3d
from cryolive.engines.recon3d import (
    fsc,
    orientation_grid,
    resolution_at,
    rotate_volume,
)
from cryolive.io.maps import read_map
from cryolive.io.outputs.recon3d import refinement_files

TRUTH_MAP = Path("truth") / "map.mrc"  # in a simulated visit: the map its particles came from

# The kinds of planted fault a movie cannot be processed through (others, such as a few
# saturated pixels, the pipeline is expected to correct and carry on).
BLOCKING_FAULTS = {
    "truncated",
    "zero_byte",
    "corrupt_xml",
    "wrong_frame_count",
    "nan_pixels",
    "unreadable",
    "missing_gain",
}


@dataclass
class RegistrationReport:
    """How the true movies (and the files that are no movies) of a visit were registered.

    Every list holds paths relative to the visit folder.
    """

    movies: int = 0
    not_registered: list[str] = field(default_factory=list)
    registered_twice: list[str] = field(default_factory=list)
    wrong_defocus: list[str] = field(default_factory=list)
    wrong_dose: list[str] = field(default_factory=list)
    wrong_foil_hole: list[str] = field(default_factory=list)
    wrong_grid_square: list[str] = field(default_factory=list)
    wrong_atlas: list[str] = field(default_factory=list)
    mixed_optics: list[str] = field(default_factory=list)
    non_movies_registered: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(
            getattr(self, name) for name in self.__dataclass_fields__ if name != "movies"
        )

    def summary(self) -> dict[str, Any]:
        return {
            f"registration_{name}": value if name == "movies" else len(value)
            for name, value in vars(self).items()
        } | {"registration_ok": self.ok}


@dataclass(frozen=True)
class MapCheck:
    """A refined map against the simulator's truth: resolutions (Å) where their FSC falls
    below 0.5 and 0.143, and the resolution the refinement reported."""

    map_path: str
    fsc_05_a: float
    fsc_0143_a: float
    reported_resolution_a: float | None


@dataclass
class CheckReport:
    movies: int = 0
    duplicates: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    planted_faults: list[str] = field(default_factory=list)
    recorded_failures: list[str] = field(default_factory=list)
    unexpected_failures: list[str] = field(default_factory=list)
    defocus_error_a: list[float] = field(default_factory=list)
    defocus_error_pct: list[float] = field(default_factory=list)
    drift_rmse_px: list[float] = field(default_factory=list)
    ice_spearman: float | None = None
    registration: RegistrationReport | None = None
    maps: list[MapCheck] = field(default_factory=list)

    @property
    def faults_match(self) -> bool:
        return sorted(self.planted_faults) == sorted(self.recorded_failures)

    def summary(self) -> dict[str, Any]:
        def median(values: list[float]) -> float | None:
            return float(np.median(values)) if values else None

        return {
            "movies": self.movies,
            "duplicates": len(self.duplicates),
            "missing": len(self.missing),
            "planted_faults": len(self.planted_faults),
            "recorded_failures": len(self.recorded_failures),
            "faults_match": self.faults_match,
            "unexpected_failures": len(self.unexpected_failures),
            "ctf_fitted": len(self.defocus_error_a),
            "median_defocus_error_a": median(self.defocus_error_a),
            "median_defocus_error_pct": median(self.defocus_error_pct),
            "median_drift_rmse_px": median(self.drift_rmse_px),
            "ice_spearman": self.ice_spearman,
            "refined_maps_checked": len(self.maps),
            "map_fsc_0.5_vs_truth_a": min((m.fsc_05_a for m in self.maps), default=None),
        } | ({} if self.registration is None else self.registration.summary())


def _rows(session: Session, model: Any, column: Any, ids: list[int]) -> dict[int, list[Any]]:
    found: dict[int, list[Any]] = {}
    for row in session.scalars(sa.select(model).where(column.in_(ids))) if ids else []:
        found.setdefault(int(getattr(row, column.key)), []).append(row)
    return found


def _drift_rmse(path: str | None, truth: dict[str, Any]) -> float | None:
    if not path or not Path(path).is_file():
        return None
    data = json.loads(Path(path).read_text())["data"][0]
    got = np.stack([data["x"], data["y"]], axis=1)
    want = np.stack([truth["drift_x_px"], truth["drift_y_px"]], axis=1)
    if got.shape != want.shape:
        return None
    got, want = got - got[0], want - want[0]
    return float(np.sqrt(np.mean(np.sum((got - want) ** 2, axis=1))))


def check_visit(session: Session, *, visit_dir: Path) -> CheckReport:
    truth = json.loads((visit_dir / "truth.json").read_text())
    report = CheckReport()
    blocking = {f["path"] for f in truth["faults"] if f["kind"] in BLOCKING_FAULTS}
    movie_of_xml = {}
    for grid in truth["grids"]:
        for m in grid["movies"]:
            movie_of_xml[m.get("metadata")] = m["movie"]
    blocking = {movie_of_xml.get(p, p) for p in blocking}
    report.planted_faults = sorted(blocking)
    ice_pairs: list[tuple[float, float]] = []
    for grid in truth["grids"]:
        planted = {str(visit_dir / m["movie"]): m for m in grid["movies"]}
        movies = session.scalars(sa.select(Movie).where(Movie.movieFullPath.in_(list(planted))))
        by_path: dict[str, list[Any]] = {}
        for movie in movies:
            by_path.setdefault(movie.movieFullPath, []).append(movie)
        ids = [m.movieId for rows in by_path.values() for m in rows]
        mcs = _rows(session, MotionCorrection, MotionCorrection.movieId, ids)
        mc_ids = [mc.motionCorrectionId for rows in mcs.values() for mc in rows]
        ctfs = _rows(session, CTF, CTF.motionCorrectionId, mc_ids)
        ices = _rows(session, Ice, Ice.motionCorrectionId, mc_ids)
        failures = {
            m.description.split(": ", 1)[0]
            for m in session.scalars(
                sa.select(AutoProcProgramMessage).where(AutoProcProgramMessage.severity == "ERROR")
            )
            if m.description
        }
        for path, t in planted.items():
            report.movies += 1
            relative = t["movie"]
            rows = by_path.get(path, [])
            if path in failures:
                (
                    report.recorded_failures if relative in blocking else report.unexpected_failures
                ).append(relative)
                continue
            if len(rows) != 1:
                (report.duplicates if rows else report.missing).append(relative)
                continue
            mc = mcs.get(rows[0].movieId, [])
            if len(mc) != 1:
                (report.duplicates if mc else report.missing).append(relative)
                continue
            ctf, ice = (
                ctfs.get(mc[0].motionCorrectionId, []),
                ices.get(mc[0].motionCorrectionId, []),
            )
            if len(ctf) > 1 or len(ice) > 1:
                report.duplicates.append(relative)
            if not ctf or not ice:
                report.missing.append(relative)
            rmse = _drift_rmse(mc[0].driftPlotFullPath, t)
            if rmse is not None:
                report.drift_rmse_px.append(rmse)
            if ctf:
                true_defocus = (t["defocus_u_a"] + t["defocus_v_a"]) / 2
                error = abs(float(ctf[0].estimatedDefocus) - true_defocus)
                report.defocus_error_a.append(error)
                report.defocus_error_pct.append(100 * error / true_defocus)
            if ice:
                ice_pairs.append((float(ice[0].median), float(t["ice_thickness"]["mean_a"])))
    if len(ice_pairs) >= 3:
        rho = spearmanr([p[0] for p in ice_pairs], [p[1] for p in ice_pairs]).statistic
        report.ice_spearman = float(rho)
    report.registration = check_registration(session, visit_dir=visit_dir)
    report.maps = check_maps(session, visit_dir=visit_dir)
    return report


def _resample(
    volume: NDArray[np.floating], voxel_a: float, box: int, target_a: float
) -> NDArray[np.float64]:
    """``volume`` at ``target_a`` per voxel (Fourier cropping or padding), centred in ``box``."""
    n = volume.shape[0]
    m = max(2, round(n * voxel_a / target_a / 2) * 2)
    spectrum = np.fft.fftshift(np.fft.fftn(np.asarray(volume, np.float64)))
    out = np.zeros((m, m, m), complex)
    k = min(n, m)
    a, b = n // 2 - k // 2, m // 2 - k // 2
    out[b : b + k, b : b + k, b : b + k] = spectrum[a : a + k, a : a + k, a : a + k]
    resized = np.fft.ifftn(np.fft.ifftshift(out)).real * (m / n) ** 3
    placed = np.zeros((box, box, box))
    k = min(m, box)
    a, b = m // 2 - k // 2, box // 2 - k // 2
    placed[b : b + k, b : b + k, b : b + k] = resized[a : a + k, a : a + k, a : a + k]
    return placed


def _shifted_onto(
    reference: NDArray[np.float64], moving: NDArray[np.float64]
) -> tuple[float, NDArray[np.float64]]:
    """``moving`` moved (whole voxels, circularly) to its best cross-correlation with
    ``reference``; (that correlation, the moved map)."""
    cc = np.fft.irfftn(
        np.fft.rfftn(reference) * np.conj(np.fft.rfftn(moving)), s=reference.shape, axes=(0, 1, 2)
    )
    shift = np.unravel_index(int(np.argmax(cc)), cc.shape)
    moved = np.roll(moving, shift, axis=(0, 1, 2))
    a, b = reference - reference.mean(), moved - moved.mean()
    return float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum() + 1e-30)), moved


def _low_pass(volume: NDArray[np.float64], shells: float) -> NDArray[np.float64]:
    n = volume.shape[0]
    k = np.fft.fftfreq(n, d=1.0 / n)
    r2 = k[:, None, None] ** 2 + k[None, :, None] ** 2 + np.arange(n // 2 + 1)[None, None, :] ** 2
    return np.fft.irfftn(
        np.fft.rfftn(volume) * np.exp(-r2 / (2 * shells**2)), s=volume.shape, axes=(0, 1, 2)
    )


def _mirrored(volume: NDArray[np.floating]) -> NDArray[np.float64]:
    """``volume`` mirrored in z about the centre voxel ``box // 2`` (the centre rotations
    turn about), so that a mirror then a rotation needs no sub-voxel shift."""
    flipped = np.asarray(volume, np.float64)[::-1]
    return np.roll(flipped, 1 - volume.shape[0] % 2, axis=0)


def align_to(
    reference: NDArray[np.floating], moving: NDArray[np.floating], *, step_deg: float = 30.0
) -> NDArray[np.float64]:
    """``moving`` rotated (either hand) and shifted onto ``reference`` (same box): a search
    over :func:`orientation_grid` on low-passed maps at box 16, then three finer searches
    (7.5°, 2.5°, 0.8° steps) around the best at the full box."""
    ref = np.asarray(reference, np.float64)
    n = ref.shape[0]
    small = min(n, 16)
    low_ref = _low_pass(_resample(ref, 1.0, small, n / small), small / 6)
    best: tuple[float, NDArray[np.float64], bool] = (-2.0, np.eye(3), False)
    for mirrored in (False, True):
        volume = _mirrored(moving) if mirrored else np.asarray(moving, np.float64)
        low = _low_pass(_resample(volume, 1.0, small, n / small), small / 6)
        for rotation in orientation_grid(step_deg):
            score, _ = _shifted_onto(low_ref, rotate_volume(low, rotation).astype(np.float64))
            if score > best[0]:
                best = (score, rotation, mirrored)
    _, rotation, mirrored = best
    volume = _mirrored(moving) if mirrored else np.asarray(moving, np.float64)
    aligned = volume
    for fine in (7.5, 2.5, 0.8):
        offsets = np.radians(np.arange(-2, 3) * fine)
        steps = Rotation.from_rotvec([(a, b, c) for a in offsets for b in offsets for c in offsets])
        scored = [
            (
                *_shifted_onto(ref, rotate_volume(volume, rotation @ r).astype(np.float64)),
                rotation @ r,
            )
            for r in steps.as_matrix()
        ]
        _, aligned, rotation = max(scored, key=lambda item: item[0])
    return aligned


def map_fsc_vs_truth(
    refined: NDArray[np.floating],
    refined_voxel_a: float,
    truth: NDArray[np.floating],
    truth_voxel_a: float,
) -> NDArray[np.float64]:
    """FSC of a refined map against the truth map resampled onto its grid and aligned to it."""
    box = refined.shape[0]
    placed = _resample(truth, truth_voxel_a, box, refined_voxel_a)
    aligned = align_to(refined, placed)
    return np.asarray(fsc(np.asarray(refined, np.float64), aligned), np.float64)


def check_maps(session: Session, *, visit_dir: Path) -> list[MapCheck]:
    """Each refinement of the visit's data collections against ``truth/map.mrc`` (none when
    the simulator wrote no truth map)."""
    truth_path = visit_dir / TRUTH_MAP
    if not truth_path.is_file():
        return []
    truth, truth_voxel = read_map(truth_path)
    inside = str(visit_dir.resolve()) + "/"
    collections = session.scalars(
        sa.select(DataCollection.dataCollectionId).where(
            DataCollection.imageDirectory.like(f"{inside}%")
        )
    ).all()
    checks = []
    for dc in collections:
        for refinement in recon3d.results_3d(session, data_collection_id=int(dc)).refinements:
            found = recon3d.map_of(
                session, particle_classification_id=refinement.particle_classification_id
            )
            if found is None or not found.path:
                continue
            files = refinement_files(Path(found.path))
            path = files.refined_map if files.refined_map.is_file() else files.postprocess_map
            if not path.is_file():
                continue
            refined, voxel = read_map(path)
            curve = map_fsc_vs_truth(refined, voxel, truth, truth_voxel)
            box = refined.shape[0]
            checks.append(
                MapCheck(
                    map_path=str(path),
                    fsc_05_a=resolution_at(curve, box, voxel, 0.5),
                    fsc_0143_a=resolution_at(curve, box, voxel, 0.143),
                    reported_resolution_a=refinement.resolution_a,
                )
            )
    return checks


_RELATIVE = 1e-3  # the database stores FLOAT (single precision)


def _close(got: float | None, want: float) -> bool:
    return got is not None and abs(float(got) - want) <= _RELATIVE * max(abs(want), 1.0)


def _chunks(items: list[str], size: int = 500) -> list[list[str]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def check_registration(session: Session, *, visit_dir: Path) -> RegistrationReport:
    """Compare the Movie rows (and their foil holes, grid squares, atlas and data
    collections) with the simulator's truth of ``visit_dir``.

    A movie's optics group is its raw folder, pixel size, voltage and frame count: the
    movies of one group must share one DataCollection, two groups never; and all data
    collections of a raw folder share its one DataCollectionGroup, on which its Atlas hangs.
    """
    truth = json.loads((visit_dir / "truth.json").read_text())
    report = RegistrationReport()
    for grid in truth["grids"]:
        planted = {str(visit_dir / m["movie"]): m for m in grid["movies"]}
        rows: dict[str, list[Any]] = {}
        for chunk in _chunks(list(planted)):
            for movie in session.scalars(sa.select(Movie).where(Movie.movieFullPath.in_(chunk))):
                rows.setdefault(movie.movieFullPath, []).append(movie)
        holes = _hole_chain(session, [m.foilHoleId for r in rows.values() for m in r])
        collections = {
            dc.dataCollectionId: dc
            for dc in session.scalars(
                sa.select(DataCollection).where(
                    DataCollection.dataCollectionId.in_(
                        {m.dataCollectionId for r in rows.values() for m in r}
                    )
                )
            )
        }
        groups: dict[tuple[Any, ...], set[int]] = {}
        collection_groups: dict[int, set[tuple[Any, ...]]] = {}
        folder_groups: set[int | None] = set()
        for path, t in planted.items():
            report.movies += 1
            relative = t["movie"]
            found = rows.get(path, [])
            if not found:
                report.not_registered.append(relative)
                continue
            if len(found) > 1:
                report.registered_twice.append(relative)
            row = found[0]
            if not _close(row.nominalDefocus, t["nominal_defocus_a"]):
                report.wrong_defocus.append(relative)
            if not _close(row.fluence, t["dose_e_per_a2"]):
                report.wrong_dose.append(relative)
            optics = (round(t["pixel_size_a"], 3), t["voltage_kv"], t["shape_px"][0])
            groups.setdefault(optics, set()).add(row.dataCollectionId)
            collection_groups.setdefault(row.dataCollectionId, set()).add(optics)
            collection = collections.get(row.dataCollectionId)
            group_id = None if collection is None else collection.dataCollectionGroupId
            folder_groups.add(group_id)
            if t.get("foil_hole") is None:
                continue
            hole, square, atlas = holes.get(row.foilHoleId, (None, None, None))
            if hole is None or str(hole.foilHoleLabel) != str(t["foil_hole"]):
                report.wrong_foil_hole.append(relative)
            elif square is None or int(square.gridSquareLabel or -1) != t["grid_square"]:
                report.wrong_grid_square.append(relative)
            elif atlas is None or atlas.dataCollectionGroupId != group_id:
                report.wrong_atlas.append(relative)
        split = [o for o, ids in groups.items() if len(ids) > 1]
        shared = [c for c, optics in collection_groups.items() if len(optics) > 1]
        if split or shared or len(folder_groups) > 1:
            report.mixed_optics.append(grid["raw_folder"])
        for item in grid.get("non_movies", []):
            link = visit_dir / item["path"]
            names = {str(link), str(link.resolve())} if link.is_symlink() else {str(link)}
            if session.scalar(sa.select(sa.func.count()).where(Movie.movieFullPath.in_(names))):
                report.non_movies_registered.append(item["path"])
    return report


def _hole_chain(session: Session, hole_ids: list[int | None]) -> dict[int, tuple[Any, Any, Any]]:
    """FoilHole id -> (FoilHole, its GridSquare, its Atlas), any of them None when absent."""
    wanted = {i for i in hole_ids if i is not None}
    if not wanted:
        return {}
    query = (
        sa.select(FoilHole, GridSquare, Atlas)
        .join(GridSquare, GridSquare.gridSquareId == FoilHole.gridSquareId, isouter=True)
        .join(Atlas, Atlas.atlasId == GridSquare.atlasId, isouter=True)
        .where(FoilHole.foilHoleId.in_(wanted))
    )
    return {
        hole.foilHoleId: (hole, square, atlas) for hole, square, atlas in session.execute(query)
    }
