"""Local servers speaking the OpenAI and Anthropic wire protocols, streamed (SSE) exactly as the real APIs send it.

A scripted reply is written as the complete (non-streamed) response; when the request asks for a stream — BlameTrail
always does — it is sent as the chunk sequence the real API would send for it:
- OpenAI: `data: {chat.completion.chunk}` lines (a role chunk, content or tool-call argument pieces, a chunk with
  the finish reason, a usage chunk because `stream_options.include_usage` is set) and `data: [DONE]`;
- Anthropic: `event:`/`data:` pairs (message_start, content_block_start, ping, content_block_delta with text_delta
  or input_json_delta pieces, content_block_stop, message_delta with the stop reason and usage, message_stop).
Reply options: "sleep" (before the headers), "chunk_delay" (between chunks), "chunk_chars" (piece size), "after"
(extra text pieces sent after the answer, as a rambling model would), "raw_args" (an Anthropic tool_use input sent
as this exact, possibly unfinished, JSON text). The server records every request and every stream the client closed
before its end (`disconnects`).
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SUMMARY_MARK = "incident summariser"  # words of the live summary's system prompt (ai/prompts/v1/system_summary.txt)


class FakeProvider:
    """A scripted HTTP server: each request gets the next reply; every request is recorded."""

    def __init__(self) -> None:
        self.replies: list[dict] = []
        self.requests: list[dict] = []
        # when set, live-summary requests get this reply (the scripted queue is left to postmortems) and are recorded
        # in summary_requests instead of requests
        self.summary_reply: dict | None = None
        self.summary_requests: list[dict] = []
        self.on_request = None  # called with the request body (in the server's thread) before it is answered
        self.disconnects = 0  # streams the client closed before their end
        self.chunks_sent = 0
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def do_POST(self):  # noqa: N802 (http.server's naming)
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    body = {"_raw": raw.decode(errors="replace")}
                record = {"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}, "json": body}
                summary = outer.summary_reply is not None and SUMMARY_MARK in raw.decode(errors="replace")
                with outer._lock:
                    if summary:
                        outer.summary_requests.append(record)
                        reply = outer.summary_reply
                    else:
                        outer.requests.append(record)
                        reply = (outer.replies.pop(0) if outer.replies else
                                 {"status": 500, "json": {"error": "no reply scripted"}})
                if outer.on_request is not None and not summary:
                    outer.on_request(body)
                if reply.get("sleep"):
                    time.sleep(reply["sleep"])
                status = reply.get("status", 200)
                try:
                    if status == 200 and isinstance(body, dict) and body.get("stream"):
                        self._stream(reply, anthropic=self.path.endswith("/messages"))
                    else:
                        self._plain(status, reply)
                except (BrokenPipeError, ConnectionResetError):
                    with outer._lock:
                        outer.disconnects += 1

            def _plain(self, status: int, reply: dict) -> None:
                payload = json.dumps(reply.get("json", {})).encode() if "text" not in reply else reply["text"].encode()
                self.send_response(status)
                self.send_header("content-type", "application/json" if "text" not in reply else "text/plain")
                self.send_header("content-length", str(len(payload)))
                for k, v in (reply.get("headers") or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(payload)

            def _stream(self, reply: dict, *, anthropic: bool) -> None:
                events = anthropic_events(reply) if anthropic else openai_events(reply)
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.send_header("cache-control", "no-cache")
                self.send_header("transfer-encoding", "chunked")
                self.end_headers()
                delay = reply.get("chunk_delay", 0)
                for event in events:
                    data = event.encode()
                    self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                    self.wfile.flush()
                    with outer._lock:
                        outer.chunks_sent += 1
                    if delay:
                        time.sleep(delay)
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def script(self, *replies: dict) -> None:
        self.replies.extend(replies)

    def __enter__(self) -> FakeProvider:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


def _pieces(text: str, size: int) -> list[str]:
    return [text[i:i + size] for i in range(0, len(text), size)] or [""]


# --- OpenAI chat completions ----------------------------------------------------------------------------

def openai_events(reply: dict) -> list[str]:
    """The SSE lines OpenAI sends for this completion (streamed with usage)."""
    done = reply["json"]
    choice = done["choices"][0]
    message, finish = choice["message"], choice["finish_reason"]
    size = reply.get("chunk_chars", 24)
    base = {"id": done.get("id", "chatcmpl-1"), "object": "chat.completion.chunk", "created": done.get("created", 0),
            "model": done.get("model", "gpt-test"), "system_fingerprint": None}

    def chunk(delta: dict, finish_reason=None) -> str:
        body = {**base, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
                "usage": None}
        return f"data: {json.dumps(body)}\n\n"

    out = []
    calls = message.get("tool_calls") or []
    if calls:
        out.append(chunk({"role": "assistant", "content": None, "refusal": None}))
        for n, call in enumerate(calls):
            out.append(chunk({"tool_calls": [{"index": n, "id": call["id"], "type": "function",
                                              "function": {"name": call["function"]["name"], "arguments": ""}}]}))
            for piece in _pieces(call["function"]["arguments"], size):
                out.append(chunk({"tool_calls": [{"index": n, "function": {"arguments": piece}}]}))
            for piece in reply.get("after", ()):
                out.append(chunk({"tool_calls": [{"index": n, "function": {"arguments": piece}}]}))
    else:
        out.append(chunk({"role": "assistant", "content": "", "refusal": None}))
        for piece in _pieces(message.get("content") or "", size):
            out.append(chunk({"content": piece}))
        for piece in reply.get("after", ()):
            out.append(chunk({"content": piece}))
    out.append(chunk({}, finish))
    out.append(f"data: {json.dumps({**base, 'choices': [], 'usage': done.get('usage')})}\n\n")
    out.append("data: [DONE]\n\n")
    return out


# --- Anthropic messages ---------------------------------------------------------------------------------

def anthropic_events(reply: dict) -> list[str]:
    """The SSE events Anthropic sends for this message."""
    done = reply["json"]
    size = reply.get("chunk_chars", 24)
    usage = done.get("usage") or {"input_tokens": 0, "output_tokens": 0}

    def event(kind: str, body: dict) -> str:
        return f"event: {kind}\ndata: {json.dumps({'type': kind, **body})}\n\n"

    start = {k: v for k, v in done.items() if k not in ("content", "stop_reason", "usage")}
    out = [event("message_start", {"message": {**start, "content": [], "stop_reason": None, "stop_sequence": None,
                                               "usage": {"input_tokens": usage["input_tokens"], "output_tokens": 1}}})]
    for n, block in enumerate(done["content"]):
        if block["type"] == "tool_use":
            out.append(event("content_block_start", {"index": n, "content_block": {
                "type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}}))
            out.append(event("ping", {}))
            text = reply.get("raw_args") if reply.get("raw_args") is not None else json.dumps(block["input"])
            for piece in [*_pieces(text, size), *reply.get("after", ())]:
                out.append(event("content_block_delta", {"index": n, "delta": {"type": "input_json_delta",
                                                                               "partial_json": piece}}))
        else:
            out.append(event("content_block_start", {"index": n, "content_block": {"type": "text", "text": ""}}))
            for piece in [*_pieces(block["text"], size), *reply.get("after", ())]:
                out.append(event("content_block_delta", {"index": n, "delta": {"type": "text_delta", "text": piece}}))
        out.append(event("content_block_stop", {"index": n}))
    out.append(event("message_delta", {"delta": {"stop_reason": done["stop_reason"], "stop_sequence": None},
                                       "usage": {"output_tokens": usage["output_tokens"]}}))
    out.append(event("message_stop", {}))
    return out


# --- scripted replies -----------------------------------------------------------------------------------

def openai_usage(prompt: int = 120, completion: int = 40) -> dict:
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def openai_tool_call(args: dict | str, *, name: str = "final_result", finish: str = "tool_calls", usage=None,
                     **options) -> dict:
    """A chat completion whose message calls the output tool with these arguments."""
    arguments = args if isinstance(args, str) else json.dumps(args)
    return {"status": 200, **options, "json": {
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1_790_000_000, "model": "gpt-test",
        "choices": [{"index": 0, "finish_reason": finish, "message": {
            "role": "assistant", "content": None,
            "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": name, "arguments": arguments}}]}}],
        "usage": usage or openai_usage()}}


def openai_text(content: str, *, finish: str = "stop", usage=None, **options) -> dict:
    """A chat completion whose message is plain text (native and prompted JSON modes)."""
    return {"status": 200, **options, "json": {
        "id": "chatcmpl-2", "object": "chat.completion", "created": 1_790_000_000, "model": "gpt-test",
        "choices": [{"index": 0, "finish_reason": finish, "message": {"role": "assistant", "content": content}}],
        "usage": usage or openai_usage()}}


def openai_error(status: int, message: str, *, type_: str = "invalid_request_error", code=None, headers=None) -> dict:
    return {"status": status, "headers": headers or {},
            "json": {"error": {"message": message, "type": type_, "param": None, "code": code}}}


def anthropic_usage(inp: int = 150, out: int = 60) -> dict:
    return {"input_tokens": inp, "output_tokens": out}


def anthropic_tool_use(args: dict, *, name: str = "final_result", stop: str = "tool_use", usage=None,
                       **options) -> dict:
    """A Messages API response with one tool_use content block."""
    return {"status": 200, **options, "json": {
        "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-test", "stop_reason": stop,
        "stop_sequence": None, "content": [{"type": "tool_use", "id": "toolu_1", "name": name, "input": args}],
        "usage": usage or anthropic_usage()}}


def anthropic_text(text: str, *, stop: str = "end_turn", usage=None, **options) -> dict:
    return {"status": 200, **options, "json": {
        "id": "msg_2", "type": "message", "role": "assistant", "model": "claude-test", "stop_reason": stop,
        "stop_sequence": None, "content": [{"type": "text", "text": text}], "usage": usage or anthropic_usage()}}


def anthropic_error(status: int, message: str, *, type_: str = "authentication_error", headers=None) -> dict:
    return {"status": status, "headers": headers or {},
            "json": {"type": "error", "error": {"type": type_, "message": message}}}
