"""Process-DAE, the paper's Algorithm 2: decode, non-local-means denoise, sharpen, re-encode.

Gradient steps in the DAE's code space drift toward codes that decode to noise; cleaning the decoded image
and projecting it back keeps the search near codes of face-like images.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from skimage.filters import unsharp_mask
from skimage.restoration import denoise_nl_means

from .faces import HEIGHT, WIDTH


def clean_face(image: np.ndarray, h: float, sharpen_radius: float, sharpen_amount: float) -> np.ndarray:
    denoised = denoise_nl_means(image, h=h, patch_size=5, patch_distance=6, fast_mode=True)
    return np.clip(unsharp_mask(denoised, radius=sharpen_radius, amount=sharpen_amount), 0.0, 1.0)


class ProcessDAE:
    def __init__(self, encode, decode, h: float = 0.05, sharpen_radius: float = 1.0,
                 sharpen_amount: float = 1.0, workers: int = 2, shape: tuple[int, int] = (HEIGHT, WIDTH)) -> None:
        self.encode, self.decode, self.shape = encode, decode, shape
        self.h, self.sharpen_radius, self.sharpen_amount = h, sharpen_radius, sharpen_amount
        self.pool = ThreadPoolExecutor(max_workers=workers) if workers > 1 else None

    def params(self) -> dict:
        return {"nl_means_h": self.h, "sharpen_radius": self.sharpen_radius,
                "sharpen_amount": self.sharpen_amount}

    def __call__(self, code: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            images = self.decode(code).reshape(-1, *self.shape).cpu().double().numpy()
        def one(img: np.ndarray) -> np.ndarray:
            return clean_face(img, self.h, self.sharpen_radius, self.sharpen_amount)
        cleaned = list(self.pool.map(one, images)) if self.pool else [one(img) for img in images]
        pixels = torch.from_numpy(np.stack(cleaned).reshape(len(images), -1)).to(code.dtype).to(code.device)
        with torch.no_grad():
            return self.encode(pixels)
