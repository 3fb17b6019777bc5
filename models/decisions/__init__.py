"""Decision rules as data, the pure evaluator, arms and the human-fallback threshold.

Shared by the server's decision service and edges that decide in process. A leaf package of
the ``models`` room: the catalogue comes in as arguments, never by import.
"""

from .actions import HUMAN, PRICING_KINDS, Action, ActionKind
from .arms import arm_position, assign_arm
from .calibration import error_upper_bound, fit_threshold
from .compile import CompiledRule
from .evaluator import DecisionPolicy, FallbackReason, FiredRule, Outcome, Signals
from .names import (
    CHANNELS,
    SIGNAL_LABELS,
    field_variable,
    probability_variable,
    signal_variable,
)
from .policy import (
    DEFAULT_POLICY_PATH,
    Arm,
    Experiment,
    Fallback,
    Policy,
    PolicyError,
    Rule,
    parse_policy,
)
from .wire import (
    ArmKpis,
    DecisionOut,
    DecisionRequest,
    ExperimentReport,
    FiredRuleOut,
    OutcomeTotals,
    OutcomeUpload,
    SignalIn,
)

__all__ = [
    "CHANNELS",
    "DEFAULT_POLICY_PATH",
    "HUMAN",
    "PRICING_KINDS",
    "SIGNAL_LABELS",
    "Action",
    "ActionKind",
    "Arm",
    "ArmKpis",
    "CompiledRule",
    "DecisionOut",
    "DecisionPolicy",
    "DecisionRequest",
    "Experiment",
    "ExperimentReport",
    "Fallback",
    "FallbackReason",
    "FiredRule",
    "FiredRuleOut",
    "Outcome",
    "OutcomeTotals",
    "OutcomeUpload",
    "Policy",
    "PolicyError",
    "Rule",
    "SignalIn",
    "Signals",
    "arm_position",
    "assign_arm",
    "error_upper_bound",
    "field_variable",
    "fit_threshold",
    "parse_policy",
    "probability_variable",
    "signal_variable",
]
