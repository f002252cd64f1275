"""PostgreSQL refuses UPDATE and DELETE of audit entries (append-only even for raw SQL from the app).

TRUNCATE is not a row event, so test-database flushes still work. Other backends rely on the
model's and queryset's refusals only.
"""

from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps

CREATE = """
CREATE OR REPLACE FUNCTION reprocess_auditentry_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION USING MESSAGE = 'reprocess_auditentry is append-only: ' || TG_OP || ' refused';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER reprocess_auditentry_append_only
    BEFORE UPDATE OR DELETE ON reprocess_auditentry
    FOR EACH ROW EXECUTE FUNCTION reprocess_auditentry_append_only();
"""
DROP = """
DROP TRIGGER IF EXISTS reprocess_auditentry_append_only ON reprocess_auditentry;
DROP FUNCTION IF EXISTS reprocess_auditentry_append_only();
"""


def _create(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


def _drop(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [("reprocess", "0001_initial")]

    operations = [migrations.RunPython(_create, _drop)]
