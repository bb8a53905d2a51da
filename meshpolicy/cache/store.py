"""The build cache's folder: content-addressed entries, authenticated, written atomically, bounded in size.

An entry is the file ``KIND/AB/KEY`` (``KEY``: a SHA-256 of everything its value depends on,
:mod:`.codec`). Its bytes are a magic line, an HMAC-SHA256 and the payload; the HMAC covers the kind,
the key and the payload under a random secret kept in the folder (``secret``, mode 0600). An entry
that is truncated, altered, copied from another cache folder or written by another format fails the
check and is ignored, as is anything unreadable: a miss, never an error, never trusted.

Writes go to a temporary file in the same folder and are renamed over the entry (``os.replace``), so a
concurrent build reads a whole entry or none. No fsync: an entry lost in a crash is a miss, and a torn
one fails its HMAC.

The folder is refused (the build runs without a cache, note MP850) when it is not a folder of the user
running the build or when others may write to it: its secret would not be secret, and its entries not
the user's. Its size on disk (whole blocks: most entries are smaller than one) is bounded
(:data:`DEFAULT_LIMIT`, ``$MESHPOLICY_CACHE_LIMIT_MB``): past the limit, the least recently used
entries are removed down to three quarters of it (docs/cache.md).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import stat
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import MeshpolicyError

MAGIC = b"meshpolicy-cache 1\n"
_MAC = 32
#: the folder's size bound, in bytes, unless $MESHPOLICY_CACHE_LIMIT_MB says otherwise
DEFAULT_LIMIT = 1 << 30
#: an entry larger than this is not written (and not read)
MAX_ENTRY = 256 << 20
_LEDGER = "usage"


class Refused(MeshpolicyError):
    """The folder cannot hold a cache this build may trust (the message says why); open_cache turns it
    into note MP850."""


@dataclass
class Stats:
    hits: int = 0
    misses: int = 0
    ignored: int = 0  # entries present but corrupt, foreign or unreadable
    written: int = 0  # bytes on disk, whole blocks (a small entry takes a block)
    kinds: dict[str, list[int]] = field(default_factory=dict)  # kind -> [hits, misses]

    def count(self, kind: str, hit: bool) -> None:
        if hit:
            self.hits += 1
        else:
            self.misses += 1
        self.kinds.setdefault(kind, [0, 0])[0 if hit else 1] += 1


class Store:
    """One cache folder. :meth:`get` and :meth:`put` never raise for the folder's state."""

    def __init__(self, root: Path, limit: int | None = None) -> None:
        self.root = root
        self.limit = limit if limit is not None else _limit_from_env()
        self.stats = Stats()
        self._secret = _open(root)

    def _path(self, kind: str, key: str) -> Path:
        return self.root / kind / key[:2] / key

    def _mac(self, kind: str, key: str, payload: bytes) -> bytes:
        mac = hmac.new(self._secret, digestmod=hashlib.sha256)
        for part in (kind.encode(), key.encode()):
            mac.update(len(part).to_bytes(8, "big") + part)
        mac.update(payload)
        return mac.digest()

    def get(self, kind: str, key: str) -> bytes | None:
        """The payload stored under ``key``, or None (absent, or ignored as not authentic)."""
        path = self._path(kind, key)
        try:
            with open(path, "rb") as handle:
                data = handle.read(MAX_ENTRY + len(MAGIC) + _MAC + 1)
        except FileNotFoundError:
            self.stats.count(kind, False)
            return None
        except OSError:
            data = b""
        head, mac, payload = data[:len(MAGIC)], data[len(MAGIC):len(MAGIC) + _MAC], data[len(MAGIC) + _MAC:]
        if head != MAGIC or len(payload) > MAX_ENTRY or not hmac.compare_digest(mac, self._mac(kind, key, payload)):
            self.ignore(kind, key)
            return None
        self.stats.count(kind, True)
        try:
            os.utime(path)  # recently used: eviction removes the oldest first
        except OSError:
            pass
        return payload

    def ignore(self, kind: str, key: str) -> None:
        """An entry that cannot be used (corrupt, foreign, undecodable): counted, removed, a miss."""
        self.stats.ignored += 1
        self.stats.count(kind, False)
        try:
            self._path(kind, key).unlink()
        except OSError:
            pass

    def put(self, kind: str, key: str, payload: bytes) -> None:
        """Store ``payload`` under ``key``; a folder that cannot take it is not an error (the entry is lost)."""
        if len(payload) > MAX_ENTRY:
            return
        path = self._path(kind, key)
        data = MAGIC + self._mac(kind, key, payload) + payload
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, temp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(data)
                os.replace(temp, path)
            except BaseException:
                os.unlink(temp)
                raise
        except OSError:
            return
        self.stats.written += -(-len(data) // BLOCK) * BLOCK

    def close(self) -> None:
        """Account for what this build wrote and, past the size bound, evict the least recently used."""
        if not self.stats.written:
            return
        ledger = self.root / _LEDGER
        try:
            used = int(ledger.read_text() or 0)
        except (OSError, ValueError):
            used = self.limit  # unknown: measure
        used += self.stats.written
        if used > self.limit:
            used = self.evict(self.limit * 3 // 4)
        _write_small(ledger, str(used))
        self.stats.written = 0

    def evict(self, keep: int) -> int:
        """Remove the least recently used entries until at most ``keep`` bytes remain; the bytes left."""
        entries: list[tuple[float, int, Path]] = []
        for kind in self.root.iterdir():
            if not kind.is_dir() or kind.is_symlink():
                continue
            for path in kind.glob("*/*"):
                try:
                    info = path.lstat()
                except OSError:
                    continue
                if stat.S_ISREG(info.st_mode):
                    entries.append((info.st_mtime, _on_disk(info), path))
        total = sum(size for _, size, _ in entries)
        for _, size, path in sorted(entries, key=lambda e: (e[0], str(e[2]))):
            if total <= keep:
                break
            try:
                path.unlink()
            except OSError:
                continue
            total -= size
        return total


#: the block size a file's length is rounded up to where the system does not say (st_blocks)
BLOCK = 4096


def _on_disk(info: os.stat_result) -> int:
    """What a file takes on disk: its blocks where the system counts them, else its length in whole blocks."""
    blocks = getattr(info, "st_blocks", None)
    return blocks * 512 if blocks is not None else -(-info.st_size // BLOCK) * BLOCK


def _limit_from_env() -> int:
    configured = os.environ.get("MESHPOLICY_CACHE_LIMIT_MB", "")
    try:
        return max(1, int(configured)) << 20 if configured else DEFAULT_LIMIT
    except ValueError:
        return DEFAULT_LIMIT


def _open(root: Path) -> bytes:
    """Create or check the folder and return its secret; raises :class:`Refused`."""
    try:
        root.mkdir(parents=True, exist_ok=True, mode=0o700)
        info = root.lstat()
    except OSError as exc:
        raise Refused(f"cannot create {root}: {exc.strerror or exc}") from None
    if not stat.S_ISDIR(info.st_mode):
        raise Refused(f"{root} is not a folder")
    if hasattr(os, "getuid"):
        if info.st_uid != os.getuid():
            raise Refused(f"{root} belongs to another user")
        if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            raise Refused(f"others may write to {root} (mode {stat.S_IMODE(info.st_mode):o})")
    path = root / "secret"
    if not path.exists():  # first use: a new secret, linked into place whole (two builds: one wins)
        try:
            fd, temp = tempfile.mkstemp(prefix=".tmp-", dir=root)  # mode 0600
            with os.fdopen(fd, "wb") as handle:
                handle.write(secrets.token_bytes(32))
            try:
                os.link(temp, path)
            except FileExistsError:
                pass
            finally:
                os.unlink(temp)
        except OSError as exc:
            raise Refused(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        info = path.lstat()
        if not stat.S_ISREG(info.st_mode) or (hasattr(os, "getuid") and info.st_uid != os.getuid()) \
                or info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise Refused(f"{path} is not a file only its owner, the user running the build, may read")
        secret = path.read_bytes()
    except OSError as exc:
        raise Refused(f"cannot read {path}: {exc.strerror or exc}") from None
    if len(secret) != 32:
        raise Refused(f"{path} is not a cache secret (remove the folder to start afresh)")
    return secret


def _write_small(path: Path, text: str) -> None:
    try:
        fd, temp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.replace(temp, path)
    except OSError:
        pass
