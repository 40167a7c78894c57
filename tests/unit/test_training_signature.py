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


def test_studio_corrections_join_training_but_never_from_the_judging_photographers(tmp_path):
    from fashiontag.model.datasets import clothing
    from fashiontag.model.train import _corrections
    from fashiontag.taxonomy import DEFAULT_TAXONOMY

    splits = clothing.sender_split(clothing.load())
    train_photo, test_photo = splits.train[0].path, splits.test[0].path
    labels = Artifacts(tmp_path).studio_labels
    labels.mkdir(parents=True)
    (labels / "category.csv").write_text(f"path,value\n{train_photo},Hoodie\n{test_photo},Hat\n")
    (labels / "pant_length.csv").write_text(f"path,value\n{train_photo},Short Pant\n")
    cfg = TrainConfig(artifacts=tmp_path)
    held_out = {p.path.resolve() for p in splits.val + splits.test}
    photos, targets = _corrections(cfg.layout, DEFAULT_TAXONOMY, held_out)
    assert [p.path for p in photos] == [train_photo.resolve()]
    assert targets["category"].tolist() == [DEFAULT_TAXONOMY.category.index("Hoodie")]
    sleeve, pant = DEFAULT_TAXONOMY["sleeve_length"], DEFAULT_TAXONOMY["pant_length"]
    assert targets["sleeve_length"].tolist() == [sleeve.index("Long Sleeves")]  # from Hoodie
    assert targets["pant_length"].tolist() == [pant.index("Short Pant")]  # as corrected
    before = training_signature(cfg)
    (labels / "category.csv").write_text(f"path,value\n{train_photo},Outwear\n")
    assert training_signature(cfg) != before  # a correction means the model is not current
