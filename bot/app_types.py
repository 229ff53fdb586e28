from __future__ import annotations

from typing import Any

from telegram.ext import Application

AnyApp = Application[Any, Any, Any, Any, Any, Any]
