"""``genseal db``: the schema of the genseal database (Alembic revisions).

The database is the one every component uses (GENSEAL_DATABASE_URL, default SQLite in
GENSEAL_HOME). Exit codes: 0 done or at head, 1 behind head (``current``) or the database
unavailable, 2 a bad revision or settings.
"""

from __future__ import annotations

from typing import Annotated

import typer

from api.cli._help import GensealTyper
from api.cli._support import EXIT_INTERNAL, JsonOption, _dump, _errors, _settings, err, out

db_app = GensealTyper(
    help="The genseal database's schema: upgrade it to this genseal's revision, show where it "
    "is, list the revisions.",
    no_args_is_help=True,
)

_NONE = "none (empty, or made before migrations)"


def _shown(revision: str | None, head: str) -> str:
    if revision is None:
        return _NONE
    return f"{revision} (head)" if revision == head else revision


@db_app.command("upgrade")
def upgrade(
    revision: Annotated[
        str, typer.Option("--revision", help="Revision to migrate to (default: head).")
    ] = "head",
    as_json: JsonOption = False,
) -> None:
    """Migrate the database to this genseal's schema (or to --revision); run once per release
    before starting the API and workers when they have GENSEAL_DATABASE_AUTO_UPGRADE=false."""
    from genseal import db

    with _errors(as_json):
        url = _settings().store_url
        database, head = db.display_url(url), db.head()
        before = db.current(url)
        after = db.upgrade(url, revision)
        if as_json:
            _dump(
                {
                    "database": database,
                    "from": before,
                    "to": after,
                    "head": head,
                    "upgraded": before != after,
                }
            )
        elif before == after:
            out.print(
                f"{database} is already at revision {_shown(after, head)}",
                highlight=False,
                soft_wrap=True,
            )
        else:
            out.print(
                f"upgraded {database} from revision {_shown(before, head)} to "
                f"{_shown(after, head)}",
                highlight=False,
                soft_wrap=True,
            )


@db_app.command("current")
def current(as_json: JsonOption = False) -> None:
    """The database's revision and this genseal's head; exit 1 when the database is behind."""
    from genseal import db

    with _errors(as_json):
        url = _settings().store_url
        database, head = db.display_url(url), db.head()
        revision = db.current(url)
        at_head = revision == head
        if as_json:
            _dump({"database": database, "current": revision, "head": head, "at_head": at_head})
        else:
            out.print(f"database: {database}", highlight=False, soft_wrap=True)
            out.print(f"revision: {_shown(revision, head)}", highlight=False)
            out.print(f"head:     {head}", highlight=False)
        if not at_head:
            err.print(
                f"the database is not at this genseal's revision {head}: run `genseal db upgrade`",
                soft_wrap=True,
            )
            raise typer.Exit(EXIT_INTERNAL)


@db_app.command("history")
def history(as_json: JsonOption = False) -> None:
    """Every revision this genseal has, newest first."""
    from genseal import db

    with _errors(as_json):
        revisions = db.history()
        if as_json:
            _dump(
                [
                    {
                        "revision": r.revision,
                        "down_revision": r.down_revision,
                        "message": r.message,
                        "head": r.is_head,
                    }
                    for r in revisions
                ]
            )
            return
        for r in revisions:
            title = r.message.strip().splitlines()[0] if r.message.strip() else ""
            mark = " (head)" if r.is_head else ""
            out.print(
                f"{r.down_revision or '<base>'} -> {r.revision}{mark}: {title}",
                highlight=False,
                soft_wrap=True,
            )


@db_app.command("revision")
def revision(
    message: Annotated[str, typer.Option("--message", "-m", help="What the revision changes.")],
    autogenerate: Annotated[
        bool,
        typer.Option(
            "--autogenerate/--empty",
            help="Write the operations that bring head to the models (default), or none.",
        ),
    ] = True,
) -> None:
    """For developers: write a new revision file into genseal's migrations, its operations found
    by comparing the models with a scratch SQLite database at head. Review it before use."""
    from api._tables import model_metadata
    from genseal import db

    with _errors():
        path, changes = db.new_revision(message, model_metadata(), autogenerate=autogenerate)
        out.print(f"wrote {path}", highlight=False, soft_wrap=True)
        if autogenerate and not changes:
            err.print("[yellow]warning:[/] the models match head: the revision is empty")
