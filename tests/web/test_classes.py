"""The 2D class gallery's data and images: the newest classification of each batch, read
through the ParticlePicker join; images under the file rules (inside their visit)."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from ispyb.sqlalchemy import ParticleClassificationGroup
from sqlalchemy.orm import Session

from cryolive.db import make_engine
from cryolive.db.repo import classes


def test_newest_classification_of_each_batch(clients: Any, world: Any) -> None:
    (batch,) = (
        clients["member"][0].get(f"/api/collections/{world.data_collection_id}/classes").json()
    )
    assert batch["batch_number"] == 1 and batch["particles"] == 1200  # the second, newest run
    assert batch["binned_pixel_size_a"] == pytest.approx(3.32)
    assert (batch["started_at"], batch["duration_s"]) == ("2026-11-20T09:40:00", 95.0)
    got = [
        (c["class_number"], c["particles"], c["resolution_a"], c["selected"])
        for c in batch["classes"]
    ]
    assert got == [
        (1, 600, 12.0, False),
        (2, 400, 8.5, True),
        (3, 300, 20.0, True),
        (4, 240, 15.0, False),
    ]
    # another collection has none
    assert (
        clients["member"][0].get(f"/api/collections/{world.outside_collection_id}/classes").json()
        == []
    )


def test_class_images(clients: Any, world: Any) -> None:
    client = clients["member"][0]
    folder = world.processed
    image = client.get(f"/api/classes/{world.class_ids[1]}/image")
    assert image.headers["content-type"] == "image/png"
    assert image.content == (folder / "class_1_2.png").read_bytes()
    outside = client.get(f"/api/classes/{world.outside_class_id}/image")
    assert outside.status_code == 403 and "outside its visit" in outside.json()["detail"]
    assert clients["outsider"][0].get(f"/api/classes/{world.class_ids[0]}/image").status_code == 403
    assert client.get("/api/classes/999999/image").status_code == 404
    assert client.get("/api/classes/0/image").status_code == 422
    assert client.get("/api/classes/..%2F..%2Fetc%2Fpasswd/image").status_code in (404, 422)


def test_gallery_on_the_page(clients: Any, world: Any) -> None:
    page = clients["member"][0].get(f"/collections/{world.data_collection_id}").text
    assert page.count('class="class-card') == 4 and page.count("class-card selected") == 2
    assert f"/api/classes/{world.class_ids[0]}/image" in page


def test_write_classification_is_idempotent_and_checks_its_input(world: Any) -> None:
    engine = make_engine(world.url)
    with Session(engine) as session:
        group = session.scalars(
            sa.select(ParticleClassificationGroup)
            .where(ParticleClassificationGroup.type == "2D")  # the world has 3D groups too
            .order_by(ParticleClassificationGroup.particleClassificationGroupId.desc())
        ).first()
        assert group is not None
        args = {
            "program_id": group.programId,
            "particle_picker_id": group.particlePickerId,
            "batch_number": 1,
            "particles_in_batch": 1200,
            "classes_in_batch": 4,
            "binned_pixel_size_a": 3.32,
        }
        one = classes.ClassValues(
            class_number=1, image_full_path="/x.png", particles=10, distribution=0.5
        )
        again = classes.write_classification(session, **args, classes=[one])
        assert again == group.particleClassificationGroupId  # a redelivery: the same row
        for bad, match in (
            ({"batch_number": 0}, "batch_number"),
            ({"binned_pixel_size_a": 0.0}, "binned_pixel_size_a"),
            ({"classes_in_batch": 0}, "classes_in_batch"),
        ):
            with pytest.raises(ValueError, match=match):
                classes.write_classification(session, **(args | bad), classes=[one])
        with pytest.raises(ValueError, match="class numbers"):
            classes.write_classification(session, **args, classes=[one, one])
        session.rollback()
    engine.dispose()


def _person(session: Session, login: str) -> int:
    from ispyb.sqlalchemy import Person

    found = session.scalar(sa.select(Person.personId).where(Person.login == login))
    assert found is not None
    return int(found)


def test_a_persons_choice_overrides_the_automatic_selection(world: Any) -> None:
    engine = make_engine(world.url)
    dc = world.data_collection_id
    with Session(engine) as session:
        auto = {c.class_number for c in classes.selected_classes(session, data_collection_id=dc)}
        assert auto == {2, 3}  # the engine's: 400 + 300 particles
        assert classes.selected_particle_count(session, data_collection_id=dc) == 700
        alice = _person(session, "alice")
        one, two = world.class_ids[0], world.class_ids[1]  # class 1 (600, auto no), 2 (auto yes)
        classes.choose_class(
            session, particle_classification_id=one, person_id=alice, selected=True
        )
        classes.choose_class(
            session, particle_classification_id=two, person_id=alice, selected=False
        )
        session.flush()
        chosen = classes.selected_classes(session, data_collection_id=dc)
        assert {c.class_number for c in chosen} == {1, 3}
        assert classes.selected_particle_count(session, data_collection_id=dc) == 900
        (batch,) = classes.gallery(session, data_collection_id=dc)
        by_number = {c.class_number: c for c in batch.classes}
        assert by_number[1].chosen_by == "alice" and by_number[1].auto_selected is False
        assert by_number[2].selected is False and by_number[2].auto_selected is True
        assert by_number[3].chosen_by is None and by_number[3].selected is True
        # the history and the progress read the same selection
        from cryolive.db.repo import browse, series

        newest = [h for h in browse.classification_history(session, data_collection_id=dc)][-1]
        assert (newest.selected, newest.selected_particles) == (2, 900)
        summary = series.summary(session, data_collection_id=dc)
        assert summary["progress"]["selected_particles"] == 900
        # changing one's mind, then giving the class back to the automatic selection
        classes.choose_class(
            session, particle_classification_id=two, person_id=alice, selected=True
        )
        classes.choose_class(
            session, particle_classification_id=one, person_id=alice, selected=None
        )
        session.flush()
        assert classes.selected_particle_count(session, data_collection_id=dc) == 700
        session.rollback()
    engine.dispose()


def test_choosing_a_class_through_the_api(clients: Any, world: Any) -> None:
    client, csrf = clients["member"]
    one = world.class_ids[0]  # class 1: 600 particles, not selected by the engine
    url = f"/api/classes/{one}/choice"
    headers = {"X-CSRF-Token": csrf}
    detail = f"/api/collections/{world.data_collection_id}"
    try:
        made = client.post(url, json={"selected": True}, headers=headers)
        assert made.status_code == 200, made.text
        assert made.json() == {
            "particle_classification_id": one,
            "selected": True,
            "chosen_by": "alice",
        }
        (batch,) = client.get(f"{detail}/classes").json()
        first = next(c for c in batch["classes"] if c["class_number"] == 1)
        assert (first["selected"], first["auto_selected"], first["chosen_by"]) == (
            True,
            False,
            "alice",
        )
        assert client.get(detail).json()["summary"]["progress"]["selected_particles"] == 1300
        page = client.get(f"/collections/{world.data_collection_id}").text
        assert "✓ chosen by you" in page
        # staff see who chose
        staff_page = clients["staff"][0].get(f"/collections/{world.data_collection_id}").text
        assert "✓ chosen by alice" in staff_page
        back = client.post(url, json={"selected": None}, headers=headers)
        assert back.json() == {
            "particle_classification_id": one,
            "selected": False,
            "chosen_by": None,
        }
        assert client.get(detail).json()["summary"]["progress"]["selected_particles"] == 700
    finally:
        client.post(url, json={"selected": None}, headers=headers)


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/api/classes/999999/choice", {"selected": True}, 404),
        ("/api/classes/0/choice", {"selected": True}, 422),
        (f"/api/classes/{2**64}/choice", {"selected": True}, 422),
        ("/api/classes/abc/choice", {"selected": True}, 422),
        ("/api/classes/{id}/choice", {"selected": "maybe"}, 422),
        ("/api/classes/{id}/choice", {"selected": True, "extra": 1}, 422),
        ("/api/classes/{id}/choice", {}, 422),
        ("/api/classes/{id}/choice", None, 422),
    ],
)
def test_bad_choices_are_refused(
    clients: Any, world: Any, path: str, body: Any, status: int
) -> None:
    client, csrf = clients["member"]
    response = client.post(
        path.replace("{id}", str(world.class_ids[0])), json=body, headers={"X-CSRF-Token": csrf}
    )
    assert response.status_code == status and response.json()["detail"]


def test_choices_need_membership_and_a_csrf_token(clients: Any, world: Any) -> None:
    url = f"/api/classes/{world.class_ids[0]}/choice"
    outsider, outsider_csrf = clients["outsider"]
    refused = outsider.post(url, json={"selected": True}, headers={"X-CSRF-Token": outsider_csrf})
    assert refused.status_code == 403
    member = clients["member"][0]
    assert member.post(url, json={"selected": True}).status_code == 403  # no CSRF token
    assert clients["anonymous"][0].post(url, json={"selected": True}).status_code == 401
    (batch,) = member.get(f"/api/collections/{world.data_collection_id}/classes").json()
    assert all(c["chosen_by"] is None for c in batch["classes"])  # nothing was recorded
