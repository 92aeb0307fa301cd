"""The offline half of avserve: data (AVSynth generation, datasets, caches), training recipes,
glance distillation and evaluation. It produces model packages; ``service/`` serves them.

Depends on ``models`` (pure torch) and on ``service.media`` for decoding exactly as the server
does; nothing in ``service`` imports this package except the CLI, which registers its commands.
"""
