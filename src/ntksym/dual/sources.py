"""Citations of the closed-form dual kernels (each family cites its own in its docstring)."""

CHO_SAUL = "Y. Cho and L. K. Saul, Kernel methods for deep learning, NIPS 2009 (arc-cosine kernels)"

ISSERLIS = (
    "L. Isserlis, On a formula for the product-moment coefficient of any order of a normal "
    "frequency distribution in any number of variables, Biometrika 12 (1918)"
)

MGF = (
    "Gaussian moment generating function E[exp(b'w - w'Aw/2)] = det(I+Sigma A)^(-1/2) "
    "exp(b'(I+Sigma A)^(-1) Sigma b/2)"
)

NOVAK = (
    "R. Novak, L. Xiao, J. Hron, J. Lee, A. A. Alemi, J. Sohl-Dickstein and S. S. Schoenholz, "
    "Neural Tangents: fast and easy infinite neural networks in Python, ICLR 2020"
)

RAHIMI_RECHT = "A. Rahimi and B. Recht, Random features for large-scale kernel machines, NIPS 2007"

#: Where each closed form of the Gaussian-MGF family is also found (checked in the cited
#: work: Neural Tangents implements these four layers without citing a paper for them).
MGF_SOURCES = {
    "exp": f"{MGF}; the same closed form is implemented in {NOVAK} (stax.Exp)",
    "gaussian": f"{MGF}; the same closed form is implemented in {NOVAK} (stax.Gaussian)",
    "sin": (
        f"{MGF}; the same closed form is implemented in {NOVAK} (stax.Sin); its "
        f"cos(u - v) part is the random Fourier feature kernel of {RAHIMI_RECHT}"
    ),
    "cos": (
        f"{MGF}; the same closed form is implemented in {NOVAK} (stax.Cos); its "
        f"cos(u - v) part is the random Fourier feature kernel of {RAHIMI_RECHT}"
    ),
}

WILLIAMS = "C. K. I. Williams, Computing with infinite networks, NIPS 1997"
TSUCHIDA = (
    "R. Tsuchida, T. Pearce, C. van der Heide, F. Roosta and M. Gallagher, Avoiding kernel "
    "fixed points: computing with ELU and GELU infinite networks, AAAI 2021 (published "
    "counterpart of the derived GELU kernel; the source Neural Tangents cites for stax.Gelu)"
)

PRICE = (
    "R. Price, A useful theorem for nonlinear devices having Gaussian inputs, "
    "IRE Trans. Inf. Theory 4 (1958)"
)
