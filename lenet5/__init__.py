"""LeNet-5 as LeCun, Bottou, Bengio and Haffner (1998) describe it.

The public API. Importing it downloads nothing and starts nothing; the leaves (plots, export, the web
server, the benchmark) are imported only by the functions that need them.
"""

from .checkpoint import load_model, save_checkpoint
from .config import ModelConfig, TrainConfig
from .data import ensure_dataset, load_mnist, read_idx, write_idx
from .errors import Lenet5Error
from .loss import map_loss, mse_loss
from .model import LeNet5
from .optim import SDLM
from .train import evaluate, train

__all__ = [
    "SDLM",
    "LeNet5",
    "Lenet5Error",
    "ModelConfig",
    "TrainConfig",
    "ensure_dataset",
    "evaluate",
    "load_mnist",
    "load_model",
    "map_loss",
    "mse_loss",
    "read_idx",
    "save_checkpoint",
    "train",
    "write_idx",
]

__version__ = "0.1.0"
