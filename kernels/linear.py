"""`QuantLinear`: an nn.Linear replacement that holds a `QTensor` and runs it through the
fastest measured kernel for the number of rows it is given.

Contract used by `trustbits.quant` (keep it stable):

    layer = QuantLinear(qtensor, bias=None, compute_dtype=torch.float32)
    y = layer(x)            # x [..., in] -> y [..., out], like nn.Linear
    layer.qtensor           # the QTensor it was built from (for saving and footprints)
    layer.kernel_name       # the kernel that ran the last call (before any call: the one
                            # decode would use), e.g. "cpu-lowbit" or "dequant-cached"
    layer.kernel_names      # regime bucket -> kernel, for every bucket it has run in

Construction only stores the QTensor: kernels lay out their weights on the first call that
picks them (`trustbits.kernels.dispatch`), so the search can assemble plans cheaply. A layer
that runs both decode (1 row) and evaluation (many rows) holds both layouts, e.g. packed
codes for the low-bit kernel and a dequantized float weight for the dense matmul.

`QuantEmbedding` lets a tied embedding share its quantized head: it looks rows up in the same
QTensor, so a tied head quantized once is stored once.
"""

from __future__ import annotations

import torch
from torch import nn

from trustbits.kernels.dispatch import _EXACT
from trustbits.kernels.qtensor import QTensor


class QuantLinear(nn.Module):
    """Linear layer over a quantized weight, dispatched per call regime (see the module doc)."""

    def __init__(self, qtensor: QTensor, bias: torch.Tensor | None = None, compute_dtype: torch.dtype = torch.float32):
        super().__init__()
        self.qtensor = qtensor
        self.out_features, self.in_features = qtensor.shape
        self.compute_dtype = compute_dtype
        self.bias = nn.Parameter(bias.detach().to(compute_dtype), requires_grad=False) if bias is not None else None
        self._choice: dict[tuple[str, int], object] = {}  # (device, bucket) -> Kernel
        self._states: dict[tuple[str, str], object] = {}  # (kernel name, device) -> KernelState
        # (device, rows) -> (kernel, state): the per-call fast path. A decode step calls ~200
        # of these layers, so Python overhead per call is latency (~20 us each here).
        self._fast: dict[tuple[torch.device, int], tuple[object, object]] = {}
        self._last_kernel: str | None = None

    # ---- dispatch -----------------------------------------------------------------------

    def kernel_for(self, rows: int, device: torch.device | str | None = None):
        """The kernel a call with `rows` activation rows runs on `device` (measured and cached
        on first use; see `trustbits.kernels.dispatch`)."""
        from trustbits.kernels.dispatch import bucket_for, choose

        device = torch.device(device or self.qtensor.codes.device)
        exact = _EXACT.get()
        key = (str(device), bucket_for(rows), exact)
        if key not in self._choice:
            q = self.qtensor
            self._choice[key] = choose(q.bits, q.group_size, q.shape, device, self.compute_dtype, rows, exact=exact)
        return self._choice[key]

    def use_kernel(self, name: str | None) -> None:
        """Pin one kernel for every call (benchmarks and tests), or None to dispatch again.

        Raises:
            ValueError: the kernel does not exist or cannot run this weight.
        """
        from trustbits.kernels.dispatch import BUCKETS, kernel_by_name

        self._choice.clear()
        self._fast.clear()
        if name is None:
            return
        kernel = kernel_by_name(name)
        q, device = self.qtensor, self.qtensor.codes.device
        reason = kernel.unsupported(q.bits, q.group_size, q.shape, device, self.compute_dtype)
        if reason:
            raise ValueError(f"kernel {name} cannot run this {q.bits}-bit weight: {reason}")
        for b in BUCKETS:
            for exact in (False, True):  # a pin holds in scoring too
                self._choice[(str(device), b, exact)] = kernel

    def _state(self, kernel, device: torch.device):
        key = (kernel.name, str(device))
        if key not in self._states:
            self._states[key] = kernel.prepare(self.qtensor, device, self.compute_dtype)
        return self._states[key]

    @property
    def kernel_name(self) -> str:
        return self._last_kernel or self.kernel_for(1).name

    @property
    def kernel_names(self) -> dict[int, str]:
        return {bucket: k.name for (_, bucket, _exact), k in sorted(self._choice.items(), key=lambda kv: (kv[0][1], kv[0][2]))}

    # ---- nn.Module ----------------------------------------------------------------------

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x2 = x.reshape(-1, self.in_features)
        if x2.dtype != self.compute_dtype:
            x2 = x2.to(self.compute_dtype)
        key = (x.device, x2.shape[0], _EXACT.get())
        hit = self._fast.get(key)
        if hit is None:
            kernel = self.kernel_for(x2.shape[0], x.device)
            hit = self._fast[key] = (kernel, self._state(kernel, x.device))
            self._last_kernel = kernel.name
        kernel, state = hit
        bias = self.bias
        if bias is not None and bias.device != x.device:
            bias = bias.to(x.device)
        y = kernel.run(state, x2, bias)
        if self._last_kernel is not kernel.name:
            self._last_kernel = kernel.name
        return y.view(*x.shape[:-1], self.out_features)

    def extra_repr(self) -> str:
        q = self.qtensor
        ran = ", ".join(f"{b}:{n}" for b, n in self.kernel_names.items()) or "not run yet"
        return f"in={self.in_features}, out={self.out_features}, bits={q.bits}, group={q.group_size}, kernels=({ran})"


class QuantEmbedding(nn.Module):
    """Embedding whose table is a QTensor [vocab, dim] (shared with a tied quantized head)."""

    def __init__(self, qtensor: QTensor, compute_dtype: torch.dtype = torch.float32, padding_idx: int | None = None):
        super().__init__()
        self.qtensor = qtensor
        self.num_embeddings, self.embedding_dim = qtensor.shape
        self.padding_idx = padding_idx
        self.compute_dtype = compute_dtype

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        # Dequantize only the rows looked up: ids [...] -> [..., dim].
        q = self.qtensor
        flat = ids.reshape(-1)
        codes = q.codes[flat].to(torch.float32)  # [n, dim]
        col_group = torch.arange(self.embedding_dim, device=codes.device) // q.group_size
        scale = q.scale[flat][:, col_group].to(torch.float32)
        zero = q.zero[flat][:, col_group].to(torch.float32)
        rows = (codes - zero) * scale
        return rows.to(self.compute_dtype).view(*ids.shape, self.embedding_dim)
