"""Staff passwords: argon2id hashes and the password policy (NIST SP 800-63B).

Passwords are NFKC-normalised before hashing and checking (800-63B §5.1.1.2), so the same
password typed on two keyboards (composed or decomposed é) verifies. Length is counted in
code points after normalisation.

``verify_password`` answers False for a wrong password and never raises for one; it raises
``argon2.exceptions.InvalidHashError`` (a ValueError) when the *stored* hash is not an argon2id
hash or is corrupt — that is a data fault to log and fix, not a failed login; access is denied
either way. Pass ``None`` as the hash when the account does not exist: the same work is done
against a dummy hash and False comes back, so response time does not reveal which e-mail
addresses have an account.

Hashing takes tens of milliseconds of CPU in C; in an eventlet service it blocks the hub for
that long, so call it through ``eventlet.tpool.execute`` where logins are frequent.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

# OWASP Password Storage Cheat Sheet (current): argon2id with at least 19 MiB of memory, an
# iteration count of 2 and 1 degree of parallelism. We take exactly that: it is the configuration
# OWASP leads with, one login costs ~19 MiB and tens of ms of one core, and staff logins are
# rate-limited, so a burst of logins cannot starve a small (2-core) node. Raise these together
# with needs_rehash() and hashes upgrade at the next login.
TIME_COST = 2
MEMORY_COST = 19 * 1024  # KiB = 19 MiB
PARALLELISM = 1
HASH_LEN = 32
SALT_LEN = 16

ARGON2ID_PREFIX = "$argon2id$"

MIN_LENGTH = 12  # 800-63B asks at least 8; we choose 12
MAX_LENGTH = 128  # 800-63B asks to allow at least 64

# Policy problem codes and their messages (for the gateway's field errors).
PASSWORD_PROBLEMS = {
    "too_short": f"use at least {MIN_LENGTH} characters",
    "too_long": f"use at most {MAX_LENGTH} characters",
    "common": "this password is too common; choose one that is harder to guess",
    "repetitive": "this password repeats the same few characters",
    "sequential": "this password is a simple sequence (like 1234… or qwerty…)",
    "contains_email": "the password may not contain your e-mail address",
    "contains_context": "the password may not contain the name of the service or municipality",
}

# Common passwords of 12 or more characters (shorter ones already fail on length), compared
# case-insensitively with the whole password.
COMMON_PASSWORDS = frozenset(
    {
        "123456789012",
        "1234567890123",
        "123123123123",
        "111111111111",
        "qwerty123456",
        "qwertyuiop123",
        "1q2w3e4r5t6y",
        "1qaz2wsx3edc",
        "zaq12wsxcde3",
        "qazwsxedcrfv",
        "password1234",
        "password123!",
        "passwordpassword",
        "iloveyou1234",
        "welcome12345",
        "letmein12345",
        "administrator",
        "changeme1234",
        "abc123456789",
        "wachtwoord123",
        "wachtwoord1234",
        "wachtwoord12345",
        "wachtwoord123!",
        "welkom123456",
        "welkom12345!",
        "geheimwachtwoord",
        "mijnwachtwoord",
        "ikhouvanjou123",
        "voetbal12345",
        "nederland123",
        "nederland1234",
        "amsterdam123",
        "rotterdam123",
        "feyenoord1908",
        "ajaxamsterdam",
    }
)

# Words that, with only digits or symbols around them (Wachtwoord2024!, P@ssw0rd1234…), make a
# password that appears in every guessing list.
COMMON_WORDS = frozenset(
    {
        "password",
        "passw",
        "wachtwoord",
        "welkom",
        "welcome",
        "geheim",
        "secret",
        "qwerty",
        "azerty",
        "admin",
        "administrator",
        "letmein",
        "iloveyou",
        "ikhouvanjou",
        "hallo",
        "hello",
        "voetbal",
        "football",
        "ajax",
        "feyenoord",
        "nederland",
        "holland",
        "gemeente",
        "changeme",
    }
)

# Words of this service that may not be part of a password (800-63B: context-specific words).
CONTEXT_WORDS = ("buurtpeil", "burgerpanel")

_SEQUENCES = (
    "01234567890123456789",
    "abcdefghijklmnopqrstuvwxyz",
    "qwertyuiopasdfghjklzxcvbnm",
    "azertyuiopqsdfghjklmwxcvbn",
    "1qaz2wsx3edc4rfv5tgb6yhn7ujm8ik9ol0p",
)
_LEET = str.maketrans(
    {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s", "!": "i"}
)
_EDGE = re.compile(r"^[\W\d_]+|[\W\d_]+$")
_SHORT_REPEAT = re.compile(r"(.{1,4})\1+", re.DOTALL)
_WORD_REPEAT = re.compile(r"(.+?)\1+", re.DOTALL)
_EMAIL_SEPARATORS = re.compile(r"[._+\-]+")
_MIN_CONTEXT_LENGTH = 4  # shorter pieces of an e-mail address or name are not checked


@functools.cache
def production_hasher() -> PasswordHasher:
    return PasswordHasher(
        time_cost=TIME_COST,
        memory_cost=MEMORY_COST,
        parallelism=PARALLELISM,
        hash_len=HASH_LEN,
        salt_len=SALT_LEN,
        type=Type.ID,
    )


def _normalise(password: str) -> str:
    if not isinstance(password, str):
        raise TypeError("a password is a string")
    return unicodedata.normalize("NFKC", password)


def hash_password(password: str, *, hasher: PasswordHasher | None = None) -> str:
    """The PHC string ``$argon2id$v=19$m=…,t=…,p=…$salt$hash`` of the password."""
    ph = hasher or production_hasher()
    if ph.type is not Type.ID:
        raise ValueError("only argon2id hashes are made")
    return ph.hash(_normalise(password))


def verify_password(
    password_hash: str | None, password: str, *, hasher: PasswordHasher | None = None
) -> bool:
    """True if the password matches; False if not, or if ``password_hash`` is None (no such
    account: a dummy hash is verified so the time taken is the same). InvalidHashError for a
    stored hash that is not a sound argon2id hash."""
    ph = hasher or production_hasher()
    candidate = _normalise(password)
    if password_hash is None:
        password_hash = _dummy_hash(ph.time_cost, ph.memory_cost, ph.parallelism)
    if not isinstance(password_hash, str) or not password_hash.startswith(ARGON2ID_PREFIX):
        raise InvalidHashError("the stored password hash is not an argon2id hash")
    try:
        return ph.verify(password_hash, candidate)
    except VerifyMismatchError:
        return False
    except VerificationError:
        raise InvalidHashError("the stored password hash is corrupt") from None


def needs_rehash(password_hash: str, *, hasher: PasswordHasher | None = None) -> bool:
    """True if the hash was made with other parameters than the current ones: after a
    successful login, hash the password again and store the new hash."""
    return (hasher or production_hasher()).check_needs_rehash(password_hash)


@functools.cache
def _dummy_hash(time_cost: int, memory_cost: int, parallelism: int) -> str:
    ph = PasswordHasher(
        time_cost=time_cost,
        memory_cost=memory_cost,
        parallelism=parallelism,
        hash_len=HASH_LEN,
        salt_len=SALT_LEN,
        type=Type.ID,
    )
    return ph.hash("no account has this password: it only costs the same time")


def password_problems(
    password: str, *, email: str | None = None, context: Iterable[str] = ()
) -> list[str]:
    """Codes (keys of PASSWORD_PROBLEMS) of every rule the password breaks; [] if acceptable.

    NIST SP 800-63B: a length between MIN_LENGTH and MAX_LENGTH, not a common or expected
    password, not a repetition or simple sequence, not containing the e-mail address's local
    part (or its pieces of 4+ characters) or a context word (this service's name, and whatever
    the caller passes, e.g. the municipality's name). No composition rules (no "one digit, one
    capital"), no periodic change — 800-63B advises against both.
    """
    normal = _normalise(password)
    folded = normal.casefold()
    problems = []
    if len(normal) < MIN_LENGTH:
        problems.append("too_short")
    if len(normal) > MAX_LENGTH:
        problems.append("too_long")
    if not folded:
        return problems
    if _is_common(folded):
        problems.append("common")
    if len(set(folded)) <= 2 or _SHORT_REPEAT.fullmatch(folded):
        problems.append("repetitive")
    if any(folded in seq or folded in seq[::-1] for seq in _SEQUENCES):
        problems.append("sequential")
    if email and any(piece in folded for piece in _email_pieces(email)):
        problems.append("contains_email")
    words = (w.casefold() for w in (*CONTEXT_WORDS, *context))
    if any(len(w) >= _MIN_CONTEXT_LENGTH and w in folded for w in words):
        problems.append("contains_context")
    return problems


def _is_common(folded: str) -> bool:
    if folded in COMMON_PASSWORDS:
        return True
    core = _EDGE.sub("", folded)
    for word in {core, core.translate(_LEET)}:
        repeated = _WORD_REPEAT.fullmatch(word)
        if word in COMMON_WORDS or (repeated and repeated.group(1) in COMMON_WORDS):
            return True
    return False


def _email_pieces(email: str) -> set[str]:
    local = unicodedata.normalize("NFKC", email).rpartition("@")[0] or email
    local = local.casefold()
    pieces = {p for p in _EMAIL_SEPARATORS.split(local) if len(p) >= _MIN_CONTEXT_LENGTH}
    if len(local) >= 3:
        pieces.add(local)
    return pieces
