from __future__ import annotations

import pytest

from lma_bot.crypto import SecretBox, SecretDecryptError, generate_key


def test_roundtrip_and_ciphertext_hides_the_secret() -> None:
    box = SecretBox([generate_key()])
    token = box.encrypt("xoxb-secret-token")
    assert "xoxb" not in token
    assert box.decrypt(token) == "xoxb-secret-token"
    assert box.decrypt_json(box.encrypt_json({"signing_key": "k"})) == {"signing_key": "k"}


def test_rotation_reencrypts_under_the_newest_key() -> None:
    old, new = generate_key(), generate_key()
    token = SecretBox([old]).encrypt("smtp-password")
    both = SecretBox([new, old])
    assert both.decrypt(token) == "smtp-password"
    rotated = both.rotate(token)
    assert SecretBox([new]).decrypt(rotated) == "smtp-password"
    with pytest.raises(SecretDecryptError):
        SecretBox([old]).decrypt(rotated)


def test_wrong_key_is_a_clear_error() -> None:
    token = SecretBox([generate_key()]).encrypt("x")
    with pytest.raises(SecretDecryptError, match="LMA_ENCRYPTION_KEYS"):
        SecretBox([generate_key()]).decrypt(token)
