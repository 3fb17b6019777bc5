"""The audit vocabulary: what an entry's ``action`` and ``outcome`` may say.

Each member has help text (shown in ``docs/api.md`` and checked by the architecture tests), so
an officer reading the log knows what every entry means.
"""

from __future__ import annotations

from enum import StrEnum


class AuditAction(StrEnum):
    """What was done."""

    EDGE_REGISTER = "edge.register"
    CONSENT_RECORD = "consent.record"
    PROFILE_WRITE = "profile.write"
    PROFILE_READ = "profile.read"
    LEDGER_REPORT = "ledger.report"
    DSR_CREATE = "dsr.create"
    DSR_VERIFY = "dsr.verify"
    DSR_APPROVE = "dsr.approve"
    DSR_REJECT = "dsr.reject"
    DSR_START = "dsr.start"
    DSR_COMPLETE = "dsr.complete"
    DSR_EXPORT = "dsr.export"
    SUBJECT_ERASE = "subject.erase"
    KEY_DESTROY = "key.destroy"
    SUBJECT_RESTRICT = "subject.restrict"
    SUBJECT_UNRESTRICT = "subject.unrestrict"
    FIELD_RECTIFY = "field.rectify"
    RETENTION_PURGE = "retention.purge"
    SUBJECT_ALIAS = "subject.alias"
    TENANT_REKEY = "tenant.rekey"
    NOTICE_PUBLISH = "notice.publish"
    CONSENT_VIEW = "consent.view"
    CONSENT_RECEIPT = "consent.receipt"
    AUDIT_EXPORT = "audit.export"
    PERSONALIZATION_SET = "personalization.set"
    TOKEN_ISSUE = "token.issue"
    TOKEN_REVOKE = "token.revoke"
    CONSOLE_LOGIN = "console.login"
    CONSOLE_LOGOUT = "console.logout"
    CONSOLE_LOOKUP = "console.lookup"
    CONSOLE_VERIFY = "console.verify"
    CONSOLE_EXPORT = "console.export"
    IDENTITY_TOKENS = "identity.tokens"
    IDENTITY_LINK = "identity.link"
    IDENTITY_UNLINK = "identity.unlink"
    IDENTITY_MERGE = "identity.merge"
    IDENTITY_DETACH = "identity.detach"
    IDENTITY_UNDO = "identity.undo"
    IDENTITY_ENCODINGS = "identity.encodings"
    IDENTITY_REVIEW = "identity.review"
    AUTH_THROTTLE = "auth.throttle"
    DECISION_MAKE = "decision.make"
    DECISION_REFUSAL = "decision.refusal"
    DECISION_TRIGGER = "decision.trigger"
    OUTCOME_REPORT = "outcome.report"


class AuditOutcome(StrEnum):
    """How it ended."""

    ACCEPTED = "accepted"
    REFUSED = "refused"
    REPLAYED = "replayed"
    CONFLICT = "conflict"
    NOT_FOUND = "not_found"


ACTION_HELP: dict[AuditAction, str] = {
    AuditAction.EDGE_REGISTER: "an edge was registered and issued a bearer token",
    AuditAction.CONSENT_RECORD: (
        "one batch of consent events from an edge, with recorded/duplicate counts and the "
        "number of profile fields purged because no granted purpose allows them any more; "
        "one entry per subject in the batch"
    ),
    AuditAction.PROFILE_WRITE: "an edge's upload of profile fields for one subject and purpose",
    AuditAction.PROFILE_READ: "a read of one subject's profile for a stated purpose",
    AuditAction.LEDGER_REPORT: "an edge reported its differential-privacy ledger for a model",
    AuditAction.DSR_CREATE: (
        "a data-subject request was received (by the subject, or recorded by an officer)"
    ),
    AuditAction.DSR_VERIFY: "an officer started verifying a request's identity and scope",
    AuditAction.DSR_APPROVE: (
        "an officer approved a request (erasure needs two different officers; detail counts "
        "the approvals so far)"
    ),
    AuditAction.DSR_REJECT: "an officer rejected a request, with a stated reason (PIPL Art. 50)",
    AuditAction.DSR_START: "execution of an approved request began",
    AuditAction.DSR_COMPLETE: "a request was carried out; detail holds its evidence (counts, ids)",
    AuditAction.DSR_EXPORT: "a signed access/export document was downloaded",
    AuditAction.SUBJECT_ERASE: (
        "a subject was erased from every table; detail holds the erasure receipt id, the "
        "receipt's salted subject commitment and row counts, never the pseudonym"
    ),
    AuditAction.KEY_DESTROY: (
        "a subject's data key was destroyed (crypto-shredding); detail names the master key "
        "to retire and the SHA-256 of the destroyed wrapped key"
    ),
    AuditAction.SUBJECT_RESTRICT: "processing of a subject was restricted (kept, not used)",
    AuditAction.SUBJECT_UNRESTRICT: "a subject's restriction was lifted",
    AuditAction.FIELD_RECTIFY: (
        "a field was corrected or deleted on the subject's request and suppressed for uploads"
    ),
    AuditAction.RETENTION_PURGE: (
        "the retention job deleted fields past their catalogued retention: one entry per "
        "subject (field names) and one summary entry (counts per field)"
    ),
    AuditAction.SUBJECT_ALIAS: (
        "a tenant key rotation renamed a subject: the entry names the new pseudonym and holds "
        "a salted commitment of the old one (entries before it keep the old pseudonym)"
    ),
    AuditAction.TENANT_REKEY: (
        "one batch of an edge's re-keying mapping was applied: tenant key ids and counts of "
        "subjects renamed, already renamed and unknown"
    ),
    AuditAction.NOTICE_PUBLISH: (
        "a compliance officer published a privacy-notice version; a material one pauses older "
        "grants of its purposes until renewed (detail counts the consents needing renewal)"
    ),
    AuditAction.PERSONALIZATION_SET: (
        "a subject turned personalization off (its purposes withdrawn, fields purged) or "
        "granted personalization purposes again (PIPL Art. 24)"
    ),
    AuditAction.TOKEN_ISSUE: (
        "an admin issued a bearer token for a role and holder (the token itself is never logged)"
    ),
    AuditAction.TOKEN_REVOKE: "an admin revoked a bearer token",
    AuditAction.CONSOLE_LOGIN: (
        "someone signed in to the compliance console (refused: the token's role may not use "
        "it; detail names the role, never the token)"
    ),
    AuditAction.CONSOLE_LOGOUT: "an officer signed out of the compliance console",
    AuditAction.CONSOLE_LOOKUP: (
        "an officer looked up one subject's consent history and receipts in the console"
    ),
    AuditAction.CONSOLE_VERIFY: (
        "an officer started a verification of the audit log from the console"
    ),
    AuditAction.CONSOLE_EXPORT: (
        "an officer downloaded a signed export of an audit-log range from the console "
        "(detail: the range)"
    ),
    AuditAction.IDENTITY_TOKENS: (
        "one batch of keyed identity tokens from an edge: new and known pairs, refused "
        "pseudonyms, links made and hub tokens met (no pseudonym, no identifier)"
    ),
    AuditAction.IDENTITY_LINK: (
        "a pseudonym joined or moved to a person, with the evidence: kinds and prefixes of "
        "the shared keyed tokens, or an officer's merge"
    ),
    AuditAction.IDENTITY_UNLINK: "a pseudonym left its person (split, hub, undo, erasure)",
    AuditAction.IDENTITY_MERGE: "an officer merged two pseudonyms into one person (reason)",
    AuditAction.IDENTITY_DETACH: (
        "an officer detached a pseudonym from every automatic link (a split; reason)"
    ),
    AuditAction.IDENTITY_UNDO: "an officer undid an earlier merge or detach decision",
    AuditAction.IDENTITY_ENCODINGS: (
        "one batch of keyed quasi-identifier encodings from an edge: stored, unchanged and "
        "refused counts, new probabilistic matches and review pairs"
    ),
    AuditAction.IDENTITY_REVIEW: (
        "an officer accepted or rejected a probabilistic pair (candidate id, status, score)"
    ),
    AuditAction.AUTH_THROTTLE: (
        "a client sent too many wrong tokens and is refused for a while (keyed hash of its "
        "address, failures, window and lockout in seconds); one entry per lockout"
    ),
    AuditAction.DECISION_MAKE: (
        "an automated decision (routing, proactive service, risk alert) or its human "
        "fallback: decision id, purpose, action, rules that held, field names read, "
        "confidence, arm; appended in batches after the decision row is committed"
    ),
    AuditAction.DECISION_REFUSAL: (
        "a subject refused (or accepted again) solely automated decisions (PIPL Art. 24)"
    ),
    AuditAction.DECISION_TRIGGER: (
        "a batch decision run (decide run): purpose, period, persons evaluated, triggers "
        "created and already delivered"
    ),
    AuditAction.OUTCOME_REPORT: (
        "an edge reported contact-outcome totals per experiment arm and day (counts only)"
    ),
}

OUTCOME_HELP: dict[AuditOutcome, str] = {
    AuditOutcome.ACCEPTED: "the request was carried out",
    AuditOutcome.REFUSED: "the policy refused the request; nothing was stored or returned",
    AuditOutcome.REPLAYED: "a retry with a known idempotency key; the stored answer was resent",
    AuditOutcome.CONFLICT: "an idempotency key reused with a different body; nothing stored",
    AuditOutcome.NOT_FOUND: "the subject is unknown to the server",
}
