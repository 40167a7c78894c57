"""Remote catalogs end to end: ``fashiontag tag`` over an HTTP list and an S3 prefix (real local
servers) against a real tritonserver; both clients' ``tag_stream`` take URLs as items."""

from __future__ import annotations

import asyncio
import json

import pytest

from fashiontag.cli import main
from fashiontag.client import AsyncTagClient, TagClient
from tests.remote_servers import catalog_http_server, local_s3

pytest.importorskip("moto")


def test_remote_photos_are_tagged_like_their_local_copies(server, monkeypatch, tmp_path,
                                                         garment_samples):
    photos = garment_samples[:4]
    with catalog_http_server() as http, local_s3(monkeypatch):
        from fashiontag.client.remote import filesystem

        fs, _ = filesystem("s3://shop")
        fs.mkdir("shop")
        for path in photos[2:]:
            fs.pipe(f"shop/new/{path.name}", path.read_bytes())
        listing = tmp_path / "urls.txt"  # two photos over HTTP, one missing, two from S3
        listing.write_text("".join(f"{http.url}/clothing/{p.name}\n" for p in photos[:2])
                           + f"{http.url}/missing/gone.jpg\n")
        out = tmp_path / "tags.jsonl"
        assert main(["tag", str(listing), "s3://shop/new/", "--out", str(out),
                     "--url", server.grpc_url, "--retries", "1"]) == 0
        records = {r["id"]: r for r in map(json.loads, out.read_text().splitlines())}

        with TagClient(server.grpc_url) as client:
            local = {p.name: client.tag(p.read_bytes()).to_dict() for p in photos}
            streamed = {r.id: r for r in client.tag_stream(
                [(p.name, f"{http.url}/clothing/{p.name}") for p in photos[:2]])}

        async def aio():
            async with AsyncTagClient(server.grpc_url) as aclient:
                return [r async for r in aclient.tag_stream(
                    [(photos[0].name, f"{http.url}/clothing/{photos[0].name}"),
                     ("gone", f"{http.url}/missing/gone.jpg")])]
        async_results = asyncio.run(aio())

    assert len(records) == 5
    for p in photos[:2]:
        record = records[f"{http.url}/clothing/{p.name}"]
        assert record["path"] == f"{http.url}/clothing/{p.name}"
        assert record["attributes"] == local[p.name]
        assert streamed[p.name].attributes.to_dict() == local[p.name]
    for p in photos[2:]:
        assert records[p.name]["path"] == f"s3://shop/new/{p.name}"
        assert records[p.name]["attributes"] == local[p.name]
    missing = records[f"{http.url}/missing/gone.jpg"]
    assert missing["error_type"] == "RemoteReadError" and "not found" in missing["error"]
    assert async_results[0].attributes.to_dict() == local[photos[0].name]
    assert async_results[1].error_type == "RemoteReadError"
