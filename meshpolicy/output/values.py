"""Install values: the Helm values a policy decides for its mesh's charts (``authority``, docs/output.md).

They are not Kubernetes objects, so they carry no managed-by label: each file is meshpolicy's because its
first line is :data:`~.folder.MARKER`, lives in :data:`~.folder.VALUES` (which no namespace can be named)
and is never listed in the kustomization. Values go out through PyYAML's serializer, keys sorted, never by
pasting text.
"""

from __future__ import annotations

from typing import Any

import yaml

from .folder import MARKER, VALUES


class _Dumper(yaml.SafeDumper):
    """Every string double-quoted, as in the manifests (one quoting style, docs/output.md)."""


def _quoted(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style='"')


_Dumper.add_representer(str, _quoted)


def render(chart: str, values: dict[str, Any]) -> str:
    """The values file of ``chart``: the marker, one comment naming the chart, then the values."""
    body = yaml.dump(values, Dumper=_Dumper, sort_keys=True, default_flow_style=False, allow_unicode=True,
                     width=1 << 16)
    return f"{MARKER}\n# Helm values for the {chart} chart: pass with -f (docs/certificates.md)\n{body}"


def files(values: dict[str, dict[str, Any]]) -> dict[str, str]:
    """``_values/CHART.yaml`` -> text, for each chart's values."""
    return {f"{VALUES}/{chart}.yaml": render(chart, v) for chart, v in sorted(values.items())}
