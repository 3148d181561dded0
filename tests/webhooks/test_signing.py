"""Webhook signatures: what verifies, what is refused and why, and secret rotation."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from prorata.core.signing import (
    SignatureError,
    new_secret,
    parse_header,
    sign,
    signature_header,
    verify,
)

SECRET = "whsec_current"
OLD = "whsec_previous"
BODY = b'{"id":"evt_1","type":"invoice.issued","data":{"total":"90.00"}}'
T = 1_700_000_000


def test_sign_is_hmac_sha256_of_timestamp_dot_body():
    expected = hmac.new(SECRET.encode(), f"{T}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert sign(SECRET, T, BODY) == expected
    assert signature_header([SECRET], T, BODY) == f"t={T},v1={expected}"


def test_round_trip_within_tolerance_either_side():
    header = signature_header([SECRET], T, BODY)
    verify(header, BODY, SECRET, now=T)
    verify(header, BODY, SECRET, now=T + 300)
    verify(header, BODY, SECRET, now=T - 300)


def test_tampered_body_is_refused():
    header = signature_header([SECRET], T, BODY)
    with pytest.raises(SignatureError, match="no signature matches"):
        verify(header, BODY.replace(b"90.00", b"0.00"), SECRET, now=T)


def test_wrong_secret_is_refused():
    header = signature_header([SECRET], T, BODY)
    with pytest.raises(SignatureError, match="no signature matches"):
        verify(header, BODY, "whsec_other", now=T)


def test_timestamp_changed_in_the_header_is_refused():
    header = signature_header([SECRET], T, BODY).replace(f"t={T}", f"t={T + 10}")
    with pytest.raises(SignatureError, match="no signature matches"):
        verify(header, BODY, SECRET, now=T + 10)


@pytest.mark.parametrize("now", [T + 301, T - 301, T + 86400])
def test_stale_or_future_timestamp_is_refused(now):
    header = signature_header([SECRET], T, BODY)
    with pytest.raises(SignatureError, match="outside the tolerance of 300 s"):
        verify(header, BODY, SECRET, now=now)


def test_tolerance_is_configurable():
    header = signature_header([SECRET], T, BODY)
    verify(header, BODY, SECRET, now=T + 3600, tolerance=3600)
    with pytest.raises(SignatureError, match="tolerance of 5 s"):
        verify(header, BODY, SECRET, now=T + 6, tolerance=5)


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        ("", "it is empty"),
        ("   ", "it is empty"),
        ("garbage", "is not key=value"),
        (f"t={T}", "no v1= signature"),
        ("v1=abcd", "exactly one t="),
        (f"t={T},t={T},v1=abcd", "exactly one t="),
        ("t=soon,v1=abcd", "is not a whole number"),
        ("t=-5,v1=abcd", "is not a whole number"),
        (f"t={T},v1=", "is not key=value"),
        (f"t={T},,v1=abcd", "is not key=value"),
    ],
)
def test_malformed_headers_are_refused_with_the_reason(header, reason):
    with pytest.raises(SignatureError, match="malformed signature header") as err:
        verify(header, BODY, SECRET, now=T)
    assert reason in str(err.value)


def test_signature_error_is_a_value_error():
    assert issubclass(SignatureError, ValueError)


def test_unknown_schemes_are_ignored_and_any_v1_may_match():
    good = sign(SECRET, T, BODY)
    verify(f"t={T},v0=legacy,v1={'0' * 64},v1={good}", BODY, SECRET, now=T)
    assert parse_header(f"t={T},v0=x,v1=a,v1=b") == (T, ["a", "b"])


def test_rotation_both_secrets_verify_during_the_overlap_only_the_new_one_after():
    during = signature_header([SECRET, OLD], T, BODY)
    assert during.count("v1=") == 2
    verify(during, BODY, SECRET, now=T)
    verify(during, BODY, OLD, now=T)
    after = signature_header([SECRET], T + 86400, BODY)
    verify(after, BODY, SECRET, now=T + 86400)
    with pytest.raises(SignatureError, match="no signature matches"):
        verify(after, BODY, OLD, now=T + 86400)


def test_signature_header_needs_secrets():
    with pytest.raises(ValueError):
        signature_header([], T, BODY)
    with pytest.raises(ValueError):
        signature_header(SECRET, T, BODY)  # a bare string is not a list of secrets
    with pytest.raises(ValueError):
        sign("", T, BODY)


def test_new_secrets_are_prefixed_random_and_fit_the_column():
    made = {new_secret() for _ in range(50)}
    assert len(made) == 50
    assert all(s.startswith("whsec_") and 40 <= len(s) <= 100 for s in made)
