"""cryolive: live processing of cryo-EM data, recorded in an ISPyB-compatible database."""

__version__ = "0.1.0"
