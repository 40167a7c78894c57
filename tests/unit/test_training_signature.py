import json

from fashiontag.model.train import (
    HEADS_FILE,
    REPORT_FILE,
    TrainConfig,
    is_current,
    training_signature,
)


def test_signature_changes_with_configuration_but_not_with_artifacts_folder(tmp_path):
    base = TrainConfig(artifacts=tmp_path / "a")
    assert training_signature(base) == training_signature(TrainConfig(artifacts=tmp_path / "b"))
    assert training_signature(base) != training_signature(TrainConfig(artifacts=tmp_path / "a",
                                                                      rendered_train=10))


def test_heads_are_current_only_when_made_by_this_code_and_config(tmp_path):
    cfg = TrainConfig(artifacts=tmp_path)
    assert not is_current(cfg)
    (tmp_path / HEADS_FILE).write_bytes(b"heads")
    (tmp_path / REPORT_FILE).write_text(json.dumps({"signature": "stale"}))
    assert not is_current(cfg)
    (tmp_path / REPORT_FILE).write_text(json.dumps({"signature": training_signature(cfg)}))
    assert is_current(cfg)
