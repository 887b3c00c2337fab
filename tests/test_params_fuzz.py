"""Property-based params fuzzing (issue 17, item 5): any edit of params.yaml either validates or stops
with a ParamsError that names what is wrong — never another exception (a traceback in a stage).

Hypothesis picks one to three keys of the real params.yaml and gives each a value of any YAML type
(or deletes it, or adds an unknown key beside it). ``derandomize`` keeps CI's examples the same
from run to run."""

from pathlib import Path

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from stages.config import ParamsError, load_params

ROOT = Path(__file__).resolve().parents[1]
PARAMS = yaml.safe_load((ROOT / "params.yaml").read_text())


def _leaves(tree: dict, prefix: tuple = ()) -> list[tuple]:
    out = []
    for key, value in tree.items():
        path = (*prefix, key)
        out += _leaves(value, path) if isinstance(value, dict) and value else [path]
    return out


LEAVES = _leaves(PARAMS)
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-10**9, 10**9),
                    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12))
VALUES = st.one_of(SCALARS, st.lists(SCALARS, max_size=5), st.dictionaries(st.text(max_size=6), SCALARS, max_size=2))
EDITS = st.lists(st.tuples(st.sampled_from(LEAVES), st.sampled_from(["set", "delete", "extra"]), VALUES),
                 min_size=1, max_size=3)


def _apply(params: dict, path: tuple, kind: str, value) -> None:
    parent = params
    for key in path[:-1]:
        parent = parent[key]
    if kind == "set":
        parent[path[-1]] = value
    elif kind == "delete":
        parent.pop(path[-1], None)
    else:
        parent["fuzz_extra_key"] = value


@settings(max_examples=300, deadline=None, derandomize=True)
@given(EDITS)
def test_any_params_edit_validates_or_names_the_key(tmp_path_factory, edits):
    params = yaml.safe_load(yaml.safe_dump(PARAMS))
    for path, kind, value in edits:
        try:
            _apply(params, path, kind, value)
        except (TypeError, KeyError):   # an earlier edit replaced a section by a scalar: the edit is moot
            pass
    path = tmp_path_factory.mktemp("fuzz") / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    try:
        load_params(path)
    except ParamsError as exc:
        message = str(exc)
        assert message.startswith(f"{path}: ")                          # the file, then what is wrong in it
        said = message[len(f"{path}: "):]                             # not the file's own path
        assert any(edit[0][0] in said for edit in edits), message      # the section (or the key itself) is named
