"""Writes a 28x28 grayscale image set as a pixel CSV, for benchmarking the MLP recipe.

Ten classes of capital letters chosen to be confusable in groups, as Fashion-MNIST's
shirts, pullovers and coats are: O Q C G D (round), B P R (bowls), E F (bars). Each
image is one letter in one of 18 of matplotlib's bundled fonts (DejaVu Sans, Sans
Mono and Serif, STIX, Computer Modern; regular, bold and italic cuts), drawn at twice
the size and then:

- scaled (0.85 to 1.1), rotated (up to 8 degrees either way), sheared a little,
- shifted so that its centre lies up to 1.5 pixels from the image centre,
- reduced to 28x28 with antialiasing, blurred by a random amount,
- with probability 0.9 cut by a blank rectangle of 8 to 14 pixels a side, which
  may remove what tells two letters apart (Q's tail, G's bar, R's leg),
- given a random ink intensity (140 to 255) and a smooth random shading over the
  glyph, like the textures of clothing, and Gaussian grain on the glyph and a few
  faint specks on the background,

then rounded to integers from 0 to 255 on a background of 0, as MNIST and
Fashion-MNIST are; the border pixels are almost always 0. The CSV has the columns
`label,pixel1,...,pixel784` (row-major), the layout of the Fashion-MNIST CSVs on
Kaggle, so `--data` reads it as 784 numeric features. Its difficulty is about that
of Fashion-MNIST for an MLP: on 20,000 images a plain Keras MLP scores about 0.90 and
logistic regression about 0.78 (docs/mlp.md).

The same `--seed` writes the same file (NumPy's PCG64 and Pillow's resampling are
deterministic). It needs only NumPy, pandas, Pillow and matplotlib's fonts. The file is
about 9 MB gzipped: write it outside the repository.

Usage:

    python benchmarks/make_image_csv.py /tmp/letters28.csv.gz              # 20,000 images, seed 0
    python benchmarks/make_image_csv.py /tmp/letters28.csv.gz --count 5000 --seed 1
"""

import argparse
import os

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw, ImageFilter, ImageFont

CLASSES = ("O", "Q", "C", "G", "D", "B", "P", "R", "E", "F")
FONTS = (
    "DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSans-Oblique.ttf", "DejaVuSans-BoldOblique.ttf",
    "DejaVuSansMono.ttf", "DejaVuSansMono-Bold.ttf", "DejaVuSansMono-Oblique.ttf",
    "DejaVuSerif.ttf", "DejaVuSerif-Bold.ttf", "DejaVuSerif-Italic.ttf", "DejaVuSerif-BoldItalic.ttf",
    "STIXGeneral.ttf", "STIXGeneralBol.ttf", "STIXGeneralItalic.ttf",
    "cmr10.ttf", "cmb10.ttf", "cmss10.ttf", "cmtt10.ttf",
)  # fmt: skip
SIDE = 28
ERASE_PROBABILITY = 0.9
SCALE = 2  # drawn at twice the size, then reduced with antialiasing


def font_folder():
    import matplotlib

    return os.path.join(os.path.dirname(matplotlib.__file__), "mpl-data", "fonts", "ttf")


def load_fonts(size):
    folder = font_folder()
    return [ImageFont.truetype(os.path.join(folder, name), size) for name in FONTS]


def draw_letter(letter, font, rng):
    """One letter as a 28x28 uint8 image, distorted as the module docstring says."""
    canvas_side = SIDE * SCALE
    glyph = Image.new("L", (canvas_side * 2, canvas_side * 2), 0)
    draw = ImageDraw.Draw(glyph)
    left, top, right, bottom = draw.textbbox((0, 0), letter, font=font)
    draw.text(((canvas_side * 2 - (right - left)) / 2 - left, (canvas_side * 2 - (bottom - top)) / 2 - top),
              letter, fill=255, font=font)  # fmt: skip
    # Scale, rotate, shear and shift with one affine map about the canvas centre.
    scale = rng.uniform(0.85, 1.1)
    angle = np.deg2rad(rng.uniform(-8, 8))
    shear = rng.uniform(-0.1, 0.1)
    shift = rng.uniform(-1.5, 1.5, size=2) * SCALE
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    forward = scale * rotation @ np.array([[1.0, shear], [0.0, 1.0]])
    inverse = np.linalg.inv(forward)  # PIL maps output pixels back to input pixels
    centre_in = np.array([canvas_side, canvas_side], dtype=float)
    centre_out = np.array([canvas_side / 2, canvas_side / 2]) + shift
    offset = centre_in - inverse @ centre_out
    coefficients = (inverse[0, 0], inverse[0, 1], offset[0], inverse[1, 0], inverse[1, 1], offset[1])
    image = glyph.transform((canvas_side, canvas_side), Image.Transform.AFFINE, coefficients, Image.Resampling.BILINEAR)
    image = image.resize((SIDE, SIDE), Image.Resampling.LANCZOS)
    image = image.filter(ImageFilter.GaussianBlur(rng.uniform(0.0, 1.2)))
    pixels = np.asarray(image, dtype=np.float64) / 255.0
    if rng.uniform() < ERASE_PROBABILITY:  # a patch is missing: the letter may then be ambiguous
        height, width = rng.integers(8, 15, size=2)
        top, left = rng.integers(4, SIDE - 4 - height + 1), rng.integers(4, SIDE - 4 - width + 1)
        pixels[top : top + height, left : left + width] = 0.0
    # Ink of a random intensity, shaded by a smooth random field (a low-frequency texture).
    rows, columns = np.mgrid[0:SIDE, 0:SIDE] / SIDE
    phase = rng.uniform(0, 2 * np.pi, size=2)
    frequency = rng.uniform(0.5, 2.0, size=2)
    shading = 1.0 - 0.35 * rng.uniform() * (
        0.5 + 0.5 * np.sin(2 * np.pi * (frequency[0] * rows + frequency[1] * columns) + phase[0])
    )
    ink = rng.uniform(140, 255)
    pixels = pixels * ink * shading
    pixels += (pixels > 8) * rng.normal(0, 30, size=pixels.shape)  # grain on the glyph
    pixels += rng.normal(0, 4, size=pixels.shape) * (rng.uniform(size=pixels.shape) < 0.08)  # specks
    return np.clip(np.rint(pixels), 0, 255).astype(np.uint8)


def make_images(count, seed):
    """`count` images and their labels, the classes in equal shares.

    Returns:
        A tuple `(images, labels)`: a uint8 array `(count, 784)` and a list of
        letters.
    """
    rng = np.random.default_rng(seed)
    fonts = load_fonts(size=int(SIDE * SCALE * 0.95))
    labels = [CLASSES[index % len(CLASSES)] for index in range(count)]
    rng.shuffle(labels)
    images = np.empty((count, SIDE * SIDE), dtype=np.uint8)
    for row, letter in enumerate(labels):
        font = fonts[rng.integers(len(fonts))]
        images[row] = draw_letter(letter, font, rng).reshape(-1)
    return images, labels


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("output", help="The CSV to write (.csv, or .csv.gz to compress it).")
    parser.add_argument("--count", type=int, default=20000, help="Number of images (default: 20000).")
    parser.add_argument("--seed", type=int, default=0, help="Seed of every random choice (default: 0).")
    arguments = parser.parse_args()
    images, labels = make_images(arguments.count, arguments.seed)
    frame = pd.DataFrame(images, columns=[f"pixel{index + 1}" for index in range(SIDE * SIDE)])
    frame.insert(0, "label", labels)
    frame.to_csv(arguments.output, index=False)
    print(f"wrote {arguments.count} images of {len(CLASSES)} classes to {arguments.output}")


if __name__ == "__main__":
    main()
