"""``manage.py capacity_refresh [--json]``: read capacity from Azure now, guard the clusters, print it all.

The same work as the periodic ``provisioning.jobs.capacity_check``, run in this process (no worker or
Redis needed): the size catalog and core usages of every allowed subscription and region, then the
guard over every AmlCompute cluster. Exits non-zero when a region or subscription could not be read.

``--json`` prints one document of objects (no value needs parsing)::

    {"refresh": {"sizes": {region: count}, "usages": [{"subscription_id", "region", "count"}],
                 "errors": [message]},
     "guard": {"clusters", "flagged", "opened", "resolved", "errors": [message]},
     "usages": [{"subscription_id", "region", "scope", "family", "name", "current", "limit"}],
     "open_flags": [{"subscription_id", "region", "resource_group", "workspace", "cluster", "azure_id",
                     "kind", "detail", "managed_by_portal", "first_seen"}]}
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from provisioning.engine import capacity_sync
from provisioning.models import ClusterFlag, CoreUsage


def usage_rows() -> list[dict[str, Any]]:
    """Every core usage the portal holds: subscription, region, what, used of limit."""
    return [
        {
            "subscription_id": u.subscription_id,
            "region": u.region,
            "scope": u.scope,
            "family": u.family,
            "name": u.name,
            "current": u.current,
            "limit": u.limit,
        }
        for u in CoreUsage.objects.all()
    ]


def open_flag_rows() -> list[dict[str, Any]]:
    """Every open cluster flag: where, which cluster, what is wrong, since when."""
    return [
        {
            "subscription_id": f.subscription_id,
            "region": f.region,
            "resource_group": f.resource_group,
            "workspace": f.workspace_name,
            "cluster": f.cluster_name,
            "azure_id": f.azure_id,
            "kind": f.kind,
            "detail": f.detail,
            "managed_by_portal": f.managed_by_portal,
            "first_seen": f.first_seen.isoformat(),
        }
        for f in ClusterFlag.objects.filter(resolved_at__isnull=True).order_by(
            "workspace_name", "cluster_name"
        )
    ]


def refresh_document(refresh: dict[str, Any]) -> dict[str, Any]:
    """The refresh's summary for scripts: its usages keyed by "subscription/region" become objects."""
    usages = []
    for key, count in refresh["usages"].items():
        subscription, _, region = key.partition("/")
        usages.append({"subscription_id": subscription, "region": region, "count": count})
    return {"sizes": refresh["sizes"], "usages": usages, "errors": refresh["errors"]}


class Command(BaseCommand):
    help = "Refresh the VM size catalog and core usages from Azure, then flag clusters that break policy."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true", help="print one JSON document (for scripts)")

    def handle(self, *args: Any, **options: Any) -> None:
        refresh = capacity_sync.capacity_refresh()
        guard = capacity_sync.clusters_guard()
        errors = [*refresh["errors"], *guard["errors"]]
        if options["json"]:
            report = {
                "refresh": refresh_document(refresh),
                "guard": guard,
                "usages": usage_rows(),
                "open_flags": open_flag_rows(),
            }
            self.stdout.write(json.dumps(report, indent=2))
        else:
            self._print(refresh, guard)
        if errors:
            raise CommandError(
                "some capacity could not be read from Azure:\n" + "\n".join(f"  - {e}" for e in errors)
            )

    def _print(self, refresh: dict[str, Any], guard: dict[str, Any]) -> None:
        for region, count in refresh["sizes"].items():
            self.stdout.write(f"{region}: {count} VM sizes for AzureML")
        for row in usage_rows():
            what = row["family"] or row["scope"].replace("_", " ")
            self.stdout.write(
                f"  {row['subscription_id']} {row['region']} {what}: {row['current']} of {row['limit']} vCPUs used"
            )
        self.stdout.write(
            f"Clusters checked: {guard['clusters']}; breaches: {guard['flagged']} "
            f"({guard['opened']} new, {guard['resolved']} resolved)"
        )
        for flag in open_flag_rows():
            origin = "portal" if flag["managed_by_portal"] else "outside the portal"
            self.stdout.write(
                f"  {flag['resource_group']}/{flag['workspace']}/{flag['cluster']} ({origin}): "
                f"{flag['kind']}: {flag['detail']}"
            )
