"""jinja2 templates for the Markdown report (package data)."""
