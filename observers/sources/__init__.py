"""One module per data source type (R2.2)."""
