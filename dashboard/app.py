"""Streamlit entry point of the stemwatch dashboard.

Served by ``stemwatch dashboard --db PATH`` (``streamlit run dashboard/app.py -- --db PATH``).
Without ``--db`` the database comes from the ``STEMWATCH_DB`` environment variable.
"""

from __future__ import annotations

import sys

from dashboard.views import database_argument, render

render(database_argument(sys.argv[1:]))
