"""gRPC rules: a service named without its package (ML020)."""

from __future__ import annotations

from collections.abc import Iterator

from ..parse import ast
from .context import Context
from .registry import Finding, rule


@rule("ML020", "grpc-service-without-package")
def grpc_service_without_package(ctx: Context) -> Iterator[Finding]:
    """``grpc Payments``: a gRPC call's path names the service with its package (``/pkg.v1.Payments/Charge``),
    so an unqualified name matches only a service its ``.proto`` declares without a package."""
    for scoped in ctx.nodes(ast.Rule):
        for word in scoped.node.grpc:
            service = word.value.partition("/")[0]
            if "." in service:
                continue
            yield Finding(
                f"the gRPC service '{service}' has no package: it matches only calls to /{service}/..., never "
                f"those to a service of the same name in a package (/pkg.v1.{service}/...)",
                word.span,
                "write the name as the .proto declares it, with its package (package payments.v1; service "
                "Payments -> payments.v1.Payments); mark the line '# lint: ignore ML020' if the service really "
                "has no package")
