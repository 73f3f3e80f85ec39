"""Small I/O helpers shared by every stage: atomic writes and JSON."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import IO, Any, Iterator

import numpy as np


@contextlib.contextmanager
def file_lock(path: str | os.PathLike) -> Iterator[None]:
    """Exclusive advisory lock (``flock`` on ``<path>.lock``) around a read-modify-write of ``path``
    by processes that may run at the same time (make -j, shards, Slurm tasks); where ``fcntl``
    does not exist (Windows) there is no lock."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


@contextlib.contextmanager
def process_lock(path: str | os.PathLike, what: str, shared: bool = False) -> Iterator[None]:
    """Hold an advisory ``flock`` on ``path`` for the duration, or fail at once with a
    :class:`~reactcli.errors.BusyError` "<what> is being written by another process (pid N)".

    An exclusive holder writes its pid into the file (what the message reports); ``shared``
    holders may run together. The lock goes with the process (a killed run leaves no stale lock).
    Where ``fcntl`` does not exist (Windows) there is no lock."""
    from reactcli.errors import BusyError

    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        except (BlockingIOError, PermissionError):
            pid = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            raise BusyError(f"{what} is being written by another process (pid {pid}); wait for it to end "
                            f"(lock {path})") from None
        if not shared:
            os.ftruncate(fd, 0)
            os.pwrite(fd, str(os.getpid()).encode(), 0)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def check_name(name: str, option: str) -> str:
    """``name`` if it can be one file or folder name (a run, a stage, a split), else a
    :class:`~reactcli.errors.ConfigError` naming ``option``: not empty, no ``/`` or ``\\``,
    not ``.``/``..``, no control characters, not starting with ``-`` or ``.``, at most 200 bytes."""
    from reactcli.errors import ConfigError

    bad = None
    if not name or not name.strip():
        bad = "is empty"
    elif "/" in name or "\\" in name:
        bad = "contains a path separator"
    elif name in (".", "..") or name.startswith((".", "-")):
        bad = "starts with '.' or '-'"
    elif any(ord(c) < 32 or ord(c) == 127 for c in name):
        bad = "contains a control character"
    elif len(name.encode("utf-8", "surrogateescape")) > 200:
        bad = "is longer than 200 bytes"
    if bad:
        raise ConfigError(f"{option} {name!r}: {bad}; it names a file or folder")
    return name


def check_output(path: str | os.PathLike, option: str, kind: str = "file") -> Path:
    """Check an output path before any work: a ``file`` path must not be a folder, a ``dir`` path
    must not be a file, and the nearest existing folder above it must be a writable folder.
    Raises :class:`~reactcli.errors.ConfigError` naming ``option`` and the path."""
    from reactcli.errors import ConfigError

    p = Path(path)
    if kind == "file" and (p.is_dir() or p.name in ("", ".", "..")):
        raise ConfigError(f"{option} {p}: is a folder; expected a file to write")
    if kind == "dir" and p.exists() and not p.is_dir():
        raise ConfigError(f"{option} {p}: exists and is not a folder")
    anc = p.absolute().parent if kind == "file" else p.absolute()
    while not anc.exists() and anc != anc.parent:
        anc = anc.parent
    if not anc.is_dir():
        raise ConfigError(f"{option} {p}: {anc} is a file, not a folder")
    if not os.access(anc, os.W_OK):
        raise ConfigError(f"{option} {p}: {anc} is not writable")
    return p


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success rename it over ``path``.

    On any exception the temporary file is removed and ``path`` is left untouched, so an
    interrupted run never leaves a half-written file under the final name.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{path.name}.", suffix=suffix if suffix is not None else ".tmp" + path.suffix,
        dir=path.parent,
    )
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """A temporary folder beside ``path`` to fill; when the block ends without error it is renamed
    to ``path`` (an existing ``path`` is swapped out first and removed), otherwise it is removed, so
    a failure leaves no trace. An existing ``path`` without ``overwrite`` is an
    :class:`~reactcli.errors.InputError`."""
    from reactcli.errors import InputError

    final = Path(path)
    if final.exists() and not overwrite:
        raise InputError(f"{final}: exists; choose another --run or pass --overwrite")
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.new-", dir=final.parent))
    try:
        yield tmp
        if final.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{final.name}.old-", dir=final.parent))
            os.replace(final, old / "run")
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", **kwargs: Any) -> Iterator[IO]:
    """``open()`` that writes a temp file and renames it into place on success."""
    with atomic_path(path) as tmp:
        with open(tmp, mode, **kwargs) as fh:
            yield fh


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save(obj, path)`` atomically (temp file + rename), byte-identical for equal ``obj``.

    ``torch.save`` names the records inside its zip archive after the file it is given, so saving
    to a random temp name made two saves of the same weights differ, and with them every SHA-1
    that records a checkpoint as a parent (a finished PWSG run then looked retrained from other
    parents). Writing through an open file handle gives the fixed archive name ``archive``."""
    import torch

    path = Path(path)
    with atomic_path(path, suffix=".tmp" + path.suffix) as tmp:
        with open(tmp, "wb") as fh:
            torch.save(obj, fh)
    return path


class _Encoder(json.JSONEncoder):
    def default(self, o: Any) -> Any:  # noqa: D401 - json hook
        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, np.ndarray):
            return o.tolist()
        if isinstance(o, Path):
            return str(o)
        return super().default(o)


def dumps(obj: Any, **kwargs: Any) -> str:
    """JSON with numpy scalars/arrays and paths handled."""
    return json.dumps(obj, cls=_Encoder, **kwargs)


def settings_fingerprint(settings: Any) -> str:
    """Short stable hash (16 hex digits) of JSON-able settings: equal settings, equal fingerprint.

    Used to tell whether stored outputs or a resumable run were made with the same settings."""
    return hashlib.sha1(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _sha1_file(path: Path, h: "hashlib._Hash") -> None:
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)


def file_stamp(path: str | os.PathLike) -> dict[str, Any]:
    """What identifies the content of an input file (or a folder of frames): ``{"size", "mtime_ns",
    "sha1"}``. ``size`` and ``mtime_ns`` make the check of an unchanged file cheap
    (:func:`stamp_changed`); ``sha1`` is the content digest that decides when they differ. A folder
    is hashed over its files' relative names and contents, in name order."""
    path = Path(path)
    h = hashlib.sha1()
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file())
        size = 0
        mtime = path.stat().st_mtime_ns
        for f in files:
            st = f.stat()
            size += st.st_size
            mtime = max(mtime, st.st_mtime_ns)
            h.update(str(f.relative_to(path)).encode() + b"\0")
            _sha1_file(f, h)
        return {"size": size, "mtime_ns": mtime, "sha1": h.hexdigest()}
    st = path.stat()
    _sha1_file(path, h)
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha1": h.hexdigest()}


def stamp_changed(stamp: dict[str, Any] | None, path: str | os.PathLike) -> bool:
    """Whether ``path`` no longer has the content ``stamp`` (from :func:`file_stamp`) recorded.

    Equal size and mtime count as unchanged without reading the file; otherwise the content
    digest decides (a file copied or touched with the same bytes is unchanged)."""
    if not stamp:
        return False  # nothing recorded (written by an older reactcli): cannot tell
    path = Path(path)
    if not path.exists():
        return True
    if _quick_stamp(path) == (stamp.get("size"), stamp.get("mtime_ns")):
        return False
    return file_stamp(path)["sha1"] != stamp.get("sha1")


def _quick_stamp(path: Path) -> tuple[int, int]:
    if not path.is_dir():
        st = path.stat()
        return st.st_size, st.st_mtime_ns
    size, mtime = 0, path.stat().st_mtime_ns
    for f in path.rglob("*"):
        if f.is_file():
            st = f.stat()
            size += st.st_size
            mtime = max(mtime, st.st_mtime_ns)
    return size, mtime


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON, atomically."""
    with atomic_open(path, "w", encoding="utf-8") as fh:
        fh.write(dumps(obj, indent=2, sort_keys=False))
        fh.write("\n")


def save_npy(path: str | os.PathLike, array: np.ndarray) -> None:
    """``np.save`` atomically."""
    with atomic_path(path, suffix=".tmp.npy") as tmp:
        np.save(tmp, array)
