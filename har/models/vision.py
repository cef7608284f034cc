"""Image backbones from torchvision for the workout-image study: ``resnet50`` (the published model),
``resnet18`` and ``mobilenet_v3_small`` (cheaper search options).

``fine_tune=True`` trains every layer (the tutorial's ``--fine-tune``); ``False`` freezes the backbone
and trains only the new classifier. ``weights`` is a local ``.pth`` file or an https URL with
``weights_sha256`` (see :mod:`har.models.pretrained`); without it the network starts from random weights and
says so. Input: [B, 3, H, W] normalised with the ImageNet statistics; ``window`` is the crop size.
"""

from __future__ import annotations

from torch import nn

from har.errors import BadInput
from har.models.pretrained import load_pretrained, resolve_weights
from har.models.registry import Preset, entry, register

INIT_ONLY = ("weights", "weights_sha256")
TUTORIAL = "DebuggerCafe, Workout Recognition using CNN and Deep Learning (ResNet-50 fine-tuned)"
RESNET50_PRESETS = (
    Preset(
        "resnet50",
        "published",
        {"fine_tune": True},
        {
            "optimizer": "adam",
            "lr": 1e-3,
            "batch_size": 64,
            "schedule": "step",
            "step_epochs": 7,
            "step_gamma": 0.1,
            "image_augment": "published",
        },
        source=TUTORIAL + "; the optimiser is not named in the text: Adam assumed",
        published="98.8% validation accuracy on 22 workout classes (random 90/10 split, 10 epochs, ImageNet weights)",
    ),
)


def _backbone(name: str, n_channels: int, n_classes: int, fine_tune: bool, weights: str | None,
              weights_sha256: str | None, dropout: float) -> nn.Module:  # fmt: skip

    if n_channels != 3:
        raise BadInput(
            f"model {name!r} reads RGB images (3 channels), got {n_channels}; use an image dataset"
        )
    # deferred: importing torchvision loads torch._dynamo (about 2 s of every command's start and every
    # trial worker's), which only the image backbones need
    import torchvision

    model = getattr(torchvision.models, name)(weights=None)  # never a hub download
    if name.startswith("resnet"):
        head = "fc"
        model.fc = nn.Sequential(nn.Dropout(dropout), nn.Linear(model.fc.in_features, n_classes)) if dropout \
            else nn.Linear(model.fc.in_features, n_classes)  # fmt: skip
    else:
        head = "classifier"
        last = model.classifier[-1]
        model.classifier[-1] = nn.Linear(last.in_features, n_classes)
        if dropout:
            model.classifier[-2] = nn.Dropout(dropout)
    if weights:
        load_pretrained(model, resolve_weights(weights, weights_sha256), head)
    elif weights_sha256:
        raise BadInput(f"model {name!r}: weights_sha256 given without weights; give the file or URL too")
    if not fine_tune:
        for pname, param in model.named_parameters():
            param.requires_grad = pname.startswith(head + ".")
    return model


def scratch_note(model: str, hparams: dict) -> str | None:
    """What to tell the user when an image backbone will train without pretrained weights."""

    if entry(model).inputs != "images" or hparams.get("weights"):
        return None
    return (f"{model}: no pretrained weights given (hyper-parameter 'weights': a .pth file, or an https URL "
            "with weights_sha256): training from scratch")  # fmt: skip


@register("resnet50", "ResNet-50 (torchvision) for workout images", min_window=lambda hp: 32,
          presets=RESNET50_PRESETS, inputs="images", init_only=INIT_ONLY)  # fmt: skip
def build_resnet50(n_channels: int, n_classes: int, window: int, fine_tune: bool = True, weights: str | None = None,
                   weights_sha256: str | None = None, dropout: float = 0.0) -> nn.Module:  # fmt: skip
    """The published workout recogniser: ResNet-50 with a new linear head."""
    return _backbone("resnet50", n_channels, n_classes, fine_tune, weights, weights_sha256, dropout)


@register("resnet18", "ResNet-18 (torchvision): a cheaper image backbone", min_window=lambda hp: 32,
          inputs="images", init_only=INIT_ONLY)  # fmt: skip
def build_resnet18(n_channels: int, n_classes: int, window: int, fine_tune: bool = True, weights: str | None = None,
                   weights_sha256: str | None = None, dropout: float = 0.0) -> nn.Module:  # fmt: skip
    return _backbone("resnet18", n_channels, n_classes, fine_tune, weights, weights_sha256, dropout)


@register("mobilenet_v3_small", "MobileNetV3-Small (torchvision): the cheapest image backbone",
          min_window=lambda hp: 32, inputs="images", init_only=INIT_ONLY)  # fmt: skip
def build_mobilenet_v3_small(n_channels: int, n_classes: int, window: int, fine_tune: bool = True,
                             weights: str | None = None, weights_sha256: str | None = None,
                             dropout: float = 0.2) -> nn.Module:  # fmt: skip
    return _backbone("mobilenet_v3_small", n_channels, n_classes, fine_tune, weights, weights_sha256, dropout)
