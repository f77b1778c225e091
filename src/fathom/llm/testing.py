"""A local OpenAI-compatible chat server for tests and benches: real HTTP, real SSE, scripted replies.

It stands in for a remote LLM provider where none can run (tests, CI, benches). Each request is
answered by a ``Reply`` that a test script chooses from the request itself, so a
script can read the fenced documents fathom sent and echo or distort them.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["EchoAndInvent", "Reply", "ScriptedLLMServer", "documents", "documents_in", "normalized"]

# A fenced document: `<document-MARKER id="n" ...>` (or the plain `<document` of answer-v1).
_DOCUMENT = re.compile(r'<(document(?:-[0-9a-f]+)?) id="(\d+)"[^>]*>\n(.*?)\n</\1>', re.DOTALL)


@dataclass
class Reply:
    """One scripted response.

    ``text`` is streamed as SSE deltas (split into ``pieces`` words each); ``status`` other
    than 200 sends an error body; ``raw`` sends these SSE data payloads verbatim; ``hang_before``
    waits that long before the response headers; ``hang_after_first`` stalls after the first delta;
    ``whole`` ignores ``"stream": true`` and sends one JSON completion, as some servers do.
    """

    text: str = ""
    status: int = 200
    retry_after: str | None = None
    raw: list[str] | None = None
    hang_before: float = 0.0
    hang_after_first: float = 0.0
    usage: tuple[int, int] | None = (120, 30)
    pieces: int = 2
    whole: bool = False


def documents_in(prompt: str) -> dict[int, str]:
    """The fenced documents of a prompt, by id."""
    return {int(n): text for _tag, n, text in _DOCUMENT.findall(prompt)}


def documents(request: dict[str, Any]) -> dict[int, str]:
    """The fenced documents of a chat request, by id."""
    return documents_in(request["messages"][-1]["content"])


class ScriptedLLMServer:
    """Serves ``POST /v1/chat/completions`` on 127.0.0.1 from a script, in a background thread."""

    def __init__(self, script: Callable[[dict[str, Any]], Reply]) -> None:
        self.script = script
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> ScriptedLLMServer:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *_exc: object) -> None:
        async def stop() -> None:
            assert self._server is not None
            self._server.close()
            for writer in list(self._writers):
                writer.close()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()
            await asyncio.sleep(0.01)

        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode().split("\r\n")
            headers = {
                k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)
            }
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            request = json.loads(body)
            self.requests.append(request)
            self.headers.append(headers)
            reply = self.script(request)
            await self._respond(writer, reply)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()

    async def _respond(self, writer: asyncio.StreamWriter, reply: Reply) -> None:
        if reply.hang_before:
            await asyncio.sleep(reply.hang_before)
        if reply.status != 200:
            body = json.dumps({"error": {"message": "scripted failure", "type": "server_error"}}).encode()
            extra = f"Retry-After: {reply.retry_after}\r\n" if reply.retry_after is not None else ""
            writer.write(
                f"HTTP/1.1 {reply.status} Scripted\r\nContent-Type: application/json\r\n{extra}"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                + body
            )
            await writer.drain()
            return
        if reply.whole:
            message = {"role": "assistant", "content": reply.text}
            body = json.dumps({"choices": [{"index": 0, "message": message}]}).encode()
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                + body
            )
            await writer.drain()
            return
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
            b"Connection: close\r\n\r\n"
        )
        await writer.drain()
        payloads = reply.raw if reply.raw is not None else self._payloads(reply)
        for i, payload in enumerate(payloads):
            writer.write(f"data: {payload}\n\n".encode())
            await writer.drain()
            if i == 0 and reply.hang_after_first:
                await asyncio.sleep(reply.hang_after_first)
        if reply.raw is None:
            writer.write(b"data: [DONE]\n\n")
            await writer.drain()

    @staticmethod
    def _payloads(reply: Reply) -> list[str]:
        words = re.findall(r"\S+\s*", reply.text)
        pieces = ["".join(words[i : i + reply.pieces]) for i in range(0, len(words), reply.pieces)]
        out = [
            json.dumps(
                {
                    "id": "c1",
                    "object": "chat.completion.chunk",
                    "choices": [{"index": 0, "delta": {"content": p}}],
                }
            )
            for p in pieces
        ]
        if reply.usage is not None:
            usage = {"prompt_tokens": reply.usage[0], "completion_tokens": reply.usage[1]}
            out.append(
                json.dumps({"id": "c1", "object": "chat.completion.chunk", "choices": [], "usage": usage})
            )
        return out


_SPLIT = re.compile(r"(?<=[.!?])\s+|\n+")
INVENTED = "The company was founded on the Moon by Zorblax Industries in 2157."


def normalized(text: str) -> str:
    """A sentence compared loosely: whitespace collapsed, final period dropped, lower case."""
    return " ".join(text.split()).rstrip(".").lower()


class EchoAndInvent:
    """Echoes up to two sentences of the first document and one of the last, then adds fabrications."""

    def __init__(self) -> None:
        self.echoed: list[str] = []
        self.invented: list[str] = []

    def __call__(self, request: dict[str, Any]) -> Reply:
        docs = documents(request)
        first, last = min(docs), max(docs)
        picks = [(first, s) for s in self._sentences(docs[first])[:2]]
        picks += [(last, s) for s in self._sentences(docs[last])[:1] if last != first]
        parts: list[str] = []
        for n, sentence in picks:
            parts.append(f"{sentence} [{n}]")
            self.echoed.append(normalized(sentence))
        fakes = [(first, INVENTED)]
        for n, sentence in picks:
            if re.search(r"\d", sentence):
                changed = re.sub(r"\d", lambda m: str((int(m.group()) + 3) % 10), sentence)
                fakes.append((n, changed))
                break
        for n, sentence in picks:
            names = re.findall(r"(?<=\s)[A-Z][a-z]{3,}\b", sentence)
            if names:
                fakes.append((n, sentence.replace(names[0], "Quixotrel", 1)))
                break
        for n, fake in fakes:
            parts.append(f"{fake} [{n}]")
            self.invented.append(normalized(fake))
        return Reply(text=" ".join(parts), pieces=3)

    @staticmethod
    def _sentences(text: str) -> list[str]:
        """Whole sentences of six words or more, without placeholders or headings."""
        out = []
        for raw in _SPLIT.split(text):
            sentence = raw.strip()
            if len(sentence.split()) >= 6 and "<" not in sentence and not sentence.startswith("#"):
                out.append(sentence if sentence[-1] in ".!?" else sentence + ".")
        return out
