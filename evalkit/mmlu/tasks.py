"""MMLU task definitions derived from the installed lm-eval package.

lm-eval's ``mmlu`` group (``lm_eval/tasks/mmlu/default``) is read from the installed package,
never copied: the subjects, their categories and the prompt template all come from its YAML
files. For a local copy of the data set (``--data DIR``) evalkit writes a small folder of task
definitions that ``include:`` lm-eval's own YAML files by absolute path and override only the
data source (``dataset_path: json`` with per-subject ``data_files``), so the prompt text,
choices, target, metric and the grouping into four categories stay lm-eval's. The folder keeps
lm-eval's task and group names (``mmlu_anatomy``, ``mmlu_stem``, ``mmlu``); lm-eval lets an
``include_path`` override its built-in definitions, so the same folder works unchanged with
``lm_eval --include_path DIR --tasks mmlu``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from dataclasses import dataclass
from functools import lru_cache
from importlib.metadata import version
from pathlib import Path

import yaml

from evalkit.errors import EvalkitError
from evalkit.mmlu.data import LocalMmlu

MMLU_GROUP = "mmlu"
TASK_PREFIX = "mmlu_"


@dataclass(frozen=True)
class Category:
    name: str  # "social_sciences": the lm-eval group name without "mmlu_"
    group: str  # "mmlu_social_sciences"
    alias: str  # "social sciences", as lm-eval prints it
    tag: str  # "mmlu_social_sciences_tasks": the tag the group collects its subjects by
    yaml_path: Path


@dataclass(frozen=True)
class Subject:
    name: str  # "anatomy": the cais/mmlu config name (dataset_name)
    task: str  # "mmlu_anatomy"
    category: str  # Category.name
    yaml_path: Path


@dataclass(frozen=True)
class MmluCatalog:
    """What lm-eval's installed ``mmlu`` group is made of."""

    template_dir: Path
    group_yaml: Path
    categories: dict[str, Category]  # in the order lm-eval's mmlu group lists them
    subjects: dict[str, Subject]  # alphabetical
    template_hash: str  # sha256 of every file in template_dir: changes when lm-eval's prompt does
    lm_eval_version: str

    def select(self, subjects: list[str] | None = None, categories: list[str] | None = None) -> list[Subject]:
        """Subjects named, or all subjects of the categories named, or all subjects."""
        if subjects and categories:
            raise EvalkitError("give --subjects or --categories, not both")
        if subjects:
            unknown = [s for s in subjects if s not in self.subjects]
            if unknown:
                raise EvalkitError(
                    f"unknown MMLU subject(s) {', '.join(map(repr, unknown))}; valid subjects: {', '.join(self.subjects)}"
                )
            return [self.subjects[s] for s in dict.fromkeys(subjects)]
        if categories:
            unknown = [c for c in categories if c not in self.categories]
            if unknown:
                raise EvalkitError(
                    f"unknown MMLU category(ies) {', '.join(map(repr, unknown))}; valid categories: {', '.join(self.categories)}"
                )
            wanted = set(categories)
            return [s for s in self.subjects.values() if s.category in wanted]
        return list(self.subjects.values())


def _load(path: Path) -> dict:
    from lm_eval.tasks._yaml_loader import load_yaml

    # lm-eval's own loader (it understands its !function tags); includes left unresolved
    return load_yaml(path, resolve_func=False, recursive=False)


def _layout_error(template_dir: Path, detail: str) -> EvalkitError:
    return EvalkitError(
        f"lm-eval {version('lm_eval')}'s MMLU task definitions in {template_dir} are not laid out as evalkit "
        f"expects ({detail}); evalkit was tested with lm-eval 0.4.13"
    )


@lru_cache(maxsize=1)
def load_catalog() -> MmluCatalog:
    import lm_eval.tasks

    template_dir = Path(lm_eval.tasks.__file__).resolve().parent / "mmlu" / "default"
    group_yaml = template_dir / f"_{MMLU_GROUP}.yaml"
    if not group_yaml.is_file():
        raise _layout_error(template_dir, f"{group_yaml.name} is missing")
    top = _load(group_yaml)
    if top.get("group") != MMLU_GROUP or not isinstance(top.get("task"), list):
        raise _layout_error(template_dir, f"{group_yaml.name} does not define group {MMLU_GROUP!r} with a task list")

    configs = {p: _load(p) for p in sorted(template_dir.glob("*.yaml"))}
    groups = {cfg["group"]: (p, cfg) for p, cfg in configs.items() if "group" in cfg}
    categories: dict[str, Category] = {}
    for group_name in top["task"]:
        if group_name not in groups:
            raise _layout_error(template_dir, f"group {group_name!r} has no YAML file")
        path, cfg = groups[group_name]
        tags = cfg.get("task")
        if not (isinstance(tags, list) and len(tags) == 1 and isinstance(tags[0], str)):
            raise _layout_error(template_dir, f"group {group_name!r} does not collect one tag")
        name = group_name.removeprefix(TASK_PREFIX)
        categories[name] = Category(name, group_name, cfg.get("group_alias") or name, tags[0], path)

    by_tag = {c.tag: c.name for c in categories.values()}
    subjects: dict[str, Subject] = {}
    for path, cfg in configs.items():
        if "task" not in cfg or "group" in cfg:
            continue
        if cfg.get("tag") not in by_tag or not cfg.get("dataset_name"):
            raise _layout_error(template_dir, f"{path.name} has no category tag or dataset_name")
        subjects[cfg["dataset_name"]] = Subject(cfg["dataset_name"], cfg["task"], by_tag[cfg["tag"]], path)
    if not subjects:
        raise _layout_error(template_dir, "no subject tasks found")

    digest = hashlib.sha256()
    for path in sorted(p for p in template_dir.iterdir() if p.is_file()):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return MmluCatalog(
        template_dir=template_dir,
        group_yaml=group_yaml,
        categories=categories,
        subjects=dict(sorted(subjects.items())),
        template_hash=digest.hexdigest()[:16],
        lm_eval_version=version("lm_eval"),
    )


@dataclass(frozen=True)
class TaskSet:
    """What to hand lm-eval: task names and the folder defining them (``--include_path``)."""

    tasks: list[str]
    include_path: Path
    subjects: list[Subject]


def _dump(path: Path, config: dict) -> None:
    path.write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True), encoding="utf-8")


def write_task_dir(
    out_dir: Path,
    catalog: MmluCatalog,
    subjects: list[Subject],
    data_files: dict[str, dict[str, Path]] | None = None,
) -> Path:
    """Write task definitions for ``subjects`` into ``out_dir``.

    ``data_files`` maps a subject to its local split files (``{"test": path, "dev": path}``);
    without it the tasks read lm-eval's default data (the ``cais/mmlu`` hub data set) and only
    the grouping is restricted to ``subjects``.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    for subject in subjects:
        config: dict = {"include": str(subject.yaml_path)}
        if data_files is not None:
            files = data_files[subject.name]
            config["dataset_path"] = "json"
            config["dataset_name"] = None
            config["dataset_kwargs"] = {"data_files": {split: str(p) for split, p in files.items()}}
            if "dev" not in files:
                # no few-shot pool: lm-eval would otherwise load the missing split when it builds the task
                config["fewshot_split"] = None
        _dump(out_dir / subject.yaml_path.name, config)
    present = [c for c in catalog.categories.values() if any(s.category == c.name for s in subjects)]
    for category in present:
        _dump(out_dir / category.yaml_path.name, {"include": str(category.yaml_path)})
    top: dict = {"include": str(catalog.group_yaml)}
    if len(present) != len(catalog.categories):
        # a category with no subject here has no tasks to collect: leave its group out
        top["task"] = [c.group for c in present]
    _dump(out_dir / catalog.group_yaml.name, top)
    return out_dir


def prepare_tasks(catalog: MmluCatalog, subjects: list[Subject], *, local: LocalMmlu | None = None, root: Path) -> TaskSet:
    """The tasks to evaluate: a task folder under ``root`` (with the local data split per subject
    inside it), named by its content, written once and reused. Without local data the folder only
    includes lm-eval's definitions, restricted to ``subjects``."""
    parts = [catalog.lm_eval_version, catalog.template_hash, str(catalog.template_dir), *sorted(s.name for s in subjects)]
    if local is not None:
        parts += [f"{split}:{digest}" for split, digest in sorted(local.sha256.items())]
    ident = hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]
    target = (root / ident).resolve()
    if not (target / catalog.group_yaml.name).is_file():
        root.mkdir(parents=True, exist_ok=True)
        tmp = root.resolve() / f".{ident}.{os.getpid()}.{uuid.uuid4().hex[:6]}"
        # the YAML names the data by its final path; the folder appears there whole (rename) or not at all
        write_task_dir(tmp, catalog, subjects, None if local is None else {
            s.name: {split: target / "data" / s.name / f"{split}.jsonl" for split in local.docs if s.name in local.docs[split]}
            for s in subjects
        })
        if local is not None:
            local.write_subject_files(tmp / "data", [s.name for s in subjects])
        try:
            tmp.rename(target)
        except OSError:  # another process wrote the same folder first
            shutil.rmtree(tmp, ignore_errors=True)
    return TaskSet([MMLU_GROUP], target, subjects)
