"""``manage.py azure_standin``: the local Azure stand-in in the foreground, for demos and manual testing.

Prints the base URL, the CA files, the registered app's tenant/client id and secret, and the
environment variables that point a web or worker process at it. Ctrl-C stops it.

``manage.py azure_standin outside ACTION [options]`` changes a running stand-in as somebody would by
hand in Azure (drift for the portal to find): it gets a token with the client credentials and CA bundle
of the environment the stand-in printed (AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET,
REQUESTS_CA_BUNDLE; the URL from --url or AZURE_ARM_ENDPOINT), posts the action to
``/_standin/outside`` and prints what changed.
"""

from __future__ import annotations

import os
import shlex
import time
from typing import Any

import requests
from django.core.management.base import BaseCommand, CommandError, CommandParser

from provisioning.standin import OUTSIDE_ACTIONS, REALISTIC_LATENCY, StandIn

# The outside actions' arguments: option name -> (JSON key, type).
OUTSIDE_OPTIONS: dict[str, tuple[str, type]] = {
    "--subscription": ("subscription", str),
    "--resource-group": ("resource_group", str),
    "--workspace": ("workspace", str),
    "--cluster": ("cluster", str),
    "--vm-size": ("vm_size", str),
    "--priority": ("priority", str),
    "--min-nodes": ("min_nodes", int),
    "--max-nodes": ("max_nodes", int),
    "--idle-seconds": ("idle_seconds", int),
    "--nodes": ("nodes", int),
    "--assignment-id": ("assignment_id", str),
    "--scope": ("scope", str),
    "--role": ("role", str),
    "--principal-id": ("principal_id", str),
    "--principal-type": ("principal_type", str),
    "--resource-id": ("resource_id", str),
    "--name": ("name", str),
    "--location": ("location", str),
}


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
            "--quota-delay",
            type=float,
            default=60.0,
            help="seconds a Quota API increase request stays in progress before Azure decides (default 60)",
        )
        parser.add_argument(
            "--quota-max",
            type=int,
            default=1000,
            help="the most cores a Quota API increase request is granted; above it, denied (default 1000)",
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
        commands = parser.add_subparsers(dest="command", metavar="outside")
        outside = commands.add_parser(
            "outside",
            help="change a running stand-in as somebody would by hand in Azure",
            description="Post an outside change to a running stand-in and print what changed.",
        )
        outside.add_argument("action", choices=OUTSIDE_ACTIONS)
        outside.add_argument("--url", help="the stand-in's base URL (default: $AZURE_ARM_ENDPOINT)")
        for option, (_key, kind) in OUTSIDE_OPTIONS.items():
            outside.add_argument(option, type=kind)

    def handle(self, *args: Any, **options: Any) -> None:
        if options.get("command") == "outside":
            self._outside(options)
            return
        standin = StandIn(
            REALISTIC_LATENCY,
            latency_scale=options["latency_scale"],
            port=options["port"],
            quota_delay=options["quota_delay"],
            quota_max=options["quota_max"],
        )
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
        self.stdout.write(
            f"Quota requests:  decided after {options['quota_delay']:g} s, granted up to {options['quota_max']} cores"
        )
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

    def _outside(self, options: dict[str, Any]) -> None:
        url = (options.get("url") or os.environ.get("AZURE_ARM_ENDPOINT") or "").rstrip("/")
        names = ("AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET")
        missing = [n for n in names if not os.environ.get(n)] + (
            [] if url else ["--url or AZURE_ARM_ENDPOINT"]
        )
        if missing:
            raise CommandError(f"outside needs the stand-in's environment: {', '.join(missing)} missing")
        tenant, client, secret = (os.environ[n] for n in names)
        verify: str | bool = os.environ.get("REQUESTS_CA_BUNDLE") or True
        token = requests.post(
            f"{url}/{tenant}/oauth2/v2.0/token",
            data={
                "grant_type": "client_credentials",
                "client_id": client,
                "client_secret": secret,
                "scope": f"{url}/.default",
            },
            verify=verify,
            timeout=30,
        )
        if token.status_code != 200:
            raise CommandError(f"no token from {url}: {token.status_code} {token.text}")
        body = {"action": options["action"]}
        body.update(
            {key: options[key] for key, _kind in OUTSIDE_OPTIONS.values() if options.get(key) is not None}
        )
        answer = requests.post(
            f"{url}/_standin/outside",
            json=body,
            headers={"Authorization": f"Bearer {token.json()['access_token']}"},
            verify=verify,
            timeout=30,
        )
        if answer.status_code != 200:
            error = answer.json().get("error", {}) if answer.content else {}
            raise CommandError(
                f"{options['action']} refused ({answer.status_code} {error.get('code')}): {error.get('message')}"
            )
        result = answer.json()
        for line in result["changes"] or [f"{result['action']}: nothing changed on {result['id']}"]:
            self.stdout.write(line)
