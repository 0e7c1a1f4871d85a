"""Numeric precision: which one a run uses, and the autocast context that applies it.

Training: ``auto`` (the default) is bf16 autocast with fp32 master weights where the hardware
computes bf16 natively (a CUDA GPU that supports it; a CPU with AVX512-BF16 or AMX-BF16, or an
Arm CPU with the BF16 extension), fp32 elsewhere, where emulated bf16 would be slower than fp32.
Generation and MMLU default to fp32 so that their numbers equal the references'; both accept
bf16 for speed. The precision a run used is stored in its config, so a bf16 run is never ranked
beside an fp32 one without saying so.
"""

from __future__ import annotations

import functools
import platform
import subprocess
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

from evalkit.errors import EvalkitError

TRAIN_PRECISIONS = ("auto", "fp32", "bf16", "fp16")
INFERENCE_PRECISIONS = ("fp32", "bf16")

# /proc/cpuinfo flags of x86 CPUs that compute bf16 dot products in hardware
_X86_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


def _cpu_flags() -> set[str]:
    """The CPU feature flags the OS reports (Linux: /proc/cpuinfo ``flags`` on x86, ``Features``
    on Arm; macOS: the ``hw.optional.arm.FEAT_BF16`` sysctl)."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("flags", "Features"):
                return set(value.split())
        return set()
    if platform.system() == "Darwin":
        try:
            out = subprocess.run(["sysctl", "-n", "hw.optional.arm.FEAT_BF16"], capture_output=True, text=True, timeout=5)
        except (OSError, subprocess.SubprocessError):
            return set()
        return {"bf16"} if out.stdout.strip() == "1" else set()
    return set()


@functools.lru_cache(maxsize=1)
def cpu_has_native_bf16() -> bool:
    """Whether this CPU multiplies bf16 in hardware.

    Not ``torch.backends.cpu.get_cpu_capability()`` (it names the widest vector ISA torch's kernels
    use, AVX512 for CPUs with and without BF16) nor ``torch.ops.mkldnn._is_mkldnn_bf16_supported``
    (true wherever oneDNN can *emulate* bf16 with AVX512BW, which is slower than fp32).
    """
    flags = _cpu_flags()
    if platform.machine().lower() in ("aarch64", "arm64"):
        return "bf16" in flags
    return any(flag in flags for flag in _X86_BF16_FLAGS)


def cuda_has_bf16() -> bool:
    import torch

    return torch.cuda.is_available() and torch.cuda.is_bf16_supported()


def resolve_precision(requested: str, device_type: str) -> str:
    """``fp32``, ``bf16`` or ``fp16``: what ``requested`` means on a device of this type."""
    if requested not in TRAIN_PRECISIONS:
        raise EvalkitError(f"precision must be one of {', '.join(TRAIN_PRECISIONS)}, not {requested!r}")
    if requested == "fp16" and device_type != "cuda":
        raise EvalkitError("--precision fp16 needs a CUDA GPU; on a CPU use bf16 or fp32")
    if requested != "auto":
        return requested
    native = cuda_has_bf16() if device_type == "cuda" else device_type == "cpu" and cpu_has_native_bf16()
    return "bf16" if native else "fp32"


def describe(precision: str, device_type: str) -> str:
    """One line for the terminal: what the run computes in, and why that is (or is not) fast."""
    if precision == "fp32":
        return "fp32"
    text = f"{precision} autocast, fp32 master weights"
    if precision == "bf16" and device_type == "cpu" and not cpu_has_native_bf16():
        text += " (this CPU has no native bf16: emulated, slower than fp32)"
    return text


def autocast(device_type: str, precision: str) -> AbstractContextManager:
    """The context forward passes run in: nothing for fp32, else torch's autocast, whose matmuls
    run in ``precision`` while the weights stay fp32."""
    if precision == "fp32":
        return nullcontext()
    if precision not in ("bf16", "fp16"):  # 'auto' must be resolved first, never read as fp16
        raise EvalkitError(f"autocast needs a resolved precision (fp32, bf16 or fp16), not {precision!r}")
    import torch

    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type, dtype=dtype)


def inference_dtype(precision: str):
    """The dtype generation casts the weights to (weights in bf16: no re-cast per decoded token)."""
    if precision not in INFERENCE_PRECISIONS:
        raise EvalkitError(f"precision must be one of {', '.join(INFERENCE_PRECISIONS)}, not {precision!r}")
    import torch

    return torch.bfloat16 if precision == "bf16" else torch.float32
