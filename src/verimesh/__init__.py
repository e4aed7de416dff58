"""verimesh: an open, verifiable market for AI compute on idle everyday devices.

The package mirrors ARCHITECTURE.md: ``crypto`` at the bottom, then ``chain``, ``runtime``,
``models`` and ``store``; the network layers arrive above them. Arrows point down only.
"""

__version__ = "0.1.0"
