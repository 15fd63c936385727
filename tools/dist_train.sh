#!/usr/bin/env bash
# Distributed training with torchrun (one process per GPU; on CPU-only machines gloo is used).
#
#   bash tools/dist_train.sh CONFIG NUM_PROCS [train.py args...]
#   NNODES=2 NODE_RANK=0 MASTER_ADDR=10.0.0.1 PORT=29500 bash tools/dist_train.sh CONFIG 8 ...
#
# The total batch size is NUM_PROCS x NNODES x train_dataloader.batch_size; the configs state
# the batch their LR assumes (linear rule: lr x new_batch / base_batch, or --auto-scale-lr).
set -euo pipefail
if [ $# -lt 2 ]; then
  echo "usage: bash tools/dist_train.sh CONFIG NUM_PROCS [train.py args...]" >&2
  exit 2
fi
CONFIG=$1
NPROC=$2
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}
TOOLS="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# interpreter: $PYTHON if set, else the repository's .venv (tools/install.sh), else python3
if [ -z "${PYTHON:-}" ]; then
  if [ -x "$TOOLS/../.venv/bin/python" ]; then PYTHON="$TOOLS/../.venv/bin/python"; else PYTHON=python3; fi
fi
if ! "$PYTHON" -c 'import torch' >/dev/null 2>&1; then
  echo "$PYTHON cannot import torch: run bash tools/install.sh (creates .venv) or set PYTHON=/path/to/python" >&2
  exit 2
fi

PYTHONPATH="$TOOLS/..${PYTHONPATH:+:$PYTHONPATH}" \
exec "$PYTHON" -m torch.distributed.run \
  --nnodes="$NNODES" --node_rank="$NODE_RANK" --master_addr="$MASTER_ADDR" \
  --nproc_per_node="$NPROC" --master_port="$PORT" \
  "$TOOLS/train.py" "$CONFIG" --launcher pytorch "${@:3}"
