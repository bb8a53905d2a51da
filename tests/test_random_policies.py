"""Random small policies: whenever a target builds one, its reader agrees with the decider.

The corpus covers the cases we thought of; this covers overlaps we did not
(prefixes inside prefixes, methods carved out of paths, CIDRs inside CIDRs,
probes under routes). A target may refuse a policy, but only with MP301.
"""

from __future__ import annotations

import pytest
from helpers import proved_or_refused
from hypothesis import given, settings
from hypothesis import strategies as st

from meshpolicy.backends import TARGETS

SOURCES = ["a", "b", "*", "any", "ops/*", "10.0.0.0/8", "10.1.0.0/16", "2001:db8::/32"]
METHODS = ["GET", "POST", "DELETE", "PUT"]
PATHS = ["/api/*", "/api", "/api/x", "/api/x/*", "/api/xy", "/b/*", "/", "/healthz", "/healthz/*", "/*"]
GRPC = ["p.S/M", "p.S", "p.T/N"]
PORTS = ["", ":8080", ":8081", ":9000"]
HEAD = """namespace n {{
  mtls {mode}
  service s :8080/http :8081/grpc :9000/tcp probes /healthz
  service a :80/http
  service b :80/http
"""


def _some(items, most=2):
    return st.lists(st.sampled_from(items), min_size=1, max_size=most, unique=True).map(", ".join)


@st.composite
def rules(draw) -> str:
    action = draw(st.sampled_from(["allow", "allow", "deny"]))
    head = f"  {action} {draw(_some(SOURCES))} -> s"
    if draw(st.integers(0, 3)) == 0:
        return f"{head} grpc {draw(_some(GRPC))} {draw(st.sampled_from(['', ':8081']))}".rstrip()
    methods = draw(st.one_of(st.just(""), _some(METHODS).map(lambda m: m.replace(", ", ","))))
    paths = draw(st.one_of(st.just(""), _some(PATHS)))
    port = draw(st.sampled_from(PORTS[:3] if methods or paths else PORTS))
    return " ".join(p for p in (head, methods, paths, port) if p)


policies = st.builds(lambda mode, body: HEAD.format(mode=mode) + "\n".join(body) + "\n}\n",
                     st.sampled_from(["strict", "permissive"]), st.lists(rules(), min_size=1, max_size=6))


@pytest.mark.slow
@pytest.mark.parametrize("target", sorted(TARGETS))
@settings(max_examples=100, deadline=None, derandomize=True)
@given(text=policies)
def test_a_built_policy_means_what_the_decider_says(target, text):
    proved_or_refused(text, target)
