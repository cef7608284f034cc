"""``res_bilstm``: Deep Residual Bidir-LSTM (Zhao, Yang, Chevalier, Gong 2017).

``n_stacked`` blocks of ``n_residual`` (bi)directional LSTM cells; the last time step is classified.
Best published: "3x3", lr 0.001, L2 0.005 (UCI HAR 94% at the best epoch, 91% final; Opportunity F1 0.893).

Two readings of the architecture, both selectable:

- the authors' code (``lstm_architecture.py`` of HAR-stacked-residual-bidir-LSTMs; presets ``1x1``,
  ``2x2``, ``3x3``): ``cell="split"``: each direction has its own ReLU dense projection of the cell's
  input to ``hidden / 2`` features and an LSTM of ``hidden / 2`` units, the directions' outputs are
  concatenated (``hidden`` features); ``residual="parallel"``: a block's ``n_residual`` cells all read
  the block's input and their outputs are summed; ``norm="time"``: after each block, every time step
  is normalised over the batch and the features, with one learned gain (initially 0.5) and shift;
  dropout 0.15 on the input and before the classifier, a ReLU on the logits (their ``relu_fc``), dense
  layers initialised N(0, 0.2) with biases N(0.3, 0.2), LSTM forget bias 1 (``init="reference"``);
  L2 on weights, not biases (``l2_skip_biases`` in the preset's training settings).
  Where this departs from that code: the per-time-step statistics are running averages at evaluation
  (the code normalised each evaluation batch by its own statistics), the LSTM weights keep PyTorch's
  initialisation, and the code's replay of the 5 worst batches after each epoch is not done.
- the README's description (preset ``3x3_readme``, the builder's defaults): ``cell="reduce"``: one
  bidirectional LSTM of ``hidden`` units per direction, concatenation reduced by a ReLU dense layer;
  ``residual="chain"``: each cell after the first adds its output to its input; a ReLU projection feeds
  the first block; ``norm="batch"``: BatchNorm per feature between blocks.
"""

from __future__ import annotations

import torch
from torch import nn

from har.errors import BadInput
from har.models.registry import Preset, register

SOURCE = (
    "Zhao, Yang, Chevalier, Gong 2017, arXiv:1708.08989; HAR-stacked-residual-bidir-LSTMs README and code"
)
TRAIN = {
    "lr": 0.001,
    "l2": 0.005,
    "weight_decay": 0.0,
    "batch_size": 100,
    "max_epochs": 100,
    "clip_grad_norm": 15.0,
}
CODE = {"cell": "split", "residual": "parallel", "norm": "time", "input_dropout": 0.15, "dropout": 0.15,
        "relu_logits": True, "init": "reference"}  # fmt: skip
PUBLISHED_3X3 = "UCI HAR test accuracy 94% at the best epoch (chosen on the test set), 91% final; Opportunity gestures F1 0.893"


def _preset(name: str, stacked: int, residual: int, published: str = "", code: bool = True) -> Preset:
    return Preset(
        model="res_bilstm",
        name=name,
        hparams={"n_stacked": stacked, "n_residual": residual, "hidden": 28, "bidirectional": True}
        | (CODE if code else {}),
        train={**TRAIN, "l2_skip_biases": True} if code else dict(TRAIN),
        source=SOURCE
        if code
        else SOURCE + " (the README's reading: chained residuals, ReLU dense reduction)",
        published=published,
    )


PRESETS = (
    _preset("1x1", 1, 1),
    _preset("2x2", 2, 2),
    _preset("3x3", 3, 3, PUBLISHED_3X3),
    _preset("3x3_readme", 3, 3, PUBLISHED_3X3, code=False),
)


class BiCell(nn.Module):
    """README reading: a (bi)directional LSTM whose concatenated directions a ReLU dense layer reduces."""

    def __init__(self, hidden: int, bidirectional: bool) -> None:
        super().__init__()
        self.lstm = nn.LSTM(hidden, hidden, batch_first=True, bidirectional=bidirectional)
        width = 2 * hidden if bidirectional else hidden
        self.reduce = nn.Sequential(nn.Linear(width, hidden), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(x)
        return self.reduce(out)


class Direction(nn.Module):
    """Code reading, one direction: ReLU dense projection, then an LSTM (run on reversed time if backward)."""

    def __init__(self, n_in: int, units: int, backward: bool) -> None:
        super().__init__()
        self.project = nn.Sequential(nn.Linear(n_in, units), nn.ReLU())
        self.lstm = nn.LSTM(units, units, batch_first=True)
        self.backward = backward

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.project(x)
        if self.backward:
            return self.lstm(h.flip(1))[0].flip(1)
        return self.lstm(h)[0]


class SplitCell(nn.Module):
    """Code reading: each direction projects the input itself; outputs concatenated to ``hidden`` features."""

    def __init__(self, n_in: int, hidden: int, bidirectional: bool) -> None:
        super().__init__()
        if bidirectional and hidden % 2:
            raise BadInput(
                f"res_bilstm: cell='split' halves hidden between the directions; hidden {hidden} is odd"
            )
        units = hidden // 2 if bidirectional else hidden
        self.directions = nn.ModuleList(
            Direction(n_in, units, backward) for backward in ((False, True) if bidirectional else (False,))
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([d(x) for d in self.directions], dim=-1)


class TimeStepNorm(nn.Module):
    """Each time step normalised over batch and features; one learned gain and shift for all of them."""

    def __init__(self, window: int) -> None:
        super().__init__()
        self.stats = nn.BatchNorm1d(window, eps=1e-3, affine=False)  # [B, T, H]: T is the "channel"
        self.gain = nn.Parameter(torch.tensor(0.5))
        self.shift = nn.Parameter(torch.tensor(0.0))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.stats(h) * self.gain + self.shift


def _norm(kind: str, hidden: int, window: int) -> nn.Module:
    """Normalisation after each stacked block."""
    if kind == "time":
        return TimeStepNorm(window)
    return {"batch": nn.BatchNorm1d(hidden), "layer": nn.LayerNorm(hidden), "none": nn.Identity()}[kind]


class ResidualBiLSTM(nn.Module):
    def __init__(
        self, n_channels: int, n_classes: int, window: int, hidden: int, n_stacked: int, n_residual: int,
        bidirectional: bool, dropout: float, norm: str, cell: str, residual: str, input_dropout: float,
        relu_logits: bool,
    ) -> None:  # fmt: skip
        super().__init__()
        self.split = cell == "split"
        self.parallel = residual == "parallel"
        # the README reading projects the input once; the code's split cells project it themselves
        self.project = (
            nn.Identity() if self.split else nn.Sequential(nn.Linear(n_channels, hidden), nn.ReLU())
        )

        def make(block: int) -> nn.Module:
            if self.split:
                return SplitCell(n_channels if block == 0 else hidden, hidden, bidirectional)
            return BiCell(hidden, bidirectional)

        self.blocks = nn.ModuleList(
            nn.ModuleList(make(b) for _ in range(n_residual)) for b in range(n_stacked)
        )
        self.norms = nn.ModuleList(_norm(norm, hidden, window) for _ in range(n_stacked))
        self.input_dropout = nn.Dropout(input_dropout)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden, n_classes)
        self.relu_logits = relu_logits

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.project(self.input_dropout(x))
        for cells, norm in zip(self.blocks, self.norms, strict=True):
            if self.parallel:  # every cell reads the block's input; outputs summed
                h = torch.stack([cell(h) for cell in cells]).sum(0)
            else:  # each cell after the first adds its output to its input
                h = cells[0](h)
                for cell in cells[1:]:
                    h = h + cell(h)
            h = norm(h.transpose(1, 2)).transpose(1, 2) if isinstance(norm, nn.BatchNorm1d) else norm(h)
        logits = self.head(self.dropout(h[:, -1]))
        return torch.relu(logits) if self.relu_logits else logits


def reference_init(model: nn.Module) -> None:
    """The code's initialisation: dense N(0, 0.2) weights, N(0.3, 0.2) biases; LSTM biases 0, forget gate 1."""
    for module in model.modules():
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, 0.0, 0.2)
            nn.init.normal_(module.bias, 0.3, 0.2)
        elif isinstance(module, nn.LSTM):
            for name, value in module.named_parameters():
                if name.startswith("bias"):
                    nn.init.zeros_(value)
                    if name.startswith("bias_ih"):  # gate order i, f, g, o: the forget gate's slice
                        value.data[module.hidden_size : 2 * module.hidden_size] = 1.0


@register(
    "res_bilstm", "n_stacked x n_residual residual bidirectional LSTM (Zhao et al. 2017)", presets=PRESETS
)
def build_res_bilstm(
    n_channels: int,
    n_classes: int,
    window: int,
    n_stacked: int = 3,
    n_residual: int = 3,
    hidden: int = 28,
    bidirectional: bool = True,
    dropout: float = 0.0,
    norm: str = "batch",
    cell: str = "reduce",
    residual: str = "chain",
    input_dropout: float = 0.0,
    relu_logits: bool = False,
    init: str = "torch",
) -> nn.Module:

    for key, value, allowed in (
        ("norm", norm, ("batch", "layer", "time", "none")),
        ("cell", cell, ("reduce", "split")),
        ("residual", residual, ("chain", "parallel")),
        ("init", init, ("torch", "reference")),
    ):
        if value not in allowed:
            raise BadInput(
                f"res_bilstm: {key} must be {', '.join(allowed[:-1])} or {allowed[-1]}, got {value!r}"
            )
    model = ResidualBiLSTM(n_channels, n_classes, window, hidden, n_stacked, n_residual, bidirectional, dropout,
                           norm, cell, residual, input_dropout, relu_logits)  # fmt: skip
    if init == "reference":
        reference_init(model)
    return model
