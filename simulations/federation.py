"""Run a federation of edge directories on the Flower Simulation Engine (Ray).

One virtual SuperNode per edge directory under ``data_dir``; node ``i`` trains on the
``i``-th edge directory sorted by name (``client.app`` resolves it). ``run_simulation``
passes no run config to the apps, so the run config is captured when the apps are built.
"""

from __future__ import annotations

import logging
import os
import tempfile
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from client import build_client_app
from models import RunConfig
from server import build_server_app

from .errors import FederationError

if TYPE_CHECKING:
    from flwr.clientapp import ClientApp
    from flwr.serverapp import ServerApp

logger = logging.getLogger(__name__)


def _tame_flower_logging() -> None:
    """Keep Flower at our process's log level (importing flwr sets its logger to DEBUG).

    Flower prints through its own console handler; it must not also propagate to ours.
    """
    flower = logging.getLogger("flwr")
    verbose = logging.getLogger().getEffectiveLevel() < logging.WARNING
    # Without -v only Flower's errors show (its run_simulation deprecation notice is noise
    # here: the Simulation Engine is what we mean to use).
    flower.setLevel(logging.getLogger().getEffectiveLevel() if verbose else logging.ERROR)
    flower.propagate = False


def edge_dirs(data_dir: Path) -> list[Path]:
    """Return the edge directories of ``data_dir`` (those holding an ``edge.sqlite``), sorted."""
    return sorted(p for p in Path(data_dir).iterdir() if (p / "edge.sqlite").is_file())


def run_federation(
    *,
    data_dir: Path,
    rounds: int,
    database_url: str = "",
    run_config: dict[str, Any] | None = None,
    num_cpus: int | None = None,
) -> None:
    """Train the behaviour model across every edge of ``data_dir`` with Flower + Ray.

    Parameters
    ----------
    data_dir : Path
        Directory of edge directories.
    rounds : int
        Federated rounds.
    database_url : str
        Server database to record the training run in (empty: do not record).
    run_config : dict[str, Any] or None
        Further run-config values (hyphenated keys of ``[tool.flwr.app.config]``).
    num_cpus : int or None
        CPUs Ray may use (default: all, at most 2 per the machine's size).

    Raises
    ------
    FederationError
        If there are no edges or the simulation fails.
    """
    edges = edge_dirs(data_dir)
    if not edges:
        raise FederationError(f"no edge directories with edge.sqlite under {data_dir}")
    config: dict[str, Any] = {
        "num-server-rounds": rounds,
        "data-dir": str(Path(data_dir).resolve()),
        "database-url": database_url,
        "min-nodes": len(edges),
    }
    config.update(run_config or {})
    run_on_ray(
        server_app=build_server_app(config),
        client_app=build_client_app(config),
        num_nodes=len(edges),
        num_cpus=num_cpus,
    )


def federate(data_dir: Path, config: RunConfig) -> None:
    """Run ``run_federation`` from a typed run config over every edge of ``data_dir``.

    ``data-dir`` and ``min-nodes`` come from ``data_dir`` (every edge found must take part);
    everything else, rounds and the database included, from ``config``.

    Raises
    ------
    FederationError
        If there are no edges or the simulation fails.
    """
    run_federation(
        data_dir=data_dir,
        rounds=config.num_server_rounds,
        database_url=config.database_url,
        run_config={
            k: v for k, v in config.to_run_config().items() if k not in ("data-dir", "min-nodes")
        },
    )


def run_on_ray(
    *, server_app: ServerApp, client_app: ClientApp, num_nodes: int, num_cpus: int | None = None
) -> None:
    """Run a ServerApp and ``num_nodes`` virtual SuperNodes on the Flower Simulation Engine.

    Parameters
    ----------
    server_app : ServerApp
        The ServerApp (it runs in this process, in Flower's driver thread).
    client_app : ClientApp
        The ClientApp, run by Ray actors (one CPU each).
    num_nodes : int
        Virtual SuperNodes; node ``i`` gets node config ``partition-id = i``.
    num_cpus : int or None
        CPUs Ray may use (default: all, at most 2 per the machine's size).

    Raises
    ------
    FederationError
        If the simulation fails.
    """
    os.environ.setdefault("FLWR_HOME", tempfile.mkdtemp(prefix="fedprofile-flwr-"))
    os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")  # no GPUs; quiets a tip
    cpus = num_cpus or max(1, min(os.cpu_count() or 1, 2))
    backend_config: dict[str, Any] = {
        "client_resources": {"num_cpus": 1, "num_gpus": 0.0},
        "init_args": {
            "num_cpus": cpus,
            "num_gpus": 0,
            "include_dashboard": False,
            "logging_level": "error",
            "log_to_driver": False,
        },
    }
    from flwr.simulation import run_simulation

    _tame_flower_logging()
    logger.info("federation on Ray: %d nodes", num_nodes)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", message=".*deprecated.*")
        try:
            run_simulation(
                server_app=server_app,
                client_app=client_app,
                num_supernodes=num_nodes,
                backend_config=backend_config,
            )
        except Exception as exc:  # noqa: BLE001 - Flower wraps failures in generic errors
            raise FederationError(f"federated simulation failed: {type(exc).__name__}") from exc
