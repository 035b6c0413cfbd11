"""``manage.py bench_web [--scale F] [--requests N] [--connections C] [--json]``: the pages at enterprise volume.

Fills a throwaway database with an enterprise's volume (``provisioning.management.volume``: at scale
1, 200 teams and workspaces, 600 clusters, 10,001 requests of which 489 wait, 100,002 audit events),
serves the portal with production settings from gunicorn (2 sync workers) on 127.0.0.1, signs in an
admin and a team lead, and prints per page: its queries, the median time of one request alone, and
p50/p95/p99 with C connections at once (N requests in all), next to a trivial redirect's figures,
the floor of the machine it runs on. Then it writes two audit exports of the whole trail in two
worker threads and measures a page again meanwhile. Every RQ queue points at a throwaway embedded
Redis; nothing reaches beyond 127.0.0.1, and the database is dropped at the end.
"""

from __future__ import annotations

import json
import os
import secrets
import statistics
import subprocess  # nosec B404 # starts only this program's own processes (fixed argument lists, no shell)
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection, connections
from django.test import Client
from django.test.utils import CaptureQueriesContext, override_settings
from django.urls import reverse

from provisioning.management.database_url import current_database_url
from provisioning.management.embedded_redis import free_port, isolated_queues

ROOT = Path(__file__).resolve().parents[3]
TIMEOUT = 60.0


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) of ``values``, nearest rank."""
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


class Command(BaseCommand):
    help = "Benchmark the portal's pages at enterprise volume (throwaway database, gunicorn on 127.0.0.1)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--scale", type=float, default=1.0, help="volume times this (default 1: full)")
        parser.add_argument("--requests", type=int, default=200, help="requests per page under load")
        parser.add_argument("--connections", type=int, default=20, help="connections at once (default 20)")
        parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (default 2)")
        parser.add_argument(
            "--threads",
            type=int,
            default=1,
            help="threads per gunicorn worker: 1 is the sync class (default), more the gthread class",
        )
        parser.add_argument("--json", action="store_true", help="print the figures as JSON")

    def handle(self, *args: Any, **options: Any) -> None:
        if not 0 < options["scale"] <= 2 or not 1 <= options["requests"] <= 10_000:
            raise CommandError("--scale must be in (0, 2] and --requests in [1, 10000]")
        if not 1 <= options["connections"] <= 200 or not 1 <= options["workers"] <= 16:
            raise CommandError("--connections must be in [1, 200] and --workers in [1, 16]")
        if not 1 <= options["threads"] <= 32:
            raise CommandError("--threads must be in [1, 32]")
        with tempfile.TemporaryDirectory(prefix="bench-web-") as tmp:
            self._in_throwaway_database(Path(tmp), options)

    def _in_throwaway_database(self, tmp: Path, options: dict[str, Any]) -> None:
        old_name = connection.settings_dict["NAME"]
        if connection.vendor == "sqlite":  # a file, so that gunicorn's processes share it
            connection.settings_dict.setdefault("TEST", {})["NAME"] = str(tmp / "bench.sqlite3")
        connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
        try:
            # Sessions are signed in this process and read by gunicorn's: one throwaway key for both.
            with isolated_queues() as redis_url, override_settings(SECRET_KEY=secrets.token_urlsafe(50)):
                self._bench(tmp, redis_url, options)
        finally:
            connections.close_all()
            connection.creation.destroy_test_db(old_name, verbosity=0)

    def _bench(self, tmp: Path, redis_url: str, options: dict[str, Any]) -> None:
        from provisioning.management import volume

        started = time.monotonic()
        data = volume.volume_fill(scale=options["scale"])
        if connection.vendor == "postgresql":
            # A production database has its planner statistics (autovacuum keeps them); one just bulk-filled
            # has none until autovacuum comes by, and its plans would be a guess.
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE")
        figures: dict[str, Any] = {"volume": volume.summary(data), "fill_seconds": time.monotonic() - started}
        pages = self._pages(data)
        users = {"admin": data.admin, "lead": data.lead}
        cookies = {who: self._session(user) for who, user in users.items()}
        server = self._serve(tmp, redis_url, options["workers"], options["threads"])
        try:
            base = f"http://127.0.0.1:{server.port}"
            figures["pages"] = [
                self._measure(base, cookies[who], label, url, options, user=users[who])
                for label, who, url in pages
            ]
            figures["during_exports"] = self._during_exports(base, cookies["admin"], data, options)
            figures["worker_rss_mb"] = server.worker_rss_mb()
        finally:
            server.stop()
        figures["queries_at"] = {"scale": options["scale"]}
        self._report(figures, options)

    def _pages(self, data: Any) -> list[tuple[str, str, str]]:
        return [
            ("trivial redirect (floor)", "admin", reverse("home")),
            ("capacity", "admin", reverse("provisioning:capacity")),
            # The capacity page loads its spend section from here once it has shown: measured on its own.
            ("capacity: spend section", "admin", reverse("provisioning:capacity_spend")),
            ("approvals", "admin", reverse("provisioning:approval_queue")),
            ("all requests", "admin", reverse("provisioning:my_requests")),
            ("workspaces", "admin", reverse("provisioning:workspace_list")),
            ("audit", "admin", reverse("provisioning:audit")),
            ("audit exports", "admin", reverse("provisioning:audit_exports")),
            (
                "request detail (admin)",
                "admin",
                reverse("provisioning:request_detail", args=[data.waiting_request.pk]),
            ),
            ("workspace detail", "admin", reverse("provisioning:workspace_detail", args=[data.workspace.pk])),
            # The workspace page loads its spend section from here once it has shown: measured on its own.
            (
                "workspace detail: spend section",
                "admin",
                reverse("provisioning:workspace_spend", args=[data.workspace.pk]),
            ),
            ("team lead's requests", "lead", reverse("provisioning:my_requests")),
            (
                "request detail (lead)",
                "lead",
                reverse("provisioning:request_detail", args=[data.waiting_request.pk]),
            ),
            ("my access", "lead", reverse("provisioning:my_access")),
        ]

    def _session(self, user: Any) -> dict[str, str]:
        """A signed-in browser's cookies: the session, and the CSRF cookie the first page it shows sets
        (pages kept rendered per viewer are kept under it: a browser sends it back with every request)."""
        client = Client(HTTP_HOST="127.0.0.1", HTTP_X_FORWARDED_PROTO="https")
        client.force_login(user)
        client.get(reverse("provisioning:my_requests"))
        return {
            name: client.cookies[name].value
            for name in (settings.SESSION_COOKIE_NAME, settings.CSRF_COOKIE_NAME)
        }

    def _serve(self, tmp: Path, redis_url: str, workers: int, threads: int) -> _Server:
        env = {
            **{k: v for k, v in os.environ.items() if k != "AZUREML_CURRENT_CLOUD"},
            "DEBUG": "false",
            "SECRET_KEY": settings.SECRET_KEY,
            "ALLOWED_HOSTS": "127.0.0.1",
            "BEHIND_TLS_PROXY": "true",
            "AUTH_MODE": "local",
            "ALLOW_LOCAL_AUTH_IN_PRODUCTION": "true",
            "DATABASE_URL": current_database_url(),
            "REDIS_URL": redis_url,
            "PORTAL_VAR_DIR": str(tmp),
            "STATIC_ROOT": str(tmp / "static"),
            "EXPORTS_DIR": str(tmp / "exports"),
        }
        subprocess.run(  # nosec B603 # collectstatic with this interpreter and fixed arguments
            [sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"],
            cwd=ROOT,
            env=env,
            check=True,
        )
        return _Server(env, workers, threads)

    def _get(self, base: str, cookie: dict[str, str], url: str) -> tuple[float, int, int]:
        started = time.perf_counter()
        response = requests.get(
            base + url,
            cookies=cookie,
            headers={"X-Forwarded-Proto": "https"},
            allow_redirects=False,
            timeout=TIMEOUT,
        )
        elapsed = (time.perf_counter() - started) * 1000
        return elapsed, response.status_code, len(response.content)

    def _queries(self, user: Any, url: str) -> int:
        """The queries one request of the page makes (the session and the user included)."""
        client = Client(HTTP_HOST="127.0.0.1")
        client.force_login(user)
        with CaptureQueriesContext(connection) as captured:
            status = client.get(url).status_code
        if status not in (200, 302):
            raise CommandError(f"{url} answered {status} in process")
        return len(captured.captured_queries)

    def _measure(
        self, base: str, cookie: dict[str, str], label: str, url: str, options: dict[str, Any], *, user: Any
    ) -> dict[str, Any]:
        singles = [self._get(base, cookie, url) for _ in range(5)]
        statuses = {status for _, status, _ in singles}
        load = self._load(base, cookie, url, options["requests"], options["connections"])
        return {
            "page": label,
            "url": url,
            "status": sorted(statuses),
            "queries": self._queries(user, url),
            "single_ms": statistics.median(t for t, _, _ in singles),
            "p50_ms": percentile(load, 50),
            "p95_ms": percentile(load, 95),
            "p99_ms": percentile(load, 99),
            "kb": singles[0][2] / 1024,
        }

    def _load(self, base: str, cookie: dict[str, str], url: str, count: int, workers: int) -> list[float]:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            return [t for t, _, _ in pool.map(lambda _: self._get(base, cookie, url), range(count))]

    def _during_exports(
        self, base: str, cookie: dict[str, str], data: Any, options: dict[str, Any]
    ) -> dict[str, Any]:
        """Two exports of the whole trail written by two worker threads while the approvals page is loaded."""
        from provisioning import exports

        asked = [
            exports.audit_export_request(requester=data.admin, filters={}, fmt=f) for f in ("csv", "jsonl")
        ]
        threads = [threading.Thread(target=self._export, args=(e.pk,)) for e in asked]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        load = self._load(
            base, cookie, reverse("provisioning:approval_queue"), options["requests"], options["connections"]
        )
        for thread in threads:
            thread.join()
        written = [type(e).objects.get(pk=e.pk) for e in asked]
        return {
            "exports": [
                {"format": e.format, "status": e.status, "rows": e.rows, "mb": e.size_bytes / 2**20}
                for e in written
            ],
            "export_seconds": time.monotonic() - started,
            "approvals_p50_ms": percentile(load, 50),
            "approvals_p95_ms": percentile(load, 95),
        }

    def _export(self, export_id: int) -> None:
        from provisioning import exports

        try:
            exports.audit_export_run(export_id=export_id)
        finally:
            connection.close()

    def _report(self, figures: dict[str, Any], options: dict[str, Any]) -> None:
        if options["json"]:
            self.stdout.write(json.dumps(figures, indent=2, default=str))
            return
        w = self.stdout.write
        v = figures["volume"]
        w(
            f"Volume (scale {options['scale']:g}, filled in {figures['fill_seconds']:.1f} s): "
            + ", ".join(f"{k} {n}" for k, n in v.items())
        )
        kind = "sync" if options["threads"] == 1 else f"gthread ({options['threads']} threads each)"
        rss = ", ".join(f"{mb:.0f}" for mb in figures.get("worker_rss_mb", []))
        w(
            f"gunicorn {options['workers']} {kind} workers (resident memory after the run: {rss} MB); "
            f"{options['requests']} requests per page at {options['connections']} connections"
        )
        w(
            f"  {'page':28} {'status':>8} {'queries':>8} {'single':>9} {'p50':>9} {'p95':>9} {'p99':>9} {'size':>9}"
        )
        for p in figures["pages"]:
            status = ",".join(str(s) for s in p["status"])
            w(
                f"  {p['page']:28} {status:>8} {p['queries']:8d} {p['single_ms']:7.1f}ms {p['p50_ms']:7.1f}ms "
                f"{p['p95_ms']:7.1f}ms {p['p99_ms']:7.1f}ms {p['kb']:7.1f}KB"
            )
        floor = figures["pages"][0]["p50_ms"]
        worst = max(figures["pages"][1:], key=lambda p: p["p50_ms"])
        w(
            f"  floor p50 {floor:.1f} ms; slowest page {worst['page']} at {worst['p50_ms'] / floor if floor else 0:.1f}x the floor (target <= 3x)"
        )
        d = figures["during_exports"]
        done = ", ".join(
            f"{e['format']} {e['status']} {e['rows']} rows {e['mb']:.1f} MB" for e in d["exports"]
        )
        w(
            f"  while two exports were written ({done}; {d['export_seconds']:.1f} s): approvals p50 {d['approvals_p50_ms']:.1f} ms, p95 {d['approvals_p95_ms']:.1f} ms"
        )


class _Server:
    """gunicorn serving the portal on a free loopback port, stopped by ``stop``."""

    def __init__(self, env: dict[str, str], workers: int, threads: int = 1) -> None:
        self.port = free_port()
        worker_class = ["--worker-class", "gthread", "--threads", str(threads)] if threads > 1 else []
        self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments  # nosec B603
            [
                sys.executable,
                "-m",
                "gunicorn",
                "portal.wsgi:application",
                "--workers",
                str(workers),
                *worker_class,
                "--bind",
                f"127.0.0.1:{self.port}",
                "--timeout",
                "120",
                "--log-level",
                "warning",
            ],
            cwd=ROOT,
            env=env,
        )
        self._wait()

    def worker_rss_mb(self) -> list[float]:
        """Each gunicorn worker's resident memory now, in MB (Linux' /proc; empty elsewhere)."""
        found = []
        for status in Path("/proc").glob("[0-9]*/status"):
            try:
                fields = dict(line.split(":", 1) for line in status.read_text().splitlines() if ":" in line)
            except OSError:
                continue
            if fields.get("PPid", "").strip() == str(self.process.pid):
                found.append(int(fields["VmRSS"].split()[0]) / 1024)
        return sorted(found)

    def _wait(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise CommandError("gunicorn exited at start")
            try:
                requests.get(
                    f"http://127.0.0.1:{self.port}/accounts/login/",
                    timeout=2,
                    headers={"X-Forwarded-Proto": "https"},
                )
                return
            except requests.RequestException:  # not listening yet, or a worker still loading the portal
                time.sleep(0.2)
        self.stop()
        raise CommandError("gunicorn did not answer within 60 s")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
