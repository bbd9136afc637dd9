"""The data files shipped inside our packages, read without importing importlib.resources where possible.

`importlib.resources` costs about 7 ms to import (it brings tempfile, zipfile and typing protocols); for a
package that is a folder on disk, which is what it finds for a regular install, `files()` returns that
folder as a pathlib.Path, and so does `package_folder`. A package elsewhere (a zip archive) is handed
to importlib.resources.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from importlib.abc import Traversable


def package_folder(package: str) -> Traversable:
    """What `importlib.resources.files(package)` returns for an imported package."""
    module = sys.modules.get(package)
    location = getattr(module, "__file__", None)
    if module is not None and getattr(module, "__path__", None) and location and os.path.isfile(location):
        return Path(location).parent
    from importlib import resources

    return resources.files(package)
