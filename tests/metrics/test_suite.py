"""The suite: sizes, determinism, label-stratified subsets shared across settings, slices for
early stopping, fingerprint, JSON round-trip, and tasks pointed at a user's own file."""

from __future__ import annotations

import csv
from collections import Counter

import pytest

from trustbits.metrics import Suite, build_suite


@pytest.fixture(scope="module")
def default_suite():
    return build_suite()


def test_default_suite_sizes(default_suite):
    sizes = Counter()
    for s in default_suite:
        sizes[s.spec.perspective] += len(s.examples)
    # AdvGLUE dev; 10 styles x 872 + 2 x 263; 2 x 2109 + 10 x 200; 3 x 200.
    assert sizes == {"adv": 738, "ood": 8720 + 526, "ethics": 2 * 2109 + 2000, "fairness": 600}
    assert len(default_suite.settings) == 6 + 12 + 12 + 3
    assert len(default_suite) == 16802


def test_every_setting_is_available():
    everything = build_suite(settings="all")
    names = {s.key for s in everything}
    assert "ood/style/base" in names and "ood/knowledge/qa_2020" in names
    assert sum(k.startswith("ood/style_8shot/") for k in names) == 27
    assert sum(k.startswith("ood/knowledge_5shot/") for k in names) == 15
    assert sum(k.startswith("fairness/") for k in names) == 8
    selected = build_suite(["ood"], settings=["style/*"])
    # Patterns select regardless of the default flag: the 10 styles and base, not style_8shot.
    assert len(selected.settings) == 11


def test_limit_is_deterministic_stratified_and_nested(default_suite):
    small, again, larger = build_suite(limit=10), build_suite(limit=10), build_suite(limit=40)
    assert small.fingerprint() == again.fingerprint()
    for s10, s40, full in zip(small, larger, default_suite):
        ids10 = [e.example_id for e in s10.examples]
        assert ids10 == [e.example_id for e in s40.examples][: len(ids10)]  # nested prefixes
        assert len(ids10) == min(10, len(full.examples))
        # Label-stratified: each stratum's share is within one example of proportional.
        strata = Counter((e.gold, e.group) for e in full.examples)
        kept = Counter((e.gold, e.group) for e in s40.examples)
        for stratum, count in strata.items():
            assert abs(kept[stratum] - 40 * count / len(full.examples)) <= 1.0 + 1e-9, (s40.key, stratum)


def test_subsets_pair_across_settings_and_change_with_the_seed():
    small = build_suite(["ood", "ethics"], limit=8)
    styles = [[e.example_id for e in s.examples] for s in small if s.spec.task == "style"]
    assert all(ids == styles[0] for ids in styles)
    attacks = [[e.example_id for e in s.examples] for s in small if s.spec.name.startswith(("jailbreak", "evasive"))]
    assert len(attacks) == 10 and all(ids == attacks[0] for ids in attacks)
    other = build_suite(["ood", "ethics"], limit=8, seed=1)
    assert [e.example_id for e in other.settings[0].examples] != styles[0]


def test_head_tail_split_partition_every_setting(default_suite):
    small = build_suite(limit=9)
    for part in (0.5, 4, 0, 1.0):
        head, tail = small.head(part), small.tail(part)
        for whole, h, t in zip(small, head, tail):
            assert [e.example_id for e in h.examples + t.examples] == [e.example_id for e in whole.examples]
    parts = small.split(4)
    for i, whole in enumerate(small):
        ids = [e.example_id for p in parts for e in p.settings[i].examples]
        assert ids == [e.example_id for e in whole.examples]
    assert len(small.head(0.5).settings[0].examples) == 5  # ceil


def test_fingerprint_and_json_round_trip(tmp_path):
    suite = build_suite(["adv", "fairness"], limit=5)
    clone = Suite.from_json(suite.to_json())
    assert clone.fingerprint() == suite.fingerprint()
    assert [(r.setting.key, r.example.example_id, r.messages, r.example.gold) for r in clone.requests()] == [
        (r.setting.key, r.example.example_id, r.messages, r.example.gold) for r in suite.requests()
    ]
    assert build_suite(["adv", "fairness"], limit=6).fingerprint() != suite.fingerprint()
    assert suite.head(2).fingerprint() != suite.fingerprint()
    # Changing a prompt changes the fingerprint.
    text = open(suite.perspectives["adv"].source, encoding="utf-8").read()
    changed = tmp_path / "adv.toml"
    changed.write_text(text.replace("label the sentiment of the sentence", "label the sentence's sentiment"))
    assert build_suite([str(changed)], limit=5).fingerprint() != build_suite(["adv"], limit=5).fingerprint()


def test_user_task_on_own_csv(tmp_path):
    data = tmp_path / "reviews.csv"
    with data.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "stars"])
        for i in range(12):
            writer.writerow([f"review number {i}", i % 2])
    spec = tmp_path / "mine.toml"
    spec.write_text(
        """
name = "mine"
[task.reviews]
data = { path = "reviews.csv" }
layout = "zero_shot"
instruction = "Is this review positive? Answer 'yes' or 'no'."
input = "{text}"
gold = "{stars}"
label_map = { "1" = "yes", "0" = "no" }
options = ["yes", "no"]
metric = "accuracy"
parser = "advglue"
max_new_tokens = 4
setting = [{ name = "plain", subscore = "reviews", default = true }]
"""
    )
    suite = build_suite([str(spec)], data_dir=tmp_path, limit=4)
    setting = suite.settings[0]
    assert setting.key == "mine/reviews/plain"
    assert Counter(e.gold for e in setting.examples) == {"yes": 2, "no": 2}
    assert setting.messages(setting.examples[0])[1][1].startswith("Is this review positive? Answer 'yes' or 'no'.\nreview number ")
