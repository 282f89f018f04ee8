"""The `blametrail` command: serve, worker, db upgrade, org/user/token administration, keys rotate, demo, deploy record,
evaluate."""

from __future__ import annotations

import argparse
import inspect
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence

# why: commands import what they use inside their own function, so `blametrail deploy record` in a CI pipeline
# does not pay for the web app, the queue and the LLM SDKs at start-up
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


def _runtime(settings: Settings, *, create: bool = False):
    """Open (and migrate) the database; unless `create`, refuse an embedded SQLite file that does not exist yet."""
    from blametrail.runtime import build_runtime

    if not create:
        _require_existing_database(settings)
    try:
        return build_runtime(settings)
    except Exception as exc:
        raise CliError(f"cannot open the database {_redact(settings.resolved_database_url)}: {exc}".splitlines()[0]) from exc


def sqlite_file(url: str):
    """Return the file of an SQLite URL (None for another database, or an in-memory SQLite one)."""
    from pathlib import Path

    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url)
    except Exception:
        return None
    if not parsed.drivername.startswith("sqlite") or not parsed.database or parsed.database == ":memory:":
        return None
    return Path(parsed.database)


def _require_existing_database(settings: Settings) -> None:
    """Refuse to run against an SQLite file that does not exist (it would be created empty, silently)."""
    # why: run from another folder or with another BLAMETRAIL_DATA_DIR, `token create` used to make a new empty
    # database and answer "no such organization"; serve, demo and db upgrade are the commands that create it
    path = sqlite_file(settings.resolved_database_url)
    if path is not None and not path.exists():
        raise CliError(f"no BlameTrail database at {path.resolve()}: start `blametrail serve` (or run `blametrail db "
                       "upgrade`) with this data folder first, or point BLAMETRAIL_DATA_DIR / BLAMETRAIL_DATABASE_URL "
                       "at the existing one")


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

    rt = _runtime(_settings(), create=True)  # why: creating the first organization from a shell is a first run too
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


def cmd_user_set_password(args) -> None:
    """Set an account's password by hand (operator); its login sessions end. Reads stdin when --password is absent."""
    from blametrail.orgs import service as orgs

    password = args.password if args.password is not None else sys.stdin.readline().rstrip("\r\n")
    rt = _runtime(_settings())
    with db.transaction(rt.factory) as session:
        user = orgs.set_password(session=session, email=args.email, password=password)
        out = {"id": user.id, "email": user.email, "sessions_ended": True}
    _print(out)


def cmd_token_create(args) -> None:
    from blametrail.orgs import service as orgs

    rt = _runtime(_settings())
    with db.transaction(rt.factory) as session:
        org = orgs.get_org_by_slug(session=session, slug=args.org)
        m = orgs.get_membership(session=session, org_id=org.id, email=args.email)
        _, raw = orgs.create_token(session=session, membership=m, name=args.name or "cli", now=rt.clock.now())
    _print({"token": raw})


def cmd_keys_rotate(args) -> int:
    """Re-encrypt stored secrets with the first key; exit 1 while some open under no listed key."""
    from blametrail import keys

    rt = _runtime(_settings())
    try:
        with db.transaction(rt.factory) as session:
            counts = keys.rotate_all(session=session, box=rt.secret_box)
    finally:
        rt.close()
    for name, c in counts.items():
        print(f"{name}: {c.rotated} re-encrypted, {c.current} already under the first key, {c.unreadable} unreadable")
    unreadable = sum(c.unreadable for c in counts.values())
    if unreadable:
        print(f"blametrail: {unreadable} stored secret(s) open under none of the keys in BLAMETRAIL_SECRET_KEY: add "
              "back the key that sealed them, or re-enter them (docs/security.md, Keys)", file=sys.stderr)
        return 1
    print("every stored secret is under the first key: the other keys can be removed from BLAMETRAIL_SECRET_KEY")
    return 0


def cmd_db_upgrade(args) -> None:
    settings = _settings()
    _runtime(settings, create=True)
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

    if args.workers < 1:
        raise CliError("--workers must be at least 1")
    if args.forwarded_allow_ips is not None:
        raise CliError("--forwarded-allow-ips was removed: name your reverse proxies in BLAMETRAIL_TRUSTED_PROXIES "
                       "(docs/production.md)")
    settings = _settings()
    try:
        settings.effective_secret_key
    except ValueError as exc:
        raise CliError(str(exc)) from exc
    rt = _runtime(settings, create=True)
    if args.demo:
        from blametrail.demo import seed_demo

        print(seed_demo(rt), flush=True)
    _first_run_hint(rt, args.host, args.port)
    print(f"BlameTrail serving on http://{args.host}:{args.port}  (data: {settings.data_dir.resolve()}, "
          f"database: {_redact(settings.resolved_database_url)}, {args.workers} web process(es))", flush=True)
    options = uvicorn_options(args, settings)
    if args.workers == 1:
        uvicorn.run(create_app(settings, runtime=rt, background=True), **options)
        return
    rt.close()  # why: each uvicorn worker process builds its own runtime (web_app); this one only migrated and seeded
    if "timeout_worker_healthcheck" in inspect.signature(uvicorn.Config).parameters:  # uvicorn >= 0.37
        # why: the default 5 s kills a worker still importing the app on a busy host, and restarts it in a loop
        options["timeout_worker_healthcheck"] = 60
    uvicorn.run("blametrail.cli:web_app", factory=True, **options)


def uvicorn_options(args, settings: Settings) -> dict:
    """Return the options `serve` runs uvicorn with (one process or --workers N)."""
    # why proxy_headers=False: uvicorn would otherwise believe X-Forwarded-For/-Proto from 127.0.0.1 (its default)
    # before the app sees the request; BLAMETRAIL_TRUSTED_PROXIES alone decides whom to believe (web/forwarded.py)
    return dict(host=args.host, port=args.port, log_level=settings.log_level.lower(), lifespan="on",
                workers=args.workers, proxy_headers=False)  # why workers: never WEB_CONCURRENCY


def web_app():
    """Build the app of one `serve --workers N` process from the environment (the schema is already migrated)."""
    from blametrail.app import create_app
    from blametrail.runtime import build_runtime

    settings = Settings()
    return create_app(settings, runtime=build_runtime(settings, migrate=False), background=True)


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


def cmd_scheduler(args) -> None:
    settings = _settings()
    rt = _runtime(settings)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    rt.start_background(workers=0, sweep=False, scheduler=True)
    print(f"BlameTrail monitor scheduler running ({settings.monitor_concurrency} concurrent checks, "
          f"database: {_redact(settings.resolved_database_url)})", flush=True)
    stop.wait()
    rt.close()


def cmd_demo(args) -> None:
    from blametrail.demo import seed_demo

    settings = _settings()
    rt = _runtime(settings, create=True)
    print(seed_demo(rt))
    print(f"(data: {settings.data_dir.resolve()}, database: {_redact(settings.resolved_database_url)})")


def cmd_evaluate(args) -> int:
    """Score the analysis on generated incidents (or, with --real, on replayed real outages); exit 1 when a threshold
    is missed."""
    from blametrail.scenarios import evaluate

    if args.real or args.list:
        return _evaluate_real(args)
    if args.only or args.split or args.misses:
        raise CliError("--only, --split and --misses apply to --real (the replayed real incidents)")
    if args.scenarios < 1:
        raise CliError("--scenarios must be at least 1")

    def progress(done: int, total: int) -> None:
        if done % 20 == 0 or done == total:
            print(f"blametrail: evaluated {done}/{total} scenarios", file=sys.stderr, flush=True)

    if args.families < 0:
        raise CliError("--families must be 0 or more")
    report = evaluate.run(n=args.scenarios, seed=args.seed, database_url=args.database_url, progress=progress,
                          family_count=args.families)
    print(report.table())
    return 0 if report.passed else 1


def _evaluate_real(args) -> int:
    """Replay the real-incident set (or --only some of it) through a temporary server; print the table."""
    from blametrail.app import create_app
    from blametrail.scenarios import evaluate
    from blametrail.scenarios.real.incidents import DataError, load_all, select

    try:
        ids = [i.strip() for i in args.only.split(",") if i.strip()] if args.only else None
        chosen = select(load_all(), ids, args.split)
    except DataError as exc:
        raise CliError(str(exc)) from exc
    if args.list:
        for incident in chosen:
            print(f"{incident.id:<40} {incident.split:<8} {incident.title}")
        return 0
    if not chosen:
        raise CliError("no incident selected: check --only and --split")

    def progress(done: int, total: int, outcome) -> None:
        failed = f" FAILED: {outcome.error}" if outcome.error else ""
        print(f"blametrail: replayed {done}/{total} {outcome.incident}{failed}", file=sys.stderr, flush=True)

    report = evaluate.run_real(lambda settings, rt: create_app(settings, runtime=rt, background=True), chosen,
                               database_url=args.database_url, progress=progress)
    print(report.table())
    if args.misses:
        print("\n" + report.misses())
    return 0 if report.passed() else 1


def _deploy_payload(args) -> dict:
    """Build the POST /api/v1/deploys body, reading commits from the git repository we run in (if any)."""
    from blametrail.deploys import gitlog

    try:
        if not gitlog.in_repository():
            if not args.version:
                raise CliError("--version is required outside a git repository")
            print("blametrail: not inside a git repository: recording the deploy without commits", file=sys.stderr)
            version, commits, external_id = args.version, [], args.external_id
        else:
            version = args.version or gitlog.describe()
            found, described = gitlog.commits(since=args.since)
            print(f"blametrail: read {len(found)} commit(s) from {described}", file=sys.stderr)
            commits = [c.as_json() for c in found]
            external_id = args.external_id or f"cli:{args.service}:{args.environment}:{gitlog.head_sha()}"
    except gitlog.GitError as exc:
        raise CliError(str(exc)) from exc
    body = {"service": args.service, "environment": args.environment, "version": version, "source": "cli",
            "external_id": external_id, "url": args.url, "commits": commits}
    return {k: v for k, v in body.items() if v is not None}


def _problem_detail(response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text.strip().splitlines()[0][:300] if response.text.strip() else response.reason_phrase
    if isinstance(body, dict):
        return str(body.get("detail") or body.get("title") or body)[:500]
    return str(body)[:300]


def cmd_deploy_record(args) -> None:
    import httpx

    if not args.service.strip():
        raise CliError("--service must not be empty")
    body = _deploy_payload(args)
    if args.dry_run:
        print(json.dumps(body, indent=2))
        return
    server = args.server or os.environ.get("BLAMETRAIL_URL")  # why: client-side settings of a CI job, not the server's
    token = args.token or os.environ.get("BLAMETRAIL_TOKEN")
    if not server:
        raise CliError("no server: pass --server URL or set BLAMETRAIL_URL")
    if not token:
        raise CliError("no API token: pass --token or set BLAMETRAIL_TOKEN")
    url = server.rstrip("/") + "/api/v1/deploys"
    try:
        response = httpx.post(url, json=body, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    except httpx.HTTPError as exc:
        raise CliError(f"cannot reach {server}: {exc}".splitlines()[0]) from exc
    if response.status_code >= 400:
        raise CliError(f"{server} refused the deploy ({response.status_code}): {_problem_detail(response)}")
    try:
        deploy = response.json()
    except ValueError as exc:
        raise CliError(f"{server} answered {response.status_code} without JSON: is it BlameTrail?") from exc
    what = "recorded" if response.status_code == 201 else "already recorded, nothing new"
    print(f"blametrail: deploy {deploy.get('id')} of {deploy.get('service')} {deploy.get('version')} "
          f"({len(deploy.get('commits', []))} commits): {what}", file=sys.stderr)
    _print(deploy)


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of the `blametrail` command."""
    p = argparse.ArgumentParser(prog="blametrail", description="BlameTrail: incidents and AI-drafted postmortems.")
    sub = p.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the web app, an embedded queue consumer, the sweeper and the "
                                         "monitor scheduler")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1,
                       help="web processes sharing the port (each with its own embedded consumers; default: 1)")
    serve.add_argument("--forwarded-allow-ips", default=None, help=argparse.SUPPRESS)  # removed: a clear error says why
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
    usp = userp.add_parser("set-password", help="set an account's password by hand (its login sessions end)")
    usp.add_argument("email")
    usp.add_argument("--password", default=None, help="the new password (default: read one line from stdin)")
    usp.set_defaults(func=cmd_user_set_password)

    tokp = sub.add_parser("token", help="API tokens").add_subparsers(dest="token_command", required=True)
    tc = tokp.add_parser("create", help="create an API token (printed once)")
    tc.add_argument("email")
    tc.add_argument("--org", required=True)
    tc.add_argument("--name", default=None)
    tc.set_defaults(func=cmd_token_create)

    keysp = sub.add_parser("keys", help="secret keys").add_subparsers(dest="keys_command", required=True)
    keysp.add_parser("rotate", help="re-encrypt every stored secret with the first key of BLAMETRAIL_SECRET_KEY "
                                    "(idempotent)").set_defaults(func=cmd_keys_rotate)

    scheduler = sub.add_parser("scheduler", help="run the monitor scheduler only (scale-out; replicas share the work)")
    scheduler.set_defaults(func=cmd_scheduler)

    demo = sub.add_parser("demo", help="seed a demo organization with a resolved incident and its postmortem")
    demo.set_defaults(func=cmd_demo)

    from blametrail.scenarios import DEFAULT_SEED

    ev = sub.add_parser(
        "evaluate", help="score the analysis on generated incidents (culprit hit@1/@3, category, onset, abstention)",
        description="Generate incidents of eight fault types plus no-culprit cases, serve their metrics and logs from "
                    "a local Prometheus/Loki stand-in, run each through the real drafting path and print how well the "
                    "analysis did. With --real, replay real public outages through the HTTP API and score the "
                    "built-in drafts instead. Exits 1 when a threshold is missed.")
    ev.add_argument("--scenarios", type=int, default=200, help="how many scenarios (default: 200)")
    ev.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"generator seed (default: {DEFAULT_SEED})")
    ev.add_argument("--families", type=int, default=10,
                    help="recurring incident families for the similar-incident precision@3 (default: 10; 0 skips)")
    ev.add_argument("--database-url", default=None,
                    help="a database to record the scenarios in (default: a temporary SQLite file)")
    ev.add_argument("--real", action="store_true",
                    help="replay the real public outages of scenarios/real/data through the HTTP API instead "
                         "(docs/evaluation.md); --scenarios and --seed do not apply")
    ev.add_argument("--only", default=None, metavar="ID[,ID…]", help="with --real: replay only these incidents")
    ev.add_argument("--split", choices=["dev", "holdout"], default=None,
                    help="with --real: replay only the incidents of this split")
    ev.add_argument("--list", action="store_true", help="list the real incidents (id, split, title) and exit")
    ev.add_argument("--misses", action="store_true",
                    help="with --real: also list what each draft missed or invented")
    ev.set_defaults(func=cmd_evaluate)

    depp = sub.add_parser("deploy", help="deploys (for CI pipelines)").add_subparsers(dest="deploy_command",
                                                                                      required=True)
    dr = depp.add_parser(
        "record", help="record a deploy on a running BlameTrail, with the commits of this git repository",
        description="Record a deploy through the API. Inside a git repository the commits since --since (default: the "
                    "previous tag, else the last 20 commits) and their changed files go with it; re-running for the "
                    "same HEAD records nothing new.")
    dr.add_argument("--service", required=True)
    dr.add_argument("--version", default=None, help="default inside a git repository: git describe --tags --always")
    dr.add_argument("--environment", default="production")
    dr.add_argument("--url", default=None, help="a link to the deploy (CI job, release page)")
    dr.add_argument("--since", default=None, help="read commits SINCE..HEAD (a tag, branch or sha)")
    dr.add_argument("--external-id", default=None,
                    help="dedupe key; default inside a git repository: cli:<service>:<environment>:<HEAD sha>")
    dr.add_argument("--server", default=None, help="BlameTrail's URL (default: $BLAMETRAIL_URL)")
    dr.add_argument("--token", default=None, help="an API token (default: $BLAMETRAIL_TOKEN)")
    dr.add_argument("--dry-run", action="store_true", help="print the JSON that would be sent and send nothing")
    dr.set_defaults(func=cmd_deploy_record)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        status = args.func(args)
    except (CliError, DomainError) as exc:
        message = exc.detail if isinstance(exc, DomainError) else str(exc)
        print(f"blametrail: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return status if isinstance(status, int) else 0


if __name__ == "__main__":
    sys.exit(main())
