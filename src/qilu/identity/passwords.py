"""Password hashing (argon2id) and the password policy of each security profile.

Parameters: argon2id, 4 passes over 32 MiB, one lane: about twice OWASP's minimum (2 passes over
19 MiB) in both time and memory. One hash takes 65-100 ms on one core of the 2-core reference
machine (it varies with the machine's load), so each guess costs an attacker as much, and 32 MiB
per guess blunts GPUs; a busy server still signs in 10-15 people a second per core. Hashes made
with older parameters are upgraded at the holder's next sign-in.
"""

from __future__ import annotations

import string
from datetime import datetime, timedelta
from typing import Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from qilu.errors import QiluError

HASHER = PasswordHasher(time_cost=4, memory_cost=32 * 1024, parallelism=1)
# Verified when an account does not exist, so a wrong ID number takes as long as a wrong password.
DUMMY_HASH = HASHER.hash("qilu-dummy-password-for-timing")

Profile = Literal["standard", "dengbao3"]
MIN_LENGTH = 10
MAX_LENGTH = 128
DENGBAO_MAX_AGE = timedelta(days=90)
# The most used passwords in Chinese leaks (CSDN, 12306, 163) and their usual variants.
COMMON = frozenset(
    {
        "1234567890",
        "12345678910",
        "123456789a",
        "a123456789",
        "qwertyuiop",
        "1qaz2wsx3edc",
        "woaini1314",
        "woaini520",
        "5201314520",
        "password123",
        "iloveyou123",
        "0123456789",
        "1111111111",
        "aaaaaaaaaa",
        "abcd123456",
        "123456abcd",
        "qwe1234567",
        "zxcvbnm123",
    }
)


def hash_password(password: str) -> str:
    return HASHER.hash(password)


def verify_password(stored: str, password: str) -> bool:
    try:
        return HASHER.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


def check_policy(password: str, profile: Profile, personal: list[str]) -> None:
    """Refuse a password that breaks the profile's rules, naming the rule."""

    def refuse(code: str, message: str) -> QiluError:
        return QiluError(f"password.{code}", message, field="password")

    if len(password) < MIN_LENGTH:
        raise refuse("too_short", f"密码至少 {MIN_LENGTH} 个字符，当前 {len(password)} 个")
    if len(password) > MAX_LENGTH:
        raise refuse("too_long", f"密码最多 {MAX_LENGTH} 个字符")
    if password.lower() in COMMON or len(set(password)) <= 2:
        raise refuse("common", "密码过于常见或过于简单，请换一个")
    lowered = password.lower()
    for value in personal:
        if len(value) >= 4 and (value.lower() in lowered or lowered in value.lower()):
            raise refuse("personal", "密码不能包含身份号码、手机号或姓名")
    if profile == "dengbao3":
        classes = sum(
            any(c in group for c in password)
            for group in (string.ascii_lowercase, string.ascii_uppercase, string.digits)
        ) + any(not c.isalnum() for c in password)
        if classes < 3:
            raise refuse("complexity", "密码须包含大写字母、小写字母、数字、符号中的至少三类")


def is_expired(changed_at: datetime, now: datetime, profile: Profile) -> bool:
    return profile == "dengbao3" and now - changed_at > DENGBAO_MAX_AGE
