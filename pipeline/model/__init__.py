"""The batched per-product LSTM demand forecaster (Keras 3, backend-neutral `keras.ops`).

Every weight carries a leading product axis, so each product has its own LSTM and head while all
products train as one computation (DESIGN section 4). For product p, day t (the origin) and horizon
k = 1..K the model predicts

    log E[units_{t+k}] = level_p + bias_{p,k} + W_{p,k} . h_{p,t}          (history, via the LSTM)
                         + V_p . calendar_{t+k} + promo_p * promo_{t+k}     (known in advance)
                         + elasticity_p * log(price_{t+k} / ref_price_p)    (the price response)
                         [+ U_{p,k} * m_{p,t}]                              (model.local_level_days)

with elasticity_p = -softplus(theta_p) <= 0 by construction, and m_{p,t} the mean of the last N
in-stock days' scaled log units at the reference price up to t (`layers.window_level`), where
`model.local_level_days` = N > 0. The loss is the Poisson negative log-likelihood (it handles
zeros), stockout days are masked out (their sales are censored), and each product's loss is its
own mean, summed over products: with Adam (element-wise) every product trains exactly as it would
alone. Nothing outside this package (and the naive benchmark baseline,
`pipeline.bench.naive`) imports keras or tensorflow.

h_{p,t} is the state at origin t of the top of `model.layers` stacked per-product LSTM (or GRU,
`model.cell`) layers, which read only days <= t; with `model.decoder = "seq2seq"` the head's
W_{p,k} . h_{p,t} becomes W_{p,k} . d_{p,t,k}, the state after k steps of a per-product decoder
started from the encoder's state at t and run over days t+1 .. t+k's known inputs. Dropout
(`model.dropout`, training only) draws each product's masks from its own hash, so every option
keeps the batched training equal to each product's alone.

Modules: `cells` (the recurrent layers and per-product dropout), `layers` (the network and its
loss), `batching` (segments, inputs and targets), `training` (the batched fit with per-product
early stopping), `inference` (forecasts and elasticity intervals of a trained net), `artefacts`
(save, check and load).
"""

from __future__ import annotations

import os

# Set before any submodule imports keras (and with it TensorFlow), which reads them once.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# TensorFlow turns its oneDNN CPU kernels on by itself only on CPUs with AVX-512 or newer; on an
# AVX2-only CPU it falls back to Eigen, whose batched matmul of the per-product recurrent step is
# about 4x slower (training about 2x). Their sums may differ from Eigen's in the last bits; set
# TF_ENABLE_ONEDNN_OPTS=0 where runs on different runners must match bit for bit (README).
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

from pipeline.model.artefacts import (
    ARTEFACT_FORMAT,
    META_FILE,
    MODEL_FILE,
    ModelArtefactError,
    check_artefact,
    load,
    read_meta,
    recent_level,
    save,
    with_saved_scales,
)
from pipeline.model.batching import Batch, make_batch, normalise_weights, segment_starts
from pipeline.model.cells import PerProductGRU, PerProductLSTM, per_product_dropout
from pipeline.model.inference import elasticities, fit_statistics, predict_segment
from pipeline.model.layers import DemandNet, MaskedPoisson, build_net
from pipeline.model.training import (
    PerProductEarlyStopping,
    ProgressFn,
    TrainResult,
    per_product_nll,
    train,
)

__all__ = [
    "ARTEFACT_FORMAT",
    "META_FILE",
    "MODEL_FILE",
    "Batch",
    "DemandNet",
    "MaskedPoisson",
    "ModelArtefactError",
    "PerProductEarlyStopping",
    "PerProductGRU",
    "PerProductLSTM",
    "ProgressFn",
    "TrainResult",
    "build_net",
    "check_artefact",
    "elasticities",
    "fit_statistics",
    "load",
    "make_batch",
    "normalise_weights",
    "per_product_dropout",
    "per_product_nll",
    "predict_segment",
    "read_meta",
    "recent_level",
    "save",
    "segment_starts",
    "train",
    "with_saved_scales",
]
