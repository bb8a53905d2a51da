"""``meshpolicy lint``: each rule fires where it should and nowhere else; reported rules are safe to remove."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from helpers import CASES, ROOT, case_id, case_paths, expected_errors, invoke, source

from meshpolicy.diagnostics import LINT_CODES, Diagnostic
from meshpolicy.diff import compare, load
from meshpolicy.lint import RULES, lint
from meshpolicy.source import SourceFile


def findings(text: str, **kw) -> list[Diagnostic]:
    return lint([SourceFile("p.mesh", text)], **kw)


def codes(text: str) -> list[str]:
    return [d.code for d in findings(text)]


def where(text: str, code: str) -> list[str]:
    """``line:col message`` of each finding with ``code``."""
    return [f"{d.span.line}:{d.span.col} {d.message}" for d in findings(text) if d.code == code]


# One rule, one policy that breaks it and one that does not (the fix the docs suggest).
RULE_CASES = {
    "ML001": ("namespace shop {\n  mtls permissive\n  service a :80/http\n  allow * -> a\n}\n",
              "namespace shop {\n  mtls strict\n  service a :80/http\n  allow * -> a\n}\n"),
    "ML002": ("service a :80/http\nallow any -> a\n",
              "service a :80/http mtls permissive\nallow any -> a  # lint: ignore ML001\n"),
    "ML003": ("service a :80/http\nservice b :80/http\nallow a -> a\n",
              "service a :80/http\nservice b :80/http\nallow a -> b\n"),
    "ML004": ("service a :80/http\nservice b :80/http\nallow a -> b\nallow a -> b GET /x\n",
              "service a :80/http\nservice b :80/http probes /healthz\nallow a -> b POST\nallow a -> b GET /x\n"),
    "ML005": ("service a :80/http\nservice b :80/http\nallow a -> b GET /admin\ndeny * -> b /admin\n",
              "service a :80/http\nservice b :80/http\nallow a -> b GET /admin\ndeny * -> b POST /admin\n"),
    "ML006": ("service a :80/http\nservice b :80/http\ngroup g = a\nallow a -> b\n",
              "service a :80/http\nservice b :80/http\ngroup g = a\nallow g -> b\n"),
    "ML007": ("namespace shop {\n  service a :80/http\n  service b :80/http\n  allow a -> *\n}\n",
              "namespace shop {\n  service a :80/http\n  service b :80/http\n  allow a -> a, b\n}\n"),
    "ML008": ("service a account shared :80/http\nservice b account shared :80/http labels app=b\nallow a -> b\n",
              "service a :80/http\nservice b :80/http\nallow a -> b\n"),
    "ML009": ("namespace shop {\n  service a :80/http\n}\nnamespace jobs {\n  service cron\n}\nallow jobs/cron -> shop/a\n",
              ("namespace shop {\n  service a :80/http\n}\nnamespace jobs external {\n  service cron\n}\n"
               "allow jobs/cron -> shop/a\n")),
    "ML010": ("service a account default :80/http\nservice b :80/http\nallow a -> b\n",
              "service a :80/http\nservice b :80/http\nallow a -> b\n"),
    "ML011": ("service a :80/http\nservice b :80/http\nallow a -> b GET\n",
              "service a :80/http\nservice b :80/http probes /healthz\nallow a -> b GET\n"),
    "ML020": ("service a :80/grpc\nservice b :80/http\nallow b -> a grpc Payments/Charge\n",
              "service a :80/grpc\nservice b :80/http\nallow b -> a grpc payments.v1.Payments/Charge\n"),
    "ML030": ("service a :80/http probes /h\nallow any -> a GET :80 if header x-tenant=acme\n",
              "service a :80/http probes /h\nservice b :80/http\nallow b -> a GET :80 if header x-tenant=acme\n"),
    "ML031": (("service a :80/http probes /h\nservice b :80/http\nallow b -> a :80\n"
              "deny b -> a DELETE :80 if header x-readonly=true\n"),
              "service a :80/http probes /h\nservice b :80/http\nallow b -> a :80\ndeny b -> a DELETE :80\n"),
    "ML050": ("authority cert-manager issuer ca issuer-lifetime 60d renew-before 10d\n",
              "authority cert-manager issuer ca issuer-lifetime 60d renew-before 11d\n"),
    "ML051": ("authority vault server https://v:8200 path p/sign/m role r issuer-lifetime 30d anchor-lifetime 30d\n",
              "authority vault server https://v:8200 path p/sign/m role r issuer-lifetime 30d anchor-lifetime 31d\n"),
    "ML052": ("authority builtin workload-lifetime 25h\n", "authority builtin workload-lifetime 24h\n"),
}


def test_every_code_has_a_rule_a_case_and_a_doc_section():
    assert sorted(RULES) == sorted(LINT_CODES) == sorted(RULE_CASES)
    doc = (ROOT / "docs" / "lint.md").read_text()
    for code, rule in RULES.items():
        assert re.search(rf"^## {code} `{rule.name}`", doc, re.MULTILINE), f"docs/lint.md has no section for {code}"


def doc_examples() -> dict[str, str]:
    """The policy under **Example.** in each rule's section of docs/lint.md."""
    doc = (ROOT / "docs" / "lint.md").read_text()
    sections = re.split(r"^## (ML\d{3}) ", doc, flags=re.MULTILINE)
    return {code: re.search(r"\*\*Example\.\*\*\n\n```\n(.*?)```", body, re.DOTALL).group(1)
            for code, body in zip(sections[1::2], sections[2::2])}


@pytest.mark.parametrize("code", sorted(LINT_CODES))
def test_every_documented_example_shows_its_finding(code):
    assert code in codes(doc_examples()[code])


@pytest.mark.parametrize("code", sorted(RULE_CASES))
def test_rule_fires_on_the_bad_policy_only(code):
    bad, good = RULE_CASES[code]
    assert code in codes(bad)
    assert code not in codes(good)


@pytest.mark.parametrize("code", sorted(RULE_CASES))
def test_rule_can_be_disabled_by_code_and_by_name(code):
    bad, _ = RULE_CASES[code]
    assert code not in [d.code for d in findings(bad, disable=[code])]
    assert code not in [d.code for d in findings(bad, disable=[RULES[code].name])]


def test_positions_and_messages():
    assert where(RULE_CASES["ML001"][0], "ML001") == [
        ("2:3 mTLS is permissive for namespace 'shop': plaintext requests are accepted, unencrypted and with "
         "no identity")]
    assert where(RULE_CASES["ML002"][0], "ML002")[0].startswith("2:7 'any' also names unauthenticated clients")
    assert where(RULE_CASES["ML003"][0], "ML003") == [
        ("2:9 no rule names service 'default/b': the default deny refuses every request to it, and it is allowed "
         "to call nothing by name")]
    assert where(RULE_CASES["ML004"][0], "ML004") == [
        "4:1 this allow rule is redundant: every request it grants is granted by other allow rules"]
    assert where(RULE_CASES["ML005"][0], "ML005") == [
        "3:1 this allow rule grants nothing: every request it matches is refused by deny rules"]
    assert where(RULE_CASES["ML006"][0], "ML006") == ["3:7 group 'g' is never used"]
    assert where(RULE_CASES["ML007"][0], "ML007") == [
        ("4:14 destination '*' grants this access to every service of namespace 'shop', including services "
         "declared later")]
    assert where(RULE_CASES["ML008"][0], "ML008")[0].startswith(
        "2:9 services 'default/a' and 'default/b' share the account 'default/shared'")
    assert where(RULE_CASES["ML009"][0], "ML009")[0].startswith("4:11 every service of namespace 'jobs' only calls")


def test_related_places_name_the_other_rules():
    [dead] = [d for d in findings(RULE_CASES["ML005"][0]) if d.code == "ML005"]
    assert [(r.span.line, r.message) for r in dead.related] == [(4, "refused by: deny * -> b /admin")]
    [redundant] = [d for d in findings(RULE_CASES["ML004"][0]) if d.code == "ML004"]
    assert [(r.span.line, r.message) for r in redundant.related] == [(3, "also granted by: allow a -> b")]


def test_of_two_equal_rules_only_the_later_is_redundant():
    text = "service a :80/http\nservice b :80/http\nallow a -> b GET\nallow a -> b GET\n"
    assert where(text, "ML004") == [
        "4:1 this allow rule is redundant: every request it grants is granted by other allow rules"]


def test_a_rule_covered_by_two_others_together_is_redundant():
    text = ("service a :80/http\nservice b :80/http\nallow a -> b GET,POST\n"
            "allow a -> b GET\nallow a -> b POST\n")
    # the last two cover the first together; trying from the last line up, the two small ones go first
    assert [w.split()[0] for w in where(text, "ML004")] == ["4:1", "5:1"]


def test_a_partly_denied_rule_is_neither_dead_nor_redundant():
    text = "service a :80/http\nservice b :80/http\nallow a -> b\ndeny * -> b DELETE\n"
    assert not {"ML004", "ML005"} & set(codes(text))


def test_strict_mtls_can_make_an_allow_rule_dead():
    text = "service a :80/http mtls permissive on 80\nservice b :80/http :81/http mtls permissive on 80\n" \
           "allow 10.0.0.0/8 -> b :81  # lint: ignore ML001\ndeny * -> b :81\n"
    [dead] = [d for d in findings(text) if d.code == "ML005"]
    assert "refused by deny rules and strict mTLS (plaintext callers)" in dead.message


def test_ignore_comments():
    text = "service a :80/http  # lint: ignore ML003\n# lint: ignore ML003, ML001\nservice b :80/http\n" \
           "service c :80/http  # lint: ignore ML001\n"
    assert where(text, "ML003") == [
        ("4:9 no rule names service 'default/c': the default deny refuses every request to it, and it is allowed "
         "to call nothing by name")]


def test_any_on_a_partly_permissive_service_is_fine():
    text = "service a :80/http :81/http mtls permissive on 81\nallow any -> a\n"
    assert "ML002" not in codes(text)
    assert "ML002" in codes(text.replace("allow any -> a", "allow any -> a :80"))


def test_wildcard_through_a_group_is_found():
    text = "namespace shop {\n  service a :80/http\n  group everyone = *\n  allow a -> everyone\n}\n"
    assert where(text, "ML007") == [
        ("4:14 destination '*' (through group 'everyone') grants this access to every service of namespace "
         "'shop', including services declared later")]
    assert "ML007" not in codes(text.replace("allow a -> everyone", "deny a -> everyone"))


# -- reported rules are safe to remove: the diff of the policy without them is empty ---------------

LINTED = [p for p in case_paths() if not expected_errors(p)] + [ROOT / "examples" / "shop" / "shop.mesh"]


def _id(path: Path) -> str:
    return case_id(path) if path.is_relative_to(CASES) else path.relative_to(ROOT).as_posix()


@pytest.mark.parametrize("path", LINTED, ids=[_id(p) for p in LINTED])
def test_removing_redundant_and_dead_rules_changes_no_access(path):
    sources = [source(p) for p in sorted(path.parent.glob("*.mesh"))] if "examples" in path.parts \
        else [source(path)]
    found = lint(sources)
    lines = {(d.span.file, d.span.line) for d in found if d.code in ("ML004", "ML005")}
    trimmed = [SourceFile(s.name, "".join(line for n, line in enumerate(s.text.splitlines(True), 1)
                                          if (s.name, n) not in lines)) for s in sources]
    assert not compare(load(sources), load(trimmed)).changed


def test_removing_a_rule_that_is_not_reported_changes_access():
    """The check above must be able to fail: dropping any other allow rule of the shop example shows in diff."""
    others = [source(p) for p in sorted((ROOT / "examples" / "shop").glob("*.mesh")) if p.name != "shop.mesh"]
    src = source(ROOT / "examples" / "shop" / "shop.mesh")
    reported = {d.span.line for d in lint([src, *others]) if d.code in ("ML004", "ML005")}
    assert reported
    lines = src.text.splitlines(True)
    for n, line in enumerate(lines, 1):
        if line.strip().startswith("allow") and n not in reported:
            trimmed = SourceFile(src.name, "".join(lines[:n - 1] + lines[n:]))
            assert compare(load([src, *others]), load([trimmed, *others])).changed, line


# -- through the CLI ----------------------------------------------------------------------------

@pytest.fixture
def bad_policy(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "p.mesh").write_text(RULE_CASES["ML004"][0])
    return Path("p.mesh")


def test_cli_lint_exit_codes(tmp_path, monkeypatch, bad_policy):
    result = invoke(["lint", bad_policy], code=1)
    assert "p.mesh:4:1: warning[ML004]: this allow rule is redundant" in result.stdout
    assert result.stdout.endswith("1 finding(s): 0 error(s), 1 warning(s)\n")
    (tmp_path / "p.mesh").write_text(RULE_CASES["ML004"][1])
    assert invoke(["lint", bad_policy]).stdout == "no findings\n"


def test_cli_lint_disable(bad_policy):
    invoke(["lint", bad_policy, "--disable", "ML004"])
    invoke(["lint", bad_policy, "--disable", "redundant-allow,ML001"])
    result = invoke(["lint", bad_policy, "--disable", "ML999"], code=2)
    assert "unknown lint rule 'ML999'" in result.stderr


@pytest.mark.parametrize("fmt", ["human", "json", "github", "sarif"])
@pytest.mark.parametrize("text,code", [
    ("allow a b\n", "MP001"),
    ("service a\nallow b -> a\n", "MP103"),
    ("namespace shop {\n  service a\n", "MP002"),
    ("service Bad_Name\n", "MP101"),
])
def test_cli_lint_malformed_policy(tmp_path, monkeypatch, fmt, text, code):
    monkeypatch.chdir(tmp_path)
    Path("p.mesh").write_text(text)
    result = invoke(["lint", "p.mesh", "--format", fmt], code=1)
    assert code in result.stdout
    if fmt in ("json", "sarif"):
        json.loads(result.stdout)


def test_cli_lint_usage_errors(tmp_path):
    invoke(["lint", tmp_path / "nothing-here"], code=2)
    invoke(["lint", tmp_path], code=2)  # a folder without .mesh files
    invoke(["lint", tmp_path, "--format", "xml"], code=2)


SHARED = """\
namespace shop {
  service orders account backend :8080/http
  service billing account backend :8080/http labels app=billing
  service web account default :8080/http
  service api :8080/http
  group callers = web, orders
  allow callers -> api POST
  allow web, orders -> api GET
  deny billing -> api DELETE
}
"""


def test_shared_account_callers_are_reported_once_per_rule_and_account_with_the_services_sharing_it(tmp_path,
                                                                                                   monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("p.mesh").write_text(SHARED)
    result = invoke(["lint", "p.mesh", "--disable", "ML008,ML011"], code=1)
    default = ("runs as account 'shop/default', the account of every pod of namespace 'shop' that names none of its "
               "own: this rule grants its access to all of them (declared services running as it: 'shop/web')")
    backend = ("runs as account 'shop/backend', which services 'shop/billing' and 'shop/orders' share: this rule "
               "grants its access to the pods of every one of them")
    default_hint = "  = hint: give 'web' an account of its own (account web) and set serviceAccountName in its pod spec"
    backend_hint = ("  = hint: give each service its own account (account orders for 'orders', account billing for "
                    "'billing'), or name them in a group if they really are one caller")
    billing = ["  = p.mesh:3:11: 'shop/billing' runs as 'shop/backend' too",
               " 3 |   service billing account backend :8080/http labels app=billing",
               "   |           ^^^^^^^"]
    assert result.stdout.splitlines() == [
        f"p.mesh:7:9: warning[ML010]: caller 'shop/orders' (through group 'callers') {backend}",
        " 7 |   allow callers -> api POST", "   |         ^^^^^^^", *billing, backend_hint,
        f"p.mesh:7:9: warning[ML010]: caller 'shop/web' (through group 'callers') {default}",
        " 7 |   allow callers -> api POST", "   |         ^^^^^^^", default_hint,
        f"p.mesh:8:9: warning[ML010]: caller 'shop/web' {default}",
        " 8 |   allow web, orders -> api GET", "   |         ^^^", default_hint,
        f"p.mesh:8:14: warning[ML010]: caller 'shop/orders' {backend}",
        " 8 |   allow web, orders -> api GET", "   |              ^^^^^^", *billing, backend_hint,
        "4 finding(s): 0 error(s), 4 warning(s)"]


def test_a_deny_rule_or_an_own_account_is_no_shared_caller():
    assert "ML010" not in codes(SHARED.replace("allow", "deny"))
    assert "ML010" not in codes(SHARED.replace(" account backend", "").replace(" account default", ""))
    # a service named 'default' runs as the namespace's default account unless it names another
    assert where("service default :80/http\nservice b :80/http\nallow default -> b\n", "ML010") == [(
        "3:7 caller 'default/default' runs as account 'default/default', the account of every pod of namespace "
        "'default' that names none of its own: this rule grants its access to all of them (declared services "
        "running as it: 'default/default')")]


def test_the_lint_page_shows_what_lint_prints_for_its_examples(tmp_path, monkeypatch):
    """Every console block of a rule's section: its policy is the section's example, as policy/shop.mesh."""
    doc = (ROOT / "docs" / "lint.md").read_text()
    monkeypatch.chdir(tmp_path)
    Path("policy").mkdir()
    shown = 0
    for code, body in re.findall(r"^## (ML\d{3}) .*?\n(.*?)(?=^## |\Z)", doc, re.MULTILINE | re.DOTALL):
        for command, output in re.findall(r"```console\n\$ ([^\n]*)\n(.*?)```", body, re.DOTALL):
            Path("policy/shop.mesh").write_text(doc_examples()[code])
            result = invoke(command.split()[1:], code=1)
            assert result.stdout == output, code
            shown += 1
    assert shown >= 1


def test_ports_losing_their_probes_on_linkerd_are_the_build_notes_ports():
    """One finding per port, on its declaration, where the Linkerd build notes MP304; TCP, gRPC and route-less
    ports are fine, and so is a service that declares its probes."""
    from meshpolicy import pipeline

    text = ("namespace shop {\n"
            "  service web :8080/http\n"
            "  service api :8080/http :8081/http2 :9090/tcp :7070/grpc\n"
            "  allow web -> api GET /v1/* :8080\n"
            "  allow web -> api POST :8081\n"
            "  allow web -> api :9090\n"
            "  allow web -> api grpc pkg.S/M :7070\n"
            "  allow web -> web\n"
            "}\n")
    message = ("on Linkerd, port {} of 'shop/api' gets routes (rules on it match methods, paths or gRPC calls) and "
               "'shop/api' declares no probes: Linkerd then drops its own probe route, so the kubelet's probes of "
               "that port are refused and the pods never become Ready")
    assert where(text, "ML011") == [f"3:15 {message.format(8080)}", f"3:26 {message.format(8081)}"]
    [first] = [d for d in findings(text) if d.code == "ML011" and "8080" in d.message]
    assert [(r.span.line, r.message) for r in first.related] == [(4, "gives the port a route")]
    build = pipeline.lower(pipeline.analyze([SourceFile("p.mesh", text)]), "linkerd", verify=False)
    assert sorted(d.message.split(" of ")[0] for d in build.diagnostics if d.code == "MP304") == [
        "port 8080", "port 8081"]
    assert "ML011" not in codes(text.replace("service api :8080/http", "service api probes /healthz :8080/http"))


def test_an_unqualified_grpc_service_is_found_on_its_word():
    """ML020 (issue 11, item 4): each service named without a package, with the caret on its name; a qualified
    one is fine, and the finding can be silenced on its line."""
    text = ("namespace pay {\n  service payments :8443/grpc\n  service frontend :8080/http\n"
            "  allow frontend -> payments grpc Payments/Charge, payments.v1.Refunds, Ledger\n"
            "  allow frontend -> payments grpc Audit  # lint: ignore ML020\n}\n")
    said = ("the gRPC service '{0}' has no package: it matches only calls to /{0}/..., never those to a service "
            "of the same name in a package (/pkg.v1.{0}/...)")
    assert where(text, "ML020") == ["4:35 " + said.format("Payments"), "4:73 " + said.format("Ledger")]
