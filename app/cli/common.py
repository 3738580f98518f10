"""What every `stylesteer` subcommand shares: the user-error type."""

from __future__ import annotations


class UserError(Exception):
    """A problem with the user's input or environment: one clear line, exit code 2."""
