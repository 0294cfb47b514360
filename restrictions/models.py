"""Limits, classes and PBX connectors (R8) arrive with their own issue."""
