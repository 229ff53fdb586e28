"""The callback pattern helper: a handler sees exactly its actions, in this version."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from taskops.bot.callbacks import VERSION, Action, Callback, pattern

keys = st.text("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
               min_size=1, max_size=8)
args = st.text(max_size=12).filter(lambda s: ":" not in s)


@given(st.sets(st.sampled_from(list(Action)), min_size=1), st.sampled_from(list(Action)), keys,
       args)
def test_a_pattern_matches_the_data_of_its_actions_only(handled: set[Action], action: Action,
                                                        view: str, arg: str) -> None:
    data = Callback(action, view, arg).encode()
    assert bool(pattern(*handled).match(data)) == (action in handled)


@given(st.sampled_from(list(Action)), keys, st.text(max_size=3).filter(lambda v: v != VERSION))
def test_a_pattern_refuses_another_version(action: Action, view: str, version: str) -> None:
    assert not pattern(*Action).match(f"{version}:{action.value}:{view}:1")


def test_every_action_is_one_character_a_pattern_can_list() -> None:
    # pattern() puts the actions into one character class: a longer code would break it.
    assert all(len(a.value) == 1 for a in Action)
    assert len({a.value for a in Action}) == len(Action)


def test_a_pattern_needs_an_action() -> None:
    with pytest.raises(ValueError, match="at least one action"):
        pattern()
