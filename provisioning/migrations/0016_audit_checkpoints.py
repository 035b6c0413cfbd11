"""Audit checkpoints: the chain's head, signed, in a table of its own that PostgreSQL keeps append-only.

UPDATE and DELETE are refused; TRUNCATE too unless the database sets ``portal.allow_audit_truncate``
(only the test suite's throwaway database does, as for the audit table, migration 0007). A trigger
does not stop the table's owner (it can disable it): in production the table belongs to a role the
web's role is not (docs/security.md, "Audit anchor"); migrations run as the owner.
"""

from django.db import migrations, models

CREATE = """
CREATE OR REPLACE FUNCTION provisioning_auditcheckpoint_refuse_change() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' AND coalesce(current_setting('portal.allow_audit_truncate', true), '') = 'on' THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION 'audit checkpoints are append-only: % on provisioning_auditcheckpoint is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER provisioning_auditcheckpoint_append_only
    BEFORE UPDATE OR DELETE ON provisioning_auditcheckpoint
    FOR EACH ROW EXECUTE FUNCTION provisioning_auditcheckpoint_refuse_change();

CREATE TRIGGER provisioning_auditcheckpoint_no_truncate
    BEFORE TRUNCATE ON provisioning_auditcheckpoint
    FOR EACH STATEMENT EXECUTE FUNCTION provisioning_auditcheckpoint_refuse_change();
"""

DROP = """
DROP TRIGGER IF EXISTS provisioning_auditcheckpoint_no_truncate ON provisioning_auditcheckpoint;
DROP TRIGGER IF EXISTS provisioning_auditcheckpoint_append_only ON provisioning_auditcheckpoint;
DROP FUNCTION IF EXISTS provisioning_auditcheckpoint_refuse_change();
"""


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        # params=None: with any params psycopg reads the '%' of RAISE EXCEPTION as a placeholder.
        schema_editor.execute(CREATE, params=None)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP, params=None)


class Migration(migrations.Migration):
    dependencies = [("provisioning", "0014_day2_changes_decommission_adoption")]

    operations = [
        migrations.CreateModel(
            name="AuditCheckpoint",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("created_at", models.DateTimeField()),
                (
                    "event_id",
                    models.BigIntegerField(help_text="The newest audit event when the checkpoint was made"),
                ),
                ("event_hash", models.CharField(max_length=64)),
                (
                    "events",
                    models.BigIntegerField(help_text="How many events the chain held up to and including it"),
                ),
                (
                    "signature",
                    models.CharField(
                        help_text="HMAC-SHA256 of the above with AUDIT_ANCHOR_KEY", max_length=64
                    ),
                ),
            ],
            options={"ordering": ["-id"]},
        ),
        migrations.RunPython(forwards, backwards),
    ]
