"""PostgreSQL refuses UPDATE and DELETE on the audit table: the trail is append-only.

(SQLite, the embedded development database, has no such trigger; the hash chain still shows
any edit there.)
"""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION provisioning_auditevent_refuse_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'the audit trail is append-only: % on provisioning_auditevent is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER provisioning_auditevent_append_only
    BEFORE UPDATE OR DELETE ON provisioning_auditevent
    FOR EACH ROW EXECUTE FUNCTION provisioning_auditevent_refuse_change();
"""

DROP = """
DROP TRIGGER IF EXISTS provisioning_auditevent_append_only ON provisioning_auditevent;
DROP FUNCTION IF EXISTS provisioning_auditevent_refuse_change();
"""


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        # params=None: with any params psycopg reads the '%' of RAISE EXCEPTION as a placeholder.
        schema_editor.execute(CREATE, params=None)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP, params=None)


class Migration(migrations.Migration):
    dependencies = [("provisioning", "0001_initial")]

    operations = [migrations.RunPython(forwards, backwards)]
