"""Every op of the exact runtime; importing this package registers them all in ``OPS``.

One module per family: linear algebra (and `rows`: per-token quantised linear layers), data movement, table nonlinearities, norms,
attention, token choice.
"""

from . import attention, linear, nonlinear, norm, rows, sampling, shape

__all__ = ["attention", "linear", "nonlinear", "norm", "rows", "sampling", "shape"]
