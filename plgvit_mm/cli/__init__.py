"""Helpers of the command-line tools in tools/ (config options, inference, pre-run checks).

Importing this package silences the ``pkg_resources is deprecated`` warnings that mmengine 0.10's
``package_utils`` triggers on every config load: the mmcv build needs setuptools >=77,<81, which
warns, and the message gives a user nothing to act on.
"""

import warnings

warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning)
