"""Each per-movie service, run by a worker on a fake (embedded) transport, turns bad input into
one FailureRecord for the writer — not a dead letter, not a retry — with no try/except of its
own: the middleware and ``services._common.record_failure`` handle it in one place."""

from __future__ import annotations

import json
import threading
import uuid
from pathlib import Path
from typing import Any

import mrcfile
import numpy as np
import pytest

from cryolive.io.layout import output_base
from cryolive.messaging.dispatch import envelope_for
from cryolive.messaging.embedded import EmbeddedTransport
from cryolive.messaging.envelope import Envelope
from cryolive.messaging.recipe import load_recipe
from cryolive.messaging.service import Service
from cryolive.messaging.transport import Delivery
from cryolive.messaging.worker import Worker
from cryolive.params import build_parameters
from cryolive.pipeline.runtime import recipe_path
from cryolive.records import FailureRecord
from cryolive.services.ctf import ctf_service
from cryolive.services.ice import ice_service
from cryolive.services.messages import WriteResults
from cryolive.services.motioncorr import motioncorr_service
from cryolive.services.pick import pick_service

RECIPE = load_recipe(recipe_path("spa-preprocess"))


def _values(tmp_path: Path, movie: Path, micrograph: Path) -> dict[str, Any]:
    run = build_parameters(
        collection={"pixel_size_a": 1.0, "dose_per_frame_e_per_a2": 1.0, "voltage_kv": 300.0}
    )
    return {
        **run.values(),
        "movie_path": str(movie),
        "data_collection_id": 1,
        "program_id": 7,
        "project_dir": str(tmp_path / "processed"),
        "movie_stem": "Data/m",
        "total_dose_e_per_a2": 40.0,
        "micrograph_path": str(micrograph),
        "plain_sum_path": str(micrograph),
        "micrograph_pixel_size_a": 1.0,
        "defocus_u_a": 15000.0,
        "defocus_v_a": 14000.0,
        "astigmatism_angle_deg": 10.0,
    }


def _drain(transport: EmbeddedTransport, queue: str) -> list[bytes]:
    bodies: list[bytes] = []
    stop = threading.Event()

    def take(delivery: Delivery) -> None:
        bodies.append(delivery.body)
        delivery.ack()
        if transport.depth(queue) == 0:
            stop.set()

    if transport.depth(queue):
        transport.consume(queue, take, prefetch=1, stop=stop)
    return bodies


@pytest.mark.parametrize(
    ("service", "step", "reason"),
    [
        (motioncorr_service, "motioncorr", "not a TIFF"),
        (ctf_service, "ctf", "expected one 2D image"),
        (ice_service, "ice", "expected one 2D image"),
        (pick_service, "pick", "expected one 2D image"),
    ],
)
def test_bad_input_becomes_one_failure_record_for_the_writer(
    tmp_path: Path, service: Any, step: str, reason: str
) -> None:
    movie = tmp_path / "m_fractions.tiff"
    movie.write_bytes(np.random.default_rng(0).bytes(4096))  # neither TIFF …
    micrograph = tmp_path / "m.mrc"
    micrograph.write_bytes(b"\0" * 2000)  # … nor MRC
    transport = EmbeddedTransport(f"memory://{uuid.uuid4().hex}")
    envelope = envelope_for(RECIPE, step, _values(tmp_path, movie, micrograph))
    served: Service[Any] = service()
    settled: list[str] = []
    delivery = Delivery(envelope.to_bytes(), {}, 0, lambda: settled.append("ack"), print)
    Worker(transport, served, queues=[step]).handle(step, delivery)
    assert settled == ["ack"]
    assert transport.dead_letters(step) == [] and transport.depth(step) == 0  # no retry
    (body,) = _drain(transport, "writer")
    (record,) = WriteResults.model_validate(Envelope.from_bytes(body).payload).records
    assert isinstance(record, FailureRecord)
    assert record.stage == step and record.auto_proc_program_id == 7
    assert reason in record.message and record.movie.movie_full_path == str(movie)


def test_a_gain_of_the_wrong_shape_is_recorded_not_retried(tmp_path: Path) -> None:
    # A bare ValueError escaped here: retried five times, dead-lettered, never recorded.
    from cryolive.simulate.corpus import KINDS, write_case

    case = write_case(KINDS.index("gain_wrong_shape"), tmp_path / "raw")
    values = _values(tmp_path, case.movie, tmp_path / "unused.mrc")
    values["motion"] |= {"gain_path": str(tmp_path / "raw" / "gain.mrc"), "frames": 4}
    transport = EmbeddedTransport(f"memory://{uuid.uuid4().hex}")
    envelope = envelope_for(RECIPE, "motioncorr", values)
    delivery = Delivery(envelope.to_bytes(), {}, 0, lambda: None, print)
    Worker(transport, motioncorr_service(), queues=["motioncorr"]).handle("motioncorr", delivery)
    assert transport.dead_letters("motioncorr") == [] and transport.depth("motioncorr") == 0
    (body,) = _drain(transport, "writer")
    (record,) = WriteResults.model_validate(Envelope.from_bytes(body).payload).records
    assert isinstance(record, FailureRecord) and record.reason == "gain-shape"


def test_ctf_without_thon_rings_keeps_its_files_marked_not_trusted(tmp_path: Path) -> None:
    micrograph = tmp_path / "m.mrc"
    noise = np.random.default_rng(3).poisson(40.0, (1024, 1024)).astype(np.float32)
    with mrcfile.new(micrograph) as mrc:
        mrc.set_data(noise)
        mrc.voxel_size = 1.0
    values = _values(tmp_path, tmp_path / "m_fractions.tiff", micrograph)
    transport = EmbeddedTransport(f"memory://{uuid.uuid4().hex}")
    envelope = envelope_for(RECIPE, "ctf", values)
    settled: list[str] = []
    delivery = Delivery(envelope.to_bytes(), {}, 0, lambda: settled.append("ack"), print)
    Worker(transport, ctf_service(), queues=["ctf"]).handle("ctf", delivery)
    assert settled == ["ack"] and transport.dead_letters("ctf") == []
    (body,) = _drain(transport, "writer")
    (record,) = WriteResults.model_validate(Envelope.from_bytes(body).payload).records
    assert isinstance(record, FailureRecord) and "not to be trusted" in record.message
    base = output_base(tmp_path / "processed", "CtfFind", 7, "Data/m")
    written = json.loads((base.parent / f"{base.name}_ctf.json").read_text())
    assert written["status"] == "not-trusted" and "Thon rings" in written["reason"]
    assert (base.parent / f"{base.name}_ctf_diag.png").exists()
    assert (base.parent / f"{base.name}_ctf_curves.json").exists()
