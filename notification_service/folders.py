"""The folders the server writes (data, log): created, and proved writable by writing.

``os.access`` says nothing about a full disk or a read-only mount, and the
process may run as root, for whom permission bits mean little: the only
honest check is to write. :func:`prepare` runs at start-up and turns every
failure into a :class:`~.errors.StartupError` that names the folder and says
what to do; :func:`probe` is the same write, for ``/health``. Nothing here
deletes anything but its own probe file.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from .errors import StartupError

PROBE_NAME = ".write-probe"


def probe(folder: Path) -> None:
    """Write, sync and remove a small file in ``folder``; OSError if that fails."""
    path = folder / f"{PROBE_NAME}-{os.getpid()}"
    try:
        with open(path, "wb") as file:
            file.write(b"probe\n")
            file.flush()
            os.fsync(file.fileno())
    finally:
        try:
            path.unlink()
        except FileNotFoundError:
            pass


def sentence(error: OSError, folder: Path, what: str, flag: str) -> str:
    """What went wrong with ``folder`` and what to do, in one sentence."""
    where = folder.resolve()
    if error.errno == errno.ENOSPC or error.errno == errno.EDQUOT:
        return (f"The disk holding the {what} {where} is full: free some space, or choose "
                f"another folder with {flag}.")
    if isinstance(error, (FileExistsError, NotADirectoryError)) or error.errno in (
            errno.EEXIST, errno.ENOTDIR):
        return (f"The {what} {where} cannot be created: {error.filename or where} is a file, "
                f"not a folder. Move that file away, or choose another folder with {flag}.")
    if error.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return (f"The {what} {where} is not writable ({error.strerror}): give this user "
                f"write access, or choose another folder with {flag}.")
    return f"The {what} {where} cannot be used ({error.strerror or error}): choose another with {flag}."


def prepare(folder: Path, what: str, flag: str) -> Path:
    """Create ``folder`` (with its parents) and prove it writable; StartupError otherwise."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if not folder.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, "not a directory", str(folder))
        probe(folder)
    except OSError as error:
        raise StartupError(sentence(error, folder, what, flag)) from None
    return folder
