"""Training recipe for AVSlowFast-family models (pure torch; never imports ``service``)."""

from models.train.augment import Box, center_crop_box, crop_resize, random_crop_box
from models.train.loop import Trainer, TrainState
from models.train.recipe import TrainConfig, make_optimizer
from models.train.schedule import LRSchedule

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
