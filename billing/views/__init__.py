"""The operator's billing pages, one module per area: calls.py (the calls browser),
subscribers.py (subscribers, numbers, accounts, statements), directory.py (nodes, devices,
routes, groups). The dashboard and the global search span the site: tariscope/views.py."""
