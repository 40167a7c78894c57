"""The catalog tagging benchmark in smoke mode: it runs end to end and reports its ratios.
(Speed is never asserted: this machine is shared; `make bench` runs the full size.)"""

from __future__ import annotations

from benchmarks import tagging_throughput


def test_tagging_benchmark_smoke_mode_runs_both_decodes_and_reports_ratios(server, tmp_path):
    result = tagging_throughput.main(["--smoke", "--url", server.grpc_url,
                                      "--out", str(tmp_path / "r.json")])
    assert (tmp_path / "r.json").exists()
    assert set(result["catalogs"]) == {"480x360", "4000x3000"}
    for catalog in result["catalogs"].values():
        assert catalog["in_process_images_per_s"] > 0
        for decode in tagging_throughput.DECODES:
            cli = catalog[f"cli_{decode}"]
            assert cli["records"] == catalog["images"] and cli["failed"] == 0
            assert catalog[f"ratio_cli_{decode}_to_in_process"] > 0
        assert catalog["faster_decode"] in tagging_throughput.DECODES
