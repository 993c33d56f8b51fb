"""``cryolive admin``: proposals, visits, people and their rights."""

from __future__ import annotations

import datetime as dt
import sys

import typer
from rich.console import Console

from cryolive.cli._db import transaction
from cryolive.db.repo import visits, web_sessions

app = typer.Typer(no_args_is_help=True, help="Proposals, visits, people and their rights.")
console = Console()


@app.command("create-visit")
def create_visit(
    ctx: typer.Context,
    visit: str = typer.Argument(..., help="Visit name, e.g. bi23047-5."),
    microscope: str = typer.Option("", help="Microscope (ISPyB beamLineName), e.g. m02."),
    title: str = typer.Option("", help="Title of the proposal, when it is new."),
    start: dt.datetime | None = typer.Option(None, help="Start of the visit."),
    end: dt.datetime | None = typer.Option(None, help="End of the visit."),
) -> None:
    """Create a proposal (if new) and a visit."""
    with transaction(ctx) as session:
        name = visits.VisitName.parse(visit)
        visits.ensure_proposal(
            session, code=name.proposal_code, number=name.proposal_number, title=title
        )
        session_id = visits.ensure_visit(
            session, visit=visit, microscope=microscope, start=start, end=end
        )
    console.print(f"visit {name} (sessionId {session_id})")


@app.command("add-person")
def add_person(
    ctx: typer.Context,
    login: str = typer.Argument(...),
    given_name: str = typer.Option("", "--given-name"),
    family_name: str = typer.Option("", "--family-name"),
    email: str = typer.Option("", "--email"),
) -> None:
    """Add a person (once per login)."""
    with transaction(ctx) as session:
        pid = visits.ensure_person(
            session, login=login, given_name=given_name, family_name=family_name, email=email
        )
    console.print(f"person {login} (personId {pid})")


@app.command("add-member")
def add_member(
    ctx: typer.Context,
    visit: str = typer.Argument(...),
    login: str = typer.Argument(...),
    role: str = typer.Option("Team Member", help=f"One of: {', '.join(visits.ROLES)}."),
) -> None:
    """Make a person a member of a visit, with a role."""
    with transaction(ctx) as session:
        session_id = visits.find_visit(session, visit=visit)
        if session_id is None:
            raise LookupError(f"visit: no visit {visit!r}")
        visits.add_member(
            session,
            session_id=session_id,
            person_id=visits.person_id(session, login=login),
            role=role,
        )
    console.print(f"{login} is {role} on {visit}")


@app.command("make-staff")
def make_staff(ctx: typer.Context, login: str = typer.Argument(...)) -> None:
    """Give a person the em_admin permission: they see every visit and the staff area."""
    with transaction(ctx) as session:
        visits.make_staff(session, person_id=visits.person_id(session, login=login))
    console.print(f"{login} is staff ({visits.STAFF_PERMISSION})")


@app.command("revoke-staff")
def revoke_staff(ctx: typer.Context, login: str = typer.Argument(...)) -> None:
    """Take a person out of the staff group; their web sessions end at once."""
    with transaction(ctx) as session:
        still = visits.revoke_staff(session, person_id=visits.person_id(session, login=login))
    if still:
        console.print(
            f"{login} left the {visits.STAFF_GROUP} group but is still staff: another of their "
            f"groups holds {visits.STAFF_PERMISSION}"
        )
    else:
        console.print(f"{login} is no longer staff; their web sessions have ended")


@app.command("end-sessions")
def end_sessions(ctx: typer.Context, login: str = typer.Argument(...)) -> None:
    """Log a person out of the web application everywhere (e.g. a lost or stolen laptop)."""
    with transaction(ctx) as session:
        ended = web_sessions.end_all(session, person_id=visits.person_id(session, login=login))
    console.print(f"{ended} web session(s) of {login} ended")


@app.command("set-password")
def set_password(
    ctx: typer.Context,
    login: str = typer.Argument(...),
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="Read the password from standard input."
    ),
) -> None:
    """Set a person's local password (stored as an argon2 hash); their web sessions end."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    with transaction(ctx) as session:
        visits.set_password(
            session, person_id=visits.person_id(session, login=login), password=password
        )
    console.print(f"password set for {login}; their web sessions have ended")
