"""What the JSON API answers: one pydantic model per kind of response, named by what it
describes. Each is a route's return annotation (or, for the streamed and cached answers, its
``responses=``), so ``/openapi.json`` and ``/docs`` document every response.

Models read the repository's rows by attribute (``from_attributes``); the JSON they give keeps
the field names the pages' scripts (``web/static/*.js``) read. Units are in the names
(``defocus_a``: Å, ``voltage_kv``: kV); times are UTC as recorded, ISO 8601 without a zone.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, computed_field

from cryolive.config import CurationThresholds
from cryolive.db.repo.browse import RunStatus
from cryolive.web.reprocess import asked_for

FileKind = Literal["snapshot", "fft", "ctf_fit", "drift", "picks"]


class _Read(BaseModel):
    model_config = ConfigDict(from_attributes=True, frozen=True)


class Visit(_Read):
    """A visit (an ISPyB BLSession)."""

    session_id: int
    name: str = Field(description="The visit's name, e.g. ``cm12345-1``.")
    microscope: str
    start: dt.datetime | None
    end: dt.datetime | None
    collections: int = Field(description="How many data collections it has.")
    movies: int = Field(default=0, description="How many movies its data collections have.")
    last_movie: dt.datetime | None = Field(
        default=None, description="When its newest movie was recorded (UTC)."
    )
    status: Literal["not started", "under way", "ended"] = Field(
        description="Where it stands by its dates."
    )


class DataCollection(_Read):
    """A data collection: one raw folder of movies, with its optics."""

    data_collection_id: int
    session_id: int
    visit: str
    directory: str = Field(description="The raw folder.")
    name: str = Field(description="The raw folder relative to the visit's folder (its name).")
    file_template: str
    start: dt.datetime | None
    voltage_kv: float | None
    pixel_size_a: float | None = Field(description="Unbinned pixel size, Å.")
    dose_e_per_a2: float | None = Field(description="Dose per frame, e⁻/Å².")
    movies: int = Field(description="How many movies have been recorded.")


class VisitDetail(Visit):
    """A visit and its data collections."""

    data_collections: list[DataCollection]


class Stage(_Read):
    """One stage of processing: how much it has done and its backlog."""

    stage: Literal["movies", "motion_corrected", "ctf_estimated", "picked", "in_2d"]
    label: str
    done: int = Field(description="Movies (micrographs for picked, particles for in_2d).")
    backlog: int = Field(description="What the stage before it has done and it has not.")


class Progress(_Read):
    """Per-stage progress, and the time to catch up at the recent rate."""

    stages: list[Stage]
    selected_particles: int = Field(
        description="Particles in the selected 2D classes (a person's choice, else the "
        "engine's) of each batch's newest classification: those that go on to 3D."
    )
    movies_per_hour: float = Field(description="Movies through the pipeline, last 15 minutes.")
    behind: int = Field(description="Movies not yet through CTF.")
    eta_s: float | None = Field(description="Seconds to catch up at that rate; null: none.")


class Summary(_Read):
    """Counts and means of a collection's results, from the run shown (the chosen programs)."""

    movies: int
    picked: int = Field(description="Micrographs with picks.")
    motion_corrected: int
    ctf_estimated: int
    ice_measured: int
    mean_total_motion_a: float | None
    mean_defocus_a: float | None = Field(description="Positive is underfocus.")
    mean_resolution_a: float | None = Field(description="Mean CTF fit resolution, Å.")
    best_resolution_a: float | None = Field(description="Best CTF fit resolution, Å.")
    particles: int | None = Field(description="Particles picked in all; null: none picked.")
    latest_movie_id: int = Field(description="0 while there is no movie.")
    progress: Progress


class DataCollectionDetail(DataCollection):
    """A data collection and summary numbers of its results."""

    summary: Summary


class Programs(_Read):
    """The AutoProcProgram ids whose results are shown; null: no results yet."""

    motion: int | None
    ctf: int | None
    ice: int | None
    picker: int | None


class Series(_Read):
    """Per-movie results as columns of equal length, in acquisition order (null: no result).
    Documents the shape only: the series is served as cached bytes, not through this model."""

    movie_id: list[int]
    movie_number: list[int | None]
    name: list[str | None] = Field(description="The movie's file name (no folder).")
    created: list[float | None] = Field(description="Seconds since the epoch (UTC).")
    total_motion_a: list[float | None]
    defocus_a: list[float | None] = Field(description="Positive is underfocus.")
    astigmatism_a: list[float | None]
    resolution_a: list[float | None] = Field(description="CTF fit resolution, Å.")
    ice_median: list[float | None] = Field(description="Relative ice thickness (median).")
    particles: list[int | None]
    programs: Programs
    downsampled_from: int | None = Field(
        None,
        description="With ``points``: the number of movies before thinning (absent or null: "
        "every movie is there).",
    )


class MovieResult(_Read):
    """A movie and its results from the run shown."""

    movie_id: int
    movie_number: int | None
    path: str | None
    created: dt.datetime | None
    total_motion_a: float | None
    average_motion_per_frame_a: float | None
    defocus_a: float | None = Field(description="Positive is underfocus.")
    astigmatism_a: float | None
    astigmatism_angle_deg: float | None
    resolution_a: float | None = Field(description="CTF fit resolution, Å.")
    cc_value: float | None = Field(description="CTF fit cross-correlation.")
    ice_median: float | None
    particles: int | None
    data_collection_id: int
    files: list[FileKind] = Field(description="The kinds of file it has (``/files/{kind}``).")
    processed: bool = Field(
        default=False,
        description="Any result of the run shown is recorded; false: not processed yet.",
    )


class CtfProfile(BaseModel):
    """A movie's CTF profile for plotting: the rotational (equiphase) average of its spectrum
    with the background subtracted, the fitted model, and their local correlation, against
    spatial frequency."""

    model_config = ConfigDict(frozen=True)

    status: Literal["ok", "not-trusted"] = Field(
        description="``not-trusted``: the fit failed its checks; the curves show the best "
        "guess, which is never used."
    )
    reason: str | None = Field(description="Why the fit is not trusted, in words.")
    fit_resolution_a: float | None = Field(
        description="Spacing (Å) up to which the fitted rings agree with the data."
    )
    defocus_a: float | None = Field(description="Mean defocus, Å; positive is underfocus.")
    frequency_per_a: list[float] = Field(description="Spatial frequency, 1/Å, increasing.")
    data: list[float] = Field(description="Spectrum minus its background (arbitrary units).")
    fit: list[float] = Field(description="Fitted envelope * sin²χ, same units as ``data``.")
    cc: list[float] = Field(description="Local correlation of data and fit, -1 to 1.")


class Job(_Read):
    """A processing job: one recipe run (a ProcessingJob and its AutoProcProgram)."""

    auto_proc_program_id: int
    processing_job_id: int
    data_collection_id: int
    session_id: int
    recipe: str
    display_name: str
    automatic: bool = Field(description="Started by the pipeline, not requested by a person.")
    status: RunStatus
    message: str
    start: dt.datetime | None
    end: dt.datetime | None
    parameters: dict[str, str] = Field(description="The run's parameters as recorded.")
    messages: list[tuple[str, str]] = Field(description="(severity, message), oldest first.")

    @computed_field(  # type: ignore[prop-decorator]
        description="A person's request: what it asked for, in words; empty for automatic runs."
    )
    @property
    def asked_for(self) -> str:
        return "" if self.automatic else asked_for(self.parameters)


class ClassAverage(_Read):
    """One 2D class of a classification."""

    particle_classification_id: int
    class_number: int
    particles: int
    distribution: float | None = Field(description="Fraction of the batch's particles.")
    resolution_a: float | None = Field(description="Estimated resolution, Å.")
    selected: bool = Field(description="As it stands: a person's choice, else the engine's.")
    has_image: bool = Field(description="``/api/classes/{id}/image`` has its average.")
    auto_selected: bool = Field(description="The 2D engine's selection by its score.")
    chosen_by: str | None = Field(description="Login of the person who chose; null: automatic.")
    chosen_at: dt.datetime | None = Field(description="When they chose (UTC).")


class ClassBatch(_Read):
    """The newest 2D classification of one batch of particles."""

    group_id: int
    program_id: int
    batch_number: int
    particles: int
    classes_in_batch: int
    binned_pixel_size_a: float | None
    classes: list[ClassAverage]
    started_at: dt.datetime | None = Field(default=None, description="When it ran (UTC).")
    duration_s: float | None = Field(default=None, description="How long the 2D engine ran.")


class ClassificationRun(_Read):
    """One 2D classification of a batch, in the history."""

    group_id: int
    batch_number: int
    attempt: int = Field(description="1 for the batch's first classification, 2 for its next…")
    particles: int
    classes: int
    selected: int = Field(description="Classes selected (a person's choice, else the engine's).")
    selected_particles: int = Field(description="Particles in the selected classes.")
    newest: bool = Field(description="The classification the gallery shows for the batch.")
    started_at: dt.datetime | None = Field(
        default=None, description="When it ran (UTC); null: not recorded (ISPyB has no column)."
    )
    duration_s: float | None = Field(default=None, description="How long the 2D engine ran.")


class ClassChoiceRequest(BaseModel):
    """A person's choice for a 2D class; ``null`` gives it back to the automatic selection."""

    model_config = ConfigDict(extra="forbid")
    selected: bool | None = Field(description="true: selected, false: deselected, null: auto.")


class ClassChoiceMade(_Read):
    particle_classification_id: int
    selected: bool = Field(description="The class's selection as it now stands.")
    chosen_by: str | None = Field(description="null: the automatic selection stands.")


class LiveUpdate(_Read):
    """One ``update`` event of ``/events``: what changed is sent whole."""

    summary: Summary
    jobs: list[Job]
    classes: list[ClassBatch]


class Registered(_Read):
    data_collection_id: int = Field(description="The data collection registered.")


class ReprocessRequested(_Read):
    auto_proc_program_id: int = Field(description="The program that records the run.")


class Stopped(_Read):
    status: Literal["stopped"]
    message: str = Field(description='"stopped by <login>".')


class Me(_Read):
    """The logged-in person."""

    person_id: int
    login: str
    name: str
    staff: bool
    csrf_token: str = Field(description="Sent as ``X-CSRF-Token`` by calls that change things.")


class MicroscopeVisit(Visit):
    live: bool = Field(
        description="Under way, a movie came in the last 10 minutes and every queue of the "
        "pipeline has a consumer."
    )
    state: Literal["live", "stalled", "quiet", ""] = Field(
        description="live; stalled: movies come but a queue has no consumer (or no broker is "
        "known); quiet: under way by its dates but no movie for 10 minutes; empty: not under way."
    )


class Failure(Job):
    """A failed program, with its visit's name."""

    visit: str


class FailureMessage(_Read):
    auto_proc_program_id: int
    recorded: dt.datetime | None
    message: str
    description: str


class CollectionFailures(_Read):
    """The recorded failures of one data collection: how many, and the newest few."""

    data_collection_id: int
    visit: str
    directory: str
    count: int
    newest: dt.datetime | None
    latest: list[FailureMessage]


class CollectionThroughput(_Read):
    """Motion-corrected movies per hour of one data collection."""

    data_collection_id: int
    visit: str
    microscope: str
    directory: str
    name: str = Field(description="The raw folder relative to the visit's folder (``raw``).")
    hours: list[dt.datetime] = Field(description="Starts of the hour bins, oldest first.")
    movies: list[int] = Field(description="Movies in each bin.")


class MicroscopeRate(_Read):
    """A microscope's movies now."""

    microscope: str
    recent: int = Field(description="Movies recorded in the last 15 minutes.")
    movies_per_hour: float = Field(description="That, as movies per hour.")
    last_movie: dt.datetime | None = Field(description="Its newest movie's time (UTC).")


class WorkerHealth(_Read):
    """The newest worker process of a service on a host, as it last reported itself."""

    service: str
    queues: list[str]
    consumers: int = Field(description="Consumer threads per queue.")
    host: str
    pid: int
    started_at: dt.datetime
    beat_at: dt.datetime = Field(description="Its last heartbeat (UTC); beats every 30 s.")
    handled: int = Field(description="Messages handled since it started.")
    alive: bool = Field(description="A heartbeat within the last 90 s.")
    restarts: int = Field(description="Earlier processes of it on this host, last 24 h.")


class Throughput(_Read):
    hours: int = Field(description="The window's length in hours.")
    collections: list[CollectionThroughput]


class DeadLetter(_Read):
    """A dead letter, as a person reads it (``?``: its envelope could not be read)."""

    message_id: str
    key: str
    recipe: str
    step: str
    attempt: int
    reason: str


class QueueStats(_Read):
    queue: str
    ready: int = Field(description="Messages waiting.")
    consumers: int = Field(description="Workers subscribed.")
    dead: int = Field(description="Dead letters.")
    newest_dead: list[DeadLetter]


class Queues(_Read):
    broker: str | None = Field(description="The broker's kind; null when none is connected.")
    message: str = Field(description="Why the table is empty, or empty.")
    queues: list[QueueStats]


class DeadLetterDone(_Read):
    """How many dead letters were handled; only the action's field is present."""

    reinjected: int | None = None
    discarded: int | None = None


class DriftTrace(_Read):
    x: list[float] = Field(description="Shift of each frame along x, px, relative to frame 0.")
    y: list[float] = Field(description="Shift of each frame along y, px, relative to frame 0.")


class Drift(_Read):
    """A movie's drift file (``/files/drift``), as motion correction wrote it (a Plotly trace)."""

    data: list[DriftTrace]


class GridStats(_Read):
    """The movies of a grid square or foil hole and the means of their results (the run the
    collection's page shows); null: no result yet."""

    movies: int = Field(description="Movies collected.")
    resolution_a: float | None = Field(description="Mean CTF fit resolution, Å.")
    ice_median: float | None = Field(description="Mean relative ice thickness (median).")
    total_motion_a: float | None = Field(description="Mean total motion, Å.")
    particles: float | None = Field(description="Mean particles per micrograph.")


class GridSquareSummary(_Read):
    """A grid square, placed on its atlas image (pixels of the frame the atlas gives)."""

    grid_square_id: int
    label: int | None = Field(description="EPU's grid square id (GridSquare_<id>).")
    x_px: int | None = Field(description="Centre on the atlas image.")
    y_px: int | None
    width_px: int | None
    height_px: int | None
    angle_deg: float | None
    stage_x_um: float | None
    stage_y_um: float | None
    pixel_size_a: float | None = Field(description="Pixel size of its own image, Å.")
    stats: GridStats


class AtlasDetail(_Read):
    """A grid's atlas and its grid squares with their statistics."""

    atlas_id: int
    data_collection_group_id: int
    pixel_size_a: float | None = Field(description="Atlas pixel size, Å.")
    has_image: bool = Field(description="``…/atlas/image`` serves the atlas (JPEG or PNG).")
    frame_width_px: int | None = Field(
        description="Width of the image the square positions refer to; null: the served one."
    )
    frame_height_px: int | None
    squares: list[GridSquareSummary]


class FoilHoleSummary(_Read):
    """A foil hole, placed on its grid square's image."""

    foil_hole_id: int
    label: str = Field(description="EPU's foil hole id (FoilHole_<id>_…).")
    x_px: int | None = Field(description="Centre on the grid square's image.")
    y_px: int | None
    diameter_px: int | None
    stage_x_um: float | None
    stage_y_um: float | None
    stats: GridStats


class GridSquareDetail(GridSquareSummary):
    """A grid square, its image and its foil holes with their statistics."""

    data_collection_id: int = Field(description="A data collection of its grid (for links).")
    has_image: bool = Field(description="``/api/grid-squares/{id}/image`` serves its image.")
    frame_width_px: int | None = Field(
        description="Width of the image the hole positions refer to; null: the served one."
    )
    frame_height_px: int | None
    holes: list[FoilHoleSummary]


class FoilHoleMovie(_Read):
    """A movie taken in a foil hole, with its results."""

    movie_id: int
    data_collection_id: int
    movie_number: int | None
    path: str = Field(description="The movie's file.")
    resolution_a: float | None = Field(description="CTF fit resolution, Å.")
    ice_median: float | None
    total_motion_a: float | None = Field(description="Total motion, Å.")
    particles: float | None


class AlertOut(_Read):
    """One occurrence of an alert: open while ``cleared_at`` is null."""

    alert_id: int
    rule: str = Field(description="stalled, failure_rate, backlog, out_of_bounds or no_consumers.")
    key: str = Field(description="What it is about: rule, data collection, measure or queue.")
    session_id: int | None
    data_collection_id: int | None
    message: str
    raised_at: dt.datetime
    cleared_at: dt.datetime | None
    delivery: str = Field(description="What delivery did (e-mails sent, webhook status).")


class VisitAlertsOut(_Read):
    """A visit's alerts and whether its members get them by e-mail."""

    email: bool
    alerts: list[AlertOut]


class PauseState(_Read):
    """Whether a data collection's processing is paused, and how much work is held."""

    data_collection_id: int
    paused: bool
    held: int


class CurationCounts(_Read):
    """How many movies count, and how many fail each reason (a movie may fail several)."""

    movies: int
    accepted: int
    rejected: int
    by_reason: dict[str, int] = Field(
        description="Per reason (a measure's name, or 'manual'), the movies it rejects."
    )


class CurationMovies(_Read):
    """The measures curation judges, one column per measure, in acquisition order (None: not
    yet recorded), with each movie's decision. Defocus in µm, positive is underfocus."""

    movie_id: list[int]
    movie_number: list[int | None]
    total_motion_a: list[float | None]
    early_motion_a: list[float | None]
    defocus_um: list[float | None]
    astigmatism_a: list[float | None]
    resolution_a: list[float | None]
    ctf_fom: list[float | None]
    ice_median: list[float | None]
    particles: list[int | None]
    manual: list[Literal["accept", "reject"] | None]
    accepted: list[bool]
    reasons: list[list[str]]


class Curation(_Read):
    """A data collection's curation: the thresholds in force, the counts and the movies."""

    data_collection_id: int
    thresholds: CurationThresholds
    own: bool = Field(description="The collection's own thresholds (false: the facility's).")
    changed_by: str | None
    changed_at: dt.datetime | None
    counts: CurationCounts
    movies: CurationMovies


class ManualDecision(BaseModel):
    """A user's decision on one movie; null lets the thresholds decide again."""

    model_config = ConfigDict(extra="forbid")

    decision: Literal["accept", "reject"] | None
