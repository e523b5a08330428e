"""What every command shares: `key=value` arguments, and errors as one line with an exit status.

An error in what the user gave (arguments, config values, data rows, paths) ends a command with
one `visurf...: message` line on stderr and status 2, with no traceback: the input is at fault,
and the message names what was wrong. A run that finished without all of its summary ends with
status 3. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

BAD_INPUT = 2
INCOMPLETE = 3


class UsageError(ValueError):
    """Arguments that do not make a command."""


def input_errors() -> tuple[type[BaseException], ...]:
    """The exceptions that mean the user's input is at fault."""
    from visurf.config.validate import ConfigError
    from visurf.data.errors import DataError
    from visurf.runs.checkpoints import ResumeError

    return (UsageError, ConfigError, ResumeError, DataError, FileNotFoundError)


def key_values(argv: list[str], own: tuple[str, ...]) -> tuple[dict[str, str], list[str]]:
    """Split `key=value` arguments into the command's own keys and the rest (config overrides)."""
    mine, rest = {}, []
    for arg in argv:
        key, sep, value = arg.partition("=")
        if not sep or not key:
            raise UsageError(f"arguments are key=value; got {arg!r}")
        if key in own:
            mine[key] = value
        else:
            rest.append(arg)
    return mine, rest


def fail(command: str, err: BaseException, status: int = BAD_INPUT):
    print(f"{command}: {err}", file=sys.stderr)
    raise SystemExit(status)


@contextmanager
def reported(command: str, extra: tuple[type[BaseException], ...] = ()) -> Iterator[None]:
    """Run the body; an input error ends the command with one line and status 2 (see above)."""
    from visurf.runs.summary import IncompleteRunError

    try:
        yield
    except IncompleteRunError as err:
        fail(command, err, INCOMPLETE)
    except (*input_errors(), *extra) as err:
        fail(command, err)
