"""study_all: the cross-dataset study in one command — one DVC experiment per source, then the table.

Not a DVC stage: it drives DVC. For each source of ``study.sources`` (or ``--sources``) it queues
``dvc exp run --queue -n study-<source> -S data=<source> -S grid=full study_table`` (with ``--quick``:
``study-<source>-quick`` on the small grid every ``dvc repro`` runs; each ``--set KEY=VALUE`` is
passed on as ``-S``), runs the queue (``dvc queue start -j JOBS``) and waits for it. Each experiment
runs that source's upstream stages once (prepare, vae, encode, diffusion, guide) and every study fit
on them. Then it finds the experiments in ``dvc exp show --json``, reads each one's
``reports/study/table.json`` at its revision (``dvc.api.read``, from the DVC cache) and writes
``--out`` (default ``reports/study_all``): ``table.csv`` (every source × cell × model × method, each
row naming its experiment and git revision), ``summary.json`` (a sentence per source) and
``index.html`` (the study page). ``--aggregate-only`` skips the runs and gathers the experiments
already there.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from pipeline.study.aggregate import TABLE_FILE
from stages.cli import configure_logging, fail, parse_args, stage_main

log = logging.getLogger("stages.study_all")


def _dvc(args: list[str], repo: Path, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=repo, capture_output=True, text=True)
    if check and proc.returncode != 0:
        last = (proc.stderr.strip() or proc.stdout.strip() or "no output").splitlines()[-1]
        fail(f"`dvc {' '.join(args)}` failed in {repo}: {last}")
    return proc


def experiment_name(source: str, quick: bool) -> str:
    return f"study-{source}" + ("-quick" if quick else "")


def uncached_lock_stages(repo: Path) -> list[str]:
    """Stages whose outputs, as ``dvc.lock`` records them, are not in the DVC cache (a fresh clone that has
    neither run nor pulled them). DVC cannot record an experiment that leaves them so: listing the
    top-level plots inside such an output needs its directory object."""
    import yaml
    from dvc.repo import Repo

    lock = repo / "dvc.lock"
    if not lock.is_file():
        return []
    stages = (yaml.safe_load(lock.read_text()) or {}).get("stages") or {}
    with Repo(str(repo)) as dvc:
        cache = dvc.cache.local
        return [name for name, stage in stages.items()
                if any(o.get("md5") and not cache.exists(o["md5"]) for o in stage.get("outs") or [])]


@contextmanager
def lock_without(repo: Path, stages: list[str]):
    """``dvc.lock`` without the entries of ``stages`` while the block runs (the queue stashes the workspace
    as it is when an experiment is queued), then as it was."""
    import yaml

    if not stages:
        yield
        return
    lock = repo / "dvc.lock"
    original = lock.read_bytes()
    doc = yaml.safe_load(original)
    doc["stages"] = {k: v for k, v in doc["stages"].items() if k not in stages}
    try:
        lock.write_text(yaml.safe_dump(doc, sort_keys=False))
        yield
    finally:
        lock.write_bytes(original)


def run_queue(repo: Path, names: dict[str, str], options: list[str], jobs: int, poll: float = 5.0) -> None:
    """Queue one experiment per source (``names``: source → experiment name), run them, wait."""
    existing = _dvc(["exp", "list", "--name-only"], repo, check=False).stdout.split()
    stale = [n for n in names.values() if n in existing]
    if stale:   # a re-run replaces the source's previous experiment of the same name
        _dvc(["exp", "remove", *stale], repo)
    uncached = uncached_lock_stages(repo)
    if uncached:
        log.info("dvc.lock records outputs the DVC cache lacks (%s: never run or pulled here); the experiments "
                 "start without those entries, as if those stages had not run", ", ".join(uncached))
    with lock_without(repo, uncached):
        for source, name in names.items():
            _dvc(["exp", "run", "--queue", "-n", name, "-S", f"data={source}", *options, "study_table"], repo)
            log.info("queued %s (-S data=%s %s)", name, source, " ".join(options))
    started = time.perf_counter()
    _dvc(["queue", "start", "--jobs", str(jobs)], repo)
    while True:
        status = _dvc(["queue", "status"], repo, check=False).stdout
        if not any(word in status for word in ("Queued", "Running")):
            break
        time.sleep(poll)
    log.info("queue finished in %.0f s", time.perf_counter() - started)
    failed = [n for n in names.values() if any(n in line and "Failed" in line for line in status.splitlines())]
    if failed:
        logs = _dvc(["queue", "logs", failed[0]], repo, check=False).stdout.strip().splitlines()[-15:]
        fail(f"study experiment {', '.join(failed)} failed (dvc queue logs {failed[0]}):\n" + "\n".join(logs))
    _dvc(["queue", "remove", "--success"], repo, check=False)


def _table_document(repo: Path, rev: str) -> dict | None:
    """The experiment's study table document, read at its revision from the DVC cache (None if absent)."""
    import dvc.api

    try:
        return json.loads(dvc.api.read(TABLE_FILE, repo=str(repo), rev=rev))
    except Exception:   # noqa: BLE001 - DVC raises several kinds for a path missing at a revision
        return None


@stage_main
def main(argv=None) -> None:
    args = parse_args(__doc__, argv, lambda p: (
        p.add_argument("--repo", default=".", help="the DVC repository (default: %(default)s)"),
        p.add_argument("--sources", nargs="+", help="default: study.sources of the params file"),
        p.add_argument("--quick", action="store_true", help="the small grid of params.yaml (conf/grid/small.yaml), not "
                                                              "-S grid=full"),
        p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="passed to every experiment as -S"),
        p.add_argument("--jobs", "-j", type=int, default=1, help="experiments run at once (dvc queue start -j)"),
        p.add_argument("--aggregate-only", action="store_true", help="only gather the experiments already run"),
        p.add_argument("--out", default="reports/study_all"),
    ), params=False)
    configure_logging()
    from pipeline.io import atomic_dir, write_json
    from pipeline.report.experiments import parse_exp_show
    from pipeline.study.aggregate import sentences, study_page, study_rows
    from stages.config import DATA_SOURCES, ParamsError, load_params

    repo = Path(args.repo)
    sources = args.sources
    if not sources:
        try:
            sources = list(load_params(repo / "params.yaml").study.sources)
        except ParamsError as exc:
            fail(str(exc))
    unknown = [s for s in sources if s not in DATA_SOURCES]
    if unknown:
        fail(f"--sources: unknown {', '.join(unknown)}; known: {', '.join(DATA_SOURCES)}")
    bad = [s for s in args.set if "=" not in s]
    if bad:
        fail(f"--set {bad[0]}: expected KEY=VALUE")
    if args.jobs < 1:
        fail(f"--jobs {args.jobs}: at least 1")
    names = {s: experiment_name(s, args.quick) for s in sources}
    if not args.aggregate_only:
        options = ["-S", "grid=small" if args.quick else "grid=full"] + [x for kv in args.set for x in ("-S", kv)]
        run_queue(repo, names, options, args.jobs)
    entries = json.loads(_dvc(["exp", "show", "--json"], repo).stdout or "[]")
    experiments = parse_exp_show(entries)
    revs = {e.name: e.rev for e in experiments}
    table = study_rows(experiments, lambda e: _table_document(repo, e.rev), list(names.values()))
    missing = sorted(set(names.values()) - set(table["experiment"] if len(table) else []))
    if missing:
        fail(f"no {TABLE_FILE} in experiment(s) {', '.join(missing)}: run without --aggregate-only")
    log.info("gathered %s", ", ".join(f"{n} ({revs.get(n, '?')})" for n in names.values()))
    said = sentences(table)
    out = repo / args.out
    with atomic_dir(out) as tmp:
        table.to_csv(tmp / "table.csv", index=False, float_format="%.6g")
        write_json(tmp / "summary.json", {"sources": said, "experiments": names})
        (tmp / "index.html").write_text(study_page(table, said))
    for sentence in said.values():
        print(sentence)
    print(f"study table: {out / 'table.csv'}; page: {out / 'index.html'}")


if __name__ == "__main__":
    main()
