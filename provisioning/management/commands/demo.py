"""``manage.py demo``: the whole portal on one machine, from one command, with nothing installed.

Migrates the database (a SQLite file unless DATABASE_URL says otherwise), seeds the demo users and
policy, starts an embedded Redis-protocol server when REDIS_URL is unset, and serves the portal.
Ctrl-C stops all of it.
"""

from __future__ import annotations

import os
import socket
import threading
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Command(BaseCommand):
    help = "Run the portal with everything embedded (SQLite, embedded Redis) for a local demo."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=int, default=8000, help="web server port (default 8000)")
        parser.add_argument("--password", default="portal-demo", help="password of the demo users")

    def handle(self, *args: Any, **options: Any) -> None:
        self.stdout.write("Preparing the database...")
        call_command("migrate", interactive=False, verbosity=0)
        call_command("seed_demo", password=options["password"], verbosity=0)
        redis_server = self._start_redis()
        try:
            self._banner(options)
            call_command("runserver", f"127.0.0.1:{options['port']}", use_reloader=False, use_threading=True)
        except KeyboardInterrupt:
            pass
        finally:
            if redis_server is not None:
                redis_server.shutdown()
                redis_server.server_close()
            self.stdout.write("Demo stopped.")

    def _start_redis(self) -> Any:
        """An in-process Redis-protocol server (fakeredis) unless REDIS_URL points at a real one."""
        if os.environ.get("REDIS_URL"):
            self.stdout.write(f"Using Redis at {settings.REDIS_URL}")
            return None
        from fakeredis import TcpFakeServer

        port = _free_port()
        server = TcpFakeServer(("127.0.0.1", port), server_type="redis")
        threading.Thread(target=server.serve_forever, name="embedded-redis", daemon=True).start()
        url = f"redis://127.0.0.1:{port}/0"
        os.environ["REDIS_URL"] = url  # inherited by any process started from here
        for queue in settings.RQ_QUEUES.values():
            queue["URL"] = url
        self.stdout.write(f"Embedded Redis-protocol server on {url}")
        return server

    def _banner(self, options: dict[str, Any]) -> None:
        url = f"http://127.0.0.1:{options['port']}/"
        self.stdout.write(self.style.SUCCESS(f"\nThe portal is at {url}"))
        self.stdout.write(
            f"Sign in as  lead (Team Lead) · admin (Admin) · scientist (Data Scientist)"
            f"  with password '{options['password']}'.\nCtrl-C stops everything.\n"
        )
