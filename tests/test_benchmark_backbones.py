"""tools/analysis_tools/benchmark_backbones.py and make_benchmark_docs.py: a tiny run, its JSON,
the docs."""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools" / "analysis_tools"))
import benchmark_backbones as bench  # noqa: E402
import make_benchmark_docs as docs  # noqa: E402

from plgvit_mm.utils.cpu_allocator import cpu_allocator_mode  # noqa: E402

PAIR = ["lw_plgvit_r", "resnet18"]  # one of ours, one peer


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> tuple[dict, Path]:
    """A tiny run: features at 64x96, growth on 64x64 -> 96x96, one target that cannot be met."""
    path = tmp_path_factory.mktemp("bench") / "report.json"
    never_met = bench.Target("lw_plgvit_r", "resnet18", "64x96", 0.0)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(bench, "TARGETS", (never_met,))
        bench.main(
            [
                "--models",
                *PAIR,
                "--sizes",
                "64x96",
                "--scaling-base",
                "64x64",
                "--scaling-factors",
                "1",
                "2",
                "--warmup",
                "1",
                "--repeats",
                "3",
                "--throughput-repeats",
                "2",
                "--batch-dense",
                "2",
                "--json",
                str(path),
            ]
        )
    return json.loads(path.read_text()), path


def test_scaled_sizes_keep_aspect_and_round_up_to_32():
    base = (384, 1280)
    sizes = [bench.scaled_size(base, f) for f in bench.SCALING_FACTORS]
    assert sizes == [(288, 928), (384, 1280), (544, 1824), (768, 2560)]
    with pytest.raises(ValueError, match="expected HxW"):
        bench.parse_size("384-1280")


def test_fitted_exponent_recovers_a_power_law():
    pixels = [1e5, 2e5, 4e5, 8e5]
    assert bench.fit_exponent(pixels, [3.0 * p**1.3 for p in pixels]) == pytest.approx(1.3)


class _Attention(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q = x.reshape(2, 3, 50, 16)  # (B, heads, tokens, head_dim)
        return F.scaled_dot_product_attention(q, q, q)


def test_macs_include_scaled_dot_product_attention():
    model = nn.Sequential(nn.Conv2d(3, 48, 1, bias=False), nn.Flatten(0), _Attention())
    expected = 48 * 3 * 100 + 2 * (2 * 3 * 50 * 50 * 16)  # 1x1 conv + q.k^T + attn.v
    assert bench.count_macs(model, (10, 10)) == expected


def test_report_schema_and_medians(report):
    data, _ = report
    assert data["schema"] == bench.SCHEMA and data["complete"] is True
    assert data["machine"]["threads"] == 2 and data["machine"]["device"] == "cpu"
    assert len(data["loadavg_start"]) == 3 and data["settings"]["full_run"] is False
    assert data["settings"]["cpu_allocator"] in ("retain", "system")  # 'retain' asked for
    assert [(s["size"], s["role"]) for s in data["sizes"]] == [
        ("64x96", "main"),
        ("64x64", "scaling"),
        ("96x96", "scaling"),
    ]
    main = data["sizes"][0]
    assert list(main["results"]) == PAIR
    for name, r in main["results"].items():
        assert len(r["latency_samples_ms"]) == 3
        assert r["latency_ms"] == statistics.median(r["latency_samples_ms"])
        assert r["throughput_ips"] == pytest.approx(
            2e3 / statistics.median(r["throughput_samples_ms"])
        )
        assert r["macs"] > 0 and r["peak_memory_mib"] is not None
        assert data["models"][name]["backbone_params"] > 0
    assert "throughput_ips" not in data["sizes"][1]["results"]["resnet18"]


def test_224_has_its_own_repeat_count_and_the_allocator_is_recorded():
    data = bench.main(
        [
            "--models",
            *PAIR,
            "--sizes",
            "224x224",
            "--scaling-base",
            "none",
            "--warmup",
            "1",
            "--repeats",
            "2",
            "--repeats-224",
            "5",
            "--throughput-repeats",
            "1",
            "--batch-224",
            "1",
            "--no-macs",
            "--allocator",
            "system",
        ]
    )
    assert data["settings"]["repeats_224"] == 5
    assert [len(r["latency_samples_ms"]) for r in data["sizes"][0]["results"].values()] == [5, 5]
    # 'system' changes nothing: the record is the mode in effect ('retain' once any run of this
    # process applied it)
    assert data["settings"]["cpu_allocator"] == cpu_allocator_mode()


def test_ratio_fields_are_ratios_of_the_medians(report):
    data, _ = report
    results = {s["size"]: s["results"] for s in data["sizes"]}
    assert {(r["size"], r["model"], r["peer"]) for r in data["ratios"]} == {
        (s, "lw_plgvit_r", "resnet18") for s in results
    }
    for r in data["ratios"]:
        res = results[r["size"]]
        assert r["latency_ratio"] == res[r["model"]]["latency_ms"] / res[r["peer"]]["latency_ms"]
    fit = data["scaling"]["lw_plgvit_r"]
    assert fit["pixels"] == [64 * 64, 96 * 96]
    assert fit["exponent"] == pytest.approx(bench.fit_exponent(fit["pixels"], fit["latency_ms"]))


def test_unmet_target_has_a_profile(report):
    data, _ = report
    ratio_target, growth_target = data["targets"]
    res = data["sizes"][0]["results"]
    assert ratio_target["ratio"] == res["lw_plgvit_r"]["latency_ms"] / res["resnet18"]["latency_ms"]
    assert ratio_target["met"] is False
    assert growth_target["kind"] == "linear_growth"
    assert growth_target["ratio"] == data["scaling"]["lw_plgvit_r"]["exponent"]
    rows = data["profiles"]["lw_plgvit_r@64x96"]["rows"]
    assert 0 < len(rows) <= bench.PROFILE_TOP_OPS
    self_ms = [row["self_cpu_ms"] for row in rows]
    assert self_ms == sorted(self_ms, reverse=True)


def test_docs_render_from_the_json(report, tmp_path):
    data, path = report
    out = tmp_path / "docs" / "benchmarks.md"
    text = docs.make_docs([path], out, tmp_path / "docs" / "figures")
    assert out.read_text() == text
    assert data["machine"]["cpu_model"] in text and "**NOT MET**" in text
    ratio = data["ratios"][0]["latency_ratio"]
    assert f"| LW-PLG-ViT-R | {ratio:.2f} |" in text
    assert (
        "top ops" in text and f"`{data['profiles']['lw_plgvit_r@64x96']['rows'][0]['op']}`" in text
    )
    for name in ("cpu_latency_vs_pixels.png", "cpu_params_macs_latency.png"):
        assert f"(figures/{name})" in text
        assert (tmp_path / "docs" / "figures" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_docs_reject_a_foreign_json(tmp_path):
    bad = tmp_path / "na.json"
    bad.write_text(json.dumps({"rows": []}))
    with pytest.raises(ValueError, match="na.json"):
        docs.make_docs([bad], tmp_path / "b.md", tmp_path / "f")
