"""What every reader is: the protocol it implements, the one error hierarchy it raises, and typed field access.

A reader parses the emitted manifests once into small frozen records (one per
kind it models) and decides requests over those records. Parsing is the one
place where it refuses what it cannot evaluate exactly: a construct it does not
model (:class:`Unmodelled`) or a document it cannot read (:class:`Malformed`).
A choice the mesh would make by creation time is found while deciding
(:class:`Ambiguous`). Verification turns exactly these exceptions, and no
others, into MP501: any other exception from a reader is a bug in the reader
and surfaces as one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from ..errors import MeshpolicyError
from ..graph.evaluate import Request, Seen
from ..graph.space import Mentions
from .world import World


class ReaderError(MeshpolicyError):
    """The manifests cannot be evaluated exactly: meshpolicy refuses them (MP501), never guesses."""


class Unmodelled(ReaderError):
    """The manifests use something this reader does not evaluate."""


class Ambiguous(ReaderError):
    """The mesh would pick by creation time (two PeerAuthentications at one level, two Servers for a port...)."""


class Malformed(ReaderError):
    """A document the reader cannot read: a missing field, or a value of the wrong type."""


#: (kind, namespace, name) of an emitted resource
ResourceRef = tuple[str, str, str]


class Reader(Protocol):
    """A target's reader (``READERS``): the mesh's decision on emitted YAML, in a :class:`World` of pods."""

    def __init__(self, docs: list[dict[str, Any]], world: World, *, dry_run_enforced: bool = False,
                 **installation: Any) -> None:
        """Parse ``docs`` into records; raises :class:`ReaderError` for anything it cannot evaluate.

        ``installation``: what the reader must know of the mesh's installation, passed on from the
        backend's ``reader_options()`` (Istio: ``root_namespace``).
        """

    def decide(self, request: Request) -> bool:
        """What the mesh does with the request: True = allowed."""
        ...

    def seen(self, request: Request) -> Seen | None:
        """What of the caller :meth:`decide` looks at for the request's destination and operation, whoever the
        caller (:class:`Seen`; None: it cannot say). Must never be too small: verification decides one caller
        for all those it cannot tell apart by it (docs/verify.md)."""
        ...

    def mentions(self, namespace: str, service: str | None) -> Mentions:
        """Every value the manifests test for one workload (``service`` None: the namespace's undeclared one)."""
        ...

    def explain(self, request: Request) -> list[ResourceRef]:
        """The resources that decide the request."""
        ...


# -- typed access to a parsed YAML document: every wrong shape is Malformed -----------------------

class Fields:
    """One mapping of a document, read with its place named in every error (``AuthorizationPolicy a/b spec``)."""

    __slots__ = ("data", "where")

    def __init__(self, data: object, where: str):
        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            raise Malformed(f"{where} is not a mapping")
        self.data: Mapping[str, Any] = data
        self.where = where

    def __contains__(self, key: str) -> bool:
        return key in self.data

    def keys(self) -> set[str]:
        return set(self.data)

    def only(self, allowed: set[str] | frozenset[str], what: str = "field") -> None:
        """Refuse every key outside ``allowed``: a field the reader does not model is never ignored."""
        extra = sorted(set(self.data) - set(allowed), key=str)
        if extra:
            raise Unmodelled(f"{self.where}: {what} {extra[0]}")

    def mapping(self, key: str) -> Fields:
        return Fields(self.data.get(key), f"{self.where}.{key}")

    def string(self, key: str, default: str | None = None) -> str:
        value = self.data.get(key, default)
        if not isinstance(value, str):
            raise Malformed(f"{self.where}.{key} is {'missing' if key not in self.data else 'not a string'}")
        return value

    def optional_string(self, key: str) -> str | None:
        return None if self.data.get(key) is None else self.string(key)

    def integer(self, key: str) -> int:
        value = self.data.get(key)
        if not isinstance(value, int) or isinstance(value, bool):
            raise Malformed(f"{self.where}.{key} is {'missing' if key not in self.data else 'not an integer'}")
        return value

    def sequence(self, key: str) -> list[Any]:
        value = self.data.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            raise Malformed(f"{self.where}.{key} is not a list")
        return value

    def mappings(self, key: str) -> list[Fields]:
        return [Fields(item, f"{self.where}.{key}[{i}]") for i, item in enumerate(self.sequence(key))]

    def strings(self, key: str) -> tuple[str, ...]:
        values = self.sequence(key)
        if not all(isinstance(v, str) for v in values):
            raise Malformed(f"{self.where}.{key} holds a value that is not a string")
        return tuple(values)

    def labels(self, key: str) -> tuple[tuple[str, str], ...]:
        """A string-to-string mapping (matchLabels, annotations), sorted."""
        found = self.mapping(key).data
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in found.items()):
            raise Malformed(f"{self.where}.{key} holds a value that is not a string")
        return tuple(sorted(found.items()))


def header(doc: dict[str, Any], *, namespaced: bool = True) -> tuple[Fields, str, str, Fields]:
    """(metadata, namespace, name, spec) of a document; ``namespace`` is "" for a cluster-scoped kind."""
    kind = doc.get("kind")
    meta = Fields(doc.get("metadata"), f"{kind} metadata")
    name = meta.string("name")
    namespace = meta.string("namespace") if namespaced else ""
    return meta, namespace, name, Fields(doc.get("spec"), f"{kind} {namespace}/{name} spec".replace(" /", " "))


#: (API group, kind) of the resources a build emits beside the policy that take no part in deciding a request:
#: the certificates, trust bundle and alerting rules of ``authority`` (docs/certificates.md). No mesh reads
#: them when it admits or refuses a request, so every reader leaves exactly these out, and refuses the rest.
INERT = frozenset({("cert-manager.io", "Certificate"), ("cert-manager.io", "Issuer"),
                   ("trust.cert-manager.io", "Bundle"), ("monitoring.coreos.com", "PrometheusRule")})


def deciding(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``docs`` without the :data:`INERT` ones."""
    return [d for d in docs if (api_group(d), d.get("kind")) not in INERT]


def api_group(doc: dict[str, Any]) -> str:
    """The API group of ``apiVersion`` ("" for the core group)."""
    version = doc.get("apiVersion")
    if not isinstance(version, str):
        raise Malformed(f"{doc.get('kind')} has no apiVersion")
    return version.rsplit("/", 1)[0] if "/" in version else ""
