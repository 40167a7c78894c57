"""The catalog the studio shows: images by number, thumbnails cached, tags from the server.

Images are only ever addressed by their number in the catalog list the studio was opened with,
so a request can reach no file outside it (no path ever comes from the browser). Thumbnails are
made once (OpenCV, 200 px on the long side) and kept in ``<artifacts>/studio/thumbs``. Tags come
from the running server in the background (``TagClient.tag_stream``) and are kept in memory;
after a deploy or a rollback they are fetched again, so the grid shows what is served.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from fashiontag.images import DEFAULT_LIMITS, decode
from fashiontag.studio.labels import StudioError
from fashiontag.tagging.sources import open_sources

__all__ = ["CatalogImage", "Catalog", "TagCache", "THUMB_SIZE"]

log = logging.getLogger(__name__)

THUMB_SIZE = 200


@dataclass(frozen=True)
class CatalogImage:
    number: int
    id: str
    path: Path


class Catalog:
    """A directory, a list or a CSV of images (whatever ``fashiontag tag`` reads)."""

    def __init__(self, sources: Iterable[str | Path], thumbs: Path) -> None:
        items = open_sources([str(s) for s in sources])
        self.images = [CatalogImage(i, item.id, Path(item.path).resolve())
                       for i, item in enumerate(items)]
        if not self.images:
            raise StudioError("the catalog holds no images")
        self.by_path = {str(image.path): image for image in self.images}
        self.thumbs = Path(thumbs).resolve()  # send_file reads relative paths elsewhere

    def __len__(self) -> int:
        return len(self.images)

    def get(self, number: int) -> CatalogImage:
        if not 0 <= number < len(self.images):
            raise StudioError(f"no image number {number} in this catalog")
        return self.images[number]

    def thumbnail(self, number: int) -> Path:
        """A JPEG thumbnail of image ``number`` (made on first use)."""
        image = self.get(number)
        key = hashlib.sha1(str(image.path).encode()).hexdigest()[:20]
        path = self.thumbs / f"{key}.jpg"
        if not path.exists():
            rgb = decode(image.path.read_bytes(), DEFAULT_LIMITS, target=THUMB_SIZE)
            h, w = rgb.shape[:2]
            scale = THUMB_SIZE / max(h, w)
            small = cv2.resize(rgb, (max(1, round(w * scale)), max(1, round(h * scale))),
                               interpolation=cv2.INTER_AREA)
            ok, data = cv2.imencode(".jpg", np.ascontiguousarray(small[:, :, ::-1]),
                                    [cv2.IMWRITE_JPEG_QUALITY, 85])
            if not ok:
                raise StudioError(f"cannot make a thumbnail of image {number}")
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(data.tobytes())
            tmp.replace(path)
        return path


class TagCache:
    """Served tags of every catalog image, fetched in a background thread."""

    def __init__(self, catalog: Catalog, url: str | None, concurrency: int = 8) -> None:
        self.catalog, self.url, self.concurrency = catalog, url, concurrency
        self.records: dict[int, dict] = {}  # number → record (attributes or error)
        self.sets: dict[int, object] = {}  # number → AttributeSet (full distributions)
        self.generation = 0
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.taxonomy = None

    @property
    def done(self) -> int:
        return len(self.records)

    def refresh(self) -> None:
        """Fetch every image's tags again (after a deploy or a rollback); returns at once."""
        if self.url is None:
            return
        with self._lock:
            self.generation += 1
            generation = self.generation
            self.records, self.sets = {}, {}
        thread = threading.Thread(target=self._fetch, args=(generation,),
                                  name="fashiontag-studio-tags", daemon=True)
        self._thread = thread
        thread.start()

    def _fetch(self, generation: int) -> None:
        from fashiontag.client import TagClient

        try:
            with TagClient(self.url, experimental=True, timeout_s=120) as client:
                self.taxonomy = client.refresh_taxonomy()
                items = ((str(i.number), i.path) for i in self.catalog.images)
                for result in client.tag_stream(items, concurrency=self.concurrency,
                                                ordered=False, retries=4):
                    record = result.to_record()
                    with self._lock:
                        if generation != self.generation:
                            return  # a newer refresh took over
                        self.records[int(result.id)] = record
                        if result.ok:
                            self.sets[int(result.id)] = result.attributes
        except Exception:  # the grid shows what it has; the log says why the rest is missing
            log.exception("tagging the catalog failed")

    def wait(self, timeout_s: float) -> bool:
        thread = self._thread
        if thread is not None:
            thread.join(timeout_s)
        return thread is None or not thread.is_alive()

    def get(self, number: int) -> dict | None:
        return self.records.get(number)
