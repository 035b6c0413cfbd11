"""Seed the price table with clearly marked estimates, and one cluster policy per environment."""

from decimal import Decimal

from django.db import migrations

NOTE = "Estimate: Linux pay-as-you-go list price per node-hour, USD, US East; check your agreement"
# size: dedicated USD per node-hour (low priority is estimated at 20% of it)
DEDICATED = {
    "STANDARD_DS1_V2": "0.073",
    "STANDARD_DS2_V2": "0.146",
    "STANDARD_DS3_V2": "0.293",
    "STANDARD_DS4_V2": "0.585",
    "STANDARD_DS5_V2": "1.170",
    "STANDARD_DS11_V2": "0.185",
    "STANDARD_DS12_V2": "0.371",
    "STANDARD_DS13_V2": "0.741",
    "STANDARD_DS14_V2": "1.482",
    "STANDARD_D1_V2": "0.073",
    "STANDARD_D2_V2": "0.146",
    "STANDARD_D3_V2": "0.293",
    "STANDARD_D4_V2": "0.585",
    "STANDARD_D11_V2": "0.185",
    "STANDARD_D12_V2": "0.371",
    "STANDARD_D13_V2": "0.741",
    "STANDARD_D14_V2": "1.482",
    "STANDARD_D2S_V3": "0.096",
    "STANDARD_D4S_V3": "0.192",
    "STANDARD_D8S_V3": "0.384",
    "STANDARD_D16S_V3": "0.768",
    "STANDARD_E4DS_V4": "0.288",
    "STANDARD_F2S_V2": "0.085",
    "STANDARD_F4S_V2": "0.169",
    "STANDARD_F8S_V2": "0.338",
    "STANDARD_NV6": "1.140",
    "STANDARD_NV12": "2.280",
    "STANDARD_NV24": "4.560",
    "STANDARD_NV12S_V3": "1.140",
    "STANDARD_NV24S_V3": "2.280",
    "STANDARD_NC6S_V3": "3.060",
    "STANDARD_NC12S_V3": "6.120",
    "STANDARD_NC24S_V3": "12.240",
    "STANDARD_NC4AS_T4_V3": "0.526",
    "STANDARD_NC8AS_T4_V3": "0.752",
    "STANDARD_NC16AS_T4_V3": "1.204",
}
ENVIRONMENTS = {
    # research: cheap experiments, low priority only, short idle
    "res": {"max_nodes": 4, "dedicated_allowed": False, "max_idle_seconds": 1800, "over_budget": "refuse"},
    "dev": {"max_nodes": 6, "dedicated_allowed": True, "max_idle_seconds": 1800, "over_budget": "refuse"},
    "pro": {
        "max_nodes": 10,
        "dedicated_allowed": True,
        "max_idle_seconds": 3600,
        "over_budget": "second_approval",
    },
}


def seed(apps, schema_editor):
    VmPrice = apps.get_model("provisioning", "VmPrice")
    EnvironmentPolicy = apps.get_model("provisioning", "EnvironmentPolicy")
    for size, price in DEDICATED.items():
        dedicated = Decimal(price)
        VmPrice.objects.get_or_create(
            vm_size=size, priority="dedicated", defaults={"hourly_usd": dedicated, "note": NOTE}
        )
        VmPrice.objects.get_or_create(
            vm_size=size,
            priority="low_priority",
            defaults={"hourly_usd": (dedicated * Decimal("0.2")).quantize(Decimal("0.0001")), "note": NOTE},
        )
    for environment, fields in ENVIRONMENTS.items():
        EnvironmentPolicy.objects.get_or_create(environment=environment, defaults=fields)


class Migration(migrations.Migration):
    dependencies = [("provisioning", "0005_capacity_guardrails")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
