"""compose: write params.yaml from conf/ with Hydra, exactly as ``dvc exp run`` does, and validate it.

    python -m stages.compose                                  # the committed default
    python -m stages.compose data=diffusiondb vae=sd compute=gpu data.n_images=500
    python -m stages.compose --check                          # exit 1 if params.yaml is not the default

One switch per axis picks a preset (conf/data, conf/vae, conf/compute); ``section.key=value``
overrides any key (Hydra's override grammar, as ``dvc exp run -S``). The file is validated
(stages/config.py) before it replaces params.yaml, so an incoherent combination stops here with
the bad key named and params.yaml untouched. ``dvc exp run -S data=... -S vae=...`` composes the
same way (``.dvc/config``: ``hydra.enabled``); ``dvc repro`` runs params.yaml as it is.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import yaml

from stages.cli import fail, parse_args
from stages.config import ParamsError, load_params

ROOT = Path(__file__).resolve().parents[1]


HEADER = ("# Composed from conf/ (every key documented there) by `python -m stages.compose` or `dvc exp run`:\n"
          "# edit conf/ and re-compose, or override with `dvc exp run -S key=value` (a preset: -S data=diffusiondb).\n")


def compose(overrides: list[str], out: Path, conf: Path = ROOT / "conf", *, header: bool = True) -> None:
    """Compose ``conf`` with ``overrides`` into ``out`` with DVC's own Hydra call (the bytes
    ``dvc exp run`` writes, after a two-line ``header`` comment), validated first: a bad combination
    raises :class:`ParamsError` and ``out`` is left as it was."""
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from dvc.utils.hydra import compose_and_dump

    out = Path(out)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".yaml", dir=out.parent)
    os.close(fd)
    try:
        try:
            compose_and_dump(tmp, str(conf.resolve()), None, "config", str(conf.parent.resolve()), list(overrides))
        except (HydraException, OmegaConfBaseException) as exc:
            why = " ".join(str(exc).split("Config search path")[0].split())   # Hydra's message, less its search path
            raise ParamsError(f"{conf}: cannot compose {' '.join(overrides) or 'the default'}: {why}") from None
        try:
            load_params(tmp)
        except ParamsError as exc:
            raise ParamsError(str(exc).replace(tmp, f"conf/ composed with {' '.join(overrides) or 'the defaults'}", 1)) from None
        if header:
            Path(tmp).write_text(HEADER + Path(tmp).read_text())
        os.replace(tmp, out)
    finally:
        Path(tmp).unlink(missing_ok=True)


def main(argv=None) -> None:
    args = parse_args(__doc__, argv, lambda p: (
        p.add_argument("overrides", nargs="*", help="presets (data=diffusiondb) and keys (data.size=256)"),
        p.add_argument("--check", action="store_true", help="only check that params.yaml is the composed default"),
    ))
    target = Path(args.params)
    try:
        if args.check:
            with tempfile.TemporaryDirectory() as tmp:
                compose(args.overrides, Path(tmp) / "params.yaml")
                fresh = yaml.safe_load((Path(tmp) / "params.yaml").read_text())
            if not target.is_file() or yaml.safe_load(target.read_text()) != fresh:
                print(f"{target} differs from conf/ composed with {args.overrides or 'the defaults'}: "
                      "run python -m stages.compose", file=sys.stderr)
                raise SystemExit(1)
            print(f"{target} is conf/ composed with {args.overrides or 'the defaults'}")
            return
        compose(args.overrides, target)
    except ParamsError as exc:
        fail(str(exc))
    print(f"wrote {target} ({' '.join(args.overrides) or 'defaults'})")


if __name__ == "__main__":
    main()
