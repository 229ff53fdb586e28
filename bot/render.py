"""Message rendering: every text the bot sends comes from a template in ``templates/``.

Autoescape is on, so anything user- or agent-written is escaped for Telegram's HTML
parse mode unless a template deliberately marks pre-rendered HTML as safe.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape


@cache
def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("taskops.templates", "."),
        # HTML templates escape everything; Markdown documents (the full log) are plain text.
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
        undefined=StrictUndefined,
        # The templates ship with the package: no file checks on every render.
        auto_reload=False,
    )
    return env


def render(template: str, **context: Any) -> str:
    """Render ``templates/<template>.html`` to Telegram HTML, trimmed."""
    return environment().get_template(f"{template}.html").render(**context).strip()


def render_document(template: str, **context: Any) -> str:
    """Render ``templates/<template>.md``, a plain-text document (no escaping)."""
    return environment().get_template(f"{template}.md").render(**context).strip() + "\n"
