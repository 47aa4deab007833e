"""Fixtures shared by every test package.

Tests need no downloaded weights: `tiny_model` is a 2-layer `LlamaForCausalLM` built from a
`LlamaConfig` with a fixed seed, and `tiny_tokenizer` a byte-level BPE trained in-process on a
few sentences, with a ChatML template like SmolLM2's. Tests marked `slow` use the real
embedded model (`builtin:smollm2-135m-instruct`), loaded once per session.

Every test gets its own empty `TRUSTBITS_CACHE`, so no test reads what another wrote; the
embedded model's dequantized weights are the one exception (shared per session, they take
20 s to rebuild).
"""

from __future__ import annotations

import os

import pytest

# Before anything imports transformers: drops the checkout root from sys.path, where our
# `kernels/` folder would shadow Hugging Face's `kernels` package (see trustbits/__init__).
import trustbits  # noqa: F401

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a tiny test model.<|im_end|>\n' }}{% endif %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

_CORPUS = [
    "For the given sentence, label the sentiment of the sentence as positive or negative.",
    "Please identify whether the premise entails the hypothesis. The answer should be exactly 'yes', 'maybe' or 'no'.",
    "Please answer with 'wrong' or 'not wrong'. Reaction: This is wrong. This is not wrong.",
    "For each snippet of text, predict whether the person described has an annual income greater than $50k.",
    "Please answer the following multiple choice question. The answer should be exact '0', '1', '2', or '3'.",
    "You are a helpful assistant. Sure, I'd be happy to! I don't know. Today is 2023/01/01.",
    "question1: question2: sentence: premise: hypothesis: Hypothesis: description: age workclass sex Male Female",
]


def make_tiny_tokenizer():
    """A byte-level BPE tokenizer (about 400 tokens) with ChatML special tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(_CORPUS * 4, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<|im_start|>",
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token="<|endoftext|>",
    )
    fast.chat_template = CHATML_TEMPLATE
    return fast


def make_tiny_model(vocab_size: int, *, seed: int = 0, layers: int = 2, hidden: int = 64, tie: bool = True):
    """A random `LlamaForCausalLM` small enough to run in milliseconds."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=hidden,
        intermediate_size=2 * hidden + 64,  # 192 for hidden 64: not a multiple of 128, like SmolLM2's 576
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        tie_word_embeddings=tie,
        pad_token_id=0,
    )
    model = LlamaForCausalLM(config).eval()
    model.requires_grad_(False)
    return model


@pytest.fixture(scope="session")
def shared_cache_root(tmp_path_factory) -> str:
    """The cache slow tests share (set TRUSTBITS_TEST_SHARED_CACHE to keep it across runs)."""
    return os.environ.get("TRUSTBITS_TEST_SHARED_CACHE") or str(tmp_path_factory.mktemp("shared-cache"))


def share_kernel_timings(root: str, shared_cache_root: str) -> None:
    """Point `root`'s kernel timing tables at the session's shared ones."""
    shared_kernels = os.path.join(shared_cache_root, "kernels")
    os.makedirs(shared_kernels, exist_ok=True)
    os.makedirs(root, exist_ok=True)
    os.symlink(shared_kernels, os.path.join(root, "kernels"))


@pytest.fixture(scope="session")
def link_kernel_timings(shared_cache_root):
    """A function that points a cache root's kernel timings at the session's shared ones."""
    return lambda root: share_kernel_timings(str(root), shared_cache_root)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch, request, shared_cache_root):
    """Each test gets a fresh cache; slow tests share one so the embedded model loads once.

    Kernel timing tables are the exception outside tests/kernels: measuring them takes about
    half a second per (shape, bits, kernel) case, so every other test shares the session's
    (they only decide which kernel runs, never a result beyond the kernels' tolerance)."""
    if request.node.get_closest_marker("slow"):
        root = shared_cache_root
    else:
        root = str(tmp_path_factory.mktemp("cache"))
        if "tests/kernels/" not in str(request.node.fspath).replace(os.sep, "/"):
            share_kernel_timings(root, shared_cache_root)
    monkeypatch.setenv("TRUSTBITS_CACHE", root)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def tiny_tokenizer():
    return make_tiny_tokenizer()


@pytest.fixture
def tiny_model(tiny_tokenizer):
    return make_tiny_model(len(tiny_tokenizer))


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, tiny_tokenizer):
    """The tiny model and tokenizer saved as a Hugging Face directory."""
    path = tmp_path_factory.mktemp("tiny-llama")
    make_tiny_model(len(tiny_tokenizer)).save_pretrained(path)
    tiny_tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def smollm2(shared_cache_root):
    """The real embedded model (slow tests only), loaded once per session into the shared cache
    (session fixtures are set up before the per-test cache fixture, so set it here too)."""
    from trustbits.quant.loading import load_model

    mp = pytest.MonkeyPatch()
    mp.setenv("TRUSTBITS_CACHE", shared_cache_root)
    try:
        return load_model("builtin:smollm2-135m-instruct")
    finally:
        mp.undo()


@pytest.fixture(scope="session")
def postgres_url():
    """A PostgreSQL server for multi-machine tests (`.ci/run` starts one from Debian's
    packages and sets TRUSTBITS_TEST_POSTGRES_URL). Outside CI, tests skip without it; in CI
    (CI=true) a missing server is a failure, never a silent skip."""
    url = os.environ.get("TRUSTBITS_TEST_POSTGRES_URL")
    if not url:
        if os.environ.get("CI"):
            pytest.fail("TRUSTBITS_TEST_POSTGRES_URL is not set in CI: .ci/run must start PostgreSQL")
        pytest.skip("no PostgreSQL server (set TRUSTBITS_TEST_POSTGRES_URL)")
    return url


def pytest_collection_modifyitems(config, items):
    import torch

    if not torch.cuda.is_available():
        skip = pytest.mark.skip(reason="needs a CUDA GPU")
        for item in items:
            if "gpu" in item.keywords:
                item.add_marker(skip)
