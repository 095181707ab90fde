"""Signing and verifying webhook bodies (serving/webhooks/signing.py)."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from leadscore.serving.webhooks.signing import (
    MissingSecretError,
    SignatureError,
    endpoint_secret,
    headers,
    sign,
    verify,
)

BODY = '{"id":"e1","type":"grade_up","lead_id":"00042","data":{"name":"Zoë"}}'.encode()
SECRET = "s3cret"
T = 1_780_000_000


def test_signature_is_hmac_sha256_over_timestamp_dot_body():
    expected = hmac.new(b"s3cret", b"1780000000." + BODY, hashlib.sha256).hexdigest()
    assert sign(BODY, SECRET, T) == f"t={T},v1={expected}"


def test_headers_carry_signature_key_and_event():
    out = headers(BODY, SECRET, "abc123", "grade_up", T)
    assert out["Idempotency-Key"] == "abc123"
    assert out["Leadscore-Event"] == "grade_up"
    assert out["Leadscore-Signature"] == sign(BODY, SECRET, T)
    assert out["Content-Type"] == "application/json"


def test_verify_accepts_the_signed_body_and_returns_its_timestamp():
    assert verify(BODY, sign(BODY, SECRET, T), SECRET, now=T + 299) == T
    assert verify(BODY.decode(), sign(BODY, SECRET, T), SECRET, now=T - 10) == T
    # several v1 values (a secret being rotated): one match is enough
    header = f"{sign(BODY, 'old', T)},v1={sign(BODY, SECRET, T).split('v1=')[1]}"
    assert verify(BODY, header, SECRET, now=T) == T


@pytest.mark.parametrize(
    ("body", "header", "secret", "now", "message"),
    [
        (BODY + b" ", sign(BODY, SECRET, T), SECRET, T, "does not match"),
        (BODY, sign(BODY, SECRET, T), "other", T, "does not match"),
        (BODY, sign(BODY, SECRET, T), SECRET, T + 301, "outside the tolerance"),
        (BODY, sign(BODY, SECRET, T), SECRET, T - 301, "outside the tolerance"),
        (BODY, f"v1={'0' * 64}", SECRET, T, "no valid t="),
        (BODY, "t=abc,v1=00", SECRET, T, "no valid t="),
        (BODY, f"t={T}", SECRET, T, "no v1="),
        (BODY, f"t={T},v1=ü", SECRET, T, "does not match"),
    ],
)
def test_verify_refuses_tampered_stale_or_malformed(body, header, secret, now, message):
    with pytest.raises(SignatureError, match=message):
        verify(body, header, secret, now=now)


def test_secret_comes_from_the_named_environment_variable(monkeypatch):
    monkeypatch.setenv("HOOK_SECRET_X", "abc")
    assert endpoint_secret("HOOK_SECRET_X") == "abc"
    monkeypatch.setenv("HOOK_SECRET_X", "")
    with pytest.raises(MissingSecretError, match=r"HOOK_SECRET_X.*'crm'"):
        endpoint_secret("HOOK_SECRET_X", "crm")
    monkeypatch.delenv("HOOK_SECRET_X")
    with pytest.raises(MissingSecretError, match="HOOK_SECRET_X"):
        endpoint_secret("HOOK_SECRET_X")


def test_the_receiver_snippet_in_the_docs_agrees_with_sign():
    from tests.conftest import ROOT

    text = (ROOT / "docs" / "webhooks.md").read_text(encoding="utf-8")
    code = text.split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict = {}
    exec(code, namespace)  # the documented receiver-side verify()
    header = sign(BODY, SECRET)
    assert namespace["verify"](BODY, header, SECRET) == int(header[2:].split(",")[0])
    with pytest.raises(ValueError, match="bad signature"):
        namespace["verify"](BODY + b" ", header, SECRET)
    with pytest.raises(ValueError, match="stale"):
        namespace["verify"](BODY, sign(BODY, SECRET, T), SECRET)
