"""Black-box queries go through the door a real service has: every query the API counts is an image."""
import pytest
import torch

from attack.gradient_estimators import NESEstimator
from attack.mi_face import MIFace, MIFaceConfig
from attack.models import StackedDAE
from attack.prediction_api import PredictionAPI


def spied_dae():
    """A small DAE whose every forward pass (pixels in) and every head call (codes in) is recorded."""
    torch.manual_seed(0)
    model = StackedDAE(layers=(16, 4))
    seen = {"forward": [], "classify": []}
    model.register_forward_pre_hook(lambda module, args: seen["forward"].append(tuple(args[0].shape)))
    model.head.register_forward_pre_hook(lambda module, args: seen["classify"].append(tuple(args[0].shape)))
    return model, seen


def invert(door: str, labels=(0, 1)):
    model, seen = spied_dae()
    api = PredictionAPI(model, door=door)
    attack = MIFace(api, MIFaceConfig(alpha=4, lam=10.0, start_value=0.5),
                    estimator=NESEstimator(samples=3, seed=0), show_progress=False)
    results = attack.invert(list(labels))
    return api, seen, results, attack


def test_every_blackbox_query_of_the_dae_is_an_image_of_the_pixel_size():
    api, seen, results, attack = invert("image")
    assert {shape[1] for shape in seen["forward"]} == {112 * 92}
    # every image the model saw was a counted query, except the finished images scored at the end
    assert sum(shape[0] for shape in seen["forward"]) == api.queries + len(results)
    assert api.queries == sum(r.queries for r in results) > 0
    # and the head only ever saw codes the model computed from those images
    assert sum(shape[0] for shape in seen["classify"]) == sum(shape[0] for shape in seen["forward"])
    assert attack.settings()["door"] == "image"


def test_the_latent_space_oracle_is_kept_as_a_named_setting_for_comparison():
    api, seen, results, attack = invert("latent")
    assert sum(shape[0] for shape in seen["forward"]) == len(results)  # only the finished images
    assert {shape[1] for shape in seen["classify"]} == {4}
    assert api.queries == sum(r.queries for r in results) > 0
    assert attack.settings()["door"] == "latent"


def test_the_service_refuses_what_is_not_an_image():
    api = PredictionAPI(StackedDAE(layers=(16, 4)))
    with pytest.raises(ValueError, match="images of 10304 pixels"):
        api.confidences(torch.zeros(2, 4))
    assert api.queries == 0
    with pytest.raises(ValueError, match="door must be one of image, latent"):
        PredictionAPI(StackedDAE(layers=(16, 4)), door="code")


def test_the_image_door_sees_the_decoded_code():
    model, _ = spied_dae()
    api = PredictionAPI(model)
    code = torch.rand(3, 4)
    expected = torch.softmax(model.head(model.encode(model.decode(code))), dim=1)
    torch.testing.assert_close(api.query(code), expected)
    assert not torch.allclose(api.latent_confidences(code), expected)  # encode(decode(z)) is not z
    assert api.queries == 6
