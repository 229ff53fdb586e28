"""HTML parse mode: every supported tag, every refusal, UTF-16 offsets, Telegram's fixing."""

from __future__ import annotations

from typing import Any

import pytest
from telegram import Bot, MessageEntity
from telegram.error import BadRequest

from tests.fakegram import HtmlError, parse_html
from tests.fakegram.formatting import fix_formatted_text
from tests.fakegram_tests.helpers import World, bot_fixture, flood_fixture, w_fixture  # noqa: F401

PREFIX = "Bad Request: can't parse entities: "


def ent(kind: str, offset: int, length: int, **extra: Any) -> dict[str, Any]:
    return {"offset": offset, "length": length, "type": kind, **extra}


@pytest.mark.parametrize(
    ("html", "text", "entities"),
    [
        ("<b>x</b>", "x", [ent("bold", 0, 1)]),
        ("<strong>x</strong>", "x", [ent("bold", 0, 1)]),
        ("<i>x</i>", "x", [ent("italic", 0, 1)]),
        ("<em>x</em>", "x", [ent("italic", 0, 1)]),
        ("<u>x</u>", "x", [ent("underline", 0, 1)]),
        ("<ins>x</ins>", "x", [ent("underline", 0, 1)]),
        ("<s>x</s>", "x", [ent("strikethrough", 0, 1)]),
        ("<strike>x</strike>", "x", [ent("strikethrough", 0, 1)]),
        ("<del>x</del>", "x", [ent("strikethrough", 0, 1)]),
        ('<span class="tg-spoiler">x</span>', "x", [ent("spoiler", 0, 1)]),
        ("<tg-spoiler>x</tg-spoiler>", "x", [ent("spoiler", 0, 1)]),
        (
            '<a href="https://example.com">x</a>',
            "x",
            [ent("text_link", 0, 1, url="https://example.com/")],
        ),
        (
            "<a href='http://t.me/x?a=1&amp;b=2'>x</a>",
            "x",
            [ent("text_link", 0, 1, url="http://t.me/x?a=1&b=2")],
        ),
        (
            '<tg-emoji emoji-id="5368324170671202286">👍</tg-emoji>',
            "👍",
            [ent("custom_emoji", 0, 2, custom_emoji_id="5368324170671202286")],
        ),
        ("<code>x</code>", "x", [ent("code", 0, 1)]),
        ("<pre>x</pre>", "x", [ent("pre", 0, 1)]),
        (
            '<pre><code class="language-python">x</code></pre>',
            "x",
            [ent("pre", 0, 1, language="python")],
        ),
        ('<code class="language-python">x</code>', "x", [ent("code", 0, 1)]),
        ("<blockquote>x</blockquote>", "x", [ent("blockquote", 0, 1)]),
        ("<blockquote expandable>x</blockquote>", "x", [ent("expandable_blockquote", 0, 1)]),
        ("<B>x</B>", "x", [ent("bold", 0, 1)]),
        ("<b>x</>", "x", [ent("bold", 0, 1)]),
        ("a &lt;b&gt; &amp; &quot;c&quot; &#65;&#x42;", 'a <b> & "c" AB', []),
        ("<b></b>x", "x", []),
        ("1 > 0", "1 > 0", []),
    ],
)
async def test_each_supported_tag_over_http(
    bot: Bot, w: World, html: str, text: str, entities: list[dict[str, Any]]
) -> None:
    msg = await bot.send_message(w.dm.id, html, parse_mode="HTML")
    assert msg.text == text
    stored = w.server.last_bot_message(w.dm)
    assert stored is not None
    assert stored.text == text
    assert stored.html == html
    assert stored.entities == entities
    assert [e.type for e in msg.entities] == [e["type"] for e in entities]


@pytest.mark.parametrize(
    ("html", "detail"),
    [
        ("<foo>x</foo>", 'Unsupported start tag "foo" at byte offset 0'),
        ("a < b", 'Unsupported start tag "" at byte offset 2'),
        ("<br/>", 'Unsupported start tag "br/" at byte offset 0'),
        ("<p>para</p>", 'Unsupported start tag "p" at byte offset 0'),
        ("ok <b", "Unclosed start tag at byte offset 3"),
        ("<b>bold", 'Can\'t find end tag corresponding to start tag "b"'),
        ("<b><i>x</b></i>", 'Unmatched end tag at byte offset 7, expected "</i>", found "</b>"'),
        ("x</b>", "Unexpected end tag at byte offset 1"),
        ("<b>x</b", "Unclosed end tag at byte offset 4"),
        ('<span class="x">s</span>', 'Tag "span" must have class "tg-spoiler" at byte offset 0'),
        ("<span>s</span>", 'Tag "span" must have class "tg-spoiler" at byte offset 0'),
        ('<tg-emoji emoji-id="abc">x</tg-emoji>', "Invalid custom emoji identifier specified"),
        ("<b />x</b>", 'Empty attribute name in the tag "b" at byte offset 0'),
        ("<a href=x y>z</a>", 'Attribute "y" is not supported in the tag "a"'),
        ('<a href=b"c>z</a>', "Unexpected end of name token at byte offset 8"),
        ("tom & jerry", 'Bare "&" that does not start an HTML entity at byte offset 4'),
        ("&nbsp;", 'Bare "&" that does not start an HTML entity at byte offset 0'),
        ('<b class="x">y</b>', 'Attribute "class" is not supported in the tag "b"'),
        ("<blockquote>a<blockquote>b</blockquote></blockquote>", "Nested blockquote"),
        ("é<foo>", 'Unsupported start tag "foo" at byte offset 2'),
    ],
)
async def test_each_refusal_over_http(bot: Bot, w: World, html: str, detail: str) -> None:
    with pytest.raises(BadRequest, match=r"(?i)can't parse entities"):
        await bot.send_message(w.dm.id, html, parse_mode="HTML")
    v = w.server.violations[-1]
    assert v.error_code == 400
    assert v.description.startswith(PREFIX + detail)
    assert w.server.messages(w.dm) == []  # nothing was sent


def test_lenient_mode_is_what_telegram_itself_does() -> None:
    assert parse_html("tom & jerry &nbsp;", strict=False) == ("tom & jerry &nbsp;", [])
    assert parse_html('<b class="x">y</b>', strict=False) == ("y", [ent("bold", 0, 1)])
    text, ents = parse_html("<blockquote>a<blockquote>b</blockquote></blockquote>", strict=False)
    assert text == "ab"
    fixed = fix_formatted_text(text, ents, allow_empty=False)
    assert fixed == ("ab", [ent("blockquote", 0, 2)])  # the inner one is dropped
    with pytest.raises(HtmlError, match="Unsupported start tag"):
        parse_html("<x>", strict=False)


async def test_offsets_are_utf16_with_emoji_and_astral_characters(bot: Bot, w: World) -> None:
    html = "👍 <b>é𝄞x</b> <i>🎉</i> &#128512;<u>z</u>"
    msg = await bot.send_message(w.dm.id, html, parse_mode="HTML")
    assert msg.text == "👍 é𝄞x 🎉 😀z"
    stored = w.server.last_bot_message(w.dm)
    assert stored is not None
    assert stored.entities == [ent("bold", 3, 4), ent("italic", 8, 2), ent("underline", 13, 1)]
    # PTB reads them back correctly
    assert msg.parse_entity(msg.entities[0]) == "é𝄞x"
    assert msg.parse_entity(msg.entities[1]) == "🎉"


async def test_byte_offsets_in_errors_count_utf8_bytes(bot: Bot, w: World) -> None:
    with pytest.raises(BadRequest):
        await bot.send_message(w.dm.id, "👍<x>", parse_mode="HTML")
    assert (
        w.server.violations[-1].description == PREFIX + 'Unsupported start tag "x" at byte offset 4'
    )


@pytest.mark.parametrize(
    ("html", "text", "entities"),
    [
        ("  \n<b>x</b> \n ", "x", [ent("bold", 0, 1)]),  # trimmed, entity shifted
        ("<b>x  </b>\n", "x", [ent("bold", 0, 1)]),  # entity clipped by the trim
        ("a\tb\r\nc", "a b\nc", []),  # tab -> space, \r removed
        ("<b>a</b><b>b</b>", "ab", [ent("bold", 0, 2)]),  # adjacent entities merged
        ("<code><b>x</b></code>", "x", [ent("code", 0, 1)]),  # nothing inside code
        (
            "<b>a<code>b</code>c</b>",
            "abc",
            [ent("bold", 0, 1), ent("code", 1, 1), ent("bold", 2, 1)],
        ),
        ("<b><i>x</i></b>", "x", [ent("bold", 0, 1), ent("italic", 0, 1)]),
        (
            "<blockquote expandable>q <b>x</b></blockquote>",
            "q x",
            [ent("expandable_blockquote", 0, 3), ent("bold", 2, 1)],
        ),
        ('<a href="javascript:alert(1)">x</a>', "x", []),  # refused links are dropped
        (
            '<a href="tg://user?id=1002">Bob</a>',
            "Bob",
            [
                ent(
                    "text_mention",
                    0,
                    3,
                    user={"id": 1002, "is_bot": False, "first_name": "Bob", "username": "bob"},
                )
            ],
        ),
        ("run /tasks@taskops_bot or see https://x.org/a. #tag @someone", None, None),
    ],
)
async def test_telegram_fixes_trims_and_detects(
    bot: Bot, w: World, html: str, text: str | None, entities: list[dict[str, Any]] | None
) -> None:
    await bot.send_message(w.dm.id, html, parse_mode="HTML")
    stored = w.server.last_bot_message(w.dm)
    assert stored is not None
    if text is None:
        assert stored.text == html
        assert [(e["type"], e["offset"], e["length"]) for e in stored.entities] == [
            ("bot_command", 4, 18),
            ("url", 30, 15),
            ("hashtag", 47, 4),
            ("mention", 52, 8),
        ]
        return
    assert stored.text == text
    assert stored.entities == entities


async def test_plain_text_with_explicit_entities(bot: Bot, w: World) -> None:
    msg = await bot.send_message(
        w.dm.id,
        "hello world",
        entities=[MessageEntity("bold", 6, 5), MessageEntity("text_link", 0, 5, url="example.org")],
    )
    assert msg.text == "hello world"
    stored = w.server.last_bot_message(w.dm)
    assert stored is not None
    assert stored.html is None
    assert stored.entities == [ent("text_link", 0, 5, url="http://example.org/"), ent("bold", 6, 5)]
    with pytest.raises(BadRequest):
        await bot.send_message(w.dm.id, "x", entities=[MessageEntity("bold", 0, 5)])
    assert "ends after the end of the text" in w.server.violations[-1].description
    with pytest.raises(BadRequest):
        await bot.send_message(
            w.dm.id, "x", entities=[MessageEntity("text_link", 0, 1, url="not-a-url")]
        )
    assert w.server.violations[-1].description == (
        "Bad Request: entity URL 'not-a-url' is invalid: Wrong HTTP URL"
    )


async def test_plain_text_is_not_parsed_and_markdown_is_refused(bot: Bot, w: World) -> None:
    msg = await bot.send_message(w.dm.id, "<b>not bold</b> & co")
    assert msg.text == "<b>not bold</b> & co"
    assert msg.entities == ()
    with pytest.raises(BadRequest):
        await bot.send_message(w.dm.id, "*x*", parse_mode="MarkdownV2")
    assert w.server.violations[-1].description.startswith(PREFIX)
    with pytest.raises(BadRequest):
        await bot.send_message(w.dm.id, "x", parse_mode="Fancy")
    assert w.server.violations[-1].description == "Bad Request: unsupported parse_mode"
