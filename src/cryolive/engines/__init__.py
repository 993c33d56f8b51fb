"""Pure processing engines: arrays and scalars in, frozen results out (no files, database or
broker)."""

from cryolive.engines._checks import UnusableMicrographError

__all__ = ["UnusableMicrographError"]
