"""The test side of the fake: users and chats, what users do, and what the bot did."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Iterable
from typing import Any

from .formatting import find_entities
from .methods import BotApi
from .models import Call, CallbackAnswer, FakeChat, FakeMessage, FakeUser, Violation
from .world import World

UserRef = FakeUser | int
ChatRef = FakeChat | int


class TestApiMixin:
    __test__ = False  # not a pytest test class
    world: World
    api: BotApi

    # --- users and chats --------------------------------------------------------------------
    def add_user(
        self,
        user_id: int,
        first_name: str,
        *,
        username: str | None = None,
        last_name: str | None = None,
        language_code: str | None = None,
    ) -> FakeUser:
        user = FakeUser(user_id, first_name, last_name, username, language_code)
        self.world.users[user_id] = user
        return user

    def user(self, user: UserRef) -> FakeUser:
        uid = user if isinstance(user, int) else user.id
        if uid not in self.world.users:
            raise KeyError(f"unknown user {uid}; add_user() it first")
        return self.world.users[uid]

    def private_chat(self, user: UserRef) -> FakeChat:
        """The user's private chat with the bot (id == user id), created on demand."""
        u = self.user(user)
        chat = self.world.chats.get(u.id)
        if chat is None:
            chat = FakeChat(u.id, "private", user=u, members=[u])
            self.world.chats[u.id] = chat
        return chat

    def add_group(
        self,
        chat_id: int,
        title: str,
        members: Iterable[UserRef] = (),
        *,
        supergroup: bool = True,
        admins: Iterable[UserRef] = (),
        bot_is_admin: bool = False,
        username: str | None = None,
    ) -> FakeChat:
        if chat_id >= 0:
            raise ValueError("group and supergroup ids are negative (supergroups: -100...)")
        users = [self.user(m) for m in members]
        admin_ids = {self.user(a).id for a in admins}
        for a in admin_ids:
            if all(u.id != a for u in users):
                users.append(self.world.users[a])
        chat = FakeChat(
            chat_id,
            "supergroup" if supergroup else "group",
            title=title,
            username=username,
            members=users,
            admin_ids=admin_ids,
            bot_is_admin=bot_is_admin,
        )
        self.world.chats[chat_id] = chat
        return chat

    def chat(self, chat: ChatRef) -> FakeChat:
        cid = chat if isinstance(chat, int) else chat.id
        if cid not in self.world.chats:
            raise KeyError(f"unknown chat {cid}")
        return self.world.chats[cid]

    def block(self, chat: ChatRef) -> None:
        """The user blocks the bot: sends to this private chat answer 403."""
        c = self.chat(chat)
        if c.type != "private":
            raise ValueError("only a private chat can be blocked")
        c.blocked = True

    def unblock(self, chat: ChatRef) -> None:
        self.chat(chat).blocked = False

    def delete_chat(self, chat: ChatRef) -> None:
        """The group is deleted (or the bot removed): sends answer 400 "chat not found"."""
        self.chat(chat).deleted = True

    # --- what users do ----------------------------------------------------------------------
    def _member(self, user: UserRef, chat: ChatRef) -> tuple[FakeUser, FakeChat]:
        u, c = self.user(user), self.chat(chat)
        if c.type == "private" and c.id != u.id:
            raise ValueError(f"user {u.id} is not the user of private chat {c.id}")
        if c.is_group and all(m.id != u.id for m in c.members):
            raise ValueError(f"user {u.id} is not a member of group {c.id}")
        if c.deleted:
            raise ValueError(f"chat {c.id} was deleted")
        return u, c

    async def send_text(
        self, user: UserRef, chat: ChatRef, text: str, *, reply_to: int | None = None
    ) -> FakeMessage:
        """The user sends ``text``; queues a message update (unless privacy mode hides it)."""
        u, c = self._member(user, chat)
        target = None
        if reply_to is not None:
            target = c.find(reply_to)
            if target is None or target.deleted:
                raise LookupError(f"no message {reply_to} in chat {c.id}")
        msg = self.world.new_message(c, u, text=text, entities=find_entities(text), reply_to=target)
        msg.delivered = self.world.bot_sees(c, text, target)
        if msg.delivered:
            self.world.updates.push("message", msg.to_dict())
        await asyncio.sleep(0)
        return msg

    async def reply_to(
        self, user: UserRef, chat: ChatRef, message_id: int, text: str
    ) -> FakeMessage:
        return await self.send_text(user, chat, text, reply_to=message_id)

    async def press(
        self, user: UserRef, chat: ChatRef, message_id: int, callback_data: str | None
    ) -> str:
        """The user presses a button with ``callback_data`` on a message; returns the query id.

        Any data may be given (to model stale or forged buttons); the message must exist.
        """
        u, c = self._member(user, chat)
        msg = c.find(message_id)
        if msg is None or msg.deleted:
            raise LookupError(f"no message {message_id} in chat {c.id}")
        rec = self.world.new_query(u, msg, callback_data)
        payload: dict[str, Any] = {
            "id": rec.id,
            "from": u.to_dict(),
            "message": msg.to_dict(),
            "chat_instance": self.world.chat_instance(c),
        }
        if callback_data is not None:
            payload["data"] = callback_data
        self.world.updates.push("callback_query", payload)
        await asyncio.sleep(0)
        return rec.id

    async def press_button(self, user: UserRef, chat: ChatRef, message_id: int, text: str) -> str:
        """Press the button whose text is ``text`` (or, failing that, the one starting with it)."""
        c = self.chat(chat)
        msg = c.find(message_id)
        if msg is None or msg.deleted:
            raise LookupError(f"no message {message_id} in chat {c.id}")
        buttons = [b for row in msg.buttons for b in row]
        found = [b for b in buttons if b[0] == text] or [
            b for b in buttons if b[0].startswith(text)
        ]
        if len(found) != 1:
            names = [b[0] for b in buttons]
            what = "no" if not found else "more than one"
            raise LookupError(f"{what} button {text!r} on message {message_id}: {names}")
        if found[0][1] is None:
            raise LookupError(f"button {found[0][0]!r} is not a callback button")
        return await self.press(user, c, message_id, found[0][1])

    # --- what the bot did -------------------------------------------------------------------
    def messages(self, chat: ChatRef) -> list[FakeMessage]:
        return list(self.chat(chat).messages)

    def last_bot_message(self, chat: ChatRef) -> FakeMessage | None:
        return next((m for m in reversed(self.chat(chat).messages) if m.from_bot), None)

    @property
    def calls(self) -> list[Call]:
        return self.world.calls

    def calls_of(self, method: str) -> list[Call]:
        return [c for c in self.world.calls if c.method.lower() == method.lower()]

    @property
    def violations(self) -> list[Violation]:
        return self.world.violations

    @property
    def flood_violations(self) -> list[Violation]:
        """429s given by the flood limits (not injected ones)."""
        return [v for v in self.world.violations if v.error_code == 429 and not v.injected]

    @property
    def callback_answers(self) -> list[CallbackAnswer]:
        return self.world.callback_answers

    @property
    def pending_updates(self) -> list[dict[str, Any]]:
        return list(self.world.updates.updates)

    @property
    def webhook_deliveries(self) -> list[tuple[int, int | str]]:
        hook = self.world.updates.webhook
        return list(hook.deliveries) if hook else []

    async def wait_for(
        self, predicate: Callable[[], Any], timeout: float = 5.0, message: str | None = None
    ) -> None:
        """Poll ``predicate`` (sync or async) until truthy, else raise AssertionError + a dump."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            value = predicate()
            if inspect.isawaitable(value):
                value = await value
            if value:
                return
            if loop.time() >= deadline:
                raise AssertionError(
                    f"{message or 'condition not met'} within {timeout}s\n{self.dump()}"
                )
            await asyncio.sleep(0.005)

    async def wait_for_call(self, method: str, n: int = 1, timeout: float = 5.0) -> Call:
        """Wait until ``method`` has been called ``n`` times in all; returns the n-th call."""
        await self.wait_for(
            lambda: len(self.calls_of(method)) >= n, timeout, f"{method} was not called {n} time(s)"
        )
        return self.calls_of(method)[n - 1]

    def dump(self, last: int = 15) -> str:
        lines = [f"last {last} calls:"]
        for call in self.world.calls[-last:]:
            desc = (call.response or {}).get("description", "")
            params = {k: v for k, v in call.params.items() if k not in ("reply_markup",)}
            lines.append(f"  {call.method} -> {call.status} {desc} {str(params)[:160]}")
        lines.append(f"violations: {len(self.world.violations)}")
        for v in self.world.violations[-5:]:
            lines.append(f"  {v.method}: {v.error_code} {v.description}")
        for chat in self.world.chats.values():
            lines.append(f"chat {chat.id} ({chat.type}):")
            for msg in chat.messages[-6:]:
                lines.append(f"  {msg!r}")
        lines.append(f"pending updates: {len(self.world.updates.updates)}")
        return "\n".join(lines)
