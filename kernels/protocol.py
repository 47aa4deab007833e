"""The latency protocol's defaults, in one torch-free place (the CLI reads them at import).

Decode is timed at batch 1 after a prefill of PROMPT_LEN tokens, over DECODE_TOKENS steps;
each figure is the median of REPEATS timed rounds after WARMUP untimed ones (see measure.py).
"""

PROMPT_LEN = 128
DECODE_TOKENS = 16
REPEATS = 5
WARMUP = 1
