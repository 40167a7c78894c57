"""Remote catalogs without a tritonserver: listing and reading against a real HTTP server and a
real S3-compatible server (moto), with the limits, retries and per-image errors of files."""

from __future__ import annotations

import numpy as np
import pytest

from fashiontag.client._common import Preparer
from fashiontag.client.remote import RemoteReader, RemoteReadError
from fashiontag.images import DecodeLimits, preprocess_bytes
from fashiontag.tagging.sources import SourceError, SourceItem, count_items, open_sources
from tests.remote_servers import SAMPLES, catalog_http_server, local_s3

pytest.importorskip("fsspec")
FAST = RemoteReader(timeout_s=10.0, retries=3, backoff_s=0.01, max_backoff_s=0.05)
PHOTO = "photos/grace_hopper.jpg"


@pytest.fixture(scope="module")
def http():
    with catalog_http_server() as server:
        yield server


def test_an_http_image_reads_byte_for_byte_and_decodes_like_the_file(http):
    local = (SAMPLES / PHOTO).read_bytes()
    assert FAST.read(f"{http.url}/{PHOTO}", 1 << 25) == local
    _, tile = Preparer("client")((PHOTO, f"{http.url}/{PHOTO}"), 0)
    np.testing.assert_array_equal(tile, preprocess_bytes(local))


def test_a_404_is_the_images_own_error_at_once_and_a_500_is_retried(http):
    with pytest.raises(RemoteReadError, match="not found$"):
        FAST.read(f"{http.url}/missing/a.jpg", 1 << 25)
    assert http.hits[("GET", "/missing/a.jpg")] <= 1  # not retried

    url = f"/flaky/2/{PHOTO}"  # 500, 500, then the photo
    assert FAST.read(http.url + url, 1 << 25) == (SAMPLES / PHOTO).read_bytes()
    assert http.hits[("GET", url)] == 3
    with pytest.raises(RemoteReadError, match=r"HTTP 500 after 4 tries"):
        FAST.read(f"{http.url}/flaky/99/{PHOTO}", 1 << 25)


def test_the_byte_limit_stops_an_endless_stream_and_refuses_a_declared_size(http):
    with pytest.raises(RemoteReadError, match="more than 100000 bytes"):
        FAST.read(f"{http.url}/endless.jpg", 100_000)
    with pytest.raises(RemoteReadError, match="above the limit of 100000"):
        FAST.read(f"{http.url}/oversized.jpg", 100_000)
    # the client's limit is the server's (DecodeLimits.max_bytes), as for files
    small = Preparer("server", limits=DecodeLimits(max_bytes=1000))
    with pytest.raises(RemoteReadError, match="above the limit of 1000"):
        small((PHOTO, f"{http.url}/{PHOTO}"), 0)


def test_an_http_list_resolves_relative_entries_against_its_url(http, tmp_path):
    listing = tmp_path / "urls.txt"  # a local list naming URLs
    listing.write_text(f"{http.url}/{PHOTO}\nphotos/astronaut.jpg\n")
    items = list(open_sources([str(listing)]))
    assert items == [SourceItem(f"{http.url}/{PHOTO}", f"{http.url}/{PHOTO}"),
                     SourceItem("photos/astronaut.jpg", tmp_path / "photos/astronaut.jpg")]
    # a list served over HTTP: relative entries are relative to the list's URL
    with catalog_http_server(tmp_path) as lists:
        (tmp_path / "cat").mkdir()
        (tmp_path / "cat" / "list.txt").write_text("a.jpg\n../b.jpg\n/c.jpg\nhttp://x/d.jpg\n")
        items = list(open_sources([f"{lists.url}/cat/list.txt"]))
        assert [i.path for i in items] == [f"{lists.url}/cat/a.jpg", f"{lists.url}/b.jpg",
                                           f"{lists.url}/c.jpg", "http://x/d.jpg"]
        with pytest.raises(SourceError, match="not found"):
            count_items([f"{lists.url}/cat/nope.txt"])
    with pytest.raises(SourceError, match="cannot be listed"):
        list(open_sources([f"{http.url}/photos/"]))
    # a single image URL is not checked up front: a 404 becomes its error record later
    assert [i.id for i in open_sources([f"{http.url}/missing/x.jpg"])] == \
        [f"{http.url}/missing/x.jpg"]


def test_an_s3_prefix_is_listed_like_a_folder_and_read_under_the_limits(monkeypatch):
    pytest.importorskip("moto")
    with local_s3(monkeypatch):
        from fashiontag.client.remote import filesystem

        fs, _ = filesystem("s3://catalog")
        fs.mkdir("catalog")
        for path in sorted((SAMPLES / "photos").glob("*.jpg")):
            fs.pipe(f"catalog/shop/{path.name}", path.read_bytes())
        fs.pipe("catalog/shop/.hidden/x.jpg", b"x")
        fs.pipe("catalog/shop/lists/more.txt", b"../astronaut.jpg\n/other.jpg\n")

        items = list(open_sources(["s3://catalog/shop"]))  # no trailing slash: still a prefix
        assert [i.id for i in items] == ["astronaut.jpg", "grace_hopper.jpg", "lists/more.txt"]
        assert items[1].path == "s3://catalog/shop/grace_hopper.jpg"
        assert FAST.read(items[1].path, 1 << 25) == (SAMPLES / PHOTO).read_bytes()
        with pytest.raises(RemoteReadError, match="above the limit of 1000"):
            FAST.read(items[1].path, 1000)  # the size is known: refused before reading
        with pytest.raises(RemoteReadError, match="not found$"):
            FAST.read("s3://catalog/shop/gone.jpg", 1 << 25)

        listed = list(open_sources(["s3://catalog/shop/lists/more.txt"]))
        assert [i.path for i in listed] == ["s3://catalog/shop/astronaut.jpg",
                                            "s3://catalog/other.jpg"]
        with pytest.raises(SourceError, match="no objects"):
            list(open_sources(["s3://catalog/empty/"]))
        with pytest.raises(SourceError, match="cannot list"):
            list(open_sources(["s3://no-such-bucket/photos/"]))
