"""The bundle format: its JSON Schema files and the one module that reads, writes and validates bundles."""
