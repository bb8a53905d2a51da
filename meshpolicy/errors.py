"""The one base of every exception meshpolicy raises on purpose, and its three kinds.

- :class:`~meshpolicy.diagnostics.MeshError`: the policy is wrong; it carries
  diagnostics (``file:line:col``) and the CLI exits 1.
- :class:`UsageError`: the invocation or its surroundings are wrong (a path that
  does not exist, an unusable ``--crds`` or ``--out`` folder, a question
  ``explain`` cannot read); the CLI prints one line, ``meshpolicy: error: ...``,
  and exits 2.
- :class:`InternalError`: a self-check of meshpolicy failed (a backend emitted two
  resources with one name, ``fmt`` would change a syntax tree). A bug, never the
  user's input: the CLI's error boundary does not catch it, so it ends in a
  traceback that can be reported.

Other exceptions (``KeyError``, ``TypeError``, ...) are bugs too. Errors local to
one part derive from these (the readers' errors that verification turns into
MP501, for one) and are caught there; the CLI's boundary
(:func:`meshpolicy.cli.common.boundary`) relies only on the three kinds above.
This module imports nothing, so every module can use it.
"""

from __future__ import annotations

__all__ = ["InternalError", "MeshpolicyError", "UsageError"]


class MeshpolicyError(Exception):
    """Base of every exception meshpolicy defines."""


class UsageError(MeshpolicyError):
    """The invocation or its surroundings are wrong: one line for the user, exit code 2."""


class InternalError(MeshpolicyError):
    """A self-check failed: a bug in meshpolicy, reported with a traceback."""
