"""Deployment credentials, and a real TLS + SuperNode-auth federation on 127.0.0.1 (slow).

The slow tests start ``flower-superlink`` (TLS, ``--enable-supernode-auth``), register two
SuperNode keys, start two ``flower-supernode`` processes on edge directories, run one round
with ``flwr run`` and check the run recorded in the server database; an unregistered key is
refused. The same round runs once more under SecAgg+ secure aggregation
(``secure-aggregation=true``). Every process is stopped by PID (terminate, wait, kill),
with its descendants.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import ssl
import subprocess
import threading
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_ssh_private_key, load_ssh_public_key

from simulations.deployment import (
    CA_CERT,
    CA_KEY,
    SERVER_CERT,
    SERVER_KEY,
    DeploymentError,
    certificate_hosts,
    flwr_connection_toml,
    generate_credentials,
    generate_supernode_key,
    subject_alt_names,
)
from simulations.server_process import free_port
from tests.client.training_factories import make_edge

REPO = Path(__file__).resolve().parents[2]
HOSTS = ("flower.example.com", "10.0.0.5")


# ------------------------------------------------------------------ credentials (fast)
def test_generate_credentials_fresh_dir_writes_every_file_mode_0600(tmp_path: Path) -> None:
    out = tmp_path / "pki"

    creds = generate_credentials(out_dir=out, hosts=HOSTS, supernodes=["desk", "web"])

    files = [out / CA_CERT, out / CA_KEY, out / SERVER_CERT, out / SERVER_KEY]
    files += [p for s in creds.supernodes for p in (s.private_key, s.public_key)]
    assert sorted(creds.created) == sorted(files)
    assert {oct(p.stat().st_mode & 0o777) for p in files} == {"0o600"}
    assert oct(out.stat().st_mode & 0o777) == "0o700"
    assert oct((out / "supernodes").stat().st_mode & 0o777) == "0o700"
    assert not list(out.rglob(".*.tmp"))


def test_generate_credentials_server_cert_is_issued_by_ca_and_names_hosts(tmp_path: Path) -> None:
    creds = generate_credentials(out_dir=tmp_path, hosts=HOSTS)

    ca = x509.load_pem_x509_certificate(creds.ca_cert.read_bytes())
    cert = x509.load_pem_x509_certificate(creds.server_cert.read_bytes())
    cert.verify_directly_issued_by(ca)
    assert creds.hosts == ("localhost", "127.0.0.1", *HOSTS)
    assert certificate_hosts(creds.server_cert) == creds.hosts
    assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


def _handshake(creds_dir: Path, server_hostname: str) -> None:
    """Complete a TLS handshake between the server cert and a client trusting only ca.crt."""
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(creds_dir / SERVER_CERT, creds_dir / SERVER_KEY)
    client_ctx = ssl.create_default_context(cafile=str(creds_dir / CA_CERT))
    left, right = socket.socketpair()
    left.settimeout(10)
    right.settimeout(10)

    def serve() -> None:
        try:
            with server_ctx.wrap_socket(left, server_side=True) as tls:
                tls.recv(1)
        except (ssl.SSLError, OSError):
            pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        with client_ctx.wrap_socket(right, server_hostname=server_hostname) as tls:
            tls.sendall(b"x")
    finally:
        right.close()
        thread.join(timeout=10)
        left.close()


@pytest.mark.parametrize(
    ("server_hostname", "trusted"),
    [
        ("flower.example.com", True),
        ("10.0.0.5", True),
        ("localhost", True),
        ("127.0.0.1", True),
        ("other.example.com", False),
        ("10.0.0.6", False),
    ],
)
def test_server_cert_tls_handshake_only_for_named_hosts(
    tmp_path: Path, server_hostname: str, trusted: bool
) -> None:
    generate_credentials(out_dir=tmp_path, hosts=HOSTS)

    if trusted:
        _handshake(tmp_path, server_hostname)
    else:
        with pytest.raises(ssl.SSLCertVerificationError):
            _handshake(tmp_path, server_hostname)


def test_supernode_key_pair_loads_as_flower_loads_it(tmp_path: Path) -> None:
    pair = generate_supernode_key(out_dir=tmp_path, name="desk")

    private = load_ssh_private_key(pair.private_key.read_bytes(), None)
    public = load_ssh_public_key(pair.public_key.read_bytes())
    assert isinstance(private, ec.EllipticCurvePrivateKey)
    assert isinstance(private.curve, ec.SECP384R1)
    assert private.public_key() == public
    assert pair.public_key.read_text().startswith("ecdsa-sha2-nistp384 ")
    assert pair.fingerprint.startswith("SHA256:") and len(pair.fingerprint) == 50


def test_generate_credentials_second_call_reuses_ca_and_keeps_files(tmp_path: Path) -> None:
    first = generate_credentials(out_dir=tmp_path, hosts=HOSTS, supernodes=["desk"])
    before = {p: p.read_bytes() for p in first.created}

    again = generate_credentials(out_dir=tmp_path, hosts=HOSTS[:1], supernodes=["desk", "web"])

    assert {p.name for p in again.created} == {"web.key", "web.pub"}
    assert all(p.read_bytes() == data for p, data in before.items())
    assert again.supernodes[0].fingerprint == first.supernodes[0].fingerprint


def test_generate_credentials_cert_missing_a_host_refused_then_force_reissues(
    tmp_path: Path,
) -> None:
    generate_credentials(out_dir=tmp_path, hosts=HOSTS)
    ca_before = (tmp_path / CA_CERT).read_bytes()

    with pytest.raises(DeploymentError, match="--force"):
        generate_credentials(out_dir=tmp_path, hosts=["new.example.com"])
    forced = generate_credentials(out_dir=tmp_path, hosts=["new.example.com"], force=True)

    assert "new.example.com" in forced.hosts and "flower.example.com" not in forced.hosts
    assert {p.name for p in forced.created} == {SERVER_CERT, SERVER_KEY}
    assert (tmp_path / CA_CERT).read_bytes() == ca_before


def test_generate_credentials_cert_from_another_ca_is_refused(tmp_path: Path) -> None:
    generate_credentials(out_dir=tmp_path / "a", hosts=HOSTS)
    generate_credentials(out_dir=tmp_path / "b", hosts=HOSTS)
    for name in (SERVER_CERT, SERVER_KEY):
        (tmp_path / "b" / name).write_bytes((tmp_path / "a" / name).read_bytes())

    with pytest.raises(DeploymentError, match="not issued by the CA"):
        generate_credentials(out_dir=tmp_path / "b", hosts=HOSTS)


@pytest.mark.parametrize("present", [CA_CERT, CA_KEY])
def test_generate_credentials_half_ca_is_refused(tmp_path: Path, present: str) -> None:
    generate_credentials(out_dir=tmp_path / "full")
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / present).write_bytes((tmp_path / "full" / present).read_bytes())

    with pytest.raises(DeploymentError, match="only one of"):
        generate_credentials(out_dir=tmp_path / "half")


def test_generate_supernode_key_half_pair_refused_force_replaces(tmp_path: Path) -> None:
    first = generate_supernode_key(out_dir=tmp_path, name="desk")
    first.public_key.unlink()

    with pytest.raises(DeploymentError, match="one half"):
        generate_supernode_key(out_dir=tmp_path, name="desk")
    replaced = generate_supernode_key(out_dir=tmp_path, name="desk", force=True)

    assert replaced.public_key.is_file()


@pytest.mark.parametrize(
    ("hosts", "expected"),
    [
        (["flower.example.com"], ("flower.example.com",)),
        (["FLOWER.Example.com ", "flower.example.com"], ("flower.example.com",)),
        (["*.example.com"], ("*.example.com",)),
        (["10.0.0.5"], ("10.0.0.5",)),
        (["[::1]"], ("::1",)),
        (["2001:db8::0001"], ("2001:db8::1",)),
    ],
)
def test_subject_alt_names_valid_hosts_normalised(hosts: list[str], expected: tuple[str]) -> None:
    assert subject_alt_names(hosts, include_loopback=False) == expected


@pytest.mark.parametrize(
    "host",
    ["https://flower.example.com", "flower.example.com:8000", "a b", "", "-x.example.com", "a/b"],
)
def test_subject_alt_names_invalid_host_refused(host: str) -> None:
    with pytest.raises(DeploymentError, match="--host"):
        subject_alt_names([host])


def test_subject_alt_names_nothing_without_loopback_refused() -> None:
    with pytest.raises(DeploymentError, match="at least one"):
        subject_alt_names([], include_loopback=False)


@pytest.mark.parametrize("name", ["", "../etc", "a/b", ".hidden", "x" * 65, "new\nline"])
def test_generate_supernode_key_invalid_name_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(DeploymentError, match="SuperNode name"):
        generate_supernode_key(out_dir=tmp_path, name=name)
    assert not any(tmp_path.iterdir())


def test_flwr_connection_toml_is_a_tls_connection(tmp_path: Path) -> None:
    text = flwr_connection_toml(
        name="tls", address="flower.example.com:8000", root_certificates=tmp_path / "ca.crt"
    )

    table = tomllib.loads(text)["superlink"]["tls"]
    assert table == {
        "address": "flower.example.com:8000",
        "root-certificates": str((tmp_path / "ca.crt").resolve()),
    }


@pytest.mark.parametrize("address", ["flower.example.com", "https://x:8000", 'x:1" y'])
def test_flwr_connection_toml_bad_address_refused(tmp_path: Path, address: str) -> None:
    with pytest.raises(DeploymentError, match="host:port"):
        flwr_connection_toml(name="tls", address=address, root_certificates=tmp_path / "ca")


# ------------------------------------------------------------------ processes (slow)
def _flwr_env(home: Path) -> dict[str, str]:
    home.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.update(
        FLWR_HOME=str(home),
        FLWR_TELEMETRY_ENABLED="0",
        FLWR_DISABLE_UPDATE_CHECK="1",
        FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION="1",
    )
    return env


Ident = tuple[int, int]  # (pid, start time in clock ticks): a PID that cannot be reused


def _proc_table() -> dict[int, tuple[int, str, int]]:
    """pid -> (ppid, state, start time) for every process visible in /proc."""
    table: dict[int, tuple[int, str, int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        table[int(entry.name)] = (int(fields[1]), fields[0], int(fields[19]))
    return table


def _descendants(pid: int) -> set[Ident]:
    table = _proc_table()
    found: set[Ident] = set()
    frontier = [pid]
    while frontier:
        parent = frontier.pop()
        children = [p for p, (ppid, _, _) in table.items() if ppid == parent]
        found |= {(p, table[p][2]) for p in children}
        frontier += children
    return found


def _alive(ident: Ident) -> bool:
    row = _proc_table().get(ident[0])
    return row is not None and row[2] == ident[1] and row[1] != "Z"


@dataclass
class Started:
    """Processes this test started, stopped by PID with their descendants."""

    procs: list[tuple[subprocess.Popen[bytes], Path]] = field(default_factory=list)
    seen: set[Ident] = field(default_factory=set)

    def start(self, cmd: list[str], *, env: dict[str, str], cwd: Path, log: Path) -> int:
        with log.open("ab") as handle:
            proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=handle, stderr=handle)
        self.procs.append((proc, log))
        self.seen.add((proc.pid, _proc_table()[proc.pid][2]))
        return len(self.procs) - 1

    def proc(self, index: int) -> subprocess.Popen[bytes]:
        return self.procs[index][0]

    def log_tail(self, index: int, lines: int = 25) -> str:
        return "\n".join(self.procs[index][1].read_text(errors="replace").splitlines()[-lines:])

    def _children(self, index: int) -> set[Ident]:
        proc = self.procs[index][0]
        # Only while the process is alive (not reaped) is its PID surely still ours.
        return _descendants(proc.pid) if proc.poll() is None else set()

    def stop(self, index: int, *, grace: float = 20.0, children: set[Ident] | None = None) -> None:
        proc = self.procs[index][0]
        kids = (children or set()) | self._children(index)
        self.seen |= kids
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        # SuperExec children watch their parent and leave on their own; make sure.
        deadline = time.monotonic() + 15
        for sig in (signal.SIGTERM, signal.SIGKILL):
            while any(_alive(k) for k in kids) and time.monotonic() < deadline:
                time.sleep(0.2)
            for kid in kids:
                if _alive(kid):
                    os.kill(kid[0], sig)
            deadline = time.monotonic() + 5

    def stop_many(self, indices: list[int]) -> None:
        children = {i: self._children(i) for i in indices}
        for index in indices:  # signal all first: SuperNodes take seconds to shut down
            if self.procs[index][0].poll() is None:
                self.procs[index][0].terminate()
        for index in indices:
            self.stop(index, children=children[index])

    def stop_all(self) -> None:
        self.stop_many(list(reversed(range(len(self.procs)))))

    def leftovers(self) -> list[int]:
        return sorted(pid for pid, started in self.seen if _alive((pid, started)))


def _wait_port(port: int, started: Started, index: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert started.proc(index).poll() is None, started.log_tail(index)
        with socket.socket() as sock:
            sock.settimeout(1)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.3)
    pytest.fail(f"SuperLink did not listen within {timeout:.0f}s:\n{started.log_tail(index)}")


def _flwr(args: list[str], *, env: dict[str, str], cwd: Path, timeout: float = 60) -> str:
    result = subprocess.run(
        ["flwr", *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, f"flwr {args[:2]} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


@dataclass(frozen=True)
class Link:
    """A running SuperLink with TLS and SuperNode authentication."""

    work: Path
    port: int
    pki: Path
    cli_env: dict[str, str]
    started: Started

    def supernode(self, name: str, *, edge_dir: Path, channel: str, toml: bool = False) -> int:
        node_config = f'data-path="{edge_dir}" channel="{channel}"'
        if toml:  # the form the systemd unit uses: a TOML file instead of an inline string
            path = self.work / f"{name}-node-config.toml"
            path.write_text(f'data-path = "{edge_dir}"\nchannel = "{channel}"\n')
            node_config = str(path)
        cmd = [
            "flower-supernode",
            "--root-certificates",
            str(self.pki / CA_CERT),
            "--superlink",
            f"127.0.0.1:{self.port}",
            "--auth-supernode-private-key",
            str(self.pki / "supernodes" / f"{name}.key"),
            "--port",
            str(free_port()),
            "--node-config",
            node_config,
        ]
        env = _flwr_env(self.work / f"home-{name}")
        return self.started.start(cmd, env=env, cwd=self.work, log=self.work / f"{name}.log")

    def flwr(self, *args: str, timeout: float = 60) -> str:
        return _flwr(list(args), env=self.cli_env, cwd=self.work, timeout=timeout)


@pytest.fixture
def link(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Link]:
    """A SuperLink of its own per test: SuperNodes of an earlier test (same keys) may still
    be listed on a shared one, and SecAgg+ would wait for them."""
    work = tmp_path_factory.mktemp("deployment")
    pki = work / "pki"
    generate_credentials(out_dir=pki, supernodes=["desk", "web", "rogue"])
    port = free_port()
    started = Started()
    cli_home = work / "home-cli"
    cli_env = _flwr_env(cli_home)
    (cli_home / "config.toml").write_text(
        '[superlink]\ndefault = "tls"\n\n'
        + flwr_connection_toml(
            name="tls", address=f"127.0.0.1:{port}", root_certificates=pki / CA_CERT
        )
    )
    try:
        index = started.start(
            [
                "flower-superlink",
                "--ssl-ca-certfile",
                str(pki / CA_CERT),
                "--ssl-certfile",
                str(pki / SERVER_CERT),
                "--ssl-keyfile",
                str(pki / SERVER_KEY),
                "--enable-supernode-auth",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--database",
                str(work / "superlink.db"),
                "--disable-runtime-dependency-installation",
            ],
            env=_flwr_env(work / "home-link"),
            cwd=work,
            log=work / "superlink.log",
        )
        _wait_port(port, started, index)
        yield Link(work, port, pki, cli_env, started)
    finally:
        started.stop_all()
        assert started.leftovers() == []


def _online(link: Link) -> int:
    nodes = json.loads(link.flwr("supernode", "list", "tls", "--format", "json"))["nodes"]
    return sum(node["status"] == "online" for node in nodes)


#: Public keys registered with a test's SuperLink (each test has its own PKI directory).
_REGISTERED: set[Path] = set()


@pytest.mark.slow
@pytest.mark.parametrize(
    "extra_config",
    [
        pytest.param("", id="plain"),
        # SecAgg+ with two edges: 3 shares (every edge a neighbour), threshold 2.
        pytest.param(
            " secure-aggregation=true secagg-shares=3 secagg-threshold=2", id="secure-aggregation"
        ),
    ],
)
def test_deployment_two_supernodes_tls_auth_one_round_recorded_completed(
    link: Link, extra_config: str
) -> None:
    # Prepare: two edges, their keys registered, their SuperNodes online.
    label = "secagg" if extra_config else "plain"
    edges = {}
    for seed, name in enumerate(("desk", "web")):
        edges[name] = link.work / f"edges-{label}" / name
        make_edge(edges[name], subjects=30, name=f"{name}-1", channel=name, seed=seed)
        public = link.pki / "supernodes" / f"{name}.pub"
        if public not in _REGISTERED:
            assert "registered" in link.flwr("supernode", "register", str(public), "tls")
            _REGISTERED.add(public)
    nodes = [link.supernode(n, edge_dir=d, channel=n, toml=n == "web") for n, d in edges.items()]
    db = link.work / f"runs-{label}.sqlite"
    try:
        deadline = time.monotonic() + 60
        while _online(link) < 2:
            assert time.monotonic() < deadline, link.started.log_tail(nodes[0])
            assert all(link.started.proc(i).poll() is None for i in nodes)
            time.sleep(1)

        # Execute: one round through the TLS connection.
        link.flwr(
            "run",
            str(REPO),
            "tls",
            "--run-config",
            f"num-server-rounds=1 min-nodes=2 database-url='sqlite:///{db}'{extra_config}",
            "--stream",
            timeout=600,  # 78-200 s on a 2-core machine (SecAgg+ adds 3 round trips)
        )

        # Assert: Flower and the server database both say completed, with both edges.
        runs = json.loads(link.flwr("ls", "tls", "--format", "json"))["runs"]
        assert runs and {r["status"] for r in runs} == {"finished:completed"}
        with sqlite3.connect(db) as conn:
            recorded = conn.execute("SELECT status, num_rounds FROM training_run").fetchall()
            rounds = conn.execute("SELECT phase, edges_json FROM training_round").fetchall()
        assert recorded == [("completed", 1)]
        assert {phase for phase, _ in rounds} == {"train", "evaluate"}
        for _, edges_json in rounds:
            assert sorted(e["channel"] for e in json.loads(edges_json)) == ["desk", "web"]
    finally:
        link.started.stop_many(nodes)


@pytest.mark.slow
def test_deployment_unregistered_supernode_key_is_refused(link: Link, tmp_path: Path) -> None:
    make_edge(tmp_path / "edge", subjects=5, name="rogue-1")

    index = link.supernode("rogue", edge_dir=tmp_path / "edge", channel="web")
    try:
        code = link.started.proc(index).wait(timeout=60)
    finally:
        link.started.stop(index)

    log = (link.work / "rogue.log").read_text(errors="replace")
    assert code != 0
    assert "Failed to activate SuperNode" in log and "2004" in log
