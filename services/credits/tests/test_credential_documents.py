"""The pure parts of the e-portfolio outputs: certificate numbers, masking, the status list,
OB 3.0 / CLR 2.0 documents against 1EdTech's JSON schemas, VC-JWT signing and every verdict."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import given
from hypothesis import strategies as st

from credits.credentials import certificates, documents, statuslist, vcjwt
from credits.credentials.documents import AchievementFacts, Holder, IssuerProfile
from credits.credentials.keys import generate_key, public_part
from kernel.tokens import InvalidToken, StaticKeySource, TokenSigner, TokenVerifier, keys_from_jwks

DATA = Path(__file__).parent / "data" / "1edtech"
OB_SCHEMA = json.loads((DATA / "ob_v3p0_achievementcredential_schema.json").read_text())
CLR_SCHEMA = json.loads((DATA / "clr_v2p0_clrcredential_schema_draft4.json").read_text())
ISSUER = IssuerProfile(
    id="https://muye.example.org/college", name="牧野区社区学院", url="http://127.0.0.1:8000"
)
KEY = generate_key()
KID = f"http://127.0.0.1:8000/.well-known/credential-keys.json#{KEY['kid']}"
KEYS = vcjwt.public_keys({"keys": [public_part(KEY)]})
NOW = datetime(2026, 11, 25, 4, 0, tzinfo=UTC)
LIST_URL = "http://127.0.0.1:8000/credentials/status/1"


def _facts(**overrides: Any) -> AchievementFacts:
    values: dict[str, Any] = {
        "key": "conversion/ou_course_credit",
        "achievement_type": "ext:CreditConversion",
        "name": "学分转换：开放大学课程学分",
        "description": "以学分银行学分转换为开放大学课程学分 1 学分。",
        "criteria": "按学分转换办法审核批准。",
        "credits_available_hundredths": 200,
        "credits_earned_hundredths": 200,
        "awarded_at": NOW - timedelta(days=1),
    }
    values.update(overrides)
    return AchievementFacts(**values)


def _holder() -> Holder:
    return Holder(subject_id=f"urn:uuid:{uuid.uuid4()}", name="李小梅", salt="5a1t")


def _credential(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "credential_id": f"urn:uuid:{uuid.uuid4()}",
        "issuer": ISSUER,
        "holder": _holder(),
        "facts": _facts(),
        "valid_from": NOW,
        "status": statuslist.entry(LIST_URL, 7),
    }
    values.update(overrides)
    return documents.achievement_credential(**values)


def _verify(token: str, *, revoked: set[int] = frozenset(), **kwargs: Any) -> vcjwt.Verdict:  # type: ignore[assignment]
    def lookup(url: str, index: int) -> bool | None:
        return index in revoked if url == LIST_URL else None

    options: dict[str, Any] = {"keys": KEYS, "issuer": ISSUER.id, "now": NOW, "status": lookup}
    options.update(kwargs)
    return vcjwt.verify(token, **options)


# certificate numbers and masking


def test_a_new_certificate_number_reads_back_and_a_typo_is_refused() -> None:
    number = certificates.new_number(2026)
    assert number.startswith("MY2026-") and len(number) == 16
    assert certificates.normalise(number.lower().replace("-", "- ")) == number
    body = number[7:11] + number[12:]
    wrong = "1" if body[0] != "1" else "2"
    assert certificates.normalise(f"MY2026-{wrong}{body[1:4]}-{body[4:]}") is None
    assert certificates.normalise("MY2026-0000-000") is None


@given(st.text(alphabet=certificates.ALPHABET, min_size=7, max_size=7))
def test_any_single_substitution_changes_the_check_character(body: str) -> None:
    check = certificates.check_character(body)
    for position in range(7):
        for char in certificates.ALPHABET:
            if char != body[position]:
                changed = body[:position] + char + body[position + 1 :]
                assert certificates.check_character(changed) != check


@pytest.mark.parametrize(
    ("name", "masked"), [("李小梅", "李*梅"), ("王芳", "王*"), ("欧阳娜娜", "欧**娜"), ("张", "*")]
)
def test_names_are_masked_to_their_first_and_last_character(name: str, masked: str) -> None:
    assert certificates.mask_name(name) == masked


def test_a_long_name_is_masked_within_what_an_issued_document_keeps() -> None:
    masked = certificates.mask_name("阿" + "卜" * 57 + "力")  # accounts allows 60 characters
    assert masked == "阿" + "*" * 38 + "力" and len(masked) == certificates.MASKED_NAME_MAX


# the status list


@given(st.sets(st.integers(min_value=0, max_value=statuslist.LIST_SIZE - 1), max_size=50))
def test_status_list_bits_read_back(revoked: set[int]) -> None:
    bits = statuslist.decode(statuslist.encode(revoked))
    assert len(bits) * 8 == statuslist.LIST_SIZE
    for index in [*revoked, 0, 1, statuslist.LIST_SIZE - 1]:
        assert statuslist.is_set(bits, index) == (index in revoked)


def test_a_keyed_order_gives_every_place_its_own_bit_in_the_list() -> None:
    key = bytes(range(32))
    bits = [statuslist.index_for(position, key) for position in range(statuslist.LIST_SIZE)]
    assert sorted(bits) == list(range(statuslist.LIST_SIZE))  # a permutation of the list
    assert bits[:8] != list(range(8))  # not the issue order
    other = [statuslist.index_for(position, bytes(32)) for position in range(8)]
    assert other != bits[:8]  # another list's key, another order
    assert [statuslist.index_for(p, None) for p in range(8)] == list(range(8))  # older lists
    with pytest.raises(statuslist.StatusListError):
        statuslist.index_for(statuslist.LIST_SIZE, key)


def test_bit_zero_is_the_most_significant_bit_of_the_first_byte() -> None:
    assert statuslist.decode(statuslist.encode({0}))[0] == 0x80
    assert statuslist.decode(statuslist.encode({9}))[1] == 0x40


# documents against 1EdTech's schemas


def test_an_achievement_credential_validates_against_the_ob_3_0_schema() -> None:
    credential = _credential()
    jsonschema.Draft201909Validator(OB_SCHEMA).validate(credential)
    subject = credential["credentialSubject"]
    assert subject["achievement"]["creditsAvailable"] == 2.0
    assert subject["creditsEarned"] == 2.0
    assert "李小梅" not in json.dumps(credential, ensure_ascii=False)  # a salted hash only
    assert subject["identifier"][0]["identityHash"].startswith("sha256$")


def test_a_credential_missing_what_ob_requires_fails_the_schema() -> None:
    credential = _credential()
    del credential["credentialSubject"]["achievement"]["criteria"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft201909Validator(OB_SCHEMA).validate(credential)


def test_a_clr_validates_against_the_clr_2_0_schema_and_its_parts_against_ob() -> None:
    clr = documents.clr_credential(
        credential_id=f"urn:uuid:{uuid.uuid4()}",
        issuer=ISSUER,
        holder=_holder(),
        name="终身学习电子档案",
        description="学习学时 32.0 小时",
        achievements=[
            (f"urn:uuid:{uuid.uuid4()}", _facts()),
            (f"urn:uuid:{uuid.uuid4()}", _facts(key="learning/law", name="社区教育学习：法治教育")),
        ],
        valid_from=NOW,
        valid_until=NOW + timedelta(days=365),
        status=statuslist.entry(LIST_URL, 8),
    )
    # the one schema edition we have predates Bitstring Status List: its CredentialStatus allows
    # only id and type (the 1EdTechRevocationList era). That is the only disagreement.
    errors = list(jsonschema.Draft4Validator(CLR_SCHEMA).iter_errors(clr))
    assert [(list(e.absolute_path), e.validator) for e in errors] == [
        (["credentialStatus"], "additionalProperties")
    ]
    for field in ("statusPurpose", "statusListIndex", "statusListCredential"):
        assert field in errors[0].message
    bare = {**clr, "credentialStatus": {k: clr["credentialStatus"][k] for k in ("id", "type")}}
    jsonschema.Draft4Validator(CLR_SCHEMA).validate(bare)
    for inner in clr["credentialSubject"]["verifiableCredential"]:
        jsonschema.Draft201909Validator(OB_SCHEMA).validate(inner)
    assert clr["validFrom"] == clr["issuanceDate"] == "2026-11-25T04:00:00Z"


# VC-JWT: the header and claims OB 3.0 asks for, and every verdict


def _parts(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    head, payload, _ = token.split(".")
    decode = lambda s: json.loads(base64.urlsafe_b64decode(s + "=" * (-len(s) % 4)))  # noqa: E731
    return decode(head), decode(payload)


def test_the_jwt_carries_the_credential_and_its_registered_claims() -> None:
    credential = _credential(valid_until=NOW + timedelta(days=30))
    header, claims = _parts(vcjwt.sign(credential, private_jwk=KEY, kid_uri=KID))
    assert header == {"alg": "RS256", "kid": KID, "typ": "JWT"}
    assert claims["iss"] == ISSUER.id and claims["jti"] == credential["id"]
    assert claims["sub"] == credential["credentialSubject"]["id"]
    assert claims["nbf"] == int(NOW.timestamp())
    assert claims["exp"] == int((NOW + timedelta(days=30)).timestamp())
    assert claims["credentialSubject"] == credential["credentialSubject"]


def test_a_good_credential_is_valid() -> None:
    verdict = _verify(vcjwt.sign(_credential(), private_jwk=KEY, kid_uri=KID))
    assert verdict.status == vcjwt.VALID and verdict.valid


def test_a_tampered_credential_is_tampered() -> None:
    token = vcjwt.sign(_credential(), private_jwk=KEY, kid_uri=KID)
    head, payload, signature = token.split(".")
    _, claims = _parts(token)
    claims["credentialSubject"]["creditsEarned"] = 20.0
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    assert _verify(f"{head}.{forged}.{signature}").status == vcjwt.TAMPERED
    assert _verify(f"{head}.{payload}.{signature[:-4]}AAAA").status == vcjwt.TAMPERED


def test_an_expired_credential_is_expired() -> None:
    credential = _credential(
        valid_from=NOW - timedelta(days=400), valid_until=NOW - timedelta(days=35)
    )
    assert _verify(vcjwt.sign(credential, private_jwk=KEY, kid_uri=KID)).status == vcjwt.EXPIRED


def test_a_credential_from_the_future_is_not_yet_valid() -> None:
    credential = _credential(valid_from=NOW + timedelta(days=1))
    verdict = _verify(vcjwt.sign(credential, private_jwk=KEY, kid_uri=KID))
    assert verdict.status == vcjwt.NOT_YET_VALID


def test_a_revoked_credential_is_revoked_and_an_unreadable_status_is_no_pass() -> None:
    token = vcjwt.sign(_credential(), private_jwk=KEY, kid_uri=KID)
    assert _verify(token, revoked={7}).status == vcjwt.REVOKED
    assert _verify(token, revoked={8}).status == vcjwt.VALID
    assert _verify(token, status=None).status == vcjwt.STATUS_UNKNOWN


def test_another_issuer_is_the_wrong_issuer() -> None:
    stranger = generate_key()
    foreign = vcjwt.sign(_credential(), private_jwk=stranger, kid_uri=KID.split("#")[0] + "#x")
    assert _verify(foreign).status == vcjwt.WRONG_ISSUER
    # a forger who guessed our kid: the signature does not match our key
    guessed = vcjwt.sign(_credential(), private_jwk=stranger, kid_uri=KID)
    assert _verify(guessed).status == vcjwt.TAMPERED
    # someone else's credential, checked against our keys but naming its own issuer
    theirs = _credential(issuer=IssuerProfile(id="https://other.example.org", name="别处", url="x"))
    signed = vcjwt.sign(theirs, private_jwk=KEY, kid_uri=KID)
    assert _verify(signed).status == vcjwt.WRONG_ISSUER


def test_headers_ob_does_not_allow_and_other_algorithms_are_refused() -> None:
    token = vcjwt.sign(_credential(), private_jwk=KEY, kid_uri=KID)
    _, payload, signature = token.split(".")

    def with_header(header: dict[str, Any]) -> str:
        encoded = base64.urlsafe_b64encode(json.dumps(header).encode()).decode().rstrip("=")
        return f"{encoded}.{payload}.{signature}"

    embedded = {"alg": "RS256", "kid": KID, "typ": "JWT", "jwk": public_part(KEY)}
    assert _verify(with_header(embedded)).status == vcjwt.TAMPERED
    assert _verify(with_header({"alg": "none", "kid": KID, "typ": "JWT"})).status == vcjwt.TAMPERED
    assert _verify(with_header({"alg": "HS256", "kid": KID})).status == vcjwt.TAMPERED
    assert _verify("not-a-jwt").status == vcjwt.MALFORMED


def test_a_header_nested_past_the_parser_is_malformed_never_raised() -> None:
    deep = base64.urlsafe_b64encode(b"[" * 50_000).decode().rstrip("=")
    assert _verify(f"{deep}.e30.c2ln").status == vcjwt.MALFORMED


def test_credential_keys_and_access_tokens_never_pass_for_each_other() -> None:
    access_key = {**generate_key(), "alg": "RS256"}
    signer = TokenSigner(access_key, issuer="https://muye.example.org/accounts", audience="muye")
    access_token = signer.sign(subject="s", kind="staff", lifetime_seconds=60)
    # an access token shown as a credential: refused by its typ
    assert _verify(access_token).status == vcjwt.MALFORMED
    # a credential shown as an access token, even to a verifier holding the credential key
    verifier = TokenVerifier(
        StaticKeySource(keys_from_jwks({"keys": [public_part(KEY)]})),
        issuer=ISSUER.id,
        audience="muye",
    )
    credential = vcjwt.sign(_credential(), private_jwk=KEY, kid_uri=KID)
    with pytest.raises(InvalidToken):
        import asyncio

        asyncio.run(verifier.verify(credential))
