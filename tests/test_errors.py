"""Every class of error, with its full rendered diagnostic: file:line:col, message, source line, caret, hint.

The expected text is written out in full so that a change to any message, position or hint is a
deliberate, reviewed change (jinja's test_error_messages style).
"""

from __future__ import annotations

import pytest

from meshpolicy import pipeline
from meshpolicy.diagnostics import CODES, MeshError, Severity, render_text
from meshpolicy.source import SourceFile


def rendered(text: str) -> str:
    src = SourceFile("policy.mesh", text)
    with pytest.raises(MeshError) as err:
        pipeline.lower(pipeline.analyze([src]), "istio")
    return "\n".join(render_text(d, {src.name: src}) for d in err.value.diagnostics)


ERRORS = {
    'MP001-brace-on-one-line': (
        'namespace x {}\n',
        "policy.mesh:1:14: error[MP001]: unexpected '}', expected end of line\n 1 | namespace x {}\n   |              ^\n  = hint: '{' ends the line that opens a block, and '}' stands alone on its own line",
    ),
    'MP001-missing-comma-in-methods': (
        'service a :80/http\nallow a -> a GET POST\n',
        "policy.mesh:2:18: error[MP001]: unexpected 'POST', expected one of ',', 'if', a container port's name such as :http, a path such as /api/*, a port such as :8080, end of line\n 2 | allow a -> a GET POST\n   |                  ^^^^\n  = hint: separate the items of a list with ','; a rule's parts come in the order METHODS, PATHS, PORTS",
    ),
    'MP001-parts-out-of-order': (
        'service a :80/http\nallow a -> a :80 GET\n',
        "policy.mesh:2:18: error[MP001]: unexpected 'GET', expected one of ',', 'if', end of line\n 2 | allow a -> a :80 GET\n   |                  ^^^\n  = hint: a rule's parts come in the order METHODS, PATHS, PORTS",
    ),
    'MP001-missing-arrow': (
        'namespace shop {\n  service orders :8080/http\n  allow frontend orders GET\n}\n',
        "policy.mesh:3:18: error[MP001]: unexpected 'orders', expected '->'\n 3 |   allow frontend orders GET\n   |                  ^^^^^^\n  = hint: write the rule as: allow SOURCES -> DESTINATIONS [METHODS] [PATHS] [PORTS]",
    ),
    'MP101-keyword-group': (
        'group allow = a\n',
        "policy.mesh:1:7: error[MP101]: 'allow' is a keyword and cannot be used as a name\n 1 | group allow = a\n   |       ^^^^^\n  = hint: choose another name",
    ),
    'MP001-bad-character': (
        'service orders :8080/http\nallow * -> orders GET;POST\n',
        "policy.mesh:2:22: error[MP001]: unexpected character ';'\n 2 | allow * -> orders GET;POST\n   |                      ^",
    ),
    'MP002-unclosed-namespace': (
        'namespace shop {\n  service orders :8080/http\n  allow * -> orders\n',
        "policy.mesh:1:1: error[MP002]: namespace 'shop' opened at line 1 is not closed\n 1 | namespace shop {\n   | ^^^^^^^^^^^^^^^^\n  = hint: add a line holding only '}' at the end of the block",
    ),
    'MP101-invalid-name': (
        'namespace shop {\n  service Orders_API :8080/http\n}\n',
        "policy.mesh:2:11: error[MP101]: invalid name 'Orders_API'\n 2 |   service Orders_API :8080/http\n   |           ^^^^^^^^^^\n  = hint: names are DNS-1123 labels: lowercase letters, digits and '-', starting and ending with a letter or digit; did you mean 'orders-api'?",
    ),
    'MP101-keyword-service': (
        'service allow :8080/http\n',
        "policy.mesh:1:9: error[MP101]: 'allow' is a keyword and cannot be used as a name\n 1 | service allow :8080/http\n   |         ^^^^^\n  = hint: choose another name",
    ),
    'MP102-service-twice': (
        'namespace shop {\n  service orders :8080/http\n}\nnamespace shop {\n  service orders :9090/tcp\n}\n',
        "policy.mesh:5:11: error[MP102]: service 'shop/orders' is declared twice\n 5 |   service orders :9090/tcp\n   |           ^^^^^^\n  = policy.mesh:2:11: first declared here\n 2 |   service orders :8080/http\n   |           ^^^^^^\n  = hint: declare a service once; put all its attributes on that declaration",
    ),
    'MP102-trust-domain-twice': (
        'trust-domain a.example\ntrust-domain b.example\nservice web :80/http\n',
        'policy.mesh:2:1: error[MP102]: trust-domain is declared twice\n 2 | trust-domain b.example\n   | ^^^^^^^^^^^^^^^^^^^^^^\n  = policy.mesh:1:1: first declared here\n 1 | trust-domain a.example\n   | ^^^^^^^^^^^^^^^^^^^^^^\n  = hint: declare it once for the whole policy',
    ),
    'MP103-undeclared': (
        'namespace shop {\n  service orders :8080/http\n  service frontend :8080/http\n  allow frontnd -> orders GET\n}\n',
        "policy.mesh:4:9: error[MP103]: 'frontnd' is not declared in namespace 'shop'\n 4 |   allow frontnd -> orders GET\n   |         ^^^^^^^\n  = hint: did you mean 'frontend'?",
    ),
    'MP103-other-namespace': (
        'namespace shop {\n  service orders :8080/http\n  allow billing/invoicer -> orders\n}\n',
        "policy.mesh:3:9: error[MP103]: 'billing/invoicer' is not declared\n 3 |   allow billing/invoicer -> orders\n   |         ^^^^^^^^^^^^^^^^\n  = hint: namespace 'billing' declares nothing",
    ),
    'MP104-group-cycle': (
        'namespace shop {\n  service orders :8080/http\n  group a = b, orders\n  group b = a\n  allow a -> orders\n}\n',
        'policy.mesh:3:9: error[MP104]: group cycle: shop/a -> shop/b -> shop/a\n 3 |   group a = b, orders\n   |         ^\n  = hint: a group cannot contain itself, directly or through other groups',
    ),
    'MP106-external-destination': (
        'namespace monitoring external {\n  service prometheus\n}\nnamespace shop {\n  service orders :8080/http\n  allow shop/orders -> monitoring/prometheus\n}\n',
        "policy.mesh:6:24: error[MP106]: 'monitoring/prometheus' is in external namespace 'monitoring': it cannot be a destination\n 6 |   allow shop/orders -> monitoring/prometheus\n   |                        ^^^^^^^^^^^^^^^^^^^^^\n  = hint: external namespaces only call; remove 'external' to protect it",
    ),
    'MP107-port-range': (
        'service orders :70000/http\n',
        'policy.mesh:1:17: error[MP107]: port 70000 is out of range: a port number is 1-65535\n 1 | service orders :70000/http\n   |                 ^^^^^',
    ),
    'MP108-protocol': (
        'service orders :8080/udp\n',
        "policy.mesh:1:22: error[MP108]: unknown protocol 'udp'\n 1 | service orders :8080/udp\n   |                      ^^^\n  = hint: a port's protocol is http, http2, grpc or tcp",
    ),
    'MP109-methods-on-tcp': (
        'service db :5432/tcp\nservice api :8080/http\nallow api -> db GET :5432\n',
        "policy.mesh:3:22: error[MP109]: methods, paths or grpc need an HTTP port, but port 5432 of 'default/db' is tcp\n 3 | allow api -> db GET :5432\n   |                      ^^^^\n  = hint: remove the methods/paths, or name an http, http2 or grpc port",
    ),
    'MP109-no-http-port': (
        'service db :5432/tcp\nservice api :8080/http\nallow api -> db GET\n',
        "policy.mesh:3:14: error[MP109]: methods, paths or grpc need an HTTP port, but 'default/db' declares none\n 3 | allow api -> db GET\n   |              ^^\n  = hint: declare an HTTP port on 'db', e.g. :8080/http",
    ),
    'MP110-undeclared-port': (
        'service orders :8080/http\nservice api :8080/http\nallow api -> orders :9090\n',
        "policy.mesh:3:22: error[MP110]: 'default/orders' does not declare port 9090\n 3 | allow api -> orders :9090\n   |                      ^^^^\n  = hint: its declared ports: :8080/http",
    ),
    'MP111-label': (
        'service orders labels app=orders,app=x :8080/http\n',
        "policy.mesh:1:34: error[MP111]: label 'app' is given twice\n 1 | service orders labels app=orders,app=x :8080/http\n   |                                  ^^^^^",
    ),
    'MP112-cidr-host-bits': (
        'service orders :8080/http\nallow 10.0.0.1/8 -> orders\n',
        "policy.mesh:2:7: error[MP112]: CIDR '10.0.0.1/8' has host bits set\n 2 | allow 10.0.0.1/8 -> orders\n   |       ^^^^^^^^^^\n  = hint: did you mean 10.0.0.0/8? (a single address is written 10.0.0.1/32)",
    ),
    'MP113-method-case': (
        'service orders :8080/http\nservice api :8080/http\nallow api -> orders get\n',
        "policy.mesh:3:21: error[MP113]: invalid HTTP method 'get'\n 3 | allow api -> orders get\n   |                     ^^^\n  = hint: methods are case-sensitive; did you mean GET?",
    ),
    'MP113-missing-comma': (
        'service orders :8080/http\nservice api :8080/http\nservice search :8080/http\nallow api -> orders search\n',
        "policy.mesh:4:21: error[MP113]: invalid HTTP method 'search'\n 4 | allow api -> orders search\n   |                     ^^^^^^\n  = hint: 'search' is a service or group: separate destinations with ','",
    ),
    'MP114-path': (
        'service orders :8080/http\nservice api :8080/http\nallow api -> orders GET /api/*/items\n',
        "policy.mesh:3:30: error[MP114]: invalid path '/api/*/items': '*' may only begin a path (*SUFFIX) or end it (/prefix* or /prefix/*)\n 3 | allow api -> orders GET /api/*/items\n   |                              ^\n  = hint: write /prefix/* for a path and everything under it, /prefix* for every path that starts with those characters, *SUFFIX for every path that ends with them",
    ),
    'MP115-trust-domain': (
        'trust-domain Cluster_Local\nservice web :80/http\n',
        "policy.mesh:1:14: error[MP115]: invalid trust domain 'Cluster_Local'\n 1 | trust-domain Cluster_Local\n   |              ^^^^^^^^^^^^^\n  = hint: a trust domain is a DNS name such as cluster.local",
    ),
    'MP116-grpc': (
        'service pay :8443/grpc\nservice api :8080/http\nallow api -> pay grpc payments-v1.Payments/Charge\n',
        "policy.mesh:3:23: error[MP116]: invalid gRPC name 'payments-v1.Payments/Charge': write package.Service or package.Service/Method\n 3 | allow api -> pay grpc payments-v1.Payments/Charge\n   |                       ^^^^^^^^^^^^^^^^^^^^^^^^^^^",
    ),
    'MP117-nested-namespace': (
        'namespace a {\n  namespace b {\n    service x\n  }\n}\n',
        "policy.mesh:2:3: error[MP117]: namespaces cannot be nested\n 2 |   namespace b {\n   |   ^^^^^^^^^^^^^\n  = hint: close namespace 'a' first",
    ),
    'MP117-mtls-on-namespace': (
        'namespace shop {\n  mtls permissive on 8080\n  service orders :8080/http\n}\n',
        "policy.mesh:2:22: error[MP117]: 'mtls ... on PORT' is a service attribute\n 2 |   mtls permissive on 8080\n   |                      ^^^^\n  = hint: write it on the service: service NAME ... mtls permissive on PORT",
    ),
    'MP118-overlapping-selectors': (
        'namespace shop {\n  service orders labels app=orders :8080/http\n  service orders-canary labels app=orders,track=canary :8080/http\n}\n',
        "policy.mesh:3:11: error[MP118]: the labels of 'orders' and 'orders-canary' can select the same pod\n 3 |   service orders-canary labels app=orders,track=canary :8080/http\n   |           ^^^^^^^^^^^^^\n  = policy.mesh:2:11: 'orders' is declared here\n 2 |   service orders labels app=orders :8080/http\n   |           ^^^^^^\n  = hint: give both services one label key with different values (e.g. app=NAME, the default)",
    ),
    'MP118-selectors-on-different-keys': (
        'namespace shop {\n  service api labels tier=api :8080/http\n  service orders :8080/http\n}\n',
        "policy.mesh:3:11: error[MP118]: the labels of 'api' and 'orders' can select the same pod\n 3 |   service orders :8080/http\n   |           ^^^^^^\n  = policy.mesh:2:11: 'api' is declared here\n 2 |   service api labels tier=api :8080/http\n   |           ^^^\n  = hint: give both services one label key with different values (e.g. app=NAME, the default)",
    ),
    'MP119-any-destination': (
        'service orders :8080/http\nallow orders -> any\n',
        "policy.mesh:2:17: error[MP119]: 'any' can only be a source, not a destination\n 2 | allow orders -> any\n   |                 ^^^\n  = hint: a destination is a service, a group, '*' or 'NS/*'",
    ),
    'MP120-system-namespace': (
        'namespace linkerd-viz {\n  service web :8084/http\n}\n',
        "policy.mesh:1:11: error[MP120]: namespace 'linkerd-viz' is Linkerd's viz extension: a policy cannot manage it\n 1 | namespace linkerd-viz {\n   |           ^^^^^^^^^^^\n  = policy.mesh:2:11: a service declared here would put it under a default deny\n 2 |   service web :8084/http\n   |           ^^^\n  = hint: to name its workloads as callers, declare it external: namespace linkerd-viz external { ... }",
    ),
    'MP130-unknown-method': (
        'service orders :8080/http\nservice api :8080/http\nallow api -> orders GET,PATHC\n',
        "policy.mesh:3:25: error[MP130]: unknown HTTP method 'PATHC'\n 3 | allow api -> orders GET,PATHC\n   |                         ^^^^^\n  = hint: did you mean PATCH? a method is one of GET HEAD POST PUT DELETE CONNECT OPTIONS TRACE PATCH",
    ),
    'MP130-no-close-method': (
        'service orders :8080/http\nservice api :8080/http\nallow api -> orders PURGE\n',
        "policy.mesh:3:21: error[MP130]: unknown HTTP method 'PURGE'\n 3 | allow api -> orders PURGE\n   |                     ^^^^^\n  = hint: a method is one of GET HEAD POST PUT DELETE CONNECT OPTIONS TRACE PATCH; leave the methods out to allow any method",
    ),
    'MP131-grpc-without-grpc-ports': (
        'service pay :8080/http\nservice api :8080/http\nallow api -> pay grpc payments.v1.Payments\n',
        "policy.mesh:3:14: error[MP131]: a grpc rule without ports covers the grpc ports of 'default/pay', and it declares none\n 3 | allow api -> pay grpc payments.v1.Payments\n   |              ^^^\n  = hint: name the port the gRPC service is served on (its declared ports: :8080/http), or declare it :PORT/grpc",
    ),
    'MP140-issuer-url': (
        'issuer google http://accounts.google.com\n',
        "policy.mesh:1:15: error[MP140]: invalid issuer URL 'http://accounts.google.com': it must be an https URL\n 1 | issuer google http://accounts.google.com\n   |               ^^^^^^^^^^^^^^^^^^^^^^^^^^\n  = hint: write the issuer URL as https://HOST/PATH, such as https://accounts.google.com",
    ),
    'MP141-unknown-issuer': (
        'issuer google https://accounts.google.com\nservice a :80/http\nallow * -> a :80 if jwt gogle\n',
        "policy.mesh:3:25: error[MP141]: unknown issuer 'gogle'\n 3 | allow * -> a :80 if jwt gogle\n   |                         ^^^^^\n  = hint: did you mean 'google'?",
    ),
    'MP142-header-name': (
        'service a :80/http\nallow * -> a :80 if header x@tenant=acme\n',
        "policy.mesh:2:28: error[MP142]: invalid header name 'x@tenant'\n 2 | allow * -> a :80 if header x@tenant=acme\n   |                            ^^^^^^^^\n  = hint: a header name is an HTTP token (RFC 7230): letters, digits and !#$%&'*+-.^_`|~",
    ),
    'MP143-wildcard-value': (
        'service a :80/http\nallow * -> a :80 if header x-tenant=acme*\n',
        "policy.mesh:2:37: error[MP143]: a header value may not begin or end with '*': 'acme*'\n 2 | allow * -> a :80 if header x-tenant=acme*\n   |                                     ^^^^^\n  = hint: conditions compare exact values; a target would read a leading or trailing '*' as a pattern",
    ),
    'MP144-claim-without-jwt': (
        'service a :80/http\nallow * -> a :80 if claim groups=admin\n',
        "policy.mesh:2:21: error[MP144]: 'claim groups=...' needs a 'jwt ISSUER' condition in the same rule\n 2 | allow * -> a :80 if claim groups=admin\n   |                     ^^^^^^^^^^^^^^^^^^\n  = hint: a claim is read from the token of the issuer the rule names, e.g. if jwt ISSUER, claim groups=admin",
    ),
    'MP145-two-issuers': (
        'issuer g https://g.example\nissuer h https://h.example\nservice a :80/http\nallow * -> a :80 if jwt g, jwt h\n',
        "policy.mesh:4:28: error[MP145]: a request carries one token, of one issuer: this rule's jwt conditions can never all hold\n 4 | allow * -> a :80 if jwt g, jwt h\n   |                            ^^^^^\n  = policy.mesh:4:21: the other issuer\n 4 | allow * -> a :80 if jwt g, jwt h\n   |                     ^^^^^\n  = hint: write one rule per issuer",
    ),
    'MP106-external-every-workload': (
        'namespace monitoring external {\n  service prometheus\n}\nservice web :80/http\nallow web -> monitoring/** :9090\n',
        "policy.mesh:5:14: error[MP106]: namespace 'monitoring' is external: it cannot be a destination\n 5 | allow web -> monitoring/** :9090\n   |              ^^^^^^^^^^^^^\n  = hint: external namespaces only call; remove 'external' to protect it",
    ),
    'MP120-system-namespace-every-workload': (
        'service web :80/http\nallow web -> kube-system/** :53\n',
        "policy.mesh:2:14: error[MP120]: namespace 'kube-system' is Kubernetes' own: a policy cannot manage it\n 2 | allow web -> kube-system/** :53\n   |              ^^^^^^^^^^^^^^\n  = hint: 'kube-system/**' would put every workload of it under a default deny; to name its workloads as callers, use 'kube-system/*' as a source",
    ),
    'MP150-every-workload-as-source': (
        'namespace shop {\n  service orders :8080/http\n  allow ** -> orders :8080\n}\n',
        "policy.mesh:3:9: error[MP150]: '**' can only be a destination, not a source\n 3 |   allow ** -> orders :8080\n   |         ^^\n  = hint: as a source, 'shop/*' is any authenticated workload of namespace shop, declared or not",
    ),
    'MP151-every-workload-http-without-ports': (
        'namespace shop {\n  service orders :8080/http\n  allow monitoring/* -> ** GET /metrics\n}\n',
        "policy.mesh:3:25: error[MP151]: '**' covers workloads the policy does not declare: a rule with methods, paths or grpc must name its ports\n 3 |   allow monitoring/* -> ** GET /metrics\n   |                         ^^\n  = hint: give the HTTP ports, e.g. '** ... :8080'; on undeclared workloads they are taken to be HTTP",
    ),
    'MP152-every-workload-http-on-tcp-port': (
        'namespace shop {\n  service orders :8080/http :9102/tcp\n  allow monitoring/* -> shop/** GET /metrics :9102\n}\n',
        "policy.mesh:3:47: error[MP152]: methods, paths or grpc need an HTTP port, but 'shop/orders' (covered by 'shop/**') declares port 9102 tcp\n 3 |   allow monitoring/* -> shop/** GET /metrics :9102\n   |                                               ^^^^\n  = hint: name another port, or declare :9102 on 'orders' as http, http2 or grpc",
    ),
    'MP153-every-workload-port-name': (
        'namespace shop {\n  service orders :8080/http\n  allow monitoring/* -> ** GET /metrics :metrics\n}\n',
        "policy.mesh:3:42: error[MP153]: '**' covers workloads the policy does not declare: port ':metrics' needs a number\n 3 |   allow monitoring/* -> ** GET /metrics :metrics\n   |                                          ^^^^^^^\n  = hint: a container port's name is resolved on a declared service's pods (--cluster); write the port number for '**'",
    ),
    'MP201-never': (
        'namespace shop {\n  service orders :8080/http\n  service frontend :8080/http\n  allow frontend -> orders\n  never frontend -> orders DELETE\n}\n',
        'policy.mesh:5:3: error[MP201]: never rule violated: the policy allows shop/frontend (mTLS, from 192.0.2.10) -> shop/orders:8080 DELETE /\n 5 |   never frontend -> orders DELETE\n   |   ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^\n  = policy.mesh:4:3: allowed by: allow frontend -> orders\n 4 |   allow frontend -> orders\n   |   ^^^^^^^^^^^^^^^^^^^^^^^^\n  = hint: narrow the allow rule(s) below, or add a deny rule for what must never happen',
    ),
}


@pytest.mark.parametrize("name", sorted(ERRORS))
def test_error_is_rendered_in_full(name):
    text, expected = ERRORS[name]
    assert rendered(text) == expected


def test_every_resolver_and_parser_code_is_exercised():
    """Every compile-time code of the table (MP0xx, MP1xx, MP2xx) has a rendered test, but the warning MP105."""
    covered = {name.split("-")[0] for name in ERRORS}
    compile_codes = {c for c in CODES if c[2] in "012"} - {"MP105"}
    assert compile_codes <= covered


def test_all_errors_of_a_stage_are_reported_together():
    text = ("service orders :8080/http\n"
            "allow frontnd -> orders\n"
            "allow orders -> payments GET\n"
            "service Bad_Name\n")
    out = rendered(text)
    assert out.count("error[") == 3
    assert "policy.mesh:2:7: error[MP103]" in out
    assert "policy.mesh:3:17: error[MP103]" in out
    assert "policy.mesh:4:9: error[MP101]" in out


def test_syntax_errors_of_several_files_are_reported_together():
    files = [SourceFile("a.mesh", "allow a b\n"), SourceFile("b.mesh", "service x :80/http {\n")]
    with pytest.raises(MeshError) as err:
        pipeline.analyze(files)
    assert [(d.span.file, d.code) for d in err.value.diagnostics] == [("a.mesh", "MP001"), ("b.mesh", "MP002")]


def test_unused_group_is_a_warning_not_an_error():
    analysis = pipeline.analyze([SourceFile("p.mesh", "service web :80/http\ngroup nobody = web\n")])
    [warning] = analysis.diagnostics
    assert warning.severity is Severity.WARNING
    assert render_text(warning, {}) == "p.mesh:2:7: warning[MP105]: group 'nobody' is never used\n  = hint: use it in a rule or remove it"
