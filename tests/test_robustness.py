"""Never a traceback: mangled policies and mangled command lines end in exit 0, 1 or 2 with a message.

Two property tests feed the CLI (in-process, as a user runs it):

* the corpus (``tests/cases``, ``examples``) mutated at random — lines deleted, duplicated, swapped or
  spliced in from other files, tokens replaced by keywords and stray punctuation, random characters,
  huge numbers, overlong names — through ``check``, ``build`` for every target, ``lint``, ``fmt --check``
  and ``explain``;
* random argument vectors for every command: missing values, unknown options, bad enumerations,
  nonexistent paths, files where folders belong and folders where files belong.

Exit 1 must come with a located diagnostic (``file:line:col: error[...]``) or one of the documented
place-less ones; exit 2 with a usage message. Below them, one focused test per crash the properties
found (each was a traceback before its fix).
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import tempfile
from contextlib import chdir
from pathlib import Path

import pytest
import yaml
from helpers import CASES, ROOT, invoke
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meshpolicy.backends import TARGETS
from meshpolicy.parse.errors import KEYWORDS

SETTINGS = {"deadline": None, "derandomize": True,
            "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large]}

CORPUS = [p.read_text(encoding="utf-8") for p in sorted(CASES.rglob("*.mesh")) + sorted((ROOT / "examples").rglob("*.mesh"))]

TOKENS = ["namespace", "service", "allow", "deny", "never", "group", "mtls", "strict", "permissive", "on",
          "external", "account", "labels", "probes", "trust-domain", "any", "grpc", "*", "->", "{", "}", "=", ",",
          ":", "/", "#", "\\", "GET", "get", ":8080/http", ":8080/udp", ":0", ":65536", ":99999999999999999999999",
          "9" * 40, "10.0.0.0/8", "10.0.0.1/8", "::/0", "2001:db8::/129", "app=x", "a=", "=b", "/a/*", "/*", "//",
          "/a/../b", "pkg.S/M", "pkg.S", "x/*", "a/b/c", "n" * 64, "n" * 300, "caf\u00e9", "\u2028", "\u00a0",
          "\ufeff", "\u00b2", "\U0001f600", "\t", "\r", "\x00", "\x0c"]

#: exit 1: a located diagnostic, or a documented one without a place (output folder, verification, drift)
LOCATED = re.compile(r"^\S+:\d+:\d+: error\[MP\d{3}\]", re.MULTILINE)
PLACELESS = re.compile(r"^error\[MP(401|402|403|501)\]", re.MULTILINE)
USAGE = re.compile(r"^meshpolicy: error: |^error\[MP401\]", re.MULTILINE)


def assert_sane(args: list, result) -> None:
    """The contract of every command: 0, 1 with a diagnostic, or 2 with a usage message; no traceback."""
    shown = f"meshpolicy {' '.join(map(str, args))}\n{result.output}"
    assert result.exit_code in (0, 1, 2), shown
    assert "Traceback" not in result.output, shown
    command = str(args[0])
    if result.exit_code == 1:
        assert (LOCATED.search(result.output) or PLACELESS.search(result.output)
                or command == "lint" and re.search(r"^\S+:\d+:\d+: warning\[ML\d{3}\]", result.output, re.MULTILINE)
                or command == "fmt" and re.search(r"^would reformat |^--- a/", result.output, re.MULTILINE)
                or command == "diff" and result.output.startswith("access changed")), shown
    if result.exit_code == 2:
        assert USAGE.search(result.output), shown
    if command == "build":  # the compiler's own output must always verify: MP501 on a build is a backend bug
        assert "error[MP501]" not in result.output, shown


# -- mutated policies ----------------------------------------------------------------

@st.composite
def mutated(draw) -> str:
    lines = draw(st.sampled_from(CORPUS)).split("\n")
    for op in draw(st.lists(st.integers(0, 9), min_size=1, max_size=6)):
        at = draw(st.integers(0, max(len(lines) - 1, 0)))
        if not lines:
            lines = [""]
        words = lines[at].split(" ")
        if op == 0:
            del lines[at]
        elif op == 1:
            lines.insert(at, lines[at])
        elif op == 2:
            other = draw(st.integers(0, len(lines) - 1))
            lines[at], lines[other] = lines[other], lines[at]
        elif op == 3:
            words.insert(draw(st.integers(0, len(words))), draw(st.sampled_from(TOKENS)))
            lines[at] = " ".join(words)
        elif op == 4:
            words[draw(st.integers(0, len(words) - 1))] = draw(st.sampled_from(TOKENS))
            lines[at] = " ".join(words)
        elif op == 5:
            cut = draw(st.integers(0, len(lines[at])))
            lines[at] = lines[at][:cut] + draw(st.characters(codec="utf-8")) + lines[at][cut:]
        elif op == 6:
            cut = draw(st.integers(0, len(lines[at])))
            lines[at] = lines[at][:cut] + lines[at][cut + 1:]
        elif op == 7:
            big = draw(st.sampled_from(["0", "65536", "99999999999999999999", "1" * 50]))
            lines[at] = re.sub(r"\d+", big, lines[at], count=1)
        elif op == 8:  # an overlong name where a name stands (not a keyword: that is a plain syntax error)
            names = [m for m in re.finditer(r"\b[a-z][a-z0-9-]*\b", lines[at]) if m.group() not in KEYWORDS]
            if names:
                m = names[draw(st.integers(0, len(names) - 1))]
                long = "n" * draw(st.sampled_from([63, 64, 253, 300]))
                lines[at] = lines[at][:m.start()] + long + lines[at][m.end():]
        else:
            donor = draw(st.sampled_from(CORPUS)).split("\n")
            start = draw(st.integers(0, len(donor) - 1))
            lines[at:at] = donor[start:start + draw(st.integers(1, 4))]
    return "\n".join(lines)


@st.composite
def questions(draw, text: str) -> list[str]:
    """``FROM -> TO [METHOD] [PATH] [:PORT]`` from the names the text declares, and some that it does not."""
    services = re.findall(r"service\s+(\S+)", text) or ["web"]
    spaces = re.findall(r"namespace\s+(\S+)", text) + ["default", "nowhere"]

    def ref() -> str:
        return f"{draw(st.sampled_from(spaces))}/{draw(st.sampled_from(services))}"

    caller = draw(st.sampled_from([ref(), ref(), "10.1.2.3", f"{draw(st.sampled_from(spaces))}/*", "any"]))
    tail = draw(st.lists(st.sampled_from(["GET", "POST", "DELETE", "/api/orders/1", "/healthz", ":8080", ":9090",
                                          ":8443", ":7000", ":1", "grpc", "payments.v1.Payments/Charge"]),
                         max_size=3))
    return [caller, "->", ref(), *tail]


@pytest.mark.slow
@settings(max_examples=80, **SETTINGS)
@given(data=st.data())
def test_mutated_policies_never_crash_a_command(data):
    text = data.draw(mutated(), label="policy")
    with tempfile.TemporaryDirectory() as tmp:
        policy = Path(tmp) / "p.mesh"
        policy.write_text(text, encoding="utf-8")
        runs = [["check", policy], *(["build", policy, "-t", t, "-o", Path(tmp) / t] for t in sorted(TARGETS)),
                ["lint", policy], ["fmt", "--check", policy],
                ["explain", policy, *data.draw(questions(text), label="question"),
                 *data.draw(st.sampled_from([[], ["--plaintext"], ["-t", "istio"], ["-t", "linkerd"]]))]]
        for args in runs:
            assert_sane(args, invoke(args, code=None))


# -- mangled command lines ---------------------------------------------------------------

OPTIONS = {
    "build": ["-t", "--target", "-o", "--out", "--mode", "--check", "--crds", "--format", "--no-verify",
              "--linkerd-routes"],
    "check": ["--format"],
    "verify": ["-t", "-o", "--mode", "--format"],
    "explain": ["--plaintext", "--ip", "-t", "-o", "--mode", "--format"],
    "diff": ["--base", "--format"],
    "lint": ["--format", "--disable"],
    "fmt": ["--check", "--diff"],
    "targets": [],
}
FLAGS = {"--check", "--no-verify", "--plaintext", "--diff", "--help", "--bogus", "-x"}
FOLDER_OPTIONS = {"-o", "--out", "--crds"}
VALUES = ["", "istio", "linkerd", "consul", "enforce", "audit", "json", "human", "github", "sarif", "markdown",
          "text", "gateway", "policy", "ML001", "ML999", "redundant-allow", "HEAD", "HEAD~999", "-", "--",
          "\u00e9", "\u00b2", "1" * 40, "::1", "10.0.0.1", "999.1.1.1", "a" * 300, "dead-allow,ML001", ","]
QUERY = ["shop/frontend", "->", "shop/orders", "GET", "get", "/api/orders/1", "/a?b", ":8080", ":\u00b2", ":0",
         ":99999", "grpc", "payments.v1.Payments/Charge", "shop/*", "10.1.2.3", "any", "*",
         "shop/frontend->shop/orders", "->->", "monitoring/prometheus", "shop/legacy", ":7000", "default/web"]


class Places:
    """Every kind of path a user may give: a policy, a file, folders of every sort, paths that cannot be."""

    def __init__(self, root: Path):
        self.root = root
        self.policy = root / "policy"
        shutil.copytree(ROOT / "examples" / "shop", self.policy)
        latin1 = root / "latin1"
        latin1.mkdir()
        (latin1 / "p.mesh").write_bytes(b"# caf\xe9\n")
        (root / "empty").mkdir()
        (root / "notes.txt").write_text("not policy\n")
        broken = root / "broken"
        broken.mkdir()
        (broken / "p.mesh").write_text("allow nobody -> nothing\n")
        crds = root / "crds"
        crds.mkdir()
        (crds / "bad.yaml").write_text("kind: CustomResourceDefinition\nspec: {group: g, names: k, versions: [1]}\n")
        self.built = root / "built"
        invoke(["build", self.policy, "-t", "istio", "-o", self.built])
        (self.built / "shop" / "odd.yaml").write_text("kind: AuthorizationPolicy\nmetadata: [hand, edited]\n")
        self.paths = [self.policy, self.policy / "shop.mesh", latin1, root / "empty", root / "notes.txt", broken,
                      root / "missing", root / "missing.mesh", root / "notes.txt" / "under", self.built,
                      root / ("n" * 300), "", "-"]
        self.folders = [root / "out", root / "notes.txt", root / "notes.txt" / "sub", self.built, root / "empty",
                        self.policy, crds, root / "deep" / "er", root / ("n" * 300), ""]

    def reset(self) -> None:
        """``fmt`` rewrites in place: give every example the same policy."""
        shutil.rmtree(self.policy)
        shutil.copytree(ROOT / "examples" / "shop", self.policy)


@pytest.fixture(scope="module")
def places(tmp_path_factory) -> Places:
    return Places(tmp_path_factory.mktemp("places"))


@st.composite
def command_lines(draw, places: Places) -> list:
    command = draw(st.sampled_from(sorted(OPTIONS)))
    args: list = [command, *draw(st.lists(st.sampled_from(places.paths), max_size=3))]
    if command == "explain":
        args += draw(st.lists(st.sampled_from(QUERY), max_size=6))
    for option in draw(st.lists(st.sampled_from(OPTIONS[command] + ["--bogus", "-x", "--help"]), max_size=5)):
        args.append(option)
        if option in FLAGS or draw(st.integers(0, 12)) == 0:  # a flag, or a value left out
            continue
        args.append(draw(st.sampled_from(places.folders if option in FOLDER_OPTIONS else VALUES)))
    if draw(st.booleans()):
        args[1:] = draw(st.permutations(args[1:]))
    return args


@pytest.mark.slow
@settings(max_examples=250, **SETTINGS)
@given(data=st.data())
def test_mangled_command_lines_end_in_a_message_and_a_documented_code(places, data):
    args = data.draw(command_lines(places), label="argv")
    with chdir(places.root):  # diff --base asks git about the working folder: not this repository
        try:
            assert_sane(args, invoke(args, code=None))
        finally:
            places.reset()


# -- the crashes these properties found, one test each --------------------------------------------

def test_a_path_whose_name_is_too_long_is_a_usage_error(tmp_path):
    for command in (["check"], ["fmt", "--check"], ["lint"]):
        result = invoke([*command, tmp_path / ("n" * 300)], code=2)
        assert "cannot read (File name too long)" in result.output


def test_out_below_a_file_is_mp401_and_writes_nothing(tmp_path):
    (tmp_path / "notes.txt").write_text("mine\n")
    result = invoke(["build", ROOT / "examples" / "shop", "-t", "istio", "-o", tmp_path / "notes.txt" / "out"], code=2)
    assert f"error[MP401]: {tmp_path / 'notes.txt' / 'out'} cannot be created: {tmp_path / 'notes.txt'} is not a " \
           "folder" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_check_against_an_out_that_is_a_file_is_mp401_not_drift(tmp_path):
    (tmp_path / "notes.txt").write_text("mine\n")
    result = invoke(["build", ROOT / "examples" / "shop", "-t", "istio", "-o", tmp_path / "notes.txt", "--check"],
                    code=2)
    assert "exists and is not a folder" in result.output and "MP403" not in result.output


def test_a_write_the_file_system_refuses_is_mp401_in_every_format(tmp_path, monkeypatch):
    def full(*_):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr("meshpolicy.output.writer.FileSystem.write", full)
    out = tmp_path / "out"
    result = invoke(["build", ROOT / "examples" / "shop", "-t", "istio", "-o", out], code=2)
    assert f"error[MP401]: cannot write {out}: No space left on device" in result.output
    result = invoke(["build", ROOT / "examples" / "shop", "-t", "istio", "-o", out, "--format", "json",
                     "--namespaces", "emit"], code=2)  # with Namespaces, no note (MP303) before the error
    [record] = yaml.safe_load(result.output)
    assert record["code"] == "MP401" and record["severity"] == "error"
    assert not out.exists()


def test_fmt_that_cannot_rewrite_a_file_is_a_usage_error(tmp_path, monkeypatch):
    (tmp_path / "p.mesh").write_text("service   web :8080/http\n")

    def refuse(self, *args, **kwargs):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(self))

    monkeypatch.setattr(Path, "write_text", refuse)
    result = invoke(["fmt", tmp_path / "p.mesh"], code=2)
    assert f"meshpolicy: error: {tmp_path / 'p.mesh'}: Permission denied" in result.output


@pytest.mark.parametrize("crd, why", [
    ({"spec": {"group": "security.istio.io", "names": {"kind": "AuthorizationPolicy"},
               "versions": [{"name": "v1", "schema": {"openAPIV3Schema": {"type": "object", "properties": [1]}}}]}},
     "openAPIV3Schema must be an object schema"),
    ({"spec": {"group": "security.istio.io", "names": "AuthorizationPolicy", "versions": ["v1"]}}, "TypeError"),
    ({"spec": {"group": "security.istio.io", "names": {"kind": "AuthorizationPolicy"},
               "versions": [{"name": "v1", "schema": {"openAPIV3Schema": {"type": 5}}}]}}, "is not valid under"),
    ({"spec": {"names": {"kind": "AuthorizationPolicy"}, "versions": []}}, "KeyError"),
])
def test_a_malformed_crd_is_a_usage_error_naming_the_file(tmp_path, crd, why):
    (tmp_path / "crds").mkdir()
    (tmp_path / "crds" / "ap.yaml").write_text(yaml.safe_dump({"kind": "CustomResourceDefinition", **crd}))
    result = invoke(["build", ROOT / "examples" / "shop", "-t", "istio", "-o", tmp_path / "out",
                     "--crds", tmp_path / "crds"], code=2)
    assert f"--crds: {tmp_path / 'crds' / 'ap.yaml'}: not a usable CustomResourceDefinition (" in result.output
    assert why in result.output


@pytest.mark.parametrize("words, message", [
    ([":\u00b2"], "<question>:1:30: error[MP001]: unexpected character ':'"),  # str.isdigit() took it, int() not
    ([":\u0663"], "<question>:1:30: error[MP001]: unexpected character ':'"),  # an Arabic-Indic digit: no port
    (["GET", "PUT"], "<question>:1:34: error[MP001]: unexpected 'PUT'"),    # was silently the last one
    (["/a", "/b"], "<question>:1:33: error[MP001]: unexpected '/b'"),
    (["GET", "grpc", "pkg.S/M"], "<question>:1:34: error[MP001]: unexpected 'grpc'"),
    (["GET\n"], "<question>:1:33: error[MP001]: unexpected end of line"),
])
def test_explain_refuses_questions_it_cannot_read(words, message):
    result = invoke(["explain", ROOT / "examples" / "shop", "shop/frontend", "->", "shop/orders", *words], code=2)
    assert message in result.output


@pytest.mark.parametrize("metadata", ["metadata: []", "metadata: x", "metadata:\n  labels: [a, b]",
                                      "metadata:\n  labels: app.kubernetes.io/managed-by"])
def test_a_hand_edited_file_of_any_shape_in_the_output_folder_is_foreign(tmp_path, metadata):
    out = tmp_path / "out"
    invoke(["build", ROOT / "examples" / "shop", "-t", "istio", "-o", out])
    (out / "shop" / "odd.yaml").write_text(f"kind: AuthorizationPolicy\n{metadata}\n")
    invoke(["verify", ROOT / "examples" / "shop", "-t", "istio", "-o", out])
    invoke(["build", ROOT / "examples" / "shop", "-t", "istio", "-o", out, "--check"])
    invoke(["build", ROOT / "examples" / "shop", "-t", "istio", "-o", out])
    assert (out / "shop" / "odd.yaml").read_text() == f"kind: AuthorizationPolicy\n{metadata}\n"


def group_chain(depth: int, copies: int) -> str:
    """``g0 = g1 (, g1 ...)``, ..., the last group holding a service and ``*``: deep, or doubling at every level."""
    lines = ["namespace shop {", "  service a :80/http", "  service b :80/http"]
    lines += [f"  group g{i} = " + ", ".join([f"g{i + 1}"] * copies) for i in range(depth)]
    lines += [f"  group g{depth} = a, *", "  allow g0 -> b GET", "  allow b -> g0", "}"]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("depth, copies", [pytest.param(3000, 1, id="3000-deep", marks=pytest.mark.slow),
                                           pytest.param(60, 2, id="doubling-60-times")])
def test_long_and_doubling_chains_of_groups_resolve_lint_and_build(tmp_path, depth, copies):
    """Was a RecursionError (the resolver and lint expanded groups recursively), and 2**60 expansions."""
    policy = tmp_path / "p.mesh"
    policy.write_text(group_chain(depth, copies))
    assert "ok: 2 services, 3 rules" in invoke(["check", policy]).output
    assert "warning[ML007]: destination '*' (through group 'g0')" in invoke(["lint", policy], code=1).output
    for target in sorted(TARGETS):
        invoke(["build", policy, "-t", target, "-o", tmp_path / target])


def test_a_group_used_twice_reports_its_broken_member_once(tmp_path):
    policy = tmp_path / "p.mesh"
    policy.write_text("service x :80/http\ngroup g = nobody\nallow g, g -> x\ngroup h = g, g\nallow h -> x\n")
    result = invoke(["check", policy], code=1)
    assert result.output.count("error[MP103]: 'nobody' is not declared") == 1
    assert result.output.endswith("1 error(s), 0 warning(s)\n")


def test_group_cycles_are_still_reported_from_every_group_on_them(tmp_path):
    policy = tmp_path / "p.mesh"
    policy.write_text("service a :80/http\ngroup x = y\ngroup y = z, a\ngroup z = x\nallow x -> a\nallow a -> y\n")
    output = invoke(["check", policy], code=1).output
    assert "error[MP104]: group cycle: default/x -> default/y -> default/z -> default/x" in output
    assert "error[MP104]: group cycle: default/y -> default/z -> default/x -> default/y" in output


@pytest.mark.parametrize("out", [".", "..", "{cwd}"])
def test_the_working_folder_or_one_above_it_is_not_an_output_folder(tmp_path, monkeypatch, out):
    """Was a traceback for '.' (rename of the working folder), and for '{cwd}' a build that left the shell in a
    deleted folder."""
    work = tmp_path / "deploy"
    work.mkdir()
    (work / "mine.txt").write_text("kept\n")
    monkeypatch.chdir(work)
    result = invoke(["build", ROOT / "examples" / "shop", "-t", "istio", "-o", out.format(cwd=work)], code=2)
    assert "is the working folder or holds it" in result.output
    assert sorted(p.name for p in work.iterdir()) == ["mine.txt"]
