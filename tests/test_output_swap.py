"""The output swap (docs/output.md): a build leaves the old or the new complete output, never none.

Regression tests first, one per defect of issue 9 item 5 (each failed before its fix), then the
property: a kill at every file-system step of a build, simulated by fault injection, and a real
build process killed with SIGKILL at random moments.
"""

from __future__ import annotations

import errno
import os
import random
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import ROOT, invoke
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meshpolicy.output import writer

MANAGED = "metadata:\n  name: {}\n  labels:\n    app.kubernetes.io/managed-by: meshpolicy\n"


def files(*names: str, version: str = "v1") -> dict[str, str]:
    return {n: MANAGED.format(f"{n.replace('/', '-')[:-5]}-{version}") for n in names}


SAME = {"a/same.yaml": MANAGED.format("same")}  # unchanged from OLD to NEW: carried over, not rewritten
OLD = writer.with_kustomization({**files("a/x.yaml", "b/y.yaml", version="old"), **SAME})
NEW = writer.with_kustomization({**files("a/x.yaml", "c/z.yaml", version="new"), **SAME})


def inventory(folder: Path) -> dict[str, tuple]:
    """Everything under ``folder`` (itself included as "."): kind, mode, and content or link target."""
    found: dict[str, tuple] = {}
    for path in [folder, *sorted(folder.rglob("*"))]:
        st = path.lstat()
        rel = path.relative_to(folder).as_posix()
        mode = stat.S_IMODE(st.st_mode)
        if stat.S_ISLNK(st.st_mode):
            found[rel] = ("link", os.readlink(path))
        elif stat.S_ISDIR(st.st_mode):
            found[rel] = ("dir", mode)
        elif stat.S_ISREG(st.st_mode):
            found[rel] = ("file", mode, path.read_bytes())
        else:
            found[rel] = (stat.S_IFMT(st.st_mode), mode)
    return found


def leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if ".meshpolicy-" in p.name)


class Killed(BaseException):
    """The process died: nothing after this point runs (not even ``finally`` blocks' file-system calls)."""


@pytest.mark.parametrize("k", [1, 2, 3])
def test_a_kill_at_any_rename_leaves_an_output_folder(tmp_path, monkeypatch, k):
    """The old writer renamed OUT aside, then the new folder in: a kill between the two left no OUT."""
    out = tmp_path / "out"
    writer.write(out, OLD)
    before = inventory(out)
    calls = {"n": 0}
    real_rename = os.rename

    def rename(src, dst, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] >= k:
            raise Killed
        return real_rename(src, dst, *args, **kwargs)

    def dead(*_args, **_kwargs):
        if calls["n"] >= k:
            raise Killed

    monkeypatch.setattr(os, "rename", rename)
    monkeypatch.setattr(shutil, "rmtree", dead)
    try:
        writer.write(out, NEW)
    except Killed:
        pass
    monkeypatch.undo()
    assert out.is_dir(), "a kill between the renames left no output folder"
    assert inventory(out) == before or (out / "c" / "z.yaml").exists()


def test_leftovers_of_an_interrupted_build_are_recovered_and_cleaned(tmp_path):
    """The state a kill between the two renames of the old writer left: no OUT, the old one set aside."""
    out = tmp_path / "out"
    writer.write(out, OLD)
    (out / "a" / "mine.txt").write_text("hand written\n")
    os.rename(out, tmp_path / ".out.meshpolicy-old-4242")
    (tmp_path / ".out.meshpolicy-new-4242" / "a").mkdir(parents=True)
    (tmp_path / ".out.meshpolicy-new-4242" / "a" / "x.yaml").write_text("half a fi")
    writer.write(out, NEW)
    assert leftovers(tmp_path) == []
    assert (out / "a" / "mine.txt").read_text() == "hand written\n"  # the old output's foreign file came back
    assert (out / "c" / "z.yaml").read_text() == NEW["c/z.yaml"]


def test_leftovers_beside_an_existing_output_are_cleaned(tmp_path):
    out = tmp_path / "out"
    writer.write(out, OLD)
    for name in (".out.meshpolicy-new-17", ".out.meshpolicy-old-17", ".out.meshpolicy-new-18"):
        (tmp_path / name / "a").mkdir(parents=True)
        (tmp_path / name / "a" / "x.yaml").write_text(OLD["a/x.yaml"])
    (tmp_path / ".other.meshpolicy-new-17").mkdir()  # another output folder's: not ours to touch
    writer.write(out, NEW)
    assert leftovers(tmp_path) == [".other.meshpolicy-new-17"]
    assert (out / "c" / "z.yaml").exists() and not (out / "b" / "y.yaml").exists()


def test_a_symlinked_out_is_written_through_and_stays_a_link(tmp_path):
    real = tmp_path / "releases" / "current"
    writer.write(real, OLD)
    link = tmp_path / "deploy"
    link.symlink_to(Path("releases") / "current")
    result = invoke(["build", ROOT / "examples" / "shop", "-t", "istio", "-o", link])
    assert "kustomization.yaml" in result.output
    assert link.is_symlink() and os.readlink(link) == str(Path("releases") / "current")
    assert (real / "kustomization.yaml").read_text().startswith(writer.MARKER)
    assert (real / "shop").is_dir() and not (real / "a").exists()  # the old managed files went
    assert leftovers(tmp_path) == [] and leftovers(tmp_path / "releases") == []
    invoke(["build", ROOT / "examples" / "shop", "-t", "istio", "-o", link, "--check"])
    invoke(["verify", ROOT / "examples" / "shop", "-t", "istio", "-o", link])


def test_a_symlink_loop_as_out_is_mp401(tmp_path):
    (tmp_path / "a").symlink_to("b")
    (tmp_path / "b").symlink_to("a")
    result = invoke(["build", ROOT / "examples" / "shop", "-t", "istio", "-o", tmp_path / "a"], code=2)
    assert "error[MP401]" in result.output and "symbolic link" in result.output


def test_empty_folders_fifos_sockets_and_modes_are_kept(tmp_path):
    out = tmp_path / "out"
    writer.write(out, OLD)
    (out / "empty" / "deeper").mkdir(parents=True)
    (out / "a" / "private").mkdir(mode=0o700)
    os.mkfifo(out / "a" / "pipe")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(out / "b" / "sock"))
    (out / "b" / "y.yaml.orig").write_text(OLD["b/y.yaml"])  # managed content, but not a .yaml: kept
    (out / "a" / "link.yaml").symlink_to("x.yaml")          # a link to a managed file is not managed
    (out / "a" / "dir.yaml").mkdir()
    out.chmod(0o700)
    (out / "a").chmod(0o750)
    (out / "empty").chmod(0o711)
    before = inventory(out)
    try:
        writer.write(out, NEW)
    finally:
        sock.close()
    after = inventory(out)
    for rel in ("empty", "empty/deeper", "a/private", "a/pipe", "b/sock", "b/y.yaml.orig", "a/link.yaml",
                "a/dir.yaml", ".", "a"):
        assert after.get(rel) == before[rel], rel
    assert "b/y.yaml" not in after and after["c/z.yaml"][2] == NEW["c/z.yaml"].encode()
    assert after["b"] == before["b"]  # it still holds the socket and the .orig file
    assert leftovers(tmp_path) == []


def test_a_folder_emptied_of_managed_files_goes_an_empty_one_stays(tmp_path):
    out = tmp_path / "out"
    writer.write(out, OLD)
    (out / "kept").mkdir()
    writer.write(out, NEW)
    assert not (out / "b").exists()
    assert (out / "kept").is_dir()


def test_foreign_files_keep_their_inode(tmp_path):
    out = tmp_path / "out"
    writer.write(out, OLD)
    (out / "a" / "notes.txt").write_text("mine\n")
    (out / "a" / "notes.txt").chmod(0o600)
    ino = (out / "a" / "notes.txt").stat().st_ino
    writer.write(out, NEW)
    assert (out / "a" / "notes.txt").stat().st_ino == ino
    assert stat.S_IMODE((out / "a" / "notes.txt").stat().st_mode) == 0o600


# -- the property: a stop at any step ------------------------------------------------

STEPS = ("mkdir", "write", "link", "chmod", "rename", "exchange", "unlink", "rmdir", "sync", "fsync")


class Faulty(writer.FileSystem):
    """A file system that fails at step ``at``: with ``kill``, that step and every later one raise
    :class:`Killed` (the process is gone: no clean-up runs); else only that step raises EIO."""

    def __init__(self, at: int | None = None, kill: bool = True, exchange: bool = True):
        self.at, self.kill, self.can_exchange, self.steps = at, kill, exchange, 0


def _step(name: str):
    real = getattr(writer.FileSystem, name)

    def step(self, *args):
        self.steps += 1
        if self.at is not None and (self.steps == self.at or (self.kill and self.steps > self.at)):
            if self.kill:
                raise Killed
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        if name == "exchange" and not self.can_exchange:
            return False
        return real(self, *args)

    return step


for _name in STEPS:
    setattr(Faulty, _name, _step(_name))


def setup(root: Path) -> Path:
    """An output folder with managed files and every kind of foreign entry."""
    out = root / "out"
    writer.write(out, OLD)
    (out / "empty").mkdir()
    (out / "a" / "notes.txt").write_text("mine\n")
    os.mkfifo(out / "a" / "pipe")
    (out / "a" / "link").symlink_to("notes.txt")
    (out / "a").chmod(0o750)
    out.chmod(0o700)
    return out


@pytest.fixture(scope="module")
def versions(tmp_path_factory) -> dict[str, dict]:
    """The complete output of each version, built without a fault from the same start."""
    found = {}
    for name, files_ in (("old", OLD), ("new", NEW)):
        out = setup(tmp_path_factory.mktemp(name))
        if name == "new":
            writer.write(out, files_)
        found[name] = inventory(out)
    return found


def steps_of_a_build(root: Path, exchange: bool = True) -> int:
    fs = Faulty(exchange=exchange)
    writer.write(setup(root), NEW, fs)
    return fs.steps


@pytest.mark.slow
@pytest.mark.parametrize("exchange", [True, False], ids=["exchange", "two-renames"])
def test_a_kill_at_any_step_leaves_the_old_or_the_new_output(tmp_path, versions, exchange):
    total = steps_of_a_build(tmp_path / "count", exchange)
    assert total > 20
    for k in range(1, total + 2):
        root = tmp_path / str(k)
        out = setup(root)
        with pytest.raises(Killed) if k <= total else _nothing():
            writer.write(out, NEW, Faulty(k, exchange=exchange))
        if exchange or out.exists():
            assert inventory(out) in (versions["old"], versions["new"]), f"killed at step {k}"
        else:  # killed between the two renames: the old output is set aside, whole
            [aside] = [p for p in root.iterdir() if "-old-" in p.name]
            assert inventory(aside) == versions["old"], f"killed at step {k}"
        writer.write(out, NEW)  # the next build recovers
        assert inventory(out) == versions["new"], f"killed at step {k}"
        assert leftovers(root) == []


@pytest.mark.slow
@pytest.mark.parametrize("exchange", [True, False], ids=["exchange", "two-renames"])
def test_a_failed_step_leaves_the_old_output_and_no_leftover(tmp_path, versions, exchange):
    """An error (a full disk, EIO) at any step: the build refuses with the old output whole and cleans up,
    unless the swap was done (then the new output is in place; only its last fsync or clean-up failed)."""
    total = steps_of_a_build(tmp_path / "count", exchange)
    outcomes = set()
    for k in range(1, total + 1):
        root = tmp_path / str(k)
        out = setup(root)
        try:
            writer.write(out, NEW, Faulty(k, kill=False, exchange=exchange))
        except OSError:
            after = inventory(out)
            outcomes.add("refused" if after == versions["old"] else "swapped")
            if after == versions["old"]:
                assert leftovers(root) == [], f"failed at step {k}"
            else:
                assert after == versions["new"], f"failed at step {k}"
        else:
            outcomes.add("written")
            assert inventory(out) == versions["new"], f"failed at step {k}"
        writer.write(out, NEW)
        assert leftovers(root) == []
    assert outcomes == {"refused", "swapped", "written"}


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *_):
        return False


@pytest.mark.slow
@settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kills=st.lists(st.tuples(st.integers(1, 80), st.booleans(), st.booleans()), min_size=1, max_size=4))
def test_a_series_of_interrupted_builds_then_one_that_ends(tmp_path_factory, versions, kills):
    """Builds of alternating versions, each stopped at some step (its recovery included), with or without
    the exchange: after each, a complete version is in place (or, between two renames, set aside)."""
    root = tmp_path_factory.mktemp("series")
    out = setup(root)
    for i, (k, exchange, to_new) in enumerate(kills):
        try:
            writer.write(out, NEW if to_new else OLD, Faulty(k, exchange=exchange))
        except Killed:
            pass
        if out.exists():
            assert inventory(out) in (versions["old"], versions["new"]), (i, kills)
        else:
            asides = [p for p in root.iterdir() if "-old-" in p.name]
            assert asides and all(inventory(p) in (versions["old"], versions["new"]) for p in asides), (i, kills)
    writer.write(out, NEW)
    assert inventory(out) == versions["new"]
    assert leftovers(root) == []


KILLED_BUILD = """
import sys
from pathlib import Path
from meshpolicy.output import writer
n, version = int(sys.argv[2]), sys.argv[3]
text = "metadata:\\n  name: p{}\\n  labels:\\n    app.kubernetes.io/managed-by: meshpolicy\\nversion: {}\\n"
files = {f"ns{i % 40}/policy-{i}.yaml": text.format(i, version) for i in range(n)}
print("start", flush=True)
writer.write(Path(sys.argv[1]), writer.with_kustomization(files))
"""


def versions_in(out: Path) -> set[str]:
    return {p.read_text().rsplit("version: ", 1)[1].strip() for p in out.rglob("policy-*.yaml")}


@pytest.mark.slow
def test_a_build_killed_with_sigkill_leaves_the_old_or_the_new_output(tmp_path):
    """A real process, killed at random moments: what is left is one whole version, and the next build cleans."""
    (tmp_path / "p").mkdir()
    (tmp_path / "q").mkdir()
    if not writer.FileSystem().exchange(tmp_path / "p", tmp_path / "q"):
        pytest.skip("this file system cannot exchange two folders atomically: the fallback has a window "
                    "(docs/output.md), which the fault-injection tests cover")
    out, n = tmp_path / "out", 600
    env = {**os.environ, "PYTHONPATH": str(ROOT)}

    def build(version: str) -> subprocess.Popen:
        proc = subprocess.Popen([sys.executable, "-c", KILLED_BUILD, out, str(n), version], env=env,
                                stdout=subprocess.PIPE)
        assert proc.stdout is not None and proc.stdout.readline() == b"start\n"
        return proc

    build("v0").wait()
    (out / "mine.txt").write_text("kept\n")
    started = time.monotonic()
    assert build("v1").wait() == 0
    whole = time.monotonic() - started  # a build over an existing output, from "start" to its end
    seen, rng = {"v0", "v1"}, random.Random(9)
    for attempt in range(2, 8):
        proc = build(f"v{attempt}")
        time.sleep(rng.uniform(0, whole))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        seen.add(f"v{attempt}")
        assert out.is_dir(), "a build killed with SIGKILL left no output folder"
        [version] = versions_in(out)  # one version, whole
        assert version in seen and len(list(out.rglob("policy-*.yaml"))) == n, attempt
        assert (out / "mine.txt").read_text() == "kept\n"
    assert build("last").wait() == 0
    assert versions_in(out) == {"last"} and leftovers(tmp_path) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "p", "q"]


def test_a_dangling_symlinked_out_creates_the_folder_it_names(tmp_path):
    link = tmp_path / "deploy"
    link.symlink_to("releases/7")
    (tmp_path / "releases").mkdir()
    writer.write(link, NEW)
    assert link.is_symlink() and (tmp_path / "releases" / "7" / "c" / "z.yaml").read_text() == NEW["c/z.yaml"]


def test_only_build_recovers_leftovers(tmp_path):
    """``--check`` and ``verify`` change nothing, not even an interrupted build's leftovers."""
    out = tmp_path / "out"
    invoke(["build", ROOT / "examples" / "shop", "-t", "istio", "-o", out])
    (tmp_path / ".out.meshpolicy-new-99").mkdir()
    invoke(["build", ROOT / "examples" / "shop", "-t", "istio", "-o", out, "--check"])
    invoke(["verify", ROOT / "examples" / "shop", "-t", "istio", "-o", out])
    assert leftovers(tmp_path) == [".out.meshpolicy-new-99"]
    invoke(["build", ROOT / "examples" / "shop", "-t", "istio", "-o", out])
    assert leftovers(tmp_path) == []
