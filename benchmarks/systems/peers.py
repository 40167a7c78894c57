"""Peer servers on the same ONNX model, images and onnxruntime settings: Ray Serve and TorchServe.

Both run in ``.venv-peers`` (their dependencies clash with the main venv's protobuf/onnx), are
started as child processes on loopback ports and stopped by PID (every process of their tree).
What it took to run them fairly: benchmarks/README.md ("What is compared, and how it is kept fair").
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

from benchmarks.common import (
    PEERS_VENV,
    ROOT,
    BenchmarkSetupError,
    free_port,
    process_tree,
    stop_process_tree,
    venv_bin,
    wait_http,
)
from benchmarks.loadgen import HttpTarget, Target
from benchmarks.systems.base import System

PEERS_DIR = ROOT / "benchmarks" / "peers"


def _peer_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join((str(PEERS_VENV / "bin"), env.get("PATH", "")))
    env["PYTHONPATH"] = str(ROOT)  # fashiontag.images / onnx_session from this checkout
    env["RAY_USAGE_STATS_ENABLED"] = "0"
    env["OMP_NUM_THREADS"] = "1"
    for key in ("VIRTUAL_ENV", "RAY_ADDRESS"):
        env.pop(key, None)
    env.update(extra or {})
    return env


class _PeerSystem(System):
    """Common process handling: one launcher process whose whole tree is ours."""

    def __init__(self, model: Path, precision: str = "fp32", *, threads: int = 2,
                 max_batch: int = 16, batch_wait_ms: float = 5.0,
                 startup_timeout_s: float = 240.0) -> None:
        super().__init__(model, precision)
        self.threads, self.max_batch, self.batch_wait_ms = threads, max_batch, batch_wait_ms
        self.startup_timeout_s = startup_timeout_s
        self.process: subprocess.Popen | None = None
        self.port = 0
        self.log_path: Path | None = None
        self._log = None
        self._output_width: int | None = None

    @property
    def output_width(self) -> int:
        if self._output_width is None:
            from fashiontag.onnxio.metadata import read_metadata

            self._output_width = read_metadata(self.model).taxonomy.total_values
        return self._output_width

    def _launch(self, cmd: list[str], cwd: Path, env: dict[str, str]) -> None:
        self.log_path = cwd / "server.log"
        self._log = open(self.log_path, "ab")
        self.process = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=self._log,
                                        stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                        start_new_session=True)

    def log_tail(self, lines: int = 40) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def pids(self) -> list[int]:
        return [self.process.pid] if self.process is not None else []

    def stop(self) -> None:
        if self.process is not None:
            # snapshot first: a launcher that exits orphans its children, and they must go too
            tree = process_tree(self.process.pid)
            self._before_stop()
            stop_process_tree(self.process, grace_s=20.0, also=tree)
            self.process = None
        if self._log is not None:
            self._log.close()
            self._log = None
        self._remove_workdir()

    def _before_stop(self) -> None:
        pass


class RayServeSystem(_PeerSystem):
    """Ray Serve 2.x, one replica, ``@serve.batch``; ``max_ongoing_requests`` raised to 64
    (the default of 5 caps batches at 5). Requests go through Serve's HTTP proxy."""

    name = "ray-serve"

    @property
    def settings(self) -> dict:
        return {"replicas": 1, "intra_op_threads": self.threads, "max_batch_size": self.max_batch,
                "batch_wait_timeout_ms": self.batch_wait_ms, "max_ongoing_requests": 64,
                "protocol": "HTTP (Serve proxy)"}

    def start(self) -> None:
        python = venv_bin(PEERS_VENV, "python")
        work = self._make_workdir("ftray-")
        self.port = free_port()
        cmd = [str(python), str(PEERS_DIR / "ray_app.py"), "--model", str(self.model),
               "--port", str(self.port), "--temp-dir", str(work / "ray"),
               "--threads", str(self.threads), "--max-batch", str(self.max_batch),
               "--batch-wait-ms", str(self.batch_wait_ms)]
        self._launch(cmd, work, _peer_env())
        deadline = time.monotonic() + self.startup_timeout_s
        while "READY" not in self.log_tail(400):
            if self.process.poll() is not None:
                raise BenchmarkSetupError(f"Ray Serve exited with {self.process.returncode}:\n"
                                          f"{self.log_tail()}")
            if time.monotonic() > deadline:
                raise BenchmarkSetupError(f"Ray Serve not ready in {self.startup_timeout_s:.0f} s"
                                          f":\n{self.log_tail()}")
            time.sleep(0.5)
        wait_http(f"http://127.0.0.1:{self.port}/-/routes", 60, self.process, log=self.log_path)

    def _before_stop(self) -> None:
        # the driver shuts Serve and Ray down on SIGTERM; give it the chance before the PIDs go
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            pass

    def target(self) -> Target:
        return HttpTarget(f"http://127.0.0.1:{self.port}/", self.output_width, name=self.name)


class TorchServeSystem(_PeerSystem):
    """TorchServe 0.12 (Java frontend from Debian's openjdk-17), one python worker with
    TorchServe's own batching (batchSize, maxBatchDelay); token auth off for a local benchmark."""

    name = "torchserve"

    @property
    def settings(self) -> dict:
        return {"workers": 1, "intra_op_threads": self.threads, "batch_size": self.max_batch,
                "max_batch_delay_ms": self.batch_wait_ms, "protocol": "HTTP"}

    def _archive(self, store: Path) -> None:
        archiver = venv_bin(PEERS_VENV, "torch-model-archiver")
        extra = store.parent / "extra"
        extra.mkdir()
        model_file = extra / "model.onnx"
        shutil.copy2(self.model, model_file)
        (extra / "settings.json").write_text(json.dumps(
            {"model_file": "model.onnx", "threads": self.threads, "spinning": False}))
        subprocess.run([str(archiver), "--model-name", "fashiontag", "--version", "1.0",
                        "--handler", str(PEERS_DIR / "torchserve_handler.py"),
                        "--extra-files", f"{model_file},{extra / 'settings.json'}",
                        "--export-path", str(store), "--archive-format", "no-archive"],
                       check=True, capture_output=True, env=_peer_env(), timeout=300)

    def start(self) -> None:
        if shutil.which("java") is None:
            raise BenchmarkSetupError("TorchServe needs Java: apt-get install "
                                      "openjdk-17-jre-headless (make bench-venvs does it)")
        launcher = venv_bin(PEERS_VENV, "torchserve")
        work = self._make_workdir("ftts-")
        store = work / "store"
        store.mkdir()
        self._archive(store)
        self.port = free_port()
        mgmt, metrics = free_port(), free_port()
        models = {"fashiontag": {"1.0": {
            "defaultVersion": True, "marName": "fashiontag", "minWorkers": 1, "maxWorkers": 1,
            "batchSize": self.max_batch, "maxBatchDelay": int(self.batch_wait_ms),
            "responseTimeout": 120}}}
        config = work / "config.properties"
        config.write_text("\n".join([
            f"inference_address=http://127.0.0.1:{self.port}",
            f"management_address=http://127.0.0.1:{mgmt}",
            f"metrics_address=http://127.0.0.1:{metrics}",
            "disable_token_authorization=true",
            "enable_envvars_config=false",
            f"model_store={store}",
            "load_models=fashiontag",
            f"models={json.dumps(models)}",
            "default_workers_per_model=1",
            "job_queue_size=1000",
            "vmargs=-Xmx1g -XX:+UseSerialGC -XX:-UsePerfData",
        ]) + "\n")
        cmd = [str(launcher), "--start", "--foreground", "--ncs", "--disable-token-auth",
               "--model-store", str(store), "--ts-config", str(config)]
        self._launch(cmd, work, _peer_env({"LOG_LOCATION": str(work / "logs"),
                                           "METRICS_LOCATION": str(work / "logs")}))
        wait_http(f"http://127.0.0.1:{mgmt}/models/fashiontag", self.startup_timeout_s,
                  self.process, log=self.log_path, ok=lambda s: s == 200)
        self._wait_worker(mgmt)

    def _wait_worker(self, mgmt: int) -> None:
        import urllib.request

        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            with urllib.request.urlopen(f"http://127.0.0.1:{mgmt}/models/fashiontag",
                                        timeout=5) as r:
                workers = json.loads(r.read())[0].get("workers", [])
            if workers and all(w.get("status") == "READY" for w in workers):
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.5)
        raise BenchmarkSetupError(f"TorchServe worker not ready:\n{self.log_tail()}")

    def target(self) -> Target:
        return HttpTarget(f"http://127.0.0.1:{self.port}/predictions/fashiontag",
                          self.output_width, name=self.name)


PEERS = {"ray-serve": RayServeSystem, "torchserve": TorchServeSystem}
