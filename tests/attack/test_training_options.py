"""Training options for the MLP study (BENCHMARKS.md, "MLP reconstructions: why they were not faces")."""
import pytest
import torch

from attack.faces import Split
from attack.models import build_model
from attack.training import TrainConfig, input_layer, train_model


def orthogonal_part(weight: torch.Tensor, train: torch.Tensor) -> torch.Tensor:
    basis = torch.linalg.svd(train.double(), full_matrices=False).Vh
    w = weight.double()
    return w - (w @ basis.T) @ basis


@pytest.fixture(scope="module")
def setting(faces):
    split = Split.make(0)
    train = torch.from_numpy(faces.flat(split.indices(faces, "train")))
    return faces, split, train


def initial_input_weights(cfg: TrainConfig) -> torch.Tensor:
    torch.manual_seed(cfg.seed)  # as train_model draws them
    return input_layer(build_model("softmax")).weight.detach() * cfg.input_init_scale


@pytest.mark.parametrize("overrides", [{}, {"input_init_scale": 0.5}])
def test_sgd_never_touches_the_input_weights_orthogonal_to_every_training_image(setting, overrides):
    faces, split, train = setting
    cfg = TrainConfig.for_architecture("softmax", max_epochs=3, **overrides)
    model, _ = train_model("softmax", faces, split, cfg)
    before = orthogonal_part(initial_input_weights(cfg), train)
    after = orthogonal_part(input_layer(model).weight.detach(), train)
    assert (after - before).norm() < 1e-5 * before.norm()
    assert (input_layer(model).weight.detach().double() - initial_input_weights(cfg).double()).norm() > 0.1


def test_weight_decay_shrinks_that_part_by_one_minus_lr_times_decay_a_step(setting):
    faces, split, train = setting
    cfg = TrainConfig.for_architecture("softmax", max_epochs=2, weight_decay=0.05)
    model, result = train_model("softmax", faces, split, cfg)
    steps = result.epochs * -(-len(train) // cfg.batch_size)
    before = orthogonal_part(initial_input_weights(cfg), train)
    after = orthogonal_part(input_layer(model).weight.detach(), train)
    torch.testing.assert_close(after, before * (1 - cfg.lr * cfg.weight_decay) ** steps, rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("overrides, message", [({"weight_decay": -1.0}, "weight decay must be 0 or more"),
                                                ({"input_init_scale": float("nan")}, "initial scale")])
def test_bad_training_options_are_refused(overrides, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**overrides)
