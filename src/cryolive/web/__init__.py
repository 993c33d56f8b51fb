"""The web application: follow a session live, see every result, control processing."""

from cryolive.web.app import create_app

__all__ = ["create_app"]
