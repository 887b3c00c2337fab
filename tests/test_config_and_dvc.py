"""params.yaml validation, and dvc.yaml declaring exactly what each stage reads and imports."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from stages.config import ParamsError, load_params

ROOT = Path(__file__).resolve().parents[1]
DVC = yaml.safe_load((ROOT / "dvc.yaml").read_text())
PARAMS = yaml.safe_load((ROOT / "params.yaml").read_text())


def _write(tmp_path, mutate):
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    mutate(params)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def test_default_params_are_valid():
    params = load_params(ROOT / "params.yaml")
    assert params.vae.source == "train" and params.data.source == "shapes"


@pytest.mark.parametrize("mutate, message", [
    (lambda p: p["vae"].update(stepz=3), "vae.stepz: Extra inputs are not permitted"),
    (lambda p: p["vae"].update(steps="many"), "vae.steps: Input should be a valid integer"),
    (lambda p: p["data"].update(test_fraction=1.5), "data.test_fraction: Input should be less than 1"),
    (lambda p: p["noise"].pop("t_fracs"), "noise.t_fracs: Field required"),
    (lambda p: p["noise"].update(schedulers=["ddpm", "heun"]), "noise.schedulers.1"),
    (lambda p: p["vae"].update(source="pretrained", id=""), "vae.id"),
    (lambda p: p["vae"].update(source="pretrained", id="../../no-such-vae"), "is neither a local directory nor a Hub id"),
    (lambda p: p["vae"].update(source="pretrained", id="a/b/c d"), "is neither a local directory nor a Hub id"),
    (lambda p: p["vae"].update(source="pretrained", id="org/vae", subfolder="../x"), "vae.subfolder"),
    (lambda p: p["vae"].update(source="pretrained", id="org/vae", subfolder="/abs"), "vae.subfolder"),
    (lambda p: p["data"].update(hub_config="../2m_random_1k"), "data.hub_config"),
    (lambda p: p["data"].update(drop_anonymous="sometimes"), "data.drop_anonymous"),
    (lambda p: p["data"].update(class_weights=[1.0]), "data.class_weights"),
    (lambda p: p.update(extra={"a": 1}), "extra: Extra inputs are not permitted"),
    (lambda p: p["bench"].update(methods=["smote", "mixup"]), "bench.methods.1"),
    (lambda p: p["bench"]["attention"].update(augment="rotate"), "bench.attention.augment"),
    (lambda p: p["bench"]["logreg"].update(regimes=["real", "everything"]), "bench.logreg.regimes.1"),
    (lambda p: p["data"].update(scale_range=[0.4, 0.2]), "data.scale_range"),
    (lambda p: p["score"].update(expert_model="none", exit_model="mixture"), "score.exit_model 'mixture' needs"),
    (lambda p: p["augment"]["lerp"].update(lambda_min=0.9, lambda_max=0.1), "augment.lerp: lambda_min"),
    (lambda p: p["augment"]["inversion"].pop("margin"), "augment.inversion.margin: Field required"),
    (lambda p: p["compare"].update(methods=[]), "compare.methods"),
])
def test_bad_params_name_the_key(tmp_path, mutate, message):
    with pytest.raises(ParamsError) as err:
        load_params(_write(tmp_path, mutate))
    assert message in str(err.value)


def test_bench_without_methods_is_refused_where_a_regime_needs_one(tmp_path):
    with pytest.raises(ParamsError, match="bench.logreg.regimes"):
        load_params(_write(tmp_path, lambda p: p["bench"].update(methods=[])))
    only_real = {m: {**PARAMS["bench"][m], "regimes": ["real", "low_data"]} for m in PARAMS["bench"]["latent_models"]}
    assert load_params(_write(tmp_path, lambda p: p["bench"].update(methods=[], **only_real))).bench.methods == []


def test_stage_refuses_bad_params_before_writing_anything(tmp_path):
    path = _write(tmp_path, lambda p: p["data"].update(n_images=-5))
    out = tmp_path / "images"
    proc = subprocess.run([sys.executable, "-m", "stages.prepare", "--params", str(path), "--out", str(out),
                           "--reports", str(tmp_path / "reports")], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 2
    assert "data.n_images" in proc.stderr and "Traceback" not in proc.stderr
    assert not out.exists() and not (tmp_path / "reports").exists()


def _stage_script(stage: dict) -> Path:
    module = stage["cmd"].split("-m ")[1].split()[0]
    return ROOT / (module.replace(".", "/") + ".py")


def _module_file(name: str) -> Path | None:
    base = ROOT / name.replace(".", "/")
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


def _imports(path: Path) -> set[Path]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        for name in names:
            if name.split(".")[0] in ("pipeline", "stages") and (f := _module_file(name)):
                found.add(f)
    return found


def _closure(script: Path) -> set[Path]:
    """Every module the script imports, transitively (stages/config.py imports name lists only to
    validate params, so its imports are not followed)."""
    todo, seen = list(_imports(script)), set()
    while todo:
        f = todo.pop()
        if f in seen:
            continue
        seen.add(f)
        if f != ROOT / "stages" / "config.py":
            todo.extend(_imports(f))
    return seen


def _covered(path: Path, deps: list[str]) -> bool:
    rel = path.relative_to(ROOT)
    return any(rel == Path(d) or Path(d) in rel.parents for d in deps)


@pytest.mark.parametrize("name", list(DVC["stages"]))
def test_stage_deps_list_its_script_and_library_modules(name):
    stage = DVC["stages"][name]
    script = _stage_script(stage)
    assert len(set(stage["deps"])) == len(stage["deps"]), f"stage {name} lists a dep twice"
    assert _covered(script, stage["deps"])
    closure = _closure(script) | {script}
    missing = sorted(str(f.relative_to(ROOT)) for f in closure if not _covered(f, stage["deps"]))
    assert not missing, f"stage {name} imports modules not in its deps: {missing}"
    code_deps = [d for d in stage["deps"] if d.split("/")[0] in ("pipeline", "stages")]
    needless = [d for d in code_deps if not any(f == ROOT / d or ROOT / d in f.parents for f in closure)]
    assert not needless, f"stage {name} depends on code it never imports (needless re-runs): {needless}"


@pytest.mark.parametrize("name", list(DVC["stages"]))
def test_stage_params_are_exactly_the_sections_it_reads(name):
    stage = DVC["stages"][name]
    script = _stage_script(stage)
    # the script and the stage helpers it imports (stages/vae_open.py reads vae.dtype, vae.tiling);
    # common.py reads base for every stage
    helpers = {f for f in _closure(script) if f.parent == ROOT / "stages" and f.name not in ("common.py", "config.py")}
    read = set()
    for path in {script} | helpers:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "params":
                read.add(node.attr)
    assert read <= set(PARAMS), f"{name} reads unknown sections {read - set(PARAMS)}"
    # a stage may declare single keys of a section (augment.smote) to re-run less often
    assert {p.split(".")[0] for p in stage.get("params", [])} == read


def test_config_name_lists_match_the_library_registries():
    from pipeline.augment import METHODS
    from pipeline.classify.estimators import CLASSIFIERS
    from pipeline.classify.nets import AUGMENTATIONS, PIXEL_NETS
    from pipeline.data.artifacts import ARTIFACT_KINDS
    from pipeline.data.shapes import CLASS_NAMES
    from pipeline.classify import regimes
    from pipeline.report import headline
    from pipeline.generate.interpolate import GUIDE_METRICS
    from pipeline.generate.oversample import GENERATED
    from pipeline.latents.noising import SCHEDULERS
    from stages import config

    assert config.METHODS == METHODS and config.ARTIFACT_KINDS == ARTIFACT_KINDS
    assert config.CLASS_NAMES == CLASS_NAMES and config.SCHEDULERS == tuple(SCHEDULERS)
    assert config.CLASSIFIERS == tuple(CLASSIFIERS)
    assert config.PIXEL_MODELS == tuple(PIXEL_NETS) and config.AUGMENTATIONS == tuple(AUGMENTATIONS)
    assert config.GUIDE_METRICS == GUIDE_METRICS
    assert config.GENERATED == GENERATED == regimes.GENERATED == headline.GENERATED
    # every method (augmenters and generated data) has its options subsection, and nothing else is method-shaped
    fields = set(config.Augment.model_fields) - {"methods", "sampling_strategy", "replicates"}
    assert fields == set(METHODS) | set(GENERATED)


def test_validating_params_imports_no_torch():
    code = "import sys, stages.common; stages.config.load_params(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def _expanded_outs(stage: dict) -> list[str]:
    """A stage's outs, one set per item of its ``matrix:`` (values looked up in params.yaml)."""
    outs = stage.get("outs", [])
    for key, ref in stage.get("matrix", {}).items():
        section, name = ref.strip("${}").split(".")
        outs = [o.replace(f"${{item.{key}}}", str(v)) for o in outs for v in PARAMS[section][name]]
    return outs


def test_every_declared_metric_and_plot_is_an_output_of_some_stage():
    outs = [Path(o) for s in DVC["stages"].values() for o in _expanded_outs(s)]
    declared = list(DVC["metrics"])
    for plot in DVC["plots"]:
        if isinstance(plot, str):
            declared.append(plot)
        else:   # {id: {x, y: {file: column}}}, or {file or directory: {x}} (the dvclive curves)
            declared += [f for pid, p in plot.items() for f in (p["y"] if "y" in p else [pid])]
    for path in map(Path, declared):
        assert any(path == o or o in path.parents for o in outs), path
