"""``cryolive worker`` (one service's consumers) and ``cryolive dlq`` (dead letters)."""

from __future__ import annotations

import json
import signal

import typer
from rich.console import Console
from rich.table import Table

from cryolive.cli import settings_of
from cryolive.messaging import Transport, Worker, open_transport
from cryolive.messaging.dlq import list_dead, purge_dead, reinject
from cryolive.messaging.zocalo import Translation

dlq_app = typer.Typer(no_args_is_help=True, help="Dead letters: list, show, reinject, purge.")


def _transport(ctx: typer.Context) -> Transport:
    """The configured broker; for the embedded one, its dead-letter journal (the queues
    themselves live in the pipeline's process)."""
    settings = settings_of(ctx)
    options: dict[str, object] = {"delivery_limit": settings.broker_delivery_limit}
    if settings.embedded_broker:
        options["journal"] = settings.dead_letter_journal
    return open_transport(settings.broker_url, prefix=settings.broker_prefix, **options)


def worker(
    ctx: typer.Context,
    service: str = typer.Option(..., "--service", help="Name of the service to run."),
    concurrency: int = typer.Option(1, "--concurrency", min=1, help="Consumers per queue."),
    queue: list[str] = typer.Option(
        [], "--queue", help="Queue to consume (repeatable); default: the service's name."
    ),
    topic: list[str] = typer.Option(
        [],
        "--topic",
        help="Also take the broadcasts of this topic (Zocalo's topic-only steps), through the "
        "queue '<topic>.<service>' (repeatable).",
    ),
    prefetch: int = typer.Option(
        1,
        "--prefetch",
        min=1,
        help="Unacknowledged per consumer; with a batch handler (the writer), also the most "
        "messages done together (one transaction).",
    ),
    registry_spec: str | None = typer.Option(
        None, "--registry", help="'module:function' returning the service registry."
    ),
    metrics_port: int | None = typer.Option(
        None, "--metrics-port", help="Serve Prometheus metrics on this port."
    ),
    zocalo: bool = typer.Option(
        False,
        "--zocalo",
        help="Also take python-workflows recipe messages (a Zocalo broker's) and send their "
        "outputs on in that form; services map by messaging.service_map.",
    ),
    heartbeats: bool = typer.Option(
        True,
        help="Report this worker in the database every 30 s (the staff area's worker health; "
        "needs the writer account, one small write per beat).",
    ),
    drop_stopped: bool = typer.Option(
        True,
        help="Drop the queued messages of runs a user stopped (reads the database: the "
        "read-only account is enough).",
    ),
) -> None:
    """Run one service's consumers until SIGTERM (the message in hand is finished first)."""
    from prometheus_client import start_http_server

    from cryolive.messaging.logs import configure_json_logging
    from cryolive.messaging.registry import default_registry, registry_from

    settings = settings_of(ctx)
    if settings.embedded_broker:
        raise typer.BadParameter(
            "the embedded broker lives inside one process (cryolive demo/run); "
            "set broker_url to a RabbitMQ amqp:// URL to run a separate worker",
            param_hint="broker_url",
        )
    try:
        registry = registry_from(registry_spec) if registry_spec else default_registry()
        chosen = registry[service]
    except (ValueError, KeyError) as exc:
        raise typer.BadParameter(str(exc).strip("'\""), param_hint="--service") from exc
    configure_json_logging()
    transport = _transport(ctx)
    if zocalo:
        from cryolive.messaging.zocalo import ZocaloTransport

        transport = ZocaloTransport(
            transport,
            known=set(registry),
            table=settings.messaging.service_map,
            parameters=settings.messaging.parameter_map,
            models={name: registry[name].message for name in registry},
        )
    cancelled = None
    if drop_stopped and service != "writer":
        from cryolive.db import make_engine, session_factory
        from cryolive.pipeline.runs import StoppedRuns

        cancelled = StoppedRuns(session_factory(make_engine(settings.database, writer=False)))
    heartbeat = None
    if heartbeats:
        from cryolive.db import make_engine, session_factory
        from cryolive.pipeline.runtime import heartbeats as to_database

        heartbeat = to_database(session_factory(make_engine(settings.database)))
    runner = Worker(
        transport,
        chosen,
        queues=queue,
        topics=topic,
        concurrency=concurrency,
        prefetch=prefetch,
        cancelled=cancelled,
        heartbeat=heartbeat,
    )
    if metrics_port is not None:
        start_http_server(metrics_port, registry=runner.metrics_registry)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: runner.request_stop())
    runner.run()
    transport.close()


@dlq_app.command("list")
def list_cmd(
    ctx: typer.Context,
    queue: str = typer.Argument(..., help="Queue whose dead letters to list."),
    limit: int = typer.Option(100, "--limit", min=1),
) -> None:
    """List the dead letters of QUEUE with their reasons (they stay in place)."""
    table = Table("message id", "key", "recipe/step", "attempt", "reason")
    for dead in list_dead(_transport(ctx), queue, limit=limit):
        table.add_row(
            dead.message_id, dead.key, f"{dead.recipe}/{dead.step}", str(dead.attempt), dead.reason
        )
    Console(width=200).print(table)


@dlq_app.command("show")
def show_cmd(
    ctx: typer.Context,
    queue: str = typer.Argument(...),
    message_id: str = typer.Argument(..., help="Message id, as `dlq list` prints it."),
) -> None:
    """Print one dead letter of QUEUE: its reason and its whole message."""
    for dead in list_dead(_transport(ctx), queue, limit=10_000):
        if dead.message_id == message_id:
            typer.echo(f"reason: {dead.reason}")
            try:
                typer.echo(json.dumps(json.loads(dead.body), indent=2))
            except ValueError:
                typer.echo(repr(dead.body))
            return
    raise typer.BadParameter(f"no dead letter {message_id!r} in {queue}", param_hint="MESSAGE_ID")


@dlq_app.command("reinject")
def reinject_cmd(
    ctx: typer.Context,
    queue: str = typer.Argument(...),
    message_id: list[str] = typer.Option([], "--id", help="Message id (repeatable)."),
    all_: bool = typer.Option(False, "--all", help="Reinject every dead letter of QUEUE."),
) -> None:
    """Send dead letters back to QUEUE, their attempt count reset."""
    if not message_id and not all_:
        raise typer.BadParameter("give --id MESSAGE_ID (repeatable) or --all", param_hint="--id")
    transport = _transport(ctx)
    count = reinject(transport, queue, message_ids=message_id)
    if count == 0 and settings_of(ctx).embedded_broker and transport.dead_letters(queue):
        raise typer.BadParameter(
            "the embedded broker's queues live in the pipeline's process: re-inject from the "
            "staff area of that process (cryolive demo), or use RabbitMQ",
            param_hint="broker_url",
        )
    typer.echo(f"reinjected {count} message(s) into {queue}")


@dlq_app.command("purge")
def purge_cmd(
    ctx: typer.Context,
    queue: str = typer.Argument(...),
    yes: bool = typer.Option(False, "--yes", help="Really drop them."),
) -> None:
    """Drop every dead letter of QUEUE."""
    if not yes:
        raise typer.BadParameter("purging drops messages for good; add --yes", param_hint="--yes")
    typer.echo(f"purged {purge_dead(_transport(ctx), queue)} message(s) from {queue}.dlq")


recipe_app = typer.Typer(no_args_is_help=True, help="Recipes: cryolive's own and Zocalo's.")


def _start_values(items: list[str]) -> dict[str, object]:
    values: dict[str, object] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"{item!r}: expected KEY=VALUE", param_hint="--param")
        try:
            values[key] = json.loads(text)
        except json.JSONDecodeError:
            values[key] = text
    return values


def _marked(value: object) -> object:
    """Placeholders left unfilled, marked for the eye: ``<unfilled:name>``, and ``$name``
    references, filled when the step runs: ``<run time:$name>``."""
    import re

    if isinstance(value, str):
        if re.fullmatch(r"\$[A-Za-z_][A-Za-z0-9_]*", value):
            return f"<run time:{value}>"
        return re.sub(r"\{([A-Za-z_][A-Za-z0-9_.]*)\}", r"<unfilled:\1>", value)
    if isinstance(value, dict):
        return {k: _marked(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_marked(v) for v in value]
    return value


@recipe_app.command("show")
def recipe_show(
    ctx: typer.Context,
    recipe: str = typer.Argument(..., help="A recipe file (cryolive or Zocalo) or a shipped name."),
    param: list[str] = typer.Option(
        [], "--param", help="Start parameter KEY=VALUE (JSON value), repeatable."
    ),
    strict: bool = typer.Option(
        False, "--strict", help="Fail (exit 2) when a {placeholder} has no value."
    ),
    registry_spec: str | None = typer.Option(
        None, "--registry", help="'module:function' returning the services cryolive runs."
    ),
) -> None:
    """Print each step of RECIPE: its service, its queue, its parameters with the start
    parameters filled in, and the cryolive service that runs it (or 'external': another
    worker on the same broker serves it)."""
    from cryolive.messaging.recipe import (
        RecipeError,
        fill_recipe,
        load_recipe,
        missing_placeholders,
        placeholders,
        recipe_path,
    )
    from cryolive.messaging.registry import registry_from
    from cryolive.messaging.zocalo import (
        cryolive_service,
        parameter_map,
        service_map,
        translate,
    )

    settings = settings_of(ctx)
    values = _start_values(param)
    try:
        loaded = load_recipe(recipe_path(recipe))
        filled = fill_recipe(loaded, values, strict=strict)
    except (RecipeError, ValueError) as exc:
        raise typer.BadParameter(str(exc), param_hint="RECIPE / --param") from exc
    if registry_spec:
        try:
            registry = registry_from(registry_spec)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--registry") from exc
    else:
        from cryolive.services import pipeline_registry

        registry = pipeline_registry(settings.database, settings.curation, settings.jobs)
    known = set(registry)
    table_map = service_map(settings.messaging.service_map)
    names = parameter_map(settings.messaging.parameter_map)
    unknown: list[str] = []
    console = Console(width=200)
    console.print(f"recipe {filled.name} ({filled.origin} format), starts at {filled.start}")
    table = Table(
        "step",
        "service",
        "queue",
        "run by",
        "parameters",
        "as cryolive fields",
        "outputs",
        show_lines=True,
    )
    for step_id, step in filled.steps.items():
        runner = cryolive_service(step.service, table_map, known) or "external"
        mapping = "-"
        if runner != "external" and filled.origin == "zocalo":
            found = translate(
                step.service, step.parameters, table=names, model=registry[runner].message
            )
            unknown += [f"{step_id}.{name}" for name in found.unknown]
            mapping = _mapping_text(found)
        shown: dict[str, object] = dict(step.parameters)
        if step.job_parameters:
            shown["job_parameters"] = step.job_parameters
        outputs = {**step.outputs, **({"error": step.error} if step.error else {})}
        table.add_row(
            step_id,
            step.service,
            str(_marked(step.queue)) if step.queue else f"topic {step.topic}",
            runner,
            json.dumps(_marked(shown), indent=1),
            mapping,
            json.dumps(outputs),
        )
    console.print(table, soft_wrap=True)
    for sid, payload in filled.start_payloads.items():
        console.print(f"start payload of step {sid}: {json.dumps(payload)}")
    if filled.error:
        console.print(f"error steps: {filled.error}")
    missing = missing_placeholders(loaded, values)
    if missing:
        console.print(f"unfilled (give --param NAME=VALUE): {', '.join(missing)}")
    references = sorted(r for r in placeholders(loaded)[1] if r not in values)
    if references:
        console.print(f"filled at run time from the environment: {', '.join(references)}")
    if unknown:
        console.print(
            f"unknown parameter names (add them to messaging.parameter_map): {', '.join(unknown)}"
        )
        if strict:
            raise typer.Exit(2)


def _mapping_text(found: Translation) -> str:
    """How a Zocalo step's parameters reach the cryolive service, one line a name."""
    lines = [f"{name} -> {field}" for name, field in found.renamed.items()]
    lines += [f"{name}: ignored ({why})" for name, why in found.ignored.items()]
    lines += [f"{name}: UNKNOWN" for name in found.unknown]
    if found.needed:
        lines.append(f"from environment/payload: {', '.join(found.needed)}")
    return "\n".join(lines) or "-"
