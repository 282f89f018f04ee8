"""Summarise py-spy's collapsed stacks (`py-spy record --format raw`): the functions with the most samples.

Usage:
  python scripts/profile_summary.py PROFILE.txt [PROFILE.txt ...] [--top 25] [--match blametrail]

Prints, for the samples of all the files together, the top functions by inclusive share (the function is anywhere on
the stack) and by self share (it is the innermost frame), as `share  samples  function (file:line)`. --match keeps
only frames whose file contains the text in the inclusive list (our own code, say), so the list shows where in our
code the time goes rather than the framework's frames around it. Idle samples (a thread waiting in a selector, a
lock or a socket read) are counted apart and left out of the shares.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from pathlib import Path

FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")
IDLE = ("select (selectors.py", "wait (threading.py", "_worker (concurrent/futures/thread.py",
        "run_forever (asyncio/base_events.py", "_run_once (asyncio/base_events.py")


def parse(lines) -> list[tuple[list[str], int]]:
    """Return (frames outermost first, samples) per collapsed-stack line."""
    stacks = []
    for line in lines:
        line = line.rstrip("\n")
        if not line:
            continue
        stack, _, count = line.rpartition(" ")
        try:
            n = int(count)
        except ValueError:
            continue
        stacks.append((stack.split(";"), n))
    return stacks


def _name(frame: str) -> str:
    m = FRAME.match(frame.strip())
    if not m:
        return frame.strip()
    file = m["file"]
    for marker in ("site-packages/", "src/", "lib/python3"):
        if marker in file:
            file = file.split(marker, 1)[1]
            break
    return f"{m['func']} ({file})"


def summarise(stacks, *, top: int = 25, match: str | None = None) -> str:
    """Return the report as text."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    busy = idle = 0
    for frames, n in stacks:
        leaf = frames[-1] if frames else ""
        if any(mark in leaf for mark in IDLE) or "(threading.py" in leaf and "wait" in leaf:
            idle += n
            continue
        busy += n
        names = [_name(f) for f in frames]
        own[names[-1]] += n
        for name in set(names):
            if match is None or match in name:
                inclusive[name] += n
    if not busy:
        return "no busy samples"
    out = [f"{busy} busy samples ({idle} idle left out)", "", "inclusive (anywhere on the stack):"]
    out += [f"  {100 * n / busy:5.1f}%  {n:>7}  {name}" for name, n in inclusive.most_common(top)]
    out += ["", "self (innermost frame):"]
    out += [f"  {100 * n / busy:5.1f}%  {n:>7}  {name}" for name, n in own.most_common(top)]
    return "\n".join(out)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("files", nargs="+")
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--match", default=None, help="inclusive list: only frames whose name contains this")
    args = p.parse_args(argv)
    stacks = []
    for f in args.files:
        stacks += parse(Path(f).read_text(errors="replace").splitlines())
    print(summarise(stacks, top=args.top, match=args.match))
    return 0


if __name__ == "__main__":
    sys.exit(main())
