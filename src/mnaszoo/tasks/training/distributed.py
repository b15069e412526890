"""Running under ``torchrun``: the process group, metric sums and BatchNorm statistics.

``torchrun --nnodes N --nproc-per-node M`` sets ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``;
:func:`setup` joins the process group (gloo on CPUs, NCCL on GPUs). Every process builds the same
model from the same seed, draws the same data order and takes its share of each epoch
(``DistributedSampler``); ``DistributedDataParallel`` averages the gradients; metrics are
summed over processes; only rank 0 writes files.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

__all__ = ["Environment", "average_bn_statistics", "setup", "teardown"]


@dataclass(frozen=True)
class Environment:
    """This process's place in the job (world size 1 without torchrun)."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    owns_group: bool

    @property
    def main(self) -> bool:
        """Whether this process writes files and logs."""
        return self.rank == 0

    def barrier(self) -> None:
        """Wait for every process (nothing to wait for alone)."""
        if self.world_size > 1:
            dist.barrier()

    def sum(self, values: list[float]) -> list[float]:
        """Element-wise sum over processes, in float64."""
        tensor = torch.tensor(values, dtype=torch.float64, device=self.device)
        if self.world_size > 1:
            dist.all_reduce(tensor)
        return [float(v) for v in tensor.tolist()]

    def any(self, flag: bool) -> bool:
        """Whether any process says ``flag`` (so that all stop together)."""
        return self.sum([1.0 if flag else 0.0])[0] > 0


def setup(device: torch.device) -> Environment:
    """Read torchrun's environment and join (or reuse) the process group."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda" and world_size > 1:
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    owns = False
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        owns = True
    return Environment(rank, world_size, local_rank, device, owns)


def teardown(env: Environment) -> None:
    """Leave the process group if :func:`setup` joined it."""
    if env.owns_group and dist.is_initialized():
        dist.destroy_process_group()


def average_bn_statistics(model: nn.Module, world_size: int) -> None:
    """Average BatchNorm running statistics over processes (each saw only its own batches)."""
    if world_size < 2:
        return
    for layer in model.modules():
        if isinstance(layer, nn.modules.batchnorm._BatchNorm) and layer.track_running_stats:
            for buffer in (layer.running_mean, layer.running_var):
                if buffer is not None:
                    dist.all_reduce(buffer)
                    buffer.div_(world_size)
