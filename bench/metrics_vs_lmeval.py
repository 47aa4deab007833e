"""trustbits' label log-likelihood scorer vs lm-evaluation-harness, side by side, in one run.

The same requests (every option of every example of a `--limit`-per-setting slice of the
default suite: chat-templated context, option word as continuation) go through
lm-evaluation-harness's `HFLM.loglikelihood` and through `trustbits.metrics.score`, on the
same already-loaded model object (no download), with the same batch size and thread count.
Runs alternate (lm-eval, trustbits, lm-eval, trustbits, ...) so machine noise hits both; the
best time of each side is compared. Reported: seconds, the ratio, and argmax agreement (the
option each side ranks first, per example). lm-eval moves the context's trailing newline
into the continuation, which adds the same log p("\\n") to every option of an example and so
cannot change its argmax.

`--suite-limit` then times the whole default suite with trustbits alone: each setting is
scored on at most that many examples, and when that is fewer than the setting holds, the
setting's full time is extrapolated linearly (printed as such).

    .venv/bin/python bench/metrics_vs_lmeval.py --limit 8 --suite-limit 40

Needs `pip install lm-eval` (the `bench` extra). Goal (issue 3): trustbits >= 3x faster,
argmax agreement >= 99.5%.
"""

from __future__ import annotations

import argparse
import logging
import time

import trustbits  # noqa: F401  (first: keeps the checkout's kernels/ from shadowing HF's)


def lmeval_requests(suite, tokenizer):
    """(Instance list, owner per instance) for every option of every example."""
    from lm_eval.api.instance import Instance

    from trustbits.metrics.encoding import render_context

    instances, owners = [], []
    for e, request in enumerate(suite.requests()):
        context = render_context(tokenizer, request.setting, request.example)
        for j, option in enumerate(request.options):
            instances.append(Instance(request_type="loglikelihood", doc={}, arguments=(context, option), idx=j))
            owners.append((e, option))
    return instances, owners


def run_lmeval(lm, instances, owners, n_examples):
    start = time.perf_counter()
    results = lm.loglikelihood(instances, disable_tqdm=True)
    seconds = time.perf_counter() - start
    per_example = [dict() for _ in range(n_examples)]
    for (e, option), (logprob, _greedy) in zip(owners, results):
        per_example[e][option] = logprob
    return seconds, per_example


def run_trustbits(model, tokenizer, build, batch_size):
    from trustbits.metrics import score

    suite = build()  # fresh: tokenization is timed, as it is for lm-eval
    start = time.perf_counter()
    records = score(model, tokenizer, suite, batch_size=batch_size)
    return time.perf_counter() - start, records


def argmax(logprobs: dict[str, float], options) -> str:
    return max(options, key=lambda o: logprobs[o])  # ties: first option, as trustbits


def compare(args) -> None:
    import torch
    from lm_eval.models.huggingface import HFLM

    from trustbits.metrics import build_suite
    from trustbits.quant.loading import load_model

    if args.threads:
        torch.set_num_threads(args.threads)
    loaded = load_model(args.model)
    model, tokenizer = loaded.model, loaded.tokenizer

    def build():
        return build_suite(args.perspectives.split(","), limit=args.limit)

    suite = build()
    instances, owners = lmeval_requests(suite, tokenizer)
    lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=args.batch_size, max_length=args.max_length)
    print(f"model {loaded.name} on {loaded.device} {loaded.dtype}, torch threads {torch.get_num_threads()}, batch size {args.batch_size}")
    print(f"requests: {len(suite)} examples in {len(suite.settings)} settings, {len(instances)} (context, option) pairs")

    lm_times, tb_times = [], []
    for repeat in range(args.repeats):
        seconds, lm_scores = run_lmeval(lm, instances, owners, len(suite))
        lm_times.append(seconds)
        seconds, records = run_trustbits(model, tokenizer, build, args.batch_size)
        tb_times.append(seconds)
        print(f"  run {repeat + 1}: lm-eval {lm_times[-1]:.1f} s, trustbits {tb_times[-1]:.1f} s")

    agree, gaps, by_setting = 0, [], {}
    for e, (request, record) in enumerate(zip(suite.requests(), records)):
        same = argmax(lm_scores[e], request.options) == record.pred
        agree += same
        by_setting.setdefault(request.setting.key, []).append(same)
        # The difference of two options' log-likelihoods is what the argmax reads.
        first = request.options[0]
        for option in request.options[1:]:
            ours = record.option_logprobs[option] - record.option_logprobs[first]
            theirs = lm_scores[e][option] - lm_scores[e][first]
            gaps.append(abs(ours - theirs))
    best_lm, best_tb = min(lm_times), min(tb_times)
    print(f"lm-eval HFLM.loglikelihood: {best_lm:.2f} s (best of {args.repeats})")
    print(f"trustbits score():          {best_tb:.2f} s (best of {args.repeats})")
    print(f"speed-up: {best_lm / best_tb:.2f}x (goal >= 3x)")
    print(f"argmax agreement: {agree}/{len(suite)} = {100 * agree / len(suite):.2f}% (goal >= 99.5%)")
    print(f"largest |difference| of option log-likelihood gaps: {max(gaps):.2e}")
    for key, flags in by_setting.items():
        if not all(flags):
            print(f"  disagreements in {key}: {flags.count(False)}/{len(flags)}")


def time_suite(args) -> None:
    import torch

    from trustbits.metrics import build_suite, score
    from trustbits.quant.loading import load_model

    if args.threads:
        torch.set_num_threads(args.threads)
    loaded = load_model(args.model)
    full = build_suite()
    sizes = {s.key: len(s.examples) for s in full}
    part = build_suite(limit=args.suite_limit) if args.suite_limit else full
    measured = extrapolated = 0.0
    start = time.perf_counter()
    for setting_suite in (part.select(perspective=p, task=t) for p, t in dict.fromkeys((s.spec.perspective, s.spec.task) for s in part)):
        for setting in setting_suite:
            one = setting_suite._derived([setting])
            t0 = time.perf_counter()
            score(loaded.model, loaded.tokenizer, one, batch_size=args.batch_size)
            seconds = time.perf_counter() - t0
            measured += seconds
            extrapolated += seconds * sizes[setting.key] / len(setting.examples)
    wall = time.perf_counter() - start
    print(f"default suite ({len(full)} examples, {len(full.settings)} settings), torch threads {torch.get_num_threads()}:")
    if args.suite_limit and len(part) < len(full):
        print(f"  measured {measured:.1f} s on {len(part)} examples (<= {args.suite_limit} per setting; wall {wall:.1f} s)")
        print(f"  whole suite extrapolated linearly per setting: {extrapolated:.0f} s = {extrapolated / 60:.1f} min (an estimate, not a measurement)")
    else:
        print(f"  measured {measured:.1f} s = {measured / 60:.1f} min (wall {wall:.1f} s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="builtin:smollm2-135m-instruct")
    parser.add_argument("--perspectives", default="adv,ood,ethics,fairness")
    parser.add_argument("--limit", type=int, default=8, help="examples per setting in the side-by-side comparison")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-length", type=int, default=2048, help="lm-eval's context window (SmolLM2: 8192)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--suite-limit", type=int, default=None, help="examples per setting when timing the whole suite (0: skip)")
    parser.add_argument("--skip-compare", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if not args.skip_compare:
        compare(args)
    if args.suite_limit != 0:
        time_suite(args)


if __name__ == "__main__":
    main()
