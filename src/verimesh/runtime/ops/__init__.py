"""Every op of the exact runtime; importing this package registers them all in ``OPS``.

One module per family: linear algebra, data movement, table nonlinearities, norms,
attention, token choice.
"""

from . import attention, linear, nonlinear, norm, sampling, shape

__all__ = ["attention", "linear", "nonlinear", "norm", "sampling", "shape"]
