"""The shipped models (installed from saved_models/ as package data): see dlkit.paths."""
