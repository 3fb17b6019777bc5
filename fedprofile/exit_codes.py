"""Exit codes of the ``fedprofile`` command line: one table, each code with help text."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Process exit codes."""

    OK = 0
    INTERNAL_ERROR = 1
    USAGE_ERROR = 2
    INPUT_REJECTED = 3
    CONSENT_ERROR = 4
    PRIVACY_ERROR = 5
    SERVER_ERROR = 6
    AUDIT_BROKEN = 7
    CONFIG_ERROR = 8
    EDGE_ERROR = 9
    SIMULATION_ERROR = 10
    INTERRUPTED = 130


HELP: dict[ExitCode, str] = {
    ExitCode.OK: "Success.",
    ExitCode.INTERNAL_ERROR: "Unexpected internal error; rerun with -v and report it.",
    ExitCode.USAGE_ERROR: "Bad command-line usage (unknown option, missing or invalid argument).",
    ExitCode.INPUT_REJECTED: "Some input lines were rejected; good lines were kept (see report).",
    ExitCode.CONSENT_ERROR: "The consent catalogue, a purpose or a consent record is invalid.",
    ExitCode.PRIVACY_ERROR: "A privacy check failed (budget exhausted, key file unusable, ...).",
    ExitCode.SERVER_ERROR: "The server was unreachable or refused the request.",
    ExitCode.AUDIT_BROKEN: "Audit-log verification found a broken or tampered entry.",
    ExitCode.CONFIG_ERROR: "Settings are invalid (environment variables or files).",
    ExitCode.EDGE_ERROR: "The edge is not initialised or its data cannot be used.",
    ExitCode.SIMULATION_ERROR: "A demo, simulation or deployment step could not run.",
    ExitCode.INTERRUPTED: "Interrupted by the user (Ctrl-C).",
}
