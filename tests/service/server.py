"""Run `fathom serve` as a real process on 127.0.0.1 for tests that kill or multiply servers."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerProcess:
    """One `fathom serve` process; ``url`` is its base address."""

    def __init__(
        self,
        home: Path,
        env: dict[str, str],
        *,
        workers: int = 1,
        log: Path | None = None,
        port: int | None = None,
    ) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log = (log or home.parent / f"serve-{self.port}.log").open("wb")
        command = [
            sys.executable,
            "-m",
            "fathom",
            "serve",
            "--port",
            str(self.port),
            "--workers",
            str(workers),
        ]
        full_env = {**os.environ, "FATHOM_HOME": str(home), **env}
        self.process = subprocess.Popen(
            command, env=full_env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def wait_ready(self, timeout: float = 60.0) -> ServerProcess:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"fathom serve exited with {self.process.returncode}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError("fathom serve did not become ready")

    def upload(self, key: str, source: str, *, text: str | None = None, data: bytes | None = None) -> None:
        """Upload a document (JSON text, or a file's bytes) with ``key`` and wait for its job."""
        headers = {"Authorization": f"Bearer {key}"}
        if text is not None:
            response = httpx.post(
                f"{self.url}/v1/documents", json={"text": text, "source": source}, headers=headers
            )
        else:
            files = {"file": (source.rsplit("/", 1)[-1], data or b"")}
            response = httpx.post(
                f"{self.url}/v1/documents", files=files, data={"source": source}, headers=headers
            )
        assert response.status_code == 202, response.text
        job_id = response.json()["job_id"]
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            job = httpx.get(f"{self.url}/v1/jobs/{job_id}", headers=headers).json()
            if job["status"] == "succeeded":
                return
            assert job["status"] != "failed", job
            time.sleep(0.1)
        raise AssertionError(f"the upload of {source} did not finish")

    def kill(self) -> None:
        """SIGKILL the server and everything it started: no cleanup runs."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self._log.close()

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()
