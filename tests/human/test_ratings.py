"""Importing ratings files: errors name file and line, duplicates keep the last, one human run per
bundle, the README payload; and the arena command on the imported votes."""

from __future__ import annotations

import json

import pytest

from evalkit.errors import InputError
from evalkit.human.bundle import export_pairs, pairs_from_preference
from evalkit.human.ratings import import_ratings

HUMAN_FIELDS = {
    "pair_id", "rater", "outcome", "model_a", "model_b", "instruction", "input", "response_a", "response_b",
    "comment", "timestamp", "seconds",
}


@pytest.fixture
def bundle_dir(store, generate_runs, tmp_path):
    bundle = export_pairs(store, runs=list(generate_runs), n=6, seed=0)
    bundle.write(tmp_path / "bundle")
    return tmp_path / "bundle", bundle


def line(rater, pair_id, outcome, comment="", seconds=3.5):
    return json.dumps({"rater": rater, "pair_id": pair_id, "outcome": outcome, "comment": comment,
                       "timestamp": "2026-01-01T00:00:00.000Z", "seconds": seconds})


def write(path, *lines):
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_import_stores_one_vote_per_rater_and_pair(store, bundle_dir, tmp_path):
    folder, bundle = bundle_dir
    ids = [p.pair_id for p in bundle.pairs]
    ann = write(tmp_path / "ratings-ann.jsonl", *(line("ann", pid, o) for pid, o in zip(ids, ["a", "b", "tie", "both_bad", "a", "b"])))
    result = import_ratings(store, folder / "key.json", [ann])
    run = store.get_run(result.run_id)
    assert run.kind == "human" and run.status == "done"
    assert run.metrics["n_votes"].value == 6 and run.metrics["n_raters"].value == 1
    samples = dict(store.samples(run.id))
    assert set(samples) == {f"{pid}/ann" for pid in ids}
    first = samples[f"{ids[0]}/ann"]
    assert HUMAN_FIELDS <= set(first)
    pair = bundle.pairs[0]
    assert (first["model_a"], first["model_b"]) == (pair.model_a, pair.model_b)
    assert (first["response_a"], first["response_b"]) == (pair.response_a, pair.response_b)
    assert first["outcome"] == "a" and first["seconds"] == 3.5 and first["rater"] == "ann"
    assert samples[f"{ids[3]}/ann"]["outcome"] == "both_bad"

    # a second rater later: same run, inter-rater agreement computed
    bob = write(tmp_path / "ratings-bob.jsonl", *(line("bob", pid, "a") for pid in ids[:4]))
    again = import_ratings(store, folder / "key.json", [bob])
    assert again.run_id == result.run_id
    metrics = store.get_run(result.run_id).metrics
    assert metrics["n_votes"].value == 10 and metrics["n_raters"].value == 2
    # ann (a, b, tie, both_bad) vs bob (a, a, a, a) on 4 pairs: 1 agreement
    assert metrics["inter_rater_agreement"].value == pytest.approx(1 / 4)


def test_duplicate_rating_keeps_the_last_and_says_so(store, bundle_dir, tmp_path, run_cli):
    folder, bundle = bundle_dir
    pid = bundle.pairs[0].pair_id
    first = write(tmp_path / "ratings-ann.jsonl", line("ann", pid, "a"), line("ann", bundle.pairs[1].pair_id, "tie"))
    later = write(tmp_path / "ratings-ann-2.jsonl", line("ann", pid, "b", comment="changed my mind"))
    rc, out, err = run_cli("pairs", "import", folder / "key.json", first, later, store=store.path)
    assert rc == 0, err
    assert f"ratings-ann-2.jsonl, line 1: 'ann' rated pair {pid} again (first at {first}, line 1); keeping this later rating" in " ".join(err.split())
    run_id = out.strip().splitlines()[0]
    samples = dict(store.samples(run_id))
    assert len(samples) == 2
    assert samples[f"{pid}/ann"]["outcome"] == "b" and samples[f"{pid}/ann"]["comment"] == "changed my mind"


@pytest.mark.parametrize(
    "bad, message",
    [
        ('{"rater": "ann", "pair_id": "PAIR", "outcome": "a"', r"line 2: malformed JSON"),
        ('{"rater": "ann", "pair_id": "ffffffff-0001", "outcome": "a"}', r"line 2: unknown pair id 'ffffffff-0001' \(ratings from another bundle\?"),
        ('{"rater": "ann", "pair_id": "PAIR", "outcome": "A better"}', r"line 2: unknown outcome 'A better'; expected one of a, b, tie, both_bad"),
        ('{"pair_id": "PAIR", "outcome": "a"}', r"line 2: field 'rater' is missing or empty"),
        ('["ann", "PAIR", "a"]', r"line 2: expected a JSON object"),
    ],
)
def test_import_errors_name_file_and_line_and_store_nothing(store, bundle_dir, tmp_path, bad, message):
    folder, bundle = bundle_dir
    pid = bundle.pairs[1].pair_id
    path = write(tmp_path / "ratings-x.jsonl", line("ann", bundle.pairs[0].pair_id, "a"), bad.replace("PAIR", pid))
    with pytest.raises(InputError, match=rf"ratings-x\.jsonl, {message}"):
        import_ratings(store, folder / "key.json", [path])
    assert store.list_runs(kind="human") == []


def test_import_cli_error_is_one_line_exit_2(store, bundle_dir, tmp_path, run_cli):
    folder, _ = bundle_dir
    path = write(tmp_path / "ratings-x.jsonl", "not json")
    rc, out, err = run_cli("pairs", "import", folder / "key.json", path, store=store.path)
    assert rc == 2
    assert "ratings-x.jsonl, line 1: malformed JSON" in err
    rc, _, err = run_cli("pairs", "import", path, path, store=store.path)
    assert rc == 2 and "malformed JSON" in err  # a ratings file passed as the key


def test_preference_bundle_reports_accuracy(store, preference_file, tmp_path):
    bundle = pairs_from_preference(preference_file, n=4, seed=0)
    bundle.write(tmp_path / "p")
    # ann picks the chosen side 3 times, then the rejected one
    outcomes = [p.chosen for p in bundle.pairs[:3]] + ["b" if bundle.pairs[3].chosen == "a" else "a"]
    path = write(tmp_path / "ratings-ann.jsonl", *(line("ann", p.pair_id, o) for p, o in zip(bundle.pairs, outcomes)))
    result = import_ratings(store, tmp_path / "p" / "key.json", [path])
    assert result.metrics["accuracy"] == pytest.approx(3 / 4)
    samples = [s for _, s in store.samples(result.run_id)]
    assert all(s["chosen"] in ("a", "b") for s in samples)


def test_arena_command_on_imported_votes_and_a_judge_run(store, bundle_dir, tmp_path, run_cli):
    folder, bundle = bundle_dir
    # ann prefers book-model-2 on 4 of 6 pairs, ties once, prefers book-model-1 once
    wanted = ["book-model-2"] * 4 + [None, "book-model-1"]
    lines = []
    for pair, winner in zip(bundle.pairs, wanted):
        outcome = "tie" if winner is None else ("a" if pair.model_a == winner else "b")
        lines.append(line("ann", pair.pair_id, outcome))
    import_ratings(store, folder / "key.json", [write(tmp_path / "ratings-ann.jsonl", *lines)])
    # a judge-pairwise run over the same pairs (verdicts set by hand: book-model-2 always better)
    with store.start_run("judge-pairwise", "book-model-2", {"judge_model": "hand"}) as run:
        for pair in bundle.pairs:
            left, right = sorted([(pair.model_a, pair.response_a), (pair.model_b, pair.response_b)])
            run.add_sample(pair.item_id, {"instruction": pair.instruction, "input": pair.input,
                                          "generator_1": left[0], "output_1": left[1],
                                          "generator_2": right[0], "output_2": right[1], "preference": 2.0})
        judge_id = run.id
    rc, out, err = run_cli("arena", "--bootstrap", "50", "--format", "json", store=store.path)
    assert rc == 0, err
    rows = json.loads(out)
    assert [r["model"] for r in rows] == ["book-model-2", "book-model-1"]
    assert [set(r) for r in rows] == [{"model", "rating", "ci_low", "ci_high", "battles", "wins", "losses", "ties"}] * 2
    assert (rows[0]["battles"], rows[0]["wins"], rows[0]["losses"], rows[0]["ties"]) == (6, 4, 1, 1)
    assert (rows[0]["rating"] + rows[1]["rating"]) / 2 == pytest.approx(1000)
    # 4.5 of 6 points: P = 0.75 -> a gap of 400 log10(3)
    assert rows[0]["rating"] - rows[1]["rating"] == pytest.approx(400 * 0.47712125, abs=1e-3)
    (arena,) = store.list_runs(kind="arena")
    assert arena.metrics["bt_rating/book-model-2"].value == pytest.approx(rows[0]["rating"])
    assert arena.metrics["battles/book-model-1"].value == 6
    assert arena.metrics["bt_ci_low/book-model-2"].value == pytest.approx(rows[0]["ci_low"])
    assert arena.metrics["bt_ci_high/book-model-2"].value == pytest.approx(rows[0]["ci_high"])
    # the judge's verdicts as extra battles: 6 more, all won by book-model-2
    rc, out, err = run_cli("arena", "--bootstrap", "0", "--include-judge", judge_id, "--format", "json", store=store.path)
    rows = json.loads(out)
    assert (rows[0]["battles"], rows[0]["wins"]) == (12, 10)
    # judge-human agreement: the judge says book-model-2 on all 6; ann agrees on 4, ties on 1
    rc, out, err = run_cli("pairs", "agreement", "--format", "json", store=store.path)
    assert rc == 0, err
    report = json.loads(out)
    (judge,) = report["judge_human"]
    assert judge["n"] == 6 and judge["agreement"] == pytest.approx(4 / 6)
    assert judge["n_without_ties"] == 5 and judge["agreement_without_ties"] == pytest.approx(4 / 5)
    rc, out, err = run_cli("arena", "--bootstrap", "20", store=store.path)
    assert rc == 0 and "book-model-2" in out and "win rate of row over column" in out


def test_a_nan_in_a_ratings_line_is_refused_and_nothing_is_stored(store, bundle_dir, tmp_path):
    from evalkit.errors import EvalkitError

    folder, bundle = bundle_dir
    ids = [p.pair_id for p in bundle.pairs]
    ratings = tmp_path / "ratings-ann.jsonl"
    ratings.write_text(line("ann", ids[0], "a") + "\n" + line("ann", ids[1], "b").replace("3.5", "NaN") + "\n")
    before = store.list_runs(kind="human")
    # the records reader refuses it (file, line, field); the store's schema would refuse it too
    with pytest.raises(EvalkitError, match=r"ratings-ann.jsonl, field 'seconds': line 2: is nan"):
        import_ratings(store, folder / "key.json", [ratings])
    assert store.list_runs(kind="human") == before
