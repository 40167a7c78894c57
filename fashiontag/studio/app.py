"""``fashiontag studio``: the labelling web page that turns a person's clicks into a served
attribute (Flask; server-rendered pages and one small script shipped with the package).

Security, for a tool that runs on a merchandiser's machine next to a server with model control:

* binds 127.0.0.1 unless told otherwise, and answers only requests addressed to the host and
  port it listens on (a DNS-rebinding page cannot drive it);
* every state-changing request is a POST carrying the per-process CSRF token from the page's
  ``<meta name="csrf-token">`` in an ``X-CSRF-Token`` header; a cross-origin ``Origin`` is
  refused even with a token;
* images are addressed by their number in the opened catalog, never by a path from the browser;
* the operator's admin key stays in this process (it unlocks the server's model control for
  "train & deploy" and rollback) and never appears in a page.
"""

from __future__ import annotations

import hmac
import logging
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fashiontag.errors import FashiontagError
from fashiontag.studio.catalog import Catalog, TagCache
from fashiontag.studio.jobs import JobRunner
from fashiontag.studio.labels import AttributeDefinition, LabelStore, StudioError

__all__ = ["StudioConfig", "create_app", "PAGE_SIZE"]

log = logging.getLogger(__name__)

PAGE_SIZE = 48


@dataclass
class StudioConfig:
    catalog: tuple[Path, ...]
    artifacts: Path
    repository: Path
    serve_url: str | None = None
    admin_key: str | None = None
    host: str = "127.0.0.1"
    port: int = 8765
    csrf_token: str = field(default_factory=lambda: secrets.token_urlsafe(32))

    def __post_init__(self) -> None:
        # absolute against the working folder now: Flask's send_file reads a relative path
        # against the package folder, and a later chdir must not move the studio's files
        self.artifacts = Path(self.artifacts).resolve()
        self.repository = Path(self.repository).resolve()


class Studio:
    """Everything the routes share: catalog, tags, labels, the training job runner."""

    def __init__(self, cfg: StudioConfig) -> None:
        from fashiontag.artifacts import Artifacts

        self.cfg = cfg
        self.layout = Artifacts(cfg.artifacts)
        root = self.layout.studio
        self.catalog = Catalog(cfg.catalog, root / "thumbs")
        self.labels = LabelStore(self.layout)
        self.tags = TagCache(self.catalog, cfg.serve_url)
        self.jobs = JobRunner()

    # ----------------------------------------------------------------- taxonomy
    def taxonomy(self):
        """The served taxonomy (once the server answered), else the built one, else the
        default: the page works before a model or a server exists."""
        if self.tags.taxonomy is not None:
            return self.tags.taxonomy
        if self.layout.heads.exists():
            from fashiontag.model.heads import load_heads

            return load_heads(self.layout.heads)[0]
        from fashiontag.taxonomy import DEFAULT_TAXONOMY

        return DEFAULT_TAXONOMY

    def attribute_values(self, name: str) -> tuple[str, ...]:
        definitions = self.labels.definitions()
        if name in definitions:
            return tuple(sorted(definitions[name].values))
        taxonomy = self.taxonomy()
        if name in taxonomy:
            return tuple(v for v in taxonomy[name].values if v != taxonomy[name].invisible_value)
        raise StudioError(f"unknown attribute {name!r}")

    # ----------------------------------------------------------------- grid
    def tiles(self, page: int, category: str = "", attribute: str = "", value: str = ""
              ) -> tuple[list[dict], int]:
        """One page of images with their served tags, filtered; and the number matching."""
        matching = []
        for image in self.catalog.images:
            record = self.tags.get(image.number)
            attrs = (record or {}).get("attributes") or {}
            if category and (attrs.get("category") or {}).get("value") != category:
                continue
            if attribute and (attrs.get(attribute) or {}).get("value") != (value or None):
                continue
            matching.append((image, record))
        start = page * PAGE_SIZE
        return [{"number": image.number, "id": image.id, "record": record}
                for image, record in matching[start:start + PAGE_SIZE]], len(matching)

    def suggest(self, name: str, count: int = 200) -> list[int]:
        """Catalog numbers, least certain first under the served head of ``name``, labelled
        images left out; empty when no served version has that attribute yet."""
        from fashiontag.fewshot.suggest import uncertainty

        labelled = set(self.labels.labels(name))
        numbers, rows = [], []
        for number, attrs in sorted(self.tags.sets.items()):
            if name not in attrs or str(self.catalog.get(number).path) in labelled:
                continue
            numbers.append(number)
            rows.append(list(attrs.probabilities(name).values()))
        if not rows:
            return []
        scores = uncertainty(np.array(rows))
        order = sorted(range(len(numbers)), key=lambda i: (-scores[i], numbers[i]))
        return [numbers[i] for i in order[:count]]

    # ----------------------------------------------------------------- train & deploy
    def train(self, name: str):
        from fashiontag.fewshot.add import AddConfig, add_attribute

        definition = self.labels.definitions().get(name)
        if definition is None:
            raise StudioError(f"{name!r} is not an attribute defined in the studio")
        labels_file = self.labels.labels_file(name)
        if not self.labels.labels(name):
            raise StudioError(f"no labels for {name!r} yet")

        def run(progress):
            return add_attribute(AddConfig(
                name=name, images=(labels_file,), artifacts=self.layout.root,
                repository=self.cfg.repository, serve_url=self.cfg.serve_url,
                admin_key=self.cfg.admin_key, applies_to=definition.applies_to,
                description=definition.description, progress=progress))

        return self.jobs.start(name, run, on_done=lambda job: self.tags.refresh())

    def versions(self):
        from fashiontag.serving.versions import ModelVersions

        return ModelVersions(self.cfg.repository)

    def switch(self, version: int | None) -> int:
        """Roll back (``None``) or activate a version, live when a server is attached."""
        versions = self.versions()
        if version is None:
            target = versions.roll_back(self.cfg.serve_url, self.cfg.admin_key)
        else:
            versions.switch(version, self.cfg.serve_url, admin_key=self.cfg.admin_key)
            target = version
        self.tags.refresh()
        return target


def create_app(cfg: StudioConfig):
    """The Flask app (routes below); ``app.studio`` holds the shared state."""
    from flask import Flask

    app = Flask(__name__)
    app.studio = Studio(cfg)
    _guard(app, cfg)
    _pages(app, app.studio)
    _actions(app, app.studio)
    return app


def _guard(app, cfg: StudioConfig) -> None:
    from flask import abort, jsonify, request

    allowed_hosts = {f"{h}:{cfg.port}" for h in (cfg.host, "127.0.0.1", "localhost")}

    @app.before_request
    def guard():
        if request.host not in allowed_hosts:
            abort(403)  # DNS rebinding: a page on another name pointing at 127.0.0.1
        if request.method == "POST":
            origin = request.headers.get("Origin")
            if origin is not None and origin.split("://", 1)[-1] not in allowed_hosts:
                abort(403)
            token = request.headers.get("X-CSRF-Token", "")
            if not hmac.compare_digest(token, cfg.csrf_token):
                abort(403)

    @app.errorhandler(FashiontagError)
    def refused(exc):
        return jsonify({"error": str(exc)}), 400


def _pages(app, studio: Studio) -> None:
    from flask import render_template, request, send_file

    cfg = studio.cfg

    def context(**extra):
        taxonomy = studio.taxonomy()
        return {"csrf_token": cfg.csrf_token, "taxonomy": taxonomy,
                "experimental": {a.name for a in taxonomy if a.experimental},
                "definitions": studio.labels.definitions(), "catalog_size": len(studio.catalog),
                "tagged": studio.tags.done, "serve_url": cfg.serve_url, **extra}

    # ----------------------------------------------------------------- pages
    @app.get("/")
    def grid():
        page = max(0, request.args.get("page", 0, type=int))
        category = request.args.get("category", "")
        attribute = request.args.get("attribute", "")
        value = request.args.get("value", "")
        tiles, matching = studio.tiles(page, category, attribute, value)
        return render_template("grid.html", **context(
            tiles=tiles, page=page, pages=max(1, -(-matching // PAGE_SIZE)), matching=matching,
            category=category, attribute=attribute, value=value))

    @app.get("/attributes")
    def attributes():
        versions = studio.versions()
        try:
            listing = versions.info()
        except FashiontagError:
            listing = []
        return render_template("attributes.html", **context(versions=listing))

    @app.get("/label/<name>")
    def label(name: str):
        values = studio.attribute_values(name)
        order = request.args.get("order", "catalog")
        numbers = studio.suggest(name) if order == "suggested" else [
            i.number for i in studio.catalog.images]
        return render_template("label.html", **context(
            name=name, values=values, numbers=numbers, order=order,
            ids={n: studio.catalog.get(n).id for n in numbers},
            suggest_available=order != "suggested" or bool(numbers),
            labels={studio.catalog.by_path[p].number: v for p, v in
                    studio.labels.labels(name).items() if p in studio.catalog.by_path},
            counts=studio.labels.counts(name, values),
            defined=name in studio.labels.definitions()))

    @app.get("/thumb/<int:number>")
    def thumb(number: int):
        return send_file(studio.catalog.thumbnail(number), mimetype="image/jpeg",
                         max_age=3600)

    @app.get("/image/<int:number>")
    def image(number: int):
        return send_file(studio.catalog.get(number).path, max_age=3600)

    @app.get("/labels/<name>.csv")
    def export(name: str):
        studio.attribute_values(name)  # 400 for an unknown attribute
        return app.response_class(studio.labels.csv_text(name), mimetype="text/csv",
                                  headers={"Content-Disposition":
                                           f"attachment; filename={name}-labels.csv"})



def _actions(app, studio: Studio) -> None:
    from flask import abort, jsonify, request

    @app.post("/api/attributes")
    def define():
        data = request.get_json(force=True)
        values = tuple(v.strip() for v in data.get("values", []) if v and v.strip())
        definition = AttributeDefinition(str(data.get("name", "")).strip(), values,
                                         tuple(data.get("applies_to", [])),
                                         str(data.get("description", "")))
        studio.labels.define(definition, studio.taxonomy())
        return jsonify({"name": definition.name, "values": sorted(values)})

    @app.post("/api/label")
    def set_label():
        data = request.get_json(force=True)
        name, value = str(data.get("attribute", "")), data.get("value")
        values = studio.attribute_values(name)
        if value is not None and value not in values:
            raise StudioError(f"{value!r} is not a value of {name!r}")
        image = studio.catalog.get(int(data.get("number", -1)))
        studio.labels.set_label(name, image.path, value)
        return jsonify({"counts": studio.labels.counts(name, values)})

    @app.post("/api/train/<name>")
    def train(name: str):
        return jsonify(studio.train(name).to_dict())

    @app.get("/api/jobs/<int:job_id>")
    def job(job_id: int):
        found = studio.jobs.get(job_id)
        if found is None:
            abort(404)
        return jsonify(found.to_dict())

    @app.post("/api/rollback")
    def rollback():
        data = request.get_json(silent=True) or {}
        version = data.get("version")
        target = studio.switch(None if version is None else int(version))
        return jsonify({"version": target})

    @app.get("/api/status")
    def status():
        running = studio.jobs.busy()
        return jsonify({"catalog": len(studio.catalog), "tagged": studio.tags.done,
                        "generation": studio.tags.generation,
                        "job": None if running is None else running.to_dict(),
                        "time": time.time()})

    @app.get("/api/tags/<int:number>")
    def tags(number: int):
        studio.catalog.get(number)
        return jsonify(studio.tags.get(number) or {})
