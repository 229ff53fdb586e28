"""/cronjobs: the configured schedules, their next run and last result."""

from __future__ import annotations

from telegram import Update
from telegram.ext import Application, CommandHandler, ContextTypes

from taskops.bot import format as fmt
from taskops.bot.commands import Command
from taskops.bot.commands import register as register_command
from taskops.bot.context import deps
from taskops.bot.render import render


async def cronjobs_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    message = update.effective_message
    assert message is not None
    store = deps(context).store
    now = store.clock()
    jobs = [{
        "name": fmt.truncate(job.name, 80), "schedule": job.schedule, "timezone": job.timezone,
        "enabled": job.enabled,
        "next_run": fmt.short_time(job.next_run, store.tz, now) if job.next_run else None,
        "last_run_at": (fmt.short_time(job.last_run_at, store.tz, now)
                        if job.last_run_at else None),
        "last_run_task_id": job.last_run_task_id,
        "last_badge": fmt.STATUS_BADGE[job.last_run_status] if job.last_run_status else "",
        "last_status": fmt.STATUS_LABEL[job.last_run_status] if job.last_run_status else "",
    } for job in await store.cronjobs.list(now)]
    await message.reply_text(render("cronjobs", jobs=jobs[:40]))


def register(app: Application) -> None:  # type: ignore[type-arg]
    register_command(Command("cronjobs", "Scheduled tasks: next run and last result"))
    app.add_handler(CommandHandler("cronjobs", cronjobs_command))
