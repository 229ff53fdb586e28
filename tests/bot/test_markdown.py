"""Markdown → Telegram HTML / plain text (bot.markdown), checked against the fake's HTML parser."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt
from markdown_it.token import Token

from taskops.bot.markdown import link_allowed, markdown_to_html, markdown_to_plain
from tests.fakegram import HtmlError, parse_html

MD = MarkdownIt("commonmark", {"maxNesting": 50}).enable(["table", "strikethrough"])
WORD = re.compile(r"[^\W_]+")


def visible(html: str) -> str:
    """The text Telegram would show; raises HtmlError when Telegram (strictly) refuses it."""
    return parse_html(html, strict=True)[0]


# (markdown, Telegram HTML, plain text)
EXAMPLES = [
    pytest.param("# Title\n\nSome *text*.", "<b>Title</b>\n\nSome <i>text</i>.",
                 "Title\n\nSome text.", id="heading-paragraph"),
    pytest.param("Setext\n===\nbody", "<b>Setext</b>\n\nbody", "Setext\n\nbody", id="setext"),
    pytest.param("a\nb", "a\nb", "a\nb", id="soft-break"),
    pytest.param("a  \nb", "a\nb", "a\nb", id="hard-break"),
    pytest.param("a\\\nb", "a\nb", "a\nb", id="backslash-break"),
    pytest.param("a\n\n\n\nb", "a\n\nb", "a\n\nb", id="paragraphs"),
    pytest.param("**bold** and _it_ and ~~gone~~", "<b>bold</b> and <i>it</i> and <s>gone</s>",
                 "bold and it and gone", id="emphasis"),
    pytest.param("***both***", "<i><b>both</b></i>", "both", id="bold-italic"),
    pytest.param("*a **b** c*", "<i>a <b>b</b> c</i>", "a b c", id="nested-emphasis"),
    pytest.param("- a\n- b\n  - c\n    - d\n- e", "• a\n• b\n  • c\n    • d\n• e",
                 "• a\n• b\n  • c\n    • d\n• e", id="nested-bullets"),
    pytest.param("1. a\n2. b", "1. a\n2. b", "1. a\n2. b", id="ordered"),
    pytest.param("3. x\n4. y", "3. x\n4. y", "3. x\n4. y", id="ordered-start"),
    pytest.param("1. a\n   - b\n2. c", "1. a\n  • b\n2. c", "1. a\n  • b\n2. c",
                 id="bullets-in-ordered"),
    pytest.param("1. a\n\n   more\n2. b", "1. a\n  more\n2. b", "1. a\n  more\n2. b",
                 id="loose-list"),
    pytest.param("-\n- a", "•\n• a", "•\n• a", id="empty-item"),
    pytest.param("intro\n\n- **x**: y", "intro\n\n• <b>x</b>: y", "intro\n\n• x: y",
                 id="list-after-paragraph"),
    pytest.param("a\n\n---\n\nb", "a\n\n———\n\nb", "a\n\n———\n\nb", id="rule"),
    pytest.param("| a | b |\n|---|:-:|\n| 1 | 22 |\n| *x* | `y` |",
                 "<pre>a | b\n--+---\n1 | 22\nx | y</pre>", "a | b\n--+---\n1 | 22\nx | y",
                 id="table"),
    pytest.param("| n | v |\n|:--|--:|\n| apple | 3 |\n| fig | 10 |",
                 "<pre>n     |  v\n------+---\napple |  3\nfig   | 10</pre>",
                 "n     |  v\n------+---\napple |  3\nfig   | 10", id="table-aligned"),
    pytest.param("| k | v |\n|---|---|\n| <&> | 😀 |",
                 "<pre>k   | v\n----+---\n&lt;&amp;&gt; | 😀</pre>",
                 "k   | v\n----+---\n<&> | 😀", id="table-escaped-wide"),
    pytest.param("| k |\n|---|\n| [l](http://e.co) |",
                 "<pre>k\n---------------\nl (http://e.co)</pre>",
                 "k\n---------------\nl (http://e.co)", id="table-link"),
    pytest.param("![cat](http://x.co/c.png)", '<a href="http://x.co/c.png">cat</a>',
                 "cat (http://x.co/c.png)", id="image"),
    pytest.param("![](https://x.co/c.png)", '<a href="https://x.co/c.png">https://x.co/c.png</a>',
                 "https://x.co/c.png", id="image-no-alt"),
    pytest.param("![a *b*](rel.png)", "a b", "a b", id="image-relative"),
    pytest.param("[![cat](http://i.co/c.png)](http://e.co)", '<a href="http://e.co">cat</a>',
                 "cat (http://e.co)", id="image-in-link"),
    pytest.param("[**b** _i_](https://e.co)", '<a href="https://e.co"><b>b</b> <i>i</i></a>',
                 "b i (https://e.co)", id="emphasis-in-link"),
    pytest.param("[`x<y`](https://e.co)", '<a href="https://e.co"><code>x&lt;y</code></a>',
                 "x<y (https://e.co)", id="code-in-link"),
    pytest.param("<https://e.co/?a=1&b=2>",
                 '<a href="https://e.co/?a=1&amp;b=2">https://e.co/?a=1&amp;b=2</a>',
                 "https://e.co/?a=1&b=2", id="autolink"),
    pytest.param("<a@b.co>", '<a href="mailto:a@b.co">a@b.co</a>', "a@b.co", id="email"),
    pytest.param("[t](mailto:a@b.co)", '<a href="mailto:a@b.co">t</a>', "t (mailto:a@b.co)",
                 id="mailto"),
    pytest.param("[t](tg://user?id=1)", '<a href="tg://user?id=1">t</a>', "t (tg://user?id=1)",
                 id="tg-link"),
    pytest.param('[t](https://e.co/"q" "title")', '<a href="https://e.co/%22q%22">t</a>',
                 "t (https://e.co/%22q%22)", id="quote-in-href"),
    pytest.param("[e.co/x](https://e.co/x) [a@b.co](mailto:a@b.co)",
                 '<a href="https://e.co/x">e.co/x</a> <a href="mailto:a@b.co">a@b.co</a>',
                 "e.co/x a@b.co", id="link-text-is-address"),
    pytest.param("[same](https://e.co)x", '<a href="https://e.co">same</a>x',
                 "same (https://e.co)x", id="link-then-text"),
    pytest.param("[a](javascript:alert(1))", "[a](javascript:alert(1))",
                 "[a](javascript:alert(1))", id="javascript-link"),
    pytest.param("[a](<javascript:alert(1)>)", "[a](&lt;javascript:alert(1)&gt;)",
                 "[a](<javascript:alert(1)>)", id="javascript-link-angle"),
    pytest.param("[a](JaVaScRiPt:x)", "[a](JaVaScRiPt:x)", "[a](JaVaScRiPt:x)",
                 id="javascript-mixed-case"),
    pytest.param("[a](ftp://e.co) [b](data:x) [c](/rel) [d](#top)", "a [b](data:x) c d",
                 "a [b](data:x) c d", id="other-schemes"),
    pytest.param("[ref]\n\n[ref]: https://e.co", '<a href="https://e.co">ref</a>',
                 "ref (https://e.co)", id="reference-link"),
    pytest.param("> a\n> > b\n> c", "<blockquote>a\n\nb\nc</blockquote>", "a\n\nb\nc",
                 id="nested-quote"),
    pytest.param("> 1\n>> 2\n>>> 3", "<blockquote>1\n\n2\n\n3</blockquote>", "1\n\n2\n\n3",
                 id="triple-quote"),
    pytest.param("> # h\n> - x\n>   > y", "<blockquote><b>h</b>\n\n• x\n  y</blockquote>",
                 "h\n\n• x\n  y", id="quote-with-blocks"),
    pytest.param("- > q", "• <blockquote>q</blockquote>", "• q", id="quote-in-list"),
    pytest.param(">", "", "", id="empty-quote"),
    pytest.param("`a < b && c`", "<code>a &lt; b &amp;&amp; c</code>", "a < b && c",
                 id="code-span"),
    pytest.param("``a ` b``", "<code>a ` b</code>", "a ` b", id="code-span-backtick"),
    pytest.param("```python\nif a < b:\n    pass\n```",
                 '<pre><code class="language-python">if a &lt; b:\n    pass</code></pre>',
                 "if a < b:\n    pass", id="fence-language"),
    pytest.param('```c++ "x" y\nint a;\n```', '<pre><code class="language-c++">int a;</code></pre>',
                 "int a;", id="fence-info-words"),
    pytest.param('```"><b>\nx\n```', '<pre><code class="language-b">x</code></pre>', "x",
                 id="fence-hostile-language"),
    pytest.param("```\nplain & <b>\n```", "<pre>plain &amp; &lt;b&gt;</pre>", "plain & <b>",
                 id="fence-plain"),
    pytest.param("~~~\n\n\n~~~", "", "", id="fence-blank"),
    pytest.param("```\n\n  \n  x\n\n```", "<pre>  x</pre>", "  x", id="fence-edge-blanks"),
    pytest.param("    indented\n    code", "<pre>indented\ncode</pre>", "indented\ncode",
                 id="indented-code"),
    pytest.param("```\nunclosed", "<pre>unclosed</pre>", "unclosed", id="fence-unclosed"),
    pytest.param("<script>alert(1)</script>", "&lt;script&gt;alert(1)&lt;/script&gt;",
                 "<script>alert(1)</script>", id="html-block"),
    pytest.param("<div>\n*x*\n</div>", "&lt;div&gt;\n*x*\n&lt;/div&gt;", "<div>\n*x*\n</div>",
                 id="html-block-markdown"),
    pytest.param("x <b>y</b> <!-- z -->", "x &lt;b&gt;y&lt;/b&gt; &lt;!-- z --&gt;",
                 "x <b>y</b> <!-- z -->", id="html-inline"),
    pytest.param('Tom & "Jerry" <3', 'Tom &amp; "Jerry" &lt;3', 'Tom & "Jerry" <3',
                 id="hostile-text"),
    pytest.param("&copy; &amp; &#60; &bogus;", "© &amp; &lt; &amp;bogus;", "© & < &bogus;",
                 id="entities"),
    pytest.param("\\*not\\* \\<b>", "*not* &lt;b&gt;", "*not* <b>", id="backslash-escapes"),
    pytest.param("*unclosed", "*unclosed", "*unclosed", id="unclosed-em"),
    pytest.param("**a *b", "**a *b", "**a *b", id="unclosed-strong"),
    pytest.param("**a _b** c_", "<b>a _b</b> c_", "a _b c_", id="crossed-emphasis"),
    pytest.param("[link](http://x", "[link](http://x", "[link](http://x", id="unclosed-link"),
    pytest.param("`code", "`code", "`code", id="unclosed-code"),
    pytest.param("مرحبا **بالعالم** 👋🏽", "مرحبا <b>بالعالم</b> 👋🏽", "مرحبا بالعالم 👋🏽",
                 id="rtl-emoji"),
    pytest.param("# 🚀 שלום\n\n- 👨‍👩‍👧 *family*", "<b>🚀 שלום</b>\n\n• 👨‍👩‍👧 <i>family</i>",
                 "🚀 שלום\n\n• 👨‍👩‍👧 family", id="rtl-heading-zwj"),
    pytest.param("\n\n  hi  \n\n", "hi", "hi", id="edge-blank-lines"),
    pytest.param("", "", "", id="empty"),
    pytest.param("#", "", "", id="empty-heading"),
    pytest.param("a\x00b", "a\ufffdb", "a\ufffdb", id="nul"),
]


@pytest.mark.parametrize(("source", "html", "plain"), EXAMPLES)
def test_examples(source: str, html: str, plain: str) -> None:
    assert markdown_to_html(source) == html
    assert markdown_to_plain(source) == plain
    visible(html)


@pytest.mark.parametrize(("source", "html", "plain"), EXAMPLES)
def test_plain_is_the_visible_text_plus_link_targets(source: str, html: str, plain: str) -> None:
    shown = visible(markdown_to_html(source))
    # A table is a <pre> block, where a link cannot be clicked: it shows its target too.
    assert shown in (plain, re.sub(r" \((?:https?|mailto|tg):[^ )]*\)", "", plain))


def test_nested_quote_is_refused_by_strict_parser_but_not_produced() -> None:
    with pytest.raises(HtmlError, match="Nested blockquote"):
        visible("<blockquote>a<blockquote>b</blockquote></blockquote>")
    assert markdown_to_html("> a\n>> b\n>>> c\n\n> d").count("<blockquote>") == 2


def test_fence_language_is_kept_as_a_pre_language() -> None:
    _text, entities = parse_html(markdown_to_html("```rust\nfn main() {}\n```"), strict=True)
    assert entities == [{"offset": 0, "length": 12, "type": "pre", "language": "rust"}]


def test_links_become_text_links_only_for_allowed_schemes() -> None:
    _text, entities = parse_html(
        markdown_to_html("[a](https://e.co/x) [b](foo:bar) [c](http://e.co)"), strict=True
    )
    assert [(e["type"], e.get("url")) for e in entities] == [
        ("text_link", "https://e.co/x"),
        ("text_link", "http://e.co/"),
    ]


def test_everything_is_closed_in_order() -> None:
    source = "> **a [b *c `d` e* f](https://e.co) g**\n> - ~~h~~\n\n# *i*"
    html = markdown_to_html(source)
    assert html == (
        '<blockquote><b>a <a href="https://e.co">b <i>c <code>d</code> e</i> f</a> g</b>\n\n'
        "• <s>h</s></blockquote>\n\n<b><i>i</i></b>"
    )
    visible(html)


LONG_INPUTS = [
    "*" * 10_000,
    "_a" * 5_000,
    "[" * 10_000,
    "[a](" * 2_500,
    "![" * 5_000,
    "**a" * 3_333,
    "> " * 5_000 + "x",
    "- " * 5_000 + "x",
    "1. " * 3_333,
    "`" * 10_000,
    "<" * 10_000,
    "&" * 10_000,
    "~~" * 5_000,
    "#" * 10_000,
    "|a" * 5_000,
    "|a|\n|-|\n" + "|x|\n" * 2_500,
    "    - > 1. x\n" * 750,
    ("word " * 20 + "**bold** `code` [l](https://e.co)\n") * 120,
    "😀" * 10_000,
    "\n" * 10_000,
]


@pytest.mark.parametrize("source", LONG_INPUTS, ids=lambda s: repr(s[:8]))
def test_ten_thousand_character_inputs(source: str) -> None:
    html = markdown_to_html(source)
    shown = visible(html)
    for word in set(WORD.findall(source)) - {"l", "https", "e", "co"}:
        assert word in shown
    assert html == html.strip("\n")


def test_nesting_past_the_parser_limit_is_shown_as_typed() -> None:
    source = "> " * 60 + "deep **x** <b>"
    assert markdown_to_html(source) == "&gt; " * 60 + "deep **x** &lt;b&gt;"
    assert markdown_to_plain(source) == source
    assert markdown_to_html("> " * 40 + "x") == "<blockquote>x</blockquote>"


# --- properties -----------------------------------------------------------------------------

SYNTAX = [
    "*", "**", "_", "__", "`", "```", "~~~", "~", "~~", "[", "]", "(", ")", "](", "![", "#",
    "# ", ">", "> ", "-", "- ", "* ", "1. ", "2) ", "|", "|-|", "---", ":", "\n", "\n\n", "  \n",
    "    ", "<", ">", "&", "&amp;", "&#x26;", '"', "\\", "<b>", "</i>", "<!--", "<div>",
    "http://e.co", "https://e.co/a?b=1&c=\"2\"", "mailto:a@b.co", "javascript:x", "tg://user?id=7",
    "<https://e.co>", "😀", "שלום", "\x00",
]
pieces = st.one_of(
    st.sampled_from(SYNTAX),
    st.text(alphabet="abcxyz0189 ", min_size=1, max_size=6),
    st.text(max_size=4),
)
markdown = st.lists(pieces, max_size=40).map("".join)


def content_words(tokens: list[Token]) -> Iterator[str]:
    """Words of everything markdown-it parsed as visible content."""
    for token in tokens:
        if token.type in ("text", "code_inline", "html_inline", "fence", "code_block",
                          "html_block"):
            yield from WORD.findall(token.content)
        yield from content_words(token.children or [])


def has_link(tokens: list[Token]) -> bool:
    return any(
        (t.type == "link_open" and link_allowed(str(t.attrs.get("href", ""))))
        or (t.type == "image" and link_allowed(str(t.attrs.get("src", ""))))
        or has_link(t.children or [])
        for t in tokens
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(markdown)
def test_any_markdown_renders_to_valid_telegram_html_keeping_its_words(source: str) -> None:
    html = markdown_to_html(source)
    shown = visible(html)  # strict: supported tags only, escaped text, no nested quotes
    assert html == html.strip("\n")
    for word in content_words(MD.parse(source)):
        assert word in shown
    plain = markdown_to_plain(source)
    if has_link(MD.parse(source)):
        for word in WORD.findall(shown):
            assert word in plain
    else:
        assert plain == shown


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=200))
def test_any_text_renders_to_valid_telegram_html(source: str) -> None:
    shown = visible(markdown_to_html(source))
    for word in content_words(MD.parse(source)):
        assert word in shown
