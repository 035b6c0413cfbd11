"""PostgreSQL refuses TRUNCATE on the audit table too (UPDATE and DELETE are refused since 0002).

A database may let it through by setting ``portal.allow_audit_truncate`` to ``on``: the test suite
does so on its own throwaway database, where Django empties every table between transactional
tests. No production database should carry that setting.
"""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION provisioning_auditevent_refuse_truncate() RETURNS trigger AS $$
BEGIN
    IF coalesce(current_setting('portal.allow_audit_truncate', true), '') = 'on' THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION 'the audit trail is append-only: TRUNCATE on provisioning_auditevent is not allowed'
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER provisioning_auditevent_no_truncate
    BEFORE TRUNCATE ON provisioning_auditevent
    FOR EACH STATEMENT EXECUTE FUNCTION provisioning_auditevent_refuse_truncate();
"""

DROP = """
DROP TRIGGER IF EXISTS provisioning_auditevent_no_truncate ON provisioning_auditevent;
DROP FUNCTION IF EXISTS provisioning_auditevent_refuse_truncate();
"""


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE, params=None)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP, params=None)


class Migration(migrations.Migration):
    dependencies = [("provisioning", "0006_seed_prices_and_environment_policies")]

    operations = [migrations.RunPython(forwards, backwards)]
