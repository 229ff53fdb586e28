import re

from hypothesis import given
from hypothesis import strategies as st

from taskops.storage.domain import ResultStatus, TaskStatus
from taskops.storage.rules import parse_final_message


def test_completed_with_summary_on_following_lines() -> None:
    final = parse_final_message("Work done.\nSTATUS: completed\nSUMMARY:\nAll 3 files fixed.")
    assert final.result is ResultStatus.COMPLETED
    assert final.summary == "All 3 files fixed."
    assert final.formatted


def test_summary_on_the_same_line_as_its_marker() -> None:
    final = parse_final_message("STATUS: silent\nSUMMARY: Heartbeat sweep clean.")
    assert final.result is ResultStatus.SILENT
    assert final.summary == "Heartbeat sweep clean."
    assert final.task_status is TaskStatus.COMPLETED


def test_missing_format_is_a_completed_summary_of_the_whole_text() -> None:
    final = parse_final_message("  I looked around and found nothing.  ")
    assert final.result is ResultStatus.COMPLETED
    assert final.summary == "I looked around and found nothing."
    assert not final.formatted


def test_question_pauses_and_failed_fails() -> None:
    assert parse_final_message("STATUS: question\nSUMMARY:\nWhich repo?").task_status \
        is TaskStatus.PAUSED
    assert parse_final_message("STATUS: failed\nSUMMARY:\nno access").task_status \
        is TaskStatus.FAILED


def test_status_is_case_insensitive_and_markdown_bold_is_tolerated() -> None:
    final = parse_final_message("**STATUS:** Failed\n**SUMMARY:**\nThe API is down.")
    assert final.result is ResultStatus.FAILED
    assert final.summary == "The API is down."


def test_the_last_status_line_wins_over_a_quoted_one() -> None:
    text = "The format is\nSTATUS: failed\nas documented.\nSTATUS: completed\nSUMMARY:\nok"
    final = parse_final_message(text)
    assert final.result is ResultStatus.COMPLETED
    assert final.summary == "ok"


def test_multiline_summary_keeps_its_markdown() -> None:
    body = "- item one\n- item **two**\n\n```\ncode\n```"
    assert parse_final_message(f"STATUS: completed\nSUMMARY:\n{body}").summary == body


def test_status_without_summary_keeps_the_text() -> None:
    final = parse_final_message("Cannot reach host.\nSTATUS: failed")
    assert final.result is ResultStatus.FAILED
    assert final.summary == "Cannot reach host."


def test_an_unknown_status_word_is_not_the_format() -> None:
    final = parse_final_message("STATUS: done\nSUMMARY: x")
    assert not final.formatted
    assert final.result is ResultStatus.COMPLETED


@given(st.text())
def test_any_text_parses_to_a_known_status(text: str) -> None:
    final = parse_final_message(text)
    assert final.result in set(ResultStatus)
    if not MARKER.search(text):
        assert final.summary == text.strip()


# --- the rule over the whole input class ---------------------------------------------------

MARKER = re.compile("status|summary", re.IGNORECASE)


def _free_of_markers(value: str) -> bool:
    return not MARKER.search(value)


def _case(word: str) -> st.SearchStrategy[str]:
    return st.sampled_from([word, word.upper(), word.capitalize()])


#: text an agent writes that is not itself part of the format
prose = st.text(st.characters(exclude_categories=("Cs",)), max_size=60).filter(_free_of_markers)
one_line = prose.map(lambda s: s.replace("\n", " "))
#: what may follow the status word on its line: nothing, punctuation, an emoji, a reason
follower = st.one_of(
    st.just(""),
    st.builds(lambda sep, text: sep + text,
              st.sampled_from([" ", ".", "!", " (", "(", " — ", " - ", ": ", ", ", "✅", " ❌",
                               " 🎉", "…", "**", "** ", ")"]),
              one_line),
).filter(lambda f: not re.match(r"^[*_ \t`]*\|", f))
status_marker = st.sampled_from(["STATUS: {w}", "**STATUS:** {w}", "**STATUS**: {w}",
                                 "STATUS: **{w}**", "**STATUS: {w}**", "- STATUS: {w}",
                                 "## STATUS: {w}", "status:{w}", "  STATUS :  `{w}`"])
summary_marker = st.sampled_from(["SUMMARY:", "**SUMMARY:**", "**SUMMARY**:", "Summary:",
                                  "- SUMMARY:"])
body = prose.filter(lambda s: s.strip() != "")


@st.composite
def status_line(draw: st.DrawFn) -> tuple[ResultStatus, str]:
    result = draw(st.sampled_from(list(ResultStatus)))
    marker = draw(status_marker).replace("STATUS", draw(_case("STATUS")))
    return result, marker.format(w=draw(_case(result.value))) + draw(follower)


@given(status_line(), summary_marker, body, prose,
       st.sampled_from(["below", "same line", "above"]))
def test_status_and_summary_are_read_in_every_layout(status: tuple[ResultStatus, str],
                                                    marker: str, summary: str, narration: str,
                                                    layout: str) -> None:
    result, line = status
    if layout == "below":
        text = f"{narration}\n{line}\n{marker}\n{summary}"
    elif layout == "same line":
        text = f"{narration}\n{line} {marker} {summary}"
    else:
        text = f"{marker}\n{summary}\n{line}"
    final = parse_final_message(text)
    assert (final.result, final.formatted) == (result, True)
    assert final.summary == summary.strip()


@given(status_line(), prose, prose)
def test_without_a_summary_marker_the_text_around_is_the_summary(
        status: tuple[ResultStatus, str], before: str, after: str) -> None:
    result, line = status
    final = parse_final_message(f"{before}\n{line}\n{after}")
    assert final.result is result
    assert not MARKER.search(final.summary)
    for part in (before.strip(), after.strip()):
        assert part in final.summary


@given(st.sampled_from(list(ResultStatus)), st.sampled_from(["ness", "d", "_x", "1", "é"]))
def test_a_longer_word_is_not_a_status(result: ResultStatus, tail: str) -> None:
    final = parse_final_message(f"STATUS: {result.value}{tail}\nSUMMARY: x")
    assert not final.formatted


def test_the_reason_on_the_status_line() -> None:
    final = parse_final_message("STATUS: failed (build broken)\nSUMMARY:\nmain is red")
    assert (final.result, final.summary) == (ResultStatus.FAILED, "main is red")
    final = parse_final_message("Tried twice.\nSTATUS: failed (build broken)")
    assert (final.result, final.summary) == (ResultStatus.FAILED, "Tried twice.\nbuild broken")
    final = parse_final_message("STATUS: completed. SUMMARY: all 3 fixed")
    assert (final.result, final.summary) == (ResultStatus.COMPLETED, "all 3 fixed")


def test_the_quoted_template_is_not_a_status() -> None:
    text = "Format: STATUS: completed | failed | question | silent\nSTATUS: failed\nSUMMARY: x"
    assert parse_final_message(text).result is ResultStatus.FAILED


@given(status_line(), summary_marker, body, st.sampled_from(["", "\n", "\n\n"]))
def test_a_status_line_repeated_after_an_inline_summary_keeps_the_summary(
        status: tuple[ResultStatus, str], marker: str, summary: str, gap: str) -> None:
    result, line = status
    final = parse_final_message(f"{line} {marker} {summary}\n{gap}STATUS: {result.value}")
    assert (final.result, final.summary) == (result, summary.strip())


#: any mix of the format's pieces and prose, in any order and number
piece = st.one_of(
    prose,
    status_line().map(lambda s: s[1]),
    summary_marker,
    st.builds(lambda s, m, b: f"{s[1]} {m} {b}", status_line(), summary_marker, one_line),
    st.builds(lambda m, b: f"{m} {b}", summary_marker, one_line),
)


@given(st.lists(piece, max_size=8))
def test_the_summary_never_keeps_the_markers(pieces: list[str]) -> None:
    text = "\n".join(pieces)
    final = parse_final_message(text)
    statuses = list(STATUS_AT_LINE_START.finditer(text))
    if statuses:  # the last STATUS line wins
        assert final.result is ResultStatus(statuses[-1][1].lower())
    else:
        assert (final.result, final.formatted) == (ResultStatus.COMPLETED, False)
    for line in final.summary.split("\n"):
        assert not STATUS_AT_LINE_START.match(line), final.summary
        assert not SUMMARY_AT_LINE_START.match(line), final.summary


STATUS_AT_LINE_START = re.compile(
    r"^[ \t>#*_\-]*STATUS[*_]*[ \t]*:[*_ \t`]*(completed|failed|question|silent)(?!\w)",
    re.IGNORECASE | re.MULTILINE)
SUMMARY_AT_LINE_START = re.compile(r"^[ \t>#*_\-]*SUMMARY[*_]*[ \t]*:", re.IGNORECASE)
