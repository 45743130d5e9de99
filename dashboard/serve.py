"""The dashboard's server process: ``python -m dashboard.serve run dashboard/app.py [...]``.

What ``stemwatch dashboard`` runs instead of ``python -m streamlit``: it imports the page's
modules (Streamlit's elements, Altair, pandas, pyarrow, the store, every view) once, then
hands the same arguments to Streamlit's command line in this process. Streamlit runs the
page's script in the server process, so the first visitor's page no longer waits ~1.3 s on
2 cores for those imports (issue 13: the first render); the server reports ready (its health
endpoint answers) only after them.
"""

from __future__ import annotations

import importlib
import logging
import sys

# imported by the first render anyway; what the page script's own imports do not pull in is
# imported by Streamlit (pyarrow: tables) or by the well view (tifffile, PIL: thumbnails)
WARM_MODULES = ("dashboard.shell", "pyarrow", "PIL.Image", "tifffile")
# Streamlit warns once per ``st.cache_data`` function decorated before its runtime exists;
# harmless here (the caches themselves are made at the first call, inside the runtime)
CACHE_LOGGER = "streamlit.runtime.caching.cache_data_api"


def warm_up() -> None:
    """Import what the first render would import (no database is read)."""
    import streamlit  # noqa: F401  (creates the logger silenced below)

    logger = logging.getLogger(CACHE_LOGGER)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        for name in WARM_MODULES:
            importlib.import_module(name)
    finally:
        logger.setLevel(level)
    _first_use()


def _first_use() -> None:
    """Do once what each new server process otherwise did in its first visitor's render
    (~0.4 s of CPU there, issue 13): Streamlit compiles its emoji pattern to check the page
    icon, and Altair builds its schema validator and imports its dataframe layer for the
    first chart it turns into a spec."""
    import pandas as pd
    from streamlit import string_util

    from dashboard import plots, shell

    string_util.is_emoji(shell.PAGE_ICON)
    series = pd.DataFrame(
        {"time_h": [0.0, 1.0], "mean": 0.5, "lower": 0.4, "upper": 0.6, "smoothed": 0.5, "n": 1}
    )
    fields = pd.DataFrame({"time_h": [0.0, 1.0], "probability": 0.5, "field": 1})
    plots.well_series_chart(series, fields, onset_h=1.0).to_dict()


def main(argv: list[str]) -> None:
    """Warm up, then run Streamlit's command line with ``argv`` (exits with its status)."""
    warm_up()
    from streamlit.web import cli

    cli.main(args=argv, prog_name="streamlit")


if __name__ == "__main__":
    main(sys.argv[1:])
