"""``fedprofile decide calibrate``: fit the policy's human-fallback threshold on an edge."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from consent import FieldCatalogue, load_default_catalogue, load_default_purposes
from models.decisions import DEFAULT_POLICY_PATH, DecisionPolicy, PolicyError

from ..config import ClientSettings
from ..errors import EdgeNotInitialisedError
from ..store import STORE_FILENAME, EdgeStore
from .calibrate import calibrate_on_edge, write_calibrated_policy


def calibrate_command(
    out: Annotated[Path, typer.Option("--out", help="Where to write the calibrated policy")],
    edge_dir: Annotated[
        Path | None, typer.Option("--edge-dir", help="The edge (default: FEDPROFILE_EDGE_DIR)")
    ] = None,
    policy: Annotated[
        Path | None, typer.Option("--policy", help="Policy to calibrate (default: shipped)")
    ] = None,
    target_error: Annotated[
        float,
        typer.Option("--target-error", min=0.001, max=0.5, help="Error rate automated "
                     "live-signal decisions may have (upper 95% bound)"),
    ] = 0.1,
    catalogue_path: Annotated[
        Path | None, typer.Option("--catalogue", help="Field catalogue (default: shipped)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON")] = False,
) -> None:
    """Fit the human-fallback threshold on this edge's held-out labelled messages."""
    source = policy or DEFAULT_POLICY_PATH
    catalogue = (
        load_default_catalogue() if catalogue_path is None else FieldCatalogue.load(catalogue_path)
    )
    try:
        loaded = DecisionPolicy.load(
            source, field_purposes={f.name: [p.value for p in f.purposes] for f in catalogue},
            purposes=[p.name.value for p in load_default_purposes()],
        )  # fmt: skip
    except PolicyError as error:
        raise typer.BadParameter(str(error), param_hint="--policy") from None
    settings = ClientSettings() if edge_dir is None else ClientSettings(edge_dir=edge_dir)
    if not (settings.edge_dir / STORE_FILENAME).exists():
        raise EdgeNotInitialisedError(settings.edge_dir)
    with EdgeStore.for_edge_dir(settings.edge_dir) as store:
        result = calibrate_on_edge(
            store, loaded, target_error=target_error, at=datetime.now(UTC)
        )
    write_calibrated_policy(source, result.fallback, out)
    if as_json:
        typer.echo(json.dumps(result.to_dict(), sort_keys=True))
        return
    fb = result.fallback
    if fb.error_rate is None:
        typer.echo(f"no threshold meets {target_error:.1%} on {result.gated} decisions: every "
                   "live-signal decision goes to a human (min_confidence 1.0)")  # fmt: skip
    else:
        typer.echo(
            f"min_confidence {fb.min_confidence:.3f}: error {fb.error_rate:.1%} (target "
            f"{target_error:.1%}), {fb.coverage:.0%} of {result.gated} live-signal decisions "
            f"stay automated; without the fallback the error is {result.gated_error:.1%}"
        )
    typer.echo(f"wrote {out}")
