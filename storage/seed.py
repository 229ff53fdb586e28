"""Deterministic, realistic demo data, written fast (``taskops seed-demo``, benchmarks).

``seed_demo`` appends ``tasks`` tasks spread over the 30 days before ``now`` with about
``events_per_task`` events each. The same ``seed`` and ``now`` on an empty store give the
same rows, byte for byte.

What the data looks like:

* every status and trigger, mostly completed, some failed, a few paused; running tasks
  only among the newest (at most 20 running, 10 paused, whatever the size), a few of
  them never started; a few failed tasks were killed before they started;
* seven provider/model pairs plus tasks on the task default (``used_default`` with the
  pair ``[tasks] default_provider/default_model`` resolves to); ``local/llama-3.1-70b``
  has no price, so its cost is NULL;
* names and prompts full of HTML-hostile text (``<``, ``>``, ``&``, quotes, emoji, Arabic
  and Hebrew), a few 200-character names and multi-KB prompts; cronjob tasks repeat a
  handful of cronjob names; some user tasks are restarts of earlier failed tasks;
* per task a plausible timeline: the start, tool calls (some failing), Markdown text,
  thinking, and for ended or paused tasks the closing ``status_change``, ``final`` and
  ``injection`` events with exactly the payloads the store writes.

Every invariant the store keeps holds for the seeded rows (status/result/summary/error,
duration_ms, token totals, cost from the price table, tool_call_count, event_count,
last_event_at, per-task seq, sort_name, txid), so the store API works on them unchanged.

Speed: rows are generated from precomputed pools and written with the driver's bulk
path inside one transaction per chunk — ``executemany`` on SQLite, binary ``COPY`` on
PostgreSQL — with explicit ids continuing after the current maximum. Seeding is meant for
a quiet store: concurrent writers would race for the same ids.
"""

from __future__ import annotations

import bisect
import json
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from taskops.storage.domain import (
    MAX_DURATION_MESSAGE,
    PAUSED_TIMEOUT_MESSAGE,
    SILENT_STATUS_MESSAGE,
    ResultStatus,
    TaskStatus,
    Trigger,
    estimate_cost,
    injection_block,
    parse_final_message,
)
from taskops.storage.models import UTCDateTime
from taskops.storage.store import TaskStore, sort_name

CHUNK_TASKS = 10_000
HISTORY = timedelta(days=30)
MAX_RUNNING = 20
MAX_PAUSED = 10

TASK_COLUMNS = (
    "id", "name", "sort_name", "prompt", "status", "trigger", "trigger_source_id", "provider",
    "model", "used_default", "max_duration_minutes", "parent_session", "restarted_from_id",
    "created_at", "started_at", "finished_at", "duration_ms", "prompt_tokens",
    "completion_tokens", "total_tokens", "cost_usd", "tool_call_count", "result_status",
    "summary", "error", "killed_by", "last_event_at", "event_count",
)
EVENT_COLUMNS = ("id", "task_id", "seq", "at", "kind", "payload", "txid")

#: (provider, model, share of the tasks); the task default takes DEFAULT_SHARE on top.
PROVIDERS: tuple[tuple[str, str, float], ...] = (
    ("openai", "gpt-4o", 0.15),
    ("openai", "gpt-4o-mini", 0.20),
    ("anthropic", "claude-sonnet-4", 0.14),
    ("anthropic", "claude-3-haiku", 0.10),
    ("google", "gemini-1.5-flash", 0.08),
    ("local", "llama-3.1-70b", 0.05),  # no price: cost stays NULL
    ("scripted", "scripted", 0.08),
)
DEFAULT_SHARE = 0.20

TRIGGERS: tuple[tuple[Trigger, float], ...] = (
    (Trigger.USER, 0.30), (Trigger.AGENT, 0.20), (Trigger.CRONJOB, 0.30),
    (Trigger.HEARTBEAT, 0.12), (Trigger.CONSOLIDATION, 0.08),
)

CRONJOBS: tuple[tuple[str, str], ...] = (
    ("Nightly backup check", "Verify last night's backups & report anything <missing>."),
    ("Daily digest — inbox & calendar",
     "Summarize today's inbox and calendar for the team. Use **bold** for deadlines."),
    ("Weekly KPI report <finance>", 'Build the weekly KPI report; flag "red" metrics.'),
    ("Hourly uptime probe", "Probe https://status.example.com/?a=1&b=2 and alert on failures."),
    ("تقرير المبيعات اليومي", "لخّص مبيعات اليوم وأرسل التقرير إلى القناة."),
    ("Dependabot triage 🤖", "Triage open dependency PRs; merge the safe ones."),
)

# Outcomes of a task that is neither running nor paused now.
_COMPLETED, _UNFORMATTED, _SILENT, _ANSWERED = 0, 1, 2, 3
_FAILED, _KILLED, _MAX_DURATION, _LOOP, _TIMEOUT, _KILLED_UNSTARTED = 4, 5, 6, 7, 8, 9
OUTCOMES: tuple[tuple[int, float], ...] = (
    (_COMPLETED, 0.63), (_UNFORMATTED, 0.07), (_SILENT, 0.08), (_ANSWERED, 0.03),
    (_FAILED, 0.09), (_KILLED, 0.035), (_MAX_DURATION, 0.025), (_LOOP, 0.02),
    (_TIMEOUT, 0.01), (_KILLED_UNSTARTED, 0.01),
)
# Roles by creation order: ended (history), paused (last 20 h), running, never started.
_ENDED, _PAUSED, _RUNNING, _NEW = 0, 1, 2, 3


@dataclass(frozen=True)
class SeedReport:
    tasks: int
    events: int
    seconds: float


@dataclass(frozen=True)
class _Final:
    """A final message as the store records it: payload, outcome and status-change text."""

    result: ResultStatus
    summary: str
    message: str
    #: the ``final`` event's payload, already JSON
    payload: str


# --- text pools ---------------------------------------------------------------------------

_VERBS = ("Summarize", "Check", "Draft", "Review", "Triage", "Refactor", "Translate",
          "Investigate", "Backfill", "Reconcile", "Scrape", "Monitor", "Update", "Clean up",
          "Benchmark", "Audit", "Plan", "Research", "Compare", "Fix", "Answer", "Rotate")
_OBJECTS = ("the inbox", "PR #{n}", "<b>quarterly</b> report", "invoices & receipts",
            '"prod" deploy logs', "customer feedback (Q{q})", "the <script>alert(1)</script> bug",
            "O'Reilly order #{n}", "docs for `seed-demo`", "sales pipeline",
            "Grafana alerts > 90%", "flaky tests in <TaskList/>", "support tickets <urgent>",
            "the A/B test", "competitor pricing", "onboarding e-mails", "on-call handover",
            "release notes v{v}", "CSV export & import", "the 'weekly' sync notes",
            "TLS certs for *.example.com", "Müller & Söhne contract", "GDPR request #{n}",
            "Jira epic OPS-{n}", "the <img src=x onerror=alert(1)> report",
            "budget < $5k && > $1k", "Straße names (ß/SS)")
_SUFFIXES = ("", "", "", "", "", " 🚀", " ✅", " — follow-up", " (again)", " [draft]",
             " 🔥🔥", " & notify #ops", " → Slack", " for ACME <Corp>", ' "ASAP"', " 📊")
_RTL_NAMES = ("تقرير المبيعات اليومي", "ملخص البريد الوارد & الردود",
              "סיכום פגישת צוות <שבועי>", 'בדיקת "גיבוי" לילי', "تحليل <التكاليف> الشهرية",
              "Report: تقرير الأداء for Q{q}", "עדכון לקוחות — Customer update 🚀")
_HEARTBEAT = ("Heartbeat: follow up on {o}", "Heartbeat: {o} needs attention",
              "Heartbeat → reminder about {o}")
_CONSOLIDATION = ("Consolidate memory: {o}", "Merge duplicate memory entries about {o}",
                  "Memory: prune stale facts on {o}")
_LONG_WORDS = ("an", "unusually", "long", "task", "name", "with", "<tags>", "&", "ampersands",
               '"quotes"', "emoji", "🙂", "and", "Arabic", "مرحبا", "Hebrew", "שלום", "that",
               "keeps", "going", "until", "it", "hits", "the", "limit")

_PROMPT_LINES = (
    "Please go through {o} and write a short summary for the team.",
    "Use the <b>official</b> numbers only & ignore drafts marked \"WIP\".",
    "If anything looks off (> 5% deviation), open a ticket and tag @oncall.",
    "Context: the customer wrote “we can't log in since 09:00 <UTC>”.",
    "Keep the answer under 200 words; use Markdown lists.",
    "Check https://example.com/api?from=2026-01-01&to=2026-12-31&fmt=json first.",
    "يرجى مراجعة البيانات وإرسال ملخص قصير.",
    "נא לבדוק את הנתונים ולשלוח סיכום קצר.",
    "Don't touch the `prod` database; read replicas only!",
    "Return the result as a table: | name | value | delta |",
    "Reminder: 1 < 2 && 3 > 2, but <script> tags must never be rendered 😈.",
)
_SCRIPTED_STEPS = (
    "!think Let me look at {o} first",
    "!tool web_search {{\"query\": \"{o}\"}} -> 3 results",
    "!say Found **3** items in `{o}`",
    "!tokens 1200 340",
    "!wait 2",
    "!end completed All done: {o} is up to date",
)

_TOOLS: tuple[tuple[str, str], ...] = (
    ("web_search", "query"), ("read_file", "path"), ("write_file", "path"),
    ("http_get", "url"), ("run_shell", "command"), ("send_message", "text"),
    ("sql_query", "sql"), ("memory_search", "query"), ("calendar_list", "range"),
)
_ARG_VALUES = {
    "query": ("quarterly revenue <EU> & US", "site:example.com \"release notes\"",
              "تقرير المبيعات", "flaky test TaskList", "GDPR request template"),
    "path": ("/srv/reports/q3 <final>.md", "~/notes/on-call & handover.txt",
             "data/customers.csv", "/etc/app/config.yaml", "docs/README 🚀.md"),
    "url": ("https://api.example.com/v1/orders?status=open&limit=50",
            "https://status.example.com/", "http://localhost:8080/health?x=<y>"),
    "command": ("grep -R \"TODO\" src/ | wc -l", "df -h && free -m", "pytest -q -k 'not slow'",
                "curl -s https://example.com/ | head -n 5"),
    "text": ("Deploy <b>done</b> ✅", "Heads-up: error rate > 2% & rising",
             "שלום צוות, הדו\"ח מוכן", "Reminder: stand-up at 10:00"),
    "sql": ("SELECT count(*) FROM orders WHERE total > 100 AND status <> 'void'",
            "SELECT name, \"limit\" FROM quotas ORDER BY 2 DESC LIMIT 10"),
    "range": ("2026-11-01..2026-11-07", "today", "next 3 days"),
}
_RESULTS = (
    "3 results:\n1. <title>Q3 report</title> — example.com\n2. Release notes & changelog\n"
    "3. \"Pricing\" page",
    "OK (200) {\"status\": \"ok\", \"latency_ms\": 42}",
    "Wrote 1,284 bytes.",
    "name,value\nalpha,1\nbeta,<2>\ngamma,&3",
    "Filesystem      Size  Used Avail Use%\n/dev/vda        252G   23G   80G  22%",
    "Message sent to chat -100123456 ✅",
    "count\n-----\n 1532",
    "No matching memory entries.",
    "• 10:00 Stand-up\n• 14:30 Review <design>\n• 16:00 1:1 with Dana",
    "<!DOCTYPE html><html><body><h1>It works & more</h1></body></html>",
)
_ERRORS = (
    "HTTP 503 Service Unavailable: upstream <nginx> timed out",
    "PermissionError: [Errno 13] Permission denied: '/etc/shadow'",
    "Timeout after 30s",
    "relation \"orders_archive\" does not exist",
    "FileNotFoundError: No such file or directory: 'data/<missing>.csv'",
    "rate limited (429): retry after 17s",
)
_TEXTS = (
    "**Found 3 issues** in `config.yaml`:\n\n- missing `timeout`\n- duplicated key `<b>`\n"
    "- see [the docs](https://example.com/docs?a=1&b=2)",
    "Looking at the logs now. Error rate is **2.4%** (threshold 2%) — checking `api-7`.",
    "Here is the plan:\n\n1. Pull the report\n2. Compare with last week\n3. Post to #ops",
    "The CSV has *1,532* rows; 12 have an empty `email` field & 3 contain `<script>`.",
    "تم العثور على **٣** مشاكل في التقرير.",
    "Everything looks fine 🎉 — no action needed.",
    "```sql\nSELECT count(*) FROM orders WHERE total > 100;\n```\nreturns 1532.",
    "> Quoted from the ticket: \"it's broken <again>\"\n\nI'll reproduce it first.",
)
_THOUGHTS = (
    "The user wants a summary, not the raw data. Let me aggregate by week first.",
    "The tool failed with a 503; retrying once makes sense, then give up.",
    "Two sources disagree (1,532 vs 1,529). The replica lags; trust the primary.",
    "Should I ask before deleting? Yes — destructive actions need confirmation.",
    "Hmm, <b> in the name could break HTML rendering; escape it.",
)
_SUMMARIES = (
    "Report ready: **revenue +4.2%** week over week.\n\n- EU: `+6%`\n- US: `+1%`\n\n"
    "Details: [dashboard](https://example.com/d?x=1&y=2)",
    "Backups verified ✅ — 14/14 databases, newest 02:13 UTC.",
    "Triaged 12 tickets: 3 urgent (<24h SLA), 9 routine. Assigned to **@dana**.",
    "Merged 4 dependency PRs; 1 needs a manual look (breaking change in `lib<2.0>`).",
    "تم إرسال التقرير اليومي إلى القناة.",
    "Translated the release notes (EN → DE & FR); uploaded to `docs/i18n/`.",
    "No anomalies in the last 24 h. Error rate 0.3% < 1% budget.",
)
_FAIL_REASONS = (
    "Could not reach the API: HTTP 503 after 3 retries.",
    "Credentials for `s3://reports` are missing — ask an admin to add them.",
    "The CSV is malformed (line 1,204: unexpected `\"`).",
    "Refusing to run `DROP TABLE`; this needs a human <approval>.",
    "The calendar API returned 401 Unauthorized.",
)
_QUESTIONS = (
    "Should I send the report to the **whole team** or only to managers?",
    "The budget is over by 12%. Cancel the order or ask finance?",
    "Which branch should I deploy: `main` or `release/2.3`?",
    "هل أرسل التقرير الآن أم أنتظر حتى الغد؟",
)
_ANSWERS = ("Whole team, please.", "Ask finance first & wait for <their> OK.", "main",
            "أرسله الآن 👍")
_SILENT_NOTES = ("Nothing new since the last run.", "All checks green; nothing to report.")
_ACTORS = ("@alice", "Bob (ops)", "Dana <on-call>", "Ядвига", "Ali & Sons", "admin")
# Not "telegram:<chat id>" sessions: the result relay would post to chats nobody opened.
_CHATS = ("demo:alice", "demo:ops-team", "demo:bob", "demo:dana")


def _fill(template: str, rng: random.Random) -> str:
    return template.format(n=rng.randrange(1, 10_000), q=rng.randrange(1, 5),
                           v=f"{rng.randrange(1, 4)}.{rng.randrange(0, 20)}",
                           o=rng.choice(_OBJECTS).format(n=rng.randrange(1, 10_000), q=1,
                                                         v="1.0"))


def _dumps(value: Any) -> str:
    return json.dumps(value)  # what SQLAlchemy's JSON type writes


class _Pools:
    """Everything that can be computed once: names, prompts, payloads, final messages."""

    def __init__(self, rng: random.Random) -> None:
        self.names: list[tuple[str, str]] = []
        for i in range(6000):
            if i % 40 == 0:
                name = " ".join(rng.choice(_LONG_WORDS) for _ in range(60))[:rng.randrange(
                    120, 201)].strip()
            elif i % 9 == 0:
                name = _fill(rng.choice(_RTL_NAMES), rng)
            else:
                name = (f"{rng.choice(_VERBS)} {_fill(rng.choice(_OBJECTS), rng)}"
                        f"{rng.choice(_SUFFIXES)}")
            self.names.append(self._named(name))
        self.heartbeat = [self._named(_fill(rng.choice(_HEARTBEAT), rng)) for _ in range(300)]
        self.consolidation = [self._named(_fill(rng.choice(_CONSOLIDATION), rng))
                              for _ in range(300)]
        self.cronjobs = [(self._named(name), prompt) for name, prompt in CRONJOBS]

        self.prompts: list[str] = []
        for i in range(600):
            lines = [_fill(rng.choice(_PROMPT_LINES), rng) for _ in range(rng.randrange(1, 5))]
            if i % 5 == 0:
                lines += [_fill(step, rng) for step in _SCRIPTED_STEPS]
            if i % 30 == 0:  # a few prompts of several KB
                body = "\n".join(_fill(rng.choice(_PROMPT_LINES), rng) for _ in range(80))
                lines.append(body[:rng.randrange(2000, 8000)])
            self.prompts.append("\n".join(lines))

        self.tool_ok: list[str] = []
        self.tool_err: list[str] = []
        self.tool_err_by_tool: dict[str, list[str]] = {}
        for i in range(3000):
            tool, arg = _TOOLS[i % len(_TOOLS)]
            arguments: dict[str, Any] = {arg: rng.choice(_ARG_VALUES[arg])}
            if i % 3 == 0:
                arguments["limit"] = rng.randrange(1, 100)
            if i % 7 == 0:
                arguments["options"] = {"verbose": True, "tags": ["a&b", "<c>"], "ratio": 0.5}
            failed = i % 10 == 0
            if failed:
                result = rng.choice(_ERRORS)
            elif i % 97 == 0:  # a rare huge result, for the "(N more characters)" path
                result = "\n".join(rng.choice(_RESULTS) for _ in range(60))
            else:
                result = rng.choice(_RESULTS)
            payload = _dumps({"tool": tool, "arguments": arguments, "result": result,
                              "is_error": failed,
                              "duration_ms": int(rng.lognormvariate(5.5, 1.2))})
            (self.tool_err if failed else self.tool_ok).append(payload)
            if failed:
                self.tool_err_by_tool.setdefault(tool, []).append(payload)
        self.texts = [_dumps({"text": t}) for t in _TEXTS]
        self.thoughts = [_dumps({"text": t}) for t in _THOUGHTS]
        self.answers = [(a, who) for a in _ANSWERS for who in _ACTORS]

        def final(final_text: str, message: str | None = None) -> _Final:
            parsed = parse_final_message(final_text)
            if message is None:
                message = {ResultStatus.SILENT: SILENT_STATUS_MESSAGE,
                           ResultStatus.QUESTION: "Waiting for an answer"}.get(
                               parsed.result, f"Task {parsed.task_status.value}")
            return _Final(parsed.result, parsed.summary, message, _dumps(
                {"status": parsed.result.value, "summary": parsed.summary,
                 "text": final_text, "formatted": parsed.formatted}))

        self.completed = [final(f"STATUS: completed\nSUMMARY:\n{s}") for s in _SUMMARIES]
        self.completed += [final(f"Some narration first.\n\n**STATUS:** completed\n"
                                 f"**SUMMARY:** {s}") for s in _SUMMARIES[:3]]
        self.unformatted = [final(f"{s}\n") for s in _SUMMARIES]
        self.silent = [final(f"STATUS: silent\nSUMMARY:\n{s}") for s in _SILENT_NOTES]
        self.failed = [final(f"STATUS: failed\nSUMMARY:\n{s}") for s in _FAIL_REASONS]
        self.questions = [final(f"STATUS: question\nSUMMARY:\n{q}") for q in _QUESTIONS]
        self.kills = [self.runtime_failure(f"Killed by {who} from Telegram") for who in _ACTORS]
        self.max_duration = self.runtime_failure(MAX_DURATION_MESSAGE)
        self.timeout = self.runtime_failure(PAUSED_TIMEOUT_MESSAGE)

    @staticmethod
    def _named(name: str) -> tuple[str, str]:
        return name, sort_name(name)

    @staticmethod
    def runtime_failure(error: str) -> _Final:
        """What ``fail_task`` / ``kill_task`` record: no agent text, the error as summary."""
        return _Final(ResultStatus.FAILED, error, error, _dumps(
            {"status": ResultStatus.FAILED.value, "summary": error, "text": None,
             "formatted": True}))


_STATUS_CHANGES: dict[tuple[TaskStatus | None, TaskStatus, str], str] = {}


def _status_change(old: TaskStatus | None, new: TaskStatus, message: str) -> str:
    """The ``status_change`` payload the store writes (cached: messages repeat)."""
    key = (old, new, message)
    payload = _STATUS_CHANGES.get(key)
    if payload is None:
        payload = _dumps({"old": None if old is None else old.value, "new": new.value,
                          "message": message})
        if len(_STATUS_CHANGES) < 10_000:
            _STATUS_CHANGES[key] = payload
    return payload


_STARTED = _status_change(None, TaskStatus.RUNNING, "Task started")


# --- the generator --------------------------------------------------------------------------


class _Generator:
    """Produces task rows and event rows in creation order, one chunk at a time."""

    def __init__(self, store: TaskStore, count: int, seed: int, now: datetime,
                 events_per_task: int, first_task_id: int, first_event_id: int,
                 timestamp: Callable[[datetime], Any]) -> None:
        self.rng = rng = random.Random(seed)
        self.pools = _Pools(rng)
        settings = store.settings
        self.now = now.astimezone(UTC).replace(tzinfo=None)  # naive UTC throughout
        self.events_per_task = max(0, events_per_task)
        self.next_task_id = first_task_id
        self.next_event_id = first_event_id
        self.ts = timestamp
        self.txid: int | None = None if store.engines.is_sqlite else 0
        self.timeout_after = timedelta(hours=settings.tasks.paused_timeout_hours)
        self.loop_method = settings.tasks.loop_method.value
        self.loop_threshold = settings.tasks.loop_threshold

        # Provider choices: (provider, model, used_default, price), chosen by weight.
        choices: list[tuple[str, str, bool, Any]] = []
        weights: list[float] = []
        for provider, model, share in PROVIDERS:
            choices.append((provider, model, False, settings.price_for(model)))
            weights.append(share)
        tasks = settings.tasks
        if tasks.default_provider and tasks.default_model:
            choices.append((tasks.default_provider, tasks.default_model, True,
                            settings.price_for(tasks.default_model)))
            weights.append(DEFAULT_SHARE)
        self.providers = choices
        self.provider_cdf = _cdf(weights)
        self.triggers = [t for t, _ in TRIGGERS]
        self.trigger_cdf = _cdf([w for _, w in TRIGGERS])
        self.outcomes = [o for o, _ in OUTCOMES]
        self.outcome_cdf = _cdf([w for _, w in OUTCOMES])
        cap = tasks.max_duration_cap_minutes
        self.max_durations = [min(m, cap) for m in (tasks.max_duration_minutes,) * 6
                              + (15, 30, 120, 240)]
        #: recent failed tasks (id, name pair, prompt) that a user may restart
        self.failed_recently: list[tuple[int, tuple[str, str], str]] = []

        # Creation times, oldest first; the newest tasks are the active ones.
        n_running = min(count, MAX_RUNNING, max(2, count // 50))
        n_paused = min(count - n_running, MAX_PAUSED, max(1, count // 60))
        n_new = min(n_running, max(1, n_running // 4))
        n_ended = count - n_running - n_paused
        now_ = self.now
        spans = ((_ENDED, n_ended, now_ - HISTORY, now_ - timedelta(hours=1)),
                 (_PAUSED, n_paused, now_ - timedelta(hours=20), now_ - timedelta(hours=1)),
                 (_RUNNING, n_running - n_new, now_ - timedelta(minutes=45),
                  now_ - timedelta(minutes=4)),
                 (_NEW, n_new, now_ - timedelta(minutes=3), now_ - timedelta(seconds=5)))
        plan: list[tuple[datetime, int]] = []
        for role, n, start, end in spans:
            span_us = int((end - start) / timedelta(microseconds=1))
            plan.extend((start + timedelta(microseconds=int(rng.random() * span_us)), role)
                        for _ in range(n))
        plan.sort()
        self.plan = plan
        self.position = 0

    # -- helpers -----------------------------------------------------------------------

    def _pick(self, cdf: list[float]) -> int:
        return bisect.bisect_right(cdf, self.rng.random())

    def chunk(self, size: int) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        tasks: list[tuple[Any, ...]] = []
        events: list[tuple[Any, ...]] = []
        end = min(len(self.plan), self.position + size)
        for created, role in self.plan[self.position:end]:
            tasks.append(self._task(created, role, events))
        self.position = end
        return tasks, events

    # -- one task ------------------------------------------------------------------------

    def _task(self, created: datetime, role: int,
              events: list[tuple[Any, ...]]) -> tuple[Any, ...]:
        rng = self.rng
        pools = self.pools
        rand = rng.random
        task_id = self.next_task_id
        self.next_task_id += 1

        trigger = self.triggers[self._pick(self.trigger_cdf)]
        provider, model, used_default, price = self.providers[self._pick(self.provider_cdf)]
        restarted_from: int | None = None
        parent: str | None = None
        if trigger is Trigger.CRONJOB:
            named, prompt = pools.cronjobs[int(rand() * len(pools.cronjobs))]
            parent = _CHATS[1] if rand() < 0.5 else None
        else:
            if trigger is Trigger.HEARTBEAT:
                named = pools.heartbeat[int(rand() * len(pools.heartbeat))]
            elif trigger is Trigger.CONSOLIDATION:
                named = pools.consolidation[int(rand() * len(pools.consolidation))]
            else:
                named = pools.names[int(rand() * len(pools.names))]
                parent = _CHATS[int(rand() * len(_CHATS))]
            prompt = pools.prompts[int(rand() * len(pools.prompts))]
            if trigger is Trigger.USER and self.failed_recently and rand() < 0.06:
                restarted_from, named, prompt = self.failed_recently[
                    int(rand() * len(self.failed_recently))]
        name, sort_key = named
        max_minutes = self.max_durations[int(rand() * len(self.max_durations))]

        outcome = self.outcomes[self._pick(self.outcome_cdf)] if role == _ENDED else -1
        ts = self.ts
        txid = self.txid
        eid = self.next_event_id
        seq = 0
        started: datetime | None = None
        finished: datetime | None = None
        status = TaskStatus.RUNNING
        final: _Final | None = None
        killed_by: str | None = None
        tool_calls = 0
        prompt_tokens = completion_tokens = 0
        last_at: datetime | None = None
        closing: list[tuple[datetime, str, str]] = []

        if role == _NEW or outcome == _KILLED_UNSTARTED:
            if outcome == _KILLED_UNSTARTED:
                finished = created + timedelta(seconds=5 + rand() * 600)
                who = int(rand() * len(_ACTORS))
                final = pools.kills[who]
                killed_by = _ACTORS[who]
                status = TaskStatus.FAILED
                closing = self._closing(task_id, name, trigger, parent, final, None, finished,
                                        0, TaskStatus.RUNNING, status)
        else:
            started = created + timedelta(seconds=0.2 + rng.expovariate(1 / 8))
            # How long it ran: median ~1.5 min, long tail, within the max duration.
            limit_s = max_minutes * 60.0
            run_s = min(rng.lognormvariate(4.5, 1.1), limit_s * 0.97)
            if outcome == _MAX_DURATION:
                run_s = limit_s + rand() * 2
            latest = self.now - timedelta(seconds=1)
            if role == _ENDED and outcome == _TIMEOUT:
                latest -= self.timeout_after
            if started + timedelta(seconds=run_s) > latest:
                if outcome in (_MAX_DURATION, _TIMEOUT):
                    outcome = _FAILED
                    latest = self.now - timedelta(seconds=1)
                run_s = max(0.5, (latest - started).total_seconds() * (0.5 + rand() * 0.5))
            if role == _RUNNING:  # still working: the last event is a few seconds old
                run_s = max(0.5, (latest - started).total_seconds() - rand() * 30)
            stop = started + timedelta(seconds=run_s)  # end of the running stretch

            target = self.events_per_task
            n_closing = {_SILENT: 2, _TIMEOUT: 6}.get(outcome, 3 if role != _RUNNING else 0)
            middle = max(0, int(target * (0.5 + rand()) + 0.5) - 1 - n_closing)
            if outcome == _LOOP:
                middle = max(middle, self.loop_threshold)
            answered_at = -1
            if outcome == _ANSWERED:
                middle = max(middle, 6)
                answered_at = 1 + int(rand() * (middle - 5))

            step = (stop - started) / (middle + 1)
            events.append((eid, task_id, 1, ts(started), "status_change", _STARTED, txid))
            eid += 1
            seq = 1
            loop_payload = loop_tool = ""
            if outcome == _LOOP:
                loop_tool = _TOOLS[int(rand() * len(_TOOLS))][0]
                errors = pools.tool_err_by_tool[loop_tool]
                loop_payload = errors[int(rand() * len(errors))]
            k = 0
            while k < middle:
                at = started + step * (k + 1)
                if k == answered_at:
                    # Paused with a question, answered by an admin, ran on to completion.
                    tokens_so_far = int(1000 + rand() * 20000)
                    question = pools.questions[int(rand() * len(pools.questions))]
                    answer, answered_by = pools.answers[int(rand() * len(pools.answers))]
                    block = injection_block(
                        task_id=task_id, task_name=name, status=ResultStatus.QUESTION,
                        trigger=trigger, duration_minutes=(at - started).total_seconds() / 60,
                        tokens_used=tokens_so_far, summary=question.summary)
                    asked, answered = ts(at), ts(started + step * (k + 5))
                    for j, (kind, payload) in enumerate((
                        ("status_change", _status_change(TaskStatus.RUNNING, TaskStatus.PAUSED,
                                                         question.message)),
                        ("final", question.payload),
                        ("injection", _dumps({"parent_session": parent, "text": block,
                                              "status": ResultStatus.QUESTION.value})),
                        ("status_change", _status_change(TaskStatus.PAUSED, TaskStatus.RUNNING,
                                                         f"Answered by {answered_by}")),
                        ("answer", _dumps({"text": answer, "by": answered_by})),
                    )):
                        seq += 1
                        events.append((eid, task_id, seq, asked if j < 3 else answered, kind,
                                       payload, txid))
                        eid += 1
                    k += 5
                    continue
                r = rand()
                if outcome == _LOOP and k >= middle - self.loop_threshold:
                    kind, payload = "tool_call", loop_payload
                elif r < 0.5:
                    kind = "tool_call"
                    payload = (pools.tool_err[int(rand() * len(pools.tool_err))] if r < 0.05
                               else pools.tool_ok[int(rand() * len(pools.tool_ok))])
                elif r < 0.78:
                    kind, payload = "text", pools.texts[int(rand() * len(pools.texts))]
                else:
                    kind, payload = "thinking", pools.thoughts[int(rand() * len(pools.thoughts))]
                if kind == "tool_call":
                    tool_calls += 1
                seq += 1
                events.append((eid, task_id, seq, ts(at), kind, payload, txid))
                eid += 1
                k += 1
            last_at = started + step * middle

            turns = 1 + tool_calls
            prompt_tokens = int(turns * (900 + rand() * 7000))
            completion_tokens = int((1 + middle - tool_calls) * (40 + rand() * 600)
                                    + turns * rand() * 80)
            total = prompt_tokens + completion_tokens

            if role == _PAUSED:
                status = TaskStatus.PAUSED
                final = pools.questions[int(rand() * len(pools.questions))]
                closing = self._closing(task_id, name, trigger, parent, final, started, stop,
                                        total, TaskStatus.RUNNING, status)
            elif role == _ENDED:
                if outcome in (_COMPLETED, _ANSWERED):
                    final = pools.completed[int(rand() * len(pools.completed))]
                elif outcome == _UNFORMATTED:
                    final = pools.unformatted[int(rand() * len(pools.unformatted))]
                elif outcome == _SILENT:
                    final = pools.silent[int(rand() * len(pools.silent))]
                elif outcome == _FAILED:
                    final = pools.failed[int(rand() * len(pools.failed))]
                elif outcome == _KILLED:
                    who = int(rand() * len(_ACTORS))
                    final = pools.kills[who]
                    killed_by = _ACTORS[who]
                elif outcome == _MAX_DURATION:
                    final = pools.max_duration
                elif outcome == _LOOP:
                    final = pools.runtime_failure(
                        f"Loop detected ({self.loop_method}): {loop_tool} failed "
                        f"{self.loop_threshold} times in a row\n"
                        f"Hint: Use /kill_task {task_id} if the task needs to be cleaned up.")
                if outcome == _TIMEOUT:
                    question = pools.questions[int(rand() * len(pools.questions))]
                    closing = self._closing(task_id, name, trigger, parent, question, started,
                                            stop, total, TaskStatus.RUNNING, TaskStatus.PAUSED)
                    finished = stop + self.timeout_after
                    final = pools.timeout
                    closing += self._closing(task_id, name, trigger, parent, final, started,
                                             finished, total, TaskStatus.PAUSED,
                                             TaskStatus.FAILED)
                else:
                    assert final is not None
                    finished = stop
                    closing = self._closing(task_id, name, trigger, parent, final, started,
                                            finished, total,
                                            TaskStatus.RUNNING, _task_status(final.result))
                status = TaskStatus.FAILED if final.result is ResultStatus.FAILED else (
                    TaskStatus.COMPLETED)

        for at, kind, payload in closing:
            seq += 1
            events.append((eid, task_id, seq, ts(at), kind, payload, txid))
            eid += 1
            last_at = at
        self.next_event_id = eid
        if seq == 0:
            last_at = None

        if status is TaskStatus.FAILED and len(self.failed_recently) < 2000:
            self.failed_recently.append((task_id, named, prompt))
        elif status is TaskStatus.FAILED:
            self.failed_recently[int(rand() * 2000)] = (task_id, named, prompt)

        total_tokens = prompt_tokens + completion_tokens
        cost = (None if price is None else estimate_cost(
            price.input_per_million, price.output_per_million, prompt_tokens, completion_tokens))
        duration_ms = (int((finished - started).total_seconds() * 1000)
                       if started is not None and finished is not None else None)
        result = final.result.value if final is not None else None
        summary = final.summary if final is not None else None
        error = summary if final is not None and final.result is ResultStatus.FAILED else None
        return (
            task_id, name, sort_key, prompt, status.value, trigger.value, None, provider, model,
            used_default, max_minutes, parent, restarted_from, ts(created),
            None if started is None else ts(started), None if finished is None else ts(finished),
            duration_ms, prompt_tokens, completion_tokens, total_tokens, cost, tool_calls,
            result, summary, error, killed_by, None if last_at is None else ts(last_at), seq,
        )

    def _closing(self, task_id: int, name: str, trigger: Trigger, parent: str | None,
                 final: _Final, started: datetime | None, at: datetime, tokens: int,
                 old: TaskStatus, new: TaskStatus) -> list[tuple[datetime, str, str]]:
        """The store's transition + ``_end_events``: status_change, final, injection."""
        out = [(at, "status_change", _status_change(old, new, final.message)),
               (at, "final", final.payload)]
        if final.result is not ResultStatus.SILENT:
            minutes = 0.0 if started is None else (at - started).total_seconds() / 60
            block = injection_block(task_id=task_id, task_name=name, status=final.result,
                                    trigger=trigger, duration_minutes=minutes,
                                    tokens_used=tokens, summary=final.summary)
            out.append((at, "injection", _dumps({"parent_session": parent, "text": block,
                                                 "status": final.result.value})))
        return out


def _task_status(result: ResultStatus) -> TaskStatus:
    return {ResultStatus.COMPLETED: TaskStatus.COMPLETED, ResultStatus.SILENT:
            TaskStatus.COMPLETED, ResultStatus.FAILED: TaskStatus.FAILED,
            ResultStatus.QUESTION: TaskStatus.PAUSED}[result]


def _cdf(weights: Sequence[float]) -> list[float]:
    total = sum(weights)
    out: list[float] = []
    acc = 0.0
    for w in weights[:-1]:
        acc += w / total
        out.append(acc)
    return out


# --- writing ----------------------------------------------------------------------------------


def _sqlite_timestamp(dialect: Any) -> Callable[[datetime], Any]:
    """A fast formatter producing exactly what the UTCDateTime column binds on SQLite."""
    bind = UTCDateTime().dialect_impl(dialect).bind_processor(dialect)

    def exact(value: datetime) -> Any:  # the slow path through SQLAlchemy's own types
        aware = value.replace(tzinfo=UTC)
        return bind(aware) if bind else aware

    def fast(value: datetime) -> str:
        return value.isoformat(" ", "microseconds")

    samples = (datetime(2026, 11, 20, 12, 0, tzinfo=UTC).replace(tzinfo=None),
               datetime(2026, 1, 2, 3, 4, 5, 678, tzinfo=UTC).replace(tzinfo=None))
    return fast if all(fast(s) == exact(s) for s in samples) else exact


def _insert_sql(table: str, columns: Sequence[str]) -> str:
    return (f"INSERT INTO {table} ({', '.join(columns)}) "
            f"VALUES ({', '.join('?' for _ in columns)})")


async def _write_chunk(conn: AsyncConnection, is_sqlite: bool, tasks: list[tuple[Any, ...]],
                       events: list[tuple[Any, ...]]) -> None:
    if is_sqlite:
        await conn.exec_driver_sql(_insert_sql("tasks", TASK_COLUMNS), tasks)
        if events:
            await conn.exec_driver_sql(_insert_sql("task_events", EVENT_COLUMNS), events)
        return
    # Starts the transaction on the driver connection before COPY runs inside it.
    await conn.execute(text("SET LOCAL synchronous_commit TO OFF"))
    raw = (await conn.get_raw_connection()).driver_connection
    assert raw is not None
    await raw.copy_records_to_table("tasks", records=tasks, columns=TASK_COLUMNS)
    if events:
        await raw.copy_records_to_table("task_events", records=events, columns=EVENT_COLUMNS)


async def seed_demo(store: TaskStore, tasks: int, seed: int = 0, *, now: datetime | None = None,
                    events_per_task: int = 10,
                    progress: Callable[[int], None] | None = None) -> SeedReport:
    """Append ``tasks`` deterministic demo tasks (see the module docstring)."""
    began = time.perf_counter()
    if tasks < 0:
        raise ValueError("tasks must not be negative")
    now = now or store.clock()
    if now.tzinfo is None:
        raise ValueError("now must be an aware datetime")
    engines = store.engines
    is_sqlite = engines.is_sqlite
    dialect = engines.write.dialect
    written_tasks = written_events = 0
    async with engines.write.connect() as conn:
        if is_sqlite:
            # A big page cache keeps the random-order indexes (name, cost, ...) in memory.
            await conn.exec_driver_sql("PRAGMA cache_size=-400000")
            await conn.commit()
        try:
            async with conn.begin():
                max_task = (await conn.execute(text("SELECT coalesce(max(id), 0) FROM tasks"))
                            ).scalar_one()
                max_event = (await conn.execute(text(
                    "SELECT coalesce(max(id), 0) FROM task_events"))).scalar_one()
            gen = _Generator(store, tasks, seed, now, events_per_task, int(max_task) + 1,
                             int(max_event) + 1,
                             _sqlite_timestamp(dialect) if is_sqlite else _identity)
            while written_tasks < tasks:
                task_rows, event_rows = gen.chunk(CHUNK_TASKS)
                async with conn.begin():
                    await _write_chunk(conn, is_sqlite, task_rows, event_rows)
                written_tasks += len(task_rows)
                written_events += len(event_rows)
                if progress is not None:
                    progress(written_tasks)
            if not is_sqlite and tasks:
                async with conn.begin():
                    for table in ("tasks", "task_events"):
                        await conn.execute(text(
                            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                            f"(SELECT max(id) FROM {table}))"))
        finally:
            if is_sqlite:
                await conn.exec_driver_sql("PRAGMA cache_size=-2000")
                await conn.commit()
    await store.rebuild_counts()
    await _analyze(store)
    return SeedReport(written_tasks, written_events, time.perf_counter() - began)


async def _analyze(store: TaskStore) -> None:
    """Fresh planner statistics; on PostgreSQL also the visibility map (VACUUM), which
    index-only scans need and which autovacuum would otherwise set later, mid-benchmark."""
    if store.engines.is_sqlite:
        async with store.engines.write.begin() as conn:
            await conn.exec_driver_sql("ANALYZE")
        return
    async with store.engines.write.connect() as conn:
        auto = await conn.execution_options(isolation_level="AUTOCOMMIT")
        await auto.exec_driver_sql("VACUUM (ANALYZE) tasks")
        await auto.exec_driver_sql("VACUUM (ANALYZE) task_events")
        await auto.exec_driver_sql("ANALYZE task_counts")


def _identity(value: datetime) -> datetime:
    return value


__all__ = ["SeedReport", "seed_demo"]
