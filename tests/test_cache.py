"""The build cache (docs/cache.md): a cached build writes and says exactly what an uncached one does.

Every kind of edit (a rule, a service, a group, a file added or removed, the trust domain, an option,
the mode, the target) is built twice after the cache was filled with the policy before the edit, once
with the cache and once without, and both must give the same files and the same diagnostics, byte for
byte. The counts of the store say that the cache was used, and that exactly what the edit touches was
recomputed. Corrupted, foreign and forged entries are ignored; an unsafe folder is refused.
"""

from __future__ import annotations

import os
import shutil
import stat
from dataclasses import replace
from pathlib import Path

import pytest
from helpers import TESTS, builds, case_paths, invoke, source
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meshpolicy import pipeline
from meshpolicy import verify as verifier
from meshpolicy.backends import TARGETS, get_backend
from meshpolicy.backends.base import slices
from meshpolicy.cache import BuildCache, code_digest, codec, lowering, open_cache
from meshpolicy.cache import verification as cached_verification
from meshpolicy.cache.store import BLOCK, MAGIC, Store, _on_disk
from meshpolicy.diagnostics import MeshError, render_text
from meshpolicy.graph.model import Action, Rule
from meshpolicy.parse import parse_file
from meshpolicy.source import SourceFile, Span

BASE = {
    "mesh.mesh": "mtls strict\n\nnamespace ops external {\n  service prom account prometheus\n}\n",
    "shop.mesh": """namespace shop {
  service frontend :8080/http
  service orders :8080/http :9090/tcp probes /healthz
  service payments :8443/grpc
  group backends = orders, payments
  allow frontend -> orders GET,POST /api/* :8080
  allow ops/prom -> backends :9090
  allow frontend -> payments grpc pay.v1.Pay/Charge
  deny * -> orders DELETE
  allow backends -> frontend GET
}
""",
    "bank.mesh": """namespace bank {
  service ledger :8080/http :5432/tcp
  service audit :8080/http
  allow shop/orders -> ledger POST /entries :8080
  allow audit -> ledger :5432
  allow 10.0.0.0/8 -> audit GET
}
""",
    "web.mesh": """namespace web {
  service site :80/http
  allow any -> site :80
  allow shop/frontend -> site GET /status
}
""",
}


def sources(files: dict[str, str]) -> list[SourceFile]:
    return [SourceFile(name, text) for name, text in sorted(files.items())]


def run(files: dict[str, str], target: str, cache: BuildCache | None, mode: str = "enforce",
        **options) -> tuple[dict[str, str] | None, str]:
    """The files of a build and its diagnostics, rendered; files None when the build fails."""
    srcs = sources(files)
    by_name = {s.name: s for s in srcs}
    try:
        result = pipeline.lower(pipeline.analyze(srcs, cache=cache), target, mode, **options)
    except MeshError as err:
        return None, "\n".join(render_text(d, by_name) for d in err.diagnostics)
    return result.files, "\n".join(render_text(d, by_name) for d in result.diagnostics)


def fresh(folder: Path) -> BuildCache:
    cache, notes = open_cache(folder)
    assert cache is not None and notes == []
    return cache


def assert_same(files: dict[str, str], target: str, folder: Path, mode: str = "enforce", **options) -> BuildCache:
    """A build with the cache in ``folder`` equals one without; returns the cache, to read its counts."""
    cache = fresh(folder)
    cached = run(files, target, cache, mode, **options)
    uncached = run(files, target, None, mode, **options)
    assert cached == uncached
    return cache


def counts(cache: BuildCache, kind: str) -> tuple[int, int]:
    hits, misses = cache.store.stats.kinds.get(kind, [0, 0])
    return hits, misses


def edited(name: str, old: str, new: str, files: dict[str, str] = BASE) -> dict[str, str]:
    assert old in files[name], old
    return {**files, name: files[name].replace(old, new)}


# -- invalidation, one kind of edit at a time ---------------------------------------------------------------

EDITS = {
    # name: (the policy after the edit, the namespaces whose verdicts must be recomputed)
    "a rule": (edited("bank.mesh", "allow audit -> ledger :5432", "allow audit -> ledger :8080"), {"bank"}),
    "a rule's methods": (edited("shop.mesh", "GET,POST /api/*", "GET /api/*"), {"shop"}),
    "a rule added": (edited("web.mesh", "  allow any", "  allow bank/audit -> site :80\n  allow any"), {"web"}),
    "a service": (edited("web.mesh", "service site :80/http", "service site :80/http :81/http"), "all"),
    "a service's account": (edited("bank.mesh", "service audit :8080/http", "service audit account aud :8080/http"),
                            "all"),
    "a group": (edited("shop.mesh", "group backends = orders, payments", "group backends = orders"), {"shop"}),
    "a file added": ({**BASE, "extra.mesh": "namespace extra {\n  service x :80/http\n  allow web/site -> x\n}\n"},
                     "all"),
    "a file removed": ({k: v for k, v in BASE.items() if k != "web.mesh"}, "all"),
    "the trust domain": ({**BASE, "mesh.mesh": "trust-domain example.org\n" + BASE["mesh.mesh"]}, "all"),
    "the mesh's mtls": (edited("mesh.mesh", "mtls strict", "mtls permissive"), "all"),
}


@pytest.mark.parametrize("target", sorted(TARGETS))
@pytest.mark.parametrize("edit", sorted(EDITS))
def test_an_edit_rebuilds_what_it_touches_and_nothing_else(target, edit, tmp_path):
    policy, recomputed = EDITS[edit]
    folder = tmp_path / "cache"
    assert_same(BASE, target, folder)  # fills the cache with the policy before the edit
    cache = assert_same(policy, target, folder)
    assert cache.store.stats.hits > 0, "the cache was not used"
    hits, misses = counts(cache, "verify")
    namespaces = 4 if edit == "a file added" else 2 if edit == "a file removed" else 3
    expected = namespaces if recomputed == "all" else len(recomputed)
    assert (hits, misses) == (namespaces - expected, expected)
    again = assert_same(policy, target, folder)  # and now everything is reused
    assert counts(again, "verify") == (namespaces, 0)
    assert again.store.stats.misses == 0


#: Istio lowers by namespace: the namespaces whose slice (backends/base.py ``slices``) the edit changes, of the
#: mesh part and one part per managed namespace ("all": every part)
LOWERED = {
    "a rule": {"bank"}, "a rule's methods": {"shop"}, "a rule added": {"web"},
    "a service": {"web"},                   # no rule of another namespace names web/site
    "a service's account": {"bank"},        # bank's rules name audit's identity; no other namespace's do
    "a group": {"shop"}, "a file added": {"extra"}, "a file removed": set(),
    "the trust domain": "all", "the mesh's mtls": "all",
}
BY_NAMESPACE = [t for t in sorted(TARGETS) if get_backend(t).by_namespace]


@pytest.mark.parametrize("target", BY_NAMESPACE)
@pytest.mark.parametrize("edit", sorted(EDITS))
def test_an_edit_lowers_again_only_the_namespaces_whose_slice_it_changes(target, edit, tmp_path):
    policy, _ = EDITS[edit]
    folder = tmp_path / "cache"
    assert_same(BASE, target, folder)
    cache = assert_same(policy, target, folder)
    parts = 1 + (4 if edit == "a file added" else 2 if edit == "a file removed" else 3)
    expected = parts if LOWERED[edit] == "all" else len(LOWERED[edit])
    assert counts(cache, "lowered") == (parts - expected, expected)
    assert counts(cache, "render")[0] == 0 or expected > 0  # a kept part renders nothing
    again = assert_same(policy, target, folder)
    assert counts(again, "lowered") == (parts, 0) and counts(again, "render") == (0, 0)


@pytest.mark.parametrize("target", BY_NAMESPACE)
@pytest.mark.parametrize("mode", ["enforce", "audit"])
def test_a_namespace_lowers_from_its_slice_as_from_the_whole_graph(target, mode):
    """The contract of a by-namespace backend, on every case of the corpus (refused ones too): each part,
    lowered from its slice, gives the resources and diagnostics it gives lowered from the whole graph, so
    that a part is a function of its slice (its cache key)."""
    for path in case_paths():
        try:
            graph = pipeline.analyze([source(path)]).graph
        except MeshError:
            continue
        for ns, piece in slices(graph):
            whole, alone = get_backend(target)(mode=mode), get_backend(target)(mode=mode)
            if ns is None:
                got, expected = alone.lower_mesh(piece), whole.lower_mesh(graph)
            else:
                got, expected = alone.lower_namespace(piece, ns), whole.lower_namespace(graph, ns)
            alone.close(got)
            whole.close(expected)
            assert (got, alone.diag.items) == (expected, whole.diag.items), (path, ns)


def test_a_part_that_fails_is_not_kept(tmp_path):
    """MP301 in one namespace (a condition on the Host header, which Istio cannot test): the build fails alike
    with and without the cache, every time, and the failing part is never stored; the other parts are."""
    policy = edited("bank.mesh", "POST /entries :8080", "POST /entries :8080 if header host=a")
    folder = tmp_path / "cache"
    for _ in range(2):
        cache = fresh(folder)
        cached, uncached = run(policy, "istio", cache), run(policy, "istio", None)
        assert cached == uncached and cached[0] is None and "MP301" in cached[1]
    assert counts(cache, "lowered") == (3, 1)  # the mesh part, shop and web kept; bank lowered again


def test_verdicts_reuse_the_parts_keys_and_still_catch_the_mutations(tmp_path):
    """With the parts of the correct output (their keys stand for the namespaces' rules and their files'
    slicing facts), a mutated output is refused with the counterexamples of an uncached verification."""
    import test_verify as mutations

    for target, name, kind, mutate, policy in mutations.MUTATIONS:
        if not get_backend(target).by_namespace:
            continue
        folder = tmp_path / f"{target}-{name}"
        build = pipeline.lower(pipeline.analyze([SourceFile("p.mesh", policy)], cache=fresh(folder)), target)
        assert build.parts and all(part.key for part in build.parts)
        mutated = mutations.edit(build.files, kind, mutate)
        graph = build.analysis.graph
        got = cached_verification.verify(fresh(folder), graph, mutated, target, build.open_probes,
                                         reader_options=build.reader_options, parts=build.parts)
        assert got, name
        assert got == verifier.verify(graph, mutated, target, build.open_probes, reader_options=build.reader_options)


def test_a_rendered_part_comes_back_equal():
    build = pipeline.lower(pipeline.analyze(sources(BASE)), "istio", "audit", verify=False)
    assert build.parts and any(part.closing for part in build.parts)  # audit: PeerAuthentication notes
    for part in build.parts:
        assert codec.loads(codec.dumps(part)) == part
    assert all(isinstance(part, lowering.Rendered) and part.key is None for part in build.parts)


@pytest.mark.parametrize("target, options", [
    ("istio", {"root_namespace": "mesh-root"}),
    ("istio", {"namespaces": "emit"}),
    ("linkerd", {"routes": "policy"}),
    ("linkerd", {"namespaces": "skip"}),
])
def test_a_target_option_reaches_what_it_changes(target, options, tmp_path):
    """An option reaches a verdict through the files it changes and the reader's options: a namespace
    whose files it leaves alone keeps its verdict, the others are verified again."""
    folder = tmp_path / "cache"
    assert_same(BASE, target, folder)
    cache = assert_same(BASE, target, folder, **options)
    assert counts(cache, "verify")[1] >= 1
    assert counts(cache, "parse") == (len(BASE), 0)  # the syntax trees do not depend on the target's options
    if get_backend(target).by_namespace:  # the backend's options are in every part's key
        assert counts(cache, "lowered") == (0, 4)


def test_the_target_and_the_mode_are_part_of_every_key(tmp_path):
    folder = tmp_path / "cache"
    assert_same(BASE, "istio", folder)
    linkerd = assert_same(BASE, "linkerd", folder)
    assert counts(linkerd, "verify") == (0, 3) and counts(linkerd, "render") == (0, counts(linkerd, "render")[1])
    audit = assert_same(BASE, "istio", folder, mode="audit")
    assert counts(audit, "verify") == (0, 3) and counts(audit, "lowered") == (0, 4)


def test_the_code_is_part_of_every_key(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    assert_same(BASE, "istio", folder)
    cache = fresh(folder)
    monkeypatch.setattr(cache, "code", "another version of meshpolicy")
    assert run(BASE, "istio", cache) == run(BASE, "istio", None)
    assert cache.store.stats.hits == 0


def test_the_code_digest_covers_the_package_the_grammar_and_the_templates():
    digest = code_digest()
    assert len(digest) == 64 and digest == code_digest()
    import meshpolicy.cache as module

    files = {p.relative_to(module._PACKAGE.parent).as_posix() for p in module._PACKAGE.rglob("*.py")}
    assert "meshpolicy/pipeline.py" in files  # the walk starts at the package


def test_a_failing_build_stores_nothing_and_fails_alike(tmp_path):
    folder = tmp_path / "cache"
    broken = edited("shop.mesh", "allow frontend -> orders", "allow frontend -> nowhere")
    syntax = edited("web.mesh", "allow any -> site :80", "allow any -> -> site")
    for policy in (broken, syntax, broken):
        for target in sorted(TARGETS):
            cache = fresh(folder)
            cached, uncached = run(policy, target, cache), run(policy, target, None)
            assert cached == uncached and cached[0] is None


# -- what the keys hold ---------------------------------------------------------------------------------------

def test_every_field_of_the_ir_is_in_a_key():
    span = Span("a.mesh", 1, 1, 1, 9)
    rule = Rule(("shop", "orders"), Action.ALLOW, span, (), (8080,), text="allow a -> orders")
    base = codec.digest(rule)
    assert codec.digest(replace(rule, text="allow b -> orders")) != base  # compare=False fields too
    assert codec.digest(replace(rule, origin=Span("a.mesh", 2, 1, 2, 9))) != base  # provenance reaches the output
    assert codec.digest(replace(rule, methods=("GET",))) != base
    assert codec.digest(replace(rule, action=Action.DENY)) != base
    assert codec.digest(Rule(("shop", "orders"), Action.ALLOW, span, (), (8080,), text="allow a -> orders")) == base


def test_a_dict_keeps_its_order_in_a_key_and_a_set_does_not():
    assert codec.digest({"a": 1, "b": 2}) != codec.digest({"b": 2, "a": 1})  # a dict's order reaches the YAML
    assert codec.digest(frozenset({"a", "b"})) == codec.digest(frozenset({"b", "a"}))
    assert codec.digest((1,)) != codec.digest([1]) and codec.digest("1") != codec.digest(1)
    assert codec.digest(True) != codec.digest(1)


def test_values_come_back_equal_and_of_their_own_types():
    tree = parse_file(SourceFile("shop.mesh", BASE["shop.mesh"]))
    assert codec.loads(codec.dumps(tree)) == tree
    value = {"a": [1, 2.5, None, True], 3: ("x", frozenset({"y"}))}
    back = codec.loads(codec.dumps(value))
    assert back == value and type(back["a"]) is list and type(back[3]) is tuple
    assert type(codec.loads(codec.dumps(Action.DENY))) is Action


@pytest.mark.parametrize("payload", [
    b'[["os.system"], [0, "echo pwned"]]',          # a class that is not the project's
    b'[["builtins.object"], [0]]',
    b'[["meshpolicy.graph.model.Action"], ["e", 0, "maybe"]]',
    b'[["meshpolicy.source.Span"], [0, "a.mesh", 1]]',  # too few fields
    b'[["meshpolicy.source.Span"], [1, "a.mesh", 1, 1, 1, 2]]',  # a class the entry does not name
    b'[["meshpolicy.source.Span"], [-1, "a.mesh", 1, 1, 1, 2]]',
    b'[["meshpolicy.graph.model.Action"], [0]]',  # an enum's class as a dataclass
    b'[["meshpolicy.source.Span"], ["e", 0, "x"]]',  # a dataclass' class as an enum
    b'[[], ["x", 1]]', b'[[], []]', b"[]", b'["c", "meshpolicy.source.Span", "a.mesh", 1, 1, 1, 2]',
    b'{"a": 1}', b"not json", b"\xff\xfe",
])
def test_an_entry_constructs_only_the_projects_values(payload):
    with pytest.raises(codec.Undecodable):
        codec.loads(payload)


def test_an_unknown_type_is_computed_uncached():
    class Other:
        pass

    with pytest.raises(codec.Unencodable):
        codec.digest(Other())
    cache = BuildCache.__new__(BuildCache)
    cache.code = "x"
    assert cache.key("render", Other()) is None


# -- the folder: corrupted, foreign, forged, unsafe, bounded -------------------------------------------------

def entries(folder: Path, kind: str | None = None) -> list[Path]:
    return sorted(p for p in folder.glob(f"{kind or '*'}/*/*") if p.is_file())


@pytest.mark.parametrize("damage", ["flip", "truncate", "empty", "magic", "swap"])
def test_a_damaged_entry_is_ignored_and_rebuilt(damage, tmp_path):
    folder = tmp_path / "cache"
    assert_same(BASE, "linkerd", folder)
    found = entries(folder)
    assert found
    for i, path in enumerate(found):
        data = path.read_bytes()
        if damage == "flip":
            data = data[:-1] + bytes([data[-1] ^ 1])
        elif damage == "truncate":
            data = data[: len(data) // 2]
        elif damage == "empty":
            data = b""
        elif damage == "magic":
            data = b"x" + data[1:]
        else:  # another entry's bytes under this key: authentic bytes, wrong place
            data = found[(i + 1) % len(found)].read_bytes()
        path.write_bytes(data)
    cache = assert_same(BASE, "linkerd", folder)
    assert cache.store.stats.hits == 0 and cache.store.stats.ignored == len(found)
    notes = cache.notes()
    assert [d.code for d in notes] == ["MP851"]
    assert assert_same(BASE, "linkerd", folder).store.stats.ignored == 0  # rebuilt


def test_a_forged_entry_is_ignored(tmp_path):
    """Bytes that decode to another syntax tree, under the right key, without the folder's secret."""
    folder = tmp_path / "cache"
    assert_same(BASE, "istio", folder)
    other = codec.dumps(parse_file(SourceFile("web.mesh", BASE["web.mesh"].replace("allow any", "allow 1.2.3.4/32"))))
    for path in entries(folder, "parse"):
        path.write_bytes(MAGIC + bytes(32) + other)
    cache = assert_same(BASE, "istio", folder)
    assert counts(cache, "parse") == (0, len(BASE))


def test_entries_of_another_cache_folder_are_foreign(tmp_path):
    mine, theirs = tmp_path / "mine", tmp_path / "theirs"
    assert_same(BASE, "istio", mine)
    assert_same(edited("web.mesh", "allow any -> site :80", "allow any -> site"), "istio", theirs)
    for kind in ("parse", "render", "verify"):
        for path in entries(theirs, kind):
            target = mine / path.relative_to(theirs)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
    cache = assert_same(BASE, "istio", mine)
    assert cache.store.stats.ignored == 0 or cache.notes()[0].code == "MP851"


def test_a_copied_entry_under_the_same_key_fails_its_check(tmp_path):
    mine, theirs = tmp_path / "mine", tmp_path / "theirs"
    assert_same(BASE, "istio", mine)
    assert_same(BASE, "istio", theirs)
    for path in entries(theirs):
        shutil.copyfile(path, mine / path.relative_to(theirs))  # the same keys, another secret
    cache = assert_same(BASE, "istio", mine)
    assert cache.store.stats.hits == 0 and cache.store.stats.ignored == len(entries(theirs))


@pytest.mark.skipif(not hasattr(os, "getuid"), reason="POSIX ownership and modes")
def test_a_folder_others_may_write_is_refused(tmp_path):
    folder = tmp_path / "cache"
    folder.mkdir()
    folder.chmod(0o777)
    cache, notes = open_cache(folder)
    assert cache is None and [d.code for d in notes] == ["MP850"]
    assert "others may write" in notes[0].message
    folder.chmod(0o700)
    (folder / "secret").write_bytes(os.urandom(32))
    (folder / "secret").chmod(0o644)
    cache, notes = open_cache(folder)
    assert cache is None and "only its owner" in notes[0].message


def test_no_folder_is_no_cache():
    assert open_cache(None) == (None, [])


def test_the_folder_stays_within_its_bound(tmp_path):
    folder = tmp_path / "cache"
    cache = fresh(folder)
    cache.store.limit = 40 * BLOCK  # a build of BASE writes some 300 entries
    run(BASE, "linkerd", cache)
    cache.notes()
    total = sum(_on_disk(p.stat()) for p in entries(folder))
    assert 0 < total <= 30 * BLOCK
    assert run(BASE, "linkerd", fresh(folder)) == run(BASE, "linkerd", None)


def test_the_least_recently_used_entries_go_first(tmp_path):
    store = Store(tmp_path / "cache", limit=1 << 20)
    for n in range(6):
        store.put("render", f"{n:02d}" + "0" * 62, b"x" * 1000)
        path = store._path("render", f"{n:02d}" + "0" * 62)
        os.utime(path, (1000 + n, 1000 + n))
    store.get("render", "00" + "0" * 62)  # used now: the newest
    each = _on_disk(store._path("render", "00" + "0" * 62).stat())  # what one entry takes on disk
    assert each >= 1000
    left = store.evict(3 * each)
    kept = sorted(p.name[:2] for p in entries(tmp_path / "cache"))
    assert kept == ["00", "04", "05"] and left == 3 * each


def test_the_bound_counts_whole_blocks():
    """Most entries are a few hundred bytes and take a block each: the bound is on what the disk holds."""
    info = os.stat_result((0o100600, 0, 0, 1, 0, 0, 300, 0, 0, 0))  # 300 bytes; no st_blocks given
    assert _on_disk(info) == BLOCK


def test_a_concurrent_writer_leaves_whole_entries(tmp_path):
    """Another build's temporary file, half written, is never read as an entry."""
    folder = tmp_path / "cache"
    assert_same(BASE, "istio", folder)
    for path in entries(folder, "render")[:3]:
        (path.parent / ".tmp-half").write_bytes(path.read_bytes()[:10])
    assert assert_same(BASE, "istio", folder).store.stats.ignored == 0


# -- verification by namespace equals verification of the whole ----------------------------------------------

@pytest.mark.parametrize("target", sorted(TARGETS))
def test_verdicts_by_namespace_match_the_whole_on_the_corpus(target, tmp_path):
    cache = fresh(tmp_path / "cache")
    for path in builds(target):
        build = pipeline.lower(pipeline.analyze([source(path)]), target, verify=False)
        expected = verifier.verify(build.analysis.graph, build.files, target, build.open_probes,
                                   reader_options=build.reader_options)
        got = cached_verification.verify(cache, build.analysis.graph, build.files, target, build.open_probes,
                                         reader_options=build.reader_options)
        assert got == expected == [], path
        if get_backend(target).by_namespace:  # the parts' keys in the verdicts' keys, their facts for slicing
            kept = pipeline.lower(pipeline.analyze([source(path)], cache=cache), target, verify=False)
            assert kept.files == build.files
            assert cached_verification.verify(cache, kept.analysis.graph, kept.files, target, kept.open_probes,
                                              reader_options=kept.reader_options, parts=kept.parts) == [], path


def test_a_slice_holds_its_namespace_the_global_files_and_what_they_name():
    info = cached_verification.FileInfo

    def files(*specs):
        return [info(path, "h", frozenset(ns), is_global, frozenset(named)) for path, ns, is_global, named in specs]

    infos = files(("a/policy.yaml", {"a"}, False, {"b"}),        # names b's MeshTLSAuthentication
                  ("b/meshtls.yaml", {"b"}, False, {"c"}),       # which names c
                  ("c/other.yaml", {"c"}, False, set()),
                  ("d/server.yaml", {"d"}, False, set()),
                  ("a/namespace-a.yaml", set(), True, set()),    # cluster-scoped: in every slice
                  ("root/mesh.yaml", {"istio-system"}, True, set()))
    chosen = [i.path for i in cached_verification._slice("a", infos)]
    assert chosen == ["a/namespace-a.yaml", "a/policy.yaml", "b/meshtls.yaml", "c/other.yaml", "root/mesh.yaml"]
    assert [i.path for i in cached_verification._slice("d", infos)] == [
        "a/namespace-a.yaml", "d/server.yaml", "root/mesh.yaml"]


def _slice_by_definition(namespace, infos):
    """The fixpoint of docs/cache.md, scanning every file each round (the first implementation)."""
    wanted, chosen = {namespace}, {}
    while True:
        grown = {i.path: i for i in infos if i.path not in chosen and (i.is_global or i.namespaces & wanted)}
        if not grown:
            return [chosen[path] for path in sorted(chosen)]
        chosen.update(grown)
        for info in grown.values():
            wanted |= info.named | info.namespaces


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.frozensets(st.sampled_from("abcde"), max_size=2), st.booleans(),
                          st.frozensets(st.sampled_from("abcdef"), max_size=2)), max_size=12),
       st.sampled_from("abcdef"))
def test_the_indexed_slice_is_the_fixpoint(specs, namespace):
    infos = [cached_verification.FileInfo(f"{n}.yaml", "h", ns, is_global, named)
             for n, (ns, is_global, named) in enumerate(specs)]
    assert cached_verification._slice(namespace, infos) == _slice_by_definition(namespace, infos)


def test_a_file_of_another_namespace_that_a_slice_names_invalidates_it(tmp_path):
    """Linkerd: an AuthorizationPolicy of bank pointed at a MeshTLSAuthentication of shop (linkerd.md §3): a
    change of that MeshTLSAuthentication is a new key for bank's verdict, and is verified."""
    build = pipeline.lower(pipeline.analyze(sources(BASE)), "linkerd")
    files = dict(build.files)
    import yaml

    def docs(kind, namespace):
        return [(p, yaml.safe_load(t)) for p, t in sorted(files.items())
                if p.startswith(namespace + "/") and yaml.safe_load(t).get("kind") == kind]

    bank_policy = "bank/authorizationpolicy-ledger-5432.yaml"  # audit -> ledger :5432, bank/audit only
    policy = dict(docs("AuthorizationPolicy", "bank"))[bank_policy]
    ref = next(r for r in policy["spec"]["requiredAuthenticationRefs"] if r["kind"] == "MeshTLSAuthentication")
    own = next(d for p, d in docs("MeshTLSAuthentication", "bank") if d["metadata"]["name"] == ref["name"])
    moved = {**own, "metadata": {**own["metadata"], "namespace": "shop", "name": "moved"}}
    files["shop/meshtlsauthentication-moved.yaml"] = yaml.safe_dump(moved, sort_keys=False)
    ref.update(name="moved", namespace="shop")
    files[bank_policy] = yaml.safe_dump(policy, sort_keys=False)
    import test_verify as mutations

    files = mutations.listed(files)
    graph, folder = build.analysis.graph, tmp_path / "cache"
    options = {"reader_options": build.reader_options}
    assert cached_verification.verify(fresh(folder), graph, files, "linkerd", build.open_probes, **options) == []
    again = fresh(folder)  # every slice was verified and kept (bank's holds shop's MeshTLSAuthentication)
    assert cached_verification.verify(again, graph, files, "linkerd", build.open_probes, **options) == []
    assert counts(again, "verify") == (3, 0)
    widened = {**moved, "spec": {"identities": ["*"]}}
    files["shop/meshtlsauthentication-moved.yaml"] = yaml.safe_dump(widened, sort_keys=False)
    cache = fresh(folder)
    found = cached_verification.verify(cache, graph, files, "linkerd", build.open_probes, **options)
    assert found and found == verifier.verify(graph, files, "linkerd", build.open_probes, **options)
    assert {c.request.namespace for c in found} == {"bank"}


def test_a_mutation_is_caught_with_a_warm_cache(tmp_path):
    """The verification mutations: with every verdict of the correct output cached, the mutated output
    is still refused, with the counterexamples of an uncached verification."""
    import test_verify as mutations

    for target, name, kind, mutate, policy in mutations.MUTATIONS:
        folder = tmp_path / f"{target}-{name}"
        build = pipeline.lower(pipeline.analyze([SourceFile("p.mesh", policy)], cache=fresh(folder)), target)
        mutated = mutations.edit(build.files, kind, mutate)
        cache = fresh(folder)
        graph = build.analysis.graph
        got = cached_verification.verify(cache, graph, mutated, target, build.open_probes,
                                         reader_options=build.reader_options)
        assert got, name
        assert got == verifier.verify(graph, mutated, target, build.open_probes, reader_options=build.reader_options)


# -- the property: random edit sequences ----------------------------------------------------------------------

NAMESPACES = ["shop", "bank", "web"]
SERVICES = ["a", "b", "c"]
CALLERS = ["a", "b", "c", "*", "any", "bank/*", "shop/a", "web/b", "10.0.0.0/8", "g"]
OPS = ["", " GET", " GET,POST /api/*", " :8080", " :9090", " DELETE /x"]


@st.composite
def edit_step(draw) -> tuple[str, ...]:
    kind = draw(st.sampled_from(["rule", "rule", "rule", "unrule", "port", "account", "group", "mtls", "trust",
                                 "file", "mode"]))
    ns = draw(st.sampled_from(NAMESPACES))
    if kind in ("rule", "unrule"):
        action = draw(st.sampled_from(["allow", "allow", "deny"]))
        caller, service, operation = (draw(st.sampled_from(values)) for values in (CALLERS, SERVICES, OPS))
        return (kind, ns, f"{action} {caller} -> {service}{operation}")
    if kind in ("port", "account"):
        return (kind, ns, draw(st.sampled_from(SERVICES)))
    if kind == "group":
        return (kind, ns, draw(st.sampled_from(["a", "b", "a, c"])))
    if kind == "mtls":
        return (kind, ns, draw(st.sampled_from(["strict", "permissive"])))
    return (kind, ns, "")


class Policy:
    """A small policy of three namespaces, one file each, changed one step at a time."""

    def __init__(self) -> None:
        self.rules = {ns: ["allow a -> b :8080"] for ns in NAMESPACES}
        self.tcp = {ns: set() for ns in NAMESPACES}
        self.renamed = {ns: set() for ns in NAMESPACES}  # services with an account of another name
        self.mode = "enforce"
        self.group = dict.fromkeys(NAMESPACES, "a")
        self.mtls = dict.fromkeys(NAMESPACES, "strict")
        self.trust = ""
        self.present = set(NAMESPACES)

    def apply(self, step: tuple[str, ...]) -> None:
        kind, ns, value = step
        if kind == "rule":
            self.rules[ns].append(value)
        elif kind == "unrule" and self.rules[ns]:
            self.rules[ns].pop(0)
        elif kind == "port":
            self.tcp[ns] ^= {value}
        elif kind == "account":  # other namespaces' rules name this identity
            self.renamed[ns] ^= {value}
        elif kind == "mode":
            self.mode = "audit" if self.mode == "enforce" else "enforce"
        elif kind == "group":
            self.group[ns] = value
        elif kind == "mtls":
            self.mtls[ns] = value
        elif kind == "trust":
            self.trust = "" if self.trust else "trust-domain example.org\n"
        elif kind == "file":
            self.present ^= {ns}

    def files(self) -> dict[str, str]:
        out = {"mesh.mesh": self.trust + "mtls strict\n"}
        for ns in sorted(self.present):
            services = [f"  service {s}" + (f" account {s}-sa" if s in self.renamed[ns] else "") + " :8080/http"
                        + (" :9090/tcp" if s in self.tcp[ns] else "") for s in SERVICES]
            body = [f"  mtls {self.mtls[ns]}", *services, f"  group g = {self.group[ns]}",
                    *(f"  {rule}" for rule in self.rules[ns])]
            out[f"{ns}.mesh"] = f"namespace {ns} {{\n" + "\n".join(body) + "\n}\n"
        return out


@pytest.mark.slow
@pytest.mark.parametrize("target", sorted(TARGETS))
@settings(max_examples=25, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(edit_step(), min_size=1, max_size=6))
def test_a_cached_build_equals_an_uncached_one_over_random_edits(target, steps, tmp_path_factory):
    folder = tmp_path_factory.mktemp("cache")
    policy = Policy()
    assert_same(policy.files(), target, folder)
    for step in steps:
        policy.apply(step)
        assert_same(policy.files(), target, folder, policy.mode)


# -- the command line -----------------------------------------------------------------------------------------

def test_build_with_and_without_the_cache_writes_the_same_folder(tmp_path):
    policy = tmp_path / "policy"
    policy.mkdir()
    for name, text in BASE.items():
        (policy / name).write_text(text)
    folder = tmp_path / "cache"
    for target in sorted(TARGETS):
        first = invoke(["build", str(policy), "-t", target, "-o", str(tmp_path / f"{target}-1"),
                        "--cache-dir", str(folder)])
        second = invoke(["build", str(policy), "-t", target, "-o", str(tmp_path / f"{target}-2"),
                         "--cache-dir", str(folder)])
        none = invoke(["build", str(policy), "-t", target, "-o", str(tmp_path / f"{target}-3"), "--no-cache"])
        assert entries(folder)
        texts = [{p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}
                 for out in (tmp_path / f"{target}-1", tmp_path / f"{target}-2", tmp_path / f"{target}-3")]
        assert texts[0] == texts[1] == texts[2]
        assert first.stderr == second.stderr == none.stderr


@pytest.mark.skipif(not hasattr(os, "getuid"), reason="POSIX ownership and modes")
def test_build_says_why_it_runs_without_the_cache(tmp_path):
    policy = tmp_path / "p.mesh"
    policy.write_text(BASE["web.mesh"].replace("shop/frontend", "any"))
    folder = tmp_path / "cache"
    folder.mkdir()
    folder.chmod(stat.S_IRWXU | stat.S_IRWXG | stat.S_IRWXO)
    result = invoke(["build", str(policy), "-t", "istio", "-o", str(tmp_path / "out"), "--cache-dir", str(folder)])
    assert "note[MP850]" in result.stderr and "others may write" in result.stderr
    assert (tmp_path / "out" / "kustomization.yaml").is_file()


@pytest.mark.parametrize("case", ["named-port", "clean"])
def test_a_cluster_build_with_the_cache_equals_one_without(case, tmp_path):
    """--cluster: named ports and the proof of disjoint selectors reach the graph, and so the keys."""
    folder = TESTS / "cluster" / case
    for target in sorted(TARGETS):
        runs = [invoke(["build", folder / "policy.mesh", "--cluster", folder / "manifests", "-t", target,
                        "-o", tmp_path / f"{target}-{n}", *flags], code=None)
                for n, flags in enumerate((["--cache-dir", tmp_path / "c"], ["--cache-dir", tmp_path / "c"],
                                           ["--no-cache"]))]
        assert runs[0].exit_code == runs[1].exit_code == runs[2].exit_code
        assert runs[0].stderr == runs[1].stderr == runs[2].stderr
        outs = [{p.relative_to(tmp_path / f"{target}-{n}").as_posix(): p.read_bytes()
                 for p in (tmp_path / f"{target}-{n}").rglob("*") if p.is_file()} for n in range(3)]
        assert outs[0] == outs[1] == outs[2]


def _concurrent_build(args: tuple[Path, str]) -> tuple[dict[str, str] | None, str]:
    folder, target = args
    return run(BASE, target, fresh(folder))


@pytest.mark.skipif("fork" not in __import__("multiprocessing").get_all_start_methods(), reason="needs fork")
def test_concurrent_builds_share_a_folder(tmp_path):
    """Four builds at once, two targets, one cold folder: each gets what an uncached build gets."""
    import multiprocessing

    folder = tmp_path / "cache"
    jobs = [(folder, target) for target in sorted(TARGETS) for _ in range(2)]
    with multiprocessing.get_context("fork").Pool(4) as pool:
        results = pool.map(_concurrent_build, jobs)
    for (_, target), result in zip(jobs, results, strict=True):
        assert result == run(BASE, target, None)
    assert assert_same(BASE, "istio", folder).store.stats.ignored == 0
