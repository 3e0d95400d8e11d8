"""Config files -> plain dicts, and each generation's reader -> one ``Plan``."""

from .cfg_options import merge_options, parse_option_value
from .files import load_config
from .generation import generation_of
from .mmcv1_files import merge

__all__ = ["generation_of", "load_config", "merge", "merge_options", "parse_option_value"]
