"""rnnkit: recurrent neural networks (Elman RNN, LSTM, GRU), attention and sequence models on PyTorch.

The public API lives in the subpackages: :mod:`rnnkit.nn` (cells, layers, attention),
:mod:`rnnkit.training` (the trainer), :mod:`rnnkit.api` (train / evaluate / predict).
Importing :mod:`rnnkit` does no work beyond defining the version.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
