"""avserve against the peers an operator would pick instead (``make bench-peers``).

Runs in the benchmark virtualenv (.venv-bench: LitServe, PyTorchVideo and the torchvision
build they need), never in the service's own environment.
"""
