"""Key format and the Authorization header, as plain functions."""

from __future__ import annotations

import pytest

from grokgate.errors import ApiError
from grokgate.orgs import keys


def test_generated_keys_round_trip_and_are_unique() -> None:
    first, second = keys.generate_key(), keys.generate_key()
    assert first.secret != second.secret
    assert keys.key_id_of(first.secret) == first.key_id
    assert keys.matches(first.secret, first.secret_hash)
    assert not keys.matches(second.secret, first.secret_hash)
    assert first.secret not in first.secret_hash


@pytest.mark.parametrize("token", ["", "gg_", "gg__x", "xx_abc_def", "gg_abc_", "abc"])
def test_malformed_keys_have_no_id(token: str) -> None:
    assert keys.key_id_of(token) is None


@pytest.mark.parametrize(
    ("header", "code"),
    [(None, "MISSING_AUTH"), ("  ", "MISSING_AUTH"), ("Basic x", "INVALID_FORMAT"), ("Bearer  ", "INVALID_FORMAT")],
)
def test_header_errors(header: str | None, code: str) -> None:
    with pytest.raises(ApiError) as caught:
        keys.bearer_token(header)
    assert caught.value.code == code


def test_scheme_is_case_insensitive() -> None:
    assert keys.bearer_token("bearer abc") == "abc"
