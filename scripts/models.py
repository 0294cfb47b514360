"""Events and scripts (R9) arrive with their own issue."""
