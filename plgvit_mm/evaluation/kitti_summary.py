"""Human-readable KITTI results: the devkit-style table and the few-objects note."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from .kitti_eval import (
    DIFFICULTIES,
    KITTI_CLASSES,
    LOOSE_OVERLAPS,
    NUM_SAMPLE_POINTS,
    STRICT_OVERLAPS,
    perfect_ap,
)

# rows of the table: (metric, overlap set); loose 2D equals strict 2D and is left out
ROWS = (("2D", "strict"), ("AOS", "strict"), ("BEV", "strict"), ("3D", "strict"))
LOOSE_ROWS = (("BEV", "loose"), ("3D", "loose"))


def _overlap(class_name: str, metric: str, overlap_set: str) -> str:
    if metric == "AOS":
        return ""
    table = STRICT_OVERLAPS if overlap_set == "strict" else LOOSE_OVERLAPS
    return f"@{table[class_name][('2D', 'BEV', '3D').index(metric)]:.2f}"


def format_kitti_summary(
    metrics: Mapping[str, float],
    counts: Mapping[tuple[str, str], int] | None = None,
    classes: Sequence[str] = KITTI_CLASSES,
    prefix: str = "",
) -> str:
    """A table per class, rows metric@IoU (strict, then loose), columns AP40 and AP11 for
    easy / moderate / hard, like the devkit's printout.

    Args:
        metrics: evaluate_kitti's keys, each optionally preceded by ``prefix``.
        counts: objects that count per (class, difficulty) (count_ground_truth), shown in
            the header and used for the few-objects note.
    """
    lines = []
    header = "  ".join(f"{d:>8}" for d in DIFFICULTIES)
    for class_name in classes:
        title = class_name
        if counts is not None:
            title += " (objects: " + ", ".join(
                f"{d} {counts[(class_name, d)]}" for d in DIFFICULTIES
            )
            title += ")"
        lines.append(title)
        lines.append(f"  {'metric':<16}{'AP40: ' + header:<38}  AP11: {header}")
        for metric, overlap_set in ROWS + LOOSE_ROWS:
            name = f"{metric}{_overlap(class_name, metric, overlap_set)} {overlap_set}"
            cells = []
            for ap in ("AP40", "AP11"):
                values = [
                    metrics.get(f"{prefix}{class_name}_{metric}_{ap}_{d}_{overlap_set}")
                    for d in DIFFICULTIES
                ]
                cells.append("  ".join(f"{'n/a' if v is None else f'{v:.2f}':>8}" for v in values))
            lines.append(f"  {name:<16}      {cells[0]:<32}        {cells[1]}")
    if counts is not None:
        note = few_objects_note(counts)
        if note:
            lines.append(note)
    return "\n".join(lines)


def few_objects_note(counts: Mapping[tuple[str, str], int]) -> str:
    """Why AP stays far below 100 where a class has fewer than 41 objects ('' if none has)."""
    few = [(key, n) for key, n in counts.items() if n < NUM_SAMPLE_POINTS]
    if not few:
        return ""
    lines = [
        "note: the official protocol samples precision at 41 recall points (1/40 apart) and "
        "each true positive fills at most one of them, so with n < 41 objects even perfect "
        "predictions score AP40 = 100 (n - 1) / 40 and AP11 = 100 (floor((n - 1) / 4) + 1) "
        "/ 11 (5 objects: 10.00 and 18.18); the ceilings here:"
    ]
    for (class_name, difficulty), n in few:
        ap40, ap11 = perfect_ap(n)
        lines.append(
            f"  {class_name} {difficulty}: {n} objects -> at most AP40 {ap40:.2f}, AP11 {ap11:.2f}"
        )
    return "\n".join(lines)
