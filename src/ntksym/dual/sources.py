"""Citations of the closed-form dual kernels (each family cites its own in its docstring)."""

CHO_SAUL = "Y. Cho and L. K. Saul, Kernel methods for deep learning, NIPS 2009 (arc-cosine kernels)"

ISSERLIS = (
    "L. Isserlis, On a formula for the product-moment coefficient of any order of a normal "
    "frequency distribution in any number of variables, Biometrika 12 (1918)"
)

MGF = (
    "Gaussian moment generating function E[exp(b'w - w'Aw/2)] = det(I+Sigma A)^(-1/2) "
    "exp(b'(I+Sigma A)^(-1) Sigma b/2); for sin/cos see A. Rahimi and B. Recht, Random features "
    "for large-scale kernel machines, NIPS 2007"
)

WILLIAMS = "C. K. I. Williams, Computing with infinite networks, NIPS 1997"
TSUCHIDA = (
    "R. Tsuchida, T. Pearce, C. van der Heide, F. Roosta and M. Gallagher, Avoiding kernel "
    "fixed points: computing with ELU and GELU infinite networks, AAAI 2021 (published "
    "counterpart of the derived GELU kernel)"
)

PRICE = (
    "R. Price, A useful theorem for nonlinear devices having Gaussian inputs, "
    "IRE Trans. Inf. Theory 4 (1958)"
)
