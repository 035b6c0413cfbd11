"""``manage.py demo``: the whole portal on one machine, from one command, with nothing installed.

Migrates the database (a SQLite file unless DATABASE_URL says otherwise), seeds the demo users and
policy, starts an embedded Redis-protocol server when REDIS_URL is unset, the local Azure stand-in
(HTTPS on 127.0.0.1 with a throwaway CA), a provisioning worker, the clock of the periodic jobs (the
sweeper, the capacity check, the spend read from the stand-in's Cost Management, the reconcile with Azure every
``RECONCILE_INTERVAL_MINUTES``), and the web server. Ctrl-C stops all of it.

The banner tells how to make drift: the ``manage.py azure_standin outside`` command lines that change
this demo's stand-in "by hand", with the environment they need (the stand-in's URL, client credentials
and CA bundle, valid while the demo runs), for the tour's example workspace.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess  # nosec B404 # starts only this program's own processes (fixed argument lists, no shell)
import sys
import threading
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser

from provisioning.management import embedded_redis
from provisioning.management.commands.seed_demo import DEMO_SUBSCRIPTION
from provisioning.naming import NamingInput, resource_names

# People and the group the demo's Entra directory knows, so requests naming them can be provisioned.
DEMO_DIRECTORY_USERS = (
    "admin@contoso.com",
    "lead@contoso.com",
    "lead2@contoso.com",
    "scientist@contoso.com",
    "admin1@contoso.com",
    "user1@contoso.com",
    "user2@contoso.com",
    "user3@contoso.com",
)
DEMO_DIRECTORY_GROUPS = ("datasciencegroup",)
# The app roles the stand-in's enterprise application assigns (the others have no role: they see the 403 page).
DEMO_ROLES = {
    "admin@contoso.com": ["Portal.Admin"],
    "lead@contoso.com": ["Portal.TeamLead"],
    "lead2@contoso.com": ["Portal.TeamLead"],
    "scientist@contoso.com": ["Portal.DataScientist"],
}
DEMO_NAMES = {
    "admin@contoso.com": "Ada Admin",
    "lead@contoso.com": "Lena Lead",
    "lead2@contoso.com": "Leo Lead",
    "scientist@contoso.com": "Sam Scientist",
}
SWEEP_SECONDS = 10.0
CAPACITY_SECONDS = 120.0
# The tour's example (README): whose resources the banner's drift commands change.
TOUR_WORKSPACE = NamingInput(
    department="bgmr", team="bluegranit", region="eastus2", region_abbv="e2", environment="dev"
)
TOUR_CLUSTER = "ds3-v2-cluster"
# Somebody the tour does not make a member, granted Owner by hand in the drift example.
OUTSIDE_OWNER = "user3@contoso.com"
# What ``azure_standin outside`` needs to reach this demo's stand-in.
OUTSIDE_ENVIRONMENT = (
    "AZURE_ARM_ENDPOINT",
    "AZURE_TENANT_ID",
    "AZURE_CLIENT_ID",
    "AZURE_CLIENT_SECRET",
    "REQUESTS_CA_BUNDLE",
)


# Workspaces the tutorial's scripts made before the portal existed (no managed-by tag), for the discover
# page: two named by the convention, with a cluster and the scripts' grants, and one named by hand.
SCRIPTS_WORKSPACES = (
    NamingInput(department="mktg", team="churn", region="eastus2", region_abbv="e2", environment="dev"),
    NamingInput(department="ops", team="forecast", region="westeurope", region_abbv="we", environment="pro"),
)


def scripts_workspaces(standin: Any, directory: dict[str, str]) -> list[dict[str, str]]:
    """Put the scripts' workspaces (and one made by hand) into the demo's stand-in; returns their ids."""
    from provisioning.standin import scripted_workspace

    made = []
    for inp in SCRIPTS_WORKSPACES:
        names = resource_names(inp, data_lake=False)
        made.append(
            scripted_workspace(
                standin.ctx,
                subscription=DEMO_SUBSCRIPTION[0],
                resource_group=names.resource_group,
                location=inp.region,
                workspace=names.workspace,
                storage=names.storage_work,
                data_storage=names.storage_data,
                key_vault=names.key_vault,
                registry=names.registry,
                app_insights=names.app_insights,
                clusters=[{"name": "ds3-v2-cluster", "vm_size": "STANDARD_DS3_V2", "max_nodes": 4}],
                grants=[
                    {
                        "scope": "workspace",
                        "role": "Data Scientist",
                        "principal_id": directory["user1@contoso.com"],
                    },
                    {
                        "scope": "workspace",
                        "role": "Data Scientist",
                        "principal_id": directory["datasciencegroup"],
                    },
                    # The scripts gave team leads Owner on the key vault (a defect the portal reports).
                    {"scope": "key_vault", "role": "Owner", "principal_id": directory["lead2@contoso.com"]},
                ],
            )
        )
    made.append(
        scripted_workspace(
            standin.ctx,
            subscription=DEMO_SUBSCRIPTION[0],
            resource_group="rg-ml-sandbox",
            location="westeurope",
            workspace="sandbox-ml",
            storage="sandboxmlstore",
            key_vault="sandbox-ml-kv",
            app_insights="sandbox-ml-ai",
        )
    )
    return made


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


class Command(BaseCommand):
    help = "Run the portal with everything embedded (SQLite, Redis, the Azure stand-in, a worker) for a demo."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=int, default=8000, help="web server port (default 8000)")
        parser.add_argument("--password", default="portal-demo", help="password of the demo users")
        parser.add_argument(
            "--auth",
            choices=("entra", "local"),
            default="entra",
            help="sign in through the stand-in's Entra ID with real MSAL (default), or with local passwords",
        )
        parser.add_argument(
            "--latency-scale",
            type=float,
            default=0.1,
            help="the stand-in answers with typical Azure durations times this factor (default 0.1)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        # SIGTERM (a terminal closing, `kill`, an IDE's stop button) stops everything as Ctrl-C does.
        signal.signal(signal.SIGTERM, _interrupt)
        self.stdout.write("Preparing the database...")
        call_command("migrate", interactive=False, verbosity=0)
        call_command("seed_demo", password=options["password"], verbosity=0)
        stop = threading.Event()
        redis_server = self._start_redis()
        standin, directory = self._start_standin(options["latency_scale"])
        if options["auth"] == "entra":
            self._use_entra(standin, options["port"])
        worker = self._start_worker()
        self._queue_capacity_check()
        threading.Thread(target=self._sweep_clock, args=(stop,), name="sweeper-clock", daemon=True).start()
        try:
            threading.Thread(
                target=self._banner_when_listening,
                args=(options, standin, directory, stop),
                name="banner",
                daemon=True,
            ).start()
            # The portal's own 404 and 500 pages, as in production; its static files still come from the
            # finders (nothing is collected for the demo).
            settings.DEBUG = False
            settings.WHITENOISE_USE_FINDERS = settings.WHITENOISE_AUTOREFRESH = True
            call_command("runserver", f"127.0.0.1:{options['port']}", use_reloader=False, use_threading=True)
        except KeyboardInterrupt:
            pass
        finally:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            stop.set()
            self._stop_worker(worker)
            standin.stop()
            if redis_server is not None:
                embedded_redis.redis_server_stop(redis_server)
                embedded_redis.demo_redis_forget()
            self.stdout.write("Demo stopped.")

    def _start_redis(self) -> Any:
        """An in-process Redis-protocol server (fakeredis) unless REDIS_URL points at a real one."""
        if os.environ.get("REDIS_URL"):
            self.stdout.write(f"Using Redis at {settings.REDIS_URL}")
            return None
        server, url = embedded_redis.redis_server_start()
        # A connection's thread may sit in the worker's blocking dequeue (BLPOP, up to 405 s) after the
        # worker is gone: Ctrl-C must neither join it on close nor wait for it at exit.
        server.daemon_threads, server.block_on_close = True, False
        os.environ["REDIS_URL"] = url  # inherited by the worker
        embedded_redis.queues_point_at(url)
        embedded_redis.demo_redis_remember(url)  # commands run beside the demo find it (settings.REDIS_URL)
        self.stdout.write(f"Embedded Redis-protocol server on {url}")
        return server

    def _start_standin(self, latency_scale: float) -> tuple[Any, dict[str, str]]:
        """The local Azure stand-in; this process and the worker trust its CA and use its endpoints.

        Returns it and the object id of each directory user by UPN.
        """
        from provisioning.standin import StandIn

        standin = StandIn(latency_scale=latency_scale, browser_http=True)
        base_url = standin.start()
        directory = {
            upn: standin.add_user(upn, display_name=DEMO_NAMES.get(upn), roles=DEMO_ROLES.get(upn, []))
            for upn in DEMO_DIRECTORY_USERS
        }
        groups = {group: standin.add_group(group) for group in DEMO_DIRECTORY_GROUPS}
        scripts_workspaces(standin, {**directory, **groups})
        env = standin.environment(standin.write_ca_bundle())
        os.environ.update(env)
        for name in ("AZURE_ARM_ENDPOINT", "AZURE_AUTHORITY_HOST", "GRAPH_ENDPOINT", "AZURE_CREDENTIAL"):
            setattr(settings, name, env[name])
        settings.AZURE_TENANT_ID, settings.AZURE_CLIENT_ID = env["AZURE_TENANT_ID"], env["AZURE_CLIENT_ID"]
        settings.AZURE_CLIENT_SECRET = env["AZURE_CLIENT_SECRET"]
        settings.AZURE_DISABLE_INSTANCE_DISCOVERY = True
        self.stdout.write(f"Local Azure stand-in on {base_url} (latency x{latency_scale})")
        return standin, directory

    def _use_entra(self, standin: Any, port: int) -> None:
        """Register the portal's sign-in app in the stand-in and switch the portal to Entra sign-in."""
        app = standin.register_app(
            "azureml-portal-web",
            redirect_uris=[
                f"http://{host}:{port}/accounts/{page}/"
                for host in ("127.0.0.1", "localhost")
                for page in ("callback", "signed-out")
            ],
        )
        env = standin.sign_in_environment(app)
        os.environ.update(env)
        settings.AUTH_MODE = "entra"
        settings.ENTRA_TENANT_ID = env["ENTRA_TENANT_ID"]
        settings.ENTRA_CLIENT_ID = env["ENTRA_CLIENT_ID"]
        settings.ENTRA_CLIENT_SECRET = env["ENTRA_CLIENT_SECRET"]
        settings.ENTRA_AUTHORITY_HOST = standin.base_url
        settings.ENTRA_DISABLE_INSTANCE_DISCOVERY = True

    def _start_worker(self) -> subprocess.Popen[bytes]:
        """A real RQ worker (forking work horses) on the provisioning queue, with RQ's scheduler."""
        root = Path(settings.BASE_DIR)
        command = [
            sys.executable,
            "manage.py",
            "rqworker",
            "provisioning",
            "--with-scheduler",
            "--serializer",
            "rq.serializers.JSONSerializer",
        ]
        # The command is fixed above; only the environment varies.
        worker = subprocess.Popen(command, cwd=root, env=dict(os.environ), start_new_session=True)  # noqa: S603  # nosec B603 # the command is fixed above
        self.stdout.write(f"Provisioning worker started (pid {worker.pid})")
        return worker

    def _stop_worker(self, worker: subprocess.Popen[bytes]) -> None:
        if worker.poll() is not None:
            return
        os.killpg(worker.pid, signal.SIGTERM)
        try:
            worker.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)

    def _queue_capacity_check(self) -> None:
        """Read sizes, usages and spend from the stand-in at once, so the capacity page has numbers."""
        from provisioning.management.commands.provisioning_scheduler import capacity_enqueue, spend_enqueue

        if capacity_enqueue():
            self.stdout.write("Capacity refresh queued (VM sizes, core usages, cluster guard)")
        if spend_enqueue():
            self.stdout.write("Spend read queued (the stand-in's Cost Management figures, month to date)")

    def _sweep_clock(self, stop: threading.Event) -> None:
        """What ``provisioning_scheduler`` does in production: queue the sweeper, the capacity check, the spend read
        and the audit checkpoint and, every ``RECONCILE_INTERVAL_MINUTES``, the reconcile of every workspace."""
        from provisioning.management.commands.provisioning_scheduler import (
            capacity_enqueue,
            checkpoint_enqueue,
            expiry_enqueue,
            reconcile_enqueue,
            spend_enqueue,
            sweep_enqueue,
        )

        ticks_per_capacity = max(1, round(CAPACITY_SECONDS / SWEEP_SECONDS))
        ticks_per_reconcile = max(1, round(settings.RECONCILE_INTERVAL_MINUTES * 60 / SWEEP_SECONDS))
        tick = 0
        while not stop.wait(SWEEP_SECONDS):
            sweep_enqueue()
            tick += 1
            if tick % ticks_per_capacity == 0:
                capacity_enqueue()
                checkpoint_enqueue()
                expiry_enqueue()  # membership reminders and expiry (hourly in production)
                spend_enqueue()  # so a workspace provisioned in the demo shows spend soon (daily in production)
            if tick % ticks_per_reconcile == 0:
                reconcile_enqueue()

    def _banner_when_listening(
        self, options: dict[str, Any], standin: Any, directory: dict[str, str], stop: threading.Event
    ) -> None:
        """The banner once the web server accepts connections, so the address works when it is read."""
        while not stop.is_set():
            if embedded_redis.accepts(options["port"]):
                self._banner(options, standin, directory)
                return
            stop.wait(0.2)

    def _banner(self, options: dict[str, Any], standin: Any, directory: dict[str, str]) -> None:
        url = f"http://127.0.0.1:{options['port']}/"
        self.stdout.write(self.style.SUCCESS(f"\nThe portal is at {url}"))
        if options["auth"] == "entra":
            signin = (
                "Sign in with Microsoft, then pick Lena Lead (Team Lead), Ada Admin (Admin) or Sam Scientist "
                "(Data Scientist) on the stand-in's Entra page.\n"
            )
        else:
            signin = (
                "Sign in as  lead (Team Lead) · admin (Admin) · scientist (Data Scientist)"
                f"  with password '{options['password']}'.\n"
            )
        self.stdout.write(
            signin + "The stand-in's directory knows " + ", ".join(DEMO_DIRECTORY_USERS) + " and the group "
            "'datasciencegroup': use them as members.\n"
        )
        self.stdout.write(self._drift_tour(standin, directory))
        self.stdout.write("Ctrl-C stops everything.\n")

    def _drift_tour(self, standin: Any, directory: dict[str, str]) -> str:
        """How to change the tour's workspace in Azure by hand, then find the drift in the portal."""
        names = resource_names(TOUR_WORKSPACE, data_lake=True)
        subscription = DEMO_SUBSCRIPTION[0]
        group = f"/subscriptions/{subscription}/resourceGroups/{names.resource_group}"
        where = f"--subscription {subscription} --resource-group {names.resource_group}"
        outside = "uv run manage.py azure_standin outside"
        exports = " ".join(f"{name}={shlex.quote(os.environ[name])}" for name in OUTSIDE_ENVIRONMENT)
        minutes = f"{settings.RECONCILE_INTERVAL_MINUTES:g}"
        return (
            f"\nDrift: once the tour's workspace {names.workspace} is provisioned, change it in Azure by hand"
            " from a second terminal\n(in this directory; the stand-in's URL, credentials and CA bundle hold"
            " while the demo runs):\n\n"
            f"  export {exports}\n"
            f"  {outside} resize_cluster {where} --workspace {names.workspace} --cluster {TOUR_CLUSTER}"
            " --max-nodes 40\n"
            f"  {outside} add_role_assignment --scope {group} --role Owner"
            f" --principal-id {directory[OUTSIDE_OWNER]}   # {OUTSIDE_OWNER}\n"
            f"  {outside} add_resource {where} --name {names.base[:20]}hand\n\n"
            "delete_role_assignment --assignment-id ID and delete_resource --resource-id ID take the ids the"
            " workspace's page lists\nunder What Azure holds now. Then press Reconcile with Azure now on that"
            " page (Ada Admin, or Lena Lead) and open\nDrift (Ada Admin) to remediate or accept each item;"
            f" the clock also reconciles every {minutes} minutes (RECONCILE_INTERVAL_MINUTES).\n"
        )
