"""The ``fedprofile`` command line: composes each room's commands, nothing else.

Rooms own their commands (``client`` the edge and scrub commands, ``server`` serve and audit,
``privacy`` epsilon, ``simulations`` demo and simulate). This module mounts them, configures
logging once, and turns room errors into one-line messages and the exit codes of
``fedprofile.exit_codes``.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence

import click
import typer
from pydantic import ValidationError

from .exit_codes import ExitCode

logger = logging.getLogger(__name__)

_QUIET_LOGGERS = (
    "flwr",
    "ray",
    "presidio-analyzer",
    "presidio_analyzer",
    "jieba",
    "opacus",
    "uvicorn.access",
    "httpx",
    "alembic",
)


def _configure_logging(verbose: int) -> None:
    """Set up stderr logging for this process (entry points only, H8)."""
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", force=True)
    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(max(level, logging.WARNING))


def _privacy_env() -> None:
    """Switch off Flower telemetry and update checks: a privacy product does not phone home."""
    os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")
    os.environ.setdefault("FLWR_DISABLE_UPDATE_CHECK", "1")
    os.environ.setdefault("FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION", "1")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


#: The top-level commands, in help order.
COMMANDS = (
    "demo", "serve", "edge", "scrub", "privacy", "simulate", "train", "audit", "retention",
    "token", "deploy", "identity", "decide",
)  # fmt: skip


def build_app(command: str | None = None) -> typer.Typer:
    """Build the umbrella application from the rooms' commands.

    Parameters
    ----------
    command : str or None
        The top-level command about to run: only its room's modules are imported (the
        others pull in torch, Flower or the web app, seconds of start-up). ``None`` or an
        unknown name registers every command (help, usage errors).

    Returns
    -------
    typer.Typer
        The ``fedprofile`` application.
    """
    wanted = {command} if command in COMMANDS else set(COMMANDS)
    app = typer.Typer(
        name="fedprofile",
        help="Privacy-first federated / on-device user profiling for customer service.",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        add_completion=False,
        context_settings={"help_option_names": ["-h", "--help"]},
    )

    @app.callback()
    def _root(
        verbose: int = typer.Option(
            0, "--verbose", "-v", count=True, help="More log output (-v info, -vv debug)."
        ),
    ) -> None:
        """Privacy-first federated / on-device user profiling for customer service."""
        _configure_logging(verbose)

    for name in COMMANDS:
        if name in wanted:
            _REGISTER[name](app)
    return app


def _register_demo(app: typer.Typer) -> None:
    from simulations.cli import demo_command

    app.command("demo")(demo_command)


def _register_serve(app: typer.Typer) -> None:
    from server.cli import serve_command

    app.command("serve")(serve_command)


def _register_edge(app: typer.Typer) -> None:
    from client.cli import edge_app

    app.add_typer(edge_app, name="edge", help="One edge's lifecycle: init, ingest, profile, sync.")


def _register_scrub(app: typer.Typer) -> None:
    from client.scrub import scrub_command

    app.command("scrub")(scrub_command)


def _register_privacy(app: typer.Typer) -> None:
    from client.ledger_cli import ledger_command
    from privacy.cli import epsilon_command

    privacy_app = typer.Typer(
        help="Differential-privacy accounting.", no_args_is_help=True, add_completion=False
    )
    privacy_app.command("epsilon")(epsilon_command)
    privacy_app.command("ledger")(ledger_command)
    app.add_typer(privacy_app, name="privacy")


def _register_simulate(app: typer.Typer) -> None:
    from simulations.cli import simulate_command

    app.command("simulate")(simulate_command)


def _register_train(app: typer.Typer) -> None:
    from simulations.train_cli import train_command

    app.command("train")(train_command)


def _register_audit(app: typer.Typer) -> None:
    from server.cli import audit_app

    app.add_typer(audit_app, name="audit", help="Tamper-evident audit log.")


def _register_retention(app: typer.Typer) -> None:
    from server.retention_cli import retention_app

    app.add_typer(
        retention_app, name="retention", help="Delete fields past their catalogued retention."
    )


def _register_token(app: typer.Typer) -> None:
    from server.token_cli import token_app

    app.add_typer(token_app, name="token", help="Issue named bearer tokens (bootstrap).")


def _register_deploy(app: typer.Typer) -> None:
    from simulations.deploy_cli import deploy_app

    app.add_typer(
        deploy_app, name="deploy", help="Deployment helpers: TLS certificates and SuperNode keys."
    )


def _register_identity(app: typer.Typer) -> None:
    from client.linkage_cli import encode_command
    from server.identity.linkage_cli import link_command

    identity_app = typer.Typer(
        help="Privacy-preserving record linkage: keyed Bloom-filter encodings.",
        no_args_is_help=True,
        add_completion=False,
    )
    identity_app.command("encode")(encode_command)
    identity_app.command("link")(link_command)
    app.add_typer(identity_app, name="identity")


def _register_decide(app: typer.Typer) -> None:
    from client.decisions.calibrate_cli import calibrate_command
    from server.decisions.batch_cli import decide_app

    if not any(c.name == "calibrate" for c in decide_app.registered_commands):
        decide_app.command("calibrate")(calibrate_command)
    app.add_typer(
        decide_app, name="decide", help="Batch proactive-service and risk-alert triggers."
    )


_REGISTER = {
    "demo": _register_demo,
    "serve": _register_serve,
    "edge": _register_edge,
    "scrub": _register_scrub,
    "privacy": _register_privacy,
    "simulate": _register_simulate,
    "train": _register_train,
    "audit": _register_audit,
    "retention": _register_retention,
    "token": _register_token,
    "deploy": _register_deploy,
    "identity": _register_identity,
    "decide": _register_decide,
}


def _command_of(args: Sequence[str]) -> str | None:
    """Return the top-level command in ``args`` (the root options take no values)."""
    return next((a for a in args if not a.startswith("-")), None)


def _exit_code_for(exc: BaseException) -> ExitCode:
    """Map a room error to its exit code (base classes, most specific first)."""
    from client import ClientError, ServerUnavailableError
    from consent import ConsentError
    from privacy import PrivacyError
    from server import ServerError
    from simulations import SimulationsError

    if isinstance(exc, ServerUnavailableError):
        return ExitCode.SERVER_ERROR
    if isinstance(exc, ConsentError):
        return ExitCode.CONSENT_ERROR
    if isinstance(exc, PrivacyError):
        return ExitCode.PRIVACY_ERROR
    if isinstance(exc, ClientError):
        return ExitCode.EDGE_ERROR
    if isinstance(exc, ServerError):
        return ExitCode.SERVER_ERROR
    if isinstance(exc, SimulationsError):
        return ExitCode.SIMULATION_ERROR
    if isinstance(exc, ValidationError):
        return ExitCode.CONFIG_ERROR
    return ExitCode.INTERNAL_ERROR


def _one_line(exc: BaseException) -> str:
    """Return a one-line reason (room errors never carry raw PII, by construction)."""
    if isinstance(exc, ValidationError):
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'settings'}: {e['msg']}" for e in exc.errors()
        )
        return f"invalid settings: {problems}"
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return the process exit code.

    Parameters
    ----------
    argv : Sequence[str] or None
        Arguments without the program name; ``None`` reads ``sys.argv``.

    Returns
    -------
    int
        An ``ExitCode`` value.
    """
    _privacy_env()
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        app = build_app(_command_of(args))
        result = app(args=args, prog_name="fedprofile", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.exceptions.Abort:
        sys.stderr.write("fedprofile: interrupted\n")
        return int(ExitCode.INTERRUPTED)
    except click.ClickException as exc:
        exc.show()
        return int(ExitCode.USAGE_ERROR) if isinstance(exc, click.UsageError) else exc.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("fedprofile: interrupted\n")
        return int(ExitCode.INTERRUPTED)
    except Exception as exc:  # noqa: BLE001 - the one place errors become exit codes
        code = _exit_code_for(exc)
        if code is ExitCode.INTERNAL_ERROR:
            # Foreign exceptions may quote data; print only their type (invariant 7).
            sys.stderr.write(f"fedprofile: internal error ({type(exc).__name__}); rerun with -vv\n")
            logger.debug("internal error", exc_info=True)
        else:
            sys.stderr.write(f"fedprofile: error: {_one_line(exc)}\n")
        return int(code)
    return int(result) if isinstance(result, int) else int(ExitCode.OK)
