"""GPU readiness: the SD-geometry rehearsal with CUDA, beside the same stages on CPU.

Runs ``benchmarks/sd_rehearsal.py``'s ``sd256`` project (256 px → 4×32×32 latents through an
``AutoencoderKL`` with SD 1.x's architecture, random weights, every stage, tiny counts) twice on
this machine: with ``base.device cuda`` and the VAE in fp16 (``vae.dtype float16``), then with
``base.device cpu``. Prints each stage's wall time on both, the speedup, the stage's peak GPU memory
(``torch.cuda.max_memory_allocated``, printed by every stage) and its peak resident memory. About
5 minutes on one GPU with 16 CPU cores; ``--no-cpu`` skips the CPU run.

Run on a machine with a CUDA GPU: ``python benchmarks/gpu_readiness.py [--keep DIR] [--no-cpu]``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.sd_rehearsal import calibration, fresh_dir, rehearse, write_vaes  # noqa: E402


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keep", type=Path)
    parser.add_argument("--no-cpu", action="store_true", help="skip the CPU run (no speedup column)")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per run before it is stopped")
    args = parser.parse_args(argv)
    import torch

    if not torch.cuda.is_available():
        raise SystemExit("no CUDA device: run this on a GPU machine (torch.cuda.is_available() is False)")
    print(f"GPU: {torch.cuda.get_device_name(0)}, torch {torch.__version__}, CUDA {torch.version.cuda}; "
          f"CPU calibration: {calibration()}")
    with tempfile.TemporaryDirectory(prefix="gpu-readiness-") as tmp:
        base = args.keep or Path(tmp)
        vaes = write_vaes(base / "vaes")
        runs = {}
        for device in ("cuda",) + (() if args.no_cpu else ("cpu",)):
            extra = {"vae.dtype": "float16"} if device == "cuda" else {}
            runs[device] = rehearse("sd256", fresh_dir(base / device), vaes["sd"], device=device, extra=extra,
                                    timeout=args.timeout)
            print(f"{device}: exit {runs[device].code} in {runs[device].seconds:.0f} s")
            if runs[device].code:
                print(runs[device].tail)
                raise SystemExit(runs[device].code)
        cpu = {s["name"]: s for s in runs["cpu"].stages} if "cpu" in runs else {}
        print(f"\n{'stage':<26} {'GPU s':>7} {'CPU s':>7} {'speedup':>7} {'GPU MiB':>8} {'RSS MiB':>8}")
        for s in runs["cuda"].stages:
            c = cpu.get(s["name"])
            speed = f"{c['seconds'] / s['seconds']:7.1f}" if c else "      -"
            print(f"{s['name']:<26} {s['seconds']:7.1f} {c['seconds'] if c else float('nan'):7.1f} {speed} "
                  f"{s['cuda_mib'] if s['cuda_mib'] is not None else '-':>8} {s['peak_mib'] or '-':>8}")
        total_cpu = runs["cpu"].seconds if "cpu" in runs else float("nan")
        print(f"{'total':<26} {runs['cuda'].seconds:7.1f} {total_cpu:7.1f} {total_cpu / runs['cuda'].seconds:7.1f}")


if __name__ == "__main__":
    main()
