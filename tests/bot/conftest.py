from __future__ import annotations

from tests.fakegram.fixtures import fakegram

__all__ = ["fakegram"]
