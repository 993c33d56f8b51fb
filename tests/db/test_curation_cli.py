"""``cryolive curate``: thresholds and manual decisions from the command line, the accepted set
exported as a RELION micrographs STAR and a plain list, and bad input refused clearly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import starfile
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from cryolive.cli import build_app
from cryolive.db import make_engine
from cryolive.db.repo import collections, curation
from tests.db.test_curation import _write


def _run(url: str, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(build_app(), list(args), env={"CRYOLIVE_DATABASE_URL": url})
    return result.exit_code, result.output


def test_curate_sets_thresholds_decides_by_hand_and_exports_the_accepted_set(
    sqlite_url: str, collection_maker: Any, unique: str, tmp_path: Path
) -> None:
    engine = make_engine(sqlite_url)
    with Session(engine) as session, session.begin():
        c = collection_maker(session, visit=f"bi{int(unique, 16) % 10**8}-2")
        _, run = collections.register_processing_job(
            session,
            data_collection_id=c.data_collection_id,
            recipe="spa-preprocess",
            request_key="auto",
            parameters={"cs_mm": 2.0},
        )
        paths = _write(session, type(c)(c.session_id, c.data_collection_id, run, run, run))
        ids = curation.measures(session, data_collection_id=c.data_collection_id).movie_id
    engine.dispose()
    dc = str(c.data_collection_id)

    code, out = _run(sqlite_url, "curate", dc)
    assert code == 0, out
    assert "No thresholds set" in out and "4 of 4 movies accepted" in out

    code, out = _run(sqlite_url, "curate", dc, "--set", "total_motion_max_a=20")
    assert code == 0, out
    assert "3 of 4 movies accepted, 1 rejected (this collection's" in out
    assert "total_motion: 1" in out

    star, listing = tmp_path / "accepted.star", tmp_path / "accepted.txt"
    code, out = _run(
        sqlite_url,
        "curate",
        dc,
        "--reject",
        paths[3],
        "--accept",
        str(ids[1]),  # over the motion threshold, accepted by hand
        "--export-star",
        str(star),
        "--export-list",
        str(listing),
    )
    assert code == 0, out
    assert "3 of 4 movies accepted" in out
    assert listing.read_text().splitlines() == paths[:3]
    tables = starfile.read(star)
    rows = tables["micrographs"]
    assert list(rows["rlnMicrographName"]) == ["/proc/m_0.mrc", "/proc/m_1.mrc", "/proc/m_2.mrc"]
    assert list(rows["rlnDefocusU"] - rows["rlnDefocusV"]) == [100.0, 300.0, 150.0]
    assert float(tables["optics"]["rlnMicrographPixelSize"][0]) == 1.056
    assert float(tables["optics"]["rlnSphericalAberration"][0]) == 2.0

    code, out = _run(sqlite_url, "curate", dc, "--set", "total_motion_max_a=none")
    assert code == 0 and "3 of 4 movies accepted" in out  # the manual reject stays


def test_curate_refuses_bad_input_clearly(
    sqlite_url: str, collection_maker: Any, unique: str
) -> None:
    engine = make_engine(sqlite_url)
    with Session(engine) as session, session.begin():
        c = collection_maker(session, visit=f"bi{int(unique, 16) % 10**8}-3")
        _write(session, c)
    engine.dispose()
    dc = str(c.data_collection_id)
    for args, message in [
        (("--set", "defocus_min_um=3", "--set", "defocus_max_um=1"), "defocus_min_um"),
        (("--set", "total_motion=3"), "expected name=value"),
        (("--set", "ice_max=thick"), "ice_max"),
        (("--reject", "no-such-movie"), "no movie 'no-such-movie'"),
    ]:
        code, out = _run(sqlite_url, "curate", dc, *args)
        assert code == 2 and message in out, (args, out)
    code, out = _run(sqlite_url, "curate", "999999999")
    assert code == 2 and "has no movies" in out
