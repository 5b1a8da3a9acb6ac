"""The CLI's commands, one module each with ``register(subparsers, common)``; the options they
share live in :mod:`modelmeter.commands.options`."""
