"""Write an output folder: ``OUT/NAMESPACE/KIND-NAME.yaml`` plus ``OUT/kustomization.yaml``.

A build leaves the old or the new complete output, never none and never a
mix (docs/output.md):

1. under a lock on OUT's parent folder, the leftovers of an interrupted build
   are recovered (:func:`recover`);
2. the new folder is staged beside OUT as ``.OUT.meshpolicy-new-PID``: every
   folder of OUT that holds anything but managed files, with its mode; every
   foreign entry (files, links, FIFOs, sockets) hard-linked, so it is the very
   same file; the managed files, hard-linked where unchanged, written where new
   or changed;
3. the stage is made durable with one ``syncfs`` (Linux; elsewhere one fsync
   per written file and folder);
4. the stage and OUT are exchanged in one atomic step (``renameat2`` with
   ``RENAME_EXCHANGE``; elsewhere, or where the file system refuses it, two
   renames, OUT moved aside first), and OUT's parent is fsynced;
5. the stage name, which now holds the old output, is removed.

A symbolic link given as OUT is written through: the folder it points to is
exchanged and the link is kept. Only managed regular files are ever left out
of the new folder (:mod:`.folder` decides what is managed), and a
``kustomization.yaml`` that meshpolicy did not write is never overwritten.
Every change to the file system goes through :class:`FileSystem`, one call
per step, so that a test can stop a build at any step.
"""

from __future__ import annotations

import ctypes
import difflib
import errno
import os
import re
import shutil
import stat
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from ..diagnostics import Diagnostic
from ..errors import UsageError
from . import folder
from .folder import KUSTOMIZATION, MARKER, Folder

__all__ = ["KUSTOMIZATION", "MARKER", "FileSystem", "OutputError", "check_writable", "diff", "kustomization",
           "recover", "with_kustomization", "write"]

#: ``.OUT.meshpolicy-new-PID`` (the stage; after the exchange, the old output) and ``-old-PID`` (OUT moved aside)
_LEFTOVER = r"\.{name}\.meshpolicy-(new|old)-\d+"
_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


class OutputError(UsageError):
    """The output folder cannot be written as asked (reported as MP401)."""


def kustomization(paths: list[str]) -> str:
    lines = [MARKER, "apiVersion: kustomize.config.k8s.io/v1beta1", "kind: Kustomization", "resources:"]
    lines += [f"  - {p}" for p in sorted(paths)]
    return "\n".join(lines) + "\n"


def with_kustomization(files: dict[str, str]) -> dict[str, str]:
    """``files`` and the kustomization listing every manifest among them (install values are no manifests)."""
    out = dict(sorted(files.items()))
    out[KUSTOMIZATION] = kustomization([p for p in files if not folder.is_values(p)])
    return out


def _libc_function(name: str, argtypes: list) -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        function = getattr(ctypes.CDLL(None, use_errno=True), name)
    except (OSError, AttributeError):  # no such symbol in this C library (glibc before 2.28 has no renameat2)
        return None
    function.argtypes, function.restype = argtypes, ctypes.c_int
    return function


_renameat2 = _libc_function("renameat2", [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                                          ctypes.c_uint])
_syncfs = _libc_function("syncfs", [ctypes.c_int])


class FileSystem:
    """Every change the writer makes to the file system, one method per step."""

    def mkdir(self, path: Path) -> None:
        os.mkdir(path, 0o700)  # opened up to its final mode once filled (a 0o500 folder could not be filled)

    def write(self, path: Path, text: str) -> None:
        with open(path, "xb") as fh:
            fh.write(text.encode("utf-8"))

    def link(self, source: Path, target: Path) -> None:
        """``target`` becomes the same file as ``source`` (a link itself, not what it points to)."""
        try:
            os.link(source, target, follow_symlinks=False)
            return
        except OSError as exc:  # another file system below OUT, or hard links refused (protected_hardlinks)
            if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.EACCES):
                raise
        st = source.lstat()
        if stat.S_ISLNK(st.st_mode):
            os.symlink(os.readlink(source), target)
        elif stat.S_ISREG(st.st_mode):
            shutil.copy2(source, target)
        elif stat.S_ISFIFO(st.st_mode):
            os.mkfifo(target, stat.S_IMODE(st.st_mode))
        else:
            raise OutputError(f"{source} cannot be carried over to the new output folder "
                              "(a socket or device that cannot be hard-linked); move it out of the output folder")

    def chmod(self, path: Path, mode: int) -> None:
        os.chmod(path, mode)

    def rename(self, source: Path, target: Path) -> None:
        os.rename(source, target)

    def exchange(self, a: Path, b: Path) -> bool:
        """Swap ``a`` and ``b`` atomically; False where the system or the file system cannot."""
        if _renameat2 is None:
            return False
        if _renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
            return True
        err = ctypes.get_errno()
        if err in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP):
            return False
        raise OSError(err, os.strerror(err), str(a), None, str(b))

    def unlink(self, path: Path) -> None:
        os.unlink(path)

    def rmdir(self, path: Path) -> None:
        os.rmdir(path)

    def sync(self, root: Path, written: list[Path]) -> None:
        """Make ``written`` (files and folders under ``root``) durable: one syncfs, or one fsync each."""
        if _syncfs is not None:
            fd = os.open(root, os.O_RDONLY)
            try:
                if _syncfs(fd) == 0:
                    return
                err = ctypes.get_errno()
                if err != errno.ENOSYS:
                    raise OSError(err, os.strerror(err), str(root))
            finally:
                os.close(fd)
        for path in written:
            self.fsync(path)

    def fsync(self, path: Path) -> None:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def rmtree(fs: FileSystem, root: Path) -> None:
    """Remove ``root`` and everything below it, one step per entry, never following a link."""
    pending, folders = [root], []
    while pending:
        current = pending.pop()
        folders.append(current)
        mode = stat.S_IMODE(current.lstat().st_mode)
        if mode & 0o700 != 0o700:  # a read-only folder of the old output: no longer anyone's but ours
            fs.chmod(current, mode | 0o700)
        with os.scandir(current) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    pending.append(Path(entry.path))
                else:
                    fs.unlink(Path(entry.path))
    for path in reversed(folders):
        fs.rmdir(path)


def resolve(out: Path) -> Path:
    """The folder a build writes: ``out`` with every symbolic link followed (the links are kept)."""
    real = Path(os.path.realpath(out))
    if real.is_symlink():
        raise OutputError(f"{out} is a symbolic link that never reaches a folder (a loop); "
                          "point it at a folder or remove it")
    return real


def check_writable(out: Path, files: dict[str, str]) -> Folder:
    """Refuse a folder a build cannot write; what it holds now (read once, within :mod:`.folder`'s bounds)."""
    real = _check_place(out)
    current = folder.read(real, files)
    _check_clash(out, current, files)
    return current


def _check_place(out: Path) -> Path:
    real = resolve(out)
    if real.exists() and not real.is_dir():
        raise OutputError(f"{out} exists and is not a folder")
    if Path.cwd().resolve().is_relative_to(real):  # write() swaps the folder: it cannot be ours
        raise OutputError(f"{out} is the working folder or holds it: a build replaces its output folder whole; "
                          "give a folder below the working folder (e.g. deploy/istio)")
    for above in real.parents:  # the nearest existing folder above OUT must be a folder
        if above.exists():
            if not above.is_dir():
                raise OutputError(f"{out} cannot be created: {above} is not a folder")
            break
    return real


def _check_clash(out: Path, current: Folder, files: dict[str, str]) -> None:
    clash = sorted((set(current.foreign) | set(current.folders)) & set(files))
    if clash:
        raise OutputError(f"{out / clash[0]} exists and was not written by meshpolicy; "
                          "move it away or choose another --out folder")
    blocked = sorted(rel for rel in files for above in _parents(rel) if above in current.foreign)
    if blocked:
        above = next(a for a in _parents(blocked[0]) if a in current.foreign)
        raise OutputError(f"{out / above} exists and is not a folder, but {out / blocked[0]} must be written; "
                          "move it away or choose another --out folder")


def _parents(rel: str) -> list[str]:
    parts = rel.split("/")[:-1]
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


@contextmanager
def _locked(parent: Path) -> Iterator[None]:
    """One build at a time writes into ``parent`` (a recovery must not take another build's stage for a leftover)."""
    try:
        import fcntl
    except ImportError:  # not a POSIX system: no lock
        yield
        return
    fd = os.open(parent, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def recover(real: Path, fs: FileSystem | None = None) -> None:
    """Undo what an interrupted build left beside ``real`` (the caller holds the lock).

    With OUT missing, the build was stopped between the two renames of the fallback: the
    ``-old-`` folder is OUT's complete previous content and is put back. Every other leftover
    (a stage, complete or not; the previous output after an exchange) is removed.
    """
    fs = fs or FileSystem()
    pattern = re.compile(_LEFTOVER.format(name=re.escape(real.name)))
    found = [p for p in real.parent.iterdir() if pattern.fullmatch(p.name) and p.is_dir() and not p.is_symlink()]
    if not os.path.lexists(real):
        olds = sorted((p for p in found if "-old-" in p.name), key=lambda p: (p.lstat().st_mtime_ns, p.name))
        if olds:
            fs.rename(olds[-1], real)
            found.remove(olds[-1])
    for path in sorted(found):
        rmtree(fs, path)


def write(out: Path, files: dict[str, str], fs: FileSystem | None = None) -> list[Diagnostic]:
    """Replace the managed content of ``out`` with ``files`` (which include the kustomization), atomically.

    Returns the notes of reading the folder (files kept as foreign because of a bound, MP405).
    """
    fs = fs or FileSystem()
    real = _check_place(out)
    parent = real.parent
    parent.mkdir(parents=True, exist_ok=True)
    with _locked(parent):
        recover(real, fs)
        current = folder.read(real, files)
        _check_clash(out, current, files)
        stage = parent / f".{real.name}.meshpolicy-new-{os.getpid()}"
        aside = parent / f".{real.name}.meshpolicy-old-{os.getpid()}"
        moved_aside = swapped = False
        try:
            _stage(fs, real, stage, current, files)
            if not current.exists:
                fs.rename(stage, real)
                swapped = True
            elif fs.exchange(stage, real):
                swapped = True
            else:  # two renames: a stop in between leaves OUT at ``aside``, put back by recover()
                fs.rename(real, aside)
                moved_aside = True
                fs.rename(stage, real)
                swapped = True
            fs.fsync(parent)
        except BaseException:
            if not swapped:
                if moved_aside:
                    fs.rename(aside, real)
                if stage.exists():
                    rmtree(fs, stage)
            raise
        for left in (stage, aside):  # the old output, under either name; what cannot go now, recover() takes
            if os.path.lexists(left):
                try:
                    rmtree(fs, left)
                except OSError:
                    pass
    return current.notes


def _stage(fs: FileSystem, real: Path, stage: Path, current: Folder, files: dict[str, str]) -> None:
    """Fill ``stage`` with the new output and everything of ``current`` that is not managed; make it durable."""
    keep = _kept_folders(current, files)
    fs.mkdir(stage)
    written = [stage]
    made = {""}
    for rel in keep:  # sorted: a folder before what it holds
        fs.mkdir(stage / rel)
        written.append(stage / rel)
        made.add(rel)
    for rel in current.foreign:
        fs.link(real / rel, stage / rel)
    for rel, text in files.items():
        for above in _parents(rel):
            if above not in made:
                fs.mkdir(stage / above)
                written.append(stage / above)
                made.add(above)
        if current.managed.get(rel) == text:  # unchanged: the very same file (nothing to write or to sync)
            fs.link(real / rel, stage / rel)
        else:
            fs.write(stage / rel, text)
            written.append(stage / rel)
    modes = {rel: current.folders.get(rel, _default_mode()) for rel in made if rel}
    for rel in sorted(modes, reverse=True):  # deepest first: a read-only folder is closed after what it holds
        fs.chmod(stage / rel, modes[rel])
    fs.chmod(stage, current.mode if current.mode is not None else _default_mode())
    fs.sync(stage, written)


def _kept_folders(current: Folder, files: dict[str, str]) -> list[str]:
    """Folders of ``current`` the new output keeps: those holding a foreign entry or nothing, or needed by
    ``files``. A folder that held only managed files (and folders of them) goes with them."""
    keep: set[str] = set()
    holding = {rel: False for rel in current.folders}
    for rel in current.managed:
        for above in _parents(rel):
            holding[above] = True
    for rel in current.folders:
        for above in _parents(rel):
            holding[above] = True
    for rel in list(current.foreign) + [r for r, has in holding.items() if not has]:
        keep.update(_parents(rel))
        if rel in current.folders:
            keep.add(rel)
    for rel in files:
        keep.update(a for a in _parents(rel) if a in current.folders)
    return sorted(keep)


def _default_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o777 & ~umask


def diff(out: Path | Folder, files: dict[str, str]) -> str:
    """A unified diff from what ``out`` holds to what a build would write; empty when up to date."""
    managed = (out if isinstance(out, Folder) else folder.read(resolve(out))).managed
    chunks: list[str] = []
    for rel in sorted(set(managed) | set(files)):
        before, after = managed.get(rel), files.get(rel)
        if before == after:
            continue
        chunks.extend(difflib.unified_diff(
            (before or "").splitlines(keepends=True), (after or "").splitlines(keepends=True),
            fromfile=f"a/{rel}" if before is not None else "/dev/null",
            tofile=f"b/{rel}" if after is not None else "/dev/null"))
    return "".join(chunks)
