"""Learned search directions: the Deep Conjugate Direction Method (DCDM).

`DCDM` is a truncated flexible conjugate-direction solver with a pluggable
direction model; `ConvDirectionModel` is the convolutional network of Kaneda
et al. (ICML 2023), evaluated on krylovlab's numba/CuPy kernels (torch is only
needed to train, see `krylovlab.learned.train`).
"""

from .dcdm import DCDM
from .model import ConvDirectionModel, SmoothedDirection, default_weights_path, load_model

__all__ = ["DCDM", "ConvDirectionModel", "SmoothedDirection", "load_model", "default_weights_path"]
