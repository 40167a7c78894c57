"""A balanced gRPC target reaches the real server: ``dns:///`` (what a headless Kubernetes
Service is addressed with) and ``ipv4:`` targets tag the same as ``host:port``, on the session's
tritonserver (no server of its own: ~1 s)."""

from __future__ import annotations

from fashiontag.cli import main
from fashiontag.client import TagClient


def _values(result) -> dict:
    return {name: a.value for name, a in result.attributes.items()}


def test_dns_and_ipv4_targets_tag_like_host_port(server, garment_samples):
    photos = garment_samples[:4]
    with TagClient(server.grpc_url) as client:
        expected = [_values(r) for r in client.tag_stream(photos)]
    host, port = server.grpc_url.rsplit(":", 1)
    for target in (f"dns:///{server.grpc_url}", f"ipv4:{host}:{port},{host}:{port}"):
        with TagClient(target) as client:
            assert client.is_ready()
            assert [_values(r) for r in client.tag_stream(photos)] == expected, target


def test_fashiontag_tag_takes_a_dns_target(server, garment_samples, tmp_path):
    out = tmp_path / "tags.jsonl"
    argv = ["tag", str(garment_samples[0]), "--url", f"dns:///{server.grpc_url}",
            "--out", str(out)]
    assert main(argv) == 0
    assert len(out.read_text().splitlines()) == 1
