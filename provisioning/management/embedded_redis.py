"""An in-process Redis-protocol server (fakeredis) for the demo and the benchmarks.

The demo uses it when no ``REDIS_URL`` is set; the benchmarks always do, so that no job they queue
reaches the configured Redis (where a real worker would run it against a real request of the same id).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess  # nosec B404 # starts the machine's redis-server with fixed arguments
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from django.conf import settings


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def accepts(port: int) -> bool:
    """Whether something listens on 127.0.0.1:``port`` now."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def redis_server_start() -> tuple[Any, str]:
    """Start a fakeredis TCP server on 127.0.0.1 in a daemon thread; returns it and its URL."""
    from fakeredis import TcpFakeServer

    port = free_port()
    server = TcpFakeServer(("127.0.0.1", port), server_type="redis")
    threading.Thread(target=server.serve_forever, name="embedded-redis", daemon=True).start()
    return server, f"redis://127.0.0.1:{port}/0"


def redis_process_start() -> tuple[subprocess.Popen[bytes], str] | None:
    """A throwaway ``redis-server`` process on a free loopback port (nothing saved), or None when the machine
    has none. Under load it answers in microseconds where the in-process fakeredis shares its process's
    interpreter lock with whatever else runs there."""
    binary = shutil.which("redis-server")
    if binary is None:
        return None
    port = free_port()
    process = subprocess.Popen(  # noqa: S603 # nosec B603 # the machine's redis-server, fixed arguments
        [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while not accepts(port):
        if time.monotonic() > deadline or process.poll() is not None:
            redis_process_stop(process)
            return None
        time.sleep(0.05)
    return process, f"redis://127.0.0.1:{port}/0"


def redis_process_stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def demo_redis_file() -> Path:
    """Where a running demo writes its embedded Redis's URL and its process id (``var/demo-redis``)."""
    return Path(settings.VAR_DIR) / "demo-redis"


def demo_redis_remember(url: str) -> None:
    path = demo_redis_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{url} {os.getpid()}\n", encoding="utf-8")


def demo_redis_forget() -> None:
    demo_redis_file().unlink(missing_ok=True)


def redis_server_stop(server: Any) -> None:
    """Stop a server from ``redis_server_start``."""
    server.shutdown()
    server.server_close()


def queues_point_at(url: str) -> dict[str, str]:
    """Point every RQ queue at ``url``; returns the URLs they had, for ``queues_restore``.

    django-rq reads ``RQ_QUEUES`` through the same dict objects, so changing them in place is seen
    by every later ``django_rq.get_queue``.
    """
    before = {name: str(queue.get("URL", "")) for name, queue in settings.RQ_QUEUES.items()}
    for queue in settings.RQ_QUEUES.values():
        queue["URL"] = url
    return before


def queues_restore(before: dict[str, str]) -> None:
    """Give every RQ queue back the URL it had."""
    for name, url in before.items():
        settings.RQ_QUEUES[name]["URL"] = url


@contextmanager
def isolated_queues(*, process: bool = False) -> Iterator[str]:
    """Every RQ queue on a throwaway server for the duration (what a benchmark enqueues dies with it).

    ``process=True``: a ``redis-server`` process of its own when the machine has one (see
    ``redis_process_start``), else the embedded one."""
    started = redis_process_start() if process else None
    server, url = started if started is not None else redis_server_start()
    before = queues_point_at(url)
    try:
        yield url
    finally:
        queues_restore(before)
        if started is not None:
            redis_process_stop(started[0])
        else:
            redis_server_stop(server)
