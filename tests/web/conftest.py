"""A small facility for web tests, on SQLite and on MariaDB.

Visit ``bi10001-1`` (microscope m02) has member alice and one processed data collection
(``raw``: 12 movies with motion correction, CTF, ice and picks, real PNG and drift JSON files
in the visit's processed folder, ``<root>/bi10001-1/processed/raw``) and a second one (``raw2``)
whose recorded files lie outside the visit. Visit ``bi10002-1`` (m03) has member bob and one
data collection whose movie's snapshot is recorded as a file of visit ``bi10001-1``. Visit
folders are ``<root>/<visit>`` (``root``: a temporary folder). carol is staff. Everyone's
password is ``password-<login>``. Tests get the world's ids (:class:`World`) and logged-in
clients.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import struct
import uuid
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
import starfile
from fastapi import FastAPI
from fastapi.testclient import TestClient
from ispyb.sqlalchemy import MotionCorrection, Movie, ParticleClassification, ParticlePicker
from sqlalchemy.orm import Session

from cryolive.config import Settings, WebSettings
from cryolive.db import make_engine, upgrade
from cryolive.db.repo import classes, collections, grid, recon3d, results, visits
from cryolive.db.repo.pipeline import write_failures
from cryolive.engines.recon3d import phantom
from cryolive.io.maps import write_map
from cryolive.messaging import open_transport
from cryolive.messaging.envelope import Envelope
from cryolive.records import (
    BFactorPoint,
    Class3DRecord,
    Class3DValues,
    CtfRecord,
    FailureRecord,
    IceThicknessRecord,
    InitialModelValues,
    MotionCorrectionRecord,
    MovieRecord,
    MovieRef,
    RefinementRecord,
)
from cryolive.web import create_app
from cryolive.web.bundle import PARTIAL, partial_bundle

ROLES = ("anonymous", "outsider", "member", "staff")
LOGINS = {"outsider": "bob", "member": "alice", "staff": "carol"}
MOVIES = 12
START = dt.datetime(2026, 11, 20, 9, 0, 0)
TEST_SECRET = "tests-only: 9mXq2V7rLk4sTz8bWc1yNh6dJf3gPa5e"  # 40 bytes, not a known one


def png(path: Path, *, size: int = 96, seed: int = 0) -> None:
    """A real grayscale PNG: a diagonal gradient with a disc, different per ``seed``."""
    rows = []
    for y in range(size):
        row = bytearray([0])  # filter type: none
        for x in range(size):
            inside = (x - size / 2) ** 2 + (y - size / 2) ** 2 < (size / 4 + seed) ** 2
            row.append(255 if inside else (x + y + 13 * seed) % 256)
        rows.append(bytes(row))

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", size, size, 8, 0, 0, 0, 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"".join(rows)))
        + chunk(b"IEND", b"")
    )


def ctf_files(
    out: Path, stem: str, *, defocus_a: float, resolution_a: float, reason: str | None = None
) -> None:
    """``<stem>_ctf_curves.json`` and ``<stem>_ctf.json`` as the CTF stage writes them, for a
    300 kV fit of ``defocus_a`` (Å) that holds to ``resolution_a`` (Å): 120 points from 1/30 to
    1/2.5 Å⁻¹, the model sin²χ under a B = 60 Å² envelope, the data the model plus noise; with
    ``reason``, a best guess that is not trusted."""
    wavelength_a = 0.0197  # 300 kV
    frequency = np.linspace(1 / 30, 1 / 2.5, 120)
    chi = np.pi * wavelength_a * defocus_a * frequency**2
    fit = np.exp(-15.0 * frequency**2) * np.sin(chi) ** 2
    noise = np.random.default_rng(int(defocus_a)).normal(0.0, 0.05, frequency.size)
    curves = {
        "frequency_per_a": frequency.round(6).tolist(),
        "data": (fit + noise).round(6).tolist(),
        "fit": fit.round(6).tolist(),
        "cc": np.where(frequency < 1 / resolution_a, 0.9, 0.1).tolist(),
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stem}_ctf_curves.json").write_text(json.dumps(curves))
    summary: dict[str, object] = {"status": "ok" if reason is None else "not-trusted"}
    if reason is not None:
        summary["reason"] = reason
    summary["result"] = {"fit_resolution_a": resolution_a, "defocus_a": defocus_a}
    (out / f"{stem}_ctf.json").write_text(json.dumps(summary))


@dataclass(frozen=True)
class World:
    url: str
    root: Path
    visit: str
    other_visit: str
    session_id: int
    data_collection_id: int
    outside_collection_id: int
    movie_ids: list[int]
    outside_movie_id: int
    motion_program_id: int
    failed_program_id: int
    class_ids: list[int]  # ParticleClassification ids of the newest batch 1, by class number
    outside_class_id: int  # its image is recorded outside the visit
    foreign_movie_id: int  # of visit bi10002-1; its snapshot is recorded as one of bi10001-1
    broker_url: str = ""
    grid_square_id: int = 0  # square 7 of raw's atlas (holes 71, 72: movies 0-7)
    foil_hole_id: int = 0  # hole 71 (movies 0-3)
    refinement_id: int = 0  # raw's refined map (ParticleClassification id), with its files
    class3d_id: int = 0  # class 1 of raw's 3D run (selected, refined)
    outside_map_id: int = 0  # class 2 of that run: its map is recorded outside the visit

    @property
    def processed(self) -> Path:
        """The folder of the processed collection's files (PNG, drift JSON)."""
        return self.root / self.visit / "processed" / "raw"

    def settings(self, **web: object) -> Settings:
        """Settings for an app on this world; the shared apps allow many failed logins and
        reprocess requests."""
        web = {
            "login_attempts": 1000,
            "client_login_attempts": 1000,
            "reprocess_open_per_collection": 1000,
            "reprocess_per_user_hour": 1000,
            "visit_folder": f"{self.root}/{{visit}}",
            "secret": TEST_SECRET,
            **web,
        }
        return Settings(
            database_url=self.url,
            processing_root=self.root,
            data_root=self.root.parent,
            web=WebSettings(live_interval_s=0.2, **web),  # type: ignore[arg-type]
        )

    def dead_letter(self, queue: str = "motioncorr", *, key: str = "") -> str:
        """A new dead letter in ``queue`` of the world's embedded broker; its message id."""
        body = Envelope.model_validate(
            {
                "key": key or f"movie-{uuid.uuid4().hex[:6]}",
                "recipe": {
                    "name": "spa-preprocess",
                    "start": ["motioncorr"],
                    "steps": {"motioncorr": {"service": "motioncorr", "queue": queue}},
                },
                "step": "motioncorr",
            }
        )
        open_transport(self.broker_url).dead_letter(
            queue, body.to_bytes(), reason="motioncorr: movie truncated"
        )
        return body.message_id

    def requested_job(self) -> int:
        """A new, not yet started reprocess request on the processed collection (committed)."""
        engine = make_engine(self.url)
        with Session(engine) as session, session.begin():
            _, program = collections.register_processing_job(
                session,
                data_collection_id=self.data_collection_id,
                recipe="spa-preprocess",
                request_key=uuid.uuid4().hex,
                parameters={"pixel_size_a": 1.0},
                automatic=False,
            )
        engine.dispose()
        return program


def _programs(session: Session, dc: int) -> list[int]:
    return [
        collections.register_processing_job(
            session, data_collection_id=dc, recipe=r, request_key="auto", parameters={"stage": r}
        )[1]
        for r in ("motioncorr", "ctf", "ice", "picker")
    ]


def _fill(session: Session, root: Path) -> World:
    people = {}
    for login in ("alice", "bob", "carol"):
        pid = visits.ensure_person(session, login=login, given_name=login.title())
        visits.set_password(session, person_id=pid, password=f"password-{login}")
        people[login] = pid
    visits.make_staff(session, person_id=people["carol"])
    sid = visits.ensure_visit(session, visit="bi10001-1", microscope="m02", start=START)
    other = visits.ensure_visit(session, visit="bi10002-1", microscope="m03", start=START)
    visits.add_member(session, session_id=sid, person_id=people["alice"], role="Team Member")
    visits.add_member(session, session_id=other, person_id=people["bob"], role="Team Member")

    def dc(folder: str) -> int:
        spec = collections.DataCollectionSpec(
            session_id=sid,
            image_directory=f"{root}/bi10001-1/{folder}/",
            file_template="GridSquare_*/Data/*_fractions.tiff",
            voltage_kv=300,
            pixel_size_a=0.83,
            total_exposed_dose_e_per_a2=50,
        )
        return collections.register_data_collection(session, spec=spec)[1]

    dc_id, outside_id = dc("raw"), dc("raw2")
    holes = _grid(session, root, dc_id)
    mc, ctf, ice, picker = _programs(session, dc_id)
    out = root / "bi10001-1" / "processed" / "raw"
    movies, mcs, ctfs, ices = [], [], [], []
    for i in range(MOVIES):
        ref = MovieRef(data_collection_id=dc_id, movie_full_path=f"/data/raw/FoilHole_{i}.tiff")
        for kind, seed in (("snapshot", i), ("fft", i + 1), ("picks", i + 3)):
            png(out / f"{kind}_{i}.png", seed=seed % 9)
        png(out / f"FoilHole_{i}_ctf_diag.png", seed=(i + 2) % 9)
        ctf_files(out, f"FoilHole_{i}", defocus_a=15_000.0 + 1_000 * i, resolution_a=3.0 + 0.25 * i)
        drift = {"data": [{"x": [0.0, 0.5 * i, 1.0 * i], "y": [0.0, 0.2, 0.3 + i]}]}
        (out / f"drift_{i}.json").write_text(json.dumps(drift))
        movies.append(
            MovieRecord(
                movie=ref,
                movie_number=i + 1,
                created=START + dt.timedelta(minutes=i),
                foil_hole_id=holes[(71, 72, 81)[min(i // 4, 2)]],
            )
        )
        mcs.append(
            MotionCorrectionRecord(
                movie=ref,
                auto_proc_program_id=mc,
                total_motion_a=10.0 + i,
                drift_plot_full_path=str(out / f"drift_{i}.json"),
                micrograph_snapshot_full_path=str(out / f"snapshot_{i}.png"),
                fft_full_path=str(out / f"fft_{i}.png"),
            )
        )
        ctfs.append(
            CtfRecord(
                movie=ref,
                motion_correction_program_id=mc,
                auto_proc_program_id=ctf,
                estimated_defocus_a=15_000.0 + 1_000 * i,
                estimated_resolution_a=3.0 + 0.25 * i,
                astigmatism_a=100.0,
                fft_theoretical_full_path=str(out / f"FoilHole_{i}_ctf_diag.png"),
            )
        )
        ice_value = 0.5 + 0.01 * i
        ices.append(
            IceThicknessRecord(
                movie=ref,
                motion_correction_program_id=mc,
                auto_proc_program_id=ice,
                minimum=0.1,
                q1=0.3,
                median=ice_value,
                q3=0.7,
                maximum=0.9,
            )
        )
    results.write_result_sets(session, movies=movies, motion_corrections=mcs, ctfs=ctfs, ice=ices)
    keys = [(dc_id, m.movie.movie_full_path, mc) for m in movies]
    mc_ids = results.motion_correction_ids(session, keys=keys)
    for i, key in enumerate(keys):
        session.add(
            ParticlePicker(
                programId=picker,
                firstMotionCorrectionId=mc_ids[key],
                numberOfParticles=100 + i,
                summaryImageFullPath=str(out / f"picks_{i}.png"),
            )
        )
    session.flush()
    last_picker = session.scalars(
        sa.select(ParticlePicker.particlePickerId).order_by(ParticlePicker.particlePickerId.desc())
    ).first()
    _, class2d = collections.register_processing_job(
        session, data_collection_id=dc_id, recipe="class2d", request_key="auto", parameters={}
    )
    for batch_try, particles in ((0, 500), (1, 1200)):  # batch 1 classified twice: newest shown
        values = [
            classes.ClassValues(
                class_number=n,
                image_full_path=str(out / f"class_{batch_try}_{n}.png")
                if n < 4
                else f"{root}/../secret.png",
                particles=particles // (n + 1),
                distribution=1 / (n + 1),
                resolution_a=[None, 12.0, 8.5, 20.0, 15.0][n],
                selected=n in (2, 3),
            )
            for n in range(1, 5)
        ]
        for n in range(1, 4):
            png(out / f"class_{batch_try}_{n}.png", seed=n + 4)
        classes.write_classification(
            session,
            program_id=class2d,
            particle_picker_id=int(last_picker) - (1 - batch_try),
            batch_number=1,
            particles_in_batch=particles,
            classes_in_batch=4,
            binned_pixel_size_a=3.32,
            classes=values,
            # the first classification ran at 09:20 for 42 s, the second at 09:40 for 95 s
            started_at=START + dt.timedelta(minutes=20 + 20 * batch_try),
            duration_s=42.0 + 53 * batch_try,
        )
    map_ids = _recon3d(session, out, picker=int(last_picker), program=class2d)
    write_failures(
        session,
        records=[
            FailureRecord(
                movie=movies[-1].movie,
                auto_proc_program_id=ctf,
                stage="ctf",
                reason="blank",
                message="no Thon rings: the micrograph is blank",
            )
        ],
    )
    now = START + dt.timedelta(hours=1)
    for program in (mc, ctf, ice, picker, class2d):
        collections.start_program(session, auto_proc_program_id=program, when=START)
        collections.finish_program(
            session, auto_proc_program_id=program, success=True, message="done", when=now
        )

    # raw2: one movie whose files are recorded outside the visit
    png(root.parent / "secret.png")
    (mc2,) = _programs(session, outside_id)[:1]
    ref = MovieRef(data_collection_id=outside_id, movie_full_path="/data/raw2/FoilHole_0.tiff")
    results.write_result_sets(
        session,
        movies=[MovieRecord(movie=ref, movie_number=1)],
        motion_corrections=[
            MotionCorrectionRecord(
                movie=ref,
                auto_proc_program_id=mc2,
                micrograph_snapshot_full_path=f"{root}/bi10001-1/../../secret.png",
                fft_full_path="/etc/passwd",
            )
        ],
    )
    collections.finish_program(
        session, auto_proc_program_id=mc2, success=False, message="gain file missing", when=now
    )
    # bi10002-1: a movie whose snapshot is recorded as a file of bi10001-1
    foreign = collections.register_data_collection(
        session,
        spec=collections.DataCollectionSpec(
            session_id=other,
            image_directory=f"{root}/bi10002-1/raw/",
            file_template="*.tiff",
            voltage_kv=300,
            pixel_size_a=0.83,
            total_exposed_dose_e_per_a2=50,
        ),
    )[1]
    (mc3,) = _programs(session, foreign)[:1]
    ref = MovieRef(data_collection_id=foreign, movie_full_path=f"{root}/bi10002-1/raw/0.tiff")
    results.write_result_sets(
        session,
        movies=[MovieRecord(movie=ref, movie_number=1)],
        motion_corrections=[
            MotionCorrectionRecord(
                movie=ref,
                auto_proc_program_id=mc3,
                micrograph_snapshot_full_path=str(out / "snapshot_0.png"),
            )
        ],
    )
    collections.add_program_message(
        session, auto_proc_program_id=mc2, severity="ERROR", message="no gain reference found"
    )
    return World(
        url="",
        root=root,
        visit="bi10001-1",
        other_visit="bi10002-1",
        session_id=sid,
        data_collection_id=dc_id,
        outside_collection_id=outside_id,
        movie_ids=[],
        outside_movie_id=0,
        motion_program_id=mc,
        failed_program_id=mc2,
        class_ids=[],
        outside_class_id=0,
        foreign_movie_id=0,
        grid_square_id=holes[7],
        foil_hole_id=holes[71],
        **map_ids,
    )


def _recon3d(session: Session, out: Path, *, picker: int, program: int) -> dict[str, int]:
    """raw's 3D results, written directly (not by the engines): a 3D run of 700 particles with
    two classes (class 2's map recorded outside the visit) and the refinement of class 1 with
    its files: maps (box 24), mask, half maps, run_data.star, postprocess.star with FSC
    curves, and B-factor points of 350 and 700 particles."""
    rng = np.random.default_rng(5)
    run = out / "Class3D" / "job017" / "run_001" / "Class3D"
    refine = out / "Refine3D" / "job018" / "run_001_class001"
    truth = phantom(24, rng)
    write_map(run / "class001.mrc", truth, pixel_size_a=3.6)
    angles = np.column_stack([rng.uniform(-180, 180, 700), rng.uniform(0, 180, 700), np.zeros(700)])
    rows = pd.DataFrame(
        {
            "rlnImageName": [f"{i + 1:06d}@particles.mrcs" for i in range(700)],
            "rlnAngleRot": angles[:, 0],
            "rlnAngleTilt": angles[:, 1],
            "rlnAnglePsi": angles[:, 2],
            "rlnClassNumber": [1] * 400 + [2] * 300,
        }
    )
    starfile.write({"particles": rows}, run / "run_data.star", overwrite=True)
    for name in ("refined", "half1", "half2"):
        write_map(refine / "Refine" / f"{name}.mrc", truth, pixel_size_a=3.6)
    starfile.write(
        {"particles": rows.drop(columns="rlnClassNumber")[:400]},
        refine / "Refine" / "run_data.star",
        overwrite=True,
    )
    write_map(refine / "PostProcess" / "postprocess.mrc", truth, pixel_size_a=3.6)
    write_map(refine / "PostProcess" / "mask.mrc", (truth > 0).astype(np.float32), pixel_size_a=3.6)
    s = np.arange(13) / (24 * 3.6)
    starfile.write(
        {
            "general": pd.DataFrame(
                {"rlnFinalResolution": [9.5], "rlnBfactorUsedForSharpening": [-80.0]}
            ),
            "fsc": pd.DataFrame(
                {
                    "rlnSpectralIndex": np.arange(13),
                    "rlnResolution": s,
                    "rlnFourierShellCorrelationCorrected": np.clip(1.2 - s * 12, 0, 1),
                    "rlnFourierShellCorrelationMaskedMaps": np.clip(1.25 - s * 12, 0, 1),
                    "rlnFourierShellCorrelationUnmaskedMaps": np.clip(1.1 - s * 12, 0, 1),
                }
            ),
        },
        refine / "PostProcess" / "postprocess.star",
        overwrite=True,
    )
    found = session.execute(
        sa.select(Movie.dataCollectionId, Movie.movieFullPath)
        .join(MotionCorrection, MotionCorrection.movieId == Movie.movieId)
        .join(
            ParticlePicker,
            ParticlePicker.firstMotionCorrectionId == MotionCorrection.motionCorrectionId,
        )
        .where(ParticlePicker.particlePickerId == picker)
    ).one()
    ref = MovieRef(data_collection_id=int(found[0]), movie_full_path=str(found[1]))
    group = recon3d.write_class3d(
        session,
        record=Class3DRecord(
            movie=ref,
            auto_proc_program_id=program,
            run_number=1,
            particles=700,
            symmetry="C1",
            binned_pixel_size_a=3.6,
            initial_model=InitialModelValues(particles=700, resolution_a=25.0),
            classes=[
                Class3DValues(
                    class_number=1,
                    map_full_path=str(run / "class001.mrc"),
                    particles=400,
                    distribution=400 / 700,
                    resolution_a=11.0,
                    angular_efficiency=0.8,
                    selected=True,
                ),
                Class3DValues(
                    class_number=2,
                    map_full_path=f"{out}/../../../secret.mrc",
                    particles=300,
                    distribution=300 / 700,
                    resolution_a=24.0,
                    angular_efficiency=0.1,
                ),
            ],
        ),
        particle_picker_id=picker,
    )
    refinement = recon3d.write_refinement(
        session,
        record=RefinementRecord(
            movie=ref,
            auto_proc_program_id=program,
            run_number=1,
            class_number=1,
            particles=400,
            symmetry="C1",
            pixel_size_a=3.6,
            map_full_path=str(refine / "PostProcess" / "postprocess.mrc"),
            resolution_a=9.5,
            angular_efficiency=0.8,
            bfactor_points=[
                BFactorPoint(particles=200, resolution_a=12.0),
                BFactorPoint(particles=400, resolution_a=9.5),
            ],
        ),
        particle_picker_id=picker,
    )
    class_ids = session.scalars(
        sa.select(ParticleClassification.particleClassificationId)
        .where(ParticleClassification.particleClassificationGroupId == group)
        .order_by(ParticleClassification.classNumber)
    ).all()
    return {"refinement_id": refinement, "class3d_id": class_ids[0], "outside_map_id": class_ids[1]}


def _grid(session: Session, root: Path, dc_id: int) -> dict[int, int]:
    """raw's grid: an atlas (PNG in the visit's atlas folder) with squares 7 and 8, holes 71
    and 72 on square 7 (its PNG in the raw folder) and 81 on square 8; ids by label."""
    visit = root / "bi10001-1"
    atlas_png = visit / "atlas" / "Sample1" / "Atlas_1.png"
    square_png = visit / "raw" / "Images-Disc1" / "GridSquare_7" / "GridSquare_1.png"
    png(atlas_png, size=200)
    png(square_png, size=120, seed=2)
    group = grid.group_of(session, data_collection_id=dc_id)
    atlas = grid.ensure_atlas(
        session,
        data_collection_group_id=group,
        row=grid.AtlasRow(image=str(atlas_png), pixel_size_a=3400.0),
    )
    squares = grid.write_grid_squares(
        session,
        atlas_id=atlas,
        rows=[
            grid.GridSquareRow(label=7, x_px=50, y_px=60, width_px=30, height_px=30,
                               image=str(square_png)),
            grid.GridSquareRow(label=8, x_px=140, y_px=120, width_px=30, height_px=30),
        ],
    )  # fmt: skip
    on_7 = grid.write_foil_holes(
        session,
        grid_square_id=squares[7],
        rows=[
            grid.FoilHoleRow(label=71, x_px=30, y_px=30, diameter_px=20),
            grid.FoilHoleRow(label=72, x_px=90, y_px=80, diameter_px=20),
        ],
    )
    on_8 = grid.write_foil_holes(
        session, grid_square_id=squares[8], rows=[grid.FoilHoleRow(label=81, x_px=60, y_px=60)]
    )
    return squares | on_7 | on_8


def _class_ids(session: Session, dc: int) -> list[int]:
    (newest,) = classes.gallery(session, data_collection_id=dc)
    return [c.particle_classification_id for c in newest.classes]


def _movie_ids(session: Session, dc: int) -> list[int]:
    return [
        int(i)
        for i in session.scalars(
            sa.select(Movie.movieId).where(Movie.dataCollectionId == dc).order_by(Movie.movieId)
        )
    ]


@pytest.fixture(scope="session", params=["sqlite", "mariadb"])
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    folder = tmp_path_factory.mktemp("web")
    cleanup: Callable[[], None] = lambda: None  # noqa: E731
    if request.param == "sqlite":
        url = f"sqlite:///{folder / 'cryolive.sqlite'}"
    else:
        server_url = str(request.getfixturevalue("mariadb_server_url"))
        name = f"cryolive_web_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        server = sa.create_engine(server_url, pool_pre_ping=True)
        with server.begin() as connection:
            connection.exec_driver_sql(f"CREATE DATABASE `{name}`")
        url = f"{server_url}/{name}"

        def cleanup() -> None:
            with server.begin() as connection:
                connection.exec_driver_sql(f"DROP DATABASE IF EXISTS `{name}`")
            server.dispose()

    engine = make_engine(url)
    upgrade(engine)
    with Session(engine) as session, session.begin():
        built = _fill(session, folder / "data")
        movie_ids = _movie_ids(session, built.data_collection_id)
        outside = _movie_ids(session, built.outside_collection_id)[0]
        foreign = int(
            session.scalars(sa.select(Movie.movieId).order_by(Movie.movieId.desc())).first() or 0
        )
        class_ids = _class_ids(session, built.data_collection_id)
    engine.dispose()
    yield replace(
        built,
        url=url,
        movie_ids=movie_ids,
        outside_movie_id=outside,
        class_ids=class_ids[:3],
        outside_class_id=class_ids[3],
        foreign_movie_id=foreign,
        broker_url=f"memory://web-{uuid.uuid4().hex[:8]}",
    )
    cleanup()


@pytest.fixture(scope="session")
def chart_bundle(need_service: Callable[[str, str], None]) -> Path:
    """plotly.js's partial bundle where ``make`` installs it (<sys.prefix>/share/cryolive/),
    with the pinned digest: skip locally when absent, fail in CI."""
    path = partial_bundle(None)
    if path is None:
        need_service(PARTIAL, "not installed or not the pinned file (`make chart-bundle`)")
    assert path is not None
    return path


@pytest.fixture(scope="session")
def app(world: World) -> FastAPI:
    """The app, with the world's embedded broker for the staff area."""
    return create_app(world.settings(), transport=open_transport(world.broker_url))


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF token in the page"
    return found.group(1)


def log_in(client: TestClient, login: str) -> str:
    """Log ``client`` in as ``login``; returns the session's CSRF token."""
    token = csrf_of(client.get("/login").text)
    response = client.post(
        "/login",
        data={"login": login, "password": f"password-{login}", "csrf_token": token},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    return str(client.get("/api/me").json()["csrf_token"])


@pytest.fixture(scope="session")
def clients(app: FastAPI) -> Iterator[dict[str, tuple[TestClient, str]]]:
    """A client per role, logged in (anonymous: only the login page's session)."""
    made: dict[str, tuple[TestClient, str]] = {}
    for role in ROLES:
        client = TestClient(app, follow_redirects=False)
        client.__enter__()
        if role == "anonymous":
            made[role] = (client, csrf_of(client.get("/login").text))
        else:
            made[role] = (client, log_in(client, LOGINS[role]))
    yield made
    for client, _ in made.values():
        client.__exit__(None, None, None)
