"""Sending, editing, deleting: lengths, keyboards, "not modified", missing chats and messages."""

from __future__ import annotations

import json
from typing import Any

import pytest
from telegram import (
    Bot,
    ForceReply,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    ReplyParameters,
)
from telegram.error import BadRequest, Forbidden

from tests.fakegram_tests.helpers import (  # noqa: F401
    World,
    bot_fixture,
    flood_fixture,
    raw_call,
    w_fixture,
)

NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup are "
    "exactly the same as a current content and reply markup of the message"
)


def kb(*rows: list[tuple[str, str]]) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(t, callback_data=d) for t, d in row] for row in rows]
    )


def last_error(w: World) -> str:
    return w.server.violations[-1].description


async def test_message_shape_and_ids_per_chat(bot: Bot, w: World) -> None:
    first = await bot.send_message(w.dm.id, "one")
    user_msg = await w.server.send_text(w.ann, w.dm, "hi")
    second = await bot.send_message(w.dm.id, "two", reply_markup=kb([("A", "a")]))
    in_group = await bot.send_message(w.group.id, "g")
    assert (first.message_id, user_msg.message_id, second.message_id) == (1, 2, 3)
    assert in_group.message_id == 1
    raw = w.server.calls_of("sendMessage")[1].response
    assert raw is not None
    result = raw["result"]
    assert result["from"] == {
        "id": 123456,
        "is_bot": True,
        "first_name": "TaskOps",
        "username": "taskops_bot",
    }
    assert result["chat"] == {"id": 1001, "first_name": "Ann", "username": "ann", "type": "private"}
    assert result["date"] == int(w.clock.now)
    assert result["reply_markup"] == {"inline_keyboard": [[{"text": "A", "callback_data": "a"}]]}
    assert in_group.chat.type == "supergroup"
    assert in_group.chat.title == "Ops"
    assert [m.text for m in w.server.messages(w.dm)] == ["one", "hi", "two"]
    assert [m.from_bot for m in w.server.messages(w.dm)] == [True, False, True]
    assert w.server.messages(w.dm)[2].buttons == [[("A", "a")]]


async def test_text_length_limits_count_utf16(bot: Bot, w: World) -> None:
    await bot.send_message(w.dm.id, "x" * 4096)
    await bot.send_message(w.dm.id, "👍" * 2048)  # 4096 UTF-16 units
    await bot.send_message(w.dm.id, "<b>" + "x" * 4096 + "</b>", parse_mode="HTML")
    for text in ("x" * 4097, "👍" * 2048 + "x"):
        with pytest.raises(BadRequest, match="too long"):
            await bot.send_message(w.dm.id, text)
        assert last_error(w) == "Bad Request: message is too long"
    with pytest.raises(BadRequest):
        await bot.send_message(w.dm.id, "")
    assert last_error(w) == "Bad Request: message text is empty"
    with pytest.raises(BadRequest):
        await bot.send_message(w.dm.id, " \n ")
    assert last_error(w) == "Bad Request: message must be non-empty"
    with pytest.raises(BadRequest):
        await bot.send_message(w.dm.id, "<b></b>", parse_mode="HTML")
    assert len(w.server.messages(w.dm)) == 3


async def test_caption_length_limits(bot: Bot, w: World) -> None:
    await bot.send_document(w.dm.id, b"data", filename="a.txt", caption="c" * 1024)
    await bot.send_document(w.dm.id, b"data", filename="b.txt")  # no caption at all
    with pytest.raises(BadRequest):
        await bot.send_document(w.dm.id, b"data", filename="c.txt", caption="c" * 1025)
    assert last_error(w) == "Bad Request: message caption is too long"
    assert [m.document[0] for m in w.server.messages(w.dm) if m.document] == ["a.txt", "b.txt"]


@pytest.mark.parametrize(
    ("markup", "error"),
    [
        (
            {"inline_keyboard": [[{"text": "x", "callback_data": "d" * 65}]]},
            "Bad Request: BUTTON_DATA_INVALID",
        ),
        (
            {"inline_keyboard": [[{"text": "x", "callback_data": "é" * 33}]]},  # 66 bytes
            "Bad Request: BUTTON_DATA_INVALID",
        ),
        (
            {"inline_keyboard": [[{"text": "x"}]]},
            "Bad Request: can't parse InlineKeyboardButton: Text buttons are not allowed in the "
            "inline keyboard",
        ),
        (
            {"inline_keyboard": [[{"text": "x", "callback_data": ""}]]},
            "Bad Request: can't parse InlineKeyboardButton: Text buttons are not allowed in the "
            "inline keyboard",
        ),
        (
            {"inline_keyboard": [[{"text": "", "callback_data": "d"}]]},
            "Bad Request: can't parse InlineKeyboardButton: button text must be non-empty",
        ),
        (
            {"inline_keyboard": [[{"callback_data": "d"}]]},
            "Bad Request: can't parse InlineKeyboardButton: Can't find field \"text\"",
        ),
        (
            {"inline_keyboard": [[{"text": "x", "callback_data": "d", "url": "https://a.org"}]]},
            "Bad Request: can't parse InlineKeyboardButton: exactly one of the optional fields",
        ),
        (
            {"inline_keyboard": [[{"text": "x", "url": "nope"}]]},
            "Bad Request: inline keyboard button URL 'nope' is invalid: Wrong HTTP URL",
        ),
        (
            {"inline_keyboard": [[{"text": str(i), "callback_data": "d"} for i in range(9)]]},
            "Bad Request: reply markup is too long",
        ),
        (
            {"inline_keyboard": [[{"text": "x", "callback_data": "d"}] for _ in range(101)]},
            "Bad Request: reply markup is too long",
        ),
        (
            {"inline_keyboard": {"a": 1}},
            'Bad Request: Field "inline_keyboard" of the InlineKeyboardMarkup must be an Array',
        ),
        ("{not json", "Bad Request: can't parse reply keyboard markup JSON object"),
    ],
)
async def test_keyboard_rules(w: World, markup: Any, error: str) -> None:
    raw = markup if isinstance(markup, str) else json.dumps(markup)
    status, body = await raw_call(
        w.server, "sendMessage", chat_id=w.dm.id, text="t", reply_markup=raw
    )
    assert status == 400
    assert body["ok"] is False
    assert body["error_code"] == 400
    assert body["description"].startswith(error)
    assert last_error(w).startswith(error)
    assert w.server.messages(w.dm) == []


async def test_keyboard_limits_accept_the_maximum(bot: Bot, w: World) -> None:
    await bot.send_message(w.dm.id, "t", reply_markup=kb([("x", "d" * 64)]))
    await bot.send_message(w.dm.id, "t", reply_markup=kb([("é", "é" * 32)]))  # 64 bytes
    rows = [[(f"{r}.{c}", f"{r}.{c}") for c in range(8)] for r in range(12)] + [[("a", "a")] * 4]
    await bot.send_message(w.dm.id, "t", reply_markup=kb(*rows))  # 100 buttons, 8 per row
    empty = await bot.send_message(w.dm.id, "t", reply_markup=InlineKeyboardMarkup([]))
    assert empty.reply_markup is None  # an empty inline keyboard is no keyboard
    await bot.send_message(w.dm.id, "t", reply_markup=ForceReply(selective=True))
    assert w.server.messages(w.dm)[-1].keyboard == {"force_reply": True, "selective": True}


async def test_edit_not_modified_and_keyboard_removal(bot: Bot, w: World) -> None:
    msg = await bot.send_message(
        w.dm.id, "<b>v1</b>", parse_mode="HTML", reply_markup=kb([("A", "a")])
    )
    with pytest.raises(BadRequest, match=r"(?i)not modified"):
        await msg.edit_text("<b>v1</b>", parse_mode="HTML", reply_markup=kb([("A", "a")]))
    assert last_error(w) == NOT_MODIFIED
    # same text, but no markup: Telegram removes the keyboard, so it is a modification
    edited = await msg.edit_text("<b>v1</b>", parse_mode="HTML")
    assert isinstance(edited, Message)
    assert edited.reply_markup is None
    assert edited.edit_date is not None
    # same words without the bold entity is a modification too
    await msg.edit_text("v1")
    with pytest.raises(BadRequest, match=r"(?i)not modified"):
        await msg.edit_text("v1")
    # edit only the markup
    await msg.edit_reply_markup(kb([("B", "b")]))
    with pytest.raises(BadRequest, match=r"(?i)not modified"):
        await msg.edit_reply_markup(kb([("B", "b")]))
    await msg.edit_reply_markup(None)
    with pytest.raises(BadRequest, match=r"(?i)not modified"):
        await msg.edit_reply_markup(None)
    stored = w.server.messages(w.dm)[0]
    assert [e.text for e in stored.edits] == ["v1", "v1", "v1", "v1"]
    assert [e.html for e in stored.edits] == ["<b>v1</b>", "<b>v1</b>", None, None]
    assert stored.edits[0].reply_markup == {
        "inline_keyboard": [[{"text": "A", "callback_data": "a"}]]
    }
    assert stored.reply_markup is None
    assert stored.text == "v1"


async def test_edit_and_delete_missing_messages(bot: Bot, w: World) -> None:
    msg = await bot.send_message(w.dm.id, "x")
    user_msg = await w.server.send_text(w.ann, w.dm, "mine")
    for call in (
        bot.edit_message_text("y", w.dm.id, 99),
        bot.edit_message_reply_markup(w.dm.id, 99, reply_markup=kb([("a", "a")])),
    ):
        with pytest.raises(BadRequest):
            await call
        assert last_error(w) == "Bad Request: message to edit not found"
    with pytest.raises(BadRequest):
        await bot.edit_message_text("y", w.dm.id, user_msg.message_id)
    assert last_error(w) == "Bad Request: message can't be edited"
    assert await bot.delete_message(w.dm.id, msg.message_id) is True
    assert w.server.messages(w.dm)[0].deleted
    with pytest.raises(BadRequest):
        await bot.edit_message_text("y", w.dm.id, msg.message_id)
    assert last_error(w) == "Bad Request: message to edit not found"
    with pytest.raises(BadRequest):
        await bot.delete_message(w.dm.id, msg.message_id)
    assert last_error(w) == "Bad Request: message to delete not found"
    with pytest.raises(BadRequest):
        await bot.delete_message(w.dm.id, 12345)
    assert last_error(w) == "Bad Request: message to delete not found"
    # a user's message in a private chat may be deleted; in a group only as an admin
    assert await bot.delete_message(w.dm.id, user_msg.message_id)
    group_msg = await w.server.send_text(w.bob, w.group, "/start")
    with pytest.raises(BadRequest):
        await bot.delete_message(w.group.id, group_msg.message_id)
    assert last_error(w) == "Bad Request: message can't be deleted"


async def test_unknown_blocked_and_deleted_chats(bot: Bot, w: World) -> None:
    with pytest.raises(BadRequest):
        await bot.send_message(-100999, "x")
    assert last_error(w) == "Bad Request: chat not found"
    w.server.add_user(1003, "Cid")  # never opened a chat with the bot
    with pytest.raises(Forbidden):
        await bot.send_message(1003, "x")
    assert last_error(w) == "Forbidden: bot can't initiate conversation with a user"
    w.server.block(w.dm)
    with pytest.raises(Forbidden):
        await bot.send_message(w.dm.id, "x")
    assert w.server.violations[-1].error_code == 403
    assert last_error(w) == "Forbidden: bot was blocked by the user"
    w.server.unblock(w.dm)
    await bot.send_message(w.dm.id, "x")
    w.server.delete_chat(w.group)
    with pytest.raises(BadRequest):
        await bot.send_message(w.group.id, "x")
    assert last_error(w) == "Bad Request: chat not found"
    with pytest.raises(BadRequest):
        await bot.send_chat_action(w.group.id, "typing")


async def test_replies_documents_photos_and_chat_actions(bot: Bot, w: World) -> None:
    user_msg = await w.server.send_text(w.ann, w.dm, "question")
    reply = await bot.send_message(
        w.dm.id, "answer", reply_parameters=ReplyParameters(user_msg.message_id)
    )
    assert reply.reply_to_message is not None
    assert reply.reply_to_message.text == "question"
    with pytest.raises(BadRequest):
        await bot.send_message(w.dm.id, "x", reply_parameters=ReplyParameters(77))
    assert last_error(w) == "Bad Request: message to be replied not found"
    await bot.send_message(
        w.dm.id, "x", reply_parameters=ReplyParameters(77, allow_sending_without_reply=True)
    )

    doc = await bot.send_document(
        w.dm.id,
        b"line 1\nline 2\n",
        filename="full-log.txt",
        caption="<b>Full log</b> of #12",
        parse_mode="HTML",
    )
    assert doc.document is not None
    assert doc.document.file_name == "full-log.txt"
    assert doc.caption == "Full log of #12"
    stored = w.server.last_bot_message(w.dm)
    assert stored is not None
    assert stored.document == ("full-log.txt", b"line 1\nline 2\n")
    downloaded = await (await bot.get_file(doc.document.file_id)).download_as_bytearray()
    assert bytes(downloaded) == b"line 1\nline 2\n"
    again = await bot.send_document(w.dm.id, doc.document.file_id)  # resend by file_id
    assert again.document is not None
    assert again.document.file_unique_id == doc.document.file_unique_id
    with pytest.raises(BadRequest):
        await bot.send_document(w.dm.id, "no-such-file-id")
    assert last_error(w) == "Bad Request: wrong file identifier/HTTP URL specified"
    with pytest.raises(BadRequest):
        await bot.send_document(w.dm.id, b"", filename="empty.txt")
    assert last_error(w) == "Bad Request: file must be non-empty"

    photo = await bot.send_photo(w.dm.id, b"\x89PNG fake", caption="chart")
    assert photo.photo
    assert w.server.messages(w.dm)[-1].photo == b"\x89PNG fake"
    with pytest.raises(BadRequest):
        await bot.send_photo(w.dm.id, b"not an image", caption="chart")
    assert last_error(w) == "Bad Request: IMAGE_PROCESS_FAILED"
    with pytest.raises(BadRequest):
        await bot.send_photo(w.dm.id, b"\x89PNG fake", caption="x" * 1025)
    assert last_error(w) == "Bad Request: message caption is too long"
    with pytest.raises(BadRequest):
        await bot.send_photo(w.dm.id, b"\x89PNG fake", caption="<b>open", parse_mode="HTML")
    assert "can't parse entities" in last_error(w)
    shown = await bot.send_photo(w.dm.id, b"\x89PNG fake", caption="<b>7 days</b> · x",
                                 parse_mode="HTML")
    assert shown.caption == "7 days · x"
    assert shown.caption_entities[0].type == "bold"

    assert await bot.send_chat_action(w.dm.id, "typing") is True
    with pytest.raises(BadRequest):
        await bot.send_chat_action(w.dm.id, "dancing")
    assert last_error(w) == "Bad Request: wrong parameter action in request"
