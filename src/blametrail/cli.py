"""The `blametrail` command: serve, worker, db upgrade, org/user/token administration, demo."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from collections.abc import Sequence

from blametrail import db
from blametrail.errors import DomainError
from blametrail.settings import Settings


class CliError(Exception):
    """A one-line message for the operator; exit status 2."""


def _settings() -> Settings:
    try:
        return Settings()
    except Exception as exc:  # pydantic's message names the bad variable
        raise CliError(f"invalid settings: {exc}".replace("\n", " ")) from exc


def _runtime(settings: Settings):
    from blametrail.runtime import build_runtime

    try:
        return build_runtime(settings)
    except Exception as exc:
        raise CliError(f"cannot open the database {_redact(settings.resolved_database_url)}: {exc}".splitlines()[0]) from exc


def _redact(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparseable URL>"


def _print(obj) -> None:
    print(json.dumps(obj, default=str, indent=None))


def cmd_org_create(args) -> None:
    from blametrail.orgs import service as orgs

    rt = _runtime(_settings())
    with db.transaction(rt.factory) as session:
        org = orgs.create_org(session=session, slug=args.slug, name=args.name or args.slug, plan=args.plan,
                              now=rt.clock.now())
        out = {"id": org.id, "slug": org.slug, "name": org.name, "plan": org.plan, "ai_enabled": org.ai_enabled}
    _print(out)


def cmd_org_plan(args) -> None:
    from blametrail.orgs import service as orgs

    rt = _runtime(_settings())
    with db.transaction(rt.factory) as session:
        org = orgs.set_plan(session=session, org=orgs.get_org_by_slug(session=session, slug=args.slug), plan=args.plan)
        out = {"id": org.id, "slug": org.slug, "name": org.name, "plan": org.plan, "ai_enabled": org.ai_enabled}
    _print(out)


def cmd_user_create(args) -> None:
    from blametrail.orgs import service as orgs

    rt = _runtime(_settings())
    with db.transaction(rt.factory) as session:
        org = orgs.get_org_by_slug(session=session, slug=args.org)
        m = orgs.create_user(session=session, email=args.email, org=org, role=args.role, password=args.password,
                             now=rt.clock.now(), name=args.name or "")
        out = {"id": m.user_id, "email": m.user.email, "org": org.slug, "role": m.role,
               "can_log_in": bool(args.password)}
    _print(out)


def cmd_token_create(args) -> None:
    from blametrail.orgs import service as orgs

    rt = _runtime(_settings())
    with db.transaction(rt.factory) as session:
        org = orgs.get_org_by_slug(session=session, slug=args.org)
        m = orgs.get_membership(session=session, org_id=org.id, email=args.email)
        _, raw = orgs.create_token(session=session, membership=m, name=args.name or "cli", now=rt.clock.now())
    _print({"token": raw})


def cmd_db_upgrade(args) -> None:
    settings = _settings()
    _runtime(settings)
    print(f"database is up to date: {_redact(settings.resolved_database_url)}")


def _first_run_hint(rt, host: str, port: int) -> None:
    from blametrail.orgs import service as orgs

    with db.transaction(rt.factory) as session:
        if orgs.user_count(session=session) > 0:
            return
        token = orgs.create_setup_token(session=session, now=rt.clock.now())
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    bar = "=" * 72
    print(f"\n{bar}\n  Welcome to BlameTrail. No users exist yet.\n"
          f"  Create the first owner in your browser:\n\n    http://{shown}:{port}/setup?token={token}\n\n"
          f"  or from a shell:\n    blametrail org create acme --name 'Acme' --plan pro\n"
          f"    blametrail user create you@example.com --org acme --role owner --password '<8+ chars>'\n"
          f"  Or try the demo data first: blametrail serve --demo\n{bar}\n", flush=True)


def cmd_serve(args) -> None:
    import uvicorn

    from blametrail.app import create_app

    settings = _settings()
    try:
        settings.effective_secret_key
    except ValueError as exc:
        raise CliError(str(exc)) from exc
    rt = _runtime(settings)
    if args.demo:
        from blametrail.demo import seed_demo

        print(seed_demo(rt), flush=True)
    _first_run_hint(rt, args.host, args.port)
    app = create_app(settings, runtime=rt, background=True)
    print(f"BlameTrail serving on http://{args.host}:{args.port}  (data: {settings.data_dir.resolve()}, "
          f"database: {_redact(settings.resolved_database_url)})", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level=settings.log_level.lower(), lifespan="on")


def cmd_worker(args) -> None:
    settings = _settings()
    rt = _runtime(settings)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    rt.start_background(workers=args.threads or settings.worker_threads)
    print(f"BlameTrail worker consuming {settings.resolved_queue_url.split('@')[-1]} with "
          f"{args.threads or settings.worker_threads} thread(s)", flush=True)
    rt.sweep_once()
    stop.wait()
    rt.close()


def cmd_demo(args) -> None:
    from blametrail.demo import seed_demo

    rt = _runtime(_settings())
    print(seed_demo(rt))


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of the `blametrail` command."""
    p = argparse.ArgumentParser(prog="blametrail", description="BlameTrail: incidents and AI-drafted postmortems.")
    sub = p.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the web app, an embedded queue consumer and the sweeper")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--demo", action="store_true", help="seed the demo organization first")
    serve.set_defaults(func=cmd_serve)

    worker = sub.add_parser("worker", help="run queue consumers only (scale-out)")
    worker.add_argument("--threads", type=int, default=None)
    worker.set_defaults(func=cmd_worker)

    dbp = sub.add_parser("db", help="database administration").add_subparsers(dest="db_command", required=True)
    dbp.add_parser("upgrade", help="create or migrate the schema").set_defaults(func=cmd_db_upgrade)

    orgp = sub.add_parser("org", help="organizations").add_subparsers(dest="org_command", required=True)
    oc = orgp.add_parser("create", help="create an organization")
    oc.add_argument("slug")
    oc.add_argument("--name", default=None)
    oc.add_argument("--plan", choices=["free", "starter", "pro"], default="starter")
    oc.set_defaults(func=cmd_org_create)
    op = orgp.add_parser("plan", help="change an organization's plan")
    op.add_argument("slug")
    op.add_argument("plan", choices=["free", "starter", "pro"])
    op.set_defaults(func=cmd_org_plan)

    userp = sub.add_parser("user", help="users").add_subparsers(dest="user_command", required=True)
    uc = userp.add_parser("create", help="create a user in an organization")
    uc.add_argument("email")
    uc.add_argument("--org", required=True)
    uc.add_argument("--role", choices=["owner", "admin", "member", "viewer"], required=True)
    uc.add_argument("--password", default=None)
    uc.add_argument("--name", default=None)
    uc.set_defaults(func=cmd_user_create)

    tokp = sub.add_parser("token", help="API tokens").add_subparsers(dest="token_command", required=True)
    tc = tokp.add_parser("create", help="create an API token (printed once)")
    tc.add_argument("email")
    tc.add_argument("--org", required=True)
    tc.add_argument("--name", default=None)
    tc.set_defaults(func=cmd_token_create)

    demo = sub.add_parser("demo", help="seed a demo organization with a resolved incident and its postmortem")
    demo.set_defaults(func=cmd_demo)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        args.func(args)
    except (CliError, DomainError) as exc:
        message = exc.detail if isinstance(exc, DomainError) else str(exc)
        print(f"blametrail: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
