"""Secrets at rest: MultiFernet over ``LMA_ENCRYPTION_KEYS`` (newest key first).

Tokens, webhook secrets and SMTP passwords are stored only as Fernet tokens. Decryption tries every key,
encryption uses the newest, and :meth:`SecretBox.rotate` re-encrypts a token under the newest key.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class SecretDecryptError(Exception):
    """A stored secret could not be decrypted with any configured key."""


class SecretBox:
    def __init__(self, keys: Sequence[str]) -> None:
        if not keys:
            raise ValueError("at least one Fernet key is required")
        self._fernet = MultiFernet([Fernet(k.encode()) for k in keys])

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            raise SecretDecryptError(
                "stored secret does not decrypt with any LMA_ENCRYPTION_KEYS key"
            ) from None

    def encrypt_json(self, value: dict[str, Any]) -> str:
        return self.encrypt(json.dumps(value, separators=(",", ":"), sort_keys=True))

    def decrypt_json(self, token: str) -> dict[str, Any]:
        value = json.loads(self.decrypt(token))
        if not isinstance(value, dict):
            raise SecretDecryptError("stored secret is not a JSON object")
        return value

    def rotate(self, token: str) -> str:
        """Return ``token`` re-encrypted under the newest key (same plaintext)."""
        try:
            return self._fernet.rotate(token.encode()).decode()
        except InvalidToken:
            raise SecretDecryptError(
                "stored secret does not decrypt with any LMA_ENCRYPTION_KEYS key"
            ) from None


def generate_key() -> str:
    return Fernet.generate_key().decode()
