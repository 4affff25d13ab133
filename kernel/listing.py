"""How long a listing may be: light, so that the CLI can use it without loading the settings."""

MAX_LISTED = 1_000_000  # the longest listing one call returns (`--limit`)
