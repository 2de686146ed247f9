"""User-facing errors: the CLI prints them as one line and exits with code 2."""


class DlkitError(Exception):
    """An error caused by the user's input or environment, not by a bug.

    The CLI prints `Error: <message>` and exits with code 2, without a traceback.
    """


class InvalidInputError(DlkitError):
    """A file given as input is corrupt, empty, of the wrong type or of the wrong shape."""


class MissingSourceError(DlkitError):
    """A data or weights source is not installed; the message names the install command."""
