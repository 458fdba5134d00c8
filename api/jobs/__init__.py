"""Jobs: requests kept in the database and run by a queue — in the API process, or on Celery
workers (``genseal worker``) at scale — with signed webhooks when they finish.

The Celery parts need the ``scale`` extra; they load only when asked for by name.
"""

import typing

from api.jobs._model import Job, JobKind, JobStatus, Reply, StoredJob, status_of
from api.jobs._operations import EditFields, Operations, SealFields, error_body, error_reply
from api.jobs._queue import JobQueue, make_queue
from api.jobs._store import JobStore
from api.jobs._webhooks import WebhookDispatcher, sign_webhook, validate_webhook_url

if typing.TYPE_CHECKING:
    from api.jobs._celery_app import WorkerRegistry
    from api.jobs._celery_worker import run_worker

__all__ = [
    "EditFields",
    "Job",
    "JobKind",
    "JobQueue",
    "JobStatus",
    "JobStore",
    "Operations",
    "Reply",
    "SealFields",
    "StoredJob",
    "WebhookDispatcher",
    "WorkerRegistry",
    "error_body",
    "error_reply",
    "make_queue",
    "run_worker",
    "sign_webhook",
    "status_of",
    "validate_webhook_url",
]

_CELERY = {"WorkerRegistry": "api.jobs._celery_app", "run_worker": "api.jobs._celery_worker"}


def __getattr__(name: str) -> typing.Any:
    if name in _CELERY:
        from importlib import import_module

        return getattr(import_module(_CELERY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
