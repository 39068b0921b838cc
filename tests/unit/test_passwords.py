import unicodedata

import pytest
from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError

from services.common import passwords
from services.common.passwords import (
    MAX_LENGTH,
    MIN_LENGTH,
    PASSWORD_PROBLEMS,
    hash_password,
    needs_rehash,
    password_problems,
    verify_password,
)

# Cheap parameters so the tests stay fast; the production ones are tested once below.
CHEAP = PasswordHasher(time_cost=1, memory_cost=64, parallelism=1, type=Type.ID)
GOOD = "lantaarnpaal bij de speeltuin"
LONG = "de lantaarnpaal bij de speeltuin is al weken kapot, " * 4


def test_production_parameters_follow_owasp_and_round_trip():
    hashed = hash_password(GOOD)
    assert hashed.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert verify_password(hashed, GOOD) is True
    assert verify_password(hashed, GOOD + "!") is False
    assert needs_rehash(hashed) is False


def test_round_trip_and_wrong_password():
    hashed = hash_password(GOOD, hasher=CHEAP)
    assert hashed.startswith("$argon2id$")
    assert verify_password(hashed, GOOD, hasher=CHEAP) is True
    for wrong in ("", GOOD.upper(), GOOD[:-1], " " + GOOD, "x" * 1000):
        assert verify_password(hashed, wrong, hasher=CHEAP) is False


def test_each_hash_has_its_own_salt():
    assert hash_password(GOOD, hasher=CHEAP) != hash_password(GOOD, hasher=CHEAP)


def test_unicode_is_normalised_before_hashing():
    composed = unicodedata.normalize("NFC", "crème brûlée in de wijk")
    decomposed = unicodedata.normalize("NFD", composed)
    assert composed != decomposed
    hashed = hash_password(composed, hasher=CHEAP)
    assert verify_password(hashed, decomposed, hasher=CHEAP) is True


def test_no_account_verifies_against_a_dummy_and_is_false():
    assert verify_password(None, GOOD, hasher=CHEAP) is False
    assert verify_password(None, "", hasher=CHEAP) is False


def test_a_hash_made_with_other_parameters_needs_rehash():
    cheap_hash = hash_password(GOOD, hasher=CHEAP)
    assert needs_rehash(cheap_hash) is True
    assert needs_rehash(cheap_hash, hasher=CHEAP) is False
    # it still verifies under the production hasher (parameters come from the hash)
    assert verify_password(cheap_hash, GOOD) is True


@pytest.mark.parametrize(
    "stored",
    [
        "",
        "plaintext",
        "$2b$12$C6UzMDM.H6dfI/f/IKcEeO5Q7sN3e5cY1nV3b0p8w3N4l6Rz7XyZa",  # bcrypt
        "$argon2i$v=19$m=64,t=1,p=1$c29tZXNhbHQ$aGFzaA",  # not argon2id
        "$argon2id$v=19$m=64,t=1,p=1$!!!$???",
        "$argon2id$v=19$m=64,t=1,p=1",
    ],
)
def test_a_corrupt_stored_hash_raises(stored):
    with pytest.raises(InvalidHashError):
        verify_password(stored, GOOD, hasher=CHEAP)


def test_a_truncated_hash_raises():
    hashed = hash_password(GOOD, hasher=CHEAP)
    with pytest.raises(InvalidHashError):
        verify_password(hashed[:-10], GOOD, hasher=CHEAP)


def test_only_argon2id_hashes_are_made():
    with pytest.raises(ValueError):
        hash_password(GOOD, hasher=PasswordHasher(time_cost=1, memory_cost=64, type=Type.I))


def test_passwords_must_be_strings():
    with pytest.raises(TypeError):
        hash_password(b"bytes password", hasher=CHEAP)
    with pytest.raises(TypeError):
        password_problems(None)


@pytest.mark.parametrize(
    ("password", "expected"),
    [
        (GOOD, []),
        ("correct horse battery staple", []),
        ("Zw8#kq2!Lp0x", []),
        ("fietsenstalling-oost", []),
        ("a1b2c3d4e5f", ["too_short"]),
        ("", ["too_short"]),
        ("kort", ["too_short"]),
        (LONG[:MAX_LENGTH], []),
        (LONG[: MAX_LENGTH + 1], ["too_long"]),
        ("wachtwoord123", ["common"]),
        ("WACHTWOORD1234", ["common"]),
        ("Wachtwoord2024!", ["common"]),
        ("P@ssw0rd12345", ["common"]),
        ("welkom123456", ["common"]),
        ("!!Welkom2025!!", ["common"]),
        ("passwordpassword", ["common"]),
        ("wachtwoordwachtwoord", ["common"]),
        ("aaaaaaaaaaaa", ["repetitive"]),
        ("abababababab", ["repetitive"]),
        ("abcdabcdabcd", ["repetitive"]),
        ("aaaaaaaaaaab", ["repetitive"]),
        ("123456789012", ["common", "sequential"]),
        ("qwertyuiopas", ["sequential"]),
        ("zyxwvutsrqpon", ["sequential"]),
        ("Buurtpeil-is-leuk!", ["contains_context"]),
    ],
)
def test_policy_examples(password, expected):
    assert password_problems(password) == expected


def test_policy_counts_code_points_after_normalisation():
    twelve = "éüàöçñëïôûâî"  # 12 characters, 24 bytes in UTF-8, 24 code points in NFD
    assert password_problems(twelve) == []
    assert password_problems(unicodedata.normalize("NFD", twelve)) == []
    assert password_problems(unicodedata.normalize("NFD", twelve[:-1])) == ["too_short"]


def test_policy_refuses_the_email_local_part_and_its_pieces():
    email = "Jan.deVries+panel@example.nl"
    assert password_problems("mijn jan.devries+panel wachtwoord", email=email) == ["contains_email"]
    assert password_problems("zomer bij devries thuis", email=email) == ["contains_email"]
    assert password_problems("zomer bij PANEL thuis", email=email) == ["contains_email"]
    # pieces shorter than 4 characters are not checked; the domain is not checked
    assert password_problems("januari in de wijk", email=email) == []
    assert password_problems("example lantaarnpaal", email=email) == []
    assert password_problems("met bob onderweg", email="bob@example.nl") == ["contains_email"]


def test_policy_refuses_context_words_given_by_the_caller():
    assert password_problems("zomer in Utrecht 2025", context=["Utrecht"]) == ["contains_context"]
    assert password_problems("zomer in de stad 2025", context=["Utrecht", "GM"]) == []


def test_every_problem_has_a_message():
    codes = set()
    for password in ("", "x" * 200, "wachtwoord123", "aaaaaaaaaaaa", "qwertyuiopas"):
        codes.update(password_problems(password, email="aaaa@x.nl"))
    codes.update(password_problems("buurtpeil123456"))
    assert codes == set(PASSWORD_PROBLEMS)
    assert MIN_LENGTH == 12 and MAX_LENGTH == 128


def test_the_common_list_holds_only_passwords_long_enough_to_matter():
    assert len(passwords.COMMON_PASSWORDS) >= 30
    assert all(len(p) >= MIN_LENGTH for p in passwords.COMMON_PASSWORDS)
    assert "wachtwoord123" in passwords.COMMON_PASSWORDS
