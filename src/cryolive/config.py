"""One typed ``Settings`` object for every part of cryolive.

Values come, highest priority first, from keyword arguments, ``CRYOLIVE_…`` environment
variables (nested with ``__``, e.g. ``CRYOLIVE_WEB__PORT=8080``), an optional TOML file
(``cryolive --config site.toml …``) and the defaults below. Nothing is read at import time:
call :func:`load_settings` (or the cached :func:`get_settings`) and pass the result on.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

EMBEDDED_BROKER = "memory://"
# What an out-of-bounds alert may watch (the series of a data collection).
MEASURES = (
    "total_motion_a",
    "defocus_um",
    "astigmatism_a",
    "resolution_a",
    "ice_median",
    "particles",
)


class WebSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    secret: SecretStr | None = Field(
        default=None,
        description="Key that signs session cookies: at least 32 bytes, random. Unset: one is "
        "generated once and kept in <data_root>/web-secret (mode 0600).",
    )
    session_hours: float = Field(default=12.0, gt=0, description="How long a login lasts.")
    login_attempts: int = Field(
        default=5, ge=1, description="Failed logins per client and login in 5 minutes."
    )
    client_login_attempts: int = Field(
        default=30, ge=1, description="Failed logins per client, whatever the login, in 5 minutes."
    )
    reader_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL the web server reads through (MariaDB: the read-only "
        "account); default: database_url. Its few writes (requests, stops, logins) go through "
        "database_url (the writer account).",
    )
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="Addresses or networks (CIDR) of reverse proxies whose X-Forwarded-For and "
        "X-Forwarded-Proto headers are believed; none by default.",
    )
    live_interval_s: float = Field(
        default=2.0, gt=0, description="How often live pages look for new results."
    )
    reprocess_open_per_collection: int = Field(
        default=3,
        ge=1,
        description="Reprocess requests a data collection may have requested or running at once.",
    )
    reprocess_per_user_hour: int = Field(
        default=10, ge=1, description="Reprocess requests one person may make in an hour."
    )
    staff_beamlines: list[str] = Field(
        default_factory=list,
        description="The microscopes (BLSession.beamLineName) the staff area shows; empty: "
        "ISPyB's electron-microscope names m01-m99 and e01-e99 (MX beamlines stay out).",
    )
    public_url: str = Field(
        default="http://127.0.0.1:8000",
        description="The address users reach the web at: alerts link to its pages.",
    )
    chart_bundle: Path | None = Field(
        default=None,
        description="plotly.js's partial (cartesian) bundle, plotly-cartesian.min.js of npm's "
        "plotly.js-cartesian-dist-min at the pinned version; default: "
        "<sys.prefix>/share/cryolive/, where `make` puts it. Absent or not the pinned file: the "
        "pages load the full plotly.min.js (a warning is logged).",
    )
    visit_folder: str = Field(
        default="/dls/{microscope}/data/{year}/{visit}",
        description="A visit's folder, from {visit}, {microscope} and {year} (of its start): "
        "data collections registered by hand must lie inside it.",
    )

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for item in value:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError as exc:
                raise ValueError(f"not an IP address or network: {item!r}") from exc
        return value


class WatcherSettings(BaseModel):
    """How the watcher decides that a movie is ready (``CRYOLIVE_WATCHER__…``)."""

    metadata_wait_s: float = Field(
        default=600.0,
        ge=0,
        description="How long a whole movie waits for its metadata (EPU .xml, SerialEM .mdoc) "
        "before it is registered from its header and the optics entered by hand; metadata "
        "that comes later still fills in its Movie row.",
    )
    incomplete_wait_s: float = Field(
        default=300.0,
        ge=0,
        description="How long a movie file that stands still but is not whole (a stalled "
        "writer) waits before it is registered anyway, so that its failure is recorded; it is "
        "tried once more if the file then changes.",
    )


class AlertsSettings(BaseModel):
    """When the facility is told that something goes wrong, and how (``CRYOLIVE_ALERTS__…``).

    E-mail goes to the members of visits that opted in; the webhook (Slack, Mattermost, Teams)
    gets every alert."""

    interval_s: float = Field(default=60.0, gt=0, description="How often the rules are checked.")
    smtp_host: str = Field(default="", description="SMTP server; empty: no e-mail.")
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_user: str = Field(default="", description="SMTP login; empty: none.")
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = Field(default=False, description="Upgrade the connection (STARTTLS).")
    smtp_from: str = Field(default="cryolive@localhost", description="The sender of alerts.")
    webhook_url: str = Field(default="", description="JSON POST target; empty: none.")
    stalled_after_s: float = Field(
        default=1800.0, gt=0, description="No new movie this long while a visit is on: alert."
    )
    failure_rate_max: float = Field(
        default=0.2, ge=0, le=1, description="Failed movies over processed ones (last 50)."
    )
    backlog_max_s: float = Field(
        default=1800.0, gt=0, description="Oldest unfinished work older than this: alert."
    )
    bounds: dict[str, tuple[float, float]] = Field(
        default_factory=lambda: {
            "total_motion_a": (0.0, 40.0),
            "defocus_um": (0.3, 4.0),
            "resolution_a": (0.0, 8.0),
        },
        description="Measure -> (low, high): alert when fewer than 25% of the last 25 values "
        "lie within (total_motion_a, defocus_um, astigmatism_a, resolution_a, ice_median, "
        "particles).",
    )
    watched_queues: list[str] = Field(
        default_factory=list,
        description="Queues that must have a consumer (e.g. motioncorr); empty: none checked.",
    )

    @field_validator("bounds")
    @classmethod
    def _bounds(cls, value: dict[str, tuple[float, float]]) -> dict[str, tuple[float, float]]:
        for name, (low, high) in value.items():
            if name not in MEASURES:
                raise ValueError(f"bounds: unknown measure {name!r} ({', '.join(MEASURES)})")
            if not low < high:
                raise ValueError(f"bounds: {name}: low {low} must be below high {high}")
        return value


class MessagingSettings(BaseModel):
    service_map: dict[str, str] = Field(
        default_factory=dict,
        description="Zocalo service name -> cryolive service name, over the built-in table "
        "(cryolive.messaging.zocalo.SERVICE_MAP); map a name to '' to mark it external.",
    )
    parameter_map: dict[str, str] = Field(
        default_factory=dict,
        description="Zocalo step parameter name -> cryolive message field, over the built-in "
        "table (cryolive.messaging.zocalo.PARAMETER_MAP): 'pixel_size': 'pixel_size_a', "
        "'gain_ref': 'motion.gain_path', 'patch_sizes': 'motion.patches_{key}', "
        "'Service.name' for one service only; '' marks a name cryolive does not use.",
    )


class JobsSettings(BaseModel):
    """Where heavy jobs (3D refinement, post-processing) run: see docs/jobs.md."""

    runner: Literal["local", "slurm"] = Field(
        default="local",
        description="'local': subprocesses on this machine (the embedded demo); 'slurm': sbatch.",
    )
    slurm_partition: str | None = Field(
        default=None, description="sbatch --partition; default: the cluster's default partition."
    )
    slurm_extra_args: list[str] = Field(
        default_factory=list,
        description="More sbatch arguments, each one item, e.g. ['--account=em', '--gres=gpu:1'].",
    )
    max_resubmits: int = Field(
        default=2,
        ge=0,
        description="How often a job that Slurm ends with NODE_FAIL or BOOT_FAIL (a machine's "
        "failure, not the job's) is submitted again.",
    )


class CurationThresholds(BaseModel):
    """When an exposure counts (``CRYOLIVE_CURATION__…``): each bound that is set rejects the
    movies whose measure lies outside it; a bound left unset (the default) rejects nothing, nor
    does a measure not yet computed. Units: motion, astigmatism and resolution in Å, defocus in
    µm (positive is underfocus), ice thickness relative (the ice measure's median), particles
    per micrograph a count, the CTF figure of merit its fit's cross-correlation."""

    model_config = ConfigDict(extra="forbid")

    total_motion_max_a: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    early_motion_max_a: float | None = Field(
        default=None,
        ge=0,
        allow_inf_nan=False,
        description="Drift over the first frames (the motion engine's early motion), Å.",
    )
    defocus_min_um: float | None = Field(default=None, allow_inf_nan=False)
    defocus_max_um: float | None = Field(default=None, allow_inf_nan=False)
    astigmatism_max_a: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    ctf_resolution_max_a: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    ctf_fom_min: float | None = Field(default=None, allow_inf_nan=False)
    ice_min: float | None = Field(default=None, allow_inf_nan=False)
    ice_max: float | None = Field(default=None, allow_inf_nan=False)
    particles_min: int | None = Field(default=None, ge=0)
    particles_max: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _ranges(self) -> CurationThresholds:
        for low, high in (
            ("defocus_min_um", "defocus_max_um"),
            ("ice_min", "ice_max"),
            ("particles_min", "particles_max"),
        ):
            lo, hi = getattr(self, low), getattr(self, high)
            if lo is not None and hi is not None and lo > hi:
                raise ValueError(f"{low} ({lo}) must not be above {high} ({hi})")
        return self


class Settings(BaseSettings):
    """Settings of one cryolive deployment."""

    model_config = SettingsConfigDict(
        env_prefix="CRYOLIVE_", env_nested_delimiter="__", extra="forbid"
    )

    data_root: Path = Field(
        default=Path("data"), description="Where cryolive keeps its own state (SQLite file, logs)."
    )
    processing_root: Path = Field(
        default=Path("data/processed"), description="Where processed results are written."
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL; default: a SQLite file in data_root. "
        "At a facility: mysql+pymysql://user:password@host/ispyb",
    )
    broker_url: str = Field(
        default=EMBEDDED_BROKER,
        description="'memory://' for the embedded broker, or amqp://user:password@host:5672// "
        "(add ?dead_letters=zocalo for dead-letter queues named dlq.<queue>, as Zocalo's).",
    )
    broker_prefix: str = Field(
        default="",
        description="Prepended to every queue name (separates deployments sharing a broker).",
    )
    broker_delivery_limit: int = Field(
        default=10,
        ge=1,
        description="Redeliveries (crashed workers) after which RabbitMQ dead-letters a message.",
    )
    atlas_roots: list[Path] = Field(
        default_factory=list,
        description="Folders where EPU's atlases may lie when not inside the visit's folder "
        "(EpuSession.dm's AtlasId is looked for under each).",
    )
    web: WebSettings = WebSettings()
    watcher: WatcherSettings = WatcherSettings()
    messaging: MessagingSettings = MessagingSettings()
    jobs: JobsSettings = JobsSettings()
    alerts: AlertsSettings = AlertsSettings()
    curation: CurationThresholds = CurationThresholds()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))

    @property
    def database(self) -> str:
        """The database URL in force: the configured one, or SQLite in ``data_root``."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_root / 'cryolive.sqlite').resolve()}"

    @property
    def embedded_broker(self) -> bool:
        return self.broker_url.startswith(EMBEDDED_BROKER)

    @property
    def dead_letter_journal(self) -> Path:
        """Where the embedded broker also keeps its dead letters, for other processes."""
        return self.data_root / "dead-letters"


def load_settings(config_file: Path | None = None, **overrides: object) -> Settings:
    """Build settings, reading ``config_file`` (TOML) when given."""
    if config_file is None:
        return Settings(**overrides)  # type: ignore[arg-type]
    if not config_file.is_file():
        raise ValueError(f"config_file: no such file: {config_file}")

    class _FromFile(Settings):
        model_config = SettingsConfigDict(**{**Settings.model_config, "toml_file": config_file})

    return _FromFile(**overrides)  # type: ignore[arg-type]


@lru_cache(maxsize=4)
def get_settings(config_file: Path | None = None) -> Settings:
    """The process's settings, built once per config file."""
    return load_settings(config_file)
