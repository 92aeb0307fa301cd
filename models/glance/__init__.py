"""AVGN-style glance stage: cheap per-snippet saliency + patch location for the heavy model."""

from models.glance.config import GlanceConfig
from models.glance.cost import GlanceCost, glance_cost, glance_gmacs
from models.glance.geometry import crop_patches, patch_box, patch_center
from models.glance.net import GlanceNet, GlanceOutput, SpatialOutput

__all__ = [
    "GlanceConfig",
    "GlanceCost",
    "GlanceNet",
    "GlanceOutput",
    "SpatialOutput",
    "crop_patches",
    "glance_cost",
    "glance_gmacs",
    "patch_box",
    "patch_center",
]
