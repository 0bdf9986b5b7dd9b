"""The heads of the audit hash chains 0 … HUZHU_AUDIT_CHAINS-1 (ADR 0002).

Idempotent: an existing head (chain 0 of a database that already has events) is left as it is.
``huzhu.core.audit`` creates missing heads lazily too (a flushed test database, the setting
raised later), so this only saves the first transactions that work.
"""

from typing import Any

from django.db import migrations


def create_heads(apps: Any, schema_editor: Any) -> None:
    from huzhu.core.audit import chain_count

    AuditChain = apps.get_model("core", "AuditChain")
    AuditChain.objects.using(schema_editor.connection.alias).bulk_create(
        [AuditChain(id=i) for i in range(chain_count())], ignore_conflicts=True
    )


class Migration(migrations.Migration):
    dependencies = [("core", "0002_audit_append_only")]

    # Reversing leaves the heads: they hold the chains' last seq/hash, which the events need.
    operations = [migrations.RunPython(create_heads, migrations.RunPython.noop, elidable=True)]
