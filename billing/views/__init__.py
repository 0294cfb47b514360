"""The operator's billing pages, one module per area: calls.py (the calls browser),
subscribers.py (subscribers, numbers, accounts, statements), directory.py (nodes, devices,
routes, groups), home.py (the dashboard and the global search)."""
