"""The ``genseal`` command line (typer): ``app`` and its console-script entry point ``main``."""

from api.cli._app import app, main

__all__ = ["app", "main"]
