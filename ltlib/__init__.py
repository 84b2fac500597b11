"""ltlib: regional ecological monitoring from long satellite time series.

Modules: ``config`` (study area, parameters), ``io`` (GeoTIFF stacks), ``sample`` (the
simulated sample scene), ``maps`` (geemap/matplotlib display), ``plots``, ``widgets``
(notebook panels), ``gaps`` (gap filling), and one module or package per step of the
workflow: ``landtrendr/``, ``cluster/``, ``classify``/``trainingset``/``accuracy``, ``sar``,
``gee/``. Heavy dependencies (torch, Earth Engine) are imported only by the modules
that need them.
"""
__version__ = "0.1.0"
