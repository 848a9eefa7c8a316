"""One error type for every bad input: the CLI prints it as a single `error: ...` line."""

import re

# characters that would break the one line (newlines, carriage returns, other C0/C1 controls, Unicode line and
# paragraph separators) are shown escaped; each part is shortened so a 1 MB name still gives a readable line
_BREAKS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
MAX_PART_CHARS = 2000


def one_line(text: str, limit: int = MAX_PART_CHARS) -> str:
    text = _BREAKS.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), str(text))
    return text if len(text) <= limit else f"{text[:limit // 2]}...{text[-limit // 4:]}"


class PlannerError(Exception):
    """A user-facing error that names the file and the field at fault.

    `str(err)` is the one line the CLI prints after `error: `; `message`, `file` and `field` keep the raw text.
    """

    def __init__(self, message: str, *, file: str | None = None, field: str | None = None):
        self.message = message
        self.file = file
        self.field = field
        where = ": ".join(one_line(part, 300) for part in (file, field) if part)
        text = one_line(message)
        super().__init__(f"{where}: {text}" if where else text)


def resolve_named(load, name, file: str, field: str, keep_profile_file: bool = True):
    """`load(name)` for a profile that an input file names; a refusal is reported as this file's field (a
    refusal that already names a file, the profile's own, stays as it is unless keep_profile_file is False)."""
    try:
        return load(name)
    except PlannerError as err:
        if err.file and keep_profile_file:
            raise
        raise PlannerError(err.message, file=file, field=field) from None
