"""One error type for every bad input: the CLI prints it as a single `error: ...` line."""


class PlannerError(Exception):
    """A user-facing error that names the file and the field at fault.

    `str(err)` is the one line the CLI prints after `error: `.
    """

    def __init__(self, message: str, *, file: str | None = None, field: str | None = None):
        self.message = message
        self.file = file
        self.field = field
        where = ": ".join(part for part in (file, field) if part)
        super().__init__(f"{where}: {message}" if where else message)
