"""The secret key test servers seal job secrets with (tests of rotation make their own)."""

from __future__ import annotations

from batchyard.server.db.job_codec import SecretBox
from batchyard.server.secrets_crypto import KeyRing, SecretKey

TEST_KEY = SecretKey("test", bytes(range(32)))
TEST_KEYS_ENV = {"BATCHYARD_SECRET_KEYS": TEST_KEY.line()}
"""For `batchyard server` processes on the suite's databases."""


def sealing_box() -> SecretBox:
    return SecretBox(KeyRing([TEST_KEY]))
