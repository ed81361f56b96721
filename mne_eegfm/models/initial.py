"""Initial parameter values: computed on the CPU, then moved."""

import torch


def on_device(values, device=None):
    """Move initial values computed on the CPU to ``device`` (default: current).

    Maths on meta tensors (the shape check of model files builds the model on
    the meta device) runs PyTorch's Python reference implementations, whose
    first call imports its compiler stack: seconds per process for values
    that are never used. So initial values are computed on the CPU, then moved.
    """
    return values.to(torch.get_default_device() if device is None else device)
