"""Importing this module registers every architecture (one file each)."""

from har.models import (
    cnn_lstm,
    cnn_resbigru,
    convlstm,
    deepconvlstm,
    feature_mlp,
    inception,
    lstm,
    lstm_dense,
    res_bilstm,
    resnet1d,
    vision,
)

__all__ = [
    "cnn_lstm",
    "cnn_resbigru",
    "convlstm",
    "deepconvlstm",
    "feature_mlp",
    "inception",
    "lstm",
    "lstm_dense",
    "res_bilstm",
    "resnet1d",
    "vision",
]
