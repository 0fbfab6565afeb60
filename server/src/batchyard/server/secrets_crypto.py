"""Secrets at rest: AES-256-GCM under the server's keys, each ciphertext naming its key.

An operator configures one or more keys, `ID:BASE64KEY` (32 random bytes); the first
seals, every one of them opens, so a new key can be added in front of the old one and the
stored secrets re-sealed with it (`batchyard server rotate-secrets`) before the old key
goes. A key never appears in a repr, a log line or an error message; only its id does.

A sealed value is `01 | len(id) | id | nonce (12 bytes) | ciphertext and tag`; the first
bytes are authenticated as associated data. Each seal draws a fresh random nonce, so equal
secrets never give equal ciphertexts. Each key also yields, through HKDF, a separate key
for `digest` (HMAC-SHA256), which names content without revealing it (run configurations
are stored once per distinct content, addressed by that digest).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

KEY_BYTES = 32
NONCE_BYTES = 12
FORMAT = 1
KEY_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$")
_SEAL_INFO = b"batchyard secrets v1: seal"
_DIGEST_INFO = b"batchyard secrets v1: digest"


class SecretKeyError(ValueError):
    """A key specification or key file is unusable (the message never holds key bytes)."""


class UnknownKey(Exception):
    """A sealed value names a key this server is not configured with."""

    def __init__(self, key_id: str) -> None:
        super().__init__(f"sealed with key {key_id!r}, which is not configured")
        self.key_id = key_id


class BadCiphertext(Exception):
    """A sealed value is malformed or fails authentication (altered, or another key)."""


@dataclass(frozen=True)
class SecretKey:
    key_id: str
    material: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if not KEY_ID.match(self.key_id):
            raise SecretKeyError(
                f"key id {self.key_id!r}: 1 to 32 letters, digits, '.', '_' or '-'"
            )
        if len(self.material) != KEY_BYTES:
            raise SecretKeyError(f"key {self.key_id!r} must be {KEY_BYTES} bytes")

    def line(self) -> str:
        """The key as `ID:BASE64KEY` (for a key file; never for a log)."""
        return f"{self.key_id}:{base64.b64encode(self.material).decode()}"


def new_key(key_id: str) -> SecretKey:
    return SecretKey(key_id, os.urandom(KEY_BYTES))


def _parse_one(item: str) -> SecretKey:
    key_id, sep, encoded = item.strip().partition(":")
    if not sep or not key_id:
        raise SecretKeyError("a secret key is written ID:BASE64KEY")
    try:
        material = base64.b64decode(encoded.strip().encode(), validate=True)
    except (binascii.Error, ValueError):
        try:
            material = base64.urlsafe_b64decode(encoded.strip().encode())
        except (binascii.Error, ValueError):
            raise SecretKeyError(f"key {key_id!r} is not base64") from None
    if len(material) != KEY_BYTES:
        raise SecretKeyError(
            f"key {key_id!r} must be {KEY_BYTES} bytes of base64 (got {len(material)} bytes)"
        )
    return SecretKey(key_id, material)


def parse_keys(spec: str) -> tuple[SecretKey, ...]:
    """Keys from `ID:BASE64KEY[,ID:BASE64KEY...]` (commas or newlines; `#` comments)."""
    items: list[str] = []
    for line in spec.splitlines():
        line = line.split("#", 1)[0]
        items += [item for item in line.split(",") if item.strip()]
    keys = tuple(_parse_one(item) for item in items)
    if not keys:
        raise SecretKeyError("no secret key given")
    ids = [k.key_id for k in keys]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise SecretKeyError(f"secret key ids must be unique: {', '.join(duplicates)}")
    return keys


def read_key_file(path: Path) -> tuple[SecretKey, ...]:
    """The keys of a key file: one `ID:BASE64KEY` a line, the first seals."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "unreadable"
        raise SecretKeyError(f"cannot read the secret key file {path}: {reason}") from None
    try:
        return parse_keys(text)
    except SecretKeyError as exc:
        raise SecretKeyError(f"secret key file {path}: {exc}") from None


def write_new_key_file(path: Path, key: SecretKey, note: str) -> None:
    """Create `path` (mode 0600, never overwriting) holding `key`."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(
            "# Batchyard secret keys: one ID:BASE64KEY a line; the first seals, all open.\n"
            f"# {note}\n{key.line()}\n"
        )


def _derive(material: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=info).derive(material)


class KeyRing:
    """The configured keys: the first seals and digests, every one opens."""

    def __init__(self, keys: Sequence[SecretKey]) -> None:
        if not keys:
            raise SecretKeyError("no secret key given")
        ids = [k.key_id for k in keys]
        if len(set(ids)) != len(ids):
            raise SecretKeyError("secret key ids must be unique")
        self.key_ids: tuple[str, ...] = tuple(ids)
        self._aead = {k.key_id: AESGCM(_derive(k.material, _SEAL_INFO)) for k in keys}
        self._digest_key = _derive(keys[0].material, _DIGEST_INFO)
        self.header = _header(ids[0])
        """The first bytes of every value sealed with the first key."""

    def __repr__(self) -> str:
        return f"KeyRing(key_ids={list(self.key_ids)})"

    @property
    def primary(self) -> str:
        return self.key_ids[0]

    def seal(self, plaintext: bytes) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        aead = self._aead[self.primary]
        return self.header + nonce + aead.encrypt(nonce, plaintext, self.header)

    def open(self, sealed: bytes) -> bytes:
        key_id, body = split_sealed(sealed)
        aead = self._aead.get(key_id)
        if aead is None:
            raise UnknownKey(key_id)
        header = sealed[: len(sealed) - len(body)]
        try:
            return aead.decrypt(body[:NONCE_BYTES], body[NONCE_BYTES:], header)
        except InvalidTag:
            raise BadCiphertext(
                f"a value sealed with key {key_id!r} fails authentication"
            ) from None

    def digest(self, *parts: bytes) -> bytes:
        """HMAC-SHA256 of the parts (length-prefixed), under the first key's digest key."""
        mac = hmac.new(self._digest_key, digestmod=hashlib.sha256)
        for part in parts:
            mac.update(len(part).to_bytes(8, "big"))
            mac.update(part)
        return mac.digest()


def _header(key_id: str) -> bytes:
    encoded = key_id.encode()
    return bytes([FORMAT, len(encoded)]) + encoded


def split_sealed(sealed: bytes) -> tuple[str, bytes]:
    """The key id of a sealed value and what follows its header (nonce, ciphertext, tag)."""
    if len(sealed) < 2 or sealed[0] != FORMAT:
        raise BadCiphertext("not a sealed value of a known format")
    end = 2 + sealed[1]
    body = sealed[end:]
    if len(body) < NONCE_BYTES + 16:
        raise BadCiphertext("a sealed value is truncated")
    try:
        return sealed[2:end].decode("ascii"), body
    except UnicodeDecodeError:
        raise BadCiphertext("a sealed value names no valid key id") from None
