"""The documentation holds together: links resolve, design docs are cited by their repository
path, nothing points outside the repository, and tables that mirror the code equal the code."""

from __future__ import annotations

import json
import re
import statistics
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools" / "analysis_tools"))
import make_plgvit_docs  # noqa: E402

DESIGN_DOCS = (
    "neighborhood_attention.md",
    "nat.md",
    "plgvit.md",
    "mono3d_kitti.md",
    "driving_data.md",
    "performance_targets.md",
)
MARKDOWN = sorted([REPO / "README.md", *(REPO / "docs").rglob("*.md"), *REPO.glob("*/README.md")])
SOURCE_DIRS = ("plgvit_mm", "tools", "tests", "configs")
SOURCE_SUFFIXES = {".py", ".sh", ".cpp", ".cu", ".h", ".cfg", ".toml", ".md"}
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
# references outside the repository and development history (spelled in pieces so that this file
# does not match the patterns it looks for)
OUTSIDE = re.compile(
    "|".join(
        ["shared/" + "design", r"\.\./" + "shared", r"\bsessions? [0-9]", "this " + "session"]
    ),
    re.IGNORECASE,
)
DESIGN_NAME = re.compile(
    r"[\w./-]*\b(?:" + "|".join(re.escape(n[:-3]) for n in DESIGN_DOCS) + r")\.md\b"
)


def source_files() -> list[Path]:
    files = [REPO / "README.md", REPO / "Makefile", REPO / ".gitignore", *MARKDOWN]
    for folder in SOURCE_DIRS:
        files += [p for p in (REPO / folder).rglob("*") if p.suffix in SOURCE_SUFFIXES]
    this_file = Path(__file__).resolve()  # it spells out the patterns it looks for
    return sorted({p for p in files if p.is_file() and p.resolve() != this_file})


def slug(heading: str) -> str:
    """GitHub's anchor of a markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    return {slug(m[1]) for m in re.finditer(r"^#+ (.*)$", path.read_text(), re.MULTILINE)}


@pytest.mark.parametrize("page", MARKDOWN, ids=lambda p: str(p.relative_to(REPO)))
def test_markdown_links_resolve(page):
    broken = []
    for target in LINK.findall(page.read_text()):
        if re.match(r"[a-z]+:", target):  # http(s), mailto: public addresses
            continue
        file_part, _, anchor = target.partition("#")
        resolved = (page.parent / file_part).resolve() if file_part else page
        if not resolved.exists():
            broken.append(target)
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            broken.append(f"{target} (no heading '{anchor}')")
    assert not broken, f"{page.relative_to(REPO)}: links that do not resolve: {broken}"


def test_design_docs_exist_and_are_cited_by_their_repository_path():
    for name in DESIGN_DOCS:
        assert (REPO / "docs" / "design" / name).is_file(), name
    bad = []
    for path in source_files():
        for line_no, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            for ref in DESIGN_NAME.findall(line):
                if path.suffix == ".md":  # markdown: relative to the page or the repository
                    ok = (path.parent / ref).exists() or (REPO / ref).exists()
                else:  # code, configs, tests: the path from the repository root
                    ok = ref.startswith("docs/") and (REPO / ref).exists()
                if not ok:
                    bad.append(f"{path.relative_to(REPO)}:{line_no}: {ref}")
    assert not bad, "design docs cited without a resolvable docs/ path:\n" + "\n".join(bad)


def test_nothing_points_outside_the_repository_or_at_development_history():
    hits = []
    for path in source_files():
        for line_no, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            if OUTSIDE.search(line):
                hits.append(f"{path.relative_to(REPO)}:{line_no}: {line.strip()}")
    assert not hits, "\n".join(hits)


def test_readme_is_a_map():
    readme = (REPO / "README.md").read_text()
    assert len(readme.encode()) <= 12_000
    for section in ("## Layout", "## Development"):
        assert re.search(rf"^{section}$", readme, re.MULTILINE), section
    commands = re.search(r"```bash\n(.*?)```", readme, re.DOTALL)
    assert commands and commands[1].split()[:2] == ["make", "demo"]
    assert "make test" in commands[1]


def test_lw_preset_table_and_parameter_counts_equal_the_code():
    """docs/plgvit.md's generated LW-PLG-ViT block == what the code gives now."""
    text = make_plgvit_docs.DOC.read_text()
    expected = make_plgvit_docs.lw_archs_table() + "\n"
    assert make_plgvit_docs.generated_block(text, "lw-archs") == expected, (
        "docs/plgvit.md is stale: run python tools/analysis_tools/make_plgvit_docs.py"
    )


@pytest.mark.slow
def test_plgvit_preset_table_equals_the_code():
    text = make_plgvit_docs.DOC.read_text()
    expected = make_plgvit_docs.plg_archs_table() + "\n"
    assert make_plgvit_docs.generated_block(text, "plg-archs") == expected


@pytest.mark.slow
def test_benchmark_report_parameter_counts_equal_the_code():
    """The committed CPU report (source of docs/benchmarks.md) counts the parameters the code has."""
    import timm

    import plgvit_mm  # noqa: F401  (registers the timm models)

    report = json.loads((REPO / "docs" / "benchmarks.json").read_text())
    for name, info in report["models"].items():
        if not (name.startswith(("lw_plgvit", "plgvit", "nat", "dinat"))):
            continue
        model = timm.create_model(name)
        params = sum(p.numel() for p in model.parameters())
        assert info["params"] == params, (name, info["params"], params)


def test_demo_record_is_consistent_and_quoted():
    """docs/demo_runs.json: at least three runs on the held-out test split, summary equal to
    its runs; the README quotes the median and range of both metrics."""
    record = json.loads((REPO / "docs" / "demo_runs.json").read_text())
    assert record["split"] == "test" and record["command"]
    runs = record["runs"]
    assert len(runs) >= 3
    assert len({run["seed"] for run in runs}) == len(runs)
    readme = " ".join((REPO / "README.md").read_text().split())  # line breaks as spaces
    for key in ("coco/bbox_mAP", "coco/segm_mAP"):
        values = [run[key] for run in runs]
        assert record["median"][key] == statistics.median(values)
        assert record["range"][key] == [min(values), max(values)]
        quoted = f"{record['median'][key]:.3f} (range {min(values):.3f}-{max(values):.3f})"
        assert quoted in readme, f"README should quote {key} as '{quoted}'"
    for run in runs:
        assert {"threads", "wall_s", "iterations", "seed"} <= run.keys()


MONO3D_RECORDS = ("demo_mono3d.json", "demo_mono3d_60min.json")


def _loose(values: dict, metric: str) -> str:
    return f"{values[f'kitti/Car_{metric}_AP40_moderate_loose']:.2f}"


def mono3d_run_row(record: dict) -> str:
    """The row docs/design/mono3d_kitti.md quotes for one mono-3D demo record."""
    wall, errors = record["wall_s"], record["car_localisation"]
    return (
        f"| {record['iterations']} | {record['threads']} | {wall // 60} min {wall % 60:02d} s | "
        + " / ".join(_loose(record, m) for m in ("2D", "BEV", "3D"))
        + f" | {errors['found']:.0%} / {errors['depth_error_relative']:.1%} / "
        f"{errors['yaw_error_deg']:.0f} / {errors['bev_iou_at_least_0.5']:.0%} |"
    )


def mono3d_curve_row(point: dict) -> str:
    """The row docs/design/mono3d_kitti.md quotes for one learning-curve point."""
    return (
        f"| {point['iteration']} | {point['train_loss']:.2f} | "
        + " | ".join(_loose(point, m) for m in ("2D", "BEV", "3D"))
        + f" | {point['car_found']:.0%} | {point['car_depth_error_relative']:.1%} | "
        f"{point['car_yaw_error_deg']:.0f} |"
    )


def test_mono3d_demo_records_are_quoted():
    """The mono-3D demo records (test split, val learning curve) and their pictures exist, and
    the design doc quotes each run and each curve point as recorded."""
    doc = " ".join((REPO / "docs" / "design" / "mono3d_kitti.md").read_text().split())
    for name in MONO3D_RECORDS:
        record = json.loads((REPO / "docs" / name).read_text())
        assert record["split"] == "test" and record["curve_split"] == "val"
        assert record["command"] in doc, f"the doc should give the command of docs/{name}"
        assert mono3d_run_row(record) in doc, f"docs/{name}: quote '{mono3d_run_row(record)}'"
        for point in record["curve"]:
            assert mono3d_curve_row(point) in doc, f"docs/{name}: '{mono3d_curve_row(point)}'"
    assert (REPO / "docs" / "figures" / "demo_mono3d.png").is_file()
