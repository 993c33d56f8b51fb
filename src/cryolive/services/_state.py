"""A job folder's state file, changed only under an exclusive file lock (several workers may
share a run), and the claim that keeps two workers from running the same planned work."""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

CLAIM_S = 6 * 3600.0  # how long a claim from another host holds (a 3D step runs for hours)


@contextmanager
def locked_state(
    folder: Path, new: Callable[[], dict[str, Any]], name: str = "state.json"
) -> Iterator[dict[str, Any]]:
    """``folder/NAME`` (``new()`` when absent), read and written under a lock."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        path = folder / name
        state: dict[str, Any] = json.loads(path.read_text()) if path.exists() else new()
        yield state
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=1))
        os.replace(tmp, path)


def claim(item: dict[str, Any], hold_s: float = CLAIM_S) -> bool:
    """Take planned work unless another live process holds it: a claim by a dead process of
    this host is taken over at once, one from another host is trusted for ``hold_s``."""
    host, pid, when = item.get("claimed_by") or ("", 0, 0.0)
    here, me = socket.gethostname(), os.getpid()
    if host == here and pid != me and _alive(int(pid)):
        return False
    if host and host != here and time.time() - float(when) < hold_s:
        return False
    item["claimed_by"] = [here, me, time.time()]
    return True


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
