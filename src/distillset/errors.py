"""The one exception type that means "the user gave us something we cannot use".

The command line turns a :class:`DistillsetError` into a single line on stderr and exit code 2, so
every check of user input raises it with a message that names the problem and how to fix it.
Anything else escaping is a bug and keeps its traceback.
"""

from __future__ import annotations


class DistillsetError(Exception):
    """Bad input (file, name, shape, value): the message is shown to the user as it is."""


def unknown_name(kind: str, name: str, valid: list[str] | tuple[str, ...]) -> DistillsetError:
    """A uniform message for an unknown registry name that lists what would have worked."""
    return DistillsetError(f"unknown {kind} '{name}'; valid {kind}s: {', '.join(sorted(valid))}")
