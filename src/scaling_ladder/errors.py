"""Errors that tell the user where the problem is and how to fix it."""

from __future__ import annotations


class LadderError(Exception):
    """Base class of every error scaling-ladder raises on purpose."""


class InputError(LadderError, ValueError):
    """Bad input data: names the file, the line, the column, the problem and the fix.

    Text files are located by ``line`` (the header is line 1), tables by ``row``.
    ``str(err)`` is one line, e.g.
    ``runs.csv, line 14, column "tokens": "1.2e" is not a number; fix it or remove the row``.
    """

    def __init__(
        self,
        path: str | None,
        problem: str,
        *,
        line: int | None = None,
        row: int | None = None,
        column: str | None = None,
        fix: str | None = None,
        more: int = 0,
    ) -> None:
        self.path, self.line, self.row, self.column = path, line, row, column
        self.problem, self.fix, self.more = problem, fix, more
        super().__init__(self._text())

    def _text(self) -> str:
        where = [str(self.path)] if self.path else []  # a flag's problem names no file
        if self.line is not None:
            where.append(f"line {self.line}")
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.column is not None:
            where.append(f'column "{self.column}"')
        text = ", ".join(where) + ": " + self.problem if where else self.problem
        if self.more:
            text += f" (and {self.more} more row{'s' if self.more > 1 else ''} like it)"
        if self.fix:
            text += f"; {self.fix}"
        return text

    def __reduce__(self):  # picklable, so an error in a worker process reaches the caller
        return (_input_error, (self.path, self.problem, self.line, self.row, self.column,
                               self.fix, self.more))

    def in_file(self, path: str | None) -> InputError:
        """The same error, naming ``path`` when it named no file yet."""
        if self.path is None and path:
            self.path = path
            self.args = (self._text(),)
        return self


class Problems(LadderError):
    """Every problem found by a check made before work starts, so a user fixes them all in one
    go: ``str(err)`` is the summary line, then one indented line per problem (a single problem
    is its own one line, as DESIGN.md asks of bad input)."""

    def __init__(self, summary: str, problems: list[str]) -> None:
        self.summary, self.problems = summary, list(problems)
        lines = self.problems if len(self.problems) == 1 else [
            summary, *(f"  - {p}" for p in self.problems)]
        super().__init__("\n".join(lines))

    def __reduce__(self):
        return (Problems, (self.summary, self.problems))


def _input_error(path, problem, line, row, column, fix, more) -> InputError:
    return InputError(path, problem, line=line, row=row, column=column, fix=fix, more=more)
