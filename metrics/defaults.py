"""Every default of `trustbits.metrics`, in one place. The CLI and the search read these; they
never restate them.

Pure Python (no torch, no numpy) so `trustbits eval --help` can show them cheaply.
"""

from __future__ import annotations

# The perspectives a suite holds unless told otherwise (issue 3: the default suite).
PERSPECTIVES: tuple[str, ...] = ("adv", "ood", "ethics", "fairness")
# Which settings of each perspective a suite holds: "default" (the search's suite), "all"
# (adds the long few-shot OOD and fairness settings), or a list of glob patterns.
SETTINGS = "default"
# Seed of the per-setting example order that `limit`, `head` and `tail` cut from.
SUBSET_SEED = 0

# Scoring modes: "loglik" ranks the option words by log-likelihood (what the search uses);
# "generate" decodes greedily and parses the answer as DecodingTrust does (certification).
MODES: tuple[str, ...] = ("loglik", "generate")
MODE = "loglik"

# Batching of the scorer: at most this many rows per forward pass, and at most this many query
# tokens (rows x longest row) and cached prefix tokens (rows x prefix length) per pass. The
# prefix budget bounds the memory of the per-batch copy of the shared KV cache.
MAX_ROWS = 64
QUERY_TOKENS = {"cpu": 2048, "cuda": 16384}
PREFIX_TOKENS = {"cpu": 16384, "cuda": 524288}

# Bootstrap: replicates per interval, two-sided level, and the seed of the resampling.
BOOTSTRAP_SAMPLES = 1000
CONFIDENCE = 0.95
BOOTSTRAP_SEED = 0

# Version of the JSON layouts (records, scores, suites); bumped when a field changes meaning.
SCHEMA_VERSION = 1
