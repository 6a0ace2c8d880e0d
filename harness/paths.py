"""Where things are in a checkout: the one module that knows the repository's layout.

Importing it also puts the Django project folder (``digits_model/``) on ``sys.path``, so a
script run from the repository's folder (``python -m bench.run``, ``python app.py``) imports
``predicciones`` as the service does; the test suite gets the same from pyproject's
``pythonpath``.
"""

import sys
from pathlib import Path

REPO_DIR = Path(__file__).resolve().parents[1]
#: The Django project: manage.py, gunicorn.conf.py, the app, the shipped model.
PROJECT_DIR = REPO_DIR / "digits_model"
#: The shipped model, with its manifest (``clf.manifest.json``) beside it.
MODEL_DIR = PROJECT_DIR / "model"
SHIPPED_MODEL = MODEL_DIR / "clf.pickle"
#: The sample images (digit_<n>.jpg, drawn by data_generator.ipynb) and their labels.csv.
TEST_IMAGES_DIR = REPO_DIR / "test"
BENCH_DIR = REPO_DIR / "bench"
#: Local state of make run, make bench and make eval (what the scripts write).
VAR_DIR = REPO_DIR / "var"
#: The virtualenv's programs (gunicorn, uvicorn, moto_server).
BIN_DIR = Path(sys.executable).parent

if str(PROJECT_DIR) not in sys.path:
    sys.path.insert(0, str(PROJECT_DIR))
