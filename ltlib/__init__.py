"""ltlib: regional ecological monitoring from long satellite time series.

Data flow of every notebook::

    scene.load(data_dir | use_gee + aoi, indices, years)   -> Scene (stacks on one grid, truth, S1)
    step(scene, params)                                     -> a result object (summary(), write())
    report.Report(...).add(...) / .write()                  -> summary.json

Modules
-------
config       study area, years, index definitions, dataset IDs, the seed's parameters
colab        installs ltlib on Google Colab beside the runtime's torch (python -m ltlib.colab)
params       LandTrendr and change-map parameters: one validated definition, with its Earth Engine form
scene        the one loader: the sample, a folder of own stacks, Earth Engine downloads; Scene
report       what a notebook ran, skipped and wrote (summary.json)
resources    reference data shipped with the package (seed training set, Earth Engine reference)
io           GeoTIFF stacks (one band per year), atomic writes, image <-> series reshapes
jit          numba compilation with an on-disk cache that never stops ltlib (the LandTrendr kernels)
sample       the simulated sample scene (python -m ltlib.sample data/sample)
completeness missing values per year, per pixel and by sensor era
gaps         gap filling along time
landtrendr/  kernels (numba), segment (segment, FTV), change (change maps), run (a whole scene)
cluster/     sbd (kernels), kshape (estimator), prepare, select (silhouette, elbow, knee), run
trainingset, classify, accuracy    trajectory classes: training data, models, map accuracy
sar          Sentinel-1 sequential omnibus change detection
gee/         Earth Engine: auth, aoi, composites, llr, landtrendr, sentinel1, download, export, workflows
maps, plots, widgets   geemap maps, matplotlib figures, ipywidgets panels

Heavy dependencies (torch, Earth Engine) are imported only by the modules that need them.
"""
__version__ = "0.1.0"
