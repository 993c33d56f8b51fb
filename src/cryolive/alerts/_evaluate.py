"""The evaluator: every pass reads what the rules need for each data collection of a visit
under way (a few indexed queries each), raises the alerts that newly hold, clears those that
no longer do, and delivers the raised ones once, after the commit."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from cryolive.alerts._deliver import Notice, post_webhook, send_email
from cryolive.alerts._rules import backlogged, failing, out_of_bounds, stalled, unconsumed
from cryolive.config import AlertsSettings
from cryolive.db.models import Alert
from cryolive.db.repo import alerts as repo

log = logging.getLogger(__name__)

# A queue's consumers (``Transport.stats(queue).consumers``), or None when unknown.
Consumers = Callable[[str], int | None]


@dataclass(frozen=True)
class _Verdict:
    key: str
    rule: str
    holds: bool | None
    message: str
    session_id: int | None = None
    data_collection_id: int | None = None
    visit: str = ""


def _epoch(when: dt.datetime) -> float:
    return when.replace(tzinfo=dt.UTC).timestamp()


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class Evaluator:
    """Checks the rules of ``settings`` against the database (and the broker's queues)."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        settings: AlertsSettings,
        *,
        public_url: str,
        consumers: Consumers | None = None,
        beamlines: Sequence[str] = (),
    ) -> None:
        self._sessions = sessions
        self._beamlines = tuple(beamlines)
        self._settings = settings
        self._public_url = public_url.rstrip("/")
        self._consumers = consumers

    def _collection_verdicts(self, session: Session, now: dt.datetime) -> list[_Verdict]:
        s = self._settings
        verdicts = []
        live = repo.live_collections(session, now=now, beamlines=self._beamlines)
        newest: dict[int, repo.LiveCollection] = {}  # per visit, its collection moved last
        for c in live:
            best = newest.get(c.session_id)
            if best is None or (c.last_movie or dt.datetime.min) > (
                best.last_movie or dt.datetime.min
            ):
                newest[c.session_id] = c
        for c in newest.values():  # a visit stalls, not a grid it has finished with
            last = None if c.last_movie is None else _epoch(c.last_movie)
            quiet = "" if last is None else f"{(_epoch(now) - last) / 60:.0f} min"
            verdicts.append(
                _Verdict(
                    f"stalled:visit:{c.session_id}",
                    "stalled",
                    stalled(last, _epoch(now), after_s=s.stalled_after_s),
                    f"no new movie for {quiet} (the last in {c.directory})",
                    visit=c.visit,
                    session_id=c.session_id,
                    data_collection_id=c.data_collection_id,
                )
            )
        for c in live:
            where = {"session_id": c.session_id, "data_collection_id": c.data_collection_id}
            dc = f"dc:{c.data_collection_id}"
            failed, closed = repo.outcomes(session, data_collection_id=c.data_collection_id)
            verdicts.append(
                _Verdict(
                    f"failures:{dc}",
                    "failure_rate",
                    failing(failed, closed, max_rate=s.failure_rate_max),
                    f"{failed} of the last {closed} movies of {c.directory} failed",
                    visit=c.visit,
                    **where,
                )
            )
            oldest = repo.oldest_open(session, data_collection_id=c.data_collection_id)
            age = "" if oldest is None else f"{(now - oldest).total_seconds() / 60:.0f} min"
            verdicts.append(
                _Verdict(
                    f"backlog:{dc}",
                    "backlog",
                    backlogged(
                        None if oldest is None else _epoch(oldest),
                        _epoch(now),
                        max_s=s.backlog_max_s,
                    ),
                    f"the oldest unfinished work of {c.directory} waits for {age}",
                    visit=c.visit,
                    **where,
                )
            )
            values = repo.latest_values(session, data_collection_id=c.data_collection_id)
            for measure, (low, high) in s.bounds.items():
                series = values.get(measure, [])[::-1]  # newest last
                verdicts.append(
                    _Verdict(
                        f"out_of_bounds:{dc}:{measure}",
                        "out_of_bounds",
                        out_of_bounds(series, low, high),
                        f"{measure}: fewer than 25% of the last 25 values of {c.directory} "
                        f"lie within [{low:g}, {high:g}]",
                        visit=c.visit,
                        **where,
                    )
                )
        return verdicts

    def _queue_verdicts(self) -> list[_Verdict]:
        verdicts = []
        for queue in self._settings.watched_queues:
            found = None if self._consumers is None else self._consumers(queue)
            verdicts.append(
                _Verdict(
                    f"no_consumers:{queue}",
                    "no_consumers",
                    None if found is None else unconsumed(found),
                    f"queue {queue} has no consumer: no worker takes its work",
                )
            )
        return verdicts

    def run_once(self, now: dt.datetime | None = None) -> list[int]:
        """One pass; returns the ids of the alerts raised (each delivered once)."""
        now = now or _now()
        raised: list[tuple[int, _Verdict, list[str]]] = []
        with self._sessions.begin() as session:
            verdicts = self._collection_verdicts(session, now) + self._queue_verdicts()
            for v in verdicts:
                if v.holds is False:
                    repo.clear_alert(session, key=v.key, now=now)
                elif v.holds:
                    alert = repo.raise_alert(
                        session,
                        key=v.key,
                        rule=v.rule,
                        message=v.message,
                        now=now,
                        session_id=v.session_id,
                        data_collection_id=v.data_collection_id,
                    )
                    if alert is not None:
                        to = self._recipients(session, v.session_id)
                        raised.append((alert.alert_id, v, to))
            live = {v.key for v in verdicts}
            for key in repo.open_keys(session) - live:
                if ":dc:" in key or ":visit:" in key:  # its visit has ended
                    repo.clear_alert(session, key=key, now=now)
        for alert_id, verdict, to in raised:
            self._deliver(alert_id, verdict, to, now)
        return [alert_id for alert_id, _, _ in raised]

    def _recipients(self, session: Session, session_id: int | None) -> list[str]:
        if session_id is None or not repo.opted_in(session, session_id=session_id):
            return []
        return repo.recipients(session, session_id=session_id)

    def _deliver(self, alert_id: int, v: _Verdict, to: list[str], now: dt.datetime) -> None:
        page = f"/collections/{v.data_collection_id}" if v.data_collection_id else "/staff"
        notice = Notice(
            rule=v.rule,
            key=v.key,
            visit=v.visit,
            data_collection_id=v.data_collection_id,
            message=v.message,
            link=f"{self._public_url}{page}",
            raised_at=now.isoformat(timespec="seconds"),
        )
        done = [
            send_email(self._settings, notice, to),
            post_webhook(self._settings.webhook_url, notice),
        ]
        with self._sessions.begin() as session:
            alert = session.get(Alert, alert_id)
            if alert is not None:
                alert.delivery = "; ".join(d for d in done if d)[:255]
