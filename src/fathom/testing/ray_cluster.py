"""A real multi-node Ray cluster on one machine, on loopback, for tests and benchmarks.

Each node is a ``ray start`` of its own (a head, then workers joining it), with its own raylet,
object store and workers, advertised on its own loopback address (127.0.0.2, 127.0.0.3, ...):
Ray rewrites 127.0.0.1 to the machine's outward address, any other 127.x address stays on
``lo``. :meth:`LoopbackCluster.kill_node` SIGKILLs a node's raylet and every process under it,
which is what a machine failure looks like to the rest of the cluster.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["LoopbackCluster", "loopback_cluster"]

# Nodes notice a dead peer within seconds, not the default half minute.
_SYSTEM_CONFIG = '{"health_check_period_ms": 1000, "health_check_failure_threshold": 3}'


def _ray_cli() -> str:
    return str(Path(sys.executable).with_name("ray"))


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text(encoding="ascii", errors="replace")
        except OSError:
            continue
        parent = int(stat.rpartition(")")[2].split()[1])
        tree.setdefault(parent, []).append(int(entry.name))
    return tree


def _raylet_pid(node_ip: str) -> int | None:
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            args = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if args and args[0].endswith(b"/raylet") and f"--node_ip_address={node_ip}".encode() in args:
            return int(entry.name)
    return None


@dataclass
class LoopbackCluster:
    """A running cluster: the head's address, each node's loopback address, the env to use."""

    address: str
    env: dict[str, str]
    folder: Path
    nodes: list[str] = field(default_factory=list)

    def add_node(self, cpus: int, *, object_store_mb: int = 256) -> str:
        """Start a worker node with ``cpus`` CPUs on the next loopback address; its address."""
        node_ip = f"127.0.0.{len(self.nodes) + 2}"
        _run(
            [
                _ray_cli(),
                "start",
                f"--address={self.address}",
                f"--node-ip-address={node_ip}",
                f"--num-cpus={cpus}",
                "--num-gpus=0",
                f"--object-store-memory={object_store_mb * 1024 * 1024}",
                "--disable-usage-stats",
            ],
            self.env,
        )
        self.nodes.append(node_ip)
        return node_ip

    def kill_node(self, node_ip: str) -> int:
        """SIGKILL a node's raylet and every process under it; how many processes were killed."""
        raylet = _raylet_pid(node_ip)
        if raylet is None:
            return 0
        tree = _children()
        doomed, stack = [], [raylet]
        while stack:
            pid = stack.pop()
            doomed.append(pid)
            stack.extend(tree.get(pid, []))
        for pid in doomed:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.nodes.remove(node_ip)
        return len(doomed)


def _run(args: list[str], env: Mapping[str, str]) -> None:
    result = subprocess.run(args, env=dict(env), capture_output=True, text=True, timeout=180, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:2])} failed: {result.stderr[-2000:]}")


@contextmanager
def loopback_cluster(
    head_cpus: int, worker_cpus: tuple[int, ...] = (), *, object_store_mb: int = 256
) -> Iterator[LoopbackCluster]:
    """Start a head (and worker nodes) with ``ray start``; all of their processes stopped on exit.

    The nodes import fathom from this interpreter's path (``PYTHONPATH`` is passed on).
    """
    folder = Path(tempfile.mkdtemp(prefix="fathom-ray-", dir="/tmp"))
    env = {
        **os.environ,
        "RAY_USAGE_STATS_ENABLED": "0",
        # Nodes joining the head authenticate with the token the head writes (~/.ray/auth_token).
        "RAY_AUTH_MODE": "token",
        "PYTHONPATH": os.pathsep.join(p for p in sys.path if p),
    }
    env.pop("RAY_ADDRESS", None)
    head_ip = "127.0.0.2"
    address = f"{head_ip}:{_free_port(head_ip)}"
    cluster = LoopbackCluster(address, env, folder)
    try:
        _run(
            [
                _ray_cli(),
                "start",
                "--head",
                f"--node-ip-address={head_ip}",
                f"--port={address.rpartition(':')[2]}",
                f"--num-cpus={head_cpus}",
                "--num-gpus=0",
                f"--object-store-memory={object_store_mb * 1024 * 1024}",
                "--include-dashboard=false",
                "--disable-usage-stats",
                f"--temp-dir={folder}",
                f"--system-config={_SYSTEM_CONFIG}",
            ],
            env,
        )
        cluster.nodes.append(head_ip)
        for cpus in worker_cpus:
            cluster.add_node(cpus, object_store_mb=object_store_mb)
        cluster.env = {**env, "RAY_ADDRESS": address}
        yield cluster
    finally:
        subprocess.run(
            [_ray_cli(), "stop", "--force"], env=env, capture_output=True, timeout=120, check=False
        )
        time.sleep(0.5)
        shutil.rmtree(folder, ignore_errors=True)
