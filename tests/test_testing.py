"""ntksym.testing: the checks pass on right kernels and fail, saying why, on wrong ones."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import gaussian_inputs

import ntksym
from ntksym.testing import TOL, check_kernel


@pytest.mark.parametrize("act", ["relu", "erf", "tanh"])
def test_passes_against_mpmath(act):
    result = check_kernel(ntksym.kernel(act, 3, bias_std=0.1), gaussian_inputs(4, 3, seed=1))
    assert result.worst <= TOL.kernel


def test_fails_on_a_wrong_kernel_and_shows_both_values():
    X = gaussian_inputs(4, 3, seed=2)
    right = ntksym.kernel("relu", 3, bias_std=0.1)
    wrong = ntksym.kernel("relu", 3, bias_std=0.1 * (1 + 1e-9))  # a planted 1e-9 error
    with pytest.raises(AssertionError, match=r"(nngp|ntk)\[\d, \d\] = .* mpmath reference"):
        check_kernel(_Impostor(wrong, like=right), X)


def test_monte_carlo_check_passes_and_fails():
    X = gaussian_inputs(3, 4, seed=3)
    k = ntksym.kernel("relu", 2, bias_std=0.2)
    check_kernel(k, X, against="monte-carlo", width=256, n_samples=32)
    with pytest.raises(AssertionError, match="Monte-Carlo"):
        check_kernel(
            _Impostor(ntksym.kernel("relu", 2, bias_std=0.6), like=k),
            X,
            against="monte-carlo",
            width=256,
            n_samples=32,
        )


class _Impostor:
    """Computes with one kernel while claiming the parameters of another (a planted bug)."""

    def __init__(self, computes, like):
        self.computes, self.like = computes, like
        for name in ("activation", "depth", "bias_std", "weight_std"):
            setattr(self, name, getattr(like, name))

    def __call__(self, X1, X2=None, get="ntk"):
        return self.computes(X1, X2, get=get)


def test_rejects_an_unknown_reference():
    with pytest.raises(ntksym.InputError, match="against"):
        check_kernel(ntksym.kernel("relu", 2), np.eye(2), against="peer")
