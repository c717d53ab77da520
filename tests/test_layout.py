"""The code layout DVC relies on: layers import one way, and every stage's deps cover every module it runs.

A stage's modules are the import closure of its script inside ``human_saliency``, read from the source
(imports inside functions count: they run too). Two kinds of import are left out, each because it cannot
change a stage's outputs: ``if TYPE_CHECKING:`` blocks (never run), and the registry look-ups inside
``params.py``'s validators (they only decide whether a params file is accepted, so a registry change can
stop a stage, never change what it writes; listing them would make every stage depend on every registry).
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
PACKAGE = SRC / "human_saliency"
# Lowest first: a module may import its own layer and the ones before it, never one after it.
LAYERS = ("io", "runtime", "sources", "prepared", "maps", "scoring", "experiment")
BOTTOM = {"human_saliency", "human_saliency.errors"}  # importable from anywhere
TOP = {"human_saliency.params", "human_saliency.cli"}  # the stage scripts' own plumbing
VALIDATION_ONLY = "human_saliency.params"


def module_path(name: str) -> Path | None:
    """The file of a ``human_saliency`` module or package, or None if there is none."""
    base = SRC.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking_lines(tree: ast.AST) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def _function_lines(tree: ast.AST) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            lines.update(range(node.lineno, (node.end_lineno or node.lineno) + 1))
    return lines


@cache
def direct_imports(path: Path) -> frozenset[str]:
    """The ``human_saliency`` modules a file imports (each parent package included: importing runs it)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped = _type_checking_lines(tree)
    if path.parent == PACKAGE and module_name(path) == VALIDATION_ONLY:
        skipped |= _function_lines(tree)
    found: set[str] = set()
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) in skipped:
            continue
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            # "from pkg import name": name is a submodule or an attribute of pkg.
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            if name.split(".")[0] != "human_saliency":
                continue
            parts = name.split(".")
            found.update(".".join(parts[:k]) for k in range(1, len(parts) + 1) if module_path(".".join(parts[:k])))
    return frozenset(found)


def closure(path: Path) -> set[str]:
    """Every ``human_saliency`` module that importing (running) ``path`` runs."""
    seen: set[str] = set()
    todo = list(direct_imports(path))
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(direct_imports(module_path(name)))
    return seen


def stages() -> dict[str, dict]:
    return yaml.safe_load((ROOT / "dvc.yaml").read_text(encoding="utf-8"))["stages"]


def stage_script(stage: dict) -> Path:
    words = stage["cmd"].split()
    return ROOT / words[words.index("python") + 1]


def runs_code(path: Path) -> bool:
    """Whether a module does anything when imported (a package ``__init__`` with only a docstring does not)."""
    body = ast.parse(path.read_text(encoding="utf-8")).body
    return any(not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)) for node in body)


def uncovered(stage: dict) -> list[str]:
    """The files the stage runs that none of its deps (a file or a folder above it) covers."""
    deps = [(ROOT / dep).resolve() for dep in stage["deps"]]
    modules = [module_path(name) for name in sorted(closure(stage_script(stage)))]
    files = [stage_script(stage)] + [path for path in modules if runs_code(path)]
    return [
        str(file.relative_to(ROOT))
        for file in files
        if not any(file.resolve() == dep or dep in file.resolve().parents for dep in deps)
    ]


@pytest.mark.parametrize("name", sorted(stages()))
def test_stage_deps_cover_every_module_the_stage_runs(name):
    missing = uncovered(stages()[name])
    assert not missing, f"dvc.yaml: stage {name!r} runs {missing} but does not list them (or a folder of them) in deps"


@pytest.mark.parametrize("name", sorted(stages()))
def test_stage_source_deps_exist_and_are_used(name):
    """No stale entry: each code dep exists and holds at least one module the stage runs."""
    stage = stages()[name]
    ran = {stage_script(stage).resolve()} | {module_path(m).resolve() for m in closure(stage_script(stage))}
    for dep in stage["deps"]:
        path = (ROOT / dep).resolve()
        if dep.startswith(("src/", "stages/")):
            assert path.exists(), f"stage {name!r}: dep {dep} does not exist"
            assert any(file == path or path in file.parents for file in ran), f"stage {name!r}: {dep} is never run"


def test_the_check_catches_a_missing_entry():
    """Remove one needed entry from a stage: the check must name the module it no longer covers."""
    stage = dict(stages()["saliency"])
    stage["deps"] = [dep for dep in stage["deps"] if dep != "src/human_saliency/maps/cam.py"]
    assert "src/human_saliency/maps/cam.py" in uncovered(stage)


def layer_of(name: str) -> int | None:
    parts = name.split(".")
    if name in BOTTOM:
        return -1
    if name in TOP:
        return len(LAYERS)
    return LAYERS.index(parts[1]) if len(parts) > 1 and parts[1] in LAYERS else None


def test_every_module_belongs_to_a_layer():
    homeless = [module_name(path) for path in PACKAGE.rglob("*.py") if layer_of(module_name(path)) is None]
    assert not homeless, f"modules outside the layers {LAYERS}: {homeless}"


def test_imports_flow_one_way_between_layers():
    upward = [
        f"{module_name(path)} imports {target}"
        for path in sorted(PACKAGE.rglob("*.py"))
        for target in sorted(direct_imports(path))
        if layer_of(target) > layer_of(module_name(path))
    ]
    assert not upward, "imports against the layer order " + " < ".join(LAYERS) + ":\n" + "\n".join(upward)


def test_dvc_matrices_list_the_arms_of_the_experiment():
    from human_saliency.experiment.arms import ARMS, AUGMENTED

    for name in ("train", "evaluate"):
        assert stages()[name]["matrix"]["arm"] == list(ARMS), name
    assert stages()["augment"]["matrix"]["arm"] == list(AUGMENTED)


def test_score_declares_each_metrics_file_where_the_tables_read_it():
    from human_saliency.scoring.score import study_metrics_path
    from human_saliency.scoring.tables import STUDY_TABLES

    declared = [next(iter(entry)) for entry in stages()["score"]["metrics"]]
    for spec in STUDY_TABLES:
        path = study_metrics_path(Path("metrics/study"), spec.dataset, spec.reference, "${item.detector}")
        assert path.as_posix() in declared, f"{spec.title}: reads {path}, which dvc.yaml does not declare"


@pytest.mark.parametrize(("stage", "row"), [("score", "${item.detector}"), ("score_trained", "trained")])
def test_score_stages_declare_exactly_the_metrics_files_the_score_script_writes(stage, row):
    from human_saliency.experiment.arms import TRAINED_ROW
    from human_saliency.scoring.score import STUDY_METRICS, study_metrics_path

    declared = [next(iter(entry)) for entry in stages()[stage]["metrics"]]
    written = [study_metrics_path(Path("metrics/study"), *key, row).as_posix() for key in STUDY_METRICS]
    assert sorted(declared) == sorted(written)
    assert f"--detector {TRAINED_ROW} " in " ".join(stages()["score_trained"]["cmd"].split()) + " "
