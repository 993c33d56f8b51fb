"""Linux inotify through ``ctypes``: the watcher is told at once when a file is closed after
writing, or renamed, in a folder it watches, instead of finding it at the next poll.

Only for local file systems (:func:`local_file_system`): on NFS, CIFS, Lustre, GPFS … inotify
sees only the changes made on this host, so the microscope's writes would go unseen. Polling
stays the rule everywhere; events only make the watcher look sooner.
"""

from __future__ import annotations

import ctypes
import errno
import logging
import os
import select
import struct
import sys
from pathlib import Path

log = logging.getLogger(__name__)

IN_CLOSE_WRITE = 0x00000008
IN_MOVED_TO = 0x00000080
IN_CREATE = 0x00000100
IN_Q_OVERFLOW = 0x00004000
IN_IGNORED = 0x00008000
IN_ONLYDIR = 0x01000000
IN_ISDIR = 0x40000000
_IN_NONBLOCK = os.O_NONBLOCK
_IN_CLOEXEC = os.O_CLOEXEC
_MASK = IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_ONLYDIR
_EVENT = struct.Struct("iIII")  # wd, mask, cookie, len (then the name, NUL-padded)

# File systems whose changes the kernel sees all of: inotify is trusted there.
LOCAL = frozenset(
    {"ext2", "ext3", "ext4", "xfs", "btrfs", "tmpfs", "zfs", "f2fs", "jfs", "bcachefs", "ramfs"}
)


def file_system_type(path: Path, mountinfo: str = "/proc/self/mountinfo") -> str | None:
    """The type of the file system holding ``path`` (the longest mount point above it)."""
    try:
        lines = Path(mountinfo).read_text().splitlines()
    except OSError:
        return None
    target = os.path.realpath(path)
    best, kind = "", None
    for line in lines:
        left, _, right = line.partition(" - ")
        fields = left.split()
        if len(fields) < 5 or not right:
            continue
        point = fields[4].replace("\\040", " ")
        inside = target == point or target.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best):
            best, kind = point, right.split()[0]
    return kind


def local_file_system(path: Path) -> bool:
    return sys.platform == "linux" and file_system_type(path) in LOCAL


class Inotify:
    """One inotify instance: folders added with :meth:`add`, events read with :meth:`read`."""

    def __init__(self) -> None:
        self._libc = ctypes.CDLL(None, use_errno=True)
        fd = self._libc.inotify_init1(_IN_NONBLOCK | _IN_CLOEXEC)
        if fd < 0:
            code = ctypes.get_errno()
            raise OSError(code, f"inotify_init1: {os.strerror(code)}")
        self.fd: int = fd
        self._folders: dict[int, Path] = {}
        self.full = False  # the kernel's limit of watches was reached: polling only for the rest

    def add(self, folder: Path) -> bool:
        """Watch ``folder`` (not its subfolders); False when it cannot be watched."""
        if self.full:
            return False
        wd = self._libc.inotify_add_watch(self.fd, os.fsencode(folder), _MASK)
        if wd < 0:
            code = ctypes.get_errno()
            if code == errno.ENOSPC:
                self.full = True
                log.warning(
                    "the kernel's inotify watch limit is reached (fs.inotify.max_user_watches):"
                    " the remaining folders are polled only"
                )
            return False
        self._folders[wd] = folder
        return True

    def wait(self, timeout_s: float) -> bool:
        """Whether events are waiting (after at most ``timeout_s``)."""
        readable, _, _ = select.select([self.fd], [], [], max(0.0, timeout_s))
        return bool(readable)

    def read(self) -> tuple[list[tuple[Path, str, int]], bool]:
        """The waiting events as (folder, name, mask), and whether the kernel dropped some (its
        queue overflowed: a full scan is then the only way to know)."""
        events: list[tuple[Path, str, int]] = []
        overflow = False
        while True:
            try:
                data = os.read(self.fd, 65536)
            except BlockingIOError:
                break
            if not data:
                break
            at = 0
            while at + _EVENT.size <= len(data):
                wd, mask, _, size = _EVENT.unpack_from(data, at)
                raw = data[at + _EVENT.size : at + _EVENT.size + size]
                at += _EVENT.size + size
                if mask & IN_Q_OVERFLOW:
                    overflow = True
                    continue
                if mask & IN_IGNORED:  # the folder is gone
                    self._folders.pop(wd, None)
                    continue
                folder = self._folders.get(wd)
                if folder is not None:
                    events.append((folder, os.fsdecode(raw.rstrip(b"\0")), mask))
        return events, overflow

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
