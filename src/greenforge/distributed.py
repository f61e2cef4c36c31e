"""Distributed runs: which rank reads which meter, and the shared run id.

Under torch.distributed, SLURM or a launcher that sets ``RANK``/``LOCAL_RANK`` (torchrun,
DeepSpeed, Accelerate), every rank runs its own tracker, but a node must not be counted once per
rank. The rule:

- **node** meters (RAPL, modelled CPU and RAM: the whole machine) are read only by local rank 0
  of each node;
- **device** meters (one accelerator or the accelerators this rank sees) are read once per
  device: when each rank sees exactly one device of its own (``CUDA_VISIBLE_DEVICES`` set per
  rank), that rank reads it; otherwise local rank 0 reads all devices of the node;
- **process** meters (attribution to the rank's own process tree) are read by every rank.

All ranks write their part of the run under one shared run id (``GREENFORGE_RUN_ID``, else
derived from the SLURM job and step ids, else from ``MASTER_ADDR``/``MASTER_PORT`` and the
launcher's run id), and the run store adds the parts up, so per-run totals cover all nodes.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import sys
from collections.abc import Mapping, Sequence

from greenforge.errors import ConfigError
from greenforge.meters.base import Meter


@dataclasses.dataclass(frozen=True)
class RankInfo:
    """Where this process sits in a distributed job (``rank=0, world_size=1`` when alone)."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    local_world_size: int = 1
    node: str = ""
    """Node index (SLURM_NODEID / GROUP_RANK) or host name."""
    launcher: str = "none"
    """``none``, ``env`` (RANK/LOCAL_RANK), ``slurm`` or ``torch.distributed``."""

    @property
    def distributed(self) -> bool:
        return self.world_size > 1 or self.launcher != "none"

    @property
    def part(self) -> str:
        """The store part key for this rank."""
        return "main" if not self.distributed else f"{self.node}/rank{self.rank}"


def _int_env(env: Mapping[str, str], key: str) -> int | None:
    raw = env.get(key)
    if raw is None or raw.strip() == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(
            f"bad value {raw!r} for environment variable {key}: expected an integer rank/size. "
            "Fix or unset it."
        ) from None
    if value < 0:
        raise ConfigError(f"bad value {raw!r} for {key}: ranks and sizes are >= 0.")
    return value


def rank_info(env: Mapping[str, str] | None = None) -> RankInfo:
    """Detect the rank from torch.distributed (if the user initialised it), env, or SLURM."""
    env = os.environ if env is None else env
    host = socket.gethostname()
    rank = _int_env(env, "RANK")
    local_rank = _int_env(env, "LOCAL_RANK")
    world = _int_env(env, "WORLD_SIZE")
    local_world = _int_env(env, "LOCAL_WORLD_SIZE")
    node = env.get("GROUP_RANK") or env.get("SLURM_NODEID") or host
    launcher = "env" if rank is not None or local_rank is not None else "none"
    if (
        launcher == "none"
        and _int_env(env, "SLURM_PROCID") is not None
        and ((_int_env(env, "SLURM_NTASKS") or 1) > 1 or _int_env(env, "SLURM_LOCALID") is not None)
    ):
        rank = _int_env(env, "SLURM_PROCID")
        local_rank = _int_env(env, "SLURM_LOCALID")
        world = _int_env(env, "SLURM_NTASKS")
        local_world = _int_env(env, "SLURM_NTASKS_PER_NODE") or _first_int(
            env.get("SLURM_TASKS_PER_NODE")
        )
        launcher = "slurm"
    td = _torch_distributed_rank()
    if td is not None:
        rank, world = td
        launcher = "torch.distributed"
    rank = 0 if rank is None else rank
    if local_rank is None:
        # Launchers that give no local rank (plain torch.distributed): assume one node, so
        # exactly one process (rank 0) reads the node-wide meters.
        local_rank = rank
    world = max(world or 1, rank + 1)
    local_world = max(local_world or 1, local_rank + 1)
    return RankInfo(rank, local_rank, world, local_world, f"{host}:{node}", launcher)


def _first_int(raw: str | None) -> int | None:
    """``SLURM_TASKS_PER_NODE`` looks like ``4(x2),3``; the first count is enough here."""
    if not raw:
        return None
    head = raw.split(",")[0].split("(")[0]
    return int(head) if head.isdigit() else None


def _torch_distributed_rank() -> tuple[int, int] | None:
    """(rank, world_size) from torch.distributed when the user already initialised it."""
    torch = sys.modules.get("torch")
    if torch is None:
        return None
    try:
        dist = torch.distributed
        if dist.is_available() and dist.is_initialized():
            return int(dist.get_rank()), int(dist.get_world_size())
    except Exception:
        return None
    return None


def shared_run_id(env: Mapping[str, str] | None = None) -> str | None:
    """The run id all ranks agree on, or ``None`` for a plain (single-process) run."""
    env = os.environ if env is None else env
    explicit = env.get("GREENFORGE_RUN_ID", "").strip()
    if explicit:
        if len(explicit) > 128 or any(c.isspace() or c == "/" for c in explicit):
            raise ConfigError(
                f"bad GREENFORGE_RUN_ID {explicit!r}: use at most 128 characters, no spaces or '/'."
            )
        return explicit
    job = env.get("SLURM_JOB_ID", "").strip()
    if job and (_int_env(env, "SLURM_NTASKS") or 1) > 1:
        step = env.get("SLURM_STEP_ID", "").strip()
        return f"slurm-{job}" + (f".{step}" if step else "")
    addr, port = env.get("MASTER_ADDR", "").strip(), env.get("MASTER_PORT", "").strip()
    if addr and port and (env.get("RANK") is not None or env.get("LOCAL_RANK") is not None):
        import hashlib  # (only here: ~3 ms of every tracker start otherwise)

        salt = env.get("TORCHELASTIC_RUN_ID", "")
        digest = hashlib.sha256(f"{addr}:{port}:{salt}".encode()).hexdigest()[:12]
        return f"dist-{digest}"
    return None


def _visible_devices(env: Mapping[str, str]) -> list[str] | None:
    raw = env.get("CUDA_VISIBLE_DEVICES")
    if raw is None:
        raw = env.get("ROCR_VISIBLE_DEVICES") or env.get("HIP_VISIBLE_DEVICES")
    if raw is None:
        return None
    return [d.strip() for d in raw.split(",") if d.strip()]


def device_meters_per_rank(info: RankInfo, env: Mapping[str, str] | None = None) -> bool:
    """True when each rank sees exactly one device of its own, so each rank reads its device."""
    env = os.environ if env is None else env
    visible = _visible_devices(env)
    return info.local_world_size > 1 and visible is not None and len(visible) == 1


def meters_for_rank(
    meters: Sequence[Meter], info: RankInfo, env: Mapping[str, str] | None = None
) -> tuple[list[Meter], list[str]]:
    """Keep the meters this rank must read; returns (kept, reasons for what was left out)."""
    if not info.distributed:
        return list(meters), []
    per_rank = device_meters_per_rank(info, env)
    kept: list[Meter] = []
    reasons: list[str] = []
    for m in meters:
        scope = getattr(m, "scope", "node")
        if scope == "process":
            kept.append(m)
        elif scope == "device":
            if per_rank or info.local_rank == 0:
                kept.append(m)
            else:
                reasons.append(
                    f"{m.name}: devices of this node are read by local rank 0 "
                    f"(this is local rank {info.local_rank})"
                )
        elif info.local_rank == 0:
            kept.append(m)
        else:
            reasons.append(
                f"{m.name}: node-wide meter, read by local rank 0 of node {info.node} "
                f"(this is local rank {info.local_rank})"
            )
    return kept, reasons
