"""Hostile files in the output folder (issue 9 item 6, docs/output.md): read only bounded ``.yaml`` files.

Regression tests first (each crashed or exhausted memory before its fix), then a fuzz of the folder's
contents through ``build``, ``build --check`` and ``verify``: never a traceback, never a foreign file removed.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from helpers import ROOT, invoke
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meshpolicy.output import folder

EXAMPLE = ROOT / "examples" / "shop"
#: a hostile file names the label (a file that does not is never parsed: it cannot be meshpolicy's)
DEEP = ("metadata:\n  labels:\n    app.kubernetes.io/managed-by: meshpolicy\nspec: "
        + "[" * 100_000 + "]" * 100_000 + "\n")


def built(tmp_path: Path) -> Path:
    out = tmp_path / "out"
    invoke(["build", EXAMPLE, "-t", "istio", "-o", out])
    return out


def commands(out: Path) -> list[list]:
    return [["build", EXAMPLE, "-t", "istio", "-o", out, "--check"],
            ["verify", EXAMPLE, "-t", "istio", "-o", out],
            ["explain", EXAMPLE, "shop/frontend", "->", "shop/orders", "-t", "istio", "-o", out],
            ["build", EXAMPLE, "-t", "istio", "-o", out]]


@pytest.mark.parametrize("name", ["notes.txt", "shop/deep.yaml", "shop/notes.yml", "deep.yaml"])
def test_a_deeply_nested_file_anywhere_is_foreign_with_a_warning(tmp_path, name):
    out = built(tmp_path)
    (out / name).write_text(DEEP)
    for args in commands(out):
        result = invoke(args)
        if name.endswith(".yaml"):
            assert f"warning[MP405]: {out / name}: " in result.output, args
            assert "nested deeper than" in result.output
        else:
            assert "MP405" not in result.output  # never read: not a .yaml file
    assert (out / name).read_text() == DEEP


def test_a_deeply_nested_file_where_the_build_must_write_is_mp401(tmp_path):
    out = built(tmp_path)
    (out / "shop" / "authorizationpolicy-allow-nothing.yaml").write_text(DEEP)
    result = invoke(["build", EXAMPLE, "-t", "istio", "-o", out], code=2)
    assert "error[MP401]" in result.output and "was not written by meshpolicy" in result.output
    assert (out / "shop" / "authorizationpolicy-allow-nothing.yaml").read_text() == DEEP


@pytest.mark.slow
def test_a_huge_file_is_not_read(tmp_path):
    """A 1 GiB file (sparse: no disk used) under a 900 MiB address-space limit: never read whole."""
    out = built(tmp_path)
    for name in ("huge.yaml", "shop/huge.txt"):
        with open(out / name, "wb") as fh:
            fh.truncate(1 << 30)
    script = """
import resource, sys
resource.setrlimit(resource.RLIMIT_AS, (900 << 20, 900 << 20))
from meshpolicy.cli import main
sys.argv = ["meshpolicy"] + sys.argv[1:]
main()
"""
    for args in commands(out):
        proc = subprocess.run([sys.executable, "-c", script, *map(str, args)], check=False, capture_output=True,
                              text=True, timeout=300)  # the same working folder as built()
        assert proc.returncode == 0, (args, proc.stderr[-2000:])
        output = proc.stdout + proc.stderr
        assert "Traceback" not in output
        assert f"warning[MP405]: {out / 'huge.yaml'}: larger than" in output
        assert "huge.txt" not in output
    assert os.path.getsize(out / "huge.yaml") == 1 << 30 and os.path.getsize(out / "shop" / "huge.txt") == 1 << 30


def test_a_yaml_file_within_the_bound_but_slow_to_read_is_not_parsed_in_full(tmp_path):
    """Anchors and aliases are never written by meshpolicy: a file holding them is foreign, unparsed."""
    out = built(tmp_path)
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
        for i in range(20))
    bomb += "metadata: {labels: {app.kubernetes.io/managed-by: meshpolicy}}\n"
    (out / "shop" / "bomb.yaml").write_text(bomb)
    for args in commands(out):
        result = invoke(args)
        assert f"warning[MP405]: {out / 'shop' / 'bomb.yaml'}: " in result.output
    assert (out / "shop" / "bomb.yaml").read_text() == bomb



# -- fuzz: whatever the folder holds ---------------------------------------------

LABEL = "metadata:\n  labels:\n    app.kubernetes.io/managed-by: meshpolicy\n"
NAMES = st.sampled_from(["a", "b.yaml", "notes.txt", "kustomization.yaml", "kustomization.yml", "x.yaml",
                         "authorizationpolicy-allow-nothing.yaml", "peerauthentication-default.yaml", "-", "é.yaml"])
FOLDERS = st.lists(st.sampled_from(["shop", "default", "istio-system", "extra", "a.yaml", "deep"]), max_size=3)
CONTENT = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=300).map(str.encode),
    st.integers(1, 3000).map(lambda n: (LABEL + "spec: " + "[" * n + "]" * n + "\n").encode()),
    st.integers(1, 3000).map(lambda n: (LABEL + "spec:\n" + "".join(" " * i + "- \n" for i in range(n))).encode()),
    st.text(max_size=200).map(lambda t: (LABEL + t).encode()),
    st.just((LABEL + "a: &x [1]\nb: *x\n").encode()),
    st.just((LABEL + "---\n" + LABEL).encode()),
    st.just(b"\xff\xfe" + LABEL.encode()),
    st.just(LABEL.encode() + b"kind: Foo\n"),  # managed: the build may remove it, and that is right
    st.sampled_from(["someone-else", "meshpolicy ", "[meshpolicy]", "{a: b}", "", "!!binary bWVzaA=="]).map(
        lambda v: LABEL.replace("meshpolicy\n", v + "\n").encode()),
    st.just(LABEL.replace("labels:\n", "labels: 5\n  x:\n").encode()),
    st.sampled_from(["2001-13-45", "2001-01-01 00:00:00 +99:00", "!!binary x", "!!timestamp x", "!foo x",
                     "!!python/object:os.system x", "0o8", "1_000", ".nan"]).map(lambda v: (LABEL + f"x: {v}\n").encode()),
    st.just(("- " + LABEL).encode()),
)
ENTRY = st.tuples(FOLDERS, NAMES, st.sampled_from(["file", "file", "file", "big", "folder", "fifo", "link-file",
                                                     "link-folder", "link-dangling", "link-loop", "link-out"]),
                  CONTENT)


def plant(out: Path, entries) -> None:
    for folders, name, kind, content in entries:
        where = out.joinpath(*folders)
        path = where / name
        if os.path.lexists(path) or any(p.exists() and not p.is_dir() for p in [where, *where.parents]):
            continue
        where.mkdir(parents=True, exist_ok=True)
        if kind == "file":
            path.write_bytes(content)
        elif kind == "big":  # sparse: beyond the bound without using the disk
            with open(path, "wb") as fh:
                fh.write(content)
                fh.truncate(5 << 20)
        elif kind == "folder":
            path.mkdir()
        elif kind == "fifo":
            os.mkfifo(path)
        elif kind == "link-file":
            path.symlink_to(out / "kustomization.yaml")
        elif kind == "link-folder":
            path.symlink_to(out / "shop")
        elif kind == "link-dangling":
            path.symlink_to("nowhere")
        elif kind == "link-loop":
            path.symlink_to(name)
        else:
            path.symlink_to(out.parent)


def foreign_by_construction(out: Path) -> dict[str, tuple]:
    """What can never be meshpolicy's, decided without its reader, with its kind and content: anything but a
    regular ``.yaml`` file, one beyond the size bound, and one that is not a labelled mapping."""
    found = {}
    for path in sorted(out.rglob("*")):
        rel = path.relative_to(out).as_posix()
        st_ = path.lstat()
        if stat.S_ISLNK(st_.st_mode):
            found[rel] = ("link", os.readlink(path))
        elif stat.S_ISFIFO(st_.st_mode):
            found[rel] = ("fifo",)
        elif stat.S_ISREG(st_.st_mode):
            head = path.read_bytes()[:1000] if st_.st_size <= (1 << 20) else None
            if not path.name.endswith(".yaml") or st_.st_size > folder.MAX_BYTES:
                found[rel] = ("file", st_.st_size, head)
            elif rel == "kustomization.yaml":
                if not path.read_bytes().startswith(folder.MARKER.encode()):
                    found[rel] = ("file", path.read_bytes())
            elif not _labelled(path.read_bytes()):
                found[rel] = ("file", path.read_bytes())
    return found


def _labelled(data: bytes) -> bool:
    try:
        doc = yaml.load(data.decode("utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except (UnicodeDecodeError, yaml.YAMLError, RecursionError):
        return False
    metadata = doc.get("metadata") if isinstance(doc, dict) else None
    labels = metadata.get("labels") if isinstance(metadata, dict) else None
    return isinstance(labels, dict) and labels.get("app.kubernetes.io/managed-by") == "meshpolicy"


@pytest.fixture(scope="module")
def built_once(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("built") / "out"
    invoke(["build", EXAMPLE, "-t", "istio", "-o", out])
    return out


@pytest.mark.slow
@settings(max_examples=30, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(entries=st.lists(ENTRY, max_size=8))
def test_whatever_the_folder_holds_no_command_crashes_or_removes_a_foreign_file(tmp_path_factory, built_once,
                                                                                 entries):
    out = tmp_path_factory.mktemp("fuzz") / "out"
    shutil.copytree(built_once, out, symlinks=True)
    plant(out, entries)
    foreign = foreign_by_construction(out)
    for args, codes in ((["build", EXAMPLE, "-t", "istio", "-o", out, "--check"], (0, 1, 2)),
                        (["verify", EXAMPLE, "-t", "istio", "-o", out], (0, 1)),
                        (["build", EXAMPLE, "-t", "istio", "-o", out, "--no-verify"], (0, 2))):
        result = invoke(args, code=None)
        assert result.exit_code in codes, (args, result.output)
        if result.exit_code == 2:
            assert "error[MP401]" in result.output, result.output
    after = foreign_by_construction(out)
    assert {k: v for k, v in after.items() if k in foreign} == foreign
    assert not [p for p in out.parent.iterdir() if ".meshpolicy-" in p.name]


@pytest.mark.parametrize("body, why", [
    ("resources:\n- " + "[" * 100 + "]" * 100 + "\n", "nested deeper than 64 levels"),
    ("resources: &r [a.yaml]\nx: *r\n", "uses YAML anchors or aliases"),
])
def test_a_kustomization_beyond_the_bounds_is_refused_by_verify(tmp_path, body, why):
    out = built(tmp_path)
    (out / "kustomization.yaml").write_text(body)
    result = invoke(["verify", EXAMPLE, "-t", "istio", "-o", out], code=1)
    assert f"error[MP501]: kustomization.yaml: {why}" in result.output


def test_a_labelled_file_the_yaml_constructor_refuses_is_foreign_with_a_warning(tmp_path):
    """A date that does not exist raised ValueError from PyYAML's constructor: a traceback, before."""
    out = built(tmp_path)
    bad = LABEL + "x: 2001-13-45\n"
    (out / "shop" / "bad.yaml").write_text(bad)
    for args in commands(out):
        result = invoke(args)
        assert f"warning[MP405]: {out / 'shop' / 'bad.yaml'}: not valid YAML (month must be in 1..12)" in result.output
    assert (out / "shop" / "bad.yaml").read_text() == bad
