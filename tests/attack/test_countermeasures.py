import pytest
import torch

from attack.countermeasures import AdditiveNoise, LabelOnly, Rounding, parse_countermeasure


def test_rounding_to_a_multiple_of_r():
    p = torch.tensor([[0.1234, 0.8766], [0.004, 0.996]])
    assert torch.allclose(Rounding(0.01).apply(p), torch.tensor([[0.12, 0.88], [0.0, 1.0]]))
    assert torch.allclose(Rounding(0.05).apply(p), torch.tensor([[0.10, 0.90], [0.0, 1.0]]))
    assert torch.allclose(Rounding(0.001).apply(p), torch.tensor([[0.123, 0.877], [0.004, 0.996]]))


def test_rounding_hides_small_changes():
    before, after = torch.tensor([[0.5012, 0.4988]]), torch.tensor([[0.5031, 0.4969]])
    assert torch.equal(Rounding(0.01).apply(before), Rounding(0.01).apply(after))
    assert not torch.equal(Rounding(0.001).apply(before), Rounding(0.001).apply(after))


def test_label_only_returns_one_hot_of_the_prediction():
    out = LabelOnly().apply(torch.tensor([[0.2, 0.7, 0.1], [0.5, 0.1, 0.4]]))
    assert out.tolist() == [[0, 1, 0], [1, 0, 0]]


def test_noise_is_seeded_and_clamped():
    p = torch.full((200, 2), 0.5)
    a, b = AdditiveNoise(0.3, seed=1).apply(p), AdditiveNoise(0.3, seed=1).apply(p)
    assert torch.equal(a, b)
    assert a.min() >= 0 and a.max() <= 1 and a.std() > 0.2


@pytest.mark.parametrize("spec,expected", [("none", "none"), ("round:0.005", "round:0.005"),
                                           ("label-only", "label-only"), ("noise:0.1", "noise:0.1")])
def test_specs_round_trip(spec, expected):
    assert str(parse_countermeasure(spec)) == expected


@pytest.mark.parametrize("spec,message", [("round", "needs a number"), ("round:abc", "needs a number"),
                                          ("round:2", "outside"), ("round:0", "outside"),
                                          ("blur:1", "unknown countermeasure"), ("none:1", "unknown")])
def test_bad_specs_say_what_is_wrong(spec, message):
    with pytest.raises(ValueError, match=message):
        parse_countermeasure(spec)
