"""Small models whose gradients can be worked out by hand, for checking the attack's arithmetic."""
import torch

from attack.models import FaceModel


class TinyLinear(FaceModel):
    """logits = x W^T over a 3-pixel 'image': for two classes f_0 = sigmoid((w_0 - w_1) . x)."""

    name = "tiny"

    def __init__(self, weights) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.tensor(weights, dtype=torch.float32))
        self.attack_dim = self.pixels = self.weight.shape[1]

    def classify(self, code: torch.Tensor) -> torch.Tensor:
        return code @ self.weight.T
