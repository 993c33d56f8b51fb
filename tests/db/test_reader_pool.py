"""The read-only SQLite engine serves many threads at once (the web server's thread pool)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import sqlalchemy as sa

from cryolive.db import make_engine, upgrade


def test_read_only_engine_serves_many_threads(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cryolive.sqlite'}"
    writer = make_engine(url)
    upgrade(writer)
    writer.dispose()
    reader = make_engine(url, writer=False)

    def read(_: int) -> int:
        total = 0
        for _ in range(30):
            with reader.connect() as connection, connection.begin():
                total += connection.execute(sa.text("SELECT count(*) FROM Person")).scalar_one()
                total += 1
        return total

    with ThreadPoolExecutor(max_workers=16) as pool:
        assert list(pool.map(read, range(64))) == [30] * 64
    reader.dispose()
