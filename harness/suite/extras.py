"""Optional parts of ftbench and the extra that installs each: one line says which is missing.

`pip install ftbench` leaves out the dashboard (streamlit) and the Ray executor (ray); a command
that needs one fails with the install command instead of an ImportError traceback.
"""

from __future__ import annotations

import importlib.util

# extra -> (module it provides, what needs it)
EXTRAS = {
    "dashboard": ("streamlit", "`ftbench dashboard`"),
    "ray": ("ray", "`--executor ray`"),
}


class MissingExtraError(RuntimeError):
    pass


def require(extra: str) -> None:
    """Raise MissingExtraError naming the install command when `extra`'s module is missing."""
    module, what = EXTRAS[extra]
    if importlib.util.find_spec(module) is None:
        raise MissingExtraError(
            f"{what} needs {module}, which is not installed: pip install 'ftbench[{extra}]'"
        )
