"""`score`: run a model over a suite and return one `Record` per example.

Per setting: tokenize every request (cached on the suite per tokenizer), find the token prefix
all its examples share, run that prefix once (`PrefixKV`), then run only the suffixes, batched
by length. In loglik mode every option of an example is scored in the same row (see
`trustbits.metrics.forward`); in generate mode the suffixes are decoded greedily and parsed as
DecodingTrust does.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import torch

from trustbits.errors import TrustbitsError, did_you_mean
from trustbits.metrics import defaults
from trustbits.metrics.encoding import encode_setting, shared_prefix_length
from trustbits.metrics.forward import PrefixKV, check_model, model_device, plan_batches, score_rows, tree_row
from trustbits.metrics.generate import greedy_rows, stop_token_ids
from trustbits.metrics.parsing import parse
from trustbits.metrics.records import Record
from trustbits.metrics.suite import Setting, Suite

log = logging.getLogger(__name__)
Progress = Callable[[int, int], None]


def score(model, tokenizer, suite: Suite, *, mode: str = defaults.MODE, batch_size: int | None = None, progress: Progress | None = None) -> list[Record]:
    """Score every example of `suite`; records come back in suite order.

    Args:
        model: a causal LM (transformers), quantized or not; used in inference mode only.
        tokenizer: its tokenizer, with a chat template.
        suite: from `build_suite` (or a slice of one).
        mode: ``"loglik"`` (rank the option words by log-likelihood) or ``"generate"``
            (greedy decoding, DecodingTrust's parsing).
        batch_size: at most this many rows per forward pass (default: `defaults.MAX_ROWS`,
            further bounded by the token budgets).
        progress: called as ``progress(done, total)`` (examples) after every batch.

    Raises:
        TrustbitsError: unknown mode, bad batch size, or a model whose attention takes no
            custom mask.
    """
    if mode not in defaults.MODES:
        raise TrustbitsError(f"unknown scoring mode '{mode}'", did_you_mean(mode, defaults.MODES))
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1):
        raise TrustbitsError(f"batch_size must be a positive integer, not {batch_size!r}", "pass e.g. 16, or None for the default")
    check_model(model)
    budgets = _budgets(model, batch_size)
    total, done = len(suite), 0
    records: list[Record] = []

    def advance(count: int) -> None:
        nonlocal done
        done += count
        if progress:
            progress(done, total)

    with torch.inference_mode():
        for setting in suite:
            if not setting.examples:
                continue
            if mode == "loglik":
                records += _score_setting(model, tokenizer, suite, setting, budgets, advance)
            else:
                records += _generate_setting(model, tokenizer, suite, setting, budgets, advance)
    return records


def _budgets(model, batch_size: int | None) -> dict:
    kind = "cuda" if model_device(model).type == "cuda" else "cpu"
    return {
        "max_rows": batch_size or defaults.MAX_ROWS,
        "query_tokens": defaults.QUERY_TOKENS[kind],
        "prefix_tokens": defaults.PREFIX_TOKENS[kind],
    }


def _score_setting(model, tokenizer, suite: Suite, setting: Setting, budgets: dict, advance) -> list[Record]:
    spec = setting.spec
    encoded = encode_setting(tokenizer, suite, setting)
    # The prefix must be shared by every row's context (one per example, more on a merge).
    prefix_len = shared_prefix_length(context for e in encoded for context, _ in e.rows)
    prefix = PrefixKV(model, list(encoded[0].rows[0][0][:prefix_len]))
    rows, owners = [], []  # owners[r] = (example index, [option indices of row r])
    for i, example in enumerate(encoded):
        for context, options in example.rows:
            rows.append(tree_row(list(context[prefix_len:]), [list(cont) for _, cont in options]))
            owners.append((i, [j for j, _ in options]))
    logprobs: list[dict[str, float]] = [{} for _ in encoded]
    remaining = {i: len(e.rows) for i, e in enumerate(encoded)}
    for batch in plan_batches([len(r.tokens) for r in rows], prefix.length, **budgets):
        sums = score_rows(model, prefix, [rows[r] for r in batch])
        finished = 0
        for r, row_sums in zip(batch, sums):
            i, option_indices = owners[r]
            for j, value in zip(option_indices, row_sums):
                logprobs[i][spec.options[j]] = value
            remaining[i] -= 1
            finished += remaining[i] == 0
        advance(finished)
    log.debug("%s: %d examples, prefix %d tokens, %d rows", spec.key, len(encoded), prefix.length, len(rows))
    return [_loglik_record(setting, example, logprobs[i]) for i, example in enumerate(setting.examples)]


def _loglik_record(setting: Setting, example, option_logprobs: dict[str, float]) -> Record:
    spec = setting.spec
    ordered = {option: option_logprobs[option] for option in spec.options}
    # argmax; ties go to the first option (max keeps the first maximum).
    pred = max(spec.options, key=lambda o: ordered[o])
    return Record(
        perspective=spec.perspective,
        task=spec.task,
        setting=spec.name,
        example_id=example.example_id,
        gold=example.gold,
        pred=pred,
        option_logprobs=ordered,
        group=example.group,
        refused=pred == spec.refusal_option,
    )


def _generate_setting(model, tokenizer, suite: Suite, setting: Setting, budgets: dict, advance) -> list[Record]:
    spec = setting.spec
    encoded = encode_setting(tokenizer, suite, setting)
    contexts = [list(e.context) for e in encoded]
    prefix_len = shared_prefix_length(contexts)
    prefix = PrefixKV(model, contexts[0][:prefix_len])
    suffixes = [c[prefix_len:] for c in contexts]
    stops = stop_token_ids(model, tokenizer)
    responses: list[str] = [""] * len(contexts)
    # Generation grows every row by max_new_tokens: budget for it.
    lengths = [len(s) + spec.max_new_tokens for s in suffixes]
    for batch in plan_batches(lengths, prefix.length, **budgets):
        outputs = greedy_rows(model, prefix, [suffixes[i] for i in batch], spec.max_new_tokens, stops)
        for i, tokens in zip(batch, outputs):
            responses[i] = tokenizer.decode(tokens, skip_special_tokens=True)
        advance(len(batch))
    records = []
    for example, response in zip(setting.examples, responses):
        pred, refused = parse(spec, response, example_id=example.example_id, gold_text=example.gold_text, gold=example.gold)
        records.append(
            Record(
                perspective=spec.perspective,
                task=spec.task,
                setting=spec.name,
                example_id=example.example_id,
                gold=example.gold,
                pred=pred,
                option_logprobs={},
                group=example.group,
                refused=refused,
                response=response,
            )
        )
    return records
