"""The alert settings: from the environment as the issue names them, and bad bounds refused."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from cryolive.config import AlertsSettings, load_settings


def test_alert_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRYOLIVE_ALERTS__WEBHOOK_URL", "https://hooks.example/T1")
    monkeypatch.setenv("CRYOLIVE_ALERTS__STALLED_AFTER_S", "900")
    monkeypatch.setenv("CRYOLIVE_ALERTS__BOUNDS", '{"ice_median": [0.9, 1.2]}')
    settings = load_settings()
    assert settings.alerts.webhook_url == "https://hooks.example/T1"
    assert settings.alerts.stalled_after_s == 900
    assert settings.alerts.bounds == {"ice_median": (0.9, 1.2)}


@pytest.mark.parametrize(
    ("bounds", "message"),
    [({"defocus": (0.5, 3.0)}, "unknown measure 'defocus'"), ({"defocus_um": (3, 1)}, "below")],
)
def test_bad_bounds_are_refused_by_name(
    bounds: dict[str, tuple[float, float]], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        AlertsSettings(bounds=bounds)
