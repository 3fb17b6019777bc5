"""Low-level primitives (raw AEAD, key wrapping, key derivation): privacy-internal only.

- :mod:`.aead`: AES-256-GCM with random 96-bit nonces, associated-data framing;
- :mod:`.keywrap`: AES-256-GCM key wrapping bound to associated data;
- :mod:`.kdf`: HKDF-SHA256.

Other rooms must use the recipes exported by ``privacy`` (``privacy.crypto``);
import-linter forbids this package to every room but ``privacy``.
"""
