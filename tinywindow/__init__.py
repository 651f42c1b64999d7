"""TinyWindow: an actor-model distributed AI trading engine on Ray.

This package holds the pure domain logic (data, features, agents' models, consensus, risk,
portfolio, crypto); Ray actor classes live in the sibling ``actors`` package.
"""

__version__ = "0.1.0"
