"""Read the commits and changed files of a deploy from the local git repository (for `blametrail deploy record`)."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from blametrail.clock import iso, parse_iso

DEFAULT_COUNT = 20
MAX_COMMITS = 1_000  # the API's limit per deploy
_REC, _SEP = "\x1e", "\x1f"  # why: ASCII record/unit separators never appear in names, dates or sane messages
_FORMAT = f"--format={_REC}%H{_SEP}%an{_SEP}%cI{_SEP}%B{_SEP}"


class GitError(Exception):
    """git failed or the revision is unknown; the message is for people."""


@dataclass(frozen=True)
class GitCommit:
    sha: str
    author: str
    message: str
    committed_at: str  # ISO 8601, UTC, "Z"
    files: list[str] = field(default_factory=list)

    def as_json(self) -> dict:
        """Return the commit in the API's shape."""
        return {"sha": self.sha, "author": self.author, "message": self.message, "files": list(self.files),
                "committed_at": self.committed_at}


def _git(cwd: str | Path | None, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    try:
        proc = subprocess.run(["git", "-c", "core.quotepath=off", *args], cwd=cwd, capture_output=True, text=True,
                              encoding="utf-8", errors="replace", timeout=60)
    except FileNotFoundError as exc:
        raise GitError("git is not installed") from exc
    except subprocess.TimeoutExpired as exc:
        raise GitError(f"git {' '.join(args)} timed out") from exc
    if check and proc.returncode != 0:
        message = (proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"])[-1]
        raise GitError(f"git {args[0]} failed: {message}")
    return proc


def in_repository(cwd: str | Path | None = None) -> bool:
    """Return True when cwd is inside a git work tree with at least one commit."""
    try:
        return _git(cwd, "rev-parse", "--verify", "-q", "HEAD^{commit}", check=False).returncode == 0
    except GitError:
        return False


def head_sha(cwd: str | Path | None = None) -> str:
    """Return the full sha of HEAD."""
    return _git(cwd, "rev-parse", "HEAD").stdout.strip()


def describe(cwd: str | Path | None = None) -> str:
    """Return `git describe --tags --always` for HEAD (a tag, tag-N-gsha, or the short sha)."""
    return _git(cwd, "describe", "--tags", "--always").stdout.strip()


def _tag_before(cwd, rev: str) -> str | None:
    proc = _git(cwd, "describe", "--tags", "--abbrev=0", rev, check=False)
    if proc.returncode != 0:
        return None
    return proc.stdout.strip() or None


def previous_tag(cwd: str | Path | None = None) -> str | None:
    """Return the latest tag before HEAD (when HEAD itself is tagged, the tag before that one), or None."""
    tag = _tag_before(cwd, "HEAD")
    if tag is None:
        return None
    if _git(cwd, "rev-parse", f"{tag}^{{commit}}").stdout.strip() != head_sha(cwd):
        return tag
    if _git(cwd, "rev-parse", "--verify", "-q", "HEAD^", check=False).returncode != 0:
        return None  # a tagged root commit: nothing before it
    return _tag_before(cwd, "HEAD^")


def _unquote(name: str) -> str:
    """Undo git's C-style quoting of unusual path names ("a\\tb", octal UTF-8 bytes)."""
    if len(name) < 2 or not (name.startswith('"') and name.endswith('"')):
        return name
    out, i, body = bytearray(), 0, name[1:-1]
    simple = {"a": 7, "b": 8, "t": 9, "n": 10, "v": 11, "f": 12, "r": 13, '"': 34, "\\": 92}
    while i < len(body):
        ch = body[i]
        if ch == "\\" and i + 1 < len(body):
            nxt = body[i + 1]
            if nxt in simple:
                out.append(simple[nxt])
                i += 2
                continue
            if body[i + 1:i + 4].isdigit() and len(body[i + 1:i + 4]) == 3:
                out.append(int(body[i + 1:i + 4], 8) & 0xFF)
                i += 4
                continue
        out.extend(ch.encode("utf-8"))
        i += 1
    return out.decode("utf-8", errors="replace")


def _utc(text: str) -> str:
    return iso(parse_iso(text))


def parse_log(output: str) -> list[GitCommit]:
    """Parse `git log --name-only` output written with this module's format."""
    commits = []
    for record in output.split(_REC)[1:]:
        parts = record.split(_SEP, 4)
        if len(parts) != 5:
            continue
        sha, author, committed, message, rest = parts
        files = [_unquote(line) for line in rest.splitlines() if line.strip()]
        commits.append(GitCommit(sha=sha.strip(), author=author.strip(), message=message.strip()[:20_000],
                                 committed_at=_utc(committed.strip()), files=files[:5_000]))
    return commits


def commits(cwd: str | Path | None = None, since: str | None = None,
            count: int = DEFAULT_COUNT) -> tuple[list[GitCommit], str]:
    """Return the commits `since..HEAD` (default: since the previous tag, else the last `count`), newest first,
    and a description of the range read."""
    if since is None:
        since = previous_tag(cwd)
    if since is not None:
        if _git(cwd, "rev-parse", "--verify", "-q", f"{since}^{{commit}}", check=False).returncode != 0:
            raise GitError(f"unknown revision {since!r} (use a tag, branch or sha that exists here)")
        args, described = [f"{since}..HEAD", f"-n{MAX_COMMITS}"], f"{since}..HEAD"
    else:
        args, described = ["HEAD", f"-n{count}"], f"the last {count} commits"
    out = _git(cwd, "log", "--name-only", "--no-renames", "--no-color", _FORMAT, *args, "--").stdout
    return parse_log(out), described
