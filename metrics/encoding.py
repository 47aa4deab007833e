"""Tokenizing a setting's requests, exactly as lm-evaluation-harness splits context and answer.

Context = the chat template applied to the example's messages with the generation prompt
added; continuation = the option word exactly as listed. As in lm-eval's ``_encode_pair``, the
continuation's tokens are those of ``tokenize(context + option)`` past the context's tokens;
when appending the option changes how the context's end is tokenized (a merge across the
boundary), that option gets its own context (the joint tokenization's first tokens), so no
option is ever scored against tokens the model would not see.

Tokens (not text) decide the shared prefix: `shared_prefix_length` is the longest token prefix
common to every context of a batch of examples, so the prefix/suffix split always falls on a
token boundary of each example's full tokenization.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from trustbits.errors import TrustbitsError
from trustbits.metrics.prompts import as_chat
from trustbits.metrics.suite import Example, Setting, Suite


@dataclass(frozen=True)
class EncodedExample:
    """One example's tokens.

    Attributes:
        context: the context's token ids (what generate mode continues).
        rows: one (context ids, [(option index, continuation ids), ...]) per distinct
            context; a single row unless some option merges with the context's end.
    """

    context: tuple[int, ...]
    rows: tuple[tuple[tuple[int, ...], tuple[tuple[int, tuple[int, ...]], ...]], ...]


def tokenizer_key(tokenizer) -> tuple:
    """Identifies a tokenizer and its chat template (two copies of a model share the key)."""
    template = getattr(tokenizer, "chat_template", None) or ""
    return (type(tokenizer).__name__, getattr(tokenizer, "name_or_path", ""), len(tokenizer), hashlib.sha256(str(template).encode()).hexdigest())


def render_context(tokenizer, setting: Setting, example: Example) -> str:
    """The exact text the model is given (chat template, generation prompt added)."""
    return tokenizer.apply_chat_template(as_chat(setting.messages(example)), tokenize=False, add_generation_prompt=True)


def encode_setting(tokenizer, suite: Suite, setting: Setting, examples=None) -> list[EncodedExample]:
    """Encodings of `examples` (default: all of the setting's), cached on the suite."""
    examples = setting.examples if examples is None else examples
    cache = suite.token_cache.setdefault((tokenizer_key(tokenizer), setting.key, setting.shared), {})
    todo = [e for e in examples if e.example_id not in cache]
    if todo:
        for example, encoded in zip(todo, _encode(tokenizer, setting, todo)):
            cache[example.example_id] = encoded
    return [cache[e.example_id] for e in examples]


def _encode(tokenizer, setting: Setting, examples: list[Example]) -> list[EncodedExample]:
    options = setting.spec.options
    texts = [render_context(tokenizer, setting, e) for e in examples]
    contexts = tokenizer(texts, add_special_tokens=False)["input_ids"]
    wholes = tokenizer([t + o for t in texts for o in options], add_special_tokens=False)["input_ids"]
    encoded = []
    for i, (example, context) in enumerate(zip(examples, contexts)):
        by_context: dict[tuple[int, ...], list] = {}
        for j, option in enumerate(options):
            whole = wholes[i * len(options) + j]
            # lm-eval: the context is the joint tokenization's first len(context) tokens.
            option_context, continuation = tuple(whole[: len(context)]), tuple(whole[len(context) :])
            if not continuation:
                raise TrustbitsError(
                    f"option '{option}' of {setting.key} tokenizes to nothing after example {example.example_id}'s context",
                    "use option words that the tokenizer encodes",
                )
            by_context.setdefault(option_context, []).append((j, continuation))
        encoded.append(EncodedExample(tuple(context), tuple((c, tuple(opts)) for c, opts in by_context.items())))
    return encoded


def shared_prefix_length(sequences) -> int:
    """The longest token prefix common to all `sequences`, leaving each at least one token.

    At least one token must stay in every suffix: the scorer reads the next-token
    distribution at the last context token, so that token has to be run.
    """
    sequences = [list(s) for s in sequences]
    if not sequences:
        return 0
    first = sequences[0]
    length = min(len(s) for s in sequences) - 1
    for s in sequences[1:]:
        if s[:length] == first[:length]:
            continue
        # Binary search for the longest m with s[:m] == first[:m] (list slices compare in C).
        lo, hi = 0, length
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if s[:mid] == first[:mid]:
                lo = mid
            else:
                hi = mid - 1
        length = lo
    return max(length, 0)
