"""PhoneCode's references checked per statement by triggers instead of row-by-row foreign
keys; its unique constraint begins with the tariff (which gives the tariff's index); no
index of the codes by operator, nor of the tariffs by operator besides their unique
constraint's. Each index costs every row of every imported deck."""

import django.db.models.deletion
from django.db import migrations, models


# The references of codes, checked per statement (PhoneCode's docstring says why). Every
# lookup is an index probe per distinct tariff, whatever the statistics say: the planner
# knows nothing of a statement's new rows, and takes a table that was empty at the last
# ANALYZE for empty (a seq scan per tariff of a 200,000-code deck took seconds), hence the
# functions' own enable_* settings. The
# checks run at the end of each statement, not at commit: code that adds codes adds their
# tariffs first. A deleted tariff's codes are deleted with it (on_delete=CASCADE, which
# the ORM does first anyway). Keep in mind on SQLite: a migration that remakes tariffs_phonecode or
# tariffs_tariff (some AlterFields do) drops these triggers; create them again after it
# (tests/tariffs/test_code_references.py fails without them).

POSTGRESQL = r"""
-- Digits compare byte by byte (PhoneCode.code says why); the unique index is rebuilt.
ALTER TABLE tariffs_phonecode ALTER COLUMN code TYPE varchar(32) COLLATE "C";

CREATE FUNCTION tariffs_codes_check() RETURNS trigger LANGUAGE plpgsql
    SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off AS $$
DECLARE
    bad record;
    bad_code text;
BEGIN
    -- Each distinct (tariff, operator) of the statement's codes once. The tariffs are
    -- locked to the end of the transaction: a concurrent delete of one waits for it, then
    -- deletes its codes too (tariffs_tariff_deleted).
    SELECT p.tariff_id, p.operator_id INTO bad
        FROM (SELECT DISTINCT tariff_id, operator_id FROM new_codes) p
        LEFT JOIN LATERAL (SELECT t.operator_id FROM tariffs_tariff t
                           WHERE t.id = p.tariff_id FOR KEY SHARE) t ON true
        WHERE t.operator_id IS DISTINCT FROM p.operator_id
        LIMIT 1;
    IF FOUND THEN
        SELECT n.code INTO bad_code FROM new_codes n
            WHERE n.tariff_id = bad.tariff_id AND n.operator_id = bad.operator_id LIMIT 1;
        RAISE foreign_key_violation USING MESSAGE = format(
            'code %s: tariff %s does not exist or is not a tariff of operator %s',
            bad_code, bad.tariff_id, bad.operator_id);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER tariffs_phonecode_insert_check AFTER INSERT ON tariffs_phonecode
    REFERENCING NEW TABLE AS new_codes
    FOR EACH STATEMENT EXECUTE FUNCTION tariffs_codes_check();
CREATE TRIGGER tariffs_phonecode_update_check AFTER UPDATE ON tariffs_phonecode
    REFERENCING NEW TABLE AS new_codes
    FOR EACH STATEMENT EXECUTE FUNCTION tariffs_codes_check();

CREATE FUNCTION tariffs_tariff_deleted() RETURNS trigger LANGUAGE plpgsql
    SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off AS $$
BEGIN
    -- PhoneCode.tariff's on_delete=CASCADE, for deletes that do not go through the ORM
    -- (whose cascade deletes the codes first, so that this finds none). One index probe
    -- per deleted tariff.
    DELETE FROM tariffs_phonecode c USING old_tariffs o WHERE c.tariff_id = o.id;
    RETURN NULL;
END $$;

CREATE FUNCTION tariffs_tariff_updated_check() RETURNS trigger LANGUAGE plpgsql
    SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off AS $$
DECLARE
    bad record;
BEGIN
    -- Only the tariffs whose id or operator changed are looked for in the codes.
    SELECT c.code, o.id AS tariff_id INTO bad FROM old_tariffs o
        LEFT JOIN new_tariffs n ON n.id = o.id
        CROSS JOIN LATERAL (SELECT code FROM tariffs_phonecode
                            WHERE tariff_id = o.id LIMIT 1) c
        WHERE n.id IS NULL OR n.operator_id <> o.operator_id
        LIMIT 1;
    IF FOUND THEN
        RAISE foreign_key_violation USING MESSAGE = format(
            'tariff %s changes its id or operator but still has code %s', bad.tariff_id, bad.code);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER tariffs_tariff_delete_cascade AFTER DELETE ON tariffs_tariff
    REFERENCING OLD TABLE AS old_tariffs
    FOR EACH STATEMENT EXECUTE FUNCTION tariffs_tariff_deleted();
CREATE TRIGGER tariffs_tariff_update_check AFTER UPDATE ON tariffs_tariff
    REFERENCING OLD TABLE AS old_tariffs NEW TABLE AS new_tariffs
    FOR EACH STATEMENT EXECUTE FUNCTION tariffs_tariff_updated_check();
"""

POSTGRESQL_REVERSE = r"""
DROP TRIGGER tariffs_tariff_update_check ON tariffs_tariff;
DROP TRIGGER tariffs_tariff_delete_cascade ON tariffs_tariff;
DROP TRIGGER tariffs_phonecode_update_check ON tariffs_phonecode;
DROP TRIGGER tariffs_phonecode_insert_check ON tariffs_phonecode;
DROP FUNCTION tariffs_tariff_updated_check();
DROP FUNCTION tariffs_tariff_deleted();
DROP FUNCTION tariffs_codes_check();
ALTER TABLE tariffs_phonecode ALTER COLUMN code TYPE varchar(32) COLLATE "default";
"""

# SQLite has row triggers only; its own foreign keys are checked row by row as well.
_CODE_OK = ("EXISTS (SELECT 1 FROM tariffs_tariff t "
            "WHERE t.id = NEW.tariff_id AND t.operator_id = NEW.operator_id)")
_CODE_REFUSED = ("SELECT RAISE(ABORT, 'FOREIGN KEY constraint failed: a code''s tariff must "
                 "exist and belong to the code''s operator')")
_HAS_CODES = "EXISTS (SELECT 1 FROM tariffs_phonecode c WHERE c.tariff_id = OLD.id)"
_TARIFF_REFUSED = ("SELECT RAISE(ABORT, 'FOREIGN KEY constraint failed: a tariff with codes "
                   "cannot change its id or operator')")
SQLITE = [
    f"CREATE TRIGGER tariffs_phonecode_insert_check BEFORE INSERT ON tariffs_phonecode "
    f"WHEN NOT {_CODE_OK} BEGIN {_CODE_REFUSED}; END",
    f"CREATE TRIGGER tariffs_phonecode_update_check BEFORE UPDATE OF operator_id, tariff_id "
    f"ON tariffs_phonecode WHEN NOT {_CODE_OK} BEGIN {_CODE_REFUSED}; END",
    "CREATE TRIGGER tariffs_tariff_delete_cascade AFTER DELETE ON tariffs_tariff "
    "BEGIN DELETE FROM tariffs_phonecode WHERE tariff_id = OLD.id; END",
    f"CREATE TRIGGER tariffs_tariff_update_check BEFORE UPDATE OF id, operator_id ON tariffs_tariff "
    f"WHEN (NEW.id <> OLD.id OR NEW.operator_id <> OLD.operator_id) AND {_HAS_CODES} "
    f"BEGIN {_TARIFF_REFUSED}; END",
]
SQLITE_REVERSE = [f"DROP TRIGGER {name}" for name in (
    "tariffs_tariff_update_check", "tariffs_tariff_delete_cascade",
    "tariffs_phonecode_update_check", "tariffs_phonecode_insert_check")]


def _run(schema_editor, statements) -> None:
    for statement in statements:
        schema_editor.execute(statement, params=None)


def checks_create(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        _run(schema_editor, [POSTGRESQL])
    elif vendor == "sqlite":
        _run(schema_editor, SQLITE)


def checks_drop(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        _run(schema_editor, [POSTGRESQL_REVERSE])
    elif vendor == "sqlite":
        _run(schema_editor, SQLITE_REVERSE)


class Migration(migrations.Migration):

    dependencies = [
        ('tariffs', '0002_code_indexes_covered'),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name='phonecode',
            name='code_unique_per_date',
        ),
        migrations.AlterField(
            model_name='phonecode',
            name='operator',
            field=models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='codes', to='tariffs.operator'),
        ),
        migrations.AlterField(
            model_name='phonecode',
            name='tariff',
            field=models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='codes', to='tariffs.tariff'),
        ),
        migrations.AddConstraint(
            model_name='phonecode',
            constraint=models.UniqueConstraint(fields=('tariff', 'code', 'valid_from'), name='code_unique_per_tariff_date'),
        ),
        migrations.AlterField(
            model_name='tariff',
            name='operator',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='tariffs', to='tariffs.operator'),
        ),
        migrations.RunPython(checks_create, checks_drop),
    ]
