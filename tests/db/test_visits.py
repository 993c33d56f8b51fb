"""Visits, people, roles, staff and passwords; who may see what."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from ispyb.sqlalchemy import BLSession
from sqlalchemy.orm import Session

from cryolive.db.repo import visits


def _people(db: Session, unique: str) -> dict[str, int]:
    return {
        name: visits.ensure_person(db, login=f"{name}{unique}", given_name=name.title())
        for name in ("alice", "bob", "carol", "staff")
    }


def test_a_person_sees_only_their_visits_and_staff_see_all(db: Session, unique: str) -> None:
    number = int(unique, 16) % 10**7
    a1 = visits.ensure_visit(db, visit=f"bi{number}-1", microscope="m02")
    a2 = visits.ensure_visit(db, visit=f"bi{number}-2", microscope="m02")
    b1 = visits.ensure_visit(db, visit=f"cm{number}-1", microscope="m03")
    people = _people(db, unique)
    visits.add_member(db, session_id=a1, person_id=people["alice"], role="Principal Investigator")
    visits.add_member(db, session_id=b1, person_id=people["bob"], role="Team Member")
    visits.add_member(db, session_id=a2, person_id=people["bob"], role="Co-Investigator")
    visits.make_staff(db, person_id=people["staff"])
    visits.make_staff(db, person_id=people["staff"])  # twice: no duplicate membership

    def seen(who: str) -> set[int]:
        return set(db.scalars(visits.visible_session_ids(db, person_id=people[who])))

    assert seen("alice") == {a1}
    assert seen("bob") == {a2, b1}
    assert seen("carol") == set()
    assert {a1, a2, b1} <= seen("staff")
    assert visits.can_see_visit(db, person_id=people["alice"], session_id=a1)
    assert not visits.can_see_visit(db, person_id=people["alice"], session_id=b1)
    assert visits.is_staff(db, person_id=people["staff"])
    assert not visits.is_staff(db, person_id=people["alice"])

    proposal_of = {sid: db.get(BLSession, sid).proposalId for sid in (a1, b1)}
    alice_proposals = set(db.scalars(visits.visible_proposal_ids(db, person_id=people["alice"])))
    bob_proposals = set(db.scalars(visits.visible_proposal_ids(db, person_id=people["bob"])))
    assert alice_proposals == {proposal_of[a1]}
    assert bob_proposals == {proposal_of[a1], proposal_of[b1]}  # bob is on bi…-2: same proposal


def test_membership_role_is_updated_not_duplicated(db: Session, unique: str) -> None:
    visit = visits.ensure_visit(db, visit=f"bi{int(unique, 16) % 10**7}-9")
    person = visits.ensure_person(db, login=f"dave{unique}")
    visits.add_member(db, session_id=visit, person_id=person, role="Team Member")
    visits.add_member(db, session_id=visit, person_id=person, role="Local Contact")
    roles = db.execute(
        sa.select(visits.SessionHasPerson.role).where(visits.SessionHasPerson.sessionId == visit)
    ).all()
    assert [r.role for r in roles] == ["Local Contact"]
    assert visits.ensure_visit(db, visit=f"bi{int(unique, 16) % 10**7}-9") == visit


def test_passwords_are_argon2_and_checked(db: Session, unique: str) -> None:
    person = visits.ensure_person(db, login=f"erin{unique}")
    visits.set_password(db, person_id=person, password="correct horse")
    stored = db.get(visits.Credential, person)
    assert stored is not None and stored.password_hash.startswith("$argon2")
    assert visits.check_password(db, login=f"erin{unique}", password="correct horse") == person
    assert visits.check_password(db, login=f"erin{unique}", password="wrong horse!") is None
    assert visits.check_password(db, login="nobody-at-all", password="correct horse") is None
    visits.set_password(db, person_id=person, password="another horse")
    assert visits.check_password(db, login=f"erin{unique}", password="correct horse") is None


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda db: visits.ensure_visit(db, visit="bi23047"), "visit"),
        (lambda db: visits.ensure_visit(db, visit="BI-23047-5x"), "visit"),
        (lambda db: visits.ensure_person(db, login=""), "login"),
        (lambda db: visits.ensure_person(db, login="x" * 46), "login"),
        (lambda db: visits.person_id(db, login="no-such-login"), "login"),
        (lambda db: visits.add_member(db, session_id=1, person_id=1, role="Boss"), "role"),
        (lambda db: visits.set_password(db, person_id=1, password="short"), "password"),
    ],
)
def test_bad_input_is_refused_with_a_clear_message(db: Session, call: object, message: str) -> None:
    with pytest.raises((ValueError, LookupError), match=message):
        call(db)  # type: ignore[operator]


def test_visit_names_round_trip() -> None:
    name = visits.VisitName.parse("BI23047-5")
    assert (name.proposal_code, name.proposal_number, name.visit_number) == ("bi", "23047", 5)
    assert str(name) == "bi23047-5"


def test_logins_are_exact_whatever_the_collation(db: Session, unique: str) -> None:
    """MariaDB compares ``Alice``, ``alice`` and ``alíce`` as equal (case- and accent-
    insensitive collation): a near miss never logs in as, or becomes, another person."""
    login = f"alice{unique}"
    alice = visits.ensure_person(db, login=login)
    visits.set_password(db, person_id=alice, password="correct horse")
    near = [login.title(), login.upper(), "alíce" + unique, login + " "]
    for other in near:
        assert visits.check_password(db, login=other, password="correct horse") is None, other
        assert visits.find_person(db, login=other) is None, other
        with pytest.raises(LookupError, match="no person"):
            visits.person_id(db, login=other)
    assert visits.check_password(db, login=login, password="correct horse") == alice
    if db.get_bind().dialect.name == "mysql":  # its unique index merges them: refused, clearly
        with pytest.raises(ValueError, match="only in case, accents"):
            visits.ensure_person(db, login=login.title())
    else:  # SQLite tells them apart: another person
        assert visits.ensure_person(db, login=login.title()) != alice
    assert visits.ensure_person(db, login=login) == alice


def test_web_sessions_end_on_logout_password_change_and_staff_revocation(
    db: Session, unique: str
) -> None:
    import datetime as dt

    from cryolive.db.repo import web_sessions

    person = visits.ensure_person(db, login=f"sess{unique}")
    other = visits.ensure_person(db, login=f"other{unique}")
    day = dt.timedelta(days=1)

    def live(nonce: str, who: int = person) -> bool:
        return web_sessions.is_live(db, nonce=nonce, person_id=who)

    for nonce in ("a", "b"):
        web_sessions.start(db, nonce=f"{nonce}{unique}", person_id=person, lasts=day)
    web_sessions.start(db, nonce=f"c{unique}", person_id=other, lasts=day)
    assert live(f"a{unique}") and live(f"b{unique}") and live(f"c{unique}", other)
    assert not live(f"c{unique}")  # another person's session is not yours
    web_sessions.end(db, nonce=f"a{unique}")  # logging out
    assert not live(f"a{unique}") and live(f"b{unique}")
    visits.set_password(db, person_id=person, password="a new password")
    assert not live(f"b{unique}") and live(f"c{unique}", other)

    visits.make_staff(db, person_id=person)
    web_sessions.start(db, nonce=f"d{unique}", person_id=person, lasts=day)
    assert visits.revoke_staff(db, person_id=person) is False
    assert not visits.is_staff(db, person_id=person) and not live(f"d{unique}")

    web_sessions.start(db, nonce=f"e{unique}", person_id=person, lasts=-day)  # expired
    assert not live(f"e{unique}")
