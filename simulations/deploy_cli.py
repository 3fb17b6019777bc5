"""Commands of the deployment helpers: ``deploy certs``.

``fedprofile deploy certs --out DIR --host H --supernode NAME`` writes the private CA, the
server certificate (for ``flower-superlink`` and ``fedprofile serve``) and one SuperNode key
pair per name; see ``docs/deployment.md`` for where each file goes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

deploy_app = typer.Typer(
    help="Deployment helpers: TLS certificates and SuperNode authentication keys.",
    no_args_is_help=True,
    add_completion=False,
)


@deploy_app.command("certs")
def certs_command(
    out: Annotated[
        Path,
        typer.Option(
            "--out", help="Credentials directory (created 0700; an existing CA in it is reused)."
        ),
    ],
    host: Annotated[
        list[str] | None,
        typer.Option(
            "--host",
            help="DNS name or IP address the SuperLink / API is reached by (repeatable).",
        ),
    ] = None,
    supernode: Annotated[
        list[str] | None,
        typer.Option(
            "--supernode", help="Write an EC P-384 key pair for this SuperNode (repeatable)."
        ),
    ] = None,
    loopback: Annotated[
        bool,
        typer.Option(
            "--loopback/--no-loopback",
            help="Also name localhost and 127.0.0.1 in the server certificate.",
        ),
    ] = True,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Reissue the server certificate and replace the named SuperNode keys "
            "(never the CA).",
        ),
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the files and fingerprints as JSON.")
    ] = False,
) -> None:
    """Write a private CA, the server certificate and SuperNode key pairs (all mode 0600)."""
    from .deployment import generate_credentials

    creds = generate_credentials(
        out_dir=out.resolve(),
        hosts=host or (),
        supernodes=supernode or (),
        include_loopback=loopback,
        force=force,
    )
    if as_json:
        typer.echo(json.dumps(creds.to_dict(), indent=2))
        return
    console = Console()
    created = set(creds.created)
    table = Table("file", "status", "goes to")
    rows = [
        (creds.ca_cert, "every edge and flwr CLI host (--root-certificates)"),
        (creds.ca_key, "offline storage only (issues certificates)"),
        (creds.server_cert, "server host (flower-superlink, fedprofile TLS)"),
        (creds.server_key, "server host only"),
    ]
    for pair in creds.supernodes:
        rows.append((pair.private_key, f"edge {pair.name} only (--auth-supernode-private-key)"))
        rows.append((pair.public_key, "flwr supernode register"))
    for path, where in rows:
        table.add_row(str(path), "written" if path in created else "kept", where)
    console.print(table)
    console.print(f"server certificate names: {', '.join(creds.hosts)}", soft_wrap=True)
    for pair in creds.supernodes:
        console.print(
            f"SuperNode {pair.name}: {pair.fingerprint}\n"
            f"  register with: flwr supernode register {pair.public_key} <connection>",
            soft_wrap=True,
        )
