"""The demo data's raw material: names, prompts, tool calls and final messages.

Everything here is computed once per seed (``Pools``) and drawn from while tasks are
generated; payloads are already JSON, built with the store's own rules.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from typing import Any

from taskops.storage import rules
from taskops.storage.domain import FinalMessage

CRONJOBS: tuple[tuple[str, str], ...] = (
    ("Nightly backup check", "Verify last night's backups & report anything <missing>."),
    ("Daily digest — inbox & calendar",
     "Summarize today's inbox and calendar for the team. Use **bold** for deadlines."),
    ("Weekly KPI report <finance>", 'Build the weekly KPI report; flag "red" metrics.'),
    ("Hourly uptime probe", "Probe https://status.example.com/?a=1&b=2 and alert on failures."),
    ("تقرير المبيعات اليومي", "لخّص مبيعات اليوم وأرسل التقرير إلى القناة."),
    ("Dependabot triage 🤖", "Triage open dependency PRs; merge the safe ones."),
)

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

TOOLS: tuple[tuple[str, str], ...] = (
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
ACTORS = ("@alice", "Bob (ops)", "Dana <on-call>", "Ядвига", "Ali & Sons", "admin")
#: parent sessions of the platform's web chat: the demo never addresses a Telegram chat,
#: since no one opened the made-up ones (results would be sent there for ever)
SESSIONS = ("web:session-1f3a", "web:team-ops", "web:session-77c2", "web:session-a9d0")


def _fill(template: str, rng: random.Random) -> str:
    return template.format(n=rng.randrange(1, 10_000), q=rng.randrange(1, 5),
                           v=f"{rng.randrange(1, 4)}.{rng.randrange(0, 20)}",
                           o=rng.choice(_OBJECTS).format(n=rng.randrange(1, 10_000), q=1,
                                                         v="1.0"))


def dumps(value: Any) -> str:
    return json.dumps(value)  # what SQLAlchemy's JSON type writes


@dataclass(frozen=True)
class Final:
    """A final message as the store records it: the parsed result, the agent's text (None
    for a failure made by the runtime or an admin) and the ``final`` payload, as JSON."""

    final: FinalMessage
    text: str | None
    payload: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "payload", dumps(rules.final_payload(self.final, self.text)))

    @property
    def message(self) -> str:
        """The message of the status change it causes."""
        return rules.status_message(self.final) if self.text is not None else self.final.summary

    @classmethod
    def of_runtime(cls, error: str) -> Final:
        return cls(rules.runtime_failure(error), None)


class Pools:
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
            tool, arg = TOOLS[i % len(TOOLS)]
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
            payload = dumps({"tool": tool, "arguments": arguments, "result": result,
                              "is_error": failed,
                              "duration_ms": int(rng.lognormvariate(5.5, 1.2))})
            (self.tool_err if failed else self.tool_ok).append(payload)
            if failed:
                self.tool_err_by_tool.setdefault(tool, []).append(payload)
        self.texts = [dumps({"text": t}) for t in _TEXTS]
        self.thoughts = [dumps({"text": t}) for t in _THOUGHTS]
        self.answers = [(a, who) for a in _ANSWERS for who in ACTORS]

        def final(final_text: str) -> Final:
            return Final(rules.parse_final_message(final_text), final_text)

        self.completed = [final(f"STATUS: completed\nSUMMARY:\n{s}") for s in _SUMMARIES]
        self.completed += [final(f"Some narration first.\n\n**STATUS:** completed\n"
                                 f"**SUMMARY:** {s}") for s in _SUMMARIES[:3]]
        self.unformatted = [final(f"{s}\n") for s in _SUMMARIES]
        self.silent = [final(f"STATUS: silent\nSUMMARY:\n{s}") for s in _SILENT_NOTES]
        self.failed = [final(f"STATUS: failed\nSUMMARY:\n{s}") for s in _FAIL_REASONS]
        self.questions = [final(f"STATUS: question\nSUMMARY:\n{q}") for q in _QUESTIONS]
        self.kills = [Final.of_runtime(f"Killed by {who} from Telegram") for who in ACTORS]
        self.max_duration = Final.of_runtime(rules.MAX_DURATION_MESSAGE)
        self.timeout = Final.of_runtime(rules.PAUSED_TIMEOUT_MESSAGE)

    @staticmethod
    def _named(name: str) -> tuple[str, str]:
        return name, rules.sort_name(name)

