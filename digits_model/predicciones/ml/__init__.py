"""Framework-free machine-learning core: image decoding, preprocessing, training, drift maths.

Nothing in this package imports Django, so ``app.py``, the notebook, the management
commands and the web views all call the same functions.
"""
