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
    if "STATUS" not in text.upper():
        assert final.summary == text.strip()
