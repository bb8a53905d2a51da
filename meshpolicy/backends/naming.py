"""Content-derived, stable resource names.

A name comes from what the resource holds (service, port, callers), never
from a rule's position, so adding one rule changes only the files it touches.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

MAX_NAME = 63


def digest(value: Any, length: int = 8) -> str:
    """A short hash of a JSON-serializable value, stable across machines and runs."""
    data = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str)
    return hashlib.sha256(data.encode()).hexdigest()[:length]


def join(*parts: str | int) -> str:
    """Join parts with '-'; a name over 63 characters is cut and ends in a hash of the whole."""
    name = "-".join(str(p) for p in parts if str(p))
    name = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")
    if len(name) <= MAX_NAME:
        return name
    tail = digest(name)
    return f"{name[: MAX_NAME - len(tail) - 1].rstrip('-')}-{tail}"
