"""R6.2: the periods in which one number of one device is held never overlap, whoever
writes them (number_add checks it too, but two requests at once, the admin or SQL could
not be stopped by it). PostgreSQL: an exclusion constraint (btree_gist, a trusted
extension: a database owner may create it). SQLite: triggers."""
from django.db import migrations

POSTGRESQL = """
CREATE EXTENSION IF NOT EXISTS btree_gist;
ALTER TABLE billing_phonenumber ADD CONSTRAINT number_periods_do_not_overlap
    EXCLUDE USING gist (device_id WITH =, dn WITH =, daterange(valid_from, valid_to, '[]') WITH &&);
"""
POSTGRESQL_REVERSE = """
ALTER TABLE billing_phonenumber DROP CONSTRAINT number_periods_do_not_overlap;
"""

_OVERLAP = ("EXISTS (SELECT 1 FROM billing_phonenumber p WHERE p.device_id = NEW.device_id "
            "AND p.dn = NEW.dn AND p.id IS NOT NEW.id "
            "AND p.valid_from <= COALESCE(NEW.valid_to, '9999-12-31') "
            "AND COALESCE(p.valid_to, '9999-12-31') >= NEW.valid_from)")
_REFUSED = ("SELECT RAISE(ABORT, 'number_periods_do_not_overlap: the number is held by another "
            "subscriber in that period')")
SQLITE = [
    f"CREATE TRIGGER number_periods_insert BEFORE INSERT ON billing_phonenumber "
    f"WHEN {_OVERLAP} BEGIN {_REFUSED}; END",
    f"CREATE TRIGGER number_periods_update BEFORE UPDATE OF device_id, dn, valid_from, valid_to "
    f"ON billing_phonenumber WHEN {_OVERLAP} BEGIN {_REFUSED}; END",
]
SQLITE_REVERSE = ["DROP TRIGGER number_periods_update", "DROP TRIGGER number_periods_insert"]

# Numbers whose periods overlap already: the constraint cannot be added until they are put
# right, and the migration says which they are.
OVERLAPS = """
SELECT a.device_id, a.dn, a.valid_from, a.valid_to, b.valid_from, b.valid_to
FROM billing_phonenumber a JOIN billing_phonenumber b
  ON a.device_id = b.device_id AND a.dn = b.dn AND a.id < b.id
 AND a.valid_from <= COALESCE(b.valid_to, '9999-12-31')
 AND COALESCE(a.valid_to, '9999-12-31') >= b.valid_from
LIMIT 20
"""


def constraint_add(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(OVERLAPS)
        overlaps = cursor.fetchall()
    if overlaps:
        listed = "; ".join(f"device {d} number {n}: {f1}..{t1 or 'open'} and {f2}..{t2 or 'open'}"
                           for d, n, f1, t1, f2, t2 in overlaps)
        raise RuntimeError("numbers held by two subscribers at once must be put right before "
                           f"this migration (end one period the day before the other): {listed}")
    if vendor == "postgresql":
        schema_editor.execute(POSTGRESQL, params=None)
    elif vendor == "sqlite":
        for statement in SQLITE:
            schema_editor.execute(statement, params=None)


def constraint_drop(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(POSTGRESQL_REVERSE, params=None)
    elif vendor == "sqlite":
        for statement in SQLITE_REVERSE:
            schema_editor.execute(statement, params=None)


class Migration(migrations.Migration):

    dependencies = [
        ("billing", "0004_call_indexes_and_checks"),
    ]

    operations = [
        migrations.RunPython(constraint_add, constraint_drop),
    ]
