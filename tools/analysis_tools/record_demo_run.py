"""Add one `make demo` run to the demo record (docs/demo_runs.json) with the median and range.

Called by tools/run_demo.sh when ``DEMO_RECORD`` names the record:

    DEMO_SEED=1 DEMO_RECORD=docs/demo_runs.json bash tools/run_demo.sh

The record holds runs of one dataset only (generator version, data seeds and split, from the
dataset's ``generator.json``); a run on other data is refused. Written atomically. Format::

    {"command": ..., "split": "test", "data": {...}, "runs": [{"coco/bbox_mAP": ...,
     "coco/segm_mAP": ..., "threads": ..., "wall_s": ..., "iterations": ..., "seed": ...,
     "loadavg_start": ...}, ...], "median": {...}, "range": {...}}
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path

from plgvit_mm.utils.atomic_file import atomic_write_text

COMMAND = "DEMO_SEED=<seed> DEMO_RECORD=docs/demo_runs.json bash tools/run_demo.sh"
METRICS = ("coco/bbox_mAP", "coco/segm_mAP")
SUMMARISED = (*METRICS, "wall_s")


def summarise(runs: list[dict]) -> tuple[dict, dict]:
    """Median and [min, max] of the metrics and the wall time over ``runs``."""
    median = {key: statistics.median(run[key] for run in runs) for key in SUMMARISED}
    spread = {
        key: [min(run[key] for run in runs), max(run[key] for run in runs)] for key in SUMMARISED
    }
    return median, spread


def add_run(record_path: str | Path, run: dict, data: dict, split: str = "test") -> dict:
    """Append ``run`` to the record at ``record_path`` (created if absent); returns the record.

    ``data`` describes the dataset (the generator manifest); ValueError if the record was made on
    other data or another split, naming both.
    """
    missing = [
        key for key in (*METRICS, "threads", "wall_s", "iterations", "seed") if key not in run
    ]
    if missing:
        raise ValueError(f"run is missing {missing}")
    path = Path(record_path)
    if path.exists():
        record = json.loads(path.read_text())
        if record.get("data") != data or record.get("split") != split:
            raise ValueError(
                f"{path}: recorded on split {record.get('split')!r} of {record.get('data')}, "
                f"this run is on split {split!r} of {data}; record it in another file"
            )
    else:
        record = {"command": COMMAND, "split": split, "data": data, "runs": []}
    record["runs"].append(run)
    record["median"], record["range"] = summarise(record["runs"])
    atomic_write_text(json.dumps(record, indent=1) + "\n", path)
    return record


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("record", help="the record, e.g. docs/demo_runs.json")
    parser.add_argument("--metrics", required=True, help="tools/test.py's --metrics-out file")
    parser.add_argument("--data", required=True, help="the generated dataset folder")
    parser.add_argument("--iterations", type=int, required=True)
    parser.add_argument("--seed", type=int, required=True, help="training seed")
    parser.add_argument("--wall-s", type=int, required=True, help="training + evaluation time")
    parser.add_argument("--loadavg-start", type=float, default=-1.0, help="1-minute load average")
    parser.add_argument("--threads", type=int, help="default: torch.get_num_threads()")
    args = parser.parse_args()
    metrics = json.loads(Path(args.metrics).read_text())
    manifest = json.loads((Path(args.data) / "generator.json").read_text())
    if args.threads is None:
        import torch

        args.threads = torch.get_num_threads()
    run = {key: float(metrics[key]) for key in METRICS}
    run.update(
        threads=args.threads,
        cpu_count=os.cpu_count(),
        wall_s=args.wall_s,
        iterations=args.iterations,
        seed=args.seed,
        loadavg_start=None if args.loadavg_start < 0 else args.loadavg_start,
    )
    record = add_run(args.record, run, manifest)
    print(
        f"[demo] recorded in {args.record}: {len(record['runs'])} run(s); median "
        + ", ".join(f"{k} {v:.3f}" for k, v in record["median"].items())
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
