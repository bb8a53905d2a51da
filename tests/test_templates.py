"""Templates that show the manifests (issue 10 item 5): each kind's YAML shape is in its template, every
value passes through the one ``yaml`` filter, and what a template writes must be what the backend decided."""

from __future__ import annotations

import re

import pytest
import yaml
from helpers import ROOT, builds, compile_case, compile_text

from meshpolicy.backends.base import Resource
from meshpolicy.errors import InternalError
from meshpolicy.output.templating import render

TEMPLATES = ROOT / "templates"
#: templates converted to the shape-and-values design (the Linkerd ones follow)
SHAPED = sorted(TEMPLATES.rglob("*.j2"))


def value_styles(text: str) -> list[tuple[str, str | None]]:
    """(value, quoting style) of every scalar that is a value: after ``key:`` or a ``-`` list entry."""
    out = []
    previous = None
    for token in yaml.scan(text):
        if isinstance(token, yaml.ScalarToken) and isinstance(previous, (yaml.ValueToken, yaml.BlockEntryToken)):
            out.append((token.value, token.style))
        previous = token
    return out


@pytest.mark.parametrize("path", SHAPED, ids=[p.name for p in SHAPED])
def test_the_template_holds_the_shape_and_dumps_no_structure(path):
    text = path.read_text()
    assert "| block" not in text and "|block" not in text
    assert "r.spec |" not in text


BUILDS = [(target, path) for target in ("istio", "linkerd") for path in builds(target)]


@pytest.mark.parametrize(("target", "path"), BUILDS, ids=[f"{t}-{p.stem}" for t, p in BUILDS])
def test_every_value_is_one_double_quoted_json_string(target, path):
    """One quoting style for every value: ``apiVersion: "security.istio.io/v1"`` beside ``mode: "STRICT"``
    and ``- "8080"``, never a plain or single-quoted scalar (issue 10 item 5)."""
    for name, text in compile_case(path, target).files.items():
        if name == "kustomization.yaml":
            continue
        styles = value_styles(text)
        assert styles, name
        # strings double-quoted; numbers and booleans as JSON writes them (a Server's port is an integer)
        assert [v for v, s in styles if s != '"' and not re.fullmatch(r"-?[0-9]+|true|false", v)] == [], name
        assert any(s == '"' for _, s in styles), name


def test_keys_from_the_policy_are_quoted_too():
    """Label keys and port numbers are values of the policy: they are escaped like any value."""
    text = "namespace shop {\n  service orders labels app=orders,tier=backend :8080/http :9000/http " \
           "mtls strict on 9000\n}\n"
    files = compile_text(text).files
    assert '      "tier": "backend"\n' in files["shop/peerauthentication-orders-mtls.yaml"]
    assert '    "9000":\n      mode: "STRICT"\n' in files["shop/peerauthentication-orders-mtls.yaml"]


def test_a_template_that_drops_a_field_is_a_bug_not_output():
    """The AuthorizationPolicy template knows the fields the backend emits; a field it does not lay out
    (here ``notPaths``) makes render() fail instead of writing a wider policy."""
    spec = {"selector": {"matchLabels": {"app": "a"}}, "action": "DENY",
            "rules": [{"to": [{"operation": {"ports": ["80"], "notPaths": ["/x"]}}]}]}
    res = Resource("security.istio.io/v1", "AuthorizationPolicy", "shop", "a-deny", spec, ())
    with pytest.raises(InternalError, match="does not lay out AuthorizationPolicy shop/a-deny"):
        render("istio", res)
    spec["rules"][0]["to"][0]["operation"].pop("notPaths")
    assert yaml.safe_load(render("istio", res))["spec"] == spec


def test_a_value_cannot_break_out_of_its_scalar():
    """Values are escaped by the filter: a quote, a newline or a comment sign stays inside the string."""
    tricky = 'x": y\n# z'
    res = Resource("security.istio.io/v1", "PeerAuthentication", "shop", "p",
                   {"selector": {"matchLabels": {"app": tricky}}, "mtls": {"mode": "STRICT"}}, ())
    assert yaml.safe_load(render("istio", res))["spec"]["selector"]["matchLabels"] == {"app": tricky}
