import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# The files with the longest tests (learning runs, several export processes):
# collected first, so that pytest-xdist (make pytest) starts them first and its
# workers finish together.
FIRST = ("test_learning_fortunes.py", "test_export_errors.py")


def pytest_collection_modifyitems(items):
    items.sort(key=lambda item: item.path.name not in FIRST)
