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
