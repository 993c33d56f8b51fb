"""Proposals, visits, people, their roles and local passwords; and who may see what.

A visit is named as ISPyB names it: proposal code + number + "-" + visit number (``bi23047-5``).
A person sees the visits they are a member of (Session_has_Person); staff — members of a user
group holding the ``em_admin`` permission — see every visit. A proposal is visible where any of
its visits is.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from ispyb.sqlalchemy import (
    BLSession,
    Permission,
    Person,
    Proposal,
    SessionHasPerson,
    UserGroup,
)
from ispyb.sqlalchemy import t_UserGroup_has_Permission as USER_GROUP_HAS_PERMISSION
from ispyb.sqlalchemy import t_UserGroup_has_Person as USER_GROUP_HAS_PERSON
from sqlalchemy.orm import Session

from cryolive.db.models import Credential
from cryolive.db.repo import web_sessions
from cryolive.db.repo._keys import insert_row, table_of

STAFF_PERMISSION = "em_admin"
STAFF_GROUP = "em_admin"
ROLES = (
    "Local Contact",
    "Local Contact 2",
    "Staff",
    "Team Leader",
    "Co-Investigator",
    "Principal Investigator",
    "Alternate Contact",
    "Data Access",
    "Team Member",
    "ERA Admin",
    "Associate",
)
_VISIT = re.compile(r"^(?P<code>[a-z]{2})(?P<number>\d+)-(?P<visit>\d+)$")
_HASHER = PasswordHasher()


@dataclass(frozen=True)
class VisitName:
    proposal_code: str
    proposal_number: str
    visit_number: int

    @classmethod
    def parse(cls, name: str) -> VisitName:
        match = _VISIT.match(name.strip().lower())
        if not match:
            raise ValueError(f"visit: {name!r} is not a visit name like 'bi23047-5'")
        return cls(match["code"], match["number"], int(match["visit"]))

    def __str__(self) -> str:
        return f"{self.proposal_code}{self.proposal_number}-{self.visit_number}"


SERVICE_LOGIN = "cryolive"


def ensure_proposal(
    session: Session, *, code: str, number: str, title: str = "", pi_person_id: int | None = None
) -> int:
    """The id of proposal ``code``+``number``, created where missing.

    ISPyB requires a proposal's person (its PI); without one, cryolive's own service person
    (login ``cryolive``) stands in until staff set the real one.
    """
    found = session.scalar(
        sa.select(Proposal.proposalId).where(
            Proposal.proposalCode == code, Proposal.proposalNumber == number
        )
    )
    if found is not None:
        return int(found)
    if pi_person_id is None:
        pi_person_id = ensure_person(session, login=SERVICE_LOGIN, family_name="cryolive service")
    return insert_row(
        session,
        table=table_of(Proposal),
        values={
            "proposalCode": code,
            "proposalNumber": number,
            "title": title,
            "state": "Open",
            "personId": pi_person_id,
        },
    )


def ensure_visit(
    session: Session,
    *,
    visit: str,
    microscope: str = "",
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
) -> int:
    """The BLSession id of ``visit``, creating the proposal and the visit where missing."""
    name = VisitName.parse(visit)
    proposal_id = ensure_proposal(session, code=name.proposal_code, number=name.proposal_number)
    found = session.scalar(
        sa.select(BLSession.sessionId).where(
            BLSession.proposalId == proposal_id, BLSession.visit_number == name.visit_number
        )
    )
    if found is not None:
        return int(found)
    return insert_row(
        session,
        table=table_of(BLSession),
        values={
            "proposalId": proposal_id,
            "visit_number": name.visit_number,
            "beamLineName": microscope or None,
            "startDate": start,
            "endDate": end,
        },
    )


def find_visit(session: Session, *, visit: str) -> int | None:
    name = VisitName.parse(visit)
    found = session.scalar(
        sa.select(BLSession.sessionId)
        .join(Proposal, Proposal.proposalId == BLSession.proposalId)
        .where(
            Proposal.proposalCode == name.proposal_code,
            Proposal.proposalNumber == name.proposal_number,
            BLSession.visit_number == name.visit_number,
        )
    )
    return None if found is None else int(found)


def visit_name_column() -> sa.ColumnElement[str]:
    """SQL for a visit's name (``bi23047-5``), for queries that list visits."""
    return sa.func.concat(
        Proposal.proposalCode, Proposal.proposalNumber, "-", BLSession.visit_number
    )


def ensure_person(
    session: Session, *, login: str, given_name: str = "", family_name: str = "", email: str = ""
) -> int:
    if not login or len(login) > 45:
        raise ValueError(f"login: must be 1 to 45 characters, got {login!r}")
    rows = _logins_like(session, login)
    for found, stored in rows:
        if stored == login:
            return found
    if rows:
        raise ValueError(
            f"login: {login!r} differs from the existing {rows[0][1]!r} only in case, accents "
            "or trailing spaces, which the database does not tell apart"
        )
    return insert_row(
        session,
        table=table_of(Person),
        values={
            "login": login,
            "givenName": given_name or None,
            "familyName": family_name or None,
            "emailAddress": email or None,
        },
    )


def _logins_like(session: Session, login: str) -> list[tuple[int, str]]:
    """(personId, login) of the people whose login the database deems equal to ``login``: on
    MariaDB's case- and accent-insensitive collations ``Alice``, ``alice`` and ``alíce`` all
    match, so callers keep only the exact one (compared in Python)."""
    rows = session.execute(sa.select(Person.personId, Person.login).where(Person.login == login))
    return [(int(pid), str(stored)) for pid, stored in rows]


def find_person(session: Session, *, login: str) -> int | None:
    """The id of the person whose login is exactly ``login`` (case and accents count)."""
    return next((pid for pid, stored in _logins_like(session, login) if stored == login), None)


def person_id(session: Session, *, login: str) -> int:
    found = find_person(session, login=login)
    if found is None:
        raise LookupError(f"login: no person {login!r}")
    return found


def add_member(session: Session, *, session_id: int, person_id: int, role: str) -> None:
    """Make a person a member of a visit with ``role`` (updating the role if already one)."""
    if role not in ROLES:
        raise ValueError(f"role: {role!r} is not one of {', '.join(ROLES)}")
    member = session.get(SessionHasPerson, (session_id, person_id))
    if member is None:
        insert_row(
            session,
            table=table_of(SessionHasPerson),
            values={"sessionId": session_id, "personId": person_id, "role": role},
        )
    else:
        member.role = role
    session.flush()


def make_staff(session: Session, *, person_id: int) -> None:
    """Put a person in the staff group, which holds the ``em_admin`` permission."""
    group_id = session.scalar(sa.select(UserGroup.userGroupId).where(UserGroup.name == STAFF_GROUP))
    if group_id is None:
        group_id = insert_row(session, table=table_of(UserGroup), values={"name": STAFF_GROUP})
    permission_id = session.scalar(
        sa.select(Permission.permissionId).where(Permission.type == STAFF_PERMISSION)
    )
    if permission_id is None:
        permission_id = insert_row(
            session,
            table=table_of(Permission),
            values={"type": STAFF_PERMISSION, "description": "cryo-EM facility staff"},
        )
    _insert_missing(
        session, USER_GROUP_HAS_PERMISSION, userGroupId=group_id, permissionId=permission_id
    )
    _insert_missing(session, USER_GROUP_HAS_PERSON, userGroupId=group_id, personId=person_id)


def revoke_staff(session: Session, *, person_id: int) -> bool:
    """Take a person out of the staff group and end their web sessions; whether they are still
    staff (through another group holding ``em_admin``)."""
    group_ids = sa.select(UserGroup.userGroupId).where(UserGroup.name == STAFF_GROUP)
    session.execute(
        USER_GROUP_HAS_PERSON.delete().where(
            USER_GROUP_HAS_PERSON.c.personId == person_id,
            USER_GROUP_HAS_PERSON.c.userGroupId.in_(group_ids),
        )
    )
    web_sessions.end_all(session, person_id=person_id)
    session.flush()
    return is_staff(session, person_id=person_id)


def _insert_missing(session: Session, table: sa.Table, **values: int) -> None:
    exists = session.execute(
        sa.select(sa.literal(1))
        .select_from(table)
        .where(*(table.c[name] == value for name, value in values.items()))
    ).first()
    if exists is None:
        session.execute(table.insert().values(**values))


def is_staff(session: Session, *, person_id: int) -> bool:
    found = session.execute(
        sa.select(sa.literal(1))
        .select_from(USER_GROUP_HAS_PERSON)
        .join(
            USER_GROUP_HAS_PERMISSION,
            USER_GROUP_HAS_PERMISSION.c.userGroupId == USER_GROUP_HAS_PERSON.c.userGroupId,
        )
        .join(Permission, Permission.permissionId == USER_GROUP_HAS_PERMISSION.c.permissionId)
        .where(USER_GROUP_HAS_PERSON.c.personId == person_id, Permission.type == STAFF_PERMISSION)
    ).first()
    return found is not None


def visible_session_ids(session: Session, *, person_id: int) -> sa.Select[tuple[int]]:
    """A query for the ids of the visits ``person_id`` may see."""
    if is_staff(session, person_id=person_id):
        return sa.select(BLSession.sessionId)
    return sa.select(SessionHasPerson.sessionId).where(SessionHasPerson.personId == person_id)


def visible_proposal_ids(session: Session, *, person_id: int) -> sa.Select[tuple[int]]:
    """A query for the ids of the proposals ``person_id`` may see: those with a visible visit."""
    return (
        sa.select(BLSession.proposalId)
        .where(BLSession.sessionId.in_(visible_session_ids(session, person_id=person_id)))
        .distinct()
    )


def can_see_visit(session: Session, *, person_id: int, session_id: int) -> bool:
    query = visible_session_ids(session, person_id=person_id).subquery()
    return (
        session.execute(
            sa.select(sa.literal(1)).select_from(query).where(query.c[0] == session_id)
        ).first()
        is not None
    )


def set_password(session: Session, *, person_id: int, password: str) -> None:
    """Store an argon2 hash of a local password; the person's web sessions end."""
    if len(password) < 8:
        raise ValueError("password: must be at least 8 characters")
    credential = session.get(Credential, person_id)
    hashed = _HASHER.hash(password)
    if credential is None:
        session.add(Credential(person_id=person_id, password_hash=hashed))
    else:
        credential.password_hash = hashed
    web_sessions.end_all(session, person_id=person_id)
    session.flush()


def check_password(session: Session, *, login: str, password: str) -> int | None:
    """The person's id when ``password`` is theirs, else None. The login must match exactly:
    ``Alice`` or ``alíce`` is not ``alice``, whatever the database's collation."""
    rows = session.execute(
        sa.select(Person.personId, Person.login, Credential.password_hash)
        .join(Credential, Credential.person_id == Person.personId)
        .where(Person.login == login)
    ).all()
    row = next((r for r in rows if r.login == login), None)
    if row is None:
        _HASHER.hash(password)  # same work either way: no timing hint that the login exists
        return None
    try:
        _HASHER.verify(row.password_hash, password)
    except (VerificationError, InvalidHashError):
        return None
    return int(row.personId)
