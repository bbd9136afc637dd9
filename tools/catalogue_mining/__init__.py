"""Mining error messages, flags and pins from upstream sources into analyzer/data/catalogue/
(see tools/mine_catalogue.py)."""
