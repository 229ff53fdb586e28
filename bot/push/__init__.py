"""The scheduler side of the bot: notifications, digests, live views, stuck tasks, and task
results delivered to Telegram chats (DESIGN.md, "Push")."""
