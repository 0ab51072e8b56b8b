"""A real Flower deployment on this machine (loopback): one SuperLink, one SuperNode per site,
each a process of its own, TLS on every connection and SuperNode authentication (only the
sites whose public keys were registered may join); then `flwr run` against them, then stop.

    python -m medfocus_fl.deploy --model CLIP_DIR --site a=DATA_A --site b=DATA_B --site c=DATA_C \\
        --out OUT_DIR [--run-config 'num-server-rounds=10 head="lp-text"'] [--medfocus BINARY]

Everything it makes (credentials, Flower's home and state, logs) stays under `OUT_DIR/deployment`,
so it never touches `~/.flwr`. Three machines run the same processes; see the README.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from medfocus_fl.credentials import make_site_key, make_tls

APP_DIR = Path(__file__).resolve().parent.parent
CONNECTION = "medfocus-local"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def flower_tool(name: str) -> str:
    """A Flower command from this Python's environment (its bin folder), else PATH."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if not found:
        raise SystemExit(f"{name} not found: install the app's dependencies (pip install -e federated)")
    return found


def toml_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass
class LocalDeployment:
    """The processes of one deployment, started in order and stopped together."""

    work: Path
    port: int = field(default_factory=free_port)
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.work.mkdir(parents=True, exist_ok=True)
        self.credentials = self.work / "credentials"
        self.logs = self.work / "logs"
        self.home = self.work / "flwr-home"
        for folder in (self.credentials, self.logs, self.home):
            folder.mkdir(exist_ok=True)
        # Flower's processes start more of Flower's commands by name (flower-superexec,
        # flwr-serverapp, flwr-clientapp): this environment's come first.
        tools = str(Path(sys.executable).parent)
        self.env = {
            **os.environ,
            "FLWR_HOME": str(self.home),
            "PATH": tools + os.pathsep + os.environ.get("PATH", ""),
        }
        self.log_files: list = []

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _start(self, name: str, command: list[str]) -> subprocess.Popen:
        log = open(self.logs / f"{name}.log", "w")
        self.log_files.append(log)
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=self.env, start_new_session=True
        )
        self.processes[name] = process
        return process

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")

    def start_superlink(self) -> None:
        make_tls(self.credentials, ["127.0.0.1", "localhost"])
        c = self.credentials
        self._start(
            "superlink",
            [
                flower_tool("flower-superlink"),
                "--ssl-ca-certfile", str(c / "ca.crt"),
                "--ssl-certfile", str(c / "server.pem"),
                "--ssl-keyfile", str(c / "server.key"),
                # Only SuperNodes whose public keys `flwr supernode register` recorded may join.
                "--enable-supernode-auth",
                # The app's dependencies are this environment's; nothing is installed at run time.
                "--disable-runtime-dependency-installation",
                "--host", "127.0.0.1",
                "--port", str(self.port),
                "--database", str(self.work / "superlink-state.db"),
            ],
        )
        (self.home / "config.toml").write_text(
            "[superlink]\n"
            f'default = "{CONNECTION}"\n\n'
            f"[superlink.{CONNECTION}]\n"
            f"address = {toml_string(self.address)}\n"
            f"root-certificates = {toml_string(str(c / 'ca.crt'))}\n"
        )
        self._wait_for(lambda: "Application startup complete" in self.log("superlink"), "superlink")

    def _wait_for(self, ready, name: str, seconds: float = 60) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if ready():
                return
            if self.processes[name].poll() is not None:
                raise RuntimeError(f"{name} exited:\n{self.log(name)[-3000:]}")
            time.sleep(0.2)
        raise RuntimeError(f"{name} did not start in {seconds} s:\n{self.log(name)[-3000:]}")

    def flwr(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run(
            [flower_tool("flwr"), *args],
            capture_output=True, text=True, env=self.env, timeout=timeout, check=False,
        )

    def register(self, site: str) -> None:
        """A key pair for `site`, its public key registered with the SuperLink."""
        make_site_key(self.credentials, site)
        done = self.flwr("supernode", "register", str(self.credentials / f"{site}.pub"), CONNECTION, "--name", site)
        if done.returncode != 0:
            raise RuntimeError(f"registering {site} failed:\n{done.stdout}\n{done.stderr}")

    def start_supernode(
        self, site: str, node_config: Mapping[str, str], *, give_up_after: float | None = None
    ) -> subprocess.Popen:
        """A SuperNode holding `site`'s private key (registered or not) and its node config."""
        if not (self.credentials / f"{site}.key").exists():
            make_site_key(self.credentials, site)
        config = " ".join(f"{key}={toml_string(str(value))}" for key, value in node_config.items())
        command = [
            flower_tool("flower-supernode"),
            "--root-certificates", str(self.credentials / "ca.crt"),
            "--superlink", self.address,
            "--auth-supernode-private-key", str(self.credentials / f"{site}.key"),
            "--node-config", config,
            "--port", str(free_port()),
        ]
        if give_up_after is not None:
            command += ["--max-wait-time", str(give_up_after)]
        return self._start(f"supernode-{site}", command)

    def wait_for_nodes(self, sites: list[str]) -> None:
        for site in sites:
            name = f"supernode-{site}"
            self._wait_for(lambda name=name: "SuperNode ID" in self.log(name), name)

    def run(self, run_config: str, timeout: float = 3600) -> subprocess.CompletedProcess:
        """`flwr run` of the app against this SuperLink, streaming its log to the end."""
        done = self.flwr(
            "run", str(APP_DIR), CONNECTION, "--run-config", run_config, "--stream",
            timeout=timeout,
        )
        (self.logs / "run.log").write_text(done.stdout + done.stderr)
        return done

    def stop(self) -> None:
        for process in reversed(list(self.processes.values())):
            if process.poll() is None:
                try:
                    os.killpg(process.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for process in self.processes.values():
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        for log in self.log_files:
            log.close()
        self.log_files.clear()

    def __enter__(self) -> "LocalDeployment":
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="the CLIP model folder (every site's and the server's)")
    parser.add_argument("--site", action="append", required=True, metavar="NAME=DATA",
                        help="a site: its name and its data folder (any layout medfocus reads)")
    parser.add_argument("--out", required=True, type=Path, help="the head, report and plot go here")
    parser.add_argument("--run-config", default="", help="more run config, as flwr run takes it")
    parser.add_argument("--medfocus", default="", help="the medfocus binary (default: on PATH)")
    parser.add_argument("--cache", default="", help="each site's embedding cache (default: medfocus's)")
    args = parser.parse_args()

    sites = {}
    for entry in args.site:
        name, _, data = entry.partition("=")
        if not name or not data:
            raise SystemExit(f"--site {entry}: NAME=DATA")
        sites[name] = os.path.abspath(os.path.expanduser(data))
    out = args.out.resolve()
    model = os.path.abspath(os.path.expanduser(args.model))
    binary = args.medfocus or shutil.which("medfocus") or ""
    if not binary:
        raise SystemExit("no medfocus binary on PATH: give --medfocus")
    binary = os.path.abspath(binary)
    run_config = " ".join(
        [
            f"model={toml_string(model)}",
            f"medfocus={toml_string(binary)}",
            f"out-dir={toml_string(str(out))}",
            f"min-nodes={len(sites)}",
            args.run_config,
        ]
    )
    with LocalDeployment(out / "deployment") as deployment:
        deployment.start_superlink()
        print(f"SuperLink on {deployment.address} (TLS, SuperNode authentication)", flush=True)
        for name, data in sites.items():
            deployment.register(name)
            node_config = {"data-path": data, "model": model, "name": name, "medfocus": binary}
            if args.cache:
                node_config["cache"] = os.path.join(os.path.abspath(args.cache), name)
            deployment.start_supernode(name, node_config)
        deployment.wait_for_nodes(list(sites))
        print(f"{len(sites)} SuperNodes joined: {', '.join(sites)}", flush=True)
        print(f"flwr run --run-config {shlex.quote(run_config)}", flush=True)
        done = deployment.run(run_config)
        sys.stdout.write(done.stdout[-4000:])
        if done.returncode != 0 or "ServerApp raised an exception" in done.stdout + done.stderr:
            sys.stderr.write(done.stderr[-4000:])
            raise SystemExit(f"the run failed; logs in {deployment.logs}")
    print(f"wrote {out / 'federated-head.mfh'}, {out / 'report.md'}", flush=True)


if __name__ == "__main__":
    main()
