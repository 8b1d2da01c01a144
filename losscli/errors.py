"""The typed errors of the core: usage errors and unreadable input (both exit 2)."""

from __future__ import annotations

from losscli.printable import printable


class LossCliError(Exception):
    """Base of the errors that end a command with exit code 2 and one line on stderr."""

    def __init__(self, message: str, tip: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.tip = tip

    def line(self) -> str:
        """The one line printed on stderr (control characters in names escaped)."""
        line = f"{self.message} (tip: {self.tip})" if self.tip else self.message
        return printable(line)

    def __reduce__(self) -> tuple[object, ...]:
        """Pickled with its attributes, whatever the subclass's arguments: an error raised
        on a Dask worker reaches the client as itself."""
        return (_rebuilt, (type(self), self.args, dict(self.__dict__)))


def _rebuilt(
    kind: type[LossCliError], args: tuple[object, ...], state: dict[str, object]
) -> LossCliError:
    error = kind.__new__(kind)
    Exception.__init__(error, *args)
    error.__dict__.update(state)
    return error


class UsageError(LossCliError):
    """The command line cannot work: an unknown loss, an option that does not apply, ..."""


class UnsupportedDtype(UsageError):
    """torch has no CPU kernel for the loss in the compute dtype asked for (``--dtype
    float16`` for ctc); the same inputs work in float32.

    Attributes:
        dtype: the compute dtype without a kernel.
    """

    def __init__(self, message: str, dtype: str) -> None:
        super().__init__(message)
        self.dtype = dtype


class LoadError(LossCliError):
    """An input cannot be read: missing, corrupt, hostile, or without data.

    Attributes:
        source: the file (or ``-``, or ``inline``) the message is about.
    """

    def __init__(self, source: str, problem: str, tip: str = "") -> None:
        # "z.npz has no array 'b'" reads as a sentence; "big.npy: the header declares ..." needs
        # the colon. A problem that starts with a verb joins with a space.
        joiner = " " if problem.startswith(_VERB_OPENINGS) else ": "
        super().__init__(f"{source}{joiner}{problem}", tip)
        self.source = source
        self.problem = problem


_VERB_OPENINGS = (
    "is ",
    "has ",
    "holds ",
    "cannot ",
    "does ",
    "looks ",
    "declares ",
    "matches ",
    "failed ",
)
