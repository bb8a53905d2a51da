"""The metadata the output stamps on every manifest: who manages it, and the lines it comes from.

The writer owns a file only where it carries :data:`MANAGED_BY_LABEL` =
:data:`MANAGED_BY_VALUE` (LANGUAGE §5); backends never set these.
"""

from __future__ import annotations

MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY_VALUE = "meshpolicy"
SOURCE_ANNOTATION = "meshpolicy.io/source"
