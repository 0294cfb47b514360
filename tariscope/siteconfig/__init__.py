"""R1, R2.1, R5.1, R6: the site configuration as one file (YAML or JSON) — operators, tariff
plans, nodes, devices with their dial plans, routes and observer profiles, groups,
subscribers and their numbers — validated, applied and exported (docs/config.md).

Three layers, so that each can be tested on its own:

* `SCHEMA`, `site_config_parse` and `site_config_validate` are pure: plain data in, error
  strings out, no database. What the database already holds reaches the validator as a
  plain `Known` snapshot, because a file may refer to rows it does not list.
* `site_config_apply(*, data)` is the service that writes (one transaction, all or
  nothing); `site_config_export()` is the read that produces the same format.

The apply and export code lives here rather than in services.py / selectors.py because
the schema, the matching rules and the export are one contract and nothing else uses
them (STYLE rule 11); the file format changes in one place.

Semantics, in brief (the user's version is in docs/config.md):
* An object named in the file is described fully: a key left out (or null) takes the
  default, exactly as on a new row. The one exception is a subscriber's
  `account_number`, which when left out keeps the number the row already has.
* Rows are matched by name (see `_Applier`) and never deleted.
"""
