"""Messaging: transports (embedded, RabbitMQ), recipes, services, workers, dead letters and
the reconciler that re-sends lost work."""

from cryolive.messaging.connect import open_transport
from cryolive.messaging.dispatch import envelope_for, start_recipe
from cryolive.messaging.envelope import Envelope, MalformedMessage, work_key
from cryolive.messaging.recipe import Recipe, RecipeError, Step, load_recipe, validate_recipe
from cryolive.messaging.service import Context, Emit, PermanentError, Registry, Service
from cryolive.messaging.transport import BrokerUnavailable, Transport
from cryolive.messaging.worker import Beat, Worker

__all__ = [
    "Beat",
    "BrokerUnavailable",
    "Context",
    "Emit",
    "Envelope",
    "MalformedMessage",
    "PermanentError",
    "Recipe",
    "RecipeError",
    "Registry",
    "Service",
    "Step",
    "Transport",
    "Worker",
    "envelope_for",
    "load_recipe",
    "open_transport",
    "start_recipe",
    "validate_recipe",
    "work_key",
]
