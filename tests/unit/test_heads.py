from pathlib import Path

import numpy as np
import pytest
import torch

from fashiontag.errors import ModelArtifactError
from fashiontag.model.heads import (
    accuracy,
    confusion_matrix,
    fit_head,
    load_heads,
    save_heads,
    select_head,
    select_heads,
)
from fashiontag.model.network import AttributeHead, AttributeHeads, InputNormalization
from fashiontag.taxonomy import DEFAULT_TAXONOMY


def _blobs(n_per_class=60, classes=3, dim=32, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 3, (classes, dim))
    x = np.concatenate([c + rng.normal(0, 1, (n_per_class, dim)) for c in centres])
    y = np.repeat(np.arange(classes), n_per_class)
    return x.astype(np.float32), y


def test_fit_head_learns_separable_classes_and_ignores_unlabelled_rows():
    x, y = _blobs()
    y_masked = y.copy()
    y_masked[::4] = -1  # unknown labels, as in FashionAI's one-attribute-per-image rows
    head = fit_head(x, y_masked, 3)
    assert accuracy(head, x, y) > 0.95
    cm = confusion_matrix(head, x, y, 3)
    assert cm.sum() == len(y) and np.trace(cm) > 0.95 * len(y)


def test_select_head_reports_validation_accuracy_of_chosen_shape():
    x, y = _blobs(seed=1)
    fit = select_head(x, y, 3, hidden_options=(0, 16), steps=200)
    assert fit.hidden in (0, 16)
    assert 0.9 < fit.validation_accuracy <= 1.0


def test_one_head_shape_is_a_single_fit_on_all_the_data():
    x, y = _blobs(seed=2)
    fit = select_head(x, y, 3, hidden_options=(16,), steps=100)
    alone = fit_head(x, y, 3, hidden=16, steps=100)
    assert fit.hidden == 16 and fit.validation_accuracy is None
    a, b = fit.head.state_dict(), alone.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_heads_fitted_in_worker_processes_are_bit_identical_to_fitting_them_in_turn():
    jobs = {f"attr{i}": (*_blobs(classes=2 + i, seed=i), 2 + i) for i in range(3)}
    kwargs = {"hidden_options": (0, 16), "steps": 60}
    spread = select_heads(jobs, workers=2, **kwargs)
    assert list(spread) == list(jobs)
    for name, (x, y, n) in jobs.items():
        alone = select_head(x, y, n, **kwargs)
        assert spread[name].hidden == alone.hidden
        assert spread[name].validation_accuracy == alone.validation_accuracy
        a, b = spread[name].head.state_dict(), alone.head.state_dict()
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_a_failing_fit_worker_names_the_heads_it_was_fitting():
    x, y = _blobs()
    jobs = {"fine": (x, y, 3), "broken": (x, np.full_like(y, -1), 3)}  # nothing labelled
    with pytest.raises(RuntimeError, match=r"(?s)broken.*no labelled examples"):
        select_heads(jobs, workers=2, steps=10)


def test_heads_round_trip_through_disk(tmp_path):
    taxonomy = DEFAULT_TAXONOMY.subset(["category", "sleeve_length"])
    heads = {a.name: AttributeHead(a.num_values, hidden=h, in_dim=8)
             for a, h in zip(taxonomy, (0, 4), strict=False)}
    save_heads(tmp_path / "heads.pt", taxonomy, heads)
    loaded_taxonomy, loaded = load_heads(tmp_path / "heads.pt")
    assert loaded_taxonomy == taxonomy
    x = torch.randn(5, 8)
    for name in heads:
        assert torch.allclose(heads[name].eval()(x), loaded[name](x))


def test_heads_module_emits_one_softmax_per_attribute_in_taxonomy_order():
    taxonomy = DEFAULT_TAXONOMY
    module = AttributeHeads(taxonomy, {a.name: AttributeHead(a.num_values, in_dim=8)
                                       for a in taxonomy}).eval()
    out = module(torch.randn(4, 8)).detach().numpy()
    assert out.shape == (4, taxonomy.total_values)
    for part in taxonomy.split(out).values():
        assert np.allclose(part.sum(-1), 1.0, atol=1e-5)


def test_input_normalisation_is_lite0_scaling_in_nchw():
    pixels = torch.tensor([[[[127, 255, 0]]]], dtype=torch.uint8)  # N=1, H=1, W=1, C=3
    out = InputNormalization()(pixels)
    assert out.shape == (1, 3, 1, 1)
    assert out.flatten().tolist() == [0.0, 1.0, -127 / 128]


def test_the_few_shot_attributes_of_a_heads_file_are_listed_for_a_refit(tmp_path):
    from fashiontag.model.heads import fewshot_attributes
    from fashiontag.taxonomy import Attribute

    fabric = Attribute("fabric", ("Denim", "Silk"), source="fewshot")
    base = DEFAULT_TAXONOMY.subset(["category"])
    n = base.category.num_values
    heads = {"category": AttributeHead(n, in_dim=8), "fabric": AttributeHead(2, in_dim=8)}
    save_heads(tmp_path / "heads.pt", base.with_attribute(fabric), heads)
    assert fewshot_attributes(tmp_path / "heads.pt") == [fabric]
    assert fewshot_attributes(tmp_path / "missing.pt") == []


class _Touch:
    """Unpickles as a call of ``Path.touch``: stands for any code a crafted weight file runs."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return Path.touch, (self.marker,)


def _crafted_heads_file(path: Path, marker: Path) -> Path:
    taxonomy = DEFAULT_TAXONOMY.subset(["category"])
    head = AttributeHead(taxonomy.category.num_values, in_dim=8)
    torch.save({"format": 2, "taxonomy": taxonomy.to_json(),
                "heads": {"category": {"kind": head.kind, "config": _Touch(marker),
                                       "state_dict": head.state_dict()}}}, path)
    return path


def test_a_heads_file_carrying_a_pickled_callable_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "ran"
    crafted = _crafted_heads_file(tmp_path / "heads.pt", marker)
    with pytest.raises(ModelArtifactError, match=r"carries code.*refused"):
        load_heads(crafted)  # what training, export, few-shot and the served torch runtime call
    assert not marker.exists()
    torch.load(crafted, weights_only=False)  # the payload is live: unpickling it runs the call
    assert marker.exists()


def test_a_tuned_backbone_carrying_a_pickled_callable_is_refused_without_running_it(tmp_path):
    from fashiontag.model.backbone import BACKBONE_NAME, load_backbone

    marker = tmp_path / "ran"
    torch.save({"format": 1, "backbone": BACKBONE_NAME, "tune_from": 13, "tail": _Touch(marker)},
               tmp_path / "backbone.pt")
    with pytest.raises(ModelArtifactError, match=r"carries code.*refused"):
        load_backbone(tmp_path / "backbone.pt")
    assert not marker.exists()


def test_a_head_whose_config_is_not_plain_values_is_refused_when_saved(tmp_path):
    taxonomy = DEFAULT_TAXONOMY.subset(["category"])
    head = AttributeHead(taxonomy.category.num_values, in_dim=np.int64(8))  # would need pickle
    with pytest.raises(ValueError, match="not plain JSON values"):
        save_heads(tmp_path / "heads.pt", taxonomy, {"category": head})
    assert not (tmp_path / "heads.pt").exists()
