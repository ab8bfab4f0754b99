"""Typed presets of the main job (``hrl run --preset NAME``): TOML files in this package."""
