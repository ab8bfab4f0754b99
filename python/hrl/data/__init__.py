"""The data pipeline (see docs/data.md)."""
