"""Analyze side: safe loading, facts, rules, signatures and rendering. Runs offline, with no GPU packages."""
