"""cryolive's own tables, beside ISPyB's. Every name starts with ``cryolive_`` so nobody
mistakes them for ISPyB tables; they are created and migrated by Alembic."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class OwnBase(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


class WorkKey(OwnBase):
    """The natural key of a row cryolive wrote into an ISPyB table.

    ISPyB has no unique constraint on, say, a movie's path within its data collection, so the
    idempotent upserts keep their own: ``natural_key`` (128 bits of a SHA-256 of the table and
    the key's parts) is the primary key, and points at the row's id in ``table_name``.
    """

    __tablename__ = "cryolive_work_key"

    natural_key: Mapped[bytes] = mapped_column(sa.BINARY(16), primary_key=True)
    table_name: Mapped[str] = mapped_column(sa.String(64))
    row_id: Mapped[int] = mapped_column(sa.BigInteger)
    created_at: Mapped[dt.datetime] = mapped_column(
        sa.DateTime, server_default=sa.func.current_timestamp()
    )


class Credential(OwnBase):
    """A local password (argon2 hash) for an ISPyB Person."""

    __tablename__ = "cryolive_credential"

    person_id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=False)
    password_hash: Mapped[str] = mapped_column(sa.String(255))
    updated_at: Mapped[dt.datetime] = mapped_column(sa.DateTime, default=_now, onupdate=_now)


class WorkItem(OwnBase):
    """Work that is due: the reconciler re-sends an item whose result has not been recorded.

    ``key`` names the work (a movie in one processing run); ``message`` is the message that
    starts it and ``queue`` where it goes, so it can be sent again without the broker's memory.
    """

    __tablename__ = "cryolive_work_item"
    __table_args__ = (sa.Index("ix_cryolive_work_item_open", "done_at", "dispatched_at"),)

    key: Mapped[str] = mapped_column(sa.String(128), primary_key=True)
    queue: Mapped[str] = mapped_column(sa.String(128))
    message: Mapped[str] = mapped_column(sa.Text)
    dispatched_at: Mapped[dt.datetime] = mapped_column(sa.DateTime, default=_now)
    attempts: Mapped[int] = mapped_column(sa.Integer, default=1)
    done_at: Mapped[dt.datetime | None] = mapped_column(sa.DateTime, nullable=True)
    # How it ended once closed: "done", "failed" (bad input: never re-sent) or "cancelled".
    outcome: Mapped[str | None] = mapped_column(sa.String(16), nullable=True)


class WebSession(OwnBase):
    """A web login, until it is ended: logging out ends one; a password change or losing staff
    rights ends all of the person's. The session cookie carries a random nonce; the row is keyed
    by its SHA-256, so reading this table does not give anyone a cookie."""

    __tablename__ = "cryolive_web_session"
    __table_args__ = (sa.Index("ix_cryolive_web_session_person_id", "person_id"),)

    key: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    person_id: Mapped[int] = mapped_column(sa.Integer)
    created_at: Mapped[dt.datetime] = mapped_column(sa.DateTime, default=_now)
    expires_at: Mapped[dt.datetime] = mapped_column(sa.DateTime)


class Alert(OwnBase):
    """One occurrence of an alert: raised when its rule first holds, cleared when it no longer
    does. A rule's subject (``key``: rule, scope and measure, e.g.
    ``out_of_bounds:dc:7:defocus_um``) has at most one open row (``cleared_at`` NULL); the
    closed rows are its history."""

    __tablename__ = "cryolive_alert"
    __table_args__ = (
        sa.Index("ix_cryolive_alert_key_cleared_at", "key", "cleared_at"),
        sa.Index("ix_cryolive_alert_session_id", "session_id"),
    )

    alert_id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(sa.String(128))
    rule: Mapped[str] = mapped_column(sa.String(32))
    session_id: Mapped[int | None] = mapped_column(sa.Integer, nullable=True)
    data_collection_id: Mapped[int | None] = mapped_column(sa.Integer, nullable=True)
    message: Mapped[str] = mapped_column(sa.String(1000))
    raised_at: Mapped[dt.datetime] = mapped_column(sa.DateTime, default=_now)
    cleared_at: Mapped[dt.datetime | None] = mapped_column(sa.DateTime, nullable=True)
    # What delivery did: "email 2, webhook ok", or the error.
    delivery: Mapped[str] = mapped_column(sa.String(255), default="")


class VisitAlerts(OwnBase):
    """A visit whose members asked for alerts by e-mail (the opt-in)."""

    __tablename__ = "cryolive_visit_alerts"

    session_id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=False)
    enabled: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    changed_by: Mapped[str] = mapped_column(sa.String(64), default="")
    changed_at: Mapped[dt.datetime] = mapped_column(sa.DateTime, default=_now, onupdate=_now)


class PausedCollection(OwnBase):
    """A data collection whose new work is held (paused by a user) until resumed."""

    __tablename__ = "cryolive_paused_collection"

    data_collection_id: Mapped[int] = mapped_column(
        sa.Integer, primary_key=True, autoincrement=False
    )
    paused_by: Mapped[str] = mapped_column(sa.String(64))
    paused_at: Mapped[dt.datetime] = mapped_column(sa.DateTime, default=_now)


class HeldWork(OwnBase):
    """Work recorded in the ledger but not published, because its collection is paused: the
    pipeline publishes it on resume. The reconciler leaves held work alone."""

    __tablename__ = "cryolive_held_work"
    __table_args__ = (sa.Index("ix_cryolive_held_work_data_collection_id", "data_collection_id"),)

    key: Mapped[str] = mapped_column(sa.String(128), primary_key=True)
    data_collection_id: Mapped[int] = mapped_column(sa.Integer)
    queue: Mapped[str] = mapped_column(sa.String(128))
    message: Mapped[str] = mapped_column(sa.Text)
    held_at: Mapped[dt.datetime] = mapped_column(sa.DateTime, default=_now)


class CurationThresholdsRow(OwnBase):
    """A data collection's curation thresholds (``cryolive.config.CurationThresholds`` as
    JSON), and who changed them last and when; a collection without a row uses the
    facility's defaults."""

    __tablename__ = "cryolive_curation_thresholds"

    data_collection_id: Mapped[int] = mapped_column(
        sa.Integer, primary_key=True, autoincrement=False
    )
    thresholds: Mapped[str] = mapped_column(sa.Text)
    changed_by: Mapped[str | None] = mapped_column(sa.String(64), nullable=True)
    changed_at: Mapped[dt.datetime] = mapped_column(sa.DateTime, default=_now, onupdate=_now)


class CurationDecision(OwnBase):
    """Whether a movie counts: ``accepted``, the ``reasons`` it does not (JSON list of names:
    the thresholds it fails, or "manual"), and a user's ``manual`` override ("accept" or
    "reject", None: the thresholds decide). ISPyB has no column for it."""

    __tablename__ = "cryolive_curation_decision"
    __table_args__ = (
        sa.Index("ix_cryolive_curation_decision_data_collection_id", "data_collection_id"),
    )

    movie_id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=False)
    data_collection_id: Mapped[int] = mapped_column(sa.Integer)
    accepted: Mapped[bool] = mapped_column(sa.Boolean)
    reasons: Mapped[str] = mapped_column(sa.Text)
    manual: Mapped[str | None] = mapped_column(sa.String(8), nullable=True)
    manual_by: Mapped[str | None] = mapped_column(sa.String(64), nullable=True)
    decided_at: Mapped[dt.datetime] = mapped_column(sa.DateTime, default=_now, onupdate=_now)


class ClassChoice(OwnBase):
    """A person's choice for one 2D class (ParticleClassification): selected or not, over the
    2D engine's automatic selection. No row: the automatic selection stands."""

    __tablename__ = "cryolive_class_choice"

    particle_classification_id: Mapped[int] = mapped_column(
        sa.Integer, primary_key=True, autoincrement=False
    )
    selected: Mapped[bool] = mapped_column(sa.Boolean)
    person_id: Mapped[int] = mapped_column(sa.Integer)
    chosen_at: Mapped[dt.datetime] = mapped_column(sa.DateTime, default=_now)


class ClassificationTime(OwnBase):
    """When a 2D classification (ParticleClassificationGroup) ran and how long it took, which
    ISPyB does not record."""

    __tablename__ = "cryolive_classification_time"

    particle_classification_group_id: Mapped[int] = mapped_column(
        sa.Integer, primary_key=True, autoincrement=False
    )
    started_at: Mapped[dt.datetime] = mapped_column(sa.DateTime)
    duration_s: Mapped[float | None] = mapped_column(sa.Float, nullable=True)


class WorkerHeartbeat(OwnBase):
    """A worker process, as it last reported itself (at most every 30 s).

    One row per process (``host/service/pid``): a process that starts again is a new row, so
    the restarts of a host's workers on a queue are the rows before the newest."""

    __tablename__ = "cryolive_worker_heartbeat"
    __table_args__ = (sa.Index("ix_cryolive_worker_heartbeat_beat_at", "beat_at"),)

    worker: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    service: Mapped[str] = mapped_column(sa.String(64))
    queues: Mapped[str] = mapped_column(sa.String(255))  # comma-separated
    consumers: Mapped[int] = mapped_column(sa.Integer)  # consumer threads per queue
    host: Mapped[str] = mapped_column(sa.String(128))
    pid: Mapped[int] = mapped_column(sa.Integer)
    started_at: Mapped[dt.datetime] = mapped_column(sa.DateTime)
    beat_at: Mapped[dt.datetime] = mapped_column(sa.DateTime)
    handled: Mapped[int] = mapped_column(sa.Integer)


class SeriesRow(OwnBase):
    """A compact copy of what a collection's per-movie charts show, kept by the writer in the
    same transaction as the ISPyB rows it copies (``db.repo._series_rows``).

    ``motion_program_id`` 0: the movie itself (number, acquisition time in epoch seconds, path);
    any other: that program's motion correction of the movie with the CTF fit, ice measurement
    and particle count computed from it (each with its program). The primary key puts a
    collection's rows of one program side by side, so a whole series is one range read instead
    of a join of Movie, MotionCorrection, CTF, RelativeIceThickness and ParticlePicker. The
    values are copied by the database from the ISPyB rows (``FLOAT`` to ``FLOAT``), so they read
    back exactly as those do.
    """

    __tablename__ = "cryolive_series_row"

    data_collection_id: Mapped[int] = mapped_column(
        sa.Integer, primary_key=True, autoincrement=False
    )
    motion_program_id: Mapped[int] = mapped_column(
        sa.Integer, primary_key=True, autoincrement=False
    )
    movie_id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=False)
    movie_number: Mapped[int | None] = mapped_column(sa.Integer, nullable=True)
    created_s: Mapped[int | None] = mapped_column(sa.BigInteger, nullable=True)
    path: Mapped[str | None] = mapped_column(sa.String(255), nullable=True)
    motion_correction_id: Mapped[int | None] = mapped_column(sa.Integer, nullable=True)
    total_motion: Mapped[float | None] = mapped_column(sa.Float, nullable=True)
    ctf_program_id: Mapped[int | None] = mapped_column(sa.Integer, nullable=True)
    defocus: Mapped[float | None] = mapped_column(sa.Float, nullable=True)
    astigmatism: Mapped[float | None] = mapped_column(sa.Float, nullable=True)
    resolution: Mapped[float | None] = mapped_column(sa.Float, nullable=True)
    ice_program_id: Mapped[int | None] = mapped_column(sa.Integer, nullable=True)
    ice_median: Mapped[float | None] = mapped_column(sa.Float, nullable=True)
    picker_program_id: Mapped[int | None] = mapped_column(sa.Integer, nullable=True)
    particles: Mapped[int | None] = mapped_column(sa.Integer, nullable=True)
