"""The exception hierarchy of ``hrl``.

Every error ``hrl`` raises on purpose derives from :class:`HrlError`, so callers can catch the
package's errors in one place. Errors from the Rust core arrive here through one conversion
(``rust/py/errors.rs``) that picks the class by the core error's kind. Classes that describe bad
values also derive from :class:`ValueError` (bad types from :class:`TypeError`), so generic
handlers keep working. All classes pickle with their extra fields, so they survive a trip back
from a worker process.
"""

from __future__ import annotations

__all__ = [
    "CheckpointError",
    "ConfigError",
    "DTypeError",
    "HrlError",
    "InvalidArgumentError",
    "LogParseError",
    "NonFiniteError",
    "RolloutError",
    "ShapeError",
    "SubmissionError",
]


class HrlError(Exception):
    """Root of every error ``hrl`` raises on purpose."""


class ShapeError(HrlError, ValueError):
    """An array has the wrong shape, rank or memory layout; the message names the argument."""


class DTypeError(HrlError, TypeError):
    """An array has an element type that cannot be used (or converted); names the argument."""


class InvalidArgumentError(HrlError, ValueError):
    """A scalar argument is outside its domain (e.g. ``gamma`` not in ``[0, 1]``)."""


class NonFiniteError(HrlError, ValueError):
    """A NaN or infinity where only finite numbers are allowed.

    Attributes:
        argument: name of the offending argument.
        index: position of the first offending element, e.g. ``(t, n)`` for a ``[T, N]`` array.
    """

    def __init__(self, message: str, argument: str | None = None, index: tuple[int, ...] = ()) -> None:
        super().__init__(message)
        self.argument = argument
        self.index = tuple(index)

    def __reduce__(self) -> tuple[type[NonFiniteError], tuple[str, str | None, tuple[int, ...]]]:
        return (type(self), (str(self), self.argument, self.index))


class LogParseError(HrlError, ValueError):
    """A log file is malformed or holds an impossible value.

    Attributes:
        path: the file at fault.
        line: 1-based number of the bad record, ``0`` when unknown: a physical line of a CSV
            file (the record's first), or a row of a parquet table (the message says "row").
        column: the column at fault, ``None`` when not known (e.g. a ragged CSV record).
        kind: what is wrong: ``csv``, ``utf8``, ``syntax``, ``inconsistent``, ``non_finite``,
            ``negative``, ``overflow`` or ``file`` (the kinds ``--skip-bad-rows`` counts).
    """

    def __init__(
        self,
        message: str,
        path: str | None = None,
        line: int = 0,
        column: str | None = None,
        kind: str = "file",
    ) -> None:
        super().__init__(message)
        self.path = path
        self.line = line
        self.column = column
        self.kind = kind

    def __reduce__(self) -> tuple[type[LogParseError], tuple[str, str | None, int, str | None, str]]:
        return (type(self), (str(self), self.path, self.line, self.column, self.kind))


class CheckpointError(HrlError):
    """A checkpoint is missing, incomplete, or does not match the model or config."""


class ConfigError(HrlError, ValueError):
    """A configuration value is invalid or inconsistent; the message names the field."""


class SubmissionError(HrlError):
    """A league submission cannot be built: its output exists (without ``force``), its name is not
    a Python class name, or the folder breaks a league rule (the message names the rule)."""


class RolloutError(HrlError, RuntimeError):
    """Too many rollout or validation worlds failed (crashed, raised or timed out).

    Attributes:
        phase: ``"rollout"`` or ``"validation"``.
        failed: ``(world name, error text)`` of each failed world.
        total: worlds attempted in that phase of the update.
    """

    def __init__(
        self, message: str, phase: str = "rollout", failed: tuple[tuple[str, str], ...] = (), total: int = 0
    ) -> None:
        super().__init__(message)
        self.phase = phase
        self.failed = tuple(failed)
        self.total = total

    def __reduce__(
        self,
    ) -> tuple[type[RolloutError], tuple[str, str, tuple[tuple[str, str], ...], int]]:
        return (type(self), (str(self), self.phase, self.failed, self.total))
