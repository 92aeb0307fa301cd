"""Training recipe for AVSlowFast-family models (pure torch; never imports ``service``)."""

from offline.train.augment import Box, center_crop_box, crop_resize, random_crop_box
from offline.train.loop import Trainer, TrainState
from offline.train.recipe import TrainConfig, make_optimizer
from offline.train.schedule import LRSchedule

__all__ = [
    "Box",
    "LRSchedule",
    "TrainConfig",
    "TrainState",
    "Trainer",
    "center_crop_box",
    "crop_resize",
    "make_optimizer",
    "random_crop_box",
]
