"""Test-wide settings: one intra-op thread per test process.

Tests use small tensors, for which thread hand-off costs more than it saves; one thread also keeps
timings stable when tests run in parallel processes.
"""

import torch

torch.set_num_threads(1)
