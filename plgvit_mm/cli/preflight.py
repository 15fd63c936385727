"""Checks run by tools/train.py before the Runner is built (so before any data loading): every
file the config points at exists, and the backbone's pretrained weights can be had.

:func:`check_training_inputs` raises one :class:`PreflightError` naming everything that is
missing and how to go on:

- dataset files (annotation files, image folders of the train/val/test loaders and the
  evaluators' ``ann_file``): the expected paths and every ``--cfg-options`` key that points the
  config elsewhere;
- a local ``model.backbone.init_cfg.checkpoint`` that does not exist: the three ways on
  (pretrain with the matching ``configs/cls_*_in1k.py``, point the key at a file, or train from
  scratch with ``model.backbone.init_cfg=None``);
- a URL checkpoint that is neither in torch's hub cache nor downloadable (offline): the URL, the
  cache path to put a downloaded copy at, and the local-file key.
"""

from __future__ import annotations

import os
import os.path as osp
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlparse

import torch
from mmengine.config import Config

from .config import REPO_ROOT

LOADERS = ("train_dataloader", "val_dataloader", "test_dataloader")
EVALUATORS = ("val_evaluator", "test_evaluator")
# backbone (type, arch) -> the ImageNet-1k classification config that pretrains it
PRETRAINING_CONFIGS = {
    ("LWPLGViT", "a"): "configs/cls_lwplgvit_a_in1k.py",
    ("LWPLGViT", "r"): "configs/cls_lwplgvit_r_in1k.py",
    ("PLGViT", "tiny"): "configs/cls_plgvit_tiny_in1k.py",
    ("NAT", "mini"): "configs/cls_nat_mini_in1k.py",
    ("NAT", "tiny"): "configs/cls_nat_tiny_in1k.py",
}
DEFAULT_ARCH = {"LWPLGViT": "a", "PLGViT": "tiny", "NAT": "tiny", "DiNAT": "tiny"}
CHECKPOINT_KEY = "model.backbone.init_cfg.checkpoint"


class PreflightError(FileNotFoundError):
    """Files the config needs are missing; the message says what to do."""


def _is_url(path: str) -> bool:
    return "://" in path


def _join(root: str | None, path: str) -> str:
    return path if not root or osp.isabs(path) else osp.join(root, path)


def _dataset_paths(dataset: dict) -> Iterator[tuple[str, bool]]:
    """(path, is_folder) of every file/folder a dataset config reads (wrappers unwrapped)."""
    if isinstance(dataset.get("dataset"), dict):
        yield from _dataset_paths(dataset["dataset"])
    for inner in dataset.get("datasets") or []:
        if isinstance(inner, dict):
            yield from _dataset_paths(inner)
    root = dataset.get("data_root")
    if dataset.get("ann_file"):
        yield _join(root, dataset["ann_file"]), False
    prefix = dataset.get("data_prefix")
    prefixes = list(prefix.values()) if isinstance(prefix, dict) else [prefix]
    prefixes = [p for p in prefixes if isinstance(p, str) and p]
    if not prefixes and dataset.get("split"):  # ImageNet-style datasets: DATA_ROOT/SPLIT/
        prefixes = [dataset["split"]]
    for folder in prefixes:
        yield _join(root, folder), True
    if root and not dataset.get("ann_file") and not prefixes:
        yield root, True


def missing_data(cfg: Config) -> list[tuple[str, str]]:
    """(config key, path) of every dataset file or folder the config needs that does not exist."""
    missing = []
    for loader in LOADERS:
        dataset = (cfg.get(loader) or {}).get("dataset")
        if not isinstance(dataset, dict):
            continue
        for path, is_folder in _dataset_paths(dataset):
            exists = osp.isdir(path) if is_folder else osp.isfile(path)
            if not _is_url(path) and not exists:
                missing.append((loader, path.rstrip("/") + "/" if is_folder else path))
    for evaluator in EVALUATORS:
        for metric in _as_list(cfg.get(evaluator)):
            path = metric.get("ann_file") if isinstance(metric, dict) else None
            if path and not _is_url(path) and not osp.isfile(path):
                missing.append((f"{evaluator}.ann_file", path))
    return list(dict.fromkeys(missing))


def _as_list(value: Any) -> list:
    return list(value) if isinstance(value, list | tuple) else [value] if value else []


def _redirect_options(cfg: Config) -> list[str]:
    """The ``--cfg-options`` that point every loader and evaluator of ``cfg`` at DIR."""
    options = []
    for loader in LOADERS:
        dataset = (cfg.get(loader) or {}).get("dataset")
        if isinstance(dataset, dict):
            inner = "dataset.dataset" if isinstance(dataset.get("dataset"), dict) else "dataset"
            options.append(f"{loader}.{inner}.data_root=DIR/")
    train_root = _train_data_root(cfg)
    for evaluator in EVALUATORS:
        metric = cfg.get(evaluator)
        if isinstance(metric, dict) and metric.get("ann_file"):
            relative = metric.ann_file
            if train_root and relative.startswith(train_root):
                relative = relative[len(train_root) :].lstrip("/")
            options.append(f"{evaluator}.ann_file=DIR/{relative}")
    return options


def _train_data_root(cfg: Config) -> str | None:
    dataset = (cfg.get("train_dataloader") or {}).get("dataset") or {}
    if isinstance(dataset.get("dataset"), dict):
        dataset = dataset["dataset"]
    return dataset.get("data_root")


def data_message(cfg: Config, config_path: str, missing: list[tuple[str, str]]) -> str:
    lines = [f"Dataset files not found: {config_path} expects"]
    lines += [f"  {key}: {path}" for key, path in missing]
    root = _train_data_root(cfg)
    where = f"under {root} " if root else ""
    lines += [
        f"Put the dataset {where}in the layout data/README.md describes (or symlink it there), "
        "or point the config at its folder DIR:",
        "  --cfg-options " + " ".join(_redirect_options(cfg)),
    ]
    return "\n".join(lines)


def _backbone_name(backbone: dict) -> str:
    kind = str(backbone.get("type", "the backbone")).split(".")[-1]
    arch = backbone.get("arch", DEFAULT_ARCH.get(kind))
    return f"{kind} arch={arch!r}" if isinstance(arch, str) else kind


def pretraining_config(backbone: dict) -> str | None:
    """The shipped ``configs/cls_*_in1k.py`` that pretrains ``backbone``, if there is one."""
    kind = str(backbone.get("type", "")).split(".")[-1]
    arch = backbone.get("arch", DEFAULT_ARCH.get(kind))
    config = PRETRAINING_CONFIGS.get((kind, arch)) if isinstance(arch, str) else None
    return config if config and osp.isfile(osp.join(REPO_ROOT, config)) else None


def missing_weights_message(backbone: dict, checkpoint: str, config_path: str) -> str:
    """The message for a local ``init_cfg.checkpoint`` that does not exist."""
    pretrain = pretraining_config(backbone)
    if pretrain:
        name = osp.splitext(osp.basename(pretrain))[0]
        first = (
            f"  1. pretrain it on ImageNet-1k: python tools/train.py {pretrain}\n"
            f"     (data/README.md: ImageNet layout); then copy the last checkpoint of "
            f"work_dirs/{name}/ to {checkpoint}, or point at it as in 2."
        )
    else:
        first = (
            f"  1. pretrain it on ImageNet-1k: no configs/cls_*_in1k.py ships for "
            f"{_backbone_name(backbone)}; copy configs/cls_lwplgvit_a_in1k.py and set its "
            "model.backbone and model.head.in_channels."
        )
    return "\n".join(
        [
            f"Pretrained backbone weights not found: {checkpoint}",
            f"({CHECKPOINT_KEY} of {config_path}: ImageNet-1k weights of "
            f"{_backbone_name(backbone)}). Three ways on:",
            first,
            "  2. use weights you have (a tools/train.py classification checkpoint, or a timm "
            "model's state_dict()):",
            f"     --cfg-options {CHECKPOINT_KEY}=/path/to/weights.pth",
            "  3. train from scratch: --cfg-options model.backbone.init_cfg=None",
        ]
    )


def hub_cache_path(url: str) -> str:
    """Where mmengine's ``load_from_http`` (torch.hub) keeps a downloaded ``url``."""
    return osp.join(torch.hub.get_dir(), "checkpoints", osp.basename(urlparse(url).path))


def fetch_url_checkpoint(url: str) -> str | None:
    """Download ``url`` into torch's hub cache unless it is there; an error message on failure."""
    cached = hub_cache_path(url)
    if osp.isfile(cached):
        return None
    try:
        os.makedirs(osp.dirname(cached), exist_ok=True)
        torch.hub.download_url_to_file(url, cached, progress=True)
    except Exception as err:  # noqa: BLE001  (offline: URLError, timeouts, HTTP errors)
        return "\n".join(
            [
                f"Pretrained backbone weights could not be downloaded: {url}",
                f"({type(err).__name__}: {err}). Without network access, either",
                f"  - download the file elsewhere and put it at {cached}, or",
                f"  - keep it anywhere: --cfg-options {CHECKPOINT_KEY}=/path/to/"
                f"{osp.basename(urlparse(url).path)}",
                "  (or train from scratch: --cfg-options model.backbone.init_cfg=None)",
            ]
        )
    return None


def _pretrained_checkpoint(backbone: Any) -> str | None:
    for init in _as_list(backbone.get("init_cfg") if isinstance(backbone, dict) else None):
        if isinstance(init, dict) and init.get("type") == "Pretrained" and init.get("checkpoint"):
            return str(init["checkpoint"])
    return None


def check_training_inputs(cfg: Config, config_path: str) -> None:
    """Raise :class:`PreflightError` if dataset files or backbone weights are missing (one message
    for all of them); downloads URL backbone weights into torch's hub cache first."""
    problems = []
    missing = missing_data(cfg)
    if missing:
        problems.append(data_message(cfg, config_path, missing))
    backbone = (cfg.get("model") or {}).get("backbone")
    checkpoint = _pretrained_checkpoint(backbone)
    if checkpoint and _is_url(checkpoint):
        failure = fetch_url_checkpoint(checkpoint)
        if failure:
            problems.append(failure)
    elif checkpoint and not osp.isfile(checkpoint):
        problems.append(missing_weights_message(backbone, checkpoint, config_path))
    load_from = cfg.get("load_from")
    if load_from and not cfg.get("resume") and not _is_url(load_from):
        if not osp.isfile(load_from):
            problems.append(f"load_from: checkpoint '{load_from}' does not exist")
    if problems:
        raise PreflightError("\n\n".join(problems))
