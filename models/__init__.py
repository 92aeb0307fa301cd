"""avserve models: pure torch (networks, features, checkpoint import, packages, export).

Never imports ``service``.
"""

from models.avslowfast import AVSlowFast, TrainOutput, build_model
from models.checkpoint import CheckpointError, ImportReport, ImportResult, import_pyslowfast
from models.configs import AVSlowFastConfig, HeadSpec
from models.features import LogMelConfig, LogMelSpectrogram
from models.flops import count_gmacs, dense_gmacs, model_gmacs
from models.glance import GlanceConfig, GlanceNet, GlanceOutput
from models.head import head_probabilities, split_heads
from models.named_configs import get_config, list_configs
from models.package import ModelPackage, PackageConfig, PackageError, load_package, save_package
from models.preprocess import ClipInputs, ClipPreprocessor, PreprocessConfig
from models.serving import ServingModel

__all__ = [
    "AVSlowFast",
    "AVSlowFastConfig",
    "CheckpointError",
    "ClipInputs",
    "ClipPreprocessor",
    "GlanceConfig",
    "GlanceNet",
    "GlanceOutput",
    "HeadSpec",
    "ImportReport",
    "ImportResult",
    "LogMelConfig",
    "LogMelSpectrogram",
    "ModelPackage",
    "PackageConfig",
    "PackageError",
    "PreprocessConfig",
    "ServingModel",
    "TrainOutput",
    "build_model",
    "count_gmacs",
    "dense_gmacs",
    "get_config",
    "head_probabilities",
    "import_pyslowfast",
    "list_configs",
    "load_package",
    "model_gmacs",
    "save_package",
    "split_heads",
]
