"""A movie's CTF profile (``/api/movies/{id}/ctf``): the curves the CTF stage wrote, for members
only, from the visit's folders only; a missing or broken file is a clear 4xx, never a 5xx."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from ispyb.sqlalchemy import Movie
from sqlalchemy.orm import Session

from cryolive.db import make_engine
from cryolive.db.repo import collections, results
from cryolive.records import MotionCorrectionRecord, MovieRecord, MovieRef
from tests.web.conftest import ctf_files


@contextmanager
def _altered(path: Path, content: bytes | None) -> Iterator[None]:
    """``path`` replaced by ``content`` (None: removed) for the block, then put back."""
    kept = path.read_bytes()
    try:
        if content is None:
            path.unlink()
        else:
            path.write_bytes(content)
        yield
    finally:
        path.write_bytes(kept)


def test_a_member_sees_the_data_the_fit_and_the_fit_resolution(clients: Any, world: Any) -> None:
    client, _ = clients["member"]
    movie = world.movie_ids[3]
    response = client.get(f"/api/movies/{movie}/ctf")
    assert response.status_code == 200, response.text
    profile = response.json()
    written = json.loads((world.processed / "FoilHole_3_ctf_curves.json").read_text())
    assert profile["status"] == "ok" and profile["reason"] is None
    for key in ("frequency_per_a", "data", "fit", "cc"):
        assert profile[key] == written[key]
    # the resolution line is the one the charts and the summary show for this movie
    series = client.get(f"/api/collections/{world.data_collection_id}/series").json()
    assert profile["fit_resolution_a"] == series["resolution_a"][3] == 3.75
    assert profile["defocus_a"] == series["defocus_a"][3]


@pytest.mark.parametrize(("role", "status"), [("anonymous", 401), ("outsider", 403)])
def test_others_are_refused(clients: Any, world: Any, role: str, status: int) -> None:
    response = clients[role][0].get(f"/api/movies/{world.movie_ids[3]}/ctf")
    assert response.status_code == status
    assert "frequency_per_a" not in response.text


def test_unknown_movie_and_no_ctf_yet_are_404(clients: Any, world: Any) -> None:
    client, _ = clients["member"]
    assert client.get("/api/movies/987654321/ctf").status_code == 404
    # raw2's movie: motion corrected (outside files), no CTF recorded, no micrograph recorded
    response = client.get(f"/api/movies/{world.outside_movie_id}/ctf")
    assert response.status_code == 404
    assert "no CTF profile yet" in response.json()["detail"]


def test_a_missing_curves_file_is_404(clients: Any, world: Any) -> None:
    client, _ = clients["member"]
    with _altered(world.processed / "FoilHole_5_ctf_curves.json", None):
        response = client.get(f"/api/movies/{world.movie_ids[5]}/ctf")
    assert response.status_code == 404
    assert "no CTF profile yet" in response.json()["detail"]


@pytest.mark.parametrize(
    ("name", "content", "said"),
    [
        ("curves", b'{"frequency_per_a": [0.1, 0.2', "not readable JSON"),
        ("curves", b"\xff\xfe not text", "not readable JSON"),
        ("curves", b"[1, 2, 3]", "an object with"),
        (
            "curves",
            b'{"frequency_per_a": [0.1, 0.2], "data": [1, NaN], "fit": [1, 2], "cc": [0, 0]}',
            "finite numbers",
        ),
        (
            "curves",
            b'{"frequency_per_a": [0.1, 0.2], "data": [1], "fit": [1, 2], "cc": [0, 0]}',
            "one length",
        ),
        (
            "curves",
            b'{"frequency_per_a": [0.2, 0.1], "data": [1, 2], "fit": [1, 2], "cc": [0, 0]}',
            "increasing",
        ),
        ("summary", b'{"status": "ok", "result": {"fit_resolution_a": -3}}', "positive"),
        ("summary", b'{"status": "maybe"}', "status must be"),
    ],
)
def test_a_broken_file_is_a_clear_422(
    clients: Any, world: Any, name: str, content: bytes, said: str
) -> None:
    client, _ = clients["member"]
    path = world.processed / f"FoilHole_6_ctf{'_curves' if name == 'curves' else ''}.json"
    with _altered(path, content):
        response = client.get(f"/api/movies/{world.movie_ids[6]}/ctf")
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert f"movie {world.movie_ids[6]} cannot be read" in detail and said in detail
    assert client.get(f"/api/movies/{world.movie_ids[6]}/ctf").status_code == 200  # put back


def motion_only(world: Any, micrographs: list[str]) -> tuple[int, list[int]]:
    """Movies of a new collection of the world's visit, motion corrected into ``micrographs``
    (``{job}``: the run's MotionCorr job) with no CTF recorded, as after a fit that was not
    trusted: (the run's program id, the movies' ids)."""
    engine = make_engine(world.url)
    with Session(engine) as db, db.begin():
        folder = uuid.uuid4().hex[:8]
        spec = collections.DataCollectionSpec(
            session_id=world.session_id,
            image_directory=f"{world.root}/{world.visit}/{folder}/",
            file_template="*.tiff",
        )
        dc = collections.register_data_collection(db, spec=spec)[1]
        program = collections.register_processing_job(
            db, data_collection_id=dc, recipe="spa-preprocess", request_key="auto", parameters={}
        )[1]
        refs = [
            MovieRef(data_collection_id=dc, movie_full_path=f"/d/{folder}/{i}.tiff")
            for i in range(len(micrographs))
        ]
        job = f"job{program * 10 + 1:03d}"
        results.write_result_sets(
            db,
            movies=[MovieRecord(movie=r, movie_number=i + 1) for i, r in enumerate(refs)],
            motion_corrections=[
                MotionCorrectionRecord(
                    movie=r,
                    auto_proc_program_id=program,
                    total_motion_a=5.0,
                    micrograph_full_path=m.format(job=job),
                )
                for r, m in zip(refs, micrographs, strict=True)
            ],
        )
        ids = db.scalars(
            sa.select(Movie.movieId).where(Movie.dataCollectionId == dc).order_by(Movie.movieId)
        )
        movies = [int(m) for m in ids]
    engine.dispose()
    return program, movies


def test_a_fit_not_trusted_is_found_beside_the_micrograph_and_said_so(
    clients: Any, world: Any
) -> None:
    project = world.root / world.visit / "processed" / "raw"
    stem = f"GridSquare_1/Data/FoilHole_{uuid.uuid4().hex[:6]}_fractions"
    program, (inside, outside) = motion_only(
        world,
        [
            f"{project}/MotionCorr/{{job}}/{stem}.mrc",
            f"{world.root.parent}/elsewhere/MotionCorr/{{job}}/{stem}.mrc",
        ],
    )
    client, _ = clients["member"]
    assert client.get(f"/api/movies/{inside}/ctf").status_code == 404  # nothing written yet
    # the CTF stage of the same run writes into CtfFind/job<program>2 (cryolive.io.layout)
    written = project / "CtfFind" / f"job{program * 10 + 2:03d}" / stem
    reason = "the fitted rings do not match the data beyond 9.5 Å"
    ctf_files(written.parent, written.name, defocus_a=21_000.0, resolution_a=9.5, reason=reason)
    response = client.get(f"/api/movies/{inside}/ctf")
    assert response.status_code == 200, response.text
    profile = response.json()
    assert profile["status"] == "not-trusted" and profile["reason"] == reason
    assert profile["fit_resolution_a"] == 9.5 and len(profile["frequency_per_a"]) == 120
    # a micrograph recorded outside the visit: its CTF files are never read
    refused = client.get(f"/api/movies/{outside}/ctf")
    assert refused.status_code == 403 and "outside its visit" in refused.json()["detail"]
