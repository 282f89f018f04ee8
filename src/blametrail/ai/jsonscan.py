"""Find where a streamed JSON answer's top-level object closes, and cut that object out of surrounding text.

A model asked for one JSON object may keep writing after it (a base model rambles until its output cap; a server
that ignores the cap runs until its context is full). The stream is stopped as soon as the object closes, so the
scanner works on chunks as they arrive: braces inside strings and escaped quotes do not count.
"""

from __future__ import annotations

AFTER_KEPT = 200  # characters kept of what follows the object (enough to tell words from whitespace)


class ObjectCloser:
    """Feed text chunks; `closed` turns true once the first top-level JSON object is complete.

    `after` holds (the start of) whatever was written after the object closed.
    """

    def __init__(self) -> None:
        self.after = ""
        self.depth = 0
        self.started = False
        self.closed = False
        self.end = -1  # index (in everything fed so far) just past the closing brace
        self._in_string = False
        self._escaped = False
        self._seen = 0

    def feed(self, chunk: str) -> bool:
        """Scan one more chunk; return True once the top-level object has closed (it stays closed)."""
        if self.closed:
            self.after = (self.after + chunk)[:AFTER_KEPT]
            return True
        for i, ch in enumerate(chunk):
            if not self.started:
                if ch == "{":
                    self.started, self.depth = True, 1
                continue
            if self._in_string:
                if self._escaped:
                    self._escaped = False
                elif ch == "\\":
                    self._escaped = True
                elif ch == '"':
                    self._in_string = False
                continue
            if ch == '"':
                self._in_string = True
            elif ch in "{[":
                self.depth += 1
            elif ch in "}]":
                self.depth -= 1
                if self.depth == 0:
                    self.closed, self.end = True, self._seen + i + 1
                    self.after = chunk[i + 1:i + 1 + AFTER_KEPT]
                    break
        self._seen += len(chunk)
        return self.closed


def first_object(text: str) -> str | None:
    """Return the first complete top-level JSON object in the text (fences and trailing words ignored), or None."""
    scanner = ObjectCloser()
    if not scanner.feed(text):
        return None
    return text[text.index("{"):scanner.end]
