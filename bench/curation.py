"""Exposure curation on a large collection (SQLite): judging every movie (the web's GET and an
export), saving thresholds (judge and store every decision) and judging one 2D batch's movies.

    .venv/bin/python bench/curation.py [--movies 20000] [--batch 100]
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
import time
from collections.abc import Callable

from sqlalchemy.orm import Session

from cryolive.config import CurationThresholds
from cryolive.db import make_engine, upgrade
from cryolive.db.repo import collections, curation, results, visits
from cryolive.records import CtfRecord, MotionCorrectionRecord, MovieRecord, MovieRef


def _fill(session: Session, n: int) -> tuple[int, list[str]]:
    sid = visits.ensure_visit(session, visit="bi1-1", microscope="m02")
    _, dc = collections.register_data_collection(
        session,
        spec=collections.DataCollectionSpec(
            session_id=sid, image_directory="/raw", file_template="*.tiff"
        ),
    )
    _, run = collections.register_processing_job(
        session, data_collection_id=dc, recipe="spa-preprocess", request_key="a", parameters={}
    )
    refs = [MovieRef(data_collection_id=dc, movie_full_path=f"/raw/m_{i}.tiff") for i in range(n)]
    for start in range(0, n, 2000):
        part = refs[start : start + 2000]
        results.write_result_sets(
            session,
            movies=[MovieRecord(movie=r, movie_number=start + i) for i, r in enumerate(part)],
            motion_corrections=[
                MotionCorrectionRecord(
                    movie=r,
                    auto_proc_program_id=run,
                    total_motion_a=5.0 + (start + i) % 40,
                    comments='{"early_motion_a": 2.0}',
                )
                for i, r in enumerate(part)
            ],
            ctfs=[
                CtfRecord(
                    movie=r,
                    motion_correction_program_id=run,
                    auto_proc_program_id=run,
                    estimated_defocus_a=10_000.0 + (start + i) % 20_000,
                    astigmatism_a=200.0,
                    estimated_resolution_a=3.0 + (start + i) % 5,
                    cc_value=0.2,
                )
                for i, r in enumerate(part)
            ],
        )
    return dc, [r.movie_full_path for r in refs]


def _time(what: Callable[[], object], repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        what()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--movies", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=100)
    args = parser.parse_args()
    none = CurationThresholds()
    limits = CurationThresholds(total_motion_max_a=30.0, ctf_resolution_max_a=6.0)
    alternate = itertools.cycle([limits, none])
    with tempfile.TemporaryDirectory() as folder:
        engine = make_engine(f"sqlite:///{folder}/bench.sqlite")
        upgrade(engine)
        with Session(engine) as session, session.begin():
            dc, paths = _fill(session, args.movies)
        with Session(engine) as session, session.begin():
            rows = [
                (
                    "judge every movie (GET, export)",
                    _time(lambda: curation.evaluate(session, data_collection_id=dc, defaults=none)),
                ),
                (
                    "save thresholds (judge, store the changed decisions)",
                    _time(
                        lambda: curation.set_thresholds(
                            session,
                            data_collection_id=dc,
                            limits=next(alternate),  # every save changes half the decisions
                            changed_by="bench",
                            defaults=none,
                        )
                    ),
                ),
                (
                    f"judge one 2D batch ({args.batch} movies)",
                    _time(
                        lambda: curation.evaluate(
                            session,
                            data_collection_id=dc,
                            defaults=none,
                            movie_paths=paths[-args.batch :],
                        )
                    ),
                ),
            ]
            curation.set_thresholds(
                session, data_collection_id=dc, limits=limits, changed_by="bench", defaults=none
            )
            accepted = curation.evaluate(session, data_collection_id=dc, defaults=none).counts()
        engine.dispose()
    print(f"{args.movies} movies on SQLite; {accepted['accepted']} accepted after the save")
    print(f"{'operation':<52} {'s (best of 3)':>14}")
    for name, seconds in rows:
        print(f"{name:<52} {seconds:>14.3f}")


if __name__ == "__main__":
    main()
