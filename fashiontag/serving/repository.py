"""Generate the Triton model repository from an exported model: one source, CPU and GPU variants.

Nobody writes ``config.pbtxt`` by hand. Each config is built as Triton's own ``ModelConfig``
protobuf message (from ``tritonclient.grpc.model_config_pb2``), so a config with a misspelt field
cannot be written, and every name, shape and label comes from the ONNX file's metadata:

    fashiontag              ensemble: IMAGE (encoded bytes) → PROBABILITIES (+ TAXONOMY_ID)
      ├─ fashiontag_preprocess   python: decode + letterbox (fashiontag.images) → PIXELS uint8
      └─ fashiontag_attributes   CPU: python backend running onnxruntime or OpenVINO (the
                                 pip-shipped tritonserver has only the python backend), FP32 or
                                 INT8 (whatever precision the ONNX file is); GPU: onnxruntime_onnx
                                 (TensorRT execution accelerator) or tensorrt_plan with one engine
                                 per compute capability (``cc_model_filenames``), KIND_GPU; or,
                                 on either target, ``torch``: the python backend running the
                                 network in PyTorch (serving.torch_model; FP16 on a GPU), for the
                                 pip tritonserver on GPU machines without TensorRT
      └─ fashiontag_postprocess  python: PROBABILITIES + TAXONOMY_ID passed through, +
                                 ATTRIBUTES_JSON (fashiontag.attributes, the client's decoding)
                                 for generic KServe V2 clients (curl), decoded only when asked
                                 for by name; fashiontag's own client decodes in the client by
                                 default and calls fashiontag_attributes, so it never pays this
                                 step (docs/serving.md)

Built for hot reload (:mod:`fashiontag.fewshot.reload`): ``PROBABILITIES`` has a variable width
(``dims: [-1]``), so a model version with more attributes fits the same ensemble; the taxonomy
lives in one place, the attributes model's config (the ensemble names that model in its
``taxonomy_model`` parameter), together with the taxonomies of every version on disk; and the
attributes config names the one version it serves (``version_policy.specific``).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from fashiontag.artifacts import SOURCE_REPOSITORY
from fashiontag.errors import ModelArtifactError
from fashiontag.export.tensorrt import DEFAULT_COMPUTE_CAPABILITIES, engine_filename
from fashiontag.images import DEFAULT_LIMITS, DecodeLimits
from fashiontag.onnxio.metadata import ModelMetadata, read_metadata
from fashiontag.protocol import (
    ATTRIBUTES_JSON,
    ATTRIBUTES_MODEL,
    ENSEMBLE_MODEL,
    IMAGE,
    LIMITS_PARAMETER,
    PIXELS,
    POSTPROCESS_MODEL,
    PREPROCESS_MODEL,
    PREPROCESS_PARAMETER,
    PROBABILITIES,
    TAXONOMY_FINGERPRINT_PARAMETER,
    TAXONOMY_HISTORY_PARAMETER,
    TAXONOMY_ID,
    TAXONOMY_MODEL_PARAMETER,
    TAXONOMY_PARAMETER,
)
from fashiontag.runtimes import RuntimeOptions
from fashiontag.serving.torch_model import (
    BACKBONE_FILE,
    HEADS_FILE,
    TorchOptions,
    check_torch_files,
)
from fashiontag.taxonomy import Taxonomy

__all__ = ["ServingSettings", "build_repository", "model_configs", "write_config", "read_config",
           "set_served_version", "config_to_json", "disk_versions", "version_taxonomies",
           "gpu_torch_settings", "GPU_TORCH_DEFAULTS", "TORCH", "VARIABLE", "ONNX_FILE",
           "PLAN_FILE"]

ONNX_FILE = "model.onnx"
PLAN_FILE = "model.plan"
TORCH = "torch"  # the PyTorch runtime: ``runtime`` on CPU, ``gpu_platform`` on GPU
GPU_PLATFORMS = ("onnxruntime_onnx", "tensorrt_plan", TORCH)
VARIABLE = -1  # Triton's "any size" dimension


#: per target, see ``ServingSettings.max_batch_size``
DEFAULT_MAX_BATCH = {"cpu": 16, "gpu": 64}
#: The torch runtime on a GPU, as measured with a Lite0-shaped network on an H200 behind the pip
#: tritonserver (docs/deployment-gpu.md, 2026-11-30): 2 instances, batches up
#: to 256 preferring 64/128/256, 2 ms queue delay: 12.7k images/s served, p99 29 ms. To be
#: re-tuned with the real model by benchmarks/gpu_check.py. Applied by :func:`gpu_torch_settings`.
GPU_TORCH_DEFAULTS = {"max_batch_size": 256, "preferred_batch_sizes": (64, 128, 256),
                      "max_queue_delay_us": 2000, "gpu_instances": 2, "gpu_opt_batch": 64}


@dataclass(frozen=True)
class ServingSettings:
    """Knobs of the generated configs. Defaults were picked from the batching study in benchmarks/
    (``benchmarks/batching_study.py``; data and reasoning in benchmarks/README.md).

    ``max_queue_delay_us = 0``: a request is never held back waiting for company; under load the
    queue fills while the model runs and batches form anyway (mean batch ~7 at concurrency 16),
    so waiting bought no throughput on CPU while every 0.5/2/5 ms of delay added latency at
    concurrency 1 (it is paid in the preprocess model too).
    ``attribute_instances=1, attribute_threads=2``: the best concurrency-1 latency (one request
    gets both cores) and the lower p99 at concurrency 16; 2 instances x 1 thread spent ~5 % less
    model CPU per image but formed smaller batches, with a worse p99 and within-noise throughput.
    ``preprocess_instances=2``: one decoding instance lowered throughput at concurrency 16.

    CPU: ``runtime`` (onnxruntime | openvino) runs whatever precision the model file is (FP32 or
    the QDQ INT8 file); ``attribute_threads`` intra-op threads per instance, ``graph_optimization``
    (onnxruntime), ``batch_buckets`` (OpenVINO's statically compiled batch sizes).
    GPU: ``gpu_opt_batch`` is the TensorRT profile's optimum (profile min 1, opt, max
    ``max_batch_size``); preferred batch sizes default to (opt, max) so Triton forms the batches
    the engine was tuned for; ``compute_capabilities`` name the per-GPU engine files.
    """

    target: str = "cpu"  # "cpu" | "gpu"
    # None: the target's default. CPU 16: in the batching study on a quiet machine a cap of 16
    # against 64 gave the same throughput at concurrency 16, +35 % at 64 (117 vs 87 img/s, p99
    # 632 vs 813 ms: batches of ~30 stalled decode behind one long model call) and a better
    # concurrency-1 p99. GPU 64: bigger batches are what a GPU needs.
    max_batch_size: int | None = None
    max_queue_delay_us: int = 0
    preferred_batch_sizes: tuple[int, ...] = ()
    attribute_instances: int = 1
    attribute_threads: int = 2  # onnxruntime intra-op threads per instance
    allow_spinning: bool = False  # onnxruntime busy-waiting burns the cores decode needs
    runtime: str = "onnxruntime"  # "onnxruntime" | "openvino" | "torch" (CPU target)
    graph_optimization: str = "all"
    batch_buckets: tuple[int, ...] = RuntimeOptions.batch_buckets
    precision_hint: str = "f32"  # OpenVINO: f32 (exact) or bf16 (AMX CPUs; gated, see runtimes)
    preprocess_instances: int = 2
    # Overload sheds load instead of queueing without bound: beyond this many queued requests a
    # model answers UNAVAILABLE at once (clients back off and retry: QueueFullError). 256 queued
    # images are ~2.5 s of work on 2 cores, well inside the client's default 60 s deadline.
    max_queue_size: int = 256
    # A request queued this long is rejected (UNAVAILABLE "Request timeout expired"; the client
    # retries it as a timeout) instead of holding a queue slot until the client's own deadline
    # (DEFAULT_TIMEOUT_S in fashiontag.client.defaults, above two queued stages of this) has
    # passed and its answer is thrown away. 0 = no queue timeout.
    queue_timeout_us: int = 15_000_000
    gpu_platform: str = "onnxruntime_onnx"  # or "tensorrt_plan" or "torch" (pip tritonserver)
    gpu_instances: int = 2
    gpu_opt_batch: int = 32
    compute_capabilities: tuple[str, ...] = DEFAULT_COMPUTE_CAPABILITIES
    warmup_batch_sizes: tuple[int, ...] = (1, 8)
    limits: DecodeLimits = field(default_factory=lambda: DEFAULT_LIMITS)

    def __post_init__(self) -> None:
        if self.target not in ("cpu", "gpu"):
            raise ValueError(f"target must be 'cpu' or 'gpu', got {self.target!r}")
        if self.gpu_platform not in GPU_PLATFORMS:
            raise ValueError(f"unsupported GPU platform {self.gpu_platform!r}; one of "
                             f"{GPU_PLATFORMS}")
        if self.max_batch_size is None:
            object.__setattr__(self, "max_batch_size", DEFAULT_MAX_BATCH[self.target])
        if self.max_batch_size < 1:
            raise ValueError("max_batch_size must be >= 1")
        bad = [b for b in self.preferred_batch_sizes if not 1 <= b <= self.max_batch_size]
        if bad:
            raise ValueError(f"preferred batch sizes {bad} outside 1..{self.max_batch_size}")
        if self.target == "gpu" and not 1 <= self.gpu_opt_batch <= self.max_batch_size:
            raise ValueError(f"gpu_opt_batch {self.gpu_opt_batch} outside "
                             f"1..{self.max_batch_size}")
        for cc in self.compute_capabilities:
            engine_filename(cc)  # validates the spelling
        if self.runtime != TORCH:
            self.runtime_options()  # validates runtime, graph_optimization and batch_buckets

    @property
    def uses_torch(self) -> bool:
        """The attribute model runs in PyTorch (needs ``heads.pt`` and ``backbone.pt``)."""
        return (self.runtime if self.target == "cpu" else self.gpu_platform) == TORCH

    def torch_options(self) -> TorchOptions:
        """CPU: ``attribute_threads`` threads; GPU: the instance's own device, FP16."""
        threads = self.attribute_threads if self.target == "cpu" else 0
        return TorchOptions(device="cpu" if self.target == "cpu" else "auto", threads=threads)

    def runtime_options(self) -> RuntimeOptions:
        """What the CPU attribute model runs with (also what benchmarks open in-process)."""
        return RuntimeOptions(runtime=self.runtime, threads=self.attribute_threads,
                              spinning=self.allow_spinning,
                              graph_optimization=self.graph_optimization,
                              batch_buckets=self.batch_buckets,
                              precision_hint=self.precision_hint)

    def gpu_preferred_batch_sizes(self) -> tuple[int, ...]:
        if self.preferred_batch_sizes:
            return self.preferred_batch_sizes
        return tuple(sorted({self.gpu_opt_batch, self.max_batch_size}))


def gpu_torch_settings(**overrides) -> ServingSettings:
    """The torch runtime on ``KIND_GPU`` instances with :data:`GPU_TORCH_DEFAULTS`; keyword
    arguments override them (``build-repo --target gpu --runtime torch`` flags)."""
    return ServingSettings(**{**GPU_TORCH_DEFAULTS, **overrides, "target": "gpu",
                              "gpu_platform": TORCH})


def _pb():
    from tritonclient.grpc import model_config_pb2

    return model_config_pb2


def _tensor(msg, name: str, dtype: str, dims: list[int]) -> None:
    pb = _pb()
    msg.name = name
    msg.data_type = pb.DataType.Value(dtype)
    msg.dims.extend(dims)


def _batching(config, settings: ServingSettings) -> None:
    db = config.dynamic_batching
    db.max_queue_delay_microseconds = settings.max_queue_delay_us
    db.preferred_batch_size.extend(settings.preferred_batch_sizes)
    if settings.max_queue_size or settings.queue_timeout_us:
        pb = _pb()
        policy = db.default_queue_policy
        policy.max_queue_size = settings.max_queue_size
        policy.default_timeout_microseconds = settings.queue_timeout_us
        policy.timeout_action = pb.ModelQueuePolicy.TimeoutAction.Value("REJECT")
        policy.allow_timeout_override = True


def _params(config, values: dict[str, str]) -> None:
    for key, value in values.items():
        config.parameters[key].string_value = value


def _preprocess_config(meta: ModelMetadata, settings: ServingSettings):
    pb = _pb()
    size = meta.preprocess.size
    c = pb.ModelConfig(name=PREPROCESS_MODEL, backend="python",
                       max_batch_size=settings.max_batch_size)
    _tensor(c.input.add(), IMAGE, "TYPE_STRING", [1])
    _tensor(c.output.add(), PIXELS, "TYPE_UINT8", [size, size, 3])
    _batching(c, replace(settings, preferred_batch_sizes=()))
    group = c.instance_group.add()
    group.kind = pb.ModelInstanceGroup.Kind.Value("KIND_CPU")
    group.count = settings.preprocess_instances
    _params(c, {PREPROCESS_PARAMETER: json.dumps(meta.preprocess.to_dict(), sort_keys=True),
                LIMITS_PARAMETER: json.dumps(asdict(settings.limits), sort_keys=True)})
    return c


def _outputs(config, meta: ModelMetadata) -> None:
    _tensor(config.output.add(), PROBABILITIES, "TYPE_FP32", [VARIABLE])
    if TAXONOMY_ID in meta.outputs:
        _tensor(config.output.add(), TAXONOMY_ID, "TYPE_INT32", [1])


def set_served_version(config, meta: ModelMetadata, version: int,
                       history: tuple[Taxonomy, ...] = ()) -> None:
    """Point an attributes config at ``version`` and the taxonomy its model carries.

    ``history``: taxonomies of the other versions on disk; a client that receives a response
    from a version being unloaded can still decode it.
    """
    config.version_policy.specific.ClearField("versions")
    config.version_policy.specific.versions.append(int(version))
    _params(config, {
        TAXONOMY_PARAMETER: meta.taxonomy.to_json(),
        TAXONOMY_FINGERPRINT_PARAMETER: meta.taxonomy.fingerprint,
        TAXONOMY_HISTORY_PARAMETER: _known_taxonomies(meta, history),
        "model_info": json.dumps(meta.info, sort_keys=True),
    })


def _attributes_config(meta: ModelMetadata, settings: ServingSettings, version: int = 1,
                       history: tuple[Taxonomy, ...] = ()):
    pb = _pb()
    size = meta.preprocess.size
    c = pb.ModelConfig(name=ATTRIBUTES_MODEL, max_batch_size=settings.max_batch_size)
    _tensor(c.input.add(), PIXELS, "TYPE_UINT8", [size, size, 3])
    _outputs(c, meta)
    group = c.instance_group.add()
    if settings.target == "gpu" and settings.uses_torch:
        _batching(c, replace(settings, preferred_batch_sizes=settings.gpu_preferred_batch_sizes()))
        c.backend = "python"
        group.kind = pb.ModelInstanceGroup.Kind.Value("KIND_GPU")
        group.count = settings.gpu_instances
        _params(c, {"onnx_file": ONNX_FILE, **settings.torch_options().to_parameters()})
    elif settings.target == "cpu":
        _batching(c, settings)
        c.backend = "python"
        group.kind = pb.ModelInstanceGroup.Kind.Value("KIND_CPU")
        group.count = settings.attribute_instances
        runtime = (settings.torch_options() if settings.uses_torch
                   else settings.runtime_options())
        _params(c, {"onnx_file": ONNX_FILE, **runtime.to_parameters()})
    else:
        _batching(c, replace(settings, preferred_batch_sizes=settings.gpu_preferred_batch_sizes()))
        c.platform = settings.gpu_platform
        group.kind = pb.ModelInstanceGroup.Kind.Value("KIND_GPU")
        group.count = settings.gpu_instances
        if settings.gpu_platform == "tensorrt_plan":
            c.default_model_filename = PLAN_FILE
            for cc in settings.compute_capabilities:
                c.cc_model_filenames[cc] = engine_filename(cc)
        else:
            c.default_model_filename = ONNX_FILE
            accel = c.optimization.execution_accelerators.gpu_execution_accelerator.add()
            accel.name = "tensorrt"
            # an INT8 (QDQ) file carries its own scales; FP32/FP16 files are built as FP16
            accel.parameters["precision_mode"] = "INT8" if meta.precision == "int8" else "FP16"
            accel.parameters["max_workspace_size_bytes"] = str(1 << 30)
            accel.parameters["trt_engine_cache_enable"] = "1"
            accel.parameters["trt_engine_cache_path"] = "/tmp/fashiontag-trt-cache"
    _params(c, {"precision": meta.precision})
    set_served_version(c, meta, version, history)
    for batch in settings.warmup_batch_sizes:
        if batch > settings.max_batch_size:
            continue
        warm = c.model_warmup.add()
        warm.name = f"zeros_batch_{batch}"
        warm.batch_size = batch
        spec = warm.inputs[PIXELS]
        spec.data_type = pb.DataType.Value("TYPE_UINT8")
        spec.dims.extend([size, size, 3])
        spec.zero_data = True
    return c


def _known_taxonomies(meta: ModelMetadata, history: tuple[Taxonomy, ...]) -> str:
    known = {meta.taxonomy.fingerprint: meta.taxonomy}
    for taxonomy in history:
        known.setdefault(taxonomy.fingerprint, taxonomy)
    return json.dumps([t.to_dict() for t in known.values()], sort_keys=True,
                      separators=(",", ":"))


def _postprocess_config(meta: ModelMetadata, settings: ServingSettings,
                        history: tuple[Taxonomy, ...] = ()):
    """PROBABILITIES (+ TAXONOMY_ID) → the same tensors passed through, + ATTRIBUTES_JSON
    (decoded only when a client asked for it). It knows the taxonomies on disk at build time; a
    version hot-loaded later is read from the attributes model's folder (its ``taxonomy_model``
    parameter) the first time its TAXONOMY_ID arrives."""
    pb = _pb()
    c = pb.ModelConfig(name=POSTPROCESS_MODEL, backend="python",
                       max_batch_size=settings.max_batch_size)
    _tensor(c.input.add(), PROBABILITIES, "TYPE_FP32", [VARIABLE])
    if TAXONOMY_ID in meta.outputs:
        _tensor(c.input.add(), TAXONOMY_ID, "TYPE_INT32", [1])
    _outputs(c, meta)
    _tensor(c.output.add(), ATTRIBUTES_JSON, "TYPE_STRING", [1])
    _batching(c, replace(settings, preferred_batch_sizes=()))
    group = c.instance_group.add()
    group.kind = pb.ModelInstanceGroup.Kind.Value("KIND_CPU")
    group.count = 1
    _params(c, {TAXONOMY_PARAMETER: meta.taxonomy.to_json(),
                TAXONOMY_HISTORY_PARAMETER: _known_taxonomies(meta, history),
                TAXONOMY_MODEL_PARAMETER: ATTRIBUTES_MODEL})
    return c


def _ensemble_config(meta: ModelMetadata, settings: ServingSettings):
    """``fashiontag``: preprocess → attributes → postprocess (ATTRIBUTES_JSON when asked for)."""
    pb = _pb()
    c = pb.ModelConfig(name=ENSEMBLE_MODEL, platform="ensemble",
                       max_batch_size=settings.max_batch_size)
    _tensor(c.input.add(), IMAGE, "TYPE_STRING", [1])
    _outputs(c, meta)
    pre = c.ensemble_scheduling.step.add()
    pre.model_name, pre.model_version = PREPROCESS_MODEL, -1
    pre.input_map[IMAGE] = IMAGE
    pre.output_map[PIXELS] = "pixels"
    att = c.ensemble_scheduling.step.add()
    att.model_name, att.model_version = ATTRIBUTES_MODEL, -1
    att.input_map[PIXELS] = "pixels"
    # the taxonomy changes with every hot-reloaded version: the ensemble only says where it is
    _params(c, {TAXONOMY_MODEL_PARAMETER: ATTRIBUTES_MODEL})
    # Every output comes from the postprocess step, which passes the numeric ones through:
    # Triton 2.51 prunes the outputs a client did not ask for, and an ensemble output that a
    # later step also consumes then deadlocks any request for a subset of the outputs.
    post = c.ensemble_scheduling.step.add()
    post.model_name, post.model_version = POSTPROCESS_MODEL, -1
    for output in c.output:
        att.output_map[output.name] = output.name.lower()
        post.input_map[output.name] = output.name.lower()
        post.output_map[output.name] = output.name
    _tensor(c.output.add(), ATTRIBUTES_JSON, "TYPE_STRING", [1])
    post.output_map[ATTRIBUTES_JSON] = ATTRIBUTES_JSON
    return c


def model_configs(meta: ModelMetadata, settings: ServingSettings, version: int = 1,
                  history: tuple[Taxonomy, ...] = ()) -> dict:
    """name → ``ModelConfig`` message for every model of the repository."""
    return {
        PREPROCESS_MODEL: _preprocess_config(meta, settings),
        ATTRIBUTES_MODEL: _attributes_config(meta, settings, version, history),
        POSTPROCESS_MODEL: _postprocess_config(meta, settings, history),
        ENSEMBLE_MODEL: _ensemble_config(meta, settings),
    }


def config_to_json(config) -> str:
    """A ``ModelConfig`` as the JSON Triton's load API accepts (proto field names)."""
    from google.protobuf import json_format

    return json_format.MessageToJson(config, preserving_proto_field_name=True)


def write_config(config, model_dir: Path) -> Path:
    from google.protobuf import text_format

    model_dir.mkdir(parents=True, exist_ok=True)
    path = model_dir / "config.pbtxt"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text_format.MessageToString(config))
    tmp.replace(path)
    return path


def read_config(path: Path):
    """Parse a ``config.pbtxt`` into Triton's ``ModelConfig`` (used by tests and tools)."""
    from google.protobuf import text_format

    return text_format.Parse(Path(path).read_text(), _pb().ModelConfig())


def disk_versions(model_dir: Path) -> list[int]:
    """Numeric version folders of a model that hold a model file, ascending."""
    if not Path(model_dir).is_dir():
        return []
    return sorted(int(p.name) for p in Path(model_dir).iterdir()
                  if p.is_dir() and p.name.isdigit()
                  and ((p / ONNX_FILE).exists() or (p / PLAN_FILE).exists()))


def version_taxonomies(model_dir: Path, exclude: tuple[int, ...] = ()) -> dict[int, Taxonomy]:
    """version → taxonomy of its ``model.onnx`` (versions without a readable ONNX are skipped)."""
    out = {}
    for version in disk_versions(model_dir):
        onnx_path = Path(model_dir) / str(version) / ONNX_FILE
        if version in exclude or not onnx_path.exists():
            continue
        try:
            out[version] = read_metadata(onnx_path).taxonomy
        except ModelArtifactError:
            continue
    return out


def _same_file(a: Path, b: Path) -> bool:
    import hashlib

    if not (a.exists() and b.exists()) or a.stat().st_size != b.stat().st_size:
        return False
    return hashlib.sha256(a.read_bytes()).digest() == hashlib.sha256(b.read_bytes()).digest()


def _attributes_version(model_path: Path, model_dir: Path) -> int:
    """The version folder for ``model_path``: the one already holding it (rebuilding is then
    idempotent); 1 while the repository has no other version (plain rebuilds replace it); else
    a new N+1, so versions kept for rollback are never overwritten."""
    versions = disk_versions(model_dir)
    for version in reversed(versions):
        if _same_file(model_path, model_dir / str(version) / ONNX_FILE):
            return version
    return 1 if versions in ([], [1]) else versions[-1] + 1


def build_repository(model_path: str | Path, repository: str | Path = SOURCE_REPOSITORY,
                     settings: ServingSettings = ServingSettings(), version: int | None = None,
                     engine_path: str | Path | None = None,
                     torch_weights: tuple[Path, Path | None] | None = None) -> Path:
    """Write configs and copy the model into ``repository``; returns the repository path.

    ``version=None``: the attributes model goes into the version folder that already holds the
    same file, else into a new one (1 in a fresh repository). The python model sources are taken
    from the committed ``model_repository/`` and copied when building elsewhere (e.g. a GPU
    repository for the docker image). The model file may be
    the FP32, INT8 or FP16 export: its metadata says which. For ``tensorrt_plan`` an engine built
    by ``fashiontag export --engine tensorrt`` (``model_smXY.plan``) is copied under its own name;
    without one, only the configs are written and the engine is built on the target GPU at
    start-up (docker/engine-builder). The ``torch`` runtime also needs ``torch_weights``
    (``heads.pt``, ``backbone.pt`` or None for the pretrained backbone): checked against the
    ONNX file's metadata, then copied next to it.
    """
    model_path = Path(model_path)
    repository = Path(repository)
    meta = read_metadata(model_path)
    if settings.uses_torch:
        if torch_weights is None:
            raise ModelArtifactError("the torch runtime needs the heads and backbone weights "
                                     "(heads.pt, backbone.pt) the ONNX file was exported from")
        check_torch_files(model_path, *torch_weights)
    attributes_dir = repository / ATTRIBUTES_MODEL
    if version is None:
        version = _attributes_version(model_path, attributes_dir) if not (
            settings.target == "gpu" and settings.gpu_platform == "tensorrt_plan") else 1
    history = version_taxonomies(attributes_dir, exclude=(version,))
    configs = model_configs(meta, settings, version, tuple(history.values()))
    for name, config in configs.items():
        write_config(config, repository / name)
    (repository / ENSEMBLE_MODEL / "1").mkdir(parents=True, exist_ok=True)
    python_models = {PREPROCESS_MODEL: 1, POSTPROCESS_MODEL: 1}
    if settings.target == "cpu" or settings.uses_torch:
        python_models[ATTRIBUTES_MODEL] = version
    for name, model_version in python_models.items():
        src = SOURCE_REPOSITORY / name / "1" / "model.py"
        dst = repository / name / str(model_version) / "model.py"
        if not src.exists():
            raise ModelArtifactError(f"python model source {src} is missing from the checkout")
        if src.resolve() != dst.resolve():
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)
    target_dir = attributes_dir / str(version)
    target_dir.mkdir(parents=True, exist_ok=True)
    if settings.target == "gpu" and settings.gpu_platform == "tensorrt_plan":
        if engine_path is not None:
            engine_path = Path(engine_path)
            known = {engine_filename(cc) for cc in settings.compute_capabilities}
            name = engine_path.name if engine_path.name in known else PLAN_FILE
            shutil.copy2(engine_path, target_dir / name)
    elif not _same_file(model_path, target_dir / ONNX_FILE):
        tmp = target_dir / (ONNX_FILE + ".tmp")
        shutil.copy2(model_path, tmp)
        tmp.replace(target_dir / ONNX_FILE)
    for name in (HEADS_FILE, BACKBONE_FILE):
        (target_dir / name).unlink(missing_ok=True)  # a version is served by one runtime
    if settings.uses_torch:
        heads, backbone = torch_weights
        shutil.copy2(heads, target_dir / HEADS_FILE)
        if backbone is not None:
            shutil.copy2(backbone, target_dir / BACKBONE_FILE)
    return repository
