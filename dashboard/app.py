"""Streamlit entry point of the stemwatch dashboard.

Served by ``stemwatch dashboard --db PATH`` (``streamlit run dashboard/app.py -- --db PATH``).
Without ``--db`` the database comes from the ``STEMWATCH_DB`` environment variable. The page
is drawn by :mod:`dashboard.shell`; each view is a module of :mod:`dashboard.views`.
"""

from __future__ import annotations

import sys

from dashboard.shell import main

main(sys.argv[1:])
