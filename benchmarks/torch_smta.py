"""An eager PyTorch SMTA(transformer) for `smta_train_step.py` (torch is imported only here).

The same function as ``PERRModel(fusion="smta", attention="transformer")`` written as a plain
PyTorch user would: ``nn.Linear`` per stream, ``nn.LSTM`` over ``f_t = sum_m f^m_t`` (the
attention never feeds back into that recurrence, so the first-stage LSTM runs over the whole
clip as one fused kernel), one ``nn.TransformerEncoderLayer`` over the ``M + 1`` tokens of
every step, one ``nn.LSTM`` per modality over ``g^m_t = [h~_t, Z'^m_t]``, ``nn.Linear`` heads,
and Eq. 5 (fused cross-entropy plus one per modality).

Differences in form, none in function:

* ``nn.LSTM`` has two biases; ``load_params`` puts ours in ``bias_ih`` and zeroes ``bias_hh``
  (so torch has ``6 * 4d`` more parameters, constant zeros in the loss comparison).
* Clips are padded at the end (``step_mask`` is a length prefix, checked); the LSTMs run over
  every step and ``h^m_T`` is read at each clip's last real step, which is the state ours
  carries through padding.
* The ``h~`` token is never masked as a key, so a padded step (no other key) does not make
  NaN; outputs of absent tokens and padded steps are zeroed after the layer, as ours are.
  Every step goes through the layer (as in ours), padded ones included.
* Torch's attention-weight dropout is switched off (ours has none); LayerNorm epsilon is
  flax's 1e-6.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


class TorchSMTA(nn.Module):
    """SMTA(transformer) + per-modality temporal LSTMs + heads, batch-first."""

    def __init__(self, input_dims: list[int], d: int, heads: int, classes: int,
                 dropout: float) -> None:
        super().__init__()
        m = len(input_dims)
        self.proj = nn.ModuleList(nn.Linear(k, d) for k in input_dims)
        self.lstm = nn.LSTM(d, d, batch_first=True)
        self.attn = nn.TransformerEncoderLayer(d, heads, 4 * d, dropout, batch_first=True,
                                               layer_norm_eps=1e-6)
        self.attn.self_attn.dropout = 0.0
        self.temporal = nn.ModuleList(nn.LSTM(2 * d, d, batch_first=True) for _ in range(m))
        self.head = nn.Linear(d, classes)
        self.modality_heads = nn.ModuleList(nn.Linear(d, classes) for _ in range(m))
        self.drop = nn.Dropout(dropout)

    def forward(self, streams: list[torch.Tensor], masks: torch.Tensor, lengths: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """``streams[m]`` [B, T, d_m], ``masks`` bool [B, T, M] (present and real) ->
        (logits [B, C], modality logits [B, M, C])."""
        f = torch.stack([p(x) for p, x in zip(self.proj, streams, strict=True)], 2)
        f = self.drop(f * masks[..., None])  # [B, T, M, d]; absent -> 0 after projection
        b, t, m, d = f.shape
        h, _ = self.lstm(f.sum(2))  # h~_t [B, T, d]
        z = torch.cat([f, h[:, :, None]], 2).reshape(b * t, m + 1, d)
        ignore = torch.cat([~masks, masks.new_zeros(b, t, 1)], 2).reshape(b * t, m + 1)
        z = self.attn(z, src_key_padding_mask=ignore).reshape(b, t, m + 1, d)[:, :, :m]
        g = torch.cat([h[:, :, None].expand(b, t, m, d), z * masks[..., None]], -1)
        last = torch.arange(b), lengths - 1
        h_last = torch.stack([lstm(g[:, :, i])[0][last] for i, lstm in
                              enumerate(self.temporal)], 1)  # h^m_T [B, M, d]
        h_last = self.drop(h_last)
        mod = torch.stack([fc(h_last[:, i]) for i, fc in enumerate(self.modality_heads)], 1)
        return self.head(h_last.sum(1)), mod


def eq5_loss(logits: torch.Tensor, modality_logits: torch.Tensor, labels: torch.Tensor
             ) -> torch.Tensor:
    """CE(fused) + sum_m CE(modality m), each a batch mean."""
    ce = nn.functional.cross_entropy
    return ce(logits, labels) + sum(ce(modality_logits[:, i], labels)
                                    for i in range(modality_logits.shape[1]))


def inputs(batch: dict, streams: tuple[str, ...]) -> tuple[list, torch.Tensor, torch.Tensor,
                                                             torch.Tensor]:
    """Our benchmark batch as (streams, present-and-real masks, lengths, labels) tensors."""
    step = np.asarray(batch["step_mask"])
    lengths = step.sum(1)
    if not (step == (np.arange(step.shape[1])[None] < lengths[:, None])).all():
        raise ValueError("step_mask must be a length prefix (padding at the end)")
    masks = np.stack([np.asarray(batch["masks"][s]) & step for s in streams], 2)
    xs = [torch.as_tensor(np.where(masks[..., i, None], batch["streams"][s], 0.0)
                          .astype(np.float32)) for i, s in enumerate(streams)]
    return (xs, torch.as_tensor(masks), torch.as_tensor(lengths, dtype=torch.long),
            torch.as_tensor(np.asarray(batch["labels"]), dtype=torch.long))


def _t(x) -> torch.Tensor:
    return torch.as_tensor(np.array(x, np.float32))


def _load_lstm(lstm: nn.LSTM, ih: dict, hh_kernel) -> None:
    lstm.weight_ih_l0.copy_(_t(ih["kernel"]).T)
    lstm.bias_ih_l0.copy_(_t(ih["bias"]))
    lstm.weight_hh_l0.copy_(_t(hh_kernel).T)
    lstm.bias_hh_l0.zero_()


@torch.no_grad()
def load_params(model: TorchSMTA, params: dict, streams: tuple[str, ...]) -> None:
    """Copies our ``PERRModel(fusion="smta", attention="transformer")`` parameters in."""
    for lin, s in zip(model.proj, streams, strict=True):
        lin.weight.copy_(_t(params[f"proj_{s}"]["kernel"]).T)
        lin.bias.copy_(_t(params[f"proj_{s}"]["bias"]))
    smta = params["smta"]
    _load_lstm(model.lstm, smta["lstm_ih"], smta["cell"]["lstm"]["hh"]["kernel"])
    a, layer = smta["cell"]["attn"], model.attn
    sa = a["self_attention"]
    layer.self_attn.in_proj_weight.copy_(
        torch.cat([_t(sa[k]["kernel"]).T for k in ("query", "key", "value")]))
    layer.self_attn.in_proj_bias.copy_(torch.cat([_t(sa[k]["bias"]) for k in
                                                  ("query", "key", "value")]))
    layer.self_attn.out_proj.weight.copy_(_t(sa["out"]["kernel"]).T)
    layer.self_attn.out_proj.bias.copy_(_t(sa["out"]["bias"]))
    for norm, name in ((layer.norm1, "norm1"), (layer.norm2, "norm2")):
        norm.weight.copy_(_t(a[name]["scale"]))
        norm.bias.copy_(_t(a[name]["bias"]))
    for lin, name in ((layer.linear1, "ffn_in"), (layer.linear2, "ffn_out")):
        lin.weight.copy_(_t(a[name]["kernel"]).T)
        lin.bias.copy_(_t(a[name]["bias"]))
    tp = params["temporal"]
    for i, lstm in enumerate(model.temporal):
        _load_lstm(lstm, {"kernel": tp["ih"]["kernel"][i], "bias": tp["ih"]["bias"][i]},
                   tp["cell"]["hh"]["kernel"][i])
    model.head.weight.copy_(_t(params["head"]["kernel"]).T)
    model.head.bias.copy_(_t(params["head"]["bias"]))
    for i, fc in enumerate(model.modality_heads):
        fc.weight.copy_(_t(params["modality_heads"]["kernel"][i]).T)
        fc.bias.copy_(_t(params["modality_heads"]["bias"][i]))


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
