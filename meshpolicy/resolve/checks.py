"""Value checks for the resolver: ports, protocols, CIDRs, methods, gRPC names (paths: :mod:`.paths`)."""

from __future__ import annotations

import difflib
import ipaddress
import re

from ..diagnostics import shown
from ..graph.model import GrpcMatch, Protocol
from .names import GRPC_METHOD, GRPC_SERVICE, METHOD

PROTOCOLS = {p.value: p for p in Protocol}


def port_problem(text: str) -> str | None:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        return f"port {shown(text)} is out of range: a port number is 1-65535"
    return None


#: a container port's name, as Kubernetes validates it (IANA_SVC_NAME): at most 15 lower-case letters, digits
#: and '-', at least one letter, no '-' at either end or twice in a row
PORT_NAME = re.compile(r"(?=.*[a-z])[a-z0-9](?:-?[a-z0-9])*")


def is_port_name(text: str) -> bool:
    """Whether a port as written (without its ':') is a name rather than a number."""
    return not (text.isascii() and text.isdigit())


def port_name_problem(text: str) -> str | None:
    if len(text) > 15 or not PORT_NAME.fullmatch(text):
        return (f"':{shown(text)}' is neither a port number (1-65535) nor a container port name (at most 15 "
                "lower-case letters, digits and '-', with a letter, no '-' at either end or twice in a row)")
    return None


#: loopback sources: only the workload itself sends from them (the kernel drops them from the network)
LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))


def cidr_problem(text: str) -> tuple[str, str | None] | None:
    try:
        net = ipaddress.ip_network(text, strict=True)
        if any(net.version == lo.version and net.subnet_of(lo) for lo in LOOPBACK):  # type: ignore[arg-type]
            return ((f"CIDR '{shown(text)}' is a loopback network: only the workload itself sends from it, and "
                     "meshes never police it (Linkerd always admits 127.0.0.1 and ::1)"),
                    "a rule can name callers that reach the workload over the network only")
    except ValueError:
        try:
            net = ipaddress.ip_network(text, strict=False)
        except ValueError:
            return f"invalid CIDR '{shown(text)}'", "write an IPv4 or IPv6 network such as 10.0.0.0/8 or 2001:db8::/32"
        return (f"CIDR '{shown(text)}' has host bits set",
                (f"did you mean {net.with_prefixlen}? (a single address is written {shown(text.split('/')[0])}/"
                 f"{32 if net.version == 4 else 128})"))
    return None


#: the closed set of HTTP methods a rule may name (LANGUAGE §2.4): exactly the Gateway API's HTTPRoute
#: method enum, so that every target can match each of them (docs/language.md, "Methods")
METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH")


def method_problem(text: str) -> tuple[str, str, str | None] | None:
    """Why ``text`` is not a method of the closed set: (code, message, hint); ``None`` when it is one.

    MP113: not written as a method (case, or a word that is no upper-case token); MP130: an upper-case token
    outside the set. Both hint at the closest method of the set, where one is close.
    """
    if text in METHODS:
        return None
    close = difflib.get_close_matches(text.upper(), METHODS, n=1, cutoff=0.6)
    if text.upper() in METHODS:
        return "MP113", f"invalid HTTP method '{shown(text)}'", \
            f"methods are case-sensitive; did you mean {shown(text.upper())}?"
    if not METHOD.match(text):
        return "MP113", f"invalid HTTP method '{shown(text)}'", \
            (f"did you mean {close[0]}? " if close else "") + \
            "a method is an upper-case token such as GET; if this was meant as a destination, separate " \
            "destinations with ','"
    listed = f"a method is one of {' '.join(METHODS)}"
    return "MP130", f"unknown HTTP method '{shown(text)}'", \
        f"did you mean {close[0]}? {listed}" if close else f"{listed}; leave the methods out to allow any method"


def parse_grpc(text: str) -> tuple[GrpcMatch | None, str | None]:
    service, slash, method = text.partition("/")
    if not GRPC_SERVICE.match(service) or (slash and not GRPC_METHOD.match(method)):
        return None, f"invalid gRPC name '{shown(text)}': write package.Service or package.Service/Method"
    return GrpcMatch(service, method), None
