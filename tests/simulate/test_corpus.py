"""Every case of the bad-input corpus fails with an error of the bad-input family, quickly and
without allocating what its header claims (the pipeline run: tests/pipeline/test_corpus.py)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from cryolive.errors import BadInputError
from cryolive.messaging.service import Context
from cryolive.params import MotionParameters
from cryolive.pipeline.watcher import read_metadata
from cryolive.services.messages import MotionCorrMessage
from cryolive.services.motioncorr import correct
from cryolive.simulate.corpus import FRAMES, KINDS, PIXEL_SIZE_A, write_case


def test_the_corpus_has_at_least_40_kinds() -> None:
    assert len(KINDS) >= 40 and len(set(KINDS)) == len(KINDS)


@pytest.mark.parametrize("index", range(len(KINDS)), ids=KINDS)
def test_each_case_fails_as_bad_input_at_its_stage(index: int, tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    case = write_case(index, raw)
    if not case.movie.name.isprintable():  # the watcher refuses the name itself
        assert case.stage == "register"
        return
    start = time.perf_counter()
    with pytest.raises(BadInputError) as caught:
        if case.stage == "register":
            read_metadata(case.movie)
        else:
            assert case.stage == "motioncorr"
            read_metadata(case.movie)  # its metadata is fine: the movie is the fault
            gain = raw / "gain.mrc"
            message = MotionCorrMessage(
                movie_path=str(case.movie),
                data_collection_id=1,
                program_id=1,
                project_dir=str(tmp_path / "processed"),
                movie_stem="m",
                pixel_size_a=PIXEL_SIZE_A,
                dose_per_frame_e_per_a2=1.0,
                voltage_kv=300.0,
                motion=MotionParameters(
                    frames=FRAMES,
                    gain_path=str(gain) if gain.exists() else None,
                    eer_grouping=1 if case.movie.suffix == ".eer" else None,
                    patches_x=1,
                    patches_y=1,
                ),
            )
            correct(message, Context(key="k", recipe="r", step="s", attempt=0, delivery_count=0))
    assert time.perf_counter() - start < 5.0
    text = str(caught.value)
    assert text and len(text) < 2000
    assert "\n" not in text.replace(str(case.movie), "")  # one line besides the file name
