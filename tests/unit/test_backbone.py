"""The backbone split: where fine-tuning starts travels with the tuned tail."""

from __future__ import annotations

import torch

from fashiontag.model.backbone import TUNE_FROM, load_backbone, save_tail
from fashiontag.model.train import full_config, quick_config


def test_a_tail_tuned_from_an_earlier_block_loads_where_it_starts(tmp_path):
    torch.manual_seed(0)
    backbone = load_backbone(tune_from=10)
    with torch.no_grad():
        for p in backbone.tail_modules().parameters():
            p.add_(0.01 * torch.randn_like(p))
    path = save_tail(backbone, tmp_path / "backbone.pt")

    loaded = load_backbone(path)  # the default split is 13: the file says 10
    assert loaded.tune_from == 10
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), backbone.eval()(x))
        assert not torch.allclose(loaded(x), load_backbone()(x))


def test_the_split_is_whole_network_either_way():
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(load_backbone(tune_from=10)(x), load_backbone()(x))


def test_train_full_tunes_more_blocks_than_the_shipped_schedule(tmp_path):
    assert quick_config(tmp_path).tune_from == TUNE_FROM
    assert full_config(tmp_path).tune_from < TUNE_FROM
