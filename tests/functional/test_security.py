"""Locked-down defaults: model control needs the operator's key; gRPC TLS and mutual TLS work."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from tritonclient.grpc import InferenceServerClient
from tritonclient.utils import InferenceServerException

from fashiontag.client import ClientError, TagClient
from fashiontag.protocol import ATTRIBUTES_MODEL, GRPC_ADMIN_KEY_HEADER
from fashiontag.serving.server import TlsConfig, TritonServer
from tests.functional.conftest import free_port_config


def test_model_control_is_off_by_default(server):
    with InferenceServerClient(server.grpc_url) as raw, \
            pytest.raises(InferenceServerException, match="explicit|not allowed|disabled|polling"):
        raw.load_model(ATTRIBUTES_MODEL)


def test_model_control_needs_the_admin_key(repository):
    config = free_port_config(repository, model_control="explicit",
                              admin_key="operator-secret-0123456789")
    with TritonServer(config) as server, InferenceServerClient(server.grpc_url) as raw:
        assert raw.is_model_ready(ATTRIBUTES_MODEL)  # every model loaded at start
        with pytest.raises(InferenceServerException, match="(?i)unauthenticated|restricted"):
            raw.unload_model(ATTRIBUTES_MODEL)
        with pytest.raises(InferenceServerException):
            raw.unload_model(ATTRIBUTES_MODEL, headers={GRPC_ADMIN_KEY_HEADER: "guess"})
        assert raw.is_model_ready(ATTRIBUTES_MODEL)
        raw.load_model(ATTRIBUTES_MODEL, headers=server.admin_headers)
        assert raw.is_model_ready(ATTRIBUTES_MODEL)
        assert config.admin_key not in server.log_tail(400)


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Path:
    """A throwaway CA with a server certificate for 127.0.0.1 and a client certificate."""
    d = tmp_path_factory.mktemp("pki")
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=test-ca",
             "-keyout", str(d / "ca.key"), "-out", str(d / "ca.crt"))
    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    for name, cn in (("server", "127.0.0.1"), ("client", "catalog-ingest")):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={cn}",
                 "-keyout", str(d / f"{name}.key"), "-out", str(d / f"{name}.csr"))
        _openssl("x509", "-req", "-in", str(d / f"{name}.csr"), "-CA", str(d / "ca.crt"),
                 "-CAkey", str(d / "ca.key"), "-CAcreateserial", "-days", "2",
                 "-extfile", str(d / "san.ext"), "-out", str(d / f"{name}.crt"))
    return d


def test_tls_client_with_the_ca_tags_and_plaintext_client_fails(repository, pki, sample_photos):
    tls = TlsConfig(pki / "server.crt", pki / "server.key")
    with TritonServer(free_port_config(repository, tls=tls)) as server:
        secure = TagClient(server.grpc_url, ssl=True, root_certificates=str(pki / "ca.crt"))
        assert secure.tag(sample_photos[0].read_bytes())["category"].confidence > 0
        plain = TagClient(server.grpc_url, timeout_s=5)
        with pytest.raises(ClientError):
            plain.tag(sample_photos[0].read_bytes())


def test_mutual_tls_refuses_clients_without_a_certificate(repository, pki, sample_photos):
    tls = TlsConfig(pki / "server.crt", pki / "server.key", client_ca=pki / "ca.crt")
    with TritonServer(free_port_config(repository, tls=tls)) as server:
        image = sample_photos[0].read_bytes()
        with TagClient(server.grpc_url, ssl=True, root_certificates=str(pki / "ca.crt"),
                       private_key=str(pki / "client.key"),
                       certificate_chain=str(pki / "client.crt")) as trusted:
            assert trusted.tag(image)["category"].confidence > 0
        with TagClient(server.grpc_url, ssl=True, root_certificates=str(pki / "ca.crt"),
                       timeout_s=5) as stranger, pytest.raises(ClientError):
            stranger.tag(image)


def test_tag_cli_speaks_mutual_tls(repository, pki, sample_photos, tmp_path):
    tls = TlsConfig(pki / "server.crt", pki / "server.key", client_ca=pki / "ca.crt")
    with TritonServer(free_port_config(repository, tls=tls)) as server:
        base = [sys.executable, "-m", "fashiontag", "tag", *map(str, sample_photos),
                "--url", server.grpc_url, "--tls-ca", str(pki / "ca.crt"), "--retries", "1",
                "--timeout", "10"]
        out = tmp_path / "tags.jsonl"
        run = subprocess.run([*base, "--tls-cert", str(pki / "client.crt"), "--tls-key",
                              str(pki / "client.key"), "--out", str(out)],
                             capture_output=True, text=True, timeout=180)
        assert run.returncode == 0, run.stderr
        records = [json.loads(line) for line in out.read_text().splitlines()]
        assert len(records) == len(sample_photos) and all("attributes" in r for r in records)
        stranger = subprocess.run(base, capture_output=True, text=True, timeout=180)
        assert stranger.returncode != 0 and "Traceback" not in stranger.stderr
