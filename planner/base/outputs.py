"""Safe output places: a command never loses a file it did not write, never writes through a link.

Folders (`report --out DIR`): the command fills a fresh temporary sibling `.DIR.tmp-<pid>-<random>` and swaps it in
with two renames, so DIR holds the old output or the new one, never half of each. DIR itself may be replaced only
when the planner made it: it holds the marker file MARKER, which lists what the planner wrote there, and nothing
else. Otherwise the command is refused with one line `error: DIR: --out: <why>` and every existing file stays:
- a symbolic link (never followed, whatever it points to);
- the current folder or one above it (`.`, `..`, `/`);
- a folder that holds one of the command's inputs (the report YAML beside it);
- something that is not a folder, or a folder holding anything the marker does not list (a user's own files, a
  folder the planner did not make). An empty folder is fine: there is nothing to lose.
The check runs before the work, and once more on the old folder after it was renamed aside and before it is
deleted, so a link or file put there in between is put back, not removed. Leftovers of killed runs
(`.DIR.tmp-<pid>-*`, `.DIR.old-<pid>-*` whose process is gone) are removed by the next run, and only when they hold
the marker (or nothing).

Files (`validate --markdown FILE`; later calibration files): write_file writes a temporary sibling and renames it
over FILE. FILE must not be a symbolic link, a folder or a device/pipe, must not be one of the command's inputs, and
when the caller says how to recognise its own files (`ours`), an existing non-empty FILE must be one of them.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import stat
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from planner.base.errors import PlannerError

MARKER = ".planner-output"
MARKER_HEAD = "written by python -m planner: the next run of the same command replaces this folder. Files it wrote:"
TEMPORARY = "*"  # the listing of a temporary folder: everything in it is the planner's
MAX_MARKER_BYTES = 1 << 20
SWAP_TRIES = 20


# ---------------------------------------------------------------- where

def target(arg: str | os.PathLike) -> Path:
    """Absolute path of an output argument, its folder resolved but its last part not (a link stays a link)."""
    absolute = Path(os.path.abspath(os.fspath(arg)))
    return Path(os.path.realpath(absolute.parent)) / absolute.name


def _refuse(why: str, arg: str, field: str) -> PlannerError:
    return PlannerError(why, file=arg, field=field)


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _names(items: Iterable[str], n: int = 3) -> str:
    items = sorted(items)
    return ", ".join(items[:n]) + (f" and {len(items) - n} more" if len(items) > n else "")


# ---------------------------------------------------------------- ownership

def write_marker(folder: Path, names: Iterable[str] | None = None) -> None:
    """Mark `folder` as the planner's: `names` are the files it wrote (None: a temporary folder, all of it)."""
    listing = [TEMPORARY] if names is None else sorted(n for n in names if n != MARKER)
    (folder / MARKER).write_text("\n".join([MARKER_HEAD, *listing]) + "\n")


def _listed(folder: Path) -> set[str] | None:
    """Names the folder's marker lists, or None when it has no marker the planner wrote."""
    marker = folder / MARKER
    try:
        if not stat.S_ISREG(os.lstat(marker).st_mode):
            return None
        with open(marker, "rb") as f:
            lines = f.read(MAX_MARKER_BYTES).decode("utf-8", "replace").splitlines()
    except OSError:
        return None
    return set(lines[1:]) if lines and lines[0] == MARKER_HEAD else None


def foreign(folder: Path, legacy: Callable[[Path], bool] | None = None) -> str | None:
    """Why `folder` (a real folder) may not be replaced, or None when all it holds is the planner's.
    `legacy` recognises an output folder written before markers existed."""
    try:
        entries = os.listdir(folder)
    except OSError as err:
        return f"cannot be read: {err.strerror or err}"
    if not entries:
        return None
    listed = _listed(folder)
    if listed is None:
        if legacy is not None and legacy(folder):
            return None
        return (f"is a folder the planner did not make (it holds {_names(entries)} and no {MARKER}); "
                "name a new or empty folder")
    if TEMPORARY in listed:
        return None
    extra = [e for e in entries if e != MARKER and (e not in listed or not _plain_file(folder / e))]
    if extra:
        return (f"holds files the planner did not write ({_names(extra)}); move them out or name a new folder")
    return None


def _plain_file(path: Path) -> bool:
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def folder_refusal(out: Path, inputs: Iterable[str | os.PathLike] = (),
                   legacy: Callable[[Path], bool] | None = None) -> str | None:
    """Why the output folder `out` (from `target`) may not be written, or None."""
    cwd = Path.cwd().resolve()
    if not out.name or _inside(cwd, out):
        return "is the current folder or one above it; name a new folder for the output"
    for f in inputs:
        source = Path(os.path.realpath(f))
        if _inside(source, out):
            return f"holds the input {f}; name a folder that does not hold the command's inputs"
    if os.path.islink(out):
        return f"is a symbolic link (to {os.readlink(out)}); the planner never writes through one: name a real folder"
    if not os.path.lexists(out):
        return None
    if not out.is_dir():
        return "exists and is not a folder"
    return foreign(out, legacy)


# ---------------------------------------------------------------- folders

def clean_leftovers(out: Path, legacy: Callable[[Path], bool] | None = None) -> None:
    """Temporary folders of runs into the same `out` that were killed (their process is gone), when marked ours;
    an old output set aside in one is removed only when it is the planner's too."""
    for p in out.parent.glob(f".{glob_escape(out.name)}.*-*"):
        m = re.fullmatch(rf"\.{re.escape(out.name)}\.(tmp|old)-(\d+)-\w+", p.name)
        if not m or p.is_symlink() or not p.is_dir() or _alive(int(m.group(2))):
            continue
        if _leftover_ours(p, legacy):
            shutil.rmtree(p, ignore_errors=True)


def _leftover_ours(folder: Path, legacy: Callable[[Path], bool] | None) -> bool:
    try:
        if not any(folder.iterdir()):
            return True  # killed before its marker was written
    except OSError:
        return False
    if _listed(folder) is None or foreign(folder) is not None:
        return False
    previous = folder / "previous"  # an old output renamed aside by a killed run, maybe not yet checked
    if not os.path.lexists(previous):
        return True
    return previous.is_dir() and not previous.is_symlink() and foreign(previous, legacy) is None


def glob_escape(name: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", name)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def _scratch(out: Path, kind: str) -> Path:
    folder = Path(tempfile.mkdtemp(prefix=f".{out.name}.{kind}-{os.getpid()}-", dir=out.parent))
    write_marker(folder)
    return folder


def write_folder(arg: str | os.PathLike, fill: Callable[[Path], None], *, field: str = "--out",
                 inputs: Iterable[str | os.PathLike] = (), legacy: Callable[[Path], bool] | None = None) -> Path:
    """Run `fill(tmp)` to write the whole output into a fresh temporary folder, then put it at `arg` (rules in the
    module docstring). Returns the output folder. Nothing at `arg` changes when fill raises or the rules refuse."""
    arg, inputs = os.fspath(arg), list(inputs)
    out = target(arg)
    why = folder_refusal(out, inputs, legacy)
    if why:
        raise _refuse(why, arg, field)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        clean_leftovers(out, legacy)
        tmp = _scratch(out, "tmp")
    except OSError as err:  # a parent that is a file, a read-only or missing mount: nothing was written
        raise _refuse(f"cannot write here: {err.strerror or err}", arg, field) from None
    try:
        fill(tmp)
        write_marker(tmp, os.listdir(tmp))
        _swap_in(tmp, out, arg, field, legacy)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _swap_in(tmp: Path, out: Path, arg: str, field: str, legacy: Callable[[Path], bool] | None) -> None:
    """Replace `out` by the complete folder `tmp` with two renames. The old `out` is checked again once it is aside,
    and put back untouched if it is not the planner's. If the second rename fails, the old one is put back first."""
    for _ in range(SWAP_TRIES):
        holder = aside = None
        if os.path.lexists(out):
            holder = _scratch(out, "old")
            aside = holder / "previous"
            try:
                os.replace(out, aside)
            except FileNotFoundError:  # another run of the same command moved it first
                aside = None
            if aside is not None:
                why = "is a symbolic link" if os.path.islink(aside) else (
                    "exists and is not a folder" if not aside.is_dir() else foreign(aside, legacy))
                if why:
                    _put_back(aside, out, holder, why, arg, field)
        try:
            os.replace(tmp, out)
        except OSError:  # another run put a folder back in between: restore ours if still needed, try again
            if aside is not None and not os.path.lexists(out):
                os.replace(aside, out)
            if holder is not None:
                shutil.rmtree(holder, ignore_errors=True)
            time.sleep(0.05)
            continue
        if holder is not None:
            shutil.rmtree(holder, ignore_errors=True)
        return
    raise _refuse("could not replace it (another run keeps writing it)", arg, field)


def _put_back(aside: Path, out: Path, holder: Path, why: str, arg: str, field: str) -> None:
    """Something not ours appeared at `out` while the output was built: return it and refuse."""
    if not os.path.lexists(out):
        os.replace(aside, out)
        shutil.rmtree(holder, ignore_errors=True)
        raise _refuse(f"{why} (it appeared while the output was written; left in place)", arg, field)
    os.unlink(holder / MARKER)  # not ours any more: no later run may remove it
    raise _refuse(f"{why} (it appeared while the output was written; kept at {aside})", arg, field)


# ---------------------------------------------------------------- single files

def write_file(arg: str | os.PathLike, data: str | bytes, *, field: str, inputs: Iterable[str | os.PathLike] = (),
               ours: Callable[[bytes], bool] | None = None) -> Path:
    """Write one output file safely: checks (module docstring), then a temporary sibling renamed over it.
    `ours(first_bytes)` recognises a file this command wrote before; without it any regular file is replaced.
    Returns the path written. Refusals and write errors are one-line PlannerErrors naming `arg` and `field`."""
    arg = os.fspath(arg)
    path = target(arg)
    why = file_refusal(path, inputs, ours)
    if why:
        raise _refuse(why, arg, field)
    payload = data.encode() if isinstance(data, str) else data
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _clean_file_leftovers(path)
        tmp = path.parent / f".{path.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o666)
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
        if os.path.lexists(path) and not os.path.islink(path):
            os.chmod(tmp, stat.S_IMODE(os.lstat(path).st_mode))
        os.replace(tmp, path)  # replaces a link put there meanwhile, never writes through it
        tmp = None
    except OSError as err:
        raise _refuse(f"cannot write: {err.strerror or err}", arg, field) from None
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass
    return path


def file_refusal(path: Path, inputs: Iterable[str | os.PathLike] = (),
                 ours: Callable[[bytes], bool] | None = None) -> str | None:
    """Why the output file `path` (from `target`) may not be written, or None."""
    if not path.name:
        return "is not a file name"
    for f in inputs:
        if Path(os.path.realpath(f)) == path:
            return f"is the input {f}; name another file"
    if os.path.islink(path):
        return f"is a symbolic link (to {os.readlink(path)}); the planner never writes through one: name a real file"
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError as err:
        return f"cannot be checked: {err.strerror or err}"
    if stat.S_ISDIR(st.st_mode):
        return "is a folder; name a file"
    if not stat.S_ISREG(st.st_mode):
        return "is not a regular file (a device, pipe or socket); name a regular file"
    if ours is not None and st.st_size:
        try:
            with open(path, "rb") as f:
                head = f.read(4096)
        except OSError as err:
            return f"cannot be read: {err.strerror or err}"
        if not ours(head):
            return "exists and was not written by the planner; name a new file (or move this one)"
    return None


def _clean_file_leftovers(path: Path) -> None:
    """Temporary files of killed writes of the same file."""
    for p in path.parent.glob(f".{glob_escape(path.name)}.tmp-*"):
        m = re.fullmatch(rf"\.{re.escape(path.name)}\.tmp-(\d+)-[0-9a-f]{{8}}", p.name)
        if m and _plain_file(p) and not _alive(int(m.group(1))):
            try:
                os.unlink(p)
            except OSError:
                pass
