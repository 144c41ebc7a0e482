"""One module per ``identix-stream`` subcommand; each exposes ``register(subparsers)``."""
