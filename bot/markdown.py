"""Agent-written Markdown → Telegram HTML (or plain text), through markdown-it's syntax tree.

The source is parsed by markdown-it (CommonMark + GFM tables and strikethrough) and the
resulting token tree is walked; nothing here looks at the Markdown source with regexes.
Only tags Telegram's HTML parse mode supports are emitted, every opened tag is closed by
the same call that opened it, and all text (including raw HTML in the Markdown, which is
shown literally) is escaped.

Mapping:
    paragraph            text; blocks are separated by one blank line
    heading              <b>text</b> on its own line
    *em* / **strong**    <i> / <b>;  ~~del~~ → <s>;  `code` → <code>
    fenced/indented code <pre>, or <pre><code class="language-xx"> when the fence names one
    link / autolink      <a href> for http, https, mailto and tg URLs, else just its text
    image                like a link whose text is the alt text (the URL when there is none)
    blockquote           <blockquote>; a quote inside a quote is flattened into the outer one
    bullet / ordered     "• item" / "3. item" lines; nested blocks indented two spaces a level
    horizontal rule      a line "———"
    table                a <pre> block with aligned columns ("a | b", "--+--" rule)
    raw HTML             escaped, shown as typed
    hard / soft break    a newline

``markdown_to_plain`` renders the same structure without markup (for documents and length
estimates); there a link whose text is not its URL reads "text (url)".
"""

from __future__ import annotations

import unicodedata

from markdown_it import MarkdownIt
from markdown_it.tree import SyntaxTreeNode

__all__ = ["markdown_to_html", "markdown_to_plain"]

MAX_NESTING = 50  # markdown-it silently drops blocks nested deeper; see ``document``
_MD = MarkdownIt("commonmark", {"maxNesting": MAX_NESTING}).enable(["table", "strikethrough"])
LINK_SCHEMES = frozenset({"http", "https", "mailto", "tg"})
BULLET = "•"
RULE = "———"
INDENT = "  "
_INLINE_TAGS = {"em": "i", "strong": "b", "s": "s"}
_LANG_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+#-_.")


def markdown_to_html(text: str) -> str:
    """Render Markdown to HTML that Telegram's HTML parse mode accepts (no edge blank lines)."""
    return _Renderer(html=True).document(text)


def markdown_to_plain(text: str) -> str:
    """Render Markdown to plain text with the same layout as ``markdown_to_html``."""
    return _Renderer(html=False).document(text)


def escape_html(text: str, *, quote: bool = False) -> str:
    """Escape ``&``, ``<``, ``>`` (and ``"`` with ``quote``) for Telegram HTML."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text.replace('"', "&quot;") if quote else text


def link_allowed(url: str) -> bool:
    """Whether a link target may become an ``<a href>``: an http(s), mailto or tg URL."""
    scheme, colon, _ = url.partition(":")
    return bool(colon) and scheme.lower() in LINK_SCHEMES


def _width(text: str) -> int:
    """Columns a string takes in a monospaced font (wide East Asian and emoji count 2)."""
    width = 0
    for ch in text:
        if unicodedata.combining(ch) or unicodedata.category(ch) in ("Mn", "Me", "Cf"):
            continue
        width += 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
    return width


def _indent_rest(body: str, indent: str) -> str:
    """Indent every non-empty line but the first."""
    first, *rest = body.split("\n")
    return "\n".join([first, *(indent + line if line else line for line in rest)])


class _Renderer:
    """One walk over the syntax tree; ``html=False`` drops the markup and the escaping."""

    def __init__(self, *, html: bool) -> None:
        self.html = html

    # --- helpers ----------------------------------------------------------------------

    def _esc(self, text: str) -> str:
        return escape_html(text) if self.html else text

    def _tag(self, name: str, inner: str, attr: str = "") -> str:
        if not self.html or not inner:
            return inner
        return f"<{name}{attr}>{inner}</{name}>"

    def _blank(self, block: str) -> bool:
        """No visible text: whitespace only once our own tags are skipped."""
        if not self.html:
            return not block.strip()
        head, *parts = block.split("<")  # text never holds a raw "<": it is escaped
        return not head.strip() and all(not p.partition(">")[2].strip() for p in parts)

    # --- blocks -----------------------------------------------------------------------

    def document(self, text: str) -> str:
        tokens = _MD.parse(text)
        if any(token.level >= MAX_NESTING - 1 for token in tokens):
            # Nested past markdown-it's limit, where it would drop text: show it as typed.
            lines = text.replace("\0", "\ufffd").splitlines()
            return self._esc("\n".join(line.rstrip() for line in lines).strip("\n"))
        root = SyntaxTreeNode(tokens)
        return "\n\n".join(self._blocks(root.children, quoted=False)).strip("\n")

    def _blocks(self, nodes: list[SyntaxTreeNode], quoted: bool) -> list[str]:
        rendered = (self._block(node, quoted) for node in nodes)
        return [block for block in rendered if not self._blank(block)]

    def _block(self, node: SyntaxTreeNode, quoted: bool) -> str:
        kind = node.type
        if kind == "paragraph":
            return self._inlines(node.children, in_link=False)
        if kind == "heading":
            return self._tag("b", self._inlines(node.children, in_link=False))
        if kind in ("bullet_list", "ordered_list"):
            return self._list(node, quoted)
        if kind == "blockquote":
            inner = "\n\n".join(self._blocks(node.children, quoted=True))
            return inner if quoted else self._tag("blockquote", inner)
        if kind in ("fence", "code_block"):
            return self._code(node)
        if kind == "html_block":
            return self._esc(node.content.strip("\n"))
        if kind == "hr":
            return RULE
        if kind == "table":
            return self._table(node)
        if kind == "inline":
            return self._inlines(node.children, in_link=False)
        return "\n\n".join(self._blocks(node.children, quoted))  # any other container

    def _list(self, node: SyntaxTreeNode, quoted: bool) -> str:
        ordered = node.type == "ordered_list"
        start = int(str(node.attrs.get("start", 1))) if ordered else 1
        lines = []
        for number, item in enumerate(node.children, start):
            marker = f"{number}." if ordered else BULLET
            body = _indent_rest("\n".join(self._blocks(item.children, quoted)), INDENT)
            lines.append(f"{marker} {body}" if body else marker)
        return "\n".join(lines)

    def _code(self, node: SyntaxTreeNode) -> str:
        lines = node.content.split("\n")
        filled = [i for i, line in enumerate(lines) if line.strip()]
        body = "\n".join(lines[filled[0] : filled[-1] + 1]) if filled else ""  # no edge blanks
        if not body or not self.html:
            return body
        words = node.info.split()
        lang = "".join(ch for ch in words[0] if ch in _LANG_CHARS) if words else ""
        inner = escape_html(body)
        if lang:
            inner = f'<code class="language-{lang}">{inner}</code>'
        return f"<pre>{inner}</pre>"

    def _table(self, node: SyntaxTreeNode) -> str:
        plain = _Renderer(html=False)
        rows: list[list[str]] = []
        aligns: list[str] = []
        for section in node.children:
            for tr in section.children:
                cells = [plain._inlines(c.children, in_link=False) for c in tr.children]
                rows.append([" ".join(cell.split()) for cell in cells])
                if section.type == "thead":
                    aligns = [str(c.attrs.get("style", "")) for c in tr.children]
        if not any(any(row) for row in rows):
            return ""
        ncols = max(len(row) for row in rows)
        widths = [max(1, *(_width(r[i]) for r in rows if i < len(r))) for i in range(ncols)]
        aligns += [""] * (ncols - len(aligns))

        def line(row: list[str]) -> str:
            out = []
            for i, width in enumerate(widths):
                cell = row[i] if i < len(row) else ""
                pad = width - _width(cell)
                if aligns[i].endswith("right"):
                    cell = " " * pad + cell
                elif aligns[i].endswith("center"):
                    cell = " " * (pad // 2) + cell + " " * (pad - pad // 2)
                else:
                    cell += " " * pad
                out.append(cell)
            return " | ".join(out).rstrip()

        text_lines = [line(row) for row in rows]
        if node.children and node.children[0].type == "thead":
            text_lines.insert(1, "-+-".join("-" * w for w in widths))
        table = "\n".join(text_lines)
        return f"<pre>{escape_html(table)}</pre>" if self.html else table

    # --- inlines ----------------------------------------------------------------------

    def _inlines(self, nodes: list[SyntaxTreeNode], in_link: bool) -> str:
        return "".join(self._inline(node, in_link) for node in nodes)

    def _inline(self, node: SyntaxTreeNode, in_link: bool) -> str:
        kind = node.type
        if kind in ("text", "html_inline"):
            return self._esc(node.content)
        if kind in ("softbreak", "hardbreak"):
            return "\n"
        if kind == "code_inline":
            return self._tag("code", self._esc(node.content))
        if kind in _INLINE_TAGS:
            return self._tag(_INLINE_TAGS[kind], self._inlines(node.children, in_link))
        if kind == "link":
            text = self._inlines(node.children, in_link=True)
            bare = node.markup == "autolink"
            return self._link(str(node.attrs.get("href", "")), text, in_link, bare)
        if kind == "image":
            alt = _Renderer(html=False)._inlines(node.children, in_link=True)
            return self._link(str(node.attrs.get("src", "")), self._esc(alt), in_link, False)
        return self._inlines(node.children, in_link)

    def _link(self, url: str, text: str, in_link: bool, bare: bool) -> str:
        if in_link or not link_allowed(url):
            return text
        if self._blank(text):
            text = self._esc(url)
        elif not self.html and not bare:
            address = url.partition(":")[2].lstrip("/")  # "e.co/x" for "https://e.co/x"
            if text.strip() not in (url, address):
                return f"{text} ({url})"
        return self._tag("a", text, f' href="{escape_html(url, quote=True)}"')
