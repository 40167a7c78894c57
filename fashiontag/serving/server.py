"""Start, watch and stop the real ``tritonserver`` binary shipped in the ``nvidia-pytriton`` wheel.

What it takes on a CPU machine (docs/serving.md, "Triton on a CPU machine"):
- the wheel's ``tritonserver`` tree is copied once to a writable cache folder, with the python
  backend stub for this interpreter's version put into ``backends/python/``;
- ``LD_LIBRARY_PATH`` starts with this interpreter's own lib folder (else the stub can pair the
  system libpython with another Python's standard library) and the wheel's bundled libraries;
- ``PATH`` starts with this environment's ``bin`` so the stub runs this environment's python;
- each server gets its own shared-memory prefix, so exactly its ``/dev/shm`` regions are removed
  when it stops, even after a crashed stub.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from fashiontag.errors import ServerError
from fashiontag.protocol import ADMIN_KEY_HEADER, admin_headers
from fashiontag.serving.metrics import (
    SERVER_RESTARTS,
    SERVER_UP,
    SUMMARY_LATENCIES_FLAG,
    WATCHDOG_ERRORS,
    WATCHDOG_HEALS,
    LauncherMetrics,
    MetricSpec,
)
from fashiontag.serving.watchdog import StubWatchdog

__all__ = ["ServerConfig", "TlsConfig", "TritonServer", "find_free_port", "triton_home",
           "SHM_PREFIX_BASE"]

log = logging.getLogger(__name__)

SHM_PREFIX_BASE = "triton_python_backend_shm_region_"
_PY_VERSION = f"{sys.version_info.major}.{sys.version_info.minor}"


def find_free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _wheel_dir() -> Path:
    try:
        import pytriton
    except ImportError:
        raise ServerError("tritonserver comes from the nvidia-pytriton wheel: "
                          "pip install 'fashiontag[serve]'") from None
    return Path(pytriton.__file__).resolve().parent


def _wheel_libs() -> Path:
    return _wheel_dir().parent / "nvidia_pytriton.libs"


def triton_home(cache_root: str | Path | None = None) -> Path:
    """A writable copy of the wheel's tritonserver tree with this Python's stub in place."""
    import importlib.metadata

    version = importlib.metadata.version("nvidia-pytriton")
    root = Path(cache_root or os.environ.get("FASHIONTAG_CACHE",
                                              Path.home() / ".cache" / "fashiontag"))
    home = root / f"tritonserver-pytriton{version}-py{_PY_VERSION}"
    if (home / "bin" / "tritonserver").exists():
        return home
    source = _wheel_dir() / "tritonserver"
    stub = source / "python_backend_stubs" / _PY_VERSION / "triton_python_backend_stub"
    if not stub.exists():
        raise ServerError(f"the nvidia-pytriton wheel has no python backend stub for {_PY_VERSION}")
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".triton-", dir=root))
    try:
        shutil.copytree(source, staging / "t", symlinks=True)
        shutil.copy2(stub, staging / "t" / "backends" / "python" / stub.name)
        try:
            (staging / "t").rename(home)  # atomic; a concurrent winner is fine too
        except OSError:
            if not (home / "bin" / "tritonserver").exists():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return home


@dataclass(frozen=True)
class TlsConfig:
    """gRPC TLS: server certificate and key; ``client_ca`` set → mutual TLS (client certs)."""

    server_cert: Path
    server_key: Path
    client_ca: Path | None = None


@dataclass
class ServerConfig:
    repository: Path
    host: str = "127.0.0.1"  # loopback unless the operator says otherwise
    grpc_port: int = 8001  # 0 → a free port
    http_port: int = 8000
    metrics_port: int = 8002
    # the launcher's own metrics (watchdog heals, restarts): None = off, 0 = a free port
    launcher_metrics_port: int | None = None
    latency_summaries: bool = True  # p50/p90/p95/p99/p999 summaries on the metrics port
    model_control: str = "none"  # "explicit": load/unload API, locked with admin_key
    admin_key: str | None = None  # required header value for model control; generated if None
    load_models: tuple[str, ...] = ()  # explicit mode: models to load at start (default: all)
    watchdog: bool = True  # heal dead python stubs, revive an exited server (serving/watchdog.py)
    log_verbose: int = 0
    exit_timeout_s: int = 30
    heal_grace_s: float = 5.0  # healing restart: in-flight work in a dead stub never ends
    startup_timeout_s: float = 180.0
    tls: TlsConfig | None = None
    extra_args: tuple[str, ...] = ()
    log_path: Path | None = None
    env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.model_control not in ("none", "explicit"):
            raise ValueError(f"model_control must be 'none' or 'explicit': {self.model_control!r}")
        if self.model_control == "explicit" and not self.admin_key:
            self.admin_key = secrets.token_urlsafe(24)


class TritonServer:
    """A running tritonserver process; a context manager that always cleans up after itself."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.process: subprocess.Popen | None = None
        self.shm_prefix = ""
        self.restarts = 0
        self._log_file = None
        self._own_log_dir: Path | None = None
        self._lock = threading.RLock()
        self._watchdog: StubWatchdog | None = None
        self._stopping = False
        self._launcher_metrics: LauncherMetrics | None = None
        self._heals = 0  # of watchdogs gone by (a stop ends the watchdog, not the count)
        self._watchdog_errors = 0

    # ------------------------------------------------------------------ addresses
    @property
    def grpc_url(self) -> str:
        return f"{self._client_host}:{self.config.grpc_port}"

    @property
    def http_url(self) -> str:
        return f"http://{self._client_host}:{self.config.http_port}"

    @property
    def metrics_url(self) -> str:
        return f"http://{self._client_host}:{self.config.metrics_port}/metrics"

    @property
    def launcher_metrics_url(self) -> str | None:
        """The launcher's own Prometheus endpoint (watchdog heals, restarts), when enabled."""
        if self._launcher_metrics is None:
            return None
        return f"http://{self._client_host}:{self._launcher_metrics.port}/metrics"

    @property
    def _client_host(self) -> str:
        return "127.0.0.1" if self.config.host in ("0.0.0.0", "") else self.config.host

    @property
    def log_path(self) -> Path:
        assert self.config.log_path is not None
        return self.config.log_path

    def status(self) -> dict:
        """What the launcher has done to keep this server up, for operators and tests:
        restarts, heals, and watchdog looks that failed (each logged with its traceback)."""
        dog = self._watchdog
        return {"running": self.is_running(), "restarts": self.restarts,
                "watchdog": None if dog is None else {
                    "alive": dog.is_alive(), "heals": dog.heals, "errors": dog.errors}}

    def launcher_metric_values(self) -> dict[MetricSpec, float]:
        """What :attr:`launcher_metrics_url` serves (names: fashiontag.serving.metrics)."""
        dog = self._watchdog
        return {WATCHDOG_HEALS: self._heals + (dog.heals if dog else 0),
                SERVER_RESTARTS: self.restarts,
                WATCHDOG_ERRORS: self._watchdog_errors + (dog.errors if dog else 0),
                SERVER_UP: float(self.is_running())}

    # ------------------------------------------------------------------ lifecycle
    def command(self, home: Path) -> list[str]:
        c = self.config
        cmd = [
            str(home / "bin" / "tritonserver"),
            f"--model-repository={Path(c.repository).resolve()}",
            f"--backend-directory={home / 'backends'}",
            f"--cache-directory={home / 'caches'}",
            f"--grpc-address={c.host}", f"--grpc-port={c.grpc_port}",
            f"--http-address={c.host}", f"--http-port={c.http_port}",
            f"--metrics-address={c.host}", f"--metrics-port={c.metrics_port}",
            "--allow-gpu-metrics=false",
            f"--model-control-mode={c.model_control}",
            *self._model_control_args(),
            f"--exit-timeout-secs={c.exit_timeout_s}",
            f"--log-verbose={c.log_verbose}",
            "--strict-readiness=true",
            *([SUMMARY_LATENCIES_FLAG] if c.latency_summaries else []),
            f"--backend-config=python,shm-region-prefix-name={self.shm_prefix}",
            "--backend-config=python,shm-default-byte-size=16777216",
        ]
        if c.tls is not None:
            cmd += ["--grpc-use-ssl=true", f"--grpc-server-cert={c.tls.server_cert}",
                    f"--grpc-server-key={c.tls.server_key}"]
            if c.tls.client_ca is not None:
                cmd += ["--grpc-use-ssl-mutual=true", f"--grpc-root-cert={c.tls.client_ca}"]
        return cmd + list(c.extra_args)

    def _model_control_args(self) -> list[str]:
        """Explicit mode loads every model at start and locks the repository API with the key.

        Triton only accepts the key on its command line, so it is visible to local users through
        /proc; run the server in its own container or user where that matters
        (docs/reliability-and-security.md, "Locked-down defaults").
        """
        c = self.config
        if c.model_control != "explicit":
            return []
        restriction = f"model-repository:{ADMIN_KEY_HEADER}={c.admin_key}"
        loads = [f"--load-model={m}" for m in (c.load_models or ("*",))]
        return [*loads, f"--grpc-restricted-protocol={restriction}",
                f"--http-restricted-api={restriction}"]

    @property
    def admin_headers(self) -> dict[str, str]:
        """gRPC metadata for the model-repository API; empty when model control is off."""
        return admin_headers(self.config.admin_key)

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        libdir = sysconfig.get_config_var("LIBDIR") or ""
        env["LD_LIBRARY_PATH"] = os.pathsep.join(
            p for p in (libdir, str(_wheel_libs()), env.get("LD_LIBRARY_PATH", "")) if p)
        env["PATH"] = os.pathsep.join((str(Path(sys.executable).parent), env.get("PATH", "")))
        env.setdefault("OMP_NUM_THREADS", "1")
        env.update(self.config.env)
        return env

    def start(self) -> TritonServer:
        c = self.config
        self._stopping = False
        if not Path(c.repository).is_dir():
            raise ServerError(f"model repository {c.repository} does not exist; run `make model`")
        for attr in ("grpc_port", "http_port", "metrics_port"):
            if getattr(c, attr) == 0:
                setattr(c, attr, find_free_port(self._client_host))
        if self._port_answers():
            raise ServerError(f"something already answers on {self.http_url}; pick other ports")
        if c.log_path is None:
            self._own_log_dir = Path(tempfile.mkdtemp(prefix="fashiontag-triton-"))
            c.log_path = self._own_log_dir / "tritonserver.log"
        Path(c.log_path).parent.mkdir(parents=True, exist_ok=True)
        with self._lock:
            self._launch()
        if c.launcher_metrics_port is not None and self._launcher_metrics is None:
            self._launcher_metrics = LauncherMetrics(self.launcher_metric_values, c.host,
                                                     c.launcher_metrics_port)
            c.launcher_metrics_port = self._launcher_metrics.port
        if c.watchdog and self._watchdog is None:
            self._watchdog = StubWatchdog(self._pgid, self._heal, self.is_version_serving,
                                          revive=self._revive)
            self._watchdog.rebaseline()  # now, not on the first tick: a stub may die at once
            self._watchdog.start()
        return self

    def _launch(self) -> None:
        home = triton_home()
        self.shm_prefix = f"{SHM_PREFIX_BASE}ft{os.getpid()}_{self.config.grpc_port}_"
        self._log_file = open(self.config.log_path, "ab")
        cmd = self.command(home)
        log.info("starting %s", " ".join(a.split("=")[0] if "restricted" in a else a for a in cmd))
        self.process = subprocess.Popen(cmd, stdout=self._log_file, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, env=self.environment(),
                                        start_new_session=True)
        try:
            self.wait_ready(self.config.startup_timeout_s)
        except BaseException:
            self._terminate()
            raise

    def _pgid(self) -> int | None:
        with self._lock:
            return self.process.pid if self.is_running() else None

    def _heal(self, models: set[str]) -> None:
        """Reload the broken models (model control on) or restart the server on the same ports."""
        if self.config.model_control == "explicit":
            from tritonclient.grpc import InferenceServerClient

            with InferenceServerClient(self.grpc_url) as client:
                for model in sorted(models):
                    # loading an unchanged, loaded model is a no-op in Triton: unload first
                    client.unload_model(model, headers=self.admin_headers)
                    client.load_model(model, headers=self.admin_headers)
            log.warning("reloaded %s", sorted(models))
            return
        # Requests stuck in the dead stub would hold a graceful stop for the whole exit timeout
        # (30 s, then a slow start on a busy machine: clients gave up), so the grace is short.
        # If the start fails, the watchdog finds no server and revives it, backing off.
        self.restart(grace_s=self.config.heal_grace_s)

    def _revive(self) -> None:
        """tritonserver exited on its own: start it again, unless a stop is under way."""
        with self._lock:
            if self._stopping or self.is_running():
                return
            log.warning("tritonserver exited on its own (code %s); starting it again",
                        self.process.returncode if self.process else None)
            self.restart(grace_s=0)

    def restart(self, grace_s: float | None = None) -> None:
        """Stop (SIGTERM, ``grace_s`` for in-flight work, then SIGKILL) and start on the same
        ports. A failed start raises; under the watchdog, the next look retries it."""
        with self._lock:
            log.warning("restarting tritonserver on %s", self.grpc_url)
            self._terminate(grace_s)
            self._launch()
            self.restarts += 1

    def _port_answers(self) -> bool:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.settimeout(0.2)
            return s.connect_ex((self._client_host, self.config.http_port)) == 0

    def is_ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.http_url}/v2/health/ready", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    def is_version_ready(self, model: str, version: str) -> bool:
        try:
            url = f"{self.http_url}/v2/models/{model}/versions/{version}/ready"
            with urllib.request.urlopen(url, timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    def is_version_serving(self, model: str, version: str) -> bool:
        """Ready *and* still named by the model's config. A version being retired by a hot
        reload (few-shot add, rollback) loses its stubs while Triton still reports it ready for
        a second or two; the new config no longer lists it, so the watchdog leaves it alone."""
        if not self.is_version_ready(model, version):
            return False
        try:
            with urllib.request.urlopen(f"{self.http_url}/v2/models/{model}/config",
                                        timeout=2) as r:
                policy = json.loads(r.read()).get("version_policy") or {}
        except (OSError, ValueError):
            return True  # ready is all we know
        specific = (policy.get("specific") or {}).get("versions")
        return specific is None or int(version) in {int(v) for v in specific}

    def is_running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.is_running():
                raise ServerError(f"tritonserver exited with code {self.process.returncode}:\n"
                                  f"{self.log_tail()}")
            if self.is_ready():
                return
            time.sleep(0.25)
        raise ServerError(f"tritonserver not ready after {timeout_s:.0f} s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = Path(self.config.log_path).read_text(errors="replace")
        except (OSError, TypeError):
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout_s: float | None = None) -> int | None:
        """SIGTERM (Triton finishes in-flight requests), then SIGKILL the group; clean /dev/shm."""
        with self._lock:
            self._stopping = True  # the watchdog must not revive what is being stopped
        if self._watchdog is not None:
            self._watchdog.stop()
            self._watchdog.join(5)
            self._heals += self._watchdog.heals
            self._watchdog_errors += self._watchdog.errors
            self._watchdog = None
        if self._launcher_metrics is not None:
            self._launcher_metrics.close()
            self._launcher_metrics = None
        with self._lock:
            return self._terminate(timeout_s)

    def _terminate(self, timeout_s: float | None = None) -> int | None:
        code = None
        if self.process is not None:
            timeout_s = timeout_s if timeout_s is not None else self.config.exit_timeout_s + 10
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGTERM)
                try:
                    self.process.wait(timeout_s)
                except subprocess.TimeoutExpired:
                    log.warning("tritonserver did not stop in %.0f s; killing it", timeout_s)
            self._kill_group()
            code = self.process.returncode
        self.cleanup_shm()
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        return code

    def _kill_group(self) -> None:
        """Stubs live in the server's session; none may outlive it."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            pass

    def cleanup_shm(self) -> list[Path]:
        if not self.shm_prefix:
            return []
        removed = []
        for path in Path("/dev/shm").glob(f"{self.shm_prefix}*"):
            try:
                path.unlink()
                removed.append(path)
            except OSError:
                pass
        return removed

    def __enter__(self) -> TritonServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
        if self._own_log_dir is not None and exc[0] is None:
            shutil.rmtree(self._own_log_dir, ignore_errors=True)
