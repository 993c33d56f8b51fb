"""A live refinement with ``refine3d_engine = relion`` goes through the RELION adapters:
``cryolive refine3d --engine relion`` (relion_refine_mpi) and ``cryolive postprocess
--engine relion`` run as jobs, and the record is made from what they wrote, as from
cryolive's engines. Real RELION 3.1.3 on 80 simulated particles (box 24, 4 Å), one
iteration; skips locally without RELION, fails in CI."""

from __future__ import annotations

import math
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import starfile
from typer.testing import CliRunner

from cryolive.cli import build_app
from cryolive.io.layout import job_dir
from cryolive.io.maps import read_map
from cryolive.messaging.service import Context
from cryolive.params import build_parameters
from cryolive.records import RefinementRecord
from cryolive.services.messages import Refine3DMessage, WriteResults
from cryolive.services.refine3d import refine3d

CONTEXT = Context(key="k", recipe="spa-preprocess", step="refine3d", attempt=0, delivery_count=0)


def test_a_refinement_with_the_relion_engine_runs_relion_and_is_recorded(
    tmp_path: Path, need_service: Callable[[str, str], None]
) -> None:
    if shutil.which("relion_refine_mpi") is None or shutil.which("mpirun") is None:
        need_service("RELION", "relion_refine_mpi or mpirun is not on PATH (make tools)")
        return
    sim = tmp_path / "sim"
    made = CliRunner().invoke(
        build_app(),
        ["simulate-particles3d", "--out", str(sim), "--count", "80", "--box", "24",
         "--pixel", "4", "--snr", "0.5", "--max-origin", "1", "--seed", "3"],
    )  # fmt: skip
    assert made.exit_code == 0, made.output
    # a 3D classification's run_data.star: every particle in class 1
    tables = starfile.read(sim / "particles.star", always_dict=True)
    tables["particles"]["rlnClassNumber"] = 1
    starfile.write(tables, sim / "run_data.star", overwrite=True)
    run = build_parameters(recipe={"refine3d_engine": "relion", "refine3d_max_iterations": 1})
    project = tmp_path / "project"
    message = Refine3DMessage(
        data_collection_id=1, program_id=7, project_dir=str(project),
        movie_path="/visit/raw/mic1.tiff", run_number=1, class_number=1,
        class_map=str(sim / "truth.mrc"), class3d_data_star=str(sim / "run_data.star"),
        particles=80, symmetry="C1", refine3d=run.refine3d,
    )  # fmt: skip
    (emit,) = refine3d(message, CONTEXT)
    assert isinstance(emit.result, WriteResults)
    (record,) = emit.result.records
    assert isinstance(record, RefinementRecord)
    folder = job_dir(project, "Refine3D", 7) / "run_001_class001"
    # RELION ran: its own files beside cryolive's, its command in the step's log
    assert (folder / "Refine" / "relion" / "run_it001_data.star").is_file()
    assert "relion_refine_mpi" in (folder / "Refine" / "relion_refine.log").read_text()
    assert (folder / "PostProcess" / "relion" / "postprocess.star").is_file()
    # the record, from the files the service reads
    assert record.particles == 80
    assert Path(record.map_full_path) == folder / "PostProcess" / "postprocess.mrc"
    assert record.pixel_size_a == pytest.approx(4.0, rel=1e-3)
    assert math.isfinite(record.resolution_a) and 8.0 <= record.resolution_a < 40.0
    assert [p.particles for p in record.bfactor_points] == [80]
    refined, _ = read_map(folder / "Refine" / "refined.mrc")
    truth, _ = read_map(sim / "truth.mrc")
    assert float(np.corrcoef(refined.ravel(), truth.ravel())[0, 1]) > 0.7
