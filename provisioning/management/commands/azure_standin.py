"""``manage.py azure_standin``: the local Azure stand-in in the foreground, for demos and manual testing.

Prints the base URL, the CA files, the registered app's tenant/client id and secret, and the
environment variables that point a web or worker process at it. Ctrl-C stops it.
"""

from __future__ import annotations

import shlex
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from provisioning.standin import REALISTIC_LATENCY, StandIn


class Command(BaseCommand):
    help = "Run the local Azure stand-in (Entra ID, ARM, Graph over HTTPS on 127.0.0.1) until Ctrl-C."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: any free port)")
        parser.add_argument(
            "--latency-scale",
            type=float,
            default=0.1,
            help="multiplies Azure-like operation durations: 1 is realistic (a workspace takes "
            "a minute), 0 is instant (default 0.1)",
        )
        parser.add_argument(
            "--user",
            action="append",
            default=[],
            metavar="UPN",
            help="add a user to the directory (repeatable)",
        )
        parser.add_argument(
            "--group",
            action="append",
            default=[],
            metavar="NAME",
            help="add a security group to the directory (repeatable)",
        )
        parser.add_argument(
            "--guest",
            action="append",
            default=[],
            metavar="ADDRESS",
            help="add a guest user invited with this address (repeatable)",
        )
        parser.add_argument(
            "--disabled-user",
            action="append",
            default=[],
            metavar="UPN",
            help="add a user whose account is disabled (repeatable)",
        )
        parser.add_argument("--env-file", help="also write the export lines to this file (for `source`)")

    def handle(self, *args: Any, **options: Any) -> None:
        standin = StandIn(REALISTIC_LATENCY, latency_scale=options["latency_scale"], port=options["port"])
        base_url = standin.start()
        try:
            bundle = standin.write_ca_bundle()
            self._describe(standin, base_url, bundle, options)
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
        finally:
            standin.stop()
            self.stdout.write("Azure stand-in stopped.")

    def _describe(self, standin: StandIn, base_url: str, bundle: str, options: dict[str, Any]) -> None:
        exports = "\n".join(f"export {k}={shlex.quote(v)}" for k, v in standin.environment(bundle).items())
        if options.get("env_file"):
            with open(options["env_file"], "w", encoding="utf-8") as fh:
                fh.write(exports + "\n")
        self.stdout.write(self.style.SUCCESS(f"Azure stand-in listening on {base_url}"))
        self.stdout.write(f"CA certificate:  {standin.ca_pem_path}")
        self.stdout.write(f"CA bundle:       {bundle}  (system CAs + the stand-in's)")
        self.stdout.write(f"Tenant id:       {standin.tenant_id}")
        self.stdout.write(f"Client id:       {standin.client_id}")
        self.stdout.write(f"Client secret:   {standin.client_secret}")
        self.stdout.write(f"Latency scale:   {options['latency_scale']}")
        for upn in options["user"]:
            self.stdout.write(f"User {upn}: {standin.add_user(upn)}")
        for name in options["group"]:
            self.stdout.write(f"Group {name}: {standin.add_group(name)}")
        for address in options["guest"]:
            guest = standin.add_user(address, guest=True)
            upn = standin.state.principals[guest].upn
            self.stdout.write(f"Guest {upn}: {guest}")
        for upn in options["disabled_user"]:
            self.stdout.write(f"Disabled user {upn}: {standin.add_user(upn, enabled=False)}")
        self.stdout.write("\nPoint the portal at it (web and workers):\n" + exports + "\n\nCtrl-C stops it.")
        self.stdout.flush()
