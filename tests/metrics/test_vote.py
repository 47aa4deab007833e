"""Precision-ensemble voting on hand-made records."""

from __future__ import annotations

import math

import pytest

from trustbits.errors import TrustbitsError
from trustbits.metrics import Record, aggregate, vote

KEY = ("adv", "mnli", "demo")


def member(*answers, logprobs=None) -> list[Record]:
    """Records of one member: answers[i] is a pred, or ("pred", "refused")."""
    out = []
    for i, answer in enumerate(answers):
        pred, refused = (answer, answer is None) if not isinstance(answer, tuple) else answer
        out.append(Record(*KEY, str(i), "yes", pred, dict(logprobs[i]) if logprobs else {}, None, refused))
    return out


def test_hard_vote_majority():
    votes = vote([member("yes", "no"), member("no", "no"), member("yes", "maybe")], [3, 4, 8])
    assert [r.pred for r in votes] == ["yes", "no"]


def test_hard_vote_tie_goes_to_the_highest_precision():
    # 1-1 tie between the 3-bit and the 8-bit member: the 8-bit answer wins, wherever it is listed.
    assert vote([member("no"), member("maybe")], [3, 8])[0].pred == "maybe"
    assert vote([member("maybe"), member("no")], [8, 3])[0].pred == "maybe"
    # The top-precision member refused: the tie among the others goes to the next precision.
    assert vote([member("no"), member("maybe"), member(None)], [3, 4, 8])[0].pred == "maybe"


def test_hard_vote_drops_refusals_and_invalid_answers():
    # Two members refuse, one answers: the answer wins over the majority of refusals.
    votes = vote([member(None), member(("no", True)), member("maybe")], [8, 4, 3])
    assert votes[0].pred == "maybe" and not votes[0].refused
    # Nobody answers validly: the highest-precision member's record stands (a refusal stays one).
    votes = vote([member(("4", True)), member(None)], [8, 3])
    assert votes[0].pred == "4" and votes[0].refused


def test_soft_vote_averages_option_probabilities():
    a = member("yes", logprobs=[{"yes": math.log(0.6), "maybe": math.log(0.1), "no": math.log(0.3)}])
    b = member("no", logprobs=[{"yes": math.log(0.1), "maybe": math.log(0.1), "no": math.log(0.8)}])
    c = member("yes", logprobs=[{"yes": math.log(0.5), "maybe": math.log(0.2), "no": math.log(0.3)}])
    soft = vote([a, b, c], [3, 4, 8], rule="soft")[0]
    hard = vote([a, b, c], [3, 4, 8], rule="hard")[0]
    assert hard.pred == "yes"  # two of three
    assert soft.pred == "no"  # mean p(no) = 1.4/3 > mean p(yes) = 1.2/3
    assert math.exp(soft.option_logprobs["no"]) == pytest.approx(1.4 / 3)
    # Unnormalized log-likelihoods are normalized per member first (softmax over options).
    shifted = member("no", logprobs=[{k: v - 7.0 for k, v in b[0].option_logprobs.items()}])
    assert vote([a, shifted, c], [3, 4, 8], rule="soft")[0].pred == "no"


def test_soft_vote_ties_go_to_the_first_option_and_refusals_carry():
    even = [{"0": math.log(0.5), "4": math.log(0.5)}]
    assert vote([member("0", logprobs=even), member("0", logprobs=even)], [4, 8], rule="soft")[0].pred == "0"
    idk = [{"0": math.log(0.2), "4": math.log(0.8)}]
    voted = vote([member(("4", True), logprobs=idk), member(("4", True), logprobs=idk)], [4, 8], rule="soft")[0]
    assert voted.pred == "4" and voted.refused


def test_voted_records_are_scored_like_any_other():
    members = [member("yes", "no", "yes"), member("yes", "yes", "no"), member("no", "no", "yes")]
    votes = vote(members, [3, 4, 8])
    assert [r.pred for r in votes] == ["yes", "no", "yes"]
    assert aggregate(votes, samples=0).perspectives["adv"].subscores["mnli"].value == pytest.approx(200 / 3)


def test_vote_errors():
    with pytest.raises(TrustbitsError, match="unknown voting rule 'majority'"):
        vote([member("yes")], [4], rule="majority")
    with pytest.raises(TrustbitsError, match="2 members but 1 precisions"):
        vote([member("yes"), member("no")], [4])
    with pytest.raises(TrustbitsError, match="did not score the same examples"):
        vote([member("yes", "no"), member("yes")], [4, 8])
    with pytest.raises(TrustbitsError, match="soft voting needs"):
        vote([member("yes"), member("no")], [4, 8], rule="soft")
    with pytest.raises(TrustbitsError, match="at least one member"):
        vote([], [])
