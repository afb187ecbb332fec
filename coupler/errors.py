"""Error types shared by every stage.

A user's mistake is an :class:`InputError` carrying every :class:`Problem` found, each naming the
file, the row (as a spreadsheet shows it: the header is row 1) and the column. Messages must never
echo personal data: no cell of a personal table, not even the pseudonymous household id.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


class CouplerError(Exception):
    """Base class of every error coupler raises on purpose."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input: where it is and what is wrong."""

    file: str
    message: str
    row: int | None = None
    column: str | None = None

    def __str__(self) -> str:
        where = [self.file]
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.column is not None:
            where.append(f"column '{self.column}'")
        return f"{', '.join(where)}: {self.message}"


class InputError(CouplerError):
    """One or more problems in the user's input; nothing has been written."""

    def __init__(self, problems: Iterable[Problem] | Problem | str):
        if isinstance(problems, str):
            problems = [Problem(file="<input>", message=problems)]
        elif isinstance(problems, Problem):
            problems = [problems]
        self.problems: tuple[Problem, ...] = tuple(problems)
        super().__init__(self.render())

    def render(self, limit: int = 50) -> str:
        lines = [str(p) for p in self.problems[:limit]]
        if len(self.problems) > limit:
            lines.append(f"... and {len(self.problems) - limit} more problems")
        return "\n".join(lines)


class PolicyError(InputError):
    """A rejected policy value, e.g. ``policy [hard] radius_km must be > 0; got -5``."""
