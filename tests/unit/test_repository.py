import json

import pytest

from fashiontag.export.tensorrt import DEFAULT_COMPUTE_CAPABILITIES, engine_filename
from fashiontag.images import DEFAULT_SPEC
from fashiontag.onnxio.metadata import ModelMetadata
from fashiontag.protocol import (
    ATTRIBUTES_JSON,
    ATTRIBUTES_MODEL,
    ENSEMBLE_MODEL,
    IMAGE,
    PIXELS,
    POSTPROCESS_MODEL,
    PREPROCESS_MODEL,
    PROBABILITIES,
    TAXONOMY_HISTORY_PARAMETER,
    TAXONOMY_ID,
    TAXONOMY_MODEL_PARAMETER,
    TAXONOMY_PARAMETER,
)
from fashiontag.runtimes import RUNTIMES, RuntimeOptions
from fashiontag.serving.repository import (
    ServingSettings,
    config_to_json,
    model_configs,
    read_config,
    write_config,
)
from fashiontag.taxonomy import DEFAULT_TAXONOMY, Attribute, Taxonomy

META = ModelMetadata(DEFAULT_TAXONOMY, DEFAULT_SPEC, {"precision": "fp32"})


def _kind(config):
    from tritonclient.grpc import model_config_pb2 as pb

    return pb.ModelInstanceGroup.Kind.Name(config.instance_group[0].kind)


def test_cpu_repository_is_ensemble_of_two_python_models():
    configs = model_configs(META, ServingSettings())
    assert set(configs) == {ENSEMBLE_MODEL, PREPROCESS_MODEL, ATTRIBUTES_MODEL,
                            POSTPROCESS_MODEL}
    ens = configs[ENSEMBLE_MODEL]
    assert ens.platform == "ensemble"
    assert [s.model_name for s in ens.ensemble_scheduling.step] == [PREPROCESS_MODEL,
                                                                    ATTRIBUTES_MODEL,
                                                                    POSTPROCESS_MODEL]
    assert ens.input[0].name == IMAGE and ens.output[0].name == PROBABILITIES
    att = configs[ATTRIBUTES_MODEL]
    assert att.backend == "python" and _kind(att) == "KIND_CPU"
    assert att.input[0].name == PIXELS and list(att.input[0].dims) == [224, 224, 3]
    assert att.HasField("dynamic_batching") and att.max_batch_size == 16  # CPU default
    assert [w.batch_size for w in att.model_warmup] == [1, 8]


def test_the_ensemble_ends_in_a_postprocess_step_that_answers_every_output():
    with_ids = ModelMetadata(DEFAULT_TAXONOMY, DEFAULT_SPEC, outputs=(PROBABILITIES, TAXONOMY_ID))
    configs = model_configs(with_ids, ServingSettings())
    labelled = configs[ENSEMBLE_MODEL]
    assert [s.model_name for s in labelled.ensemble_scheduling.step] == [
        PREPROCESS_MODEL, ATTRIBUTES_MODEL, POSTPROCESS_MODEL]
    assert [o.name for o in labelled.output] == [PROBABILITIES, TAXONOMY_ID, ATTRIBUTES_JSON]
    # every output comes from the last step (a subset request must not deadlock)
    post = labelled.ensemble_scheduling.step[2]
    assert set(post.output_map.values()) == {o.name for o in labelled.output}
    pp = configs[POSTPROCESS_MODEL]
    assert pp.backend == "python" and [i.name for i in pp.input] == [PROBABILITIES, TAXONOMY_ID]
    assert pp.parameters[TAXONOMY_MODEL_PARAMETER].string_value == ATTRIBUTES_MODEL
    assert pp.parameters[TAXONOMY_HISTORY_PARAMETER].string_value == \
        configs[ATTRIBUTES_MODEL].parameters[TAXONOMY_HISTORY_PARAMETER].string_value


def test_labels_come_from_the_model_metadata_and_live_in_the_attributes_config_only():
    grown = DEFAULT_TAXONOMY.with_attribute(Attribute("fabric", ("Denim", "Silk")))
    configs = model_configs(ModelMetadata(grown, DEFAULT_SPEC), ServingSettings())
    text = configs[ATTRIBUTES_MODEL].parameters[TAXONOMY_PARAMETER].string_value
    assert json.loads(text)["attributes"][-1]["name"] == "fabric"
    ensemble = configs[ENSEMBLE_MODEL]
    assert TAXONOMY_PARAMETER not in ensemble.parameters  # one place: it changes on reload
    assert ensemble.parameters[TAXONOMY_MODEL_PARAMETER].string_value == ATTRIBUTES_MODEL


@pytest.mark.parametrize("name", [ENSEMBLE_MODEL, ATTRIBUTES_MODEL])
def test_output_width_is_variable_so_a_grown_taxonomy_fits_the_same_ensemble(name):
    for taxonomy in (DEFAULT_TAXONOMY, DEFAULT_TAXONOMY.with_attribute(
            Attribute("fabric", ("Denim", "Silk")))):
        config = model_configs(ModelMetadata(taxonomy, DEFAULT_SPEC), ServingSettings())[name]
        assert config.output[0].name == PROBABILITIES and list(config.output[0].dims) == [-1]


def test_taxonomy_id_output_is_declared_only_when_the_model_has_it():
    with_ids = ModelMetadata(DEFAULT_TAXONOMY, DEFAULT_SPEC, outputs=(PROBABILITIES, TAXONOMY_ID))
    for name in (ENSEMBLE_MODEL, ATTRIBUTES_MODEL):
        extra = [ATTRIBUTES_JSON] if name == ENSEMBLE_MODEL else []  # the ensemble's labelled set
        assert [o.name for o in model_configs(META, ServingSettings())[name].output] == \
            [PROBABILITIES, *extra]
        outputs = model_configs(with_ids, ServingSettings())[name].output
        assert [(o.name, list(o.dims)) for o in outputs] == [
            (PROBABILITIES, [-1]), (TAXONOMY_ID, [1]), *((e, [1]) for e in extra)]
    steps = model_configs(with_ids, ServingSettings())[ENSEMBLE_MODEL].ensemble_scheduling.step
    # the attributes step hands both to the postprocess step, which answers every output
    assert set(steps[1].output_map) == {PROBABILITIES, TAXONOMY_ID}
    assert dict(steps[2].output_map) == {PROBABILITIES: PROBABILITIES, TAXONOMY_ID: TAXONOMY_ID,
                                         ATTRIBUTES_JSON: ATTRIBUTES_JSON}


def test_attributes_config_serves_one_named_version_and_knows_older_taxonomies():
    old = DEFAULT_TAXONOMY
    new = DEFAULT_TAXONOMY.with_attribute(Attribute("fabric", ("Denim", "Silk")))
    config = model_configs(ModelMetadata(new, DEFAULT_SPEC), ServingSettings(), version=3,
                           history=(old,))[ATTRIBUTES_MODEL]
    assert list(config.version_policy.specific.versions) == [3]
    known = json.loads(config.parameters[TAXONOMY_HISTORY_PARAMETER].string_value)
    assert {Taxonomy.from_dict(t).fingerprint for t in known} == {old.fingerprint,
                                                                  new.fingerprint}


@pytest.mark.parametrize("platform", ["onnxruntime_onnx", "tensorrt_plan"])
def test_gpu_variant_uses_gpu_platform_from_the_same_source(platform):
    configs = model_configs(META, ServingSettings(target="gpu", gpu_platform=platform,
                                                  preferred_batch_sizes=(8, 32)))
    att = configs[ATTRIBUTES_MODEL]
    assert att.platform == platform and not att.backend
    assert _kind(att) == "KIND_GPU"
    assert list(att.dynamic_batching.preferred_batch_size) == [8, 32]
    assert configs[PREPROCESS_MODEL].backend == "python"  # decode stays an OpenCV python model
    assert list(att.output[0].dims) == list(configs[ENSEMBLE_MODEL].output[0].dims)


def test_overload_sheds_load_with_a_bounded_queue_by_default():
    for name in (PREPROCESS_MODEL, ATTRIBUTES_MODEL):
        policy = model_configs(META, ServingSettings())[name].dynamic_batching.default_queue_policy
        assert policy.max_queue_size == ServingSettings().max_queue_size > 0
        # a request queued for longer than the timeout is rejected, not served late
        assert policy.default_timeout_microseconds == ServingSettings().queue_timeout_us > 0
        assert policy.timeout_action == policy.REJECT
    unbounded = model_configs(META, ServingSettings(max_queue_size=0, queue_timeout_us=0))
    assert not unbounded[ATTRIBUTES_MODEL].dynamic_batching.HasField("default_queue_policy")


def test_written_configs_parse_back_identically(tmp_path):
    for name, config in model_configs(META, ServingSettings()).items():
        path = write_config(config, tmp_path / name)
        assert read_config(path) == config


def test_configs_survive_the_json_form_the_load_api_takes():
    from google.protobuf import json_format
    from tritonclient.grpc import model_config_pb2 as pb

    for config in model_configs(META, ServingSettings(), version=2).values():
        again = json_format.Parse(config_to_json(config), pb.ModelConfig())
        assert again == config


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_cpu_attribute_model_carries_its_runtime_options(runtime):
    settings = ServingSettings(runtime=runtime, attribute_threads=1, attribute_instances=2)
    att = model_configs(META, settings)[ATTRIBUTES_MODEL]
    params = {k: v.string_value for k, v in att.parameters.items()}
    assert RuntimeOptions.from_parameters(params) == settings.runtime_options()
    assert params["runtime"] == runtime and att.instance_group[0].count == 2


@pytest.mark.parametrize("precision", ["fp32", "int8", "fp16"])
def test_the_served_precision_is_the_model_files_own(precision):
    meta = ModelMetadata(DEFAULT_TAXONOMY, DEFAULT_SPEC, {"precision": precision})
    for target in ("cpu", "gpu"):
        att = model_configs(meta, ServingSettings(target=target))[ATTRIBUTES_MODEL]
        assert att.parameters["precision"].string_value == precision
        assert json.loads(att.parameters["model_info"].string_value)["precision"] == precision


def test_tensorrt_config_names_one_engine_per_compute_capability():
    att = model_configs(META, ServingSettings(target="gpu", gpu_platform="tensorrt_plan"))[
        ATTRIBUTES_MODEL]
    assert dict(att.cc_model_filenames) == {cc: engine_filename(cc)
                                            for cc in DEFAULT_COMPUTE_CAPABILITIES}
    assert att.cc_model_filenames["9.0"] == "model_sm90.plan"
    assert att.default_model_filename == "model.plan"


def test_gpu_preferred_batch_sizes_match_the_tensorrt_profile():
    settings = ServingSettings(target="gpu", gpu_platform="tensorrt_plan", max_batch_size=128,
                               gpu_opt_batch=32)
    att = model_configs(META, settings)[ATTRIBUTES_MODEL]
    assert list(att.dynamic_batching.preferred_batch_size) == [32, 128]
    assert att.max_batch_size == 128


def test_onnx_gpu_variant_builds_tensorrt_in_the_precision_of_the_file():
    for precision, mode in (("fp32", "FP16"), ("int8", "INT8")):
        meta = ModelMetadata(DEFAULT_TAXONOMY, DEFAULT_SPEC, {"precision": precision})
        att = model_configs(meta, ServingSettings(target="gpu"))[ATTRIBUTES_MODEL]
        accel = att.optimization.execution_accelerators.gpu_execution_accelerator[0]
        assert accel.name == "tensorrt" and accel.parameters["precision_mode"] == mode


@pytest.mark.parametrize("cc", ["9", "sm90", "9.x", ""])
def test_malformed_compute_capabilities_are_rejected(cc):
    with pytest.raises(ValueError):
        engine_filename(cc)


@pytest.mark.parametrize("kwargs", [{"target": "tpu"}, {"max_batch_size": 0},
                                    {"preferred_batch_sizes": (128,)},
                                    {"gpu_platform": "pytorch_libtorch"},
                                    {"runtime": "tensorflow"}, {"batch_buckets": (4, 8)},
                                    {"target": "gpu", "gpu_opt_batch": 65},
                                    {"compute_capabilities": ("sm90",)}])
def test_invalid_settings_are_rejected(kwargs):
    with pytest.raises(ValueError):
        ServingSettings(**kwargs)


def test_model_control_stays_off_unless_asked_and_explicit_mode_loads_every_model(tmp_path):
    from fashiontag.serving.server import ServerConfig, TritonServer

    default = TritonServer(ServerConfig(repository=tmp_path)).command(tmp_path)
    assert "--model-control-mode=none" in default
    assert not any(a.startswith("--load-model") for a in default)
    explicit = TritonServer(ServerConfig(repository=tmp_path,
                                         model_control="explicit")).command(tmp_path)
    assert "--model-control-mode=explicit" in explicit and "--load-model=*" in explicit


def test_rebuilding_serves_the_version_holding_the_model_and_never_overwrites_a_kept_one(
        tmp_path, built_model):
    import shutil

    from fashiontag.artifacts import SOURCE_REPOSITORY
    from fashiontag.serving.repository import build_repository

    repo = tmp_path / "repo"
    for name in (PREPROCESS_MODEL, ATTRIBUTES_MODEL, POSTPROCESS_MODEL):
        (repo / name / "1").mkdir(parents=True)
        shutil.copy2(SOURCE_REPOSITORY / name / "1" / "model.py", repo / name / "1" / "model.py")

    def served():
        return list(read_config(repo / ATTRIBUTES_MODEL / "config.pbtxt")
                    .version_policy.specific.versions)

    build_repository(built_model, repo)
    build_repository(built_model, repo)  # idempotent
    assert served() == [1] and not (repo / ATTRIBUTES_MODEL / "2").exists()
    shutil.copytree(repo / ATTRIBUTES_MODEL / "1", repo / ATTRIBUTES_MODEL / "2")  # kept
    assert build_repository(built_model, repo) and served() == [2]  # newest holder of the file

    import onnx

    model = onnx.load(str(built_model))
    model.producer_version += "+rebuilt"  # a different build of the model
    other = tmp_path / "other.onnx"
    onnx.save(model, str(other))
    before = [(repo / ATTRIBUTES_MODEL / v / "model.onnx").read_bytes() for v in ("1", "2")]
    build_repository(other, repo)
    assert served() == [3]
    assert [(repo / ATTRIBUTES_MODEL / v / "model.onnx").read_bytes() for v in ("1", "2")] == \
        before


def test_the_torch_runtime_is_a_python_model_on_either_target():
    from fashiontag.serving.repository import GPU_TORCH_DEFAULTS, gpu_torch_settings
    from fashiontag.serving.torch_model import TorchOptions

    cpu = model_configs(META, ServingSettings(runtime="torch"))[ATTRIBUTES_MODEL]
    gpu = model_configs(META, gpu_torch_settings())[ATTRIBUTES_MODEL]
    for config, kind in ((cpu, "KIND_CPU"), (gpu, "KIND_GPU")):
        params = {k: v.string_value for k, v in config.parameters.items()}
        assert config.backend == "python" and not config.platform
        assert config.instance_group[0].kind == config.instance_group[0].Kind.Value(kind)
        assert params["runtime"] == "torch" and params["onnx_file"] == "model.onnx"
    cpu_params = {k: v.string_value for k, v in cpu.parameters.items()}
    assert TorchOptions.from_parameters(cpu_params) == TorchOptions(device="cpu", threads=2)
    assert gpu.max_batch_size == GPU_TORCH_DEFAULTS["max_batch_size"]
    assert list(gpu.dynamic_batching.preferred_batch_size) == [64, 128, 256]
    assert gpu.dynamic_batching.max_queue_delay_microseconds == 2000
    assert gpu_torch_settings(max_batch_size=128, preferred_batch_sizes=(64,)).max_batch_size == 128
    assert not gpu.optimization.execution_accelerators.gpu_execution_accelerator


@pytest.mark.parametrize("options", [
    {}, {"device": "cuda:1", "half": False, "channels_last": False, "threads": 3},
    {"half": True}])
def test_torch_options_round_trip_through_config_parameters(options):
    from fashiontag.serving.torch_model import TorchOptions

    opts = TorchOptions(**options)
    assert TorchOptions.from_parameters(opts.to_parameters()) == opts
