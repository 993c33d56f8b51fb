"""``cryolive web``: serve the web application with uvicorn."""

from __future__ import annotations

import typer

from cryolive.cli import settings_of


def serve(
    ctx: typer.Context,
    host: str | None = typer.Option(None, help="Address to listen on [settings.web.host]."),
    port: int | None = typer.Option(None, help="Port to listen on [settings.web.port]."),
) -> None:
    """Serve the web application (pages, JSON API under /api, OpenAPI at /docs)."""
    import uvicorn

    from cryolive.web import create_app

    settings = settings_of(ctx)
    if settings.web.secret.get_secret_value() == "change-me-in-production":
        typer.echo(
            "warning: settings.web.secret is the default; set CRYOLIVE_WEB__SECRET", err=True
        )
    uvicorn.run(
        create_app(settings),
        host=host or settings.web.host,
        port=port or settings.web.port,
        proxy_headers=True,
        timeout_graceful_shutdown=5,
    )
