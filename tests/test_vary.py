"""Vary: which stored variant a request may use."""

from __future__ import annotations

from edgeproxy.cache.vary import NEVER, matches, selecting, vary_names


def test_names_are_lower_case_unique_and_in_order():
    headers = [("Vary", "Accept-Language, Foo"), ("vary", "foo, Bar")]
    assert vary_names(headers, keyed_encoding=False) == ("accept-language", "foo", "bar")


def test_accept_encoding_left_out_when_the_key_holds_it():
    headers = [("Vary", "Accept-Encoding, Origin")]
    assert vary_names(headers, keyed_encoding=True) == ("origin",)
    assert vary_names(headers, keyed_encoding=False) == ("accept-encoding", "origin")


def test_matching_values_absent_values_and_star():
    stored = selecting(("accept-language", "x-missing"), [("Accept-Language", "de, fr")])
    assert matches(stored, [("accept-language", "de,fr")])
    assert not matches(stored, [("Accept-Language", "de")])
    assert not matches(stored, [("Accept-Language", "de, fr"), ("X-Missing", "1")])
    assert selecting(("*",), []) == NEVER
    assert not matches(NEVER, [])
    assert matches((), [("Anything", "1")])
