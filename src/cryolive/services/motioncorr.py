"""The motion correction service: read a movie, correct its motion, write the sums and the
files the web shows, and send the MotionCorrection record to the writer and the micrograph on to
CTF and ice estimation. It writes what ``cryolive motioncorr`` writes
(:func:`cryolive.io.outputs.motioncorr.write_motion_outputs`). A movie that cannot be read or
corrected is recorded as a failure."""

from __future__ import annotations

import json
import logging
import threading

import numpy as np

from cryolive.engines.motion import (
    GainTransform,
    correct_motion,
    detect_gain_orientation,
)
from cryolive.io.gain import read_gain
from cryolive.io.layout import output_base
from cryolive.io.movies import read_movie
from cryolive.io.outputs.motioncorr import write_motion_outputs
from cryolive.messaging.service import Context, Emit, Service
from cryolive.records import MotionCorrectionRecord
from cryolive.services._common import RESULTS, movie_ref, record_failure
from cryolive.services.messages import MotionCorrMessage, MotionCorrOutput, WriteResults

log = logging.getLogger(__name__)


_ORIENTATIONS: dict[str, GainTransform] = {}
_ORIENTATION_LOCK = threading.Lock()


def _gain(message: MotionCorrMessage, frames: np.ndarray) -> np.ndarray | None:
    """The gain in the movies' orientation. The orientation is found from the first movie that
    uses a gain file (the 8 rotations/flips tried against its raw counts) and kept for the
    process: it is a property of the camera set-up, not of a movie."""
    gain_path = message.motion.gain_path
    if not gain_path:
        return None
    stored = read_gain(gain_path)
    with _ORIENTATION_LOCK:
        transform = _ORIENTATIONS.get(gain_path)
        if transform is None:
            found = detect_gain_orientation(frames.sum(axis=0, dtype=np.float32), stored)
            transform = found.transform
            log.info(
                "gain %s: orientation %s (separation %.1f sigma)",
                gain_path,
                transform,
                found.separation_sigma,
            )
            if found.confident:
                _ORIENTATIONS[gain_path] = transform
    return transform.apply(stored).astype(np.float32)


def correct(message: MotionCorrMessage, context: Context) -> list[Emit]:
    # A movie, gain or correction that fails raises from the error family; the services'
    # middleware records it as this movie's failure (services._common.record_failure).
    motion = message.motion
    frames = read_movie(
        message.movie_path, expected_frames=motion.frames, eer_group=motion.eer_grouping
    )
    result = correct_motion(
        frames,
        pixel_size_a=message.pixel_size_a,
        dose_per_frame_e_per_a2=message.dose_per_frame_e_per_a2,
        voltage_kv=message.voltage_kv,
        gain=_gain(message, frames),
        patches=(motion.patches_x, motion.patches_y),
        bfactor_a2=motion.bfactor_a2,
    )
    base = output_base(message.project_dir, "MotionCorr", message.program_id, message.movie_stem)
    files = write_motion_outputs(result, base.parent, base.name)
    n = result.n_frames
    # whole-frame only is one patch; why fewer were used is motion.json's patch_note (too
    # long for ISPyB's 255-character comments)
    used = result.patches_used or (1, 1)
    record = MotionCorrectionRecord(
        movie=movie_ref(message),
        auto_proc_program_id=message.program_id,
        first_frame=1,
        last_frame=n,
        dose_per_frame_e_per_a2=message.dose_per_frame_e_per_a2,
        total_motion_a=result.total_motion_a,
        average_motion_per_frame_a=result.total_motion_a / max(1, n - 1),
        drift_plot_full_path=str(files.drift),
        micrograph_full_path=str(files.micrograph),
        micrograph_snapshot_full_path=str(files.snapshot),
        fft_full_path=str(files.spectrum),
        # the grid the engine used, not the one asked for: it falls back to fewer patches, or
        # to whole-frame only (one patch), where a patch holds too little signal
        patches_used_x=used[0],
        patches_used_y=used[1],
        # ISPyB has no column for it; curation reads it back (db.repo.curation)
        comments=json.dumps({"early_motion_a": round(result.early_motion_a, 4)}),
    )
    output = MotionCorrOutput(
        micrograph_path=str(files.micrograph),
        plain_sum_path=str(files.micrograph_plain),
        micrograph_pixel_size_a=result.pixel_size_a,
        total_dose_e_per_a2=message.dose_per_frame_e_per_a2 * n,
    )
    return [Emit(RESULTS, WriteResults(records=[record])), Emit("default", output)]


def motioncorr_service() -> Service[MotionCorrMessage]:
    return Service("motioncorr", MotionCorrMessage, correct, on_failure=record_failure)
