"""A throw-away copy of the project as its own git + DVC repo (for the benchmark and the e2e test)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def run_env() -> dict:
    """Environment for DVC subprocesses: this interpreter's ``python`` first on PATH, no analytics."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["DVC_NO_ANALYTICS"] = "1"
    env.setdefault("GIT_AUTHOR_NAME", "latent-lab")
    env.setdefault("GIT_AUTHOR_EMAIL", "latent-lab@localhost")
    env.setdefault("GIT_COMMITTER_NAME", "latent-lab")
    env.setdefault("GIT_COMMITTER_EMAIL", "latent-lab@localhost")
    return env


def sh(args: list[str], cwd: Path, check: bool = True, timeout: float | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, env=run_env(), check=check, text=True, capture_output=True, timeout=timeout)


def copy_project(dest: Path, params_override: dict | None = None) -> Path:
    """Copy the files git sees (tracked and untracked-not-ignored) into ``dest`` and commit them there.

    ``params_override`` maps ``section.key`` to a value written into the copy's params.yaml.
    """
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT, check=True, capture_output=True, text=True,
    ).stdout.split("\0")
    for rel in filter(None, listed):
        src = ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    if params_override:
        params = yaml.safe_load((dest / "params.yaml").read_text())
        for dotted, value in params_override.items():
            section, key = dotted.split(".", 1)
            params[section][key] = value
        (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    sh(["git", "init", "-q", "-b", "main"], dest)
    sh(["git", "add", "-A"], dest)
    sh(["git", "commit", "-q", "-m", "project copy"], dest)
    return dest

