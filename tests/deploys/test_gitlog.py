"""Reading commits and changed files from a real (temporary) git repository."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from blametrail.deploys import gitlog


def git_env(root: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(GIT_CONFIG_GLOBAL=os.devnull, GIT_CONFIG_NOSYSTEM="1", GIT_CEILING_DIRECTORIES=str(root.parent),
               GIT_AUTHOR_NAME="Jo Dev", GIT_AUTHOR_EMAIL="jo@acme.test", GIT_COMMITTER_NAME="Jo Dev",
               GIT_COMMITTER_EMAIL="jo@acme.test", HOME=str(root.parent))
    return env


class Repo:
    """A throwaway git repository, isolated from the user's git configuration (also used by the CLI tests)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.env = git_env(root)
        self.git("init", "-q", "-b", "main")

    def git(self, *args: str) -> str:
        return subprocess.run(["git", *args], cwd=self.root, env=self.env, check=True, capture_output=True,
                              text=True).stdout.strip()

    def commit(self, message: str, files: dict[str, str | None], when: str, author: str = "Jo Dev") -> str:
        """Write (or delete, for None) files and commit them at an ISO time; return the sha."""
        for name, content in files.items():
            path = self.root / name
            if content is None:
                self.git("rm", "-q", name)
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content)
            self.git("add", name)
        env = {**self.env, "GIT_AUTHOR_NAME": author, "GIT_AUTHOR_DATE": when, "GIT_COMMITTER_DATE": when}
        subprocess.run(["git", "commit", "-q", "-m", message], cwd=self.root, env=env, check=True,
                       capture_output=True)
        return self.git("rev-parse", "HEAD")

    def tag(self, name: str) -> None:
        self.git("tag", "-a", name, "-m", name)


@pytest.fixture
def repo(tmp_path, monkeypatch):
    r = Repo(tmp_path / "work" / "checkout")
    for key, value in r.env.items():  # why: gitlog runs git itself; keep it away from the user's config too
        monkeypatch.setenv(key, value)
    r.first = r.commit("Initial checkout service", {"app.py": "print('hi')\n", "README.md": "# checkout\n"},
                       "2026-11-20T10:00:00+01:00")
    r.tag("v1.0.0")
    r.second = r.commit("Add payment pool\n\nThe pool is capped at 10 connections.",
                        {"pool.py": "SIZE = 10\n", "app.py": "import pool\n"}, "2026-11-25T09:00:00Z",
                        author="Sam Ops")
    r.third = r.commit("Limit payment pool to 5", {"pool.py": "SIZE = 5\n", "README.md": None,
                                                   "dir with space/é.txt": "x\n"}, "2026-11-26T09:30:00Z")
    return r


def test_commits_since_the_previous_tag(repo):
    found, described = gitlog.commits(repo.root)
    assert described == "v1.0.0..HEAD"
    assert [c.sha for c in found] == [repo.third, repo.second]
    third, second = found
    assert third.author == "Jo Dev" and third.message == "Limit payment pool to 5"
    assert sorted(third.files) == ["README.md", "dir with space/é.txt", "pool.py"]
    assert third.committed_at == "2026-11-26T09:30:00Z"
    assert second.author == "Sam Ops"
    assert second.message == "Add payment pool\n\nThe pool is capped at 10 connections."
    assert sorted(second.files) == ["app.py", "pool.py"]
    assert second.as_json()["files"] == second.files


def test_when_head_is_tagged_the_range_starts_at_the_tag_before(repo):
    repo.tag("v1.1.0")
    assert gitlog.previous_tag(repo.root) == "v1.0.0"
    assert gitlog.describe(repo.root) == "v1.1.0"
    assert [c.sha for c in gitlog.commits(repo.root)[0]] == [repo.third, repo.second]


def test_explicit_since_and_unknown_revision(repo):
    found, described = gitlog.commits(repo.root, since=repo.second)
    assert described == f"{repo.second}..HEAD" and [c.sha for c in found] == [repo.third]
    with pytest.raises(gitlog.GitError, match="unknown revision 'v9'"):
        gitlog.commits(repo.root, since="v9")


def test_without_tags_the_last_commits(tmp_path, monkeypatch):
    r = Repo(tmp_path / "untagged")
    for key, value in r.env.items():
        monkeypatch.setenv(key, value)
    shas = [r.commit(f"change {i}", {"f.txt": str(i)}, f"2026-11-26T0{i}:00:00Z") for i in range(5)]
    found, described = gitlog.commits(r.root, count=3)
    assert described == "the last 3 commits"
    assert [c.sha for c in found] == shas[::-1][:3]
    assert gitlog.previous_tag(r.root) is None
    assert gitlog.describe(r.root) == shas[-1][:7]


def test_head_and_repository_detection(repo, tmp_path, monkeypatch):
    assert gitlog.in_repository(repo.root) and gitlog.head_sha(repo.root) == repo.third
    outside = tmp_path / "plain"
    outside.mkdir()
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    assert not gitlog.in_repository(outside)


def test_parse_log_is_robust_to_odd_messages_and_quoted_names():
    sep, rec = "\x1f", "\x1e"
    output = (f"{rec}{'a' * 40}{sep}Jo{sep}2026-11-26T10:30:00+01:00{sep}Subject\n\nbody: with \"quotes\"\n{sep}\n\n"
              f'src/a.py\n"tab\\there.txt"\n"caf\\303\\251.txt"\n'
              f"{rec}{'b' * 40}{sep}Sam{sep}2026-11-26T09:00:00Z{sep}Merge branch 'x'\n{sep}\n")
    first, merge = gitlog.parse_log(output)
    assert first.committed_at == "2026-11-26T09:30:00Z"
    assert first.message == 'Subject\n\nbody: with "quotes"'
    assert first.files == ["src/a.py", "tab\there.txt", "café.txt"]
    assert merge.files == [] and merge.sha == "b" * 40
