"""The scale-out deployment (deploy/) started on loopback from its own files: the processes the
systemd units define (their ExecStart lines, with the install path and instance filled in) and the
nginx site rendered from its template, run by Debian's nginx as an unprivileged foreground process
with its own prefix directory. Every process starts in a session of its own and is stopped (its
process group) by `Topology.stop`; each one's output goes to a log file under the topology's
directory (never to the test's output: the sandbox SMS gateway logs its codes there)."""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.support import ROOT
from tests.support.processes import free_port, wait_until_up

DEPLOY = ROOT / "deploy"
UNITS = DEPLOY / "systemd"
SITE_TEMPLATE = DEPLOY / "nginx" / "portal.conf.template"
ROUTE_COOKIE = "portal_route"  # the cookie the site routes by
INSTALL_ROOT = "/opt/portal"  # where the units expect the checkout (with its .venv)
NOBODY = 65534  # Debian's nobody / nogroup: nginx's user when the tests run as root
# a line of the site's `portal_upstream` log format; `upstream` lists every replica nginx tried
ACCESS_LINE = re.compile(
    r'"(?P<method>[A-Z]+) (?P<path>\S*)" (?P<status>\d{3}) .* upstream=(?P<upstream>.+?) route=(?P<route>\S+)$'
)


def nginx_binary() -> str | None:
    """Debian's nginx (in /usr/sbin, which a non-root PATH may not hold), or None."""
    return shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")


def unit_command(unit: str, instance: str = "", key: str = "ExecStart") -> list[str]:
    """The command a systemd unit in deploy/systemd runs for `key` (ExecStart, ExecStartPost), as
    argv on this checkout: %i is `instance`, the install path this repository and its Python."""
    text = (UNITS / unit).read_text(encoding="utf-8")
    lines = [line.split("=", 1)[1] for line in text.splitlines() if line.startswith(f"{key}=")]
    assert len(lines) == 1, f"{unit} has {len(lines)} {key} lines"
    directory = [line for line in text.splitlines() if line.startswith("WorkingDirectory=")]
    assert directory == [f"WorkingDirectory={INSTALL_ROOT}"], f"{unit} does not run in {INSTALL_ROOT}"
    line = lines[0].replace("%i", instance).replace(f"{INSTALL_ROOT}/.venv/bin/python", sys.executable)
    return shlex.split(line.replace(INSTALL_ROOT, str(ROOT)))


def example_settings() -> set[str]:
    """The variable names deploy/portal.env.example sets (or leaves for the operator to fill), and
    those it says the keys file holds."""
    text = (DEPLOY / "portal.env.example").read_text(encoding="utf-8")
    named = {m.group(1) for m in re.finditer(r"^([A-Z][A-Z0-9_]*)=", text, flags=re.M)}
    return named | set(re.findall(r"\b(?:PORTAL|STREAMLIT)_[A-Z_]*(?:KEY|SECRET)\b", text))


def made_keys(home: Path) -> dict[str, str]:
    """The portal's keys as an operator makes them (deploy/bin/portal_keys.py, into `home`), read
    back as systemd reads that EnvironmentFile (single-quoted values, taken as they stand)."""
    keys_file = home / "keys.env"
    made = subprocess.run(
        [sys.executable, str(DEPLOY / "bin" / "portal_keys.py"), str(keys_file)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert made.returncode == 0, made.stderr
    assert keys_file.stat().st_mode & 0o077 == 0, "the keys file is readable by others"
    keys = {}
    for line in keys_file.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            name, _, quoted = line.partition("=")
            assert quoted[:1] == quoted[-1:] == "'" and "'" not in quoted[1:-1], f"{name} is not single-quoted"
            keys[name] = quoted[1:-1]
    return keys


def render_site(values: Mapping[str, str]) -> str:
    """deploy/nginx/portal.conf.template with its placeholders filled, as envsubst would with the
    list of names the template's header gives (nginx's own $variables are left alone)."""
    text = SITE_TEMPLATE.read_text(encoding="utf-8")
    for name, value in values.items():
        assert f"${{{name}}}" in text, f"the site template has no ${{{name}}}"
        text = text.replace(f"${{{name}}}", value)
    left = re.findall(r"\$\{\w+\}", text)
    assert not left, f"placeholders left in the site: {left}"
    return text


@dataclass
class Process:
    name: str
    argv: list[str]
    env: dict[str, str]
    log: Path
    popen: subprocess.Popen[bytes] | None = None
    user: int | None = None

    def start(self) -> Process:
        assert self.popen is None or self.popen.poll() is not None, f"{self.name} is running"
        with open(self.log, "ab") as log:
            self.popen = subprocess.Popen(
                self.argv,
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                **({"user": self.user, "group": self.user, "extra_groups": []} if self.user is not None else {}),
            )
        return self

    @property
    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def stop(self, timeout_s: float = 15.0) -> None:
        """SIGTERM to the process's own process group (its id is the process's), SIGKILL to it
        after `timeout_s`; only while the process is not yet reaped, so the id is still its own."""
        if self.popen is None:
            return
        for sig, wait in ((signal.SIGTERM, timeout_s), (signal.SIGKILL, 5.0)):
            if self.popen.poll() is not None:
                break
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout=wait)

    def exited(self) -> str:
        return f"{self.name} exited with {self.popen.returncode if self.popen else '?'} (log: {self.log})"


@dataclass
class Topology:
    """Two (or more) replicas behind nginx, workers, one sandbox server, on one database."""

    home: Path  # logs and the partners' book
    nginx_home: Path  # nginx's prefix: configuration, pid, temp files, access log
    env: dict[str, str]  # every process's environment
    url: str = ""  # nginx: what the browser (and PORTAL_URL) uses
    sandbox: Process | None = None
    workers: list[Process] = field(default_factory=list)
    replicas: list[Process] = field(default_factory=list)
    replica_ports: list[int] = field(default_factory=list)
    nginx: Process | None = None

    @property
    def access_log(self) -> Path:
        return self.nginx_home / "access.log"

    @property
    def partner_book(self) -> Path:
        return self.home / "partners.sqlite3"

    def replica_address(self, index: int) -> str:
        """As nginx's upstream list and access log name it."""
        return f"127.0.0.1:{self.replica_ports[index]}"

    def replica_url(self, index: int) -> str:
        return f"http://{self.replica_address(index)}"

    def process(self, name: str, argv: list[str], *, env: Mapping[str, str] | None = None) -> Process:
        return Process(name, argv, dict(env or self.env), self.home / f"{name}.log")

    def start_replica(self, index: int) -> None:
        """Replica `index` as portal@PORT.service runs it (`wait_healthy` waits for it)."""
        port = str(self.replica_ports[index])
        if len(self.replicas) <= index:
            self.replicas.append(self.process(f"portal-{port}", unit_command("portal@.service", port)))
        self.replicas[index].start()

    def wait_healthy(self, index: int, timeout_s: float = 90) -> None:
        """The unit's ExecStartPost: its health check, waiting until the replica answers."""
        replica = self.replicas[index]
        check = unit_command("portal@.service", str(self.replica_ports[index]), key="ExecStartPost")
        done = subprocess.run(check, cwd=ROOT, capture_output=True, text=True, timeout=timeout_s + 10)
        assert replica.running, replica.exited()
        assert done.returncode == 0, f"{done.stderr.strip()} (log: {replica.log})"

    def stop_replica(self, index: int) -> None:
        self.replicas[index].stop()

    def routes(self) -> list[tuple[str, str, str, str]]:
        """(route cookie, upstream, method, path) of each request nginx logged."""
        if not self.access_log.exists():
            return []
        found = []
        for line in self.access_log.read_text(encoding="utf-8", errors="replace").splitlines():
            match = ACCESS_LINE.search(line)
            if match:
                found.append((match["route"], match["upstream"], match["method"], match["path"]))
        return found

    def route_for(self, index: int, tries: int = 64) -> str:
        """A `portal_route` value nginx sends to replica `index`: asked for by fresh requests
        (no cookie) until nginx hands one out that it routed there."""
        for _ in range(tries):
            answer = httpx.get(f"{self.url}/_stcore/health", timeout=5)
            route = answer.cookies.get(ROUTE_COOKIE)
            if route is not None:
                time.sleep(0.05)  # nginx writes the log line once the answer is sent
                if [u for r, u, _, _ in self.routes() if r == route] == [self.replica_address(index)]:
                    return route
        raise AssertionError(f"nginx sent no new browser to replica {index} in {tries} tries")

    def wait_routed(self, route: str, index: int, timeout_s: float = 20.0) -> None:
        """Until nginx sends the route cookie `route` to replica `index` (after a replica was down,
        nginx leaves it alone for the site's fail_timeout before trying it again)."""
        deadline = time.monotonic() + timeout_s
        while True:
            answer = httpx.get(f"{self.url}/_stcore/health", cookies={ROUTE_COOKIE: route}, timeout=5)
            time.sleep(0.2)  # nginx writes the log line once the answer is sent
            last = [upstream for r, upstream, _, _ in self.routes() if r == route][-1:]
            if answer.status_code == 200 and last == [self.replica_address(index)]:
                return
            assert time.monotonic() < deadline, f"nginx still sends {route} to {last}"

    def stop(self) -> None:
        """Every process, the front first."""
        for process in [self.nginx, *self.replicas, *self.workers, self.sandbox]:
            if process is not None:
                process.stop()


def _nginx_conf(home: Path, site: Path) -> str:
    """nginx's own configuration for a run of this user's: everything under `home`."""
    temp = home / "temp"
    return f"""# written by tests/support/topology.py: nginx on loopback, everything under this directory
worker_processes 1;
pid {home}/nginx.pid;
error_log {home}/error.log warn;
events {{ worker_connections 512; }}
http {{
    client_body_temp_path {temp}/body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;
    access_log off;
    include {site};
}}
"""


def wait_for(url: str, timeout_s: float, process: Process) -> None:
    """Until `url`, served by `process`, answers 200 (and not after `process` has exited)."""
    gone = lambda: None if process.running else f"{process.exited()} (log: {process.log})"  # noqa: E731
    wait_until_up(url, timeout_s=timeout_s, gone=gone)


@contextlib.contextmanager
def scale_out(
    home: Path, nginx: str, database_url: str, *, settings: Mapping[str, str], workers: int = 2
) -> Iterator[Topology]:
    """Migrate `database_url` (portal-migrate.service), then start one sandbox server, `workers`
    workers, the site's two replicas and nginx in front, all on loopback; stopped on exit.
    `settings` adds to (or overrides) the processes' environment. Logs go to `home`."""
    # nginx's prefix, in the system's temporary directory: nginx's own user (below) must reach it
    nginx_home = Path(tempfile.mkdtemp(prefix="portal-nginx-"))
    ports = [free_port(), free_port()]
    front, sandbox_port = free_port(), free_port()
    url = f"http://127.0.0.1:{front}"
    partners = f"http://127.0.0.1:{sandbox_port}"
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "PORTAL_URL": url,
        "EMBEDDED_WORKER": "0",
        "PORTAL_ENV": "development",
        "TERMS_FEED_URL": f"{partners}/terms",
        "CARRIER_API_URL": f"{partners}/carrier",
        "PAYOUT_API_URL": f"{partners}/payouts",
        "SMS_GATEWAY_URL": "sandbox",
        "PORTAL_SECRETS_FILE": str(home / "secrets.json"),  # never read: the keys are in the environment
    }
    env.update(made_keys(home))  # the replicas' shared keys (app.py derives Streamlit's cookie secret)
    env.update(settings)
    topology = Topology(home, nginx_home, env, url=url, replica_ports=ports)
    try:
        migrate = subprocess.run(
            unit_command("portal-migrate.service"), cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
        )
        assert migrate.returncode == 0, migrate.stderr[-2000:]

        sandbox_env = {**env, "SANDBOX_BOOKS": str(topology.partner_book)}  # as portal-sandbox@.service sets it
        topology.sandbox = topology.process(
            "sandbox", unit_command("portal-sandbox@.service", str(sandbox_port)), env=sandbox_env
        ).start()
        wait_for(f"{partners}/terms/channels/alipay", 30, topology.sandbox)  # the replicas read terms on start
        topology.workers = [
            topology.process(f"worker-{n}", unit_command("portal-worker@.service", str(n))).start()
            for n in range(1, workers + 1)
        ]
        for index in range(len(ports)):
            topology.start_replica(index)
        for index in range(len(ports)):
            topology.wait_healthy(index)
        for worker in topology.workers:
            assert worker.running, worker.exited()

        (nginx_home / "temp").mkdir()
        tls_off = nginx_home / "tls-off.conf"
        shutil.copyfile(DEPLOY / "nginx" / "tls-off.conf", tls_off)
        site = nginx_home / "portal.conf"
        values = {
            "PORTAL_LISTEN": f"127.0.0.1:{front}",
            "PORTAL_SERVER_NAME": "127.0.0.1",
            "PORTAL_TLS_CONF": str(tls_off),
            "PORTAL_ACCESS_LOG": str(topology.access_log),
            **{f"PORTAL_REPLICA_{i + 1}": f"127.0.0.1:{port}" for i, port in enumerate(ports)},
        }
        site.write_text(render_site(values), encoding="utf-8")
        conf = nginx_home / "nginx.conf"
        conf.write_text(_nginx_conf(nginx_home, site), encoding="utf-8")
        user = None
        if os.geteuid() == 0:  # never nginx as root: the whole prefix belongs to nobody
            user = NOBODY
            for path in [nginx_home, *nginx_home.rglob("*")]:
                os.chown(path, NOBODY, NOBODY)
        argv = [nginx, "-p", str(nginx_home), "-c", str(conf), "-e", str(nginx_home / "error.log"), "-g", "daemon off;"]
        topology.nginx = Process("nginx", argv, {"PATH": "/usr/sbin:/usr/bin:/bin"}, home / "nginx.log", user=user)
        topology.nginx.start()
        wait_for(f"{url}/_stcore/health", 20, topology.nginx)
        yield topology
    finally:
        topology.stop()
        for name in ("access.log", "error.log"):  # kept beside the other logs for a look afterwards
            with contextlib.suppress(OSError):
                shutil.copyfile(nginx_home / name, home / f"nginx-{name}")
        shutil.rmtree(nginx_home, ignore_errors=True)
