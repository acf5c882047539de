"""Private files: a ledger or witness folder belongs to its owner alone.

The folder is created ``0700`` and every file holding a secret ``0600``, *by the call that creates
it* (the mode goes to ``mkdir(2)`` / ``open(2)``), so there is no moment at which it is wider: a
``chmod`` afterwards would leave a window in which another local user could open the file and keep
the descriptor. SQLite databases are created empty with mode ``0600`` before SQLite opens them;
SQLite gives the ``-wal``, ``-shm`` and ``-journal`` files it creates the mode of the database
file, so they are private too.

:func:`check_private` lists what is wider than that in an existing folder (made before this rule,
or changed by hand) and says how to fix it; :func:`fix_private` applies the fix (``chmod``), which
``ailedger doctor --fix`` runs.
"""

from __future__ import annotations

import fnmatch
import os
import sqlite3
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "PRIVATE_DIR_MODE",
    "PRIVATE_FILE_MODE",
    "SECRET_DIRS",
    "SECRET_FILES",
    "PermissionProblem",
    "check_private",
    "connect_private",
    "create_private_file",
    "fix_private",
    "is_secret",
    "private_dir",
    "write_private",
]

PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)

# Files (paths relative to a ledger or witness folder, fnmatch patterns) that hold secrets or
# personal data: keys, the subject keys and encrypted payloads, databases of API key hashes and
# witness state, dataset salts, and the config (a PostgreSQL DSN may carry a password).
SECRET_FILES = (
    "log.key",
    "config.json",
    "identities/*",
    "inference/*",
    "witnesses.db*",
    "content/watermark.key",
    "*/secret",
    "witness.key",
    "witness.json",
    "state.db*",
    "*.key",
    "*.key.*",
)


# Folders (besides the root) that hold secrets and must themselves be 0700.
SECRET_DIRS = ("identities", "inference", "inference/*")


def is_secret(relpath: str) -> bool:
    rel = relpath.replace(os.sep, "/")
    return any(fnmatch.fnmatchcase(rel, pat) for pat in SECRET_FILES)


def _is_secret_dir(relpath: str) -> bool:
    rel = relpath.replace(os.sep, "/")
    return not rel or any(fnmatch.fnmatchcase(rel, pat) for pat in SECRET_DIRS)


def private_dir(path: str | os.PathLike[str]) -> Path:
    """Create ``path`` (and missing parents) with the last component ``0700``; an existing folder
    is left as it is (see :func:`check_private`)."""
    p = Path(path)
    p.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
    return p


def create_private_file(path: str | os.PathLike[str]) -> None:
    """Create ``path`` empty with mode 0600 unless it exists (an existing file is not touched)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | _CLOEXEC, PRIVATE_FILE_MODE)
    os.close(fd)


def connect_private(path: str | os.PathLike[str], **kwargs: Any) -> sqlite3.Connection:
    """``sqlite3.connect`` on a database file created 0600 first (so its -wal/-shm are 0600 too)."""
    create_private_file(path)
    con: sqlite3.Connection = sqlite3.connect(path, **kwargs)
    return con


def write_private(path: str | os.PathLike[str], data: bytes | str, *, durable: bool = False) -> None:
    """Replace ``path`` atomically by a file created 0600 holding ``data``."""
    p = Path(path)
    tmp = p.with_name(f".{p.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | _CLOEXEC, PRIVATE_FILE_MODE)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, p)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@dataclass(frozen=True)
class PermissionProblem:
    path: str
    kind: str  # "folder" or "file"
    mode: int
    want: int

    @property
    def fix(self) -> str:
        return f"chmod {self.want:o} {_quote(self.path)}"

    @property
    def message(self) -> str:
        who = "group and others" if self.mode & 0o070 and self.mode & 0o007 else (
            "its group" if self.mode & 0o070 else "every local user")
        what = "can list and enter" if self.kind == "folder" else "can access"
        return f"{self.kind} {self.path} is mode {self.mode:04o}: {who} {what} it (fix: {self.fix})"

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "kind": self.kind, "mode": f"{self.mode:04o}", "want": f"{self.want:04o}",
                "fix": self.fix, "message": self.message}


def _quote(p: str) -> str:
    import shlex

    return shlex.quote(p)


def check_private(root: str | os.PathLike[str]) -> list[PermissionProblem]:
    """Folders and secret-bearing files under ``root`` that the group or others may access.

    The root folder and the folders of :data:`SECRET_DIRS` must be 0700 (no group/other bits);
    files matching :data:`SECRET_FILES` must have no group/other bits. Other files (published
    things: the log's vkey, model manifests) are not listed: with the root folder private, no
    other local user can reach them anyway. Symbolic links are not followed."""
    base = Path(root)
    out: list[PermissionProblem] = []

    def look(p: Path, rel: str) -> None:
        try:
            st = p.lstat()
        except FileNotFoundError:
            return
        if stat.S_ISLNK(st.st_mode):
            return
        mode = stat.S_IMODE(st.st_mode)
        if stat.S_ISDIR(st.st_mode):
            if mode & 0o077 and _is_secret_dir(rel):
                out.append(PermissionProblem(str(p), "folder", mode, mode & 0o700 | PRIVATE_DIR_MODE))
        elif stat.S_ISREG(st.st_mode) and rel and is_secret(rel) and mode & 0o077:
            out.append(PermissionProblem(str(p), "file", mode, mode & 0o700 | PRIVATE_FILE_MODE))

    look(base, "")
    for dirpath, dirnames, filenames in os.walk(base):
        for name in [*dirnames, *filenames]:
            p = Path(dirpath) / name
            look(p, str(p.relative_to(base)))
    return out


def fix_private(problems: Iterable[PermissionProblem]) -> int:
    """Take the group and other bits away from each path; return how many were changed."""
    n = 0
    for pr in problems:
        os.chmod(pr.path, pr.want)  # check_private never lists a symbolic link
        n += 1
    return n
