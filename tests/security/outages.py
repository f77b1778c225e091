"""Servers that tests can break on purpose: a Redis of their own and a TCP proxy to PostgreSQL.

The shared PostgreSQL (127.0.0.1:5432) and Redis (127.0.0.1:6379) must never be stopped, so an
outage is made here: :class:`RedisServer` runs a private ``redis-server`` on a free loopback
port that a test kills by PID and starts again on the same port; :class:`TcpProxy` stands
between fathom and PostgreSQL, and stopping it drops every connection through it and refuses
new ones, exactly what a database that went away looks like to fathom.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import redis
from fastapi.testclient import TestClient

from fathom import Fathom
from fathom.service import create_app
from tests.service.conftest import Served, require_service
from tests.service.server import free_port


@contextmanager
def serving(home: Path, **settings: Any) -> Iterator[Served]:
    """An app (in-process ASGI client) over a fresh home with the hash embedder."""
    with (
        Fathom(home=home, embedder="hash:64", **settings) as fathom,
        TestClient(create_app(fathom=fathom), raise_server_exceptions=False) as client,
    ):
        yield Served(client, fathom)


def wait_until(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout} s")
        time.sleep(0.1)


class RedisServer:
    """A private redis-server on 127.0.0.1 (no persistence), killed and restarted by PID."""

    def __init__(self) -> None:
        binary = shutil.which("redis-server")
        require_service("redis-server (binary)", lambda: binary is not None)
        self._binary = str(binary)
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> RedisServer:
        command = [self._binary, "--port", str(self.port), "--bind", "127.0.0.1"]
        command += ["--save", "", "--appendonly", "no"]
        self._process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis.from_url(self.url, socket_timeout=1, socket_connect_timeout=1)

        def answers() -> bool:
            try:
                return bool(client.ping())
            except redis.RedisError:
                return False

        try:
            wait_until(answers, 10, "redis-server start")
        finally:
            client.close()
        return self

    def kill(self) -> None:
        """SIGKILL by PID: no shutdown, connections simply die."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait()
        self._process = None

    def subscribers(self, channel: str) -> int:
        client = redis.Redis.from_url(self.url, socket_timeout=1, socket_connect_timeout=1)
        try:
            counts = client.pubsub_numsub(channel)
        except redis.RedisError:
            return 0
        finally:
            client.close()
        return int(counts[0][1]) if counts else 0


class TcpProxy:
    """A TCP proxy on a free loopback port to ``upstream``, which can be stopped and restarted."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    def start(self) -> TcpProxy:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def stop(self) -> None:
        """Refuse new connections and cut every open one."""
        listener, self._listener = self._listener, None
        if listener is not None:
            with suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            with self._lock:
                self._sockets += [client, server]
            threading.Thread(target=self._pump, args=(client, server), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, target):
                with suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
