"""Config files -> plain dicts, and each generation's reader -> one ``Plan``."""

from .cfg_options import merge_options, parse_option_value
from .files import load_config, merge

__all__ = ["load_config", "merge", "merge_options", "parse_option_value"]
