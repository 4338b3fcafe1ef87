"""The network the rules work on comes from the derivation's own statements."""

import importlib

import pytest
import sympy as sp

from ntksym.derive import Context, Derivation, ForAll, Step, apply_rule, symbolic_equal
from ntksym.derive.definitions import standard_network
from ntksym.derive.network import Network, active_network, using_network
from ntksym.derive.symbols import (
    L,
    Tends,
    Theta,
    Theta_inf,
    W,
    alpha,
    alpha_t,
    b,
    beta,
    index,
    l,
    sigma,
    width,
    x,
)
from ntksym.errors import InputError

k, i, ip, j = (index(s) for s in ("k", "i", "i'", "j"))
seed = importlib.import_module("ntksym.derivations.seed")


def _net(bias_power=1, act=sigma):
    pre = sp.Sum(W(l)[k, j] * alpha(l)[j], (j, 1, width(l))) / sp.sqrt(width(l))
    return Network(
        {
            "1": sp.Eq(alpha(0)[k], x()[k]),
            "2": ForAll(
                sp.Eq(alpha_t(l + 1)[k], pre + beta * b(l)[k] ** bias_power), sp.Tuple(l, 0, L - 1)
            ),
            "3": ForAll(sp.Eq(alpha(l)[k], act(alpha_t(l)[k])), sp.Tuple(l, 1, L)),
            "19": Tends(Theta(L, i, ip), Theta_inf(L) * sp.KroneckerDelta(i, ip), width(L)),
        }
    )


def test_definitions_are_instantiated_at_the_requested_layer_and_input():
    net = _net()
    m = index("m")
    got = net.definition_of(alpha_t(2, True)[m])
    s = next(iter(got.atoms(sp.Sum))).variables[0]
    want = sp.Sum(W(1)[m, s] * alpha(1, True)[s], (s, 1, width(1))) / sp.sqrt(width(1))
    assert sp.expand(got - want - beta * b(1)[m]) == 0
    assert net.definition_of(alpha(0, True)[m]) == x(True)[m]
    assert net.definition_of(alpha(L)[m]) == sigma(alpha_t(L)[m])
    # below the range of (3) and with no other definition: nothing
    assert Network({"3": _net().statements["3"]}).definition_of(alpha(0)[m]) is None


def test_unfold_rule_follows_the_active_network():
    ctx = Context(ranges={k: width(1)})
    plain = apply_rule("definition", alpha_t(1)[k], ctx)
    assert plain.has(b(0)[k]) and not plain.has(b(0)[k] ** 2)
    with using_network(_net(bias_power=2)):
        assert apply_rule("definition", alpha_t(1)[k], ctx).has(b(0)[k] ** 2)
        assert not standard_network(ctx)
    with using_network(_net()):
        assert standard_network(ctx)
        assert symbolic_equal(
            sp.Eq(alpha_t(1)[k], apply_rule("definition", alpha_t(1)[k], ctx)),
            sp.Eq(alpha_t(1)[k], plain),
            ctx,
        )
    assert active_network() is None


def test_hypothesis_rewrites_with_its_indices_as_patterns():
    a, c = index("a"), index("c")
    with using_network(_net()):
        got = apply_rule("induction_hypothesis", 3 * Theta(L, a, c), Context())
    assert got == 3 * Theta_inf(L) * sp.KroneckerDelta(a, c)
    other = Network({"19": Tends(Theta(L, i, ip), Theta_inf(L) ** 2, width(L))})
    with using_network(other):
        assert apply_rule("induction_hypothesis", Theta(L, a, c), Context()) == Theta_inf(L) ** 2


def test_network_labels_are_checked():
    s = seed.DERIVATION
    with pytest.raises(InputError, match="network labels not among the steps"):
        Derivation("d", "t", s.steps, network=("99",))
    bad = Step("q", sp.Eq(beta, beta), "definition")
    with pytest.raises(InputError, match=r"\(q\) cannot be used as a hypothesis"):
        Derivation("d", "t", (bad,), network=("q",))


def test_seed_network_is_the_standard_one():
    net = seed.DERIVATION.network_at({})
    with using_network(net):
        assert standard_network(seed.CL)
