"""The ``echo`` service: passes text on and counts hops. Used by the recipe ``echo-3step``
(``cryolive/recipes/echo-3step.json``), the messaging tests and ``bench/messaging.py``."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from cryolive.messaging.service import Context, Service


class EchoMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str
    hops: int = Field(default=0, ge=0, description="Hops made before this step.")


class EchoResult(BaseModel):
    text: str
    hops: int


def echo(message: EchoMessage, context: Context) -> EchoResult:
    """Return the text with the hop count raised by one."""
    return EchoResult(text=message.text, hops=message.hops + 1)


def echo_service() -> Service[EchoMessage]:
    return Service("echo", EchoMessage, echo)
