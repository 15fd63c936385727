"""Config handling shared by the command-line tools (train, test, benchmark, get_flops, demo).

- :func:`load_config` reads a config file and applies ``--cfg-options`` after checking that
  every dotted key exists in the config (mmengine would silently add a misspelt key). A key
  that should be added on purpose is written with a leading ``+``, e.g.
  ``+train_dataloader.dataset.metainfo.classes="(a,b)"``.
- :func:`allow_untrusted_checkpoints` is the ``--trust-checkpoint`` opt-in (see
  :mod:`plgvit_mm.utils.checkpoint_safety`).
"""

from __future__ import annotations

import argparse
import difflib
import os
import os.path as osp
from typing import Any

import torch
from mmengine.config import Config, DictAction

# the clone's root for the editable install (tools/install.sh): configs/, tools/, work_dirs/
REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

NEW_KEY_PREFIX = "+"
TRUST_ENV_VAR = "PLGVIT_MM_TRUST_CHECKPOINT"  # read by plgvit_mm.utils.checkpoint_safety


class UnknownConfigKeyError(ValueError):
    """A ``--cfg-options`` key names something the config does not contain."""


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--cfg-options`` (checked) to a tool's parser."""
    parser.add_argument(
        "--cfg-options",
        nargs="+",
        action=DictAction,
        default=None,
        metavar="KEY=VALUE",
        help="override config entries, e.g. train_dataloader.batch_size=4 or "
        'optim_wrapper.optimizer.lr=1e-4; lists as key="[a,b]", list items by index '
        '(train_dataloader.dataset.pipeline.2.scale="(512,512)"). Every key must exist '
        f"in the config; prefix a key with '{NEW_KEY_PREFIX}' to add a new one on purpose.",
    )


def _child(node: Any, part: str) -> tuple[bool, Any]:
    """(found, value) of ``node[part]`` for a dict key or a list index."""
    if isinstance(node, dict):
        return (part in node, node.get(part))
    if isinstance(node, list | tuple) and part.isdigit() and int(part) < len(node):
        return (True, node[int(part)])
    return (False, None)


def check_override_keys(cfg: Config, options: dict[str, Any], source: str = "config") -> dict:
    """Return ``options`` with the ``+`` prefixes removed, after checking every other key.

    Raises:
        UnknownConfigKeyError: a dotted key does not exist in ``cfg``; the message names the key,
            the part that is missing, the closest existing keys, and the ``+`` escape.
    """
    checked = {}
    for key, value in options.items():
        if key.startswith(NEW_KEY_PREFIX):
            checked[key[len(NEW_KEY_PREFIX) :]] = value
            continue
        node: Any = cfg._cfg_dict
        walked: list[str] = []
        for part in key.split("."):
            found, child = _child(node, part)
            if not found:
                where = ".".join(walked) or "the top level"
                if isinstance(node, dict):
                    close = difflib.get_close_matches(part, [str(k) for k in node], n=3)
                    hint = f" Did you mean: {', '.join(close)}?" if close else ""
                    detail = f"'{where}' has no key '{part}'.{hint}"
                elif isinstance(node, list | tuple):
                    detail = (
                        f"'{where}' is a list of {len(node)} items; '{part}' is no index in it."
                    )
                else:
                    detail = f"'{where}' is a {type(node).__name__} ({node!r}), not a dict."
                raise UnknownConfigKeyError(
                    f"--cfg-options: key '{key}' does not exist in {source}: {detail} "
                    f"Write '{NEW_KEY_PREFIX}{key}=...' to add a new key on purpose."
                )
            walked.append(part)
            node = child
        checked[key] = value
    return checked


def resolve_config_path(path: str) -> str:
    """The file of ``path``; ``package::relative/path`` is looked up in the installed package's
    configs (``<package>/.mim/configs/``)."""
    if "::" not in path:
        return path
    from mmengine.utils import get_installed_path, is_installed

    package, relative = path.split("::", 1)
    if not is_installed(package):
        raise FileNotFoundError(f"config '{path}': package '{package}' is not installed")
    return osp.join(get_installed_path(package), ".mim", "configs", relative)


def load_config(path: str, cfg_options: dict[str, Any] | None = None) -> Config:
    """Read ``path`` and merge the checked ``cfg_options`` into it.

    ``path`` may name a config of an installed OpenMMLab package as ``package::relative/path``
    (e.g. ``mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py``), as ``_base_`` entries do.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        UnknownConfigKeyError: see :func:`check_override_keys`.
    """
    file = resolve_config_path(path)
    if not osp.isfile(file):
        where = f" (looked for {file})" if file != path else ""
        raise FileNotFoundError(f"config file '{path}' does not exist{where}")
    cfg = Config.fromfile(file)
    if cfg_options:
        cfg.merge_from_dict(check_override_keys(cfg, cfg_options, source=path))
    return cfg


def default_work_dir(cfg: Config, config_path: str, work_dir: str | None) -> str:
    """``work_dir`` from the command line, else the config's, else work_dirs/CONFIG_NAME."""
    if work_dir is not None:
        return work_dir
    if cfg.get("work_dir") is not None:
        return cfg.work_dir
    return osp.join("work_dirs", osp.splitext(osp.basename(config_path))[0])


def set_launcher(cfg: Config, launcher: str) -> None:
    """Record the launcher; distributed runs without CUDA use gloo instead of the configs' nccl."""
    cfg.launcher = launcher
    if launcher != "none" and not torch.cuda.is_available():
        cfg.env_cfg.setdefault("dist_cfg", {})["backend"] = "gloo"


def allow_untrusted_checkpoints() -> None:
    """Opt in to fully unpickling checkpoints outside the safe allow-list (can run code)."""
    os.environ[TRUST_ENV_VAR] = "1"


def set_local_rank_env(local_rank: int) -> None:
    """``torch.distributed.launch`` passes ``--local-rank``; mmengine reads ``LOCAL_RANK``."""
    os.environ.setdefault("LOCAL_RANK", str(local_rank))


def prepare_cpu_distributed(cfg: Config) -> None:
    """torchrun on a CPU-only machine: mmengine's pytorch launcher calls
    ``torch.cuda.set_device`` and its DDP wrapper passes ``device_ids=[LOCAL_RANK]``
    unconditionally. Start the gloo process group here (the Runner reuses it) and wrap the
    model with ``device_ids=None``."""
    if cfg.launcher != "pytorch" or torch.cuda.is_available():
        return
    torch.distributed.init_process_group(backend="gloo")
    if cfg.get("model_wrapper_cfg") is None:
        cfg.model_wrapper_cfg = dict(
            type="MMDistributedDataParallel",
            broadcast_buffers=False,
            find_unused_parameters=cfg.get("find_unused_parameters", False),
        )
    cfg.model_wrapper_cfg.device_ids = None
