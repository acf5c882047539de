import numpy as np
import pytest
from sklearn.datasets import load_digits


@pytest.fixture(scope="session")
def digits():
    X, y = load_digits(return_X_y=True)
    return X, y


@pytest.fixture(scope="session")
def digits_small(digits):
    X, y = digits
    r = np.random.default_rng(123)
    idx = np.sort(r.choice(len(y), 700, replace=False))
    return X[idx], y[idx]
