"""Delivery of an alert: e-mail (SMTP) to the visit's members, and a JSON POST to a webhook
(Slack-compatible ``text``, with the structured fields beside it)."""

from __future__ import annotations

import json
import logging
import smtplib
import urllib.request
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from email.message import EmailMessage

from cryolive.config import AlertsSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Notice:
    """What an alert says: ``state`` is "raised" (a cleared alert is not announced)."""

    rule: str
    key: str
    visit: str
    data_collection_id: int | None
    message: str
    link: str
    raised_at: str

    @property
    def text(self) -> str:
        where = f"{self.visit}: " if self.visit else ""
        return f"cryolive alert ({self.rule}) {where}{self.message} {self.link}"


def send_email(settings: AlertsSettings, notice: Notice, recipients: Sequence[str]) -> str:
    """Mail ``notice`` to ``recipients``; return what happened (for the alert's record)."""
    if not settings.smtp_host or not recipients:
        return ""
    mail = EmailMessage()
    mail["Subject"] = f"[cryolive] {notice.visit or 'facility'}: {notice.rule}"
    mail["From"] = settings.smtp_from
    mail["To"] = ", ".join(recipients)
    mail.set_content(f"{notice.message}\n\n{notice.link}\n\nRaised at {notice.raised_at} UTC.\n")
    try:
        with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=10) as smtp:
            if settings.smtp_starttls:
                smtp.starttls()
            if settings.smtp_user:
                password = settings.smtp_password
                smtp.login(settings.smtp_user, password.get_secret_value() if password else "")
            smtp.send_message(mail)
    except (OSError, smtplib.SMTPException) as exc:
        log.warning("alert e-mail failed: %s", exc)
        return f"email failed: {exc}"[:120]
    return f"email {len(recipients)}"


def post_webhook(url: str, notice: Notice) -> str:
    """POST ``notice`` as JSON to ``url``; return what happened."""
    if not url:
        return ""
    if not url.startswith(("http://", "https://")):
        return "webhook refused: not http(s)"
    body = json.dumps({"text": notice.text, **asdict(notice)}).encode()
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status = int(response.status)
    except OSError as exc:
        log.warning("alert webhook failed: %s", exc)
        return f"webhook failed: {exc}"[:120]
    return f"webhook {status}"
