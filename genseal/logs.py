"""Structured logs (structlog) to stderr, so stdout stays clean for ``--json``."""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog


def _shared_processors() -> list[structlog.types.Processor]:
    """What every log line carries, genseal's own and other libraries' alike."""
    return [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]


def configure_logging(level: str = "warning", *, json_logs: bool = False) -> None:
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer()
        if json_logs
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[*_shared_processors(), renderer],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=False,
    )


def _access_fields(
    logger: Any, method_name: str, event_dict: structlog.types.EventDict
) -> structlog.types.EventDict:
    """uvicorn's access line as fields (client, method, path, status) rather than one string."""
    args = event_dict.pop("positional_args", ())
    record = event_dict.get("_record")
    if record is not None and record.name == "uvicorn.access" and len(args) == 5:
        client, method, path, http_version, status = args
        event_dict.update(
            event="request",
            client=client,
            method=method,
            path=path,
            http_version=http_version,
            status=status,
        )
    return event_dict


def stdlib_log_config(level: str = "info") -> dict[str, Any]:
    """A :func:`logging.config.dictConfig` dict that writes the standard library's records as
    the same JSON lines :func:`configure_logging` writes (``json_logs=True``).

    Give it to uvicorn as ``log_config``: its server and access logs then come out as JSON on
    stderr at ``level`` instead of plain text (the access log on stdout), and so do other
    libraries' warnings and errors (their info is chatter: alembic's plugin set-up, say).
    """
    level = level.upper()
    libraries = max(logging.getLevelNamesMapping()[level], logging.WARNING)
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "json": {
                "()": structlog.stdlib.ProcessorFormatter,
                "foreign_pre_chain": [
                    *_shared_processors(),
                    structlog.stdlib.add_logger_name,
                    _access_fields,
                ],
                "pass_foreign_args": True,
                "processors": [
                    structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.format_exc_info,
                    structlog.processors.JSONRenderer(),
                ],
            }
        },
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stderr",
            }
        },
        "loggers": {
            "uvicorn": {"handlers": ["stderr"], "level": level, "propagate": False},
            "uvicorn.error": {"level": level},
            "uvicorn.access": {"handlers": ["stderr"], "level": level, "propagate": False},
        },
        "root": {"handlers": ["stderr"], "level": logging.getLevelName(libraries)},
    }
