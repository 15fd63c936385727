"""The Python half of ``tools/gpu_check.sh``: the smoke stage and the JSON reports it writes.

    python tools/analysis_tools/gpu_check.py smoke OUT_DIR [--dry-run] [--docs-json PATH]
    python tools/analysis_tools/gpu_check.py cuda-tests OUT_JSON
    python tools/analysis_tools/gpu_check.py merge-bench OUT_JSON DET_JSON SEG_JSON

``smoke`` trains Mask R-CNN LW-PLG-ViT-A, UperNet NAT-Tiny and mono-3D LW-PLG-ViT-A with
``tools/train.py --amp`` on generated data: synthetic shapes in COCO and ADE20K format
(:mod:`plgvit_mm.datasets.synthetic_shapes`) and KITTI-format frames
(:mod:`plgvit_mm.datasets.synthetic_kitti` when present, else the 3-frame fixture
``tests/data/kitti_mini``). Each smoke config inherits the real experiment config and only
changes the data, the input size, the schedule (an iteration loop with a 5-iteration warm-up,
no validation) and the logging (every iteration, unsmoothed). A smoke passes when every logged
loss is finite, the mean of the last third of the first run's losses is below the mean of its
first third, the run's checkpoint is written, and ``--resume`` continues from that checkpoint to
a second one (``resumed``). Then the CUDA tests (the tests marked to skip without a CUDA GPU)
and ``tools/analysis_tools/gpu_amp_check.py`` run, and everything is summarised in
``OUT_DIR/gpu_check.json``::

    {"device", "torch", "cuda",
     "smokes": {"maskrcnn_lwplgvit_a": {"losses": [...], "passed": true, "resumed": true}, ...},
     "cuda_tests": {"passed": N, "skipped": 0, "failed": 0},
     "amp_check": {"passed": true, "backbones": {name: true}, "na2d": {backend: true}}}

``--dry-run`` runs the same pipeline on the CPU with tiny images and iteration counts, training in
float32 (a check of the plumbing: there the CUDA tests are skipped and the AMP check has no GPU
backends). Exit status
0 when everything the device can check passed.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import platform
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from plgvit_mm.utils.atomic_file import atomic_write_text

REPO = Path(__file__).resolve().parents[2]

KITTI_FIXTURE = REPO / "tests" / "data" / "kitti_mini"
CUDA_SKIP_REASON = re.compile(r"cuda|gpu", re.IGNORECASE)


@dataclass(frozen=True)
class Profile:
    """Sizes of one smoke run (images of ``image`` px; mono-3D ``kitti_input`` W x H) and the
    time limits (seconds) of one training run, the CUDA tests and the AMP check."""

    device: str
    image: int
    kitti_input: tuple[int, int]
    images: int
    batch: int
    iters: int
    resume_iters: int
    workers: int
    train_timeout: int
    tests_timeout: int
    amp_timeout: int
    amp: bool


GPU = Profile("cuda", 512, (1280, 384), 16, 2, 30, 5, 2, 75, 90, 120, amp=True)
# float32 on the CPU: mmcv's CPU nms has no bfloat16 kernel (Mask R-CNN under CPU autocast stops
# there with "expected scalar type Float but found BFloat16")
CPU = Profile("cpu", 96, (320, 96), 4, 2, 9, 2, 0, 400, 300, 400, amp=False)

SCHEDULE = """
train_cfg = dict(_delete_=True, type="IterBasedTrainLoop", max_iters={iters})
val_cfg = val_dataloader = val_evaluator = None
test_cfg = test_dataloader = test_evaluator = None
optim_wrapper = dict(optimizer=dict(lr={lr}))
param_scheduler = [dict(type="LinearLR", start_factor=0.1, by_epoch=False, begin=0, end=5)]
default_hooks = dict(
    logger=dict(interval=1),
    checkpoint=dict(by_epoch=False, interval={iters}, max_keep_ckpts=2, save_best=None),
)
log_processor = dict(by_epoch=False, window_size=1)
randomness = dict(seed=0)
"""

MASKRCNN = """_base_ = ["{base}"]
data_root = "{data}/"
classes = ("square", "circle", "triangle")
model = dict(
    backbone=dict(init_cfg=None),
    roi_head=dict(bbox_head=dict(num_classes=3), mask_head=dict(num_classes=3)),
)
train_dataloader = dict(
    batch_size={batch},
    num_workers={workers},
    persistent_workers=False,
    dataset=dict(
        data_root=data_root,
        metainfo=dict(classes=classes),
        ann_file="annotations/instances_train2017.json",
        data_prefix=dict(img="train2017/"),
        pipeline=[
            dict(type="CheckedLoadImageFromFile"),
            dict(type="LoadAnnotations", with_bbox=True, with_mask=True),
            dict(type="Resize", scale=({image}, {image}), keep_ratio=True),
            dict(type="RandomFlip", prob=0.5),
            dict(type="PackDetInputs"),
        ],
    ),
)
"""

UPERNET = """_base_ = ["{base}"]
data_root = "{data}/"
crop_size = ({crop}, {crop})
model = dict(data_preprocessor=dict(size=crop_size), backbone=dict(init_cfg=None))
train_dataloader = dict(
    batch_size={batch},
    num_workers={workers},
    persistent_workers=False,
    dataset=dict(
        data_root=data_root,
        pipeline=[
            dict(type="LoadImageFromFile"),
            dict(type="LoadAnnotations", reduce_zero_label=True),
            dict(type="RandomResize", scale=({image}, {image}), ratio_range=(0.8, 1.2),
                 keep_ratio=True),
            dict(type="RandomCrop", crop_size=crop_size),
            dict(type="RandomFlip", prob=0.5),
            dict(type="PackSegInputs"),
        ],
    ),
)
"""

MONO3D = """_base_ = ["{base}"]
input_size = {kitti_input}
train_dataloader = dict(
    batch_size={batch},
    num_workers={workers},
    persistent_workers=False,
    dataset=dict(
        data_root="{data}/",
        ann_file="ImageSets/train.txt",
        pipeline=[
            dict(type="LoadImageFromFile"),
            dict(type="LoadMono3DAnnotations"),
            dict(type="Mono3DRandomFlip", prob=0.5),
            dict(type="Mono3DResize", scale=input_size, keep_ratio=True),
            dict(type="Pad", size=input_size),
            dict(type="PackMono3DInputs"),
        ],
    ),
)
"""


@dataclass(frozen=True)
class Smoke:
    """One model of the smoke stage: its experiment config, the override template, the LR."""

    config: str
    template: str
    data: str
    lr: float


SMOKES = {
    "maskrcnn_lwplgvit_a": Smoke("maskrcnn_lwplgvit_a_coco.py", MASKRCNN, "coco", 4e-4),
    "upernet_nat_tiny": Smoke("upernet_nat_tiny_ade20k.py", UPERNET, "ade20k", 4e-4),
    "mono3d_lwplgvit_a": Smoke("mono3d_lwplgvit_a_kitti.py", MONO3D, "kitti", 2.25e-4),
}


def write_data(out: Path, profile: Profile) -> dict[str, Path]:
    """Generated datasets under ``out`` (kept when present); their roots by format."""
    from plgvit_mm.datasets.synthetic_shapes import write_synthetic_ade20k, write_synthetic_coco

    roots = {name: out / name for name in ("coco", "ade20k", "kitti")}
    size = profile.image
    if not (roots["coco"] / "annotations" / "instances_train2017.json").is_file():
        write_synthetic_coco(str(roots["coco"]), profile.images, 1, size, size, seed=0)
    if not (roots["ade20k"] / "images" / "training").is_dir():
        write_synthetic_ade20k(str(roots["ade20k"]), profile.images, 1, size, size, seed=1)
    if importlib.util.find_spec("plgvit_mm.datasets.synthetic_kitti") is None:
        roots["kitti"] = KITTI_FIXTURE
    elif not (roots["kitti"] / "ImageSets" / "train.txt").is_file():
        command = [sys.executable, "-m", "plgvit_mm.datasets.synthetic_kitti", str(roots["kitti"])]
        command += ["--split", "train", "--frames", str(profile.images), "--seed", "2"]
        subprocess.run(command, check=True, cwd=REPO)
    return roots


def write_config(out: Path, name: str, data_root: Path, profile: Profile) -> Path:
    """The smoke config of ``name`` (inherits ``configs/<experiment>.py``), written to ``out``."""
    smoke = SMOKES[name]
    text = smoke.template.format(
        base=REPO / "configs" / smoke.config,
        data=data_root,
        image=profile.image,
        crop=profile.image,
        kitti_input=profile.kitti_input,
        batch=profile.batch,
        workers=profile.workers,
    )
    path = out / f"{name}_smoke.py"
    atomic_write_text(text + SCHEDULE.format(iters=profile.iters, lr=smoke.lr), path)
    return path


def logged_losses(work_dir: Path) -> list[tuple[int, float]]:
    """(iteration, total loss) of every run in ``work_dir``, from mmengine's ``scalars.json``."""
    entries = []
    for scalars in sorted(work_dir.glob("*/vis_data/scalars.json")):
        for line in scalars.read_text().splitlines():
            record = json.loads(line)
            if "loss" in record:
                entries.append((int(record["iter"]), float(record["loss"])))
    return entries


def losses_fall(losses: list[float]) -> bool:
    """Whether the mean of the last third is below the mean of the first third."""
    third = max(1, len(losses) // 3)
    return sum(losses[-third:]) / third < sum(losses[:third]) / third


def run_logged(command: list[str], log: Path, timeout: int) -> int:
    """Run ``command`` from the repository root, output into ``log``; exit status (124: timeout)."""
    with log.open("w") as handle:
        try:
            return subprocess.run(
                command, cwd=REPO, stdout=handle, stderr=subprocess.STDOUT, timeout=timeout
            ).returncode
        except subprocess.TimeoutExpired:
            handle.write(f"\n[gpu_check] stopped after {timeout} s\n")
            return 124


def train(config: Path, work_dir: Path, log: Path, extra: list[str], profile: Profile) -> int:
    """``tools/train.py CONFIG [--amp]`` with its output in ``log``; the exit status."""
    command = [sys.executable, str(REPO / "tools" / "train.py"), str(config)]
    command += ["--amp"] if profile.amp else []
    command += ["--work-dir", str(work_dir), "--seed", "0", *extra]
    return run_logged(command, log, profile.train_timeout)


def run_smoke(name: str, config: Path, work_dir: Path, profile: Profile) -> dict:
    """Train ``profile.iters`` iterations, then resume for ``profile.resume_iters`` more."""
    first, total = profile.iters, profile.iters + profile.resume_iters
    shutil.rmtree(work_dir, ignore_errors=True)  # a rerun starts from scratch
    work_dir.mkdir(parents=True)
    status = train(config, work_dir, work_dir / "train.log", [], profile)
    checkpoint = work_dir / f"iter_{first}.pth"
    written = status == 0 and checkpoint.is_file()
    resumed = False
    if written:
        options = ["--resume", "--cfg-options", f"train_cfg.max_iters={total}"]
        status = train(config, work_dir, work_dir / "resume.log", options, profile)
        iterations = [i for i, _ in logged_losses(work_dir)]
        resumed = (
            status == 0
            and iterations == list(range(1, total + 1))
            and (work_dir / f"iter_{total}.pth").is_file()
        )
    losses = [loss for _, loss in logged_losses(work_dir)]
    first_run = losses[:first]
    passed = (
        written
        and len(first_run) == first
        and all(math.isfinite(x) for x in losses)
        and losses_fall(first_run)
        and resumed
    )
    print(f"[gpu_check] {name}: passed={passed} resumed={resumed} losses={losses}", flush=True)
    return dict(losses=[round(x, 5) for x in losses], passed=passed, resumed=resumed)


class CudaTestSelector:
    """pytest plugin: keeps the tests marked to skip without CUDA and counts their outcomes."""

    def __init__(self) -> None:
        self.counts = dict(passed=0, skipped=0, failed=0)

    def pytest_collection_modifyitems(self, items: list) -> None:
        def needs_cuda(item) -> bool:
            reasons = [
                str(mark.kwargs.get("reason", ""))
                for mark in item.iter_markers()
                if mark.name in ("skipif", "skip")
            ]
            return any(CUDA_SKIP_REASON.search(reason) for reason in reasons)

        items[:] = [item for item in items if needs_cuda(item)]

    def pytest_runtest_logreport(self, report) -> None:
        if report.when == "call" or report.outcome != "passed":
            key = report.outcome if report.outcome in self.counts else "failed"
            self.counts[key] += 1


def cuda_tests(out_json: Path) -> int:
    """Run the CUDA tests of ``tests/``; their pass/skip/fail counts into ``out_json``."""
    import pytest

    selector = CudaTestSelector()
    args = ["-q", "-rs", "-p", "no:cacheprovider", "--continue-on-collection-errors"]
    pytest.main([*args, str(REPO / "tests")], plugins=[selector])
    atomic_write_text(json.dumps(selector.counts) + "\n", out_json)
    print(f"[gpu_check] CUDA tests: {selector.counts}", flush=True)
    return 0 if selector.counts["failed"] == 0 else 1


def amp_summary(report: dict, status: int) -> dict:
    """Booleans of ``gpu_amp_check.py``'s report: overall, per backbone, per NA backend."""
    failures = report.get("failures", [])

    def clean(prefix: str) -> bool:
        return not any(f.startswith(prefix + " ") or f.startswith(prefix + ":") for f in failures)

    backbones = {name: clean(name) for name in report.get("backbones", {})}
    na2d = {
        backend: bool(entries) and clean(f"na2d {backend}")
        for backend, entries in report.get("na2d", {}).items()
    }
    return dict(passed=status == 0 and not failures, backbones=backbones, na2d=na2d)


def smoke(out: Path, dry_run: bool, docs_json: Path | None) -> int:
    import torch

    profile = CPU if dry_run else GPU
    if not dry_run and not torch.cuda.is_available():
        raise SystemExit("gpu_check smoke: no CUDA GPU visible to torch (use --dry-run on a CPU)")
    out.mkdir(parents=True, exist_ok=True)
    roots = write_data(out / "data", profile)
    smokes = {}
    for name, spec in SMOKES.items():
        config = write_config(out / "configs", name, roots[spec.data], profile)
        smokes[name] = run_smoke(name, config, out / "work" / name, profile)

    tests_json = out / "cuda_tests.json"
    tests_json.unlink(missing_ok=True)
    command = [sys.executable, __file__, "cuda-tests", str(tests_json)]
    run_logged(command, out / "cuda_tests.log", profile.tests_timeout)
    tests = json.loads(tests_json.read_text()) if tests_json.is_file() else {}

    amp_json = out / "amp_check.json"
    amp_json.unlink(missing_ok=True)
    command = [sys.executable, str(REPO / "tools/analysis_tools/gpu_amp_check.py")]
    command += ["--out", str(amp_json)]
    command += ["--device", "cpu", "--size", "64", "--batch", "1"] if dry_run else []
    status = run_logged(command, out / "amp_check.log", profile.amp_timeout)
    amp = json.loads(amp_json.read_text()) if amp_json.is_file() else {}

    report = dict(
        device=torch.cuda.get_device_name() if not dry_run else f"cpu ({platform.machine()})",
        torch=torch.__version__,
        cuda=torch.version.cuda,
        smokes=smokes,
        cuda_tests=dict(
            passed=tests.get("passed", 0),
            skipped=tests.get("skipped", 0),
            failed=tests.get("failed", 0) if tests else 1,
        ),
        amp_check=amp_summary(amp, status),
    )
    text = json.dumps(report, indent=1) + "\n"
    atomic_write_text(text, out / "gpu_check.json")
    if docs_json is not None and not dry_run:
        atomic_write_text(text, docs_json)
    print(text, flush=True)
    smokes_ok = all(entry["passed"] for entry in smokes.values())
    if dry_run:
        return 0 if smokes_ok else 1
    tests_ok = report["cuda_tests"]["failed"] == 0 and report["cuda_tests"]["skipped"] == 0
    return 0 if smokes_ok and tests_ok and report["amp_check"]["passed"] else 1


def merge_bench(out_json: Path, parts: list[Path]) -> int:
    """One ``benchmark_train`` report from several (the first one's header, all results)."""
    reports = [json.loads(path.read_text()) for path in parts if path.is_file()]
    if not reports:
        print(f"[gpu_check] no benchmark report among {parts}", file=sys.stderr)
        return 1
    merged = dict(reports[0], results=[r for report in reports for r in report["results"]])
    atomic_write_text(json.dumps(merged, indent=1) + "\n", out_json)
    return 0 if len(reports) == len(parts) else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    smoke_parser = commands.add_parser("smoke", help="three training smokes, CUDA tests, AMP")
    smoke_parser.add_argument("out", type=Path)
    smoke_parser.add_argument("--dry-run", action="store_true", help="tiny run on the CPU")
    smoke_parser.add_argument("--docs-json", type=Path, help="also write the report here (GPU)")
    tests_parser = commands.add_parser("cuda-tests", help="the tests that need CUDA")
    tests_parser.add_argument("out_json", type=Path)
    merge_parser = commands.add_parser("merge-bench", help="merge benchmark_train reports")
    merge_parser.add_argument("out_json", type=Path)
    merge_parser.add_argument("parts", type=Path, nargs="+")
    args = parser.parse_args(argv)
    paths = [str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])]
    os.environ["PYTHONPATH"] = os.pathsep.join(paths)  # plgvit_mm for every subprocess
    if args.command == "smoke":
        return smoke(args.out.resolve(), args.dry_run, args.docs_json)
    if args.command == "cuda-tests":
        return cuda_tests(args.out_json)
    return merge_bench(args.out_json, args.parts)


if __name__ == "__main__":
    sys.exit(main())
