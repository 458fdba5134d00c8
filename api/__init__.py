"""The front doors: the ``genseal`` command (``api.cli``), the HTTP API (``api.http``) and the
jobs that run requests in the background (``api.jobs``). Nothing is imported here, so the
command starts without loading the web stack."""
