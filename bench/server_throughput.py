#!/usr/bin/env python3
"""Requests per second of ``GET /v1/channels/{channel}/pinset``: pinwarden under granian and
uvicorn against nginx serving the same bytes (``pinwarden export-static``), in the same run.

    .venv/bin/python bench/server_throughput.py [--duration 8] [--connections 50] [--rounds 3]

wrk on loopback, one wrk thread; one nginx worker and one pinwarden process, so each server has
one core of this machine's two. The goal: granian >= 0.7x nginx. nginx and wrk come from Debian's
packages (``apt-get install nginx-light wrk``) when missing. Nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

CHANNEL = "bench"
PASSPHRASE = b"benchmark passphrase"


def ensure_tools() -> None:
    missing = [name for name in ("nginx", "wrk") if shutil.which(name) is None]
    if not missing:
        return
    packages = ["nginx-light" if name == "nginx" else name for name in missing]
    print(f"installing {' '.join(packages)} from Debian's packages", flush=True)
    install = ["apt-get", "install", "-y", "--no-install-recommends", *packages]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    if subprocess.run(install, env=env, check=False).returncode != 0:
        subprocess.run(["apt-get", "update"], env=env, check=True)
        subprocess.run(install, env=env, check=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def prepare(data: Path, static: Path) -> None:
    """A data directory with channel ``bench`` published (one ``disabled`` rule: no live host)."""
    from pinwarden.server import DataDirectory, ServerConfig, Services, initialize
    from pinwarden.server._channels import add_rule, create_channel
    from pinwarden.server._database import make_session_factory
    from pinwarden.server._export import export_static

    directory = DataDirectory(data)
    initialize(directory, PASSPHRASE)
    services = Services(
        ServerConfig(
            database_url=directory.database_url(), key_dir=directory.key_dir, passphrase=PASSPHRASE
        )
    )
    with services.sessions.begin() as session:
        create_channel(session, CHANNEL, "bench", refresh_seconds=300)
        for index in range(10):  # a realistic size: ten rules
            add_rule(session, CHANNEL, f"host{index}.example.test", "bench", mode="disabled")
    services.publisher.publish(CHANNEL, "bench")
    with make_session_factory(services.engine)() as session:
        export_static(session, static)
    services.engine.dispose()
    (data / "passphrase").write_bytes(PASSPHRASE)
    (data / "passphrase").chmod(0o600)


NGINX_CONF = """
worker_processes 1;
daemon off;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    types {{ }}
    default_type application/jose+json;
    client_body_temp_path {prefix}/tmp;
    proxy_temp_path {prefix}/tmp;
    fastcgi_temp_path {prefix}/tmp;
    uwsgi_temp_path {prefix}/tmp;
    scgi_temp_path {prefix}/tmp;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        location / {{ add_header Cache-Control "public, max-age=300, no-transform"; }}
    }}
}}
"""


def wait_for(url: str, process: subprocess.Popen[bytes], timeout: float = 30) -> bytes:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args} exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 - loopback
                return bytes(response.read())
        except urllib.error.HTTPError as error:
            raise RuntimeError(f"{url} answered {error.code}") from None
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout}s")


def wrk(url: str, duration: int, connections: int) -> float:
    subprocess.run(["wrk", "-t1", f"-c{connections}", "-d2s", url], capture_output=True, check=True)
    result = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency", url],
        capture_output=True,
        text=True,
        check=True,
    )
    match = re.search(r"Requests/sec:\s+([\d.]+)", result.stdout)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", result.stdout)
    if match is None or errors:
        raise RuntimeError(f"wrk failed:\n{result.stdout}\n{result.stderr}")
    return float(match.group(1))


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=15)


def start(command: list[str], url: str, expected: bytes, log: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as handle:
        process = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT)
    body = wait_for(url, process)
    if body != expected:
        stop(process)
        raise RuntimeError(f"{command[0]} serves different bytes than pinwarden published")
    return process


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=8, help="seconds per wrk round")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    ensure_tools()
    pinwarden = [sys.executable, "-m", "pinwarden"]
    path = f"/v1/channels/{CHANNEL}/pinset"
    results: dict[str, list[float]] = {"nginx": [], "granian": [], "uvicorn": []}
    processes: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory(prefix="pinwarden-bench-") as temp:
        root = Path(temp)
        root.chmod(0o755)  # nginx's worker runs as an unprivileged user and reads static/
        data, static = root / "data", root / "static"
        prepare(data, static)
        expected = (static / "v1" / "channels" / CHANNEL / "pinset").read_bytes()
        (root / "nginx" / "tmp").mkdir(parents=True)
        urls = {name: f"http://127.0.0.1:{free_port()}{path}" for name in results}
        conf = root / "nginx" / "nginx.conf"
        nginx_port = urls["nginx"].split(":")[2].split("/")[0]
        conf.write_text(NGINX_CONF.format(prefix=root / "nginx", port=nginx_port, root=static))
        commands = {
            "nginx": ["nginx", "-c", str(conf), "-p", str(root / "nginx")],
            **{
                server: [
                    *pinwarden,
                    "serve",
                    "--data",
                    str(data),
                    "--server",
                    server,
                    "--port",
                    urls[server].split(":")[2].split("/")[0],
                    "--passphrase-file",
                    str(data / "passphrase"),
                ]
                for server in ("granian", "uvicorn")
            },
        }
        print(
            f"GET {path}: {len(expected)} bytes; wrk -t1 -c{args.connections} "
            f"-d{args.duration}s; {args.rounds} interleaved rounds; {os.cpu_count()} CPUs",
            flush=True,
        )
        try:
            for name, command in commands.items():
                processes.append(start(command, urls[name], expected, root / f"{name}.log"))
            # Interleaved, so a change in the machine's load hits every server alike.
            for round_number in range(1, args.rounds + 1):
                for name in results:
                    results[name].append(wrk(urls[name], args.duration, args.connections))
                print(
                    f"round {round_number}: "
                    + ", ".join(f"{name} {figures[-1]:.0f}" for name, figures in results.items()),
                    flush=True,
                )
        finally:
            for process in processes:
                stop(process)
    baseline = statistics.median(results["nginx"])
    print(f"{'nginx (1 worker)':20} {baseline:8.0f} req/s (median)")
    ratios = {}
    for server in ("granian", "uvicorn"):
        per_round = [
            ours / theirs for ours, theirs in zip(results[server], results["nginx"], strict=True)
        ]
        ratios[server] = statistics.median(per_round)
        print(
            f"{'pinwarden/' + server:20} {statistics.median(results[server]):8.0f} req/s "
            f"(median) = {ratios[server]:.2f}x nginx (median of per-round ratios)"
        )
    print("goal granian >= 0.70x nginx:", "met" if ratios["granian"] >= 0.7 else "NOT met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
