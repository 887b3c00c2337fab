"""Interruptions of a real run: SIGKILL mid-stage and a second `dvc repro` beside a running one.

On a project that has run (``--project``, e.g. a ``pipeline_time.py --keep`` directory; without it a
shrunk copy of this project is made and run first, ~3 min), each long stage is started with
``dvc repro --force --single-item`` and SIGKILLed mid-work: the stage process alone, or ``dvc`` with it
(its process group), as the OOM killer or a CI timeout would. Then plain ``dvc repro`` recovers. One
row per stage: when it was killed, whether it was writing its outputs, what was at the output paths
afterwards (nothing, or the previous bytes: never a partial file), how ``dvc repro`` recovered (DVC's
run cache or a re-run), whether the outputs are byte-identical to the ones before, and the hidden
temporaries left. Then a second ``dvc repro`` is started while one runs. ``tests/test_e2e.py`` asserts
the same on its shrunk project.
Run: ``python benchmarks/faults.py [--project DIR] [--keep DIR]``.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.workspace import SHRUNK, copy_project, run_env, sh  # noqa: E402

# the long stages, and how each is killed: the stage's process ("stage"), or dvc and the stage ("group")
KILLED = {"vae": "stage", "encode": "group", "bench_latent@logreg": "stage", "bench_pixels": "stage", "score": "stage"}


def stage_outs(project: Path, stage: str) -> list[Path]:
    return [project / o["path"] for o in yaml.safe_load((project / "dvc.lock").read_text())["stages"][stage]["outs"]]


def digest(path: Path) -> dict[str, str]:
    """SHA-256 of every file under ``path`` (a file or a folder; ``{}`` if absent)."""
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path] if path.exists() else []
    return {p.relative_to(path.parent).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def leftovers(project: Path) -> list[str]:
    """Hidden temporaries anywhere under the outputs' folders."""
    return sorted(p.relative_to(project).as_posix() for top in ("data", "models", "reports") if (project / top).exists()
                  for p in (project / top).rglob(".*") if p.name.endswith(".tmp"))


def start_repro(project: Path, *args: str) -> tuple[subprocess.Popen, list[str]]:
    """``dvc repro`` in its own process group, its output collected line by line in the background."""
    proc = subprocess.Popen(["dvc", "repro", *args], cwd=project, env=run_env(), text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True).start()
    return proc, lines


def wait_for_stage(proc: subprocess.Popen, lines: list[str], module: str, outs: list[Path], delay: float = 0.5,
                   timeout: float = 300):
    """The stage's process once it is at work, ``delay`` s after it logged its params valid or as soon as
    a temporary output of it appears (it is writing), whichever is first; and whether it was writing."""
    import psutil

    start, valid_at = time.monotonic(), None
    while time.monotonic() - start < timeout:
        if proc.poll() is not None:
            raise AssertionError(f"dvc ended before {module} was at work: {''.join(lines)[-3000:]}")
        try:
            stage = [p for p in psutil.Process(proc.pid).children(recursive=True) if module in " ".join(p.cmdline())]
        except psutil.Error:   # a child came or went while listed
            continue
        if valid_at is None and any("params" in line and "valid;" in line for line in list(lines)):
            valid_at = time.monotonic()
        writing = any(q.name.startswith(f".{o.name}.") and q.name.endswith(".tmp")
                      for o in outs for q in o.parent.glob(".*"))
        if stage and (writing or (valid_at is not None and time.monotonic() - valid_at >= delay)):
            return stage[-1], writing
        time.sleep(0.01)
    raise AssertionError(f"{module} never started: {''.join(lines)[-3000:]}")


@dataclass
class KillOutcome:
    stage: str
    mode: str                 # "stage" or "group"
    killed_after_s: float     # since the stage's process started
    writing: bool             # its temporary output existed when it was killed
    dvc_exit: int
    partial: list[str]        # output paths holding anything but nothing or the previous bytes (must be [])
    recovered: str            # "run cache" | "re-run" | "checkout"
    identical: bool           # outputs after recovery byte-identical to those before the kill
    left_after_recovery: list[str]
    left_after_rerun: list[str]


def kill_mid_stage(project: Path, stage: str, mode: str, *, checkout: bool = False, delay: float = 0.5) -> KillOutcome:
    """SIGKILL ``stage`` mid-work in ``project`` (an up-to-date run), then recover: ``dvc checkout`` of the
    stage if ``checkout``, else plain ``dvc repro``; a forced re-run of the stage if temporaries were left."""
    outs = stage_outs(project, stage)
    before = {o: digest(o) for o in outs}
    proc, lines = start_repro(project, "--force", "--single-item", stage)
    victim, writing = wait_for_stage(proc, lines, f"stages.{stage.split('@')[0]}", outs, delay=delay)
    age = time.time() - victim.create_time()
    if mode == "group":
        os.killpg(proc.pid, signal.SIGKILL)
    else:
        victim.send_signal(signal.SIGKILL)
    rc = proc.wait(timeout=120)
    partial = [o.relative_to(project).as_posix() for o in outs if digest(o) not in ({}, before[o])]
    if checkout:
        sh(["dvc", "checkout", stage], project, timeout=300)
        recovered = "checkout"
    else:
        said = sh(["dvc", "repro"], project, timeout=600).stdout
        recovered = "run cache" if f"Stage '{stage}' is cached" in said else "re-run" if f"Running stage '{stage}'" in said else "?"
    identical = {o: digest(o) for o in outs} == before
    left, left_after = leftovers(project), []
    if left:
        sh(["dvc", "repro", "--force", "--single-item", stage], project, timeout=600)
        left_after = leftovers(project)
    return KillOutcome(stage, mode, round(age, 1), writing, rc, partial, recovered, identical, left, left_after)


def second_repro_refused(project: Path) -> tuple[int, str, int]:
    """Start ``dvc repro --force`` of vae, then a plain ``dvc repro`` beside it: (its exit code, the line
    that says why, the first's exit code)."""
    first, lines = start_repro(project, "--force", "--single-item", "vae")
    wait_for_stage(first, lines, "stages.vae", stage_outs(project, "vae"), delay=0.0)
    second = sh(["dvc", "repro"], project, check=False, timeout=300)
    said = (second.stdout + second.stderr).strip().splitlines()
    why = next((line for line in said if "busy" in line), said[-1] if said else "")
    return second.returncode, why, first.wait(timeout=600)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--project", type=Path, help="a project that has run (default: a fresh shrunk copy)")
    parser.add_argument("--keep", type=Path, help="where to make the shrunk copy (default: a temporary folder)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        project = args.project
        if project is None:
            dest = args.keep or Path(scratch)
            dest.mkdir(parents=True, exist_ok=True)
            project = copy_project(dest, SHRUNK)
            t = time.perf_counter()
            sh(["dvc", "repro"], project, timeout=1800)
            print(f"shrunk run: {time.perf_counter() - t:.0f} s")
        print(f"{'stage':<22}{'killed':>7}{'after s':>9}{'writing':>9}{'dvc rc':>8}  {'partial':<8}{'recovered':<11}"
              f"{'identical':<10}{'temporaries left → after its next run'}")
        lost = 0
        for stage, mode in KILLED.items():
            o = kill_mid_stage(project, stage, mode, checkout=stage == "vae")
            lost += len(o.partial) + (not o.identical)
            print(f"{o.stage:<22}{o.mode:>7}{o.killed_after_s:>9.1f}{str(o.writing):>9}{o.dvc_exit:>8}  "
                  f"{len(o.partial):<8}{o.recovered:<11}{str(o.identical):<10}{len(o.left_after_recovery)} → "
                  f"{len(o.left_after_rerun)}")
        rc, why, first = second_repro_refused(project)
        print(f"second dvc repro beside a running one: exit {rc} ({why.strip()}); the first: exit {first}")
        status = sh(["dvc", "status", "--json"], project).stdout.strip()
        print(f"dvc status afterwards: {status or '{}'}; outputs lost or partial: {lost}")


if __name__ == "__main__":
    main()
