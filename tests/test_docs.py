"""The user docs: a short README that leads to docs/, generated reference pages that are current, links
that resolve, and no history (issue numbers) in what users read."""

import re
from pathlib import Path

import pytest

from pipeline.report.reference import config_sections, describe_type, params_reference, schema_at, stage_reference
from stages.docs import pages

ROOT = Path(__file__).resolve().parents[1]
USER_DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def _slug(heading: str) -> str:
    """GitHub's anchor of a Markdown heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)
    return {_slug(m.group(1)) for m in re.finditer(r"^#{1,6} (.*)$", text, flags=re.M)}


def test_generated_reference_pages_are_current():
    for path, text in pages(ROOT).items():
        assert path.is_file() and path.read_text() == text, \
            f"{path.relative_to(ROOT)} is stale or edited by hand: run `python -m stages.docs` and commit it"


def test_readme_is_short_and_its_first_screen_leads_on():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= 250, len(lines)
    first = "\n".join(lines[:30])
    assert "pip install -r requirements.txt && dvc repro" in first and "bash .ci/run" in first   # the two commands
    assert "](docs/report.png)" in first and (ROOT / "docs/report.png").is_file()            # a picture of the result
    assert "](#documentation)" in first and "](docs/results.md)" in first                     # where to go next


def test_every_docs_page_is_linked_from_the_readme():
    readme = (ROOT / "README.md").read_text()
    linked = {m.group(1).split("#")[0] for m in LINK.finditer(readme)}
    assert {f"docs/{p.name}" for p in (ROOT / "docs").glob("*.md")} <= linked


@pytest.mark.parametrize("doc", USER_DOCS, ids=lambda p: p.name)
def test_links_resolve_and_no_issue_numbers(doc):
    text = doc.read_text()
    for target in (m.group(1) for m in LINK.finditer(text)):
        if re.match(r"[a-z]+:", target):
            continue   # a URL
        path, _, anchor = target.partition("#")
        dest = (doc.parent / path).resolve() if path else doc
        assert dest.exists(), f"{doc.name}: link to {target} finds nothing"
        if anchor and dest.suffix == ".md":
            assert anchor in _anchors(dest), f"{doc.name}: {target} has no such heading"
    assert not re.search(r"\bissues?[ -]?#?\d+|\(#\d+\)", text, flags=re.I), f"{doc.name} names an issue number"


CONFIG = """\
defaults:
  - data: shapes          # a preset axis, not a section
base:
  seed: 0
  device: auto            # auto | cpu
                          # (continued)
net:                      # a section's comment
  # a note of its own
  opts: {width: 8, steps: 5,
         lr: 0.1}         # a mapping over two lines
  ray:
    actors: 1             # nested
"""


def test_config_sections_join_comments_and_skip_continued_mappings():
    base, net = config_sections(CONFIG)
    assert [e.path for e in base.entries] == ["base.seed", "base.device"]
    assert base.entries[1].comment == "auto | cpu (continued)"
    assert net.comment == "a section's comment" and net.notes == ["a note of its own"]
    assert [(e.path, e.comment) for e in net.entries] == [("net.opts", "a mapping over two lines"), ("net.ray", ""),
                                                         ("net.ray.actors", "nested")]


def test_params_reference_types_every_key_and_names_an_undocumented_one():
    schema = {"properties": {"base": {"$ref": "#/$defs/Base"}, "net": {"$ref": "#/$defs/Net"}},
              "$defs": {"Base": {"properties": {"seed": {"type": "integer", "minimum": 0},
                                                "device": {"enum": ["auto", "cpu"]}}},
                        "Net": {"properties": {"opts": {"type": "object", "additionalProperties": {"type": "number"}},
                                               "ray": {"$ref": "#/$defs/Ray"}}},
                        "Ray": {"properties": {"actors": {"type": "integer", "exclusiveMinimum": 0, "maximum": 8}}}}}
    assert describe_type(schema_at(schema, "net.ray.actors"), schema["$defs"]) == "int in (0, 8]"
    assert describe_type(schema_at(schema, "base.device"), schema["$defs"]) == "`auto` \\| `cpu`"
    params = {"base": {"seed": 0, "device": "auto"}, "net": {"opts": {"width": 8, "steps": 5, "lr": 0.1},
                                                             "ray": {"actors": 1}}}
    page = params_reference(CONFIG, params, schema, {"data": {"shapes": "the default"}})
    assert "| `base.seed` | int ≥ 0 | `0` |  |" in page
    assert "| `net.opts.width` | float | `8` | a mapping over two lines |" in page and "| `net.opts.lr` | float | `0.1` | ″ |" in page
    assert "| `net.ray.actors` | int in (0, 8] | `1` | nested |" in page and "| `data` | `shapes` | the default |" in page
    with pytest.raises(ValueError, match="net.extra"):
        params_reference(CONFIG, {**params, "net": {**params["net"], "extra": 1}}, schema, {})


def test_stage_reference_lists_matrix_stages_once_with_their_outputs():
    dvc = {"stages": {"bench": {"matrix": {"model": ["a", "b"]}, "cmd": "python -m stages.bench --model ${item.model}",
                                "params": ["base", "bench.seeds", {"other.yaml": ["x"]}],
                                "outs": ["reports/bench/${item.model}"], "metrics": [{"reports/m.json": {"cache": False}}]}}}
    page = stage_reference(dvc, {"stages.bench": "bench: the ``benchmark``, one model a run.\n\nMore."})
    assert "| `bench@<model>` | the `benchmark`, one model a run. | `base`, `bench` | " \
           "`reports/bench/<model>`<br>`reports/m.json` |" in page
