"""Collectors: one module per source, all behind the contract in `base`."""
