"""docs: write the generated reference pages, docs/params.md and docs/stages.md, from what they describe.

Not a DVC stage: run it after changing conf/, params.yaml's schema (stages/config.py), dvc.yaml or a stage
script's docstring, and commit the pages (``tests/test_docs.py`` fails until you do). ``--check`` writes
nothing and exits 1 naming each page that differs. Reads no params of a run.
"""

from __future__ import annotations

import ast
import logging
import sys
from pathlib import Path

import yaml

from pipeline.io import atomic_file
from pipeline.report.reference import params_reference, stage_reference
from stages.cli import configure_logging, parse_args, stage_main
from stages.config import Params

log = logging.getLogger("stages.docs")


def preset_header(path: Path) -> str:
    """The comment lines that open a preset file, after Hydra's ``@package`` line, joined."""
    lines = []
    for line in path.read_text().splitlines():
        if not line.startswith("#"):
            break
        if "@package" not in line:
            lines.append(line.lstrip("#").strip())
    return " ".join(lines)


def pages(root: Path) -> dict[Path, str]:
    """Each generated page's path under ``root`` and its text now."""
    conf = root / "conf"
    axes = [d.name for d in sorted(conf.iterdir()) if d.is_dir() and d.name != "site"]
    presets = {axis: {p.stem: preset_header(p) for p in sorted((conf / axis).glob("*.yaml"))} for axis in axes}
    params = params_reference((conf / "config.yaml").read_text(), yaml.safe_load((root / "params.yaml").read_text()),
                              Params.model_json_schema(), presets)
    docstrings = {f"stages.{p.stem}": ast.get_docstring(ast.parse(p.read_text())) or ""
                  for p in sorted((root / "stages").glob("*.py"))}
    stages = stage_reference(yaml.safe_load((root / "dvc.yaml").read_text()), docstrings)
    return {root / "docs/params.md": params, root / "docs/stages.md": stages}


@stage_main
def main(argv=None) -> None:
    args = parse_args(__doc__, argv, lambda p: (
        p.add_argument("--root", default=".", help="the project (default: %(default)s)"),
        p.add_argument("--check", action="store_true", help="write nothing; exit 1 if a page differs"),
    ), params=False)
    configure_logging()
    stale = []
    for path, text in pages(Path(args.root)).items():
        if path.is_file() and path.read_text() == text:
            continue
        stale.append(str(path))
        if not args.check:
            with atomic_file(path) as fh:
                fh.write(text)
            log.info("wrote %s", path)
    if args.check and stale:
        print(f"stale generated pages (run `python -m stages.docs`): {', '.join(stale)}", file=sys.stderr)
        raise SystemExit(1)


if __name__ == "__main__":
    main()
