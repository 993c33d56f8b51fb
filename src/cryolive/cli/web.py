"""``cryolive web``: serve the web application with uvicorn."""

from __future__ import annotations

import typer

from cryolive.cli import settings_of


def serve(
    ctx: typer.Context,
    host: str | None = typer.Option(None, help="Address to listen on [settings.web.host]."),
    port: int | None = typer.Option(None, help="Port to listen on [settings.web.port]."),
) -> None:
    """Serve the web application (pages, JSON API under /api, OpenAPI at /docs).

    Refuses to start with an empty, short (< 32 bytes) or published session secret (with none
    configured it generates one once in <data_root>/web-secret, mode 0600), and on a database
    whose schema is behind this version of cryolive (pages would fail on missing tables):
    `cryolive db upgrade` first.
    """
    import uvicorn

    from cryolive.db import current, make_engine
    from cryolive.web import create_app
    from cryolive.web.secret import WeakSecret

    settings = settings_of(ctx)
    try:
        app = create_app(settings)
    except WeakSecret as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    engine = make_engine(settings.database)
    try:
        state = current(engine)
    finally:
        engine.dispose()
    if not state.up_to_date:
        lacks = [*state.ispyb_tables_missing, *state.ispyb_columns_missing]
        if state.own_revision != state.own_head:
            own = state.own_revision or "none"
            lacks.append(f"cryolive's tables at {own}, not {state.own_head}")
        typer.echo(
            f"error: the database is behind this cryolive ({'; '.join(lacks[:5])}): "
            "run `cryolive db upgrade` (`cryolive db current` says what is missing)",
            err=True,
        )
        raise typer.Exit(2)
    uvicorn.run(
        app,
        host=host or settings.web.host,
        port=port or settings.web.port,
        # X-Forwarded-* are believed from settings.web.trusted_proxies only, by the app itself
        # (uvicorn's own handling would believe 127.0.0.1 whatever the settings say)
        proxy_headers=False,
        timeout_graceful_shutdown=5,
    )
