"""The data both train.py and make_requests.py use: scikit-learn's bundled digits, made to look like MNIST.

`load_digits` ships with scikit-learn (1,797 images, 8x8, values 0-16), so nothing is downloaded. Each image
is scaled to 8-bit, upscaled to 20x20 and centred in a 28x28 frame, as MNIST centres its digits in a 20x20
box. The split is fixed, so the sample requests come only from images the model never trained on.
"""

from __future__ import annotations

import numpy as np
from PIL import Image
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

SIZE = 28
DIGIT_BOX = 20
TEST_FRACTION = 0.25
SPLIT_SEED = 0


def mnist_like(digits_8x8: np.ndarray) -> np.ndarray:
    """(n, 8, 8) values 0-16 -> (n, 28, 28) uint8, digit upscaled to 20x20 with a 4-pixel black margin."""
    margin = (SIZE - DIGIT_BOX) // 2
    out = np.zeros((len(digits_8x8), SIZE, SIZE), dtype=np.uint8)
    pixels = np.clip(np.rint(digits_8x8 * (255 / 16)), 0, 255).astype(np.uint8)
    for i, small in enumerate(pixels):
        big = Image.fromarray(small).resize((DIGIT_BOX, DIGIT_BOX), Image.Resampling.BILINEAR)
        out[i, margin : margin + DIGIT_BOX, margin : margin + DIGIT_BOX] = np.asarray(big)
    return out


def train_test_images() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(train images, train labels, test images, test labels); a stratified, seeded 75/25 split."""
    digits = load_digits()
    images = mnist_like(digits.images)
    labels = digits.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(
        images, labels, test_size=TEST_FRACTION, random_state=SPLIT_SEED, stratify=labels
    )
    return x_train, y_train, x_test, y_test


def shift(images: np.ndarray, dy: np.ndarray, dx: np.ndarray) -> np.ndarray:
    """Move each image by its own (dy, dx) pixels. np.roll wraps around, but shifts up to the 4-pixel black
    margin only wrap black pixels, so the digit moves and stays whole."""
    out = np.empty_like(images)
    for i, (image, down, right) in enumerate(zip(images, dy, dx, strict=True)):
        out[i] = np.roll(image, (int(down), int(right)), axis=(0, 1))
    return out
