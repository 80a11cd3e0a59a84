"""Where files live and how they appear: local paths or ``s3://`` URIs, written atomically.

Local files are written to a temp file and renamed; an S3 object only becomes visible when its
upload completes, which is the same guarantee. The S3 endpoint (MinIO, moto) comes from
``AWS_ENDPOINT_URL`` and credentials from the usual ``AWS_*`` variables, never from params.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pyarrow.fs as pafs

from lowlight.errors import DatasetError, OutputError

Location = str | Path
COPY_CHUNK = 8 << 20  # bytes per read when copying from S3: whole RAW files never sit in memory
_UMASK = os.umask(0o022)
os.umask(_UMASK)


def is_remote(loc: Location) -> bool:
    return "://" in str(loc)


def join(loc: Location, *parts: str) -> Location:
    """``loc / parts`` that keeps a URI a URI."""
    if is_remote(loc):
        return posixpath.join(str(loc), *parts)
    return Path(loc).joinpath(*parts)


def resolve(loc: Location) -> tuple[pafs.FileSystem, str]:
    """(pyarrow filesystem, path inside it) for a local path or an ``s3://`` URI."""
    if is_remote(loc):
        return pafs.FileSystem.from_uri(str(loc))
    return pafs.LocalFileSystem(), os.path.abspath(loc)


def exists(loc: Location) -> bool:
    fs, path = resolve(loc)
    return fs.get_file_info(path).type != pafs.FileType.NotFound


def read_bytes(loc: Location) -> bytes:
    fs, path = resolve(loc)
    with fs.open_input_stream(path) as stream:
        return stream.read()


def list_files(loc: Location, suffix: str = "") -> list[str]:
    """Files directly in folder ``loc`` whose names end with ``suffix``, sorted, as locations."""
    fs, path = resolve(loc)
    infos = fs.get_file_info(pafs.FileSelector(path, allow_not_found=True))
    names = sorted(
        posixpath.basename(i.path)
        for i in infos
        if i.type == pafs.FileType.File and i.path.endswith(suffix)
    )
    return [str(join(loc, name)) for name in names]


def remove(loc: Location) -> None:
    fs, path = resolve(loc)
    fs.delete_file(path)


def make_dirs(loc: Location) -> None:
    fs, path = resolve(loc)
    fs.create_dir(path, recursive=True)


def copy_file(source: Location, dest: Location) -> None:
    """One file from ``source`` to ``dest`` (local or S3), the destination appearing whole."""
    fs, path = resolve(source)
    with fs.open_input_stream(path) as src, atomic_path(dest) as tmp, open(tmp, "wb") as dst:
        shutil.copyfileobj(src, dst, COPY_CHUNK)


def list_tree(loc: Location, skipped: list[tuple[str, str]] | None = None) -> list[str]:
    """Every file under folder ``loc`` (any depth) as sorted relative POSIX paths.

    Local folders follow links to folders once (a link loop is not walked again and again);
    what is not a file (folders, broken or looping links) is appended to ``skipped`` as
    (relative path, what it is), for the caller to name what it leaves out.
    """
    if not is_remote(loc):
        return _walk(Path(loc), skipped if skipped is not None else [])
    fs, path = resolve(loc)
    infos = fs.get_file_info(pafs.FileSelector(path, recursive=True, allow_not_found=True))
    return sorted(posixpath.relpath(i.path, path) for i in infos if i.type == pafs.FileType.File)


def list_suffixed(loc: Location, suffixes: frozenset[str] | set[str]) -> list[str]:
    """The files under ``loc`` whose suffix (any case) is one of ``suffixes``, as ``list_tree``
    gives them; entries with such a name that are not files, and broken or looping links, are
    named in a warning (a user's folder never loses something without a word)."""
    import logging

    skipped: list[tuple[str, str]] = []
    files = [n for n in list_tree(loc, skipped) if posixpath.splitext(n)[1].lower() in suffixes]
    for name, what in skipped:
        if what != "a folder" or posixpath.splitext(name)[1].lower() in suffixes:
            logging.getLogger(__name__).warning("%s: skipped, %s, not a file", join(loc, name),
                                                what)  # fmt: skip
    return files


def _bad_link(path: str) -> str:
    import errno

    try:
        os.stat(path)
    except OSError as exc:
        return "a link loop" if exc.errno == errno.ELOOP else "a broken link"
    return "a link to neither a file nor a folder"


def _walk(root: Path, skipped: list[tuple[str, str]]) -> list[str]:
    files: list[str] = []
    seen: set[tuple[int, int]] = set()

    def visit(folder: Path, prefix: str) -> None:
        info = folder.stat()
        if (info.st_dev, info.st_ino) in seen:
            skipped.append((prefix.rstrip("/"), "a link loop (a folder already listed)"))
            return
        seen.add((info.st_dev, info.st_ino))
        for entry in sorted(os.scandir(folder), key=lambda e: e.name):
            rel = prefix + entry.name
            try:
                is_dir, is_file = entry.is_dir(), entry.is_file()
            except OSError:  # a link loop: too many levels of symbolic links
                skipped.append((rel, "a link loop"))
                continue
            if is_file:
                files.append(rel)
            elif is_dir:
                skipped.append((rel, "a folder"))
                visit(Path(entry.path), rel + "/")
            elif entry.is_symlink():
                skipped.append((rel, _bad_link(entry.path)))

    if root.is_dir():
        visit(root, "")
    return sorted(files)


def parent(loc: Location) -> Location:
    return posixpath.dirname(str(loc).rstrip("/")) if is_remote(loc) else Path(loc).parent


def is_dir(loc: Location) -> bool:
    fs, path = resolve(loc)
    return fs.get_file_info(path).type == pafs.FileType.Directory


@contextlib.contextmanager
def local_file(loc: Location) -> Iterator[Path]:
    """``loc`` as a local path: itself, or an S3 object streamed to a temp file for the block
    (one object at a time, never a local copy of the whole folder)."""
    if not is_remote(loc):
        yield Path(loc)
        return
    fs, path = resolve(loc)
    fd, tmp = tempfile.mkstemp(prefix="lowlight-", suffix=posixpath.splitext(path)[1])
    try:
        with fs.open_input_stream(path) as src, os.fdopen(fd, "wb") as dst:
            shutil.copyfileobj(src, dst, COPY_CHUNK)
        yield Path(tmp)
    finally:
        os.unlink(tmp)


def copy_tree(source: Location, dest: Location) -> int:
    """Copy the folder ``source`` into ``dest`` (each local or ``s3://``), streaming; the number
    of files copied. An S3 object appears only when its upload completes."""
    fs, path = resolve(source)
    info = fs.get_file_info(path)
    if info.type != pafs.FileType.Directory:
        problem = "not found" if info.type == pafs.FileType.NotFound else "not a folder"
        raise DatasetError(f"{source}: {problem}")
    dest_fs, dest_path = resolve(dest)
    copied = 0
    for item in fs.get_file_info(pafs.FileSelector(path, recursive=True)):
        if item.type != pafs.FileType.File:
            continue
        target = posixpath.join(dest_path, posixpath.relpath(item.path, path))
        dest_fs.create_dir(posixpath.dirname(target), recursive=True)
        with fs.open_input_stream(item.path) as src, dest_fs.open_output_stream(target) as dst:
            shutil.copyfileobj(src, dst, COPY_CHUNK)
        copied += 1
    return copied


def copy_from_dvc(repo: str, rev: str | None, source: str, dest: Path) -> None:
    """Copy ``source`` as versioned in the DVC repository ``repo`` (a git URL or path) at git
    revision ``rev``: what is not in a local cache is pulled from the repository's DVC remote."""
    from dvc.api import DVCFileSystem
    from dvc.exceptions import DvcException
    from scmrepo.exceptions import SCMError

    where = f"{source} in {repo}@{rev or 'HEAD'}"
    try:
        fs = DVCFileSystem(repo, rev=rev)
        if not fs.isdir(source):
            raise DatasetError(f"{where}: not a folder tracked by git or DVC")
        fs.get(source.rstrip("/") + "/", str(dest) + "/", recursive=True)
    except (DvcException, SCMError, OSError) as exc:
        raise DatasetError(f"{where}: {type(exc).__name__}: {exc}") from exc


def temp_for(dest: Location) -> Path:
    """A new local temp file for content that will become ``dest`` (see ``commit``)."""
    folder = Path(tempfile.gettempdir()) if is_remote(dest) else Path(dest).parent
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{posixpath.basename(str(dest))}.", suffix=".tmp", dir=folder
    )
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600 files; outputs get the usual mode
    return Path(tmp)


def commit(tmp: Path, dest: Location) -> None:
    """Make a finished temp file appear at ``dest`` in one step (rename, or one S3 upload)."""
    if is_remote(dest):
        fs, path = resolve(dest)
        pafs.copy_files(str(tmp), path, destination_filesystem=fs)
        tmp.unlink()
    else:
        os.replace(tmp, dest)


OWNER = ".owner"  # suffix of the file beside a staging folder: "host pid" of its process


def owner_file(folder: Path) -> Path:
    """Beside the staging folder, not in it: nothing a stage lists or publishes sees it."""
    return folder.with_name(folder.name + OWNER)


def _owner_alive(folder: Path) -> bool:
    """Whether the process that made staging ``folder`` may still be filling it."""
    import socket

    try:
        host, pid = owner_file(folder).read_text().split()
    except (OSError, ValueError):
        return False  # no owner (a kill before it was written, or older lowlight): left over
    if host != socket.gethostname():
        return True  # another machine's process (a shared disk): never touched
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, ValueError):
        return True
    return True


def stale_staging(dest: Path | str) -> list[Path]:
    """Staging folders of ``dest`` whose process died (kill -9, power loss): what
    ``staged_dir`` cleans up, and where a stage may first pick up finished work."""
    dest = Path(dest)
    if not dest.parent.is_dir():
        return []
    found = sorted(dest.parent.glob(f".{dest.name}.staging-*"))
    return [p for p in found if p.is_dir() and not _owner_alive(p)]


MARKER = ".lowlight-output.json"  # in an output folder: the stage that wrote it and its files


def _real(loc: Location) -> str:
    return str(loc).rstrip("/") if is_remote(loc) else os.path.realpath(loc)


def check_apart(dest: Location, inputs: tuple[Location, ...]) -> None:
    """Refuse an output that is, contains or lies inside one of the stage's inputs: replacing
    it would delete the very files the stage reads (``convert DIR DIR``, ``convert photos .``).
    """
    out = _real(dest)
    for source in (i for i in inputs if i is not None):
        src = _real(source)
        if out == src:
            raise OutputError(f"{dest}: the output is the input {source}; choose another folder")
        if src.startswith(out.rstrip("/") + "/") or out == "/":
            raise OutputError(f"{dest}: the output folder contains the input {source}; "
                              "choose a folder of its own")  # fmt: skip
        if out.startswith(src.rstrip("/") + "/"):
            raise OutputError(f"{dest}: the output lies inside the input {source}; "
                              "choose a folder outside it")  # fmt: skip


def _owned_files(folder: Path) -> set[str] | None:
    """The files the marker says a stage wrote in ``folder``; None without a readable one."""
    import json

    try:
        files = json.loads((folder / MARKER).read_text())["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return set(files) if isinstance(files, list) else None


def foreign_files(dest: Path, known: tuple[str, ...] = ()) -> list[str]:
    """Files in output folder ``dest`` that no lowlight stage wrote: those its marker does not
    list. A folder without a marker (lowlight before markers, a DVC checkout of one) is taken as
    the stage's when every file matches the stage's own name patterns ``known``."""
    from fnmatch import fnmatchcase

    files = [f for f in _walk(dest, []) if f != MARKER]
    owned = _owned_files(dest)
    if owned is not None:
        return [f for f in files if f not in owned]
    return [f for f in files if not any(fnmatchcase(f, pattern) for pattern in known)]


def check_output(
    dest: Location, inputs: tuple[Location, ...] = (), known: tuple[str, ...] = ()
) -> None:
    """Whether a stage may (re)place its output folder ``dest``: never onto its input, a file,
    a mount point, or a folder holding files the stage did not write (they would be lost)."""
    check_apart(dest, inputs)
    if is_remote(dest):
        return
    dest = Path(dest)
    if dest.is_symlink() or dest.exists() and not dest.is_dir():
        kind = "a link" if dest.is_symlink() else "a file"
        raise OutputError(f"{dest}: is {kind}, not a folder; lowlight writes a folder there")
    if not dest.exists():
        return
    if os.path.ismount(dest):
        raise OutputError(f"{dest}: is a mount point, which cannot be replaced as a whole; "
                          "give a folder inside it")  # fmt: skip
    foreign = foreign_files(dest, known)
    if foreign:
        more = f" and {len(foreign) - 3} more" if len(foreign) > 3 else ""
        raise OutputError(
            f"{dest}: holds files lowlight did not write ({', '.join(foreign[:3])}{more}); the "
            "stage replaces its output folder as a whole, so move them or choose another folder"
        )


def write_marker(folder: Path, stage: str) -> None:
    """Record what a stage wrote in ``folder`` (deterministic bytes: DVC hashes the folder)."""
    import json

    files = [f for f in _walk(folder, []) if f != MARKER]
    body = json.dumps({"stage": stage, "files": files}, indent=0)
    (folder / MARKER).write_text(body + "\n")


@contextlib.contextmanager
def locked(dest: Path) -> Iterator[None]:
    """Hold ``dest``'s lock file (beside it, naming its owner) while a stage writes ``dest``; a
    second writer is refused at once, naming the first. The kernel drops the lock when its
    process dies, so a killed run never blocks the next one."""
    import fcntl
    import socket

    lock = dest.with_name(f".{dest.name}.lock")
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.read(fd, 200).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise OutputError(f"{dest}: another lowlight run is writing it ({owner}; lock file "
                              f"{lock}); wait for it to finish") from None  # fmt: skip
        try:
            same = os.fstat(fd).st_ino == os.stat(lock).st_ino
        except FileNotFoundError:
            same = False  # the previous holder removed it as we opened it: take the new one
        if same:
            break
        os.close(fd)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode())
        yield
    finally:
        with contextlib.suppress(OSError):
            os.unlink(lock)
        os.close(fd)


@contextlib.contextmanager
def output_errors(dest: Location) -> Iterator[None]:
    """A folder that cannot be written (read-only, full, permissions) is one line naming it."""
    try:
        yield
    except OSError as exc:
        raise OutputError(f"{dest}: cannot write: {exc.strerror or exc}") from None


@contextlib.contextmanager
def staged_dir(
    dest: Path | str,
    inputs: tuple[Location, ...] = (),
    known: tuple[str, ...] = (),
    stage: str = "lowlight",
) -> Iterator[Path]:
    """Yield a fresh folder beside ``dest``; it replaces ``dest`` only if the block succeeds.

    A failure leaves ``dest`` exactly as it was (what DVC's ``persist`` outputs rely on).
    ``dest`` is refused up front if replacing it would lose anything the stage did not write
    (see ``check_output``), and locked for the block: one writer at a time. Staging folders
    that killed runs left beside ``dest`` are removed once the block ends (the block may still
    reuse what they hold, see ``stale_staging``).
    """
    import socket

    dest = Path(dest)
    check_output(dest, inputs, known)
    with contextlib.ExitStack() as held:
        with output_errors(dest):
            dest.parent.mkdir(parents=True, exist_ok=True)
            held.enter_context(locked(dest))
        check_output(dest, inputs, known)  # again, now that no other run can change it
        with output_errors(dest):
            leftovers = stale_staging(dest)
            staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.staging-", dir=dest.parent))
            os.chmod(staging, 0o777 & ~_UMASK)
            owner = owner_file(staging)
            owner.write_text(f"{socket.gethostname()} {os.getpid()}\n")
        try:
            yield staging
            with output_errors(dest):
                write_marker(staging, stage)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        finally:
            owner.unlink(missing_ok=True)
            for folder in leftovers:
                shutil.rmtree(folder, ignore_errors=True)
                owner_file(folder).unlink(missing_ok=True)
        _swap(staging, dest)


def _swap(staging: Path, dest: Path) -> None:
    """Put the finished ``staging`` folder at ``dest`` (two renames); on failure ``dest`` is as
    it was and no staging or old folder is left behind."""
    old = None
    try:
        if dest.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{dest.name}.old-", dir=dest.parent))
            os.replace(dest, old / dest.name)
        os.replace(staging, dest)
    except OSError as exc:
        if old is not None and (old / dest.name).exists() and not dest.exists():
            os.replace(old / dest.name, dest)
        shutil.rmtree(staging, ignore_errors=True)
        raise OutputError(f"{dest}: cannot replace: {exc.strerror or exc}") from None
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def atomic_path(dest: Location) -> Iterator[Path]:
    """Yield a local temp path; on success it becomes ``dest`` (renamed, or uploaded to S3).

    A failure inside the block leaves nothing at ``dest``: no half-written file or object.
    """
    tmp = temp_for(dest)
    try:
        yield tmp
        commit(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
