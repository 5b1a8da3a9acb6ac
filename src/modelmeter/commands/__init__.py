"""Further CLI commands, each with register(subparsers, common)."""
