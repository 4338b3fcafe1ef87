"""The shared walks over a description's layers (``ntksym.architecture.leaves``).

Each option of :func:`leaves` on small hand-written networks (chains, nested serial,
repeat, parallel, Identity, Dropout in test mode), then laws over random nested
descriptions (hypothesis): the walk composes over Serial, Repeat and Parallel, and
``skip`` filters it. Independent checks: on random *valid* networks the leaves with
parallel and without no-ops are exactly the layers the evaluating walk
(``architecture.walk.Walker``) computes, in its order; and the branches that
:func:`live_branches` counts leaving a network are the outputs ``walk.check`` counts.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ntksym import stax
from ntksym.architecture.description import (
    Dense,
    Dropout,
    FanInSum,
    FanOut,
    Identity,
    LayerNorm,
    Nonlinearity,
    Parallel,
    Repeat,
    Serial,
    as_description,
)
from ntksym.architecture.leaves import leaves, live_branches, no_op, sequence
from ntksym.architecture.walk import Meta, Walker, check
from ntksym.errors import InputError

D1, D2, D3 = Dense(4), Dense(4, 1.5, 0.1), Dense(4, parameterization="standard")
RELU, ERF = as_description(stax.Relu()), as_description(stax.Erf())
TEST, TRAIN = Dropout(0.5, "test"), Dropout(0.5)
OPTIONS = [
    {"repeat": r, "parallel": p, "skip": s}
    for r in ("expand", "once")
    for p in (False, True)
    for s in ("nothing", "identity", "no-ops")
]


def _leaves(net, **options):
    return list(leaves(net, **options))


def test_a_chain_and_nested_serial_give_their_layers_in_order():
    assert _leaves(Serial((D1, RELU, D2))) == [D1, RELU, D2]
    nested = Serial((D1, Serial((RELU, Serial((D2,)), ERF)), Serial(()), D3))
    assert _leaves(nested) == [D1, RELU, D2, ERF, D3]
    assert _leaves(D1) == [D1]


def test_repeat_runs_n_times_or_is_written_once():
    net = Serial((D1, Repeat(Serial((RELU, D2)), 3)))
    assert _leaves(net) == [D1] + [RELU, D2] * 3
    assert _leaves(net, repeat="once") == [D1, RELU, D2]
    zero = Serial((D1, Repeat(ERF, 0)))
    assert _leaves(zero) == [D1]
    assert _leaves(zero, repeat="once") == [D1, ERF]


def test_parallel_is_a_leaf_or_its_branches_in_order():
    par = Parallel((Serial((RELU, D2)), Identity(), D3))
    net = Serial((D1, FanOut(3), par, FanInSum()))
    assert _leaves(net) == [D1, FanOut(3), par, FanInSum()]
    assert _leaves(net, parallel=True) == [D1, FanOut(3), RELU, D2, Identity(), D3, FanInSum()]
    assert _leaves(net, parallel=True, skip="identity") == [D1, FanOut(3), RELU, D2, D3, FanInSum()]


def test_skip_names_which_identities_are_left_out():
    net = Serial((D1, Identity(), TEST, RELU, TRAIN, D2))
    assert _leaves(net) == [D1, Identity(), TEST, RELU, TRAIN, D2]
    assert _leaves(net, skip="identity") == [D1, TEST, RELU, TRAIN, D2]
    assert _leaves(net, skip="no-ops") == [D1, RELU, TRAIN, D2]
    assert [no_op(x) for x in (Identity(), TEST, TRAIN, D1)] == [True, True, False, False]


def test_sequence_is_what_serial_and_repeat_apply():
    assert sequence(Serial((D1, RELU))) == (D1, RELU)
    assert sequence(Repeat(D1, 3)) == (D1, D1, D1)
    assert sequence(Repeat(D1, 0)) == ()
    assert sequence(Repeat(D1, 0), once=True) == (D1,)
    assert sequence(Parallel((D1,))) is None and sequence(D1) is None


@pytest.mark.parametrize(
    ("options", "words"),
    [({"repeat": "twice"}, "repeat must be one of expand, once"), ({"skip": "all"}, "skip must")],
)
def test_bad_options_are_refused_by_name(options, words):
    with pytest.raises(InputError, match=words):
        leaves(D1, **options)


def test_live_branches_count_fan_out_parallel_and_fan_in():
    block = Serial((FanOut(2), Parallel((Serial((RELU, D2)), Identity())), FanInSum()))
    assert live_branches(Serial((D1, block))) == (2, 1)
    assert live_branches(Serial((D1, FanOut(3)))) == (3, 3)
    wide = Parallel((Serial((FanOut(2), Parallel((D1, D2)))), D3))
    assert live_branches(Serial((FanOut(2), wide))) == (3, 3)
    assert live_branches(Repeat(block, 0), 4) == (4, 4)
    assert live_branches(FanOut(2), 3) == (6, 6)
    assert live_branches(wide, 7) == (3, 3)  # a Parallel counts its branches from one each


# ---------------------------------------------------------------- random descriptions

_LEAF = st.sampled_from(
    [D1, D2, D3, RELU, ERF, LayerNorm(), TEST, TRAIN, Identity(), FanOut(2), FanInSum()]
)
ANY_NET = st.recursive(
    _LEAF,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4).map(lambda xs: Serial(tuple(xs))),
        st.lists(inner, min_size=1, max_size=3).map(lambda xs: Parallel(tuple(xs))),
        st.tuples(inner, st.integers(0, 3)).map(lambda p: Repeat(*p)),
    ),
    max_leaves=12,
)


@settings(max_examples=80, deadline=None)
@given(ANY_NET, ANY_NET, st.integers(0, 3), st.sampled_from(OPTIONS))
def test_the_walk_composes_over_serial_repeat_and_parallel(a, b, n, options):
    la, lb = _leaves(a, **options), _leaves(b, **options)
    assert _leaves(Serial((a, b)), **options) == la + lb
    copies = 1 if options["repeat"] == "once" else n
    assert _leaves(Repeat(a, n), **options) == la * copies
    par = Parallel((a, b))
    assert _leaves(par, **options) == (la + lb if options["parallel"] else [par])
    inner = (Serial, Repeat, Parallel) if options["parallel"] else (Serial, Repeat)
    assert not any(isinstance(x, inner) for x in la)


@settings(max_examples=80, deadline=None)
@given(ANY_NET, st.sampled_from(OPTIONS))
def test_skip_filters_the_walk(net, options):
    everything = _leaves(net, **{**options, "skip": "nothing"})
    drop = {"nothing": lambda x: False, "identity": lambda x: x == Identity(), "no-ops": no_op}
    kept = [x for x in everything if not drop[options["skip"]](x)]
    assert _leaves(net, **options) == kept


def _valid(depth: int = 2) -> st.SearchStrategy:
    """Networks the walk accepts: they start with a Dense layer and end on a Gaussian field."""
    act = st.sampled_from([RELU, ERF])
    layer = st.one_of(
        st.tuples(act, st.sampled_from([D1, D2, D3])).map(Serial),
        st.tuples(act, st.just(TRAIN), st.just(D2)).map(Serial),
        st.sampled_from([LayerNorm(), Identity(), TEST]),
        st.tuples(act, st.just(D1)).map(lambda p: Repeat(Serial(p), 2)),
    )
    if depth > 0:
        branch = st.one_of(
            st.tuples(act, _valid(depth - 1)).map(Serial), st.tuples(act, st.just(D2)).map(Serial)
        )
        block = st.tuples(st.just(Identity()), st.lists(branch, min_size=1, max_size=2)).map(
            lambda p: Serial((FanOut(len(p[1]) + 1), Parallel((p[0], *p[1])), FanInSum()))
        )
        layer = st.one_of(layer, block)
    return st.lists(layer, max_size=4).map(lambda xs: Serial((D2, *xs)))


class _Record:
    """An Ops that lists the layers the walk computes, in its order."""

    def __init__(self) -> None:
        self.seen: list = []

    def dense(self, p, meta, layer):
        self.seen.append(layer)

    def nonlinearity(self, p, layer):
        self.seen.append(layer)

    def layer_norm(self, p, layer):
        self.seen.append(layer)

    def dropout(self, p, layer):
        self.seen.append(layer)

    def fan_in_sum(self, ps):
        return None


@settings(max_examples=60, deadline=None)
@given(_valid(), st.integers(1, 3))
def test_leaves_are_the_layers_the_evaluating_walk_computes(net, outputs):
    record = _Record()
    Walker(record).run(net, (None, Meta(3)))
    computed = (Dense, Nonlinearity, LayerNorm, Dropout)
    walked = [x for x in leaves(net, parallel=True, skip="no-ops") if isinstance(x, computed)]
    assert walked == record.seen
    ends = Serial((net, FanOut(outputs)))
    most, after = live_branches(ends)
    assert after == check(ends) == outputs
    assert most >= max(
        [outputs] + [x.n for x in leaves(ends, parallel=True) if isinstance(x, FanOut)]
    )
