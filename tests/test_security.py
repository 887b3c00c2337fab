"""Nothing a user could swap is unpickled: a static scan of the library, the stages and the benchmarks.

Models are safetensors + JSON; ``from_pretrained`` must be told ``use_safetensors=True`` (else a
folder holding only a pickled ``.bin`` would be loaded with ``torch.load``); no ``torch.load``
without ``weights_only=True``, no ``pickle`` / ``joblib.load`` / ``np.load(allow_pickle=True)``,
no ``trust_remote_code``. (Ray pickles task arguments between this project's own processes; that
is transport, not a file a user hands in.)"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted(p for d in ("pipeline", "stages", "benchmarks") for p in (ROOT / d).rglob("*.py"))


def _keyword(call: ast.Call, name: str):
    for kw in call.keywords:
        if kw.arg == name:
            return kw.value
    return None


def _is_true(node) -> bool:
    return isinstance(node, ast.Constant) and node.value is True


def findings(source: str, where: str) -> list[str]:
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] + ([node.module] if isinstance(node, ast.ImportFrom) else [])
            if any(n and n.split(".")[0] in ("pickle", "dill", "cloudpickle", "shelve", "marshal") for n in names):
                out.append(f"{where}:{node.lineno}: imports a pickle module")
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        owner = getattr(func.value, "id", "") if isinstance(func, ast.Attribute) else ""
        if _is_true(_keyword(node, "trust_remote_code")):
            out.append(f"{where}:{node.lineno}: trust_remote_code=True")
        if name == "load" and owner == "torch" and not _is_true(_keyword(node, "weights_only")):
            out.append(f"{where}:{node.lineno}: torch.load without weights_only=True")
        if name == "load" and owner == "joblib":
            out.append(f"{where}:{node.lineno}: joblib.load unpickles")
        if name == "load" and owner in ("np", "numpy") and _is_true(_keyword(node, "allow_pickle")):
            out.append(f"{where}:{node.lineno}: np.load(allow_pickle=True)")
        if name == "from_pretrained" and not _is_true(_keyword(node, "use_safetensors")):
            out.append(f"{where}:{node.lineno}: from_pretrained without use_safetensors=True")
    return out


def test_the_scan_catches_each_unsafe_load():
    bad = ("import pickle\nimport torch, joblib, numpy as np\ntorch.load('m.pt')\njoblib.load('m.joblib')\n"
           "np.load('a.npy', allow_pickle=True)\nAutoencoderKL.from_pretrained('x')\n"
           "AutoModel.from_pretrained('x', trust_remote_code=True, use_safetensors=True)\n")
    assert len(findings(bad, "bad.py")) == 6
    ok = "torch.load('m.pt', weights_only=True)\nUNet2DModel.from_pretrained('x', use_safetensors=True)\n"
    assert findings(ok, "ok.py") == []


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_source_file_unpickles_or_runs_remote_code(path):
    assert findings(path.read_text(), str(path.relative_to(ROOT))) == []
