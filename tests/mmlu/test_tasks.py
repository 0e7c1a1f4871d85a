"""Task definitions derived from lm-eval's installed MMLU template, and their prompts."""

from __future__ import annotations

import datasets
import pytest
from lm_eval.api.task import ConfigurableTask
from lm_eval.config.task import TaskConfig
from lm_eval.tasks._yaml_loader import load_yaml

from evalkit.errors import EvalkitError
from evalkit.mmlu import load_catalog, load_tasks, select_tasks
from tests.mmlu.conftest import SMALL_DEV, SMALL_TEST, read_jsonl

# what --data replaces; everything else must be lm-eval's
DATA_KEYS = {"dataset_path", "dataset_name", "dataset_kwargs"}


def test_catalog_reads_lm_evals_installed_mmlu_group():
    catalog = load_catalog()
    assert list(catalog.categories) == ["stem", "other", "social_sciences", "humanities"]  # lm-eval's _mmlu.yaml order
    assert len(catalog.subjects) == 57
    counts = {c: sum(s.category == c for s in catalog.subjects.values()) for c in catalog.categories}
    assert counts == {"stem": 19, "other": 13, "social_sciences": 12, "humanities": 13}
    assert catalog.subjects["anatomy"].task == "mmlu_anatomy" and catalog.subjects["anatomy"].category == "stem"
    assert catalog.subjects["world_religions"].category == "humanities"
    assert catalog.categories["social_sciences"].alias == "social sciences"
    assert all(s.yaml_path.is_file() and s.yaml_path.parent == catalog.template_dir for s in catalog.subjects.values())


def test_select_by_subjects_and_categories():
    catalog = load_catalog()
    assert [s.name for s in catalog.select(["marketing", "anatomy", "marketing"])] == ["marketing", "anatomy"]
    humanities = catalog.select(categories=["humanities"])
    assert len(humanities) == 13 and {s.category for s in humanities} == {"humanities"}
    assert len(catalog.select()) == 57


def test_every_real_question_belongs_to_a_known_subject(mmlu_records):
    catalog = load_catalog()
    assert len(mmlu_records) == 14042
    assert {r["subject"] for r in mmlu_records} == set(catalog.subjects)


def test_local_task_config_is_lm_evals_but_for_the_data_source(small_mmlu):
    catalog = load_catalog()
    task_set, data = select_tasks(catalog, subjects=["anatomy"], data=small_mmlu)
    assert data["source"] == "local" and set(data["sha256"]) == {"test", "dev"}
    _, loaded = load_tasks(task_set, hub=False)
    ours = loaded["tasks"]["mmlu_anatomy"].config.to_dict()
    installed = TaskConfig(**load_yaml(catalog.subjects["anatomy"].yaml_path)).to_dict()
    differing = {k for k in set(ours) | set(installed) if ours.get(k) != installed.get(k)}
    # the factory drops "tag" once the task is registered, and records where the YAML came from
    assert differing - {"tag", "metadata"} == DATA_KEYS
    assert {k: v for k, v in ours["metadata"].items() if k != "config_source"} == installed["metadata"]
    assert ours["dataset_path"] == "json" and installed["dataset_path"] == "cais/mmlu"
    assert ours["fewshot_split"] == installed["fewshot_split"] == "dev"
    assert set(ours["dataset_kwargs"]["data_files"]) == {"test", "dev"}


def _lm_eval_builtin_task(monkeypatch, subject: str, test_docs: list[dict], dev_docs: list[dict]):
    """lm-eval's own task object for ``subject``, built from its installed YAML; only the hub
    download is replaced, by the same documents."""
    catalog = load_catalog()

    def hub_copy(path, name=None, **kwargs):
        assert (path, name) == ("cais/mmlu", subject)
        return datasets.DatasetDict({"test": datasets.Dataset.from_list(test_docs), "dev": datasets.Dataset.from_list(dev_docs)})

    monkeypatch.setattr(datasets, "load_dataset", hub_copy)
    task = ConfigurableTask(config=load_yaml(catalog.subjects[subject].yaml_path))
    monkeypatch.undo()
    return task


@pytest.mark.parametrize("num_fewshot", [0, 2])
def test_rendered_requests_equal_lm_evals_own_rendering(monkeypatch, small_mmlu, num_fewshot):
    catalog = load_catalog()
    task_set, _ = select_tasks(catalog, subjects=["anatomy", "marketing"], data=small_mmlu, num_fewshot=num_fewshot)
    _, loaded = load_tasks(task_set, hub=False)
    for subject in ("anatomy", "marketing"):
        test_docs = [r for r in read_jsonl(small_mmlu / "test.jsonl") if r["subject"] == subject]
        dev_docs = [r for r in read_jsonl(small_mmlu / "dev.jsonl") if r["subject"] == subject]
        assert len(test_docs) == SMALL_TEST[subject] and len(dev_docs) == SMALL_DEV
        ours = loaded["tasks"][f"mmlu_{subject}"]
        theirs = _lm_eval_builtin_task(monkeypatch, subject, test_docs, dev_docs)
        for task in (ours, theirs):
            task.set_config(key="num_fewshot", value=num_fewshot)
            task.set_fewshot_seed(seed=1234)
            task.build_all_requests(limit=None)
        our_args = [(i.doc_id, i.idx, i.args) for i in ours.instances]
        assert our_args == [(i.doc_id, i.idx, i.args) for i in theirs.instances]
        assert len(our_args) == 4 * SMALL_TEST[subject]
    # and what that rendering is, written out by hand for the first anatomy question
    first = [i for i in loaded["tasks"]["mmlu_anatomy"].instances if i.doc_id == 0]
    doc = first[0].doc
    question = (
        f"{doc['question'].strip()}\nA. {doc['choices'][0]}\nB. {doc['choices'][1]}\n"
        f"C. {doc['choices'][2]}\nD. {doc['choices'][3]}\nAnswer:"
    )
    shots = "".join(
        f"{d['question'].strip()}\nA. {d['choices'][0]}\nB. {d['choices'][1]}\nC. {d['choices'][2]}\n"
        f"D. {d['choices'][3]}\nAnswer: {'ABCD'[d['answer']]}\n\n"
        for d in [r for r in read_jsonl(small_mmlu / "dev.jsonl") if r["subject"] == "anatomy"][:num_fewshot]
    )
    description = "The following are multiple choice questions (with answers) about anatomy.\n\n"
    assert [i.args for i in first] == [(description + shots + question, f" {letter}") for letter in "ABCD"]
    assert doc["question"].startswith("A lesion causing compression of the facial nerve")


def test_subset_of_categories_groups_only_what_was_asked(small_mmlu):
    catalog = load_catalog()
    task_set, _ = select_tasks(catalog, subjects=["anatomy", "marketing"], data=small_mmlu)
    _, loaded = load_tasks(task_set, hub=False)
    assert set(loaded["tasks"]) == {"mmlu_anatomy", "mmlu_marketing"}
    assert loaded["group_map"] == {"mmlu": ["mmlu_stem", "mmlu_other"], "mmlu_stem": ["mmlu_anatomy"], "mmlu_other": ["mmlu_marketing"]}
    aggregation = loaded["groups"]["mmlu"].aggregate_metric_list
    assert [(a.metric, a.weight_by_size) for a in aggregation] == [("acc", True)]  # lm-eval's, unchanged


def test_task_folder_is_reused_and_works_for_the_hub_data_too():
    catalog = load_catalog()
    first, data = select_tasks(catalog, categories=["humanities"])
    again, _ = select_tasks(catalog, categories=["humanities"])
    assert data == {"source": "cais/mmlu"}
    assert first.include_path == again.include_path
    text = (first.include_path / "mmlu_philosophy.yaml").read_text()
    assert text.strip() == f"include: {catalog.subjects['philosophy'].yaml_path}"
    assert sorted(p.name for p in first.include_path.glob("_*.yaml")) == ["_mmlu.yaml", "_mmlu_humanities.yaml"]


def test_local_file_with_some_subjects_evaluates_those(small_mmlu):
    task_set, _ = select_tasks(load_catalog(), data=small_mmlu)
    assert sorted(s.name for s in task_set.subjects) == sorted(SMALL_TEST)


def test_subject_missing_from_local_file_is_an_error(small_mmlu):
    with pytest.raises(EvalkitError, match=r"test.jsonl: no questions for subject\(s\) virology"):
        select_tasks(load_catalog(), subjects=["anatomy", "virology"], data=small_mmlu)
