"""API users and their rights (R10.1) arrive with the REST API issue."""
