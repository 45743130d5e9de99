"""The dashboard's views, one module each (``render(ctx)``); :mod:`dashboard.registry` lists
them for the page shell."""
