"""The offline demo: a bundled scenario replayed through the real pipeline and scheduler."""
