"""One strict boolean reading for every DevPlane process: a typo is an error, never "false"."""

from __future__ import annotations

import pytest

from devplane_api.envparse import env_bool, parse_bool


@pytest.mark.parametrize("word", ["true", "TRUE", "1", "yes", "On", " on "])
def test_true_words(word):
    assert parse_bool(word, name="X") is True


@pytest.mark.parametrize("word", ["false", "False", "0", "no", "OFF"])
def test_false_words(word):
    assert parse_bool(word, name="X") is False


@pytest.mark.parametrize("word", ["ture", "2", "enabled", "", "y"])
def test_anything_else_is_refused_naming_the_variable_and_the_words(word):
    with pytest.raises(ValueError) as info:
        parse_bool(word, name="DEVPLANE_X")
    assert str(info.value).startswith(f"DEVPLANE_X={word!r} is not a boolean: use true or false")
    assert "yes/no" in str(info.value)


def test_unset_or_empty_means_the_default():
    assert env_bool({}, "X", True) is True
    assert env_bool({"X": " "}, "X", False) is False
    assert env_bool({"X": "no"}, "X", True) is False
    with pytest.raises(ValueError, match="X='nope'"):
        env_bool({"X": "nope"}, "X", True)
