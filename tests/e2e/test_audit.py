"""/audit: who did what to which task, when, from which chat; by admin and by action."""

from __future__ import annotations

from taskops.bot.handlers.audit_log import match_actors
from taskops.storage.domain import Trigger
from tests.e2e.harness import Console, command, press, row_number
from tests.factories import make_task


async def test_audit_lists_actions_and_filters(console: Console) -> None:
    store, clock = console.store, console.clock
    running = await make_task(store, clock, name="loops <forever>", trigger=Trigger.CRONJOB)
    paused = await make_task(store, clock, name="asks", final="STATUS: question\nSUMMARY: ?")
    message = await command(console, "/tasks")
    await press(console, message, f"🛑 {row_number(message, running.id)}")
    await press(console, message, "🛑 Kill")
    group = console.server.add_group(-100777, "Ops", members=[console.admin, console.other_admin])
    await command(console, f"/answer {paused.id} go on", user=console.other_admin, chat=group)
    log = await command(console, "/audit")
    lines = log.text.splitlines()
    assert lines[0] == "Audit log · last 2"
    assert f"Olaf · answer #{paused.id}" in log.text
    assert f"resumed · chat {group.id}" in log.text
    assert f"Ann · kill #{running.id}" in log.text
    assert f"killed · chat {console.admin.id}" in log.text
    assert log.text.index("Olaf") < log.text.index("Ann")  # newest first
    only_kills = await command(console, "/audit action:kill")
    assert only_kills.text.startswith("Audit log · action kill · last 1")
    assert "Olaf" not in only_kills.text
    by_olaf = await command(console, "/audit 5 admin:olaf")
    assert by_olaf.text.startswith("Audit log · admin olaf · last 1")
    assert "answer" in by_olaf.text
    # The start of a word of the name is enough (names with blanks cannot be typed whole).
    by_prefix = await command(console, "/audit admin:OL")
    assert by_prefix.text.startswith("Audit log · admin OL · last 1")
    assert "Olaf · answer" in by_prefix.text
    by_id = await command(console, f"/audit admin:{console.admin.id}")
    assert "Ann · kill" in by_id.text
    nobody = await command(console, "/audit admin:nobody")
    assert "No admin actions recorded that match." in nobody.text
    bad = await command(console, "/audit ²")
    assert bad.text.startswith("⚠️ Usage: /audit [N]")
    assert console.server.violations == []


async def test_strangers_get_no_audit(console: Console) -> None:
    group = console.server.add_group(-100778, "Ops", members=[console.admin, console.stranger])
    await console.server.send_text(console.stranger, group, "/audit@taskops_bot")
    await command(console, "/help")  # the admin's command is answered; the stranger's not
    assert not any(m.from_bot for m in console.server.messages(group))


def test_admin_names_match_whole_or_by_the_start_of_a_word() -> None:
    actors = {"ann lee": 1, "anna kim": 2, "olaf": 3, "lee": 4}
    assert match_actors("Ann Lee", actors) == {"ann lee": 1}
    assert match_actors("lee", actors) == {"lee": 4}  # the whole name first
    assert match_actors("kim", actors) == {"anna kim": 2}
    assert match_actors("ann", actors) == {"ann lee": 1, "anna kim": 2}
    assert match_actors("x", actors) == {}
