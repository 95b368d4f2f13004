"""Background batching against a server that goes away: killed and restarted on the same data
directory and port, or frozen (SIGSTOP) while requests pile up in its socket; every item is
stored exactly once. Also: bounded memory, one bad item does not sink its batch, flush at exit."""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
import threading
import time

import httpx
from conftest import Server

from feedloop import Feedloop, new_id


def counts(server: Server) -> tuple[int, int]:
    stats = server.api("GET", "/api/v1/stats")
    return stats["traces"]["total"], stats["feedback"]["total"]


def ingested_traces(server: Server) -> float:
    """Trace parts the server received on /api/v1/ingest, duplicates included (``/metrics``)."""
    response = httpx.get(f"{server.base_url}/metrics", timeout=30)
    for line in response.text.splitlines():
        if line.startswith('feedloop_ingested_items_total{route="/api/v1/ingest",item="traces"}'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def assert_one_rating_and_one_signal_each(server: Server, session: str) -> None:
    traces = server.api("GET", "/api/v1/traces", params={"session_id": session, "limit": 500})
    feedback = server.api("GET", "/api/v1/feedback", params={"session_id": session, "limit": 1000})
    kinds: dict[str, list[str]] = {trace["id"]: [] for trace in traces["items"]}
    for item in feedback["items"]:
        kinds[item["trace_id"]].append(item["kind"])
    assert all(sorted(found) == ["rating", "signal"] for found in kinds.values()), kinds


def log_items(client: Feedloop, session: str, num: int) -> list[str]:
    """Logs ``num`` traces, each with a rating and a copy signal."""
    trace_ids = []
    for index in range(num):
        with client.trace(input=f"question {index}", session_id=session) as trace:
            with trace.span("step", kind="tool"):
                pass
            trace.output = f"answer {index}"
        client.rate(trace.id, index % 2)
        client.signal(trace.id, "copy")
        trace_ids.append(trace.id)
    return trace_ids


def test_a_restarted_server_gets_every_item_once(own_server: Server) -> None:
    client = Feedloop(
        own_server.base_url,
        own_server.key,
        timeout_secs=2,
        flush_interval_secs=0.05,
        max_batch_items=20,
        flush_on_exit=False,
    )
    session = new_id("s-")
    before = log_items(client, session, 40)
    assert client.flush(30)
    own_server.stop()
    during = log_items(client, session, 60)  # queued while nothing listens
    deadline = time.monotonic() + 30
    while client.queue_stats.retries == 0:  # the worker has met the closed port
        assert time.monotonic() < deadline, "the batcher never retried"
        time.sleep(0.05)
    assert client.queue_stats.pending > 0
    own_server.start()
    assert client.flush(60)
    stats = client.queue_stats
    assert (stats.sent, stats.dropped, stats.failed, stats.pending) == (300, 0, 0, 0)
    assert counts(own_server) == (100, 200)  # ratings and signals are both feedback
    listed = own_server.api(
        "GET", "/api/v1/traces", params={"session_id": session, "limit": 500}
    )["items"]
    assert sorted(t["id"] for t in listed) == sorted(before + during)
    client.close()


def test_a_frozen_server_gets_every_item_once(own_server: Server) -> None:
    client = Feedloop(
        own_server.base_url,
        own_server.key,
        timeout_secs=0.3,  # short: attempts time out while the server is frozen
        flush_interval_secs=0.05,
        max_batch_items=25,
        flush_on_exit=False,
    )
    session = new_id("s-")
    log_items(client, session, 10)
    assert client.flush(30)
    own_server.pause()
    try:
        log_items(client, session, 50)
        deadline = time.monotonic() + 30
        while client.queue_stats.retries < 3:  # timed-out attempts wait in the server's socket
            assert time.monotonic() < deadline, "the batcher never retried"
            time.sleep(0.05)
    finally:
        own_server.resume()
    assert client.flush(60)
    stats = client.queue_stats
    assert (stats.sent, stats.dropped, stats.failed) == (180, 0, 0)
    assert stats.retries >= 3
    assert counts(own_server) == (60, 120)
    assert_one_rating_and_one_signal_each(own_server, session)
    client.close()


def test_memory_is_bounded_and_overflow_is_counted(own_server: Server) -> None:
    client = Feedloop(
        own_server.base_url,
        own_server.key,
        timeout_secs=0.3,
        flush_interval_secs=0.05,
        max_queue_items=10,
        max_batch_items=5,
        flush_on_exit=False,
    )
    own_server.pause()
    try:
        for index in range(50):
            client.log_trace(input=f"q{index}", output="a")
            assert client.queue_stats.pending <= 10 + 5
        dropped = client.queue_stats.dropped
        assert 35 <= dropped <= 40
    finally:
        own_server.resume()
    assert client.flush(60)
    stats = client.queue_stats
    assert stats.sent == 50 - dropped and stats.failed == 0
    assert counts(own_server) == (50 - dropped, 0)
    client.close()


def test_a_rejected_item_is_reported_and_the_rest_of_its_batch_delivered(
    own_server: Server,
) -> None:
    client = Feedloop(
        own_server.base_url, own_server.key, flush_interval_secs=10, flush_on_exit=False
    )
    trace_id = client.log_trace(input="q", output="a")
    good = client.comment(trace_id, "fine")
    bad = client.rate(trace_id, 7)  # outside the scale 0..1
    also_good = client.rate(trace_id, 1)
    assert client.flush(30)
    stats = client.queue_stats
    assert (stats.sent, stats.failed) == (3, 1)
    (error,) = client.delivery_errors
    assert error.body["id"] == bad
    assert error.error.field == "feedback[1].rating.value"
    stored = own_server.api("GET", "/api/v1/feedback", params={"trace_id": trace_id})["items"]
    assert sorted(f["id"] for f in stored) == sorted([good, also_good])
    client.close()


def test_the_queue_is_flushed_when_the_program_exits(own_server: Server) -> None:
    script = textwrap.dedent(
        f"""
        from feedloop import Feedloop
        client = Feedloop({own_server.base_url!r}, {own_server.key!r}, flush_interval_secs=60)
        for index in range(20):
            trace_id = client.log_trace(input=f"q{{index}}", output="a", session_id="at-exit")
            client.comment(trace_id, "bye")
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
    assert counts(own_server) == (20, 20)


class LossyProxy:
    """A loopback TCP proxy in front of the server that, while ``num_to_lose`` > 0, lets a
    request through but loses the server's answer (closes the client's connection as the
    answer arrives): the server has stored the batch, the client cannot know, and retries.

    Sockets are closed only by the thread that owns them, after the threads reading them
    stopped (``shutdown`` wakes them), so no descriptor is reused under a blocked call."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.num_to_lose = 0
        self.num_lost = 0
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._acceptor = threading.Thread(target=self._accept, daemon=True)
        self._acceptor.start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        upstream = socket.create_connection(("127.0.0.1", self.target_port))

        def pump_requests() -> None:
            try:
                while data := client.recv(65536):
                    upstream.sendall(data)
                upstream.shutdown(socket.SHUT_WR)
            except OSError:
                pass

        pump = threading.Thread(target=pump_requests, daemon=True)
        pump.start()
        try:
            while data := upstream.recv(65536):
                with self._lock:
                    lose = self.num_to_lose > 0
                    if lose:
                        self.num_to_lose -= 1
                        self.num_lost += 1
                if lose:
                    break  # the answer is lost with the connection
                client.sendall(data)
        except OSError:
            pass
        finally:
            try:
                client.shutdown(socket.SHUT_RDWR)  # ends pump_requests' recv
            except OSError:
                pass
            pump.join()
            client.close()
            upstream.close()

    def close(self) -> None:
        self._listener.shutdown(socket.SHUT_RDWR)  # ends the accept
        self._acceptor.join()
        self._listener.close()


def test_batches_whose_answers_were_lost_are_stored_once(own_server: Server) -> None:
    proxy = LossyProxy(own_server.port)
    client = Feedloop(
        f"http://127.0.0.1:{proxy.port}",
        own_server.key,
        flush_interval_secs=0.05,
        max_batch_items=25,
        flush_on_exit=False,
    )
    session = new_id("s-")
    proxy.num_to_lose = 4
    log_items(client, session, 50)
    assert client.flush(60)
    stats = client.queue_stats
    assert (stats.sent, stats.dropped, stats.failed) == (150, 0, 0)
    assert proxy.num_lost == 4 and stats.retries >= 4
    # The server took more trace parts than there are traces: the batches sent again.
    assert ingested_traces(own_server) > 50
    assert counts(own_server) == (50, 100)
    assert_one_rating_and_one_signal_each(own_server, session)
    client.close()
    proxy.close()


def test_a_forked_worker_process_sends_its_own_items(own_server: Server) -> None:
    script = textwrap.dedent(
        f"""
        import os
        from feedloop import Feedloop
        client = Feedloop({own_server.base_url!r}, {own_server.key!r}, flush_interval_secs=0.05)
        client.log_trace(input="parent before fork", output="a")
        assert client.flush(30)
        child = os.fork()
        if child == 0:  # as a pre-forking web server's worker would
            for index in range(5):
                client.log_trace(input=f"child {{index}}", output="a")
            ok = client.flush(30) and client.queue_stats.sent == 5
            os._exit(0 if ok else 1)
        client.log_trace(input="parent after fork", output="a")
        _, status = os.waitpid(child, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
    assert counts(own_server) == (7, 0)
