"""Finding where a streamed JSON answer closes (ai/jsonscan.py) and classifying failures (ai/failures.py)."""

from __future__ import annotations

import json

import pytest

from blametrail.ai import failures
from blametrail.ai.jsonscan import ObjectCloser, first_object

TRICKY = {"summary": "a } brace, a { brace and an \"escaped quote\" inside } strings",
          "list": [{"x": "]"}, {"y": "\\"}], "n": 1}


@pytest.mark.parametrize("size", [1, 2, 7, 1000])
def test_the_object_closes_exactly_once_whatever_the_chunking(size):
    text = "Here you go:\n```json\n" + json.dumps(TRICKY) + "\n```\nAnything else?"
    closer = ObjectCloser()
    for i in range(0, len(text), size):
        closer.feed(text[i:i + size])
    assert closer.closed
    assert json.loads(text[text.index("{"):closer.end]) == TRICKY
    assert closer.after == "\n```\nAnything else?"  # what followed the object is kept


def test_an_unfinished_object_never_closes():
    closer = ObjectCloser()
    assert not closer.feed(json.dumps(TRICKY)[:-1])
    assert not closer.feed("   ")
    assert not ObjectCloser().feed('no object here, just "}" characters }')


def test_first_object_ignores_fences_and_trailing_words():
    assert json.loads(first_object("```json\n" + json.dumps(TRICKY) + "\n```\nThanks!")) == TRICKY
    assert first_object('{"a": 1} and then {"b": 2}') == '{"a": 1}'
    assert first_object('{"a": [1, 2') is None


# --- failures ---------------------------------------------------------------------------------------------------

class HTTPError(Exception):
    """Shaped like pydantic-ai's ModelHTTPError: a status code and the provider's body."""

    def __init__(self, status: int, body) -> None:
        super().__init__(f"status_code: {status}")
        self.status_code, self.body = status, body


def test_a_traceback_in_the_servers_answer_is_reduced_to_its_last_line():
    body = {"error": {"message": "Traceback (most recent call last):\n  File \"x.py\", line 1, in f\n    g()\n"
                                 "RuntimeError: llama_decode returned -1", "type": "server_error"}}
    assert failures.provider_reason(HTTPError(500, body)) == "RuntimeError: llama_decode returned -1"
    assert failures.provider_reason(HTTPError(500, {"detail": "x" * 1000})).endswith("…")


@pytest.mark.parametrize(("status", "message", "mode", "expected"), [
    (500, "response_format.type should be 'text' or 'json_object'", "native", failures.NO_JSON_SCHEMA),
    (400, "json_schema is not supported", "native", failures.NO_JSON_SCHEMA),
    (400, "unknown field `response_format`", "json_object", failures.NO_JSON_OBJECT),
    (400, "tool_choice 'required' is not supported", "tool", failures.NO_TOOLS),
    (400, "Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead.",
     "tool", failures.NO_MAX_COMPLETION_TOKENS),
    (400, "Unsupported parameter: 'max_tokens' is not supported with this model.", "tool", failures.NO_MAX_TOKENS),
    (400, "Conversation roles must alternate user/assistant/user/assistant/...", "prompted", failures.NO_SYSTEM_ROLE),
    (429, "response_format busy", "native", None),  # a rate limit is never a permanent hint
    (400, "the prompt is too long", "tool", None),
])
def test_hints_name_the_setting_to_change(status, message, mode, expected):
    assert failures.hint_for(HTTPError(status, {"error": {"message": message}}), mode) == expected


@pytest.mark.parametrize(("status", "message", "permanent"), [
    (400, "bad", True), (401, "key", True), (404, "model", True), (422, "invalid", True),
    (408, "timeout", False), (409, "conflict", False), (429, "slow down", False),
    (500, "internal", False), (503, "overloaded", False),
    (500, "1 validation error for Request", True), (500, "Input should be a valid integer", True),
])
def test_which_answers_are_permanent(status, message, permanent):
    assert failures.is_permanent(HTTPError(status, {"error": {"message": message}}), "tool") is permanent
