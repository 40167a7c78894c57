import json
from dataclasses import replace

from fashiontag.artifacts import Artifacts
from fashiontag.model.finetune import FinetuneConfig
from fashiontag.model.train import SCHEDULES, TrainConfig, is_current, training_signature


def test_signature_changes_with_configuration_but_not_with_artifacts_folder(tmp_path):
    base = TrainConfig(artifacts=tmp_path / "a")
    assert training_signature(base) == training_signature(TrainConfig(artifacts=tmp_path / "b"))
    assert training_signature(base) != training_signature(replace(base, views=2))
    assert training_signature(base) != training_signature(
        replace(base, finetune=FinetuneConfig(epochs=3)))
    assert training_signature(SCHEDULES["fast"](tmp_path)) != \
        training_signature(SCHEDULES["full"](tmp_path))


def test_a_model_is_current_only_when_made_by_this_code_and_config(tmp_path):
    cfg = TrainConfig(artifacts=tmp_path)
    layout = Artifacts(tmp_path)
    assert not is_current(cfg)
    layout.heads.write_bytes(b"heads")
    layout.backbone.write_bytes(b"tail")
    layout.training_report.write_text(json.dumps({"signature": "stale"}))
    assert not is_current(cfg)
    layout.training_report.write_text(json.dumps({"signature": training_signature(cfg)}))
    assert is_current(cfg)
    layout.backbone.unlink()
    assert not is_current(cfg)  # heads without the backbone they were fitted on are no model
