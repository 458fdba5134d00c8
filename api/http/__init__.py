"""The HTTP API (FastAPI): ``create_app(service)`` wires the routers, errors and observability."""

from api.http._app import Components, create_app

__all__ = ["Components", "create_app"]
