"""Test-only launcher of a `blametrail` command: warm starts, a fork server, and an exit right after a commit.

    python tests/faults/launch.py [--wait-go | --fork-server] [--preload MODULE]... [--die-after-commit TASK] \
        -- serve --port 8000

--wait-go           import what the command needs, print "launcher ready", then wait for a line on stdin before
                    running it (several servers can then start in the same instant).
--fork-server       import what the command needs, print "launcher ready", then for every line "fork [ARG...]" on
                    stdin fork a child that runs the command with ARGs appended (`blametrail.cli.main`) and print
                    "launcher: forked PID"; when a child ends print "launcher: exited PID STATUS" (-9 for SIGKILL).
                    A test that kills a server fifty times so pays the imports once. End of stdin (or SIGTERM)
                    stops the children, then the fork server.
--preload MODULE    import this module too before "ready" (pydantic-ai for a worker with an LLM engine). For `serve`
                    a throw-away app is built too: the first app of a process costs most of its set-up.
--die-after-commit  exit with status 137 (as a kill -9 would) the first time a committed transaction hands TASK to
                    the dispatcher: after session.commit(), before anything reaches the queue. Production code has
                    no hook for this: the launcher wraps the dispatcher that blametrail.db.make_sessionmaker receives.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import select
import signal
import sys
import threading


def _die_after_commit(task_name: str) -> None:
    from blametrail import db

    real = db.make_sessionmaker

    def make_sessionmaker(engine, dispatcher=None):
        def dispatch(task, task_args):
            if task == task_name:
                print(f"launcher: committed, exiting before enqueuing {task}{task_args!r}", file=sys.stderr,
                      flush=True)
                os._exit(137)
            if dispatcher is not None:
                dispatcher(task, task_args)

        return real(engine, dispatcher=dispatch)

    db.make_sessionmaker = make_sessionmaker


def _warm_app() -> None:
    """Build one throw-away app (no database connection, no thread): the first app of a process is the slow one."""
    from blametrail.app import create_app
    from blametrail.runtime import build_runtime
    from blametrail.settings import Settings

    settings = Settings()
    rt = build_runtime(settings, migrate=False, queue_url="memory://")
    create_app(settings, runtime=rt, background=False)
    rt.engine.dispose()


def _child(command: list[str]) -> None:
    from blametrail import cli

    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    try:
        status = cli.main(command)
    except SystemExit as exc:
        status = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        import traceback

        traceback.print_exc()
        status = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status or 0)


def _fork_server(command: list[str]) -> int:
    if threading.active_count() != 1:  # why: forking a process with threads can deadlock the child
        print(f"launcher: refusing to fork with {threading.active_count()} threads", flush=True)
        return 1
    children: set[int] = set()
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    print("launcher ready", flush=True)
    buffer = b""
    try:
        while not stopping:
            for pid in list(children):
                done, status = os.waitpid(pid, os.WNOHANG)
                if done:
                    children.discard(pid)
                    code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
                    print(f"launcher: exited {pid} {code}", flush=True)
            try:
                readable, _, _ = select.select([0], [], [], 0.02)
            except InterruptedError:
                continue
            if not readable:
                continue
            chunk = os.read(0, 1024)
            if not chunk:
                break
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                words = line.decode().split()
                if words[:1] != ["fork"]:
                    continue
                sys.stdout.flush()
                sys.stderr.flush()
                pid = os.fork()
                if pid == 0:
                    _child(command + words[1:])
                children.add(pid)
                print(f"launcher: forked {pid}", flush=True)
    finally:
        for pid in children:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for pid in children:
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(prog="launch.py")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--wait-go", action="store_true")
    mode.add_argument("--fork-server", action="store_true")
    parser.add_argument("--preload", action="append", default=[])
    parser.add_argument("--die-after-commit", metavar="TASK")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command

    import blametrail.web
    from blametrail import cli

    web = [m.name for m in pkgutil.walk_packages(blametrail.web.__path__, "blametrail.web.")]
    for module in ("blametrail.app", "blametrail.runtime", "uvicorn", "alembic.command", *web, *args.preload):
        importlib.import_module(module)
    if args.die_after_commit:
        _die_after_commit(args.die_after_commit)
    if command[:1] == ["serve"]:
        _warm_app()
    if args.fork_server:
        return _fork_server(command)
    if args.wait_go:
        print("launcher ready", flush=True)
        if not sys.stdin.readline():  # the test went away without starting us
            return 0
    return cli.main(command)


if __name__ == "__main__":
    sys.exit(main())
