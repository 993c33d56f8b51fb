"""The key that signs session cookies: refused when weak, generated once when not configured.

Whoever knows the key can sign a cookie for any person, staff included, so the web
application never starts with one that is empty, shorter than :data:`MIN_SECRET_BYTES`, or
known (the old shipped default and every example value in the documentation). When
``settings.web.secret`` is unset, a random key is generated once and kept in
``<data_root>/web-secret`` (mode 0600), and every later start (and every server process on
that data root) reuses it: ``make demo`` and ``cryolive demo`` need no set-up.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from pathlib import Path

from cryolive.config import Settings

MIN_SECRET_BYTES = 32
SECRET_FILE = "web-secret"
# Secrets that have been published: the old shipped default and the values written in docs
# and tests. Anyone can sign a cookie with them.
KNOWN_SECRETS = frozenset(
    {
        "change-me-in-production",
        "changeme",
        "change-me",
        "secret",
        "test-secret",
        "bench-secret",
        "replace-with-a-long-random-secret",
        "replace-with-at-least-32-random-bytes-of-your-own",
    }
)


class WeakSecret(ValueError):
    """The configured session secret must not be used."""


def check_secret(value: str, *, source: str = "settings.web.secret") -> str:
    """``value`` when it is fit to sign sessions; else :class:`WeakSecret` saying why."""
    how = (
        "set CRYOLIVE_WEB__SECRET (or web.secret in the config file) to at least "
        f"{MIN_SECRET_BYTES} random bytes, e.g. the output of "
        "`python -c 'import secrets; print(secrets.token_urlsafe(48))'`, or unset it to have "
        f"one generated in <data_root>/{SECRET_FILE}"
    )
    if not value.strip():
        raise WeakSecret(f"{source} is empty: {how}")
    if value.strip().lower() in KNOWN_SECRETS:
        raise WeakSecret(
            f"{source} is a published example ({value.strip()!r}): anyone could sign a session "
            f"cookie with it; {how}"
        )
    if len(value.encode()) < MIN_SECRET_BYTES:
        raise WeakSecret(
            f"{source} is too short ({len(value.encode())} bytes, at least "
            f"{MIN_SECRET_BYTES} needed): {how}"
        )
    if len(set(value)) < 8:
        raise WeakSecret(f"{source} repeats a few characters: {how}")
    return value


def secret_file(settings: Settings) -> Path:
    return settings.data_root / SECRET_FILE


def session_secret(settings: Settings) -> str:
    """The key in force: the configured one (checked), or the data root's generated one."""
    if settings.web.secret is not None:
        return check_secret(settings.web.secret.get_secret_value())
    return _generated(secret_file(settings))


def _generated(path: Path) -> str:
    """The key kept in ``path``, made (mode 0600, atomically) when there is none."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        draft = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w") as out:
                out.write(secrets.token_urlsafe(48) + "\n")
                out.flush()
                os.fsync(out.fileno())
            with contextlib.suppress(FileExistsError):  # another process made it first
                os.link(draft, path)
        finally:
            draft.unlink(missing_ok=True)
    mode = path.stat().st_mode
    if not stat.S_ISREG(mode):
        raise WeakSecret(f"{path}: not a plain file")
    if mode & 0o077:
        raise WeakSecret(
            f"{path} can be read by others (mode {stat.S_IMODE(mode):04o}): "
            f"`chmod 600 {path}`, or delete it to have a new one generated (logs everyone out)"
        )
    return check_secret(path.read_text().strip(), source=str(path))
