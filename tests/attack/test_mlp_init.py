"""The MLP whose first layer starts in the training photos' span (TrainConfig.input_init, BENCHMARKS.md)."""
import pytest
import torch

from attack.faces import Split
from attack.models import build_model
from attack.training import TrainConfig, input_layer, span_init_, train_model

HIDDEN = 64  # a narrow MLP: the rule under test does not depend on the width, and it trains in seconds


@pytest.fixture(scope="module")
def setting(faces):
    split = Split.make(0)
    train = torch.from_numpy(faces.flat(split.indices(faces, "train")))
    basis = torch.linalg.svd(train.double(), full_matrices=False).Vh  # orthonormal rows spanning the photos
    return faces, split, train, basis


def outside_share(weight: torch.Tensor, basis: torch.Tensor) -> float:
    """The share of the weights' norm orthogonal to every training photo."""
    w = weight.detach().double()
    return float((w - (w @ basis.T) @ basis).norm() / w.norm())


def test_span_init_lies_in_the_photos_span_and_spreads_like_glorot(setting):
    _, _, train, basis = setting
    torch.manual_seed(0)
    glorot = input_layer(build_model("mlp", hidden=HIDDEN)).requires_grad_(False)
    paper_spread = float((train @ glorot.weight.T).std())
    paper_outside = outside_share(glorot.weight, basis)
    span_init_(glorot, train)
    assert paper_outside > 0.9  # the paper's draw is nearly all outside the span (what the option removes)
    assert outside_share(glorot.weight, basis) < 1e-5
    assert float((train @ glorot.weight.T).std()) == pytest.approx(paper_spread, rel=1e-4)


def test_sgd_keeps_the_span_initialised_layer_in_the_span(setting):
    faces, split, train, basis = setting
    cfg = TrainConfig.for_architecture("mlp", max_epochs=2, input_init="span")
    model, result = train_model("mlp", faces, split, cfg, hidden=HIDDEN)
    torch.manual_seed(cfg.seed)  # the draw train_model started from
    start = span_init_(input_layer(build_model("mlp", hidden=HIDDEN)), train).weight.detach()
    moved = input_layer(model).weight.detach()
    assert result.epochs == 2 and (moved - start).norm() > 1e-3 * start.norm()
    assert outside_share(moved, basis) < 1e-5


def test_the_paper_mlp_is_still_the_default(setting):
    faces, split, _, basis = setting
    cfg = TrainConfig.for_architecture("mlp", max_epochs=1)
    model, _ = train_model("mlp", faces, split, cfg, hidden=HIDDEN)
    assert cfg.input_init == "random"
    assert outside_share(input_layer(model).weight, basis) > 0.9


def test_an_unknown_initialisation_is_refused():
    with pytest.raises(ValueError, match="initialisation must be one of random, span, got 'pca'"):
        TrainConfig(input_init="pca")


def test_a_rank_limited_span_init_lies_in_the_top_principal_components(setting):
    _, _, train, _ = setting
    centred = (train - train.mean(0)).double()
    top = torch.linalg.svd(centred, full_matrices=False).Vh[:20]  # the first 20 principal directions
    torch.manual_seed(0)
    layer = span_init_(input_layer(build_model("mlp", hidden=HIDDEN)).requires_grad_(False), train, rank=20)
    assert outside_share(layer.weight, top) < 1e-4
    torch.manual_seed(0)
    full = span_init_(input_layer(build_model("mlp", hidden=HIDDEN)).requires_grad_(False), train)
    assert outside_share(full.weight, top) > 0.3  # all 280 photos reach well past their top 20 components


@pytest.mark.parametrize("kwargs,message", [({"input_init_rank": -1}, "initial rank must be 0"),
                                            ({"input_init_rank": 20}, "span initialisation only")])
def test_a_bad_initial_rank_is_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**kwargs)
