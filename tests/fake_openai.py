"""A real HTTP server on 127.0.0.1 that speaks the OpenAI chat-completions streaming protocol.

Raw asyncio streams, no dependencies. It records every request body and
whether the client closed the connection before the answer was complete.

Modes (`set_mode(mode, **options)`):
  normal      role chunk, content tokens, finish chunk, usage chunk (when the request
              asks `stream_options.include_usage`), `data: [DONE]`
  no_usage    as normal, never a usage chunk
  error500    HTTP 500 with an OpenAI-style JSON error
  error429    HTTP 429 (rate limited), `retry-after: 1`
  error401    HTTP 401 whose message echoes the bearer token (as some servers do)
  refused     the listening socket is closed: connections are refused (any other
              mode re-opens it on the same port)
  stall       reads the request, then never answers (not even headers)
  stall_after sends `after` tokens, then stalls
  cut         sends `after` tokens, then ends the body cleanly without `[DONE]`
  drop        sends `after` tokens, then closes the TCP connection mid-body
  malformed   sends `after` tokens, then a chunk that is not JSON
  slow        as normal, `rate` tokens per second
  html        every path answers 200 with an HTML page (a web UI or a proxy's page
              where the API was expected, as when the URL lacks its /v1)

Options: `tokens` (the script, a list of strings), `count` (cycle the script to
this many tokens), `after` (for stall_after/cut/drop/malformed, default 3),
`rate` (tokens/s for slow; `[low, high]`: each answer a pace drawn between them), `usage` (dict overriding the reported usage), `bad` (the
data line malformed mode sends; default: truncated JSON).

Canned answers (for non-streaming requests such as distillation; the mode's own
behaviour applies once none matches):
  `replies`   a queue, one item per chat request in arrival order: a string (the
              whole answer's content) or `{"status": N}` (an OpenAI-style error
              with that HTTP status; 429 carries `retry-after`)
  `routes`    `[[substring, content], ...]`: the first whose substring occurs in the
              request's messages gives the content
  `delay`     seconds to wait before answering a chat request
  `reject_response_format`  HTTP 400 for a request with `response_format`, as
              servers without structured output answer

`POST /v1/embeddings` answers `{"data": [{"index", "embedding"}]}` for each `input`
text: a deterministic bag-of-words vector (each word hashed into EMBED_DIM dimensions), so
texts sharing words are close. `set_embeddings(fail_after=N)` makes every embeddings
request after the first N answer HTTP 500 (a server failing half-way).

Use it
  * in-process, from sync or async tests: `with FakeOpenAI() as srv:` or
    `async with FakeOpenAI() as srv:` — it runs its own event loop in a thread;
    `srv.url` is the base URL (`http://127.0.0.1:PORT/v1`), `srv.requests` the log;
  * as a fixture: `fake_llm` / `fake_llm_fallback` (tests/fixtures_llm.py);
  * as a process: `python -m tests.fake_openai --port 8765 --mode slow --rate 200`;
    it prints `fake-openai listening on URL` and serves until killed. Its mode can
    be changed over HTTP: `POST /_control {"mode": "...", ...options}`, and
    `GET /_control` returns the recorded requests.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

DEFAULT_TOKENS = [
    "Parallel",
    " compression",
    " adds",
    " sustain",
    " [1]",
    " while",
    " keeping",
    " transients",
    " [2].",
    "\n\n- ",
    "Blend",
    " to",
    " taste.",
]
MODES = {
    "normal", "no_usage", "error500", "error429", "error401", "refused", "stall", "stall_after",
    "cut", "drop", "malformed", "slow", "html",
}
HTML_PAGE = (b"<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
             b"<title>Open WebUI</title></head>\n<body><div id=\"app\"></div>"
             b"<script src=\"/static/app.js\"></script></body></html>\n")


def unused_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (for 'connection refused')."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


EMBED_DIM = 64


def embed_text(text: str) -> list[float]:
    """A deterministic bag-of-words vector: each word adds 1 at two hashed positions."""
    import hashlib
    import re

    vec = [0.0] * EMBED_DIM
    for word in re.findall(r"[a-z0-9]+", text.lower()):
        digest = hashlib.blake2b(word.encode(), digest_size=4).digest()
        vec[digest[0] % EMBED_DIM] += 1.0
        vec[digest[1] % EMBED_DIM] += 0.5
    if not any(vec):
        vec[0] = 1.0
    return vec


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: Any
    mode: str
    client_closed: bool = False  # the client closed the connection before the answer ended
    completed: bool = False  # the server sent the whole answer
    tokens_sent: int = 0
    closed_event: asyncio.Event | None = field(default=None, repr=False)
    # time.time() when the request was read, and when its first content token was sent:
    # the server's own first-token delay, for benchmarks that subtract it.
    received_at: float = 0.0
    first_token_at: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "method": self.method, "path": self.path, "body": self.body, "mode": self.mode,
            "client_closed": self.client_closed, "completed": self.completed,
            "tokens_sent": self.tokens_sent, "received_at": self.received_at,
            "first_token_at": self.first_token_at,
        }


class FakeOpenAI:
    """The fake model server; runs its own event loop in a daemon thread."""

    def __init__(self, mode: str = "normal", *, host: str = "127.0.0.1", port: int = 0,
                 model: str = "fake-model", **options: Any) -> None:
        self.host = host
        self.port = port
        self.model = model
        self.mode = "normal"
        self.options: dict[str, Any] = {}
        self.requests: list[RecordedRequest] = []
        self.embed_fail_after: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.base_events.Server | None = None
        self._handlers: set[asyncio.Task] = set()
        self._lock = threading.Lock()
        self._initial = (mode, options)

    # -- lifecycle ---------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def start(self) -> FakeOpenAI:
        ready = threading.Event()

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self._loop)
            self._loop.run_until_complete(self._listen())
            ready.set()
            self._loop.run_forever()
            # Stopped: close what is still open.
            for task in list(self._handlers):
                task.cancel()
            if self._handlers:
                self._loop.run_until_complete(
                    asyncio.gather(*self._handlers, return_exceptions=True)
                )
            self._loop.close()

        self._thread = threading.Thread(target=run, name="fake-openai", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("fake OpenAI server did not start")
        self.set_mode(*self._initial[:1], **self._initial[1])
        return self

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return

        async def shutdown() -> None:
            if self._server is not None:
                self._server.close()
                self._server = None
            for task in list(self._handlers):
                task.cancel()

        asyncio.run_coroutine_threadsafe(shutdown(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        self._loop = self._thread = None

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    async def __aenter__(self) -> FakeOpenAI:
        return await asyncio.to_thread(self.start)

    async def __aexit__(self, *exc: Any) -> None:
        await asyncio.to_thread(self.stop)

    # -- control -----------------------------------------------------------------

    def set_mode(self, mode: str, **options: Any) -> None:
        """Switch mode for the next requests; `refused` closes the listener."""
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; one of {sorted(MODES)}")
        options = dict(options)
        if "replies" in options:
            options["replies"] = list(options["replies"])  # consumed here, not in the caller's list
        with self._lock:
            self.mode, self.options = mode, options
        if self._loop is not None:
            asyncio.run_coroutine_threadsafe(self._apply_listener(), self._loop).result(5)

    def set_embeddings(self, fail_after: int | None = None) -> None:
        with self._lock:
            self.embed_fail_after = fail_after

    @property
    def embedding_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path.endswith("/embeddings")]

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path.endswith("/chat/completions")]

    @property
    def last_body(self) -> Any:
        return self.chat_requests[-1].body if self.chat_requests else None

    def wait_for(self, predicate, timeout: float = 10.0) -> bool:
        """Poll `predicate()` (a condition on the recorded requests) until true or timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.01)
        return predicate()

    async def await_for(self, predicate, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            await asyncio.sleep(0.01)
        return predicate()

    # -- server ------------------------------------------------------------------

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(
            self._on_connection, self.host, self.port, reuse_address=True
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def _apply_listener(self) -> None:
        if self.mode == "refused":
            if self._server is not None:
                self._server.close()
                await self._server.wait_closed()
                self._server = None
        elif self._server is None:
            await self._listen()

    async def _on_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            await self._serve(reader, writer)
        except (asyncio.CancelledError, ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._handlers.discard(task)
            with contextlib.suppress(Exception):
                writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        received_at = time.time()
        lines = head.decode("latin-1").split("\r\n")
        method, path, _version = lines[0].split(" ", 2)
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                k, v = line.split(":", 1)
                headers[k.strip().lower()] = v.strip()
        length = int(headers.get("content-length", "0") or 0)
        raw = await reader.readexactly(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")

        if path.startswith("/_control"):
            await self._control(method, body, writer)
            return
        with self._lock:
            mode, options = self.mode, dict(self.options)
        rec = RecordedRequest(method, path, headers, body, mode, closed_event=asyncio.Event(),
                              received_at=received_at)
        with self._lock:
            self.requests.append(rec)

        async def watch_close() -> None:
            # The client sends nothing more on this connection: EOF means it closed.
            with contextlib.suppress(Exception):
                await reader.read()
            rec.client_closed = not rec.completed
            rec.closed_event.set()

        watcher = asyncio.create_task(watch_close())
        try:
            if mode == "html":
                head = ["HTTP/1.1 200 OK", "content-type: text/html; charset=utf-8",
                        f"content-length: {len(HTML_PAGE)}", "connection: close"]
                writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + HTML_PAGE)
                await writer.drain()
                rec.completed = True
            elif path.endswith("/models"):
                await self._json(writer, 200, {"object": "list", "data": [{"id": self.model, "object": "model"}]})
                rec.completed = True
            elif path.endswith("/embeddings"):
                await self._embeddings(body, writer)
                rec.completed = True
            elif not path.endswith("/chat/completions"):
                await self._json(writer, 404, {"error": {"message": f"no route {path}"}})
                rec.completed = True
            else:
                try:
                    await self._chat(rec, mode, options, writer)
                except ConnectionError:
                    # Writing to a connection the client closed.
                    rec.client_closed = not rec.completed
                    rec.closed_event.set()
                    return
            # Give the close watcher a moment to notice a client that left.
            await asyncio.sleep(0)
        finally:
            watcher.cancel()

    async def _embeddings(self, body: Any, writer: asyncio.StreamWriter) -> None:
        with self._lock:
            served = len(self.embedding_requests) - 1
            fail_after = self.embed_fail_after
        if fail_after is not None and served >= fail_after:
            await self._json(writer, 500, {"error": {"message": "embedding backend crashed"}})
            return
        texts = body.get("input") if isinstance(body, dict) else None
        if isinstance(texts, str):
            texts = [texts]
        if not isinstance(texts, list):
            await self._json(writer, 400, {"error": {"message": "input must be a list"}})
            return
        data = [{"object": "embedding", "index": i, "embedding": embed_text(str(t))}
                for i, t in enumerate(texts)]
        await self._json(writer, 200, {"object": "list", "data": data,
                                       "model": body.get("model", self.model)})

    async def _control(self, method: str, body: Any, writer: asyncio.StreamWriter) -> None:
        if method == "POST" and isinstance(body, dict) and "mode" in body:
            opts = {k: v for k, v in body.items() if k != "mode"}
            try:
                with self._lock:
                    if body["mode"] not in MODES:
                        raise ValueError(f"unknown mode {body['mode']!r}")
                    self.mode, self.options = body["mode"], opts
            except ValueError as exc:
                await self._json(writer, 400, {"error": str(exc)})
                return
            await self._json(writer, 200, {"mode": self.mode})
            if self.mode == "refused":
                await self._apply_listener()
            return
        with self._lock:
            data = [r.as_dict() for r in self.requests]
        await self._json(writer, 200, {"mode": self.mode, "requests": data})

    async def _json(self, writer: asyncio.StreamWriter, status: int, value: Any,
                    extra: dict[str, str] | None = None) -> None:
        body = json.dumps(value).encode()
        reason = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 429: "Too Many Requests",
                  500: "Internal Server Error"}.get(status, "Status")
        head = [f"HTTP/1.1 {status} {reason}", "content-type: application/json",
                f"content-length: {len(body)}", "connection: close"]
        head += [f"{k}: {v}" for k, v in (extra or {}).items()]
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
        await writer.drain()

    async def _chat(self, rec: RecordedRequest, mode: str, options: dict[str, Any],
                    writer: asyncio.StreamWriter) -> None:
        body = rec.body if isinstance(rec.body, dict) else {}
        if options.get("delay"):
            await asyncio.sleep(float(options["delay"]))
        if options.get("reject_response_format") and "response_format" in body:
            await self._json(writer, 400, {"error": {
                "message": "response_format is not supported by this server (fake)",
                "type": "invalid_request_error"}})
            rec.completed = True
            return
        reply = None if body.get("stream") else self._canned(body)
        if isinstance(reply, dict):
            status = int(reply.get("status", 500))
            await self._json(writer, status, {"error": {"message": f"HTTP {status} (fake)",
                                                        "type": "fake_error"}},
                             {"retry-after": "1"} if status == 429 else None)
            rec.completed = True
            return
        if isinstance(reply, str):
            await self._json(writer, 200, {
                "id": "chatcmpl-fake", "object": "chat.completion", "created": 0,
                "model": body.get("model", self.model),
                "choices": [{"index": 0, "message": {"role": "assistant", "content": reply},
                             "finish_reason": "stop"}],
                "usage": self._usage(body, max(1, len(reply) // 4), options),
            })
            rec.completed = True
            return
        if mode == "error500":
            await self._json(writer, 500, {"error": {"message": "internal error (fake)", "type": "server_error"}})
            rec.completed = True
            return
        if mode == "error429":
            await self._json(writer, 429, {"error": {"message": "rate limited (fake)", "type": "rate_limit"}},
                             {"retry-after": "1"})
            rec.completed = True
            return
        if mode == "error401":
            token = rec.headers.get("authorization", "").removeprefix("Bearer ")
            await self._json(writer, 401, {"error": {
                "message": f"Incorrect API key provided: {token}", "type": "invalid_request_error"}})
            rec.completed = True
            return
        if mode == "stall":
            await rec.closed_event.wait()
            return
        if not body.get("stream"):
            text = "".join(self._tokens(options))
            await self._json(writer, 200, {
                "id": "chatcmpl-fake", "object": "chat.completion", "created": 0,
                "model": body.get("model", self.model),
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                             "finish_reason": "stop"}],
                "usage": self._usage(body, len(self._tokens(options)), options),
            })
            rec.completed = True
            return

        head = ("HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                "cache-control: no-cache\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n")
        writer.write(head.encode())
        await writer.drain()
        model = body.get("model", self.model)

        async def send(data: str) -> None:
            payload = f"data: {data}\n\n".encode()
            writer.write(f"{len(payload):x}\r\n".encode() + payload + b"\r\n")
            await writer.drain()

        def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
            return json.dumps({
                "id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 0,
                "model": model, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            })

        tokens = self._tokens(options)
        after = int(options.get("after", 3))
        rate = options.get("rate", 0) or 0
        if isinstance(rate, list | tuple):  # [low, high]: each answer its own pace
            rate = random.uniform(float(rate[0]), float(rate[1]))
        rate = float(rate)
        await send(chunk({"role": "assistant", "content": ""}))
        loop = asyncio.get_running_loop()
        paced_from = loop.time()
        for i, tok in enumerate(tokens):
            if rec.closed_event.is_set():
                return
            if mode in ("stall_after", "cut", "drop", "malformed") and i == after:
                if mode == "stall_after":
                    await rec.closed_event.wait()
                    return
                if mode == "cut":
                    writer.write(b"0\r\n\r\n")
                    await writer.drain()
                    rec.completed = True
                    return
                if mode == "drop":
                    writer.transport.abort()
                    return
                if mode == "malformed":
                    await send(options.get("bad", '{"choices": [{"delta": {"content": "oops"'))
            await send(chunk({"content": tok}))
            if rec.first_token_at is None:
                rec.first_token_at = time.time()
            rec.tokens_sent += 1
            if mode == "slow" and rate > 0:
                # Paced against a schedule, not by sleeping 1/rate after each token: a
                # sleep is never shorter than the loop's timer resolution, which capped
                # "2,000 tokens/s" at ~850. Ahead of the schedule it sleeps; behind it,
                # the next token goes at once.
                ahead = paced_from + (i + 1) / rate - loop.time()
                await asyncio.sleep(ahead if ahead > 0 else 0)
            elif i % 64 == 63:
                await asyncio.sleep(0)  # let the close watcher run on long scripts
        await send(chunk({}, "stop"))
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        if include_usage and mode != "no_usage":
            await send(json.dumps({
                "id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 0,
                "model": model, "choices": [], "usage": self._usage(body, len(tokens), options),
            }))
        await send("[DONE]")
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        rec.completed = True

    def _canned(self, body: dict[str, Any]) -> str | dict[str, Any] | None:
        """The next queued reply, else the first matching route's content, else None."""
        with self._lock:
            queue = self.options.get("replies")
            if queue:
                return queue.pop(0)
            routes = list(self.options.get("routes") or [])
        if routes:
            text = "\n".join(str(m.get("content", "")) for m in body.get("messages", [])
                             if isinstance(m, dict))
            for needle, content in routes:
                if needle in text:
                    return content
        return None

    @staticmethod
    def _tokens(options: dict[str, Any]) -> list[str]:
        script = list(options.get("tokens") or DEFAULT_TOKENS)
        count = options.get("count")
        if count is None:
            return script
        return [script[i % len(script)] for i in range(int(count))]

    @staticmethod
    def _usage(body: dict[str, Any], completion: int, options: dict[str, Any]) -> dict[str, int]:
        if isinstance(options.get("usage"), dict):
            return dict(options["usage"])
        words = sum(len(str(m.get("content", "")).split()) for m in body.get("messages", [])
                    if isinstance(m, dict))
        # Deliberately unlike chars/4, so tests can tell reported usage from estimates.
        prompt = 7 + words
        return {"prompt_tokens": prompt, "completion_tokens": completion,
                "total_tokens": prompt + completion}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--mode", default="normal", choices=sorted(MODES))
    parser.add_argument("--rate", type=float, help="tokens per second (mode slow)")
    parser.add_argument("--count", type=int, help="cycle the script to this many tokens")
    parser.add_argument("--after", type=int, help="tokens before stall_after/cut/drop/malformed")
    parser.add_argument("--tokens-file", help="a JSON list of token strings to stream")
    args = parser.parse_args(argv)
    options: dict[str, Any] = {}
    for key in ("rate", "count", "after"):
        if getattr(args, key) is not None:
            options[key] = getattr(args, key)
    if args.tokens_file:
        with open(args.tokens_file, encoding="utf-8") as fh:
            options["tokens"] = json.load(fh)
    server = FakeOpenAI(args.mode, host=args.host, port=args.port, **options).start()
    print(f"fake-openai listening on {server.url}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
