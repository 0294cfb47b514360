"""R9.1: the view `v_calls` that scripts read with `host.query` (docs/scripts.md), the
counterpart of Tariscope's viCalls. `calldatetime` is the call's start in its device's time
zone, without the zone (what the original's CallDateTime holds): PostgreSQL converts it
itself; on SQLite the function `tariscope_local(start, zone)` does (scripts/sql.py registers
it on every connection). On PostgreSQL the role `tariscope_script_reader` may read the view
and nothing else: `host.query` runs under it (docs/scripts.md)."""
from django.db import migrations

COLUMNS = """
    c.id AS id,
    c.extension AS originator,
    c.dialled AS dialnumber,
    {local} AS calldatetime,
    c.duration AS callseconds,
    c.call_type AS calltype,
    c.cost AS cost,
    c.currency AS currency,
    s.full_name AS subscriber,
    g.name AS "group",
    d.name AS device,
    (SELECT p.name FROM observers_observerprofile p WHERE p.device_id = c.device_id
     ORDER BY p.id LIMIT 1) AS profile,
    c.normalized AS normalized,
    c.direction AS direction,
    c.billable_seconds AS billableseconds,
    c.answered AS answered,
    c.trunk AS trunk,
    c.subscriber_id AS subscriber_id,
    s.group_id AS group_id,
    c.device_id AS device_id,
    c.start AS calldatetime_utc
"""
FROM = """
FROM billing_call c
JOIN billing_device d ON d.id = c.device_id
LEFT JOIN billing_subscriber s ON s.id = c.subscriber_id
LEFT JOIN billing_subscribergroup g ON g.id = s.group_id
"""
LOCAL = {"postgresql": "(c.start AT TIME ZONE d.timezone)",
         "sqlite": "tariscope_local(c.start, d.timezone)"}
ROLE = "tariscope_script_reader"


def create(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    local = LOCAL.get(vendor, "c.start")
    schema_editor.execute(f"CREATE VIEW v_calls AS SELECT {COLUMNS.format(local=local)} {FROM}")
    if vendor == "postgresql":
        # A role that reads the view and nothing else; creating it needs CREATEROLE, which
        # a hosted database may not grant: host.query then says how to create it.
        schema_editor.execute(f"""
            DO $$ BEGIN
                IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{ROLE}') THEN
                    CREATE ROLE {ROLE} NOLOGIN;
                END IF;
                GRANT SELECT ON v_calls TO {ROLE};
                EXECUTE format('GRANT {ROLE} TO %I', current_user);
            EXCEPTION WHEN insufficient_privilege THEN
                RAISE NOTICE 'role {ROLE} not created: host.query will refuse to run';
            END $$""", params=None)  # no parameters: %I is format()'s, not the driver's


def drop(apps, schema_editor):
    schema_editor.execute("DROP VIEW IF EXISTS v_calls")


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0005_number_periods_do_not_overlap"),
        ("observers", "0003_processing_failures"),
    ]
    operations = [migrations.RunPython(create, drop)]
