"""Fixtures: the real feedloop server (the binary named by ``FEEDLOOP_BIN``, which
``scripts/test`` builds) on a temporary data directory and a free loopback port, with the hash
embedder (these tests do not depend on meaning), and clients of it."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from feedloop import Feedloop


def _binary() -> str:
    path = os.environ.get("FEEDLOOP_BIN")
    if not path:
        pytest.fail(
            "FEEDLOOP_BIN is not set: build the server (cargo build -p feedloop --bin feedloop) "
            "and set FEEDLOOP_BIN to target/debug/feedloop, or run scripts/test, which does both",
            pytrace=False,
        )
    if not os.access(path, os.X_OK):
        pytest.fail(f"FEEDLOOP_BIN={path} is not an executable file", pytrace=False)
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """A feedloop server process; ``restart`` keeps its data directory and port."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.key = ""
        self.process: subprocess.Popen[bytes] | None = None
        self.num_starts = 0

    def start(self) -> None:
        self.num_starts += 1
        stdout = self.data_dir.parent / f"stdout-{self.num_starts}.txt"
        stderr = self.data_dir.parent / f"stderr-{self.num_starts}.txt"
        env = {
            **os.environ,
            "FEEDLOOP_EMBEDDING_PROVIDER": "hash",
            "FEEDLOOP_EMBEDDING_DIMENSIONS": "64",
            "FEEDLOOP_LOG_FORMAT": "text",
        }
        with open(stdout, "wb") as out, open(stderr, "wb") as err:
            self.process = subprocess.Popen(
                [
                    _binary(),
                    "serve",
                    "--data-dir",
                    str(self.data_dir),
                    "--listen",
                    f"127.0.0.1:{self.port}",
                    "--otlp-grpc-listen",
                    "off",
                ],
                stdout=out,
                stderr=err,
                env=env,
            )
        deadline = time.monotonic() + 60
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"feedloop exited at start:\n{stderr.read_text()[-4000:]}")
            if not self.key:
                found = re.search(r"fl_sk_[A-Za-z0-9_-]+", stdout.read_text())
                if found:
                    self.key = found.group(0)
            if self.key:
                try:
                    if httpx.get(f"{self.base_url}/healthz", timeout=1).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"feedloop did not start:\n{stderr.read_text()[-4000:]}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def pause(self) -> None:
        """Freezes the process (SIGSTOP): connections are accepted by the kernel, nothing
        answers."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        """A plain HTTP call to check what the server stored (not through the SDK)."""
        response = httpx.request(
            method,
            f"{self.base_url}{path}",
            headers={"authorization": f"Bearer {self.key}"},
            timeout=30,
            **kwargs,
        )
        assert response.is_success, response.text
        return response.json()

    def no_holdout(self) -> None:
        """Every context request gets its lessons (no random hold-out share)."""
        settings = self.api("GET", "/api/v1/loop/settings")
        settings["holdout_fraction"] = 0.0
        self.api("PUT", "/api/v1/loop/settings", json=settings)


def _server(tmp_path: Path) -> Iterator[Server]:
    server = Server(tmp_path / "data")
    try:
        server.start()
        server.no_holdout()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server for the tests that only add data under their own ids."""
    yield from _server(tmp_path_factory.mktemp("feedloop"))


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[Server]:
    """A server of the test's own, for tests that stop it or count everything in it."""
    yield from _server(tmp_path)


@pytest.fixture
def client(server: Server) -> Iterator[Feedloop]:
    """A blocking client of the shared server, closed (flushed) after the test."""
    with Feedloop(server.base_url, server.key, flush_on_exit=False) as fl:
        yield fl
