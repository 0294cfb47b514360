"""R1, R2.1, R5.1, R6: the site configuration as one file (YAML or JSON) — operators, tariff
plans, nodes, devices with their dial plans, routes and observer profiles, groups,
subscribers and their numbers — validated, applied and exported (docs/config.md).

It spans every app, so it lives at the top of the house (docs/architecture.md), in five
modules that can each be tested on their own:

* `schema`: the JSON schema, built from the models' own limits, and `SiteConfigError`;
* `files`: reading and writing the file (`site_config_parse`, `site_config_load`,
  `site_config_dump`, `format_of`);
* `checks`: `site_config_validate`, pure: plain data in, error strings out, no database.
  What the database already holds reaches it as a plain `Known` snapshot, because a file
  may refer to rows it does not list. An observer's source keys are checked by
  observers.sources.settings.observer_settings_problems, which the Observers form uses too;
* `apply`: `site_config_apply(*, data)`, the service that writes (one transaction, all or
  nothing);
* `export`: `site_config_export()`, the read that produces the same format.

Semantics, in brief (the user's version is in docs/config.md):
* An object named in the file is described fully: a key left out (or null) takes the
  default, exactly as on a new row. The one exception is a subscriber's
  `account_number`, which when left out keeps the number the row already has.
* Rows are matched by name (see `apply._Applier`) and never deleted.
"""
