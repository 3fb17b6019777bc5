"""Privacy room: pseudonyms, key files, field encryption, PII masking, DP training, ledger.

Cheap names are imported eagerly. Heavy engines (Presidio, Opacus) are exposed lazily through
a module-level ``__getattr__`` so ``from privacy import Pseudonymizer`` stays fast on the
server. A leaf room: it imports no other fedprofile room and reads no settings.
"""

import importlib
import logging
from typing import Any

from .errors import (
    BudgetExhaustedError,
    DecryptionError,
    IdentifierError,
    KeyFileError,
    LedgerStateError,
    PrivacyError,
)
from .identifiers import IdentifierKind, normalize_identifier
from .identity_tokens import IDENTITY_TOKEN_PREFIX, IdentityTokenizer
from .keys import create_key_file, load_key_file, load_or_create_key_file
from .pseudonymize import PSEUDONYM_PREFIX, Pseudonymizer

logging.getLogger(__name__).addHandler(logging.NullHandler())

#: Lazily imported names -> defining module (relative to this package).
_LAZY: dict[str, str] = {
    "SigningKey": ".signing",
    "SIGNATURE_ALGORITHM": ".signing",
    "VerifyKey": ".signing",
    "canonical_json": ".signing",
    "verify_signed": ".signing",
    "create_signing_key_file": ".signing",
    "load_signing_key_file": ".signing",
    "load_or_create_signing_key_file": ".signing",
    "DPConfig": ".config",
    "DataKey": ".keyring",
    "FieldCipher": ".crypto",
    "MasterKey": ".keyring",
    "MasterKeyRing": ".keyring",
    "WrappedDataKey": ".keyring",
    "decrypt_record": ".crypto",
    "encrypt_record": ".crypto",
    "add_master_key": ".master_keys",
    "create_master_key_file": ".master_keys",
    "load_master_key_file": ".master_keys",
    "retire_master_keys": ".master_keys",
    "ChainedPseudonymizer": ".rekey",
    "RekeyMapping": ".rekey",
    "Rekeyer": ".rekey",
    "TenantKeyChain": ".rekey",
    "create_tenant_key_chain_file": ".rekey",
    "load_tenant_key_chain": ".rekey",
    "repseudonymize": ".rekey",
    "rotate_tenant_key_file": ".rekey",
    "save_tenant_key_chain_file": ".rekey",
    "tenant_key_id": ".rekey",
    "PIIConfig": ".config",
    "DPTrainer": ".dp",
    "PrivateTraining": ".dp",
    "resolve_mode": ".dp",
    "GradSampleRequest": ".config",
    "DetectedEntity": ".pii.detector",
    "PIIDetector": ".pii.detector",
    "ScrubResult": ".pii.detector",
    "PrivacyLedger": ".ledger",
    "Release": ".ledger",
    "compute_epsilon": ".accounting",
    "calibrate_noise_multiplier": ".calibration",
    "calibrated_dp_config": ".calibration",
    "plan_steps": ".calibration",
    "planned_schedule": ".calibration",
    "PIIConfigError": ".pii.errors",
    "RecognizerExistsError": ".pii.errors",
    "UnknownRecognizerError": ".pii.errors",
    "create_recognizer": ".pii.registry",
    "register_recognizer": ".pii.registry",
    "CUSTOMER_LINKAGE_FIELDS": ".linkage.encoder",
    "EncodedRecord": ".linkage.encoder",
    "EncodingFormatError": ".linkage.errors",
    "EncodingMismatchError": ".linkage.errors",
    "LinkageEncoder": ".linkage.encoder",
    "LinkageField": ".linkage.encoder",
    "LinkageFieldKind": ".linkage.normalize",
    "LinkageScheme": ".linkage.encoder",
    "encoded_json_line": ".linkage.wire",
    "parse_encoded_lines": ".linkage.wire",
    "read_encoded_file": ".linkage.wire",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


__all__ = [
    "BudgetExhaustedError",
    "CUSTOMER_LINKAGE_FIELDS",
    "ChainedPseudonymizer",
    "DPConfig",
    "DPTrainer",
    "DataKey",
    "DecryptionError",
    "DetectedEntity",
    "EncodedRecord",
    "EncodingFormatError",
    "EncodingMismatchError",
    "FieldCipher",
    "GradSampleRequest",
    "IDENTITY_TOKEN_PREFIX",
    "IdentifierError",
    "IdentifierKind",
    "IdentityTokenizer",
    "KeyFileError",
    "LedgerStateError",
    "LinkageEncoder",
    "LinkageField",
    "LinkageFieldKind",
    "LinkageScheme",
    "MasterKey",
    "MasterKeyRing",
    "PIIConfig",
    "PIIConfigError",
    "PIIDetector",
    "PSEUDONYM_PREFIX",
    "PrivacyError",
    "PrivacyLedger",
    "PrivateTraining",
    "Pseudonymizer",
    "RecognizerExistsError",
    "RekeyMapping",
    "Rekeyer",
    "Release",
    "SIGNATURE_ALGORITHM",
    "ScrubResult",
    "SigningKey",
    "TenantKeyChain",
    "UnknownRecognizerError",
    "VerifyKey",
    "WrappedDataKey",
    "add_master_key",
    "calibrate_noise_multiplier",
    "calibrated_dp_config",
    "canonical_json",
    "compute_epsilon",
    "create_key_file",
    "create_master_key_file",
    "create_recognizer",
    "create_signing_key_file",
    "create_tenant_key_chain_file",
    "decrypt_record",
    "encoded_json_line",
    "encrypt_record",
    "load_key_file",
    "load_master_key_file",
    "load_or_create_key_file",
    "load_or_create_signing_key_file",
    "load_signing_key_file",
    "load_tenant_key_chain",
    "normalize_identifier",
    "parse_encoded_lines",
    "plan_steps",
    "planned_schedule",
    "read_encoded_file",
    "register_recognizer",
    "repseudonymize",
    "resolve_mode",
    "retire_master_keys",
    "rotate_tenant_key_file",
    "save_tenant_key_chain_file",
    "tenant_key_id",
    "verify_signed",
]
