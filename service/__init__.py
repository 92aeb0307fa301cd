"""avserve serving layer: gateway, media, pipeline, batcher, runtimes, queue and CLI.

Data flows one way: api -> media -> glance -> batcher -> aggregate. Nothing in ``models``
imports from here.
"""
