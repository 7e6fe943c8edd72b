"""DeepFashion In-shop pose-transfer pairs in the GFLA layout, fitted to the model's square canvas.

Layout (``root`` = the folder that holds the CSV files; ``{split}`` is ``train`` or ``test``)::

    fasion-resize-pairs-{split}.csv        header ``from,to``: source image name, target image name
    fasion-resize-annotation-{split}.csv   ``name:keypoints_y:keypoints_x``, ':'-separated
    {split}/                               the 176 × 256 (W × H) RGB images, .jpg or .png

The file names vary between the projects that share this split (the typo "fasion" is original):
PATN, ADGAN, PISE and DPTN ship ``fasion-resize-pairs-*.csv`` / ``fasion-resize-annotation-*.csv``,
GFLA's loader reads ``fasion-pairs-*.csv`` / ``fasion-annotation-*.csv``; both, and the same names
spelled "fashion", are accepted. Image names in the CSVs end in ``.jpg``; copies converted to
``.png`` (as PIDM stores them) are found too.

Keypoints. The annotation lists the 18 COCO-18 ``y`` then the 18 ``x`` coordinates of each image,
integers in the 176 × 256 image itself, ``-1`` = missing (parsed by
:func:`pidm_core.pose.formats.read_deepfashion_csv`). The official PIDM loader reads a different
file, ``pose/*.txt``, whose x values live in a 256-wide frame with the 176-wide photo centred in it;
it subtracts 40 (= (256 − 176) / 2) before scaling. The CSV coordinates are already in the photo,
so no offset applies here: GFLA's loader scales them by ``load_size / (256, 176)`` and nothing else.

Fitting to the ``S × S`` canvas. ``fit="stretch"`` is what the official code does: the image is
resized to ``S × S`` (PIL bicubic, as torchvision's ``Resize`` on a PIL image) and keypoints map as
``x·S/176``, ``y·S/256``. ``fit="pad"`` keeps the aspect ratio (scale the height to ``S``, centre
horizontally, repeat the border) exactly as :meth:`pidm_core.placement.Placement.canvas_images` places a photo, so
a model trained that way sees DeepFashion as it will see user photos. Missing joints stay missing
(confidence 0, coordinates 0) in both.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from PIL import Image

from ..fit_modes import FIT_MODES
from ..placement import Placement, fitted_placement
from ..pose.formats import DEEPFASHION_HEIGHT, DEEPFASHION_WIDTH, read_deepfashion_csv
from ..pose.keypoints import Pose

SPLITS = ("train", "test")
# The trainer asks for its sample grid under this name; DeepFashion's held-out split is "test".
SPLIT_ALIASES = {"held_out": "test"}

# Candidate names, most common first; the first one that exists is used.
PAIR_FILES = ("fasion-resize-pairs-{split}.csv", "fasion-pairs-{split}.csv",
              "fashion-resize-pairs-{split}.csv", "fashion-pairs-{split}.csv")
ANNOTATION_FILES = ("fasion-resize-annotation-{split}.csv", "fasion-annotation-{split}.csv",
                    "fashion-resize-annotation-{split}.csv", "fashion-annotation-{split}.csv")
IMAGE_SUFFIXES = (".jpg", ".png", ".jpeg")


class DatasetLayoutError(ValueError):
    """A dataset folder that does not hold the expected files; the message names the root and the file."""


def _find(root: Path, candidates: tuple[str, ...], split: str, what: str) -> Path:
    names = [c.format(split=split) for c in candidates]
    for name in names:
        if (root / name).is_file():
            return root / name
    raise DatasetLayoutError(
        f"DeepFashion root {root} has no {what} for split {split!r}: expected {root / names[0]} "
        f"(or {', '.join(names[1:])}); download the GFLA train/test pairs and keypoint annotations into that folder"
    )


def read_pairs_csv(path: Path) -> list[tuple[str, str]]:
    """``(from, to)`` image names from a pairs CSV with a ``from,to`` header (extra columns, e.g. a
    pandas index, are ignored)."""
    with open(path, newline="") as handle:
        rows = [row for row in csv.reader(handle) if any(cell.strip() for cell in row)]
    if not rows:
        raise DatasetLayoutError(f"{path} is empty; expected a 'from,to' header and one pair per line")
    header = [cell.strip() for cell in rows[0]]
    if "from" not in header or "to" not in header:
        raise DatasetLayoutError(f"{path}: expected a header with columns 'from' and 'to', got {rows[0]}")
    i_from, i_to = header.index("from"), header.index("to")
    pairs = []
    for line, row in enumerate(rows[1:], start=2):
        if len(row) <= max(i_from, i_to):
            raise DatasetLayoutError(f"{path} line {line}: expected 'from,to', got {row}")
        pairs.append((row[i_from].strip(), row[i_to].strip()))
    if not pairs:
        raise DatasetLayoutError(f"{path} holds a header but no pairs")
    return pairs


class DeepFashionPairs:
    """Pose-transfer pairs of one split of DeepFashion (GFLA split and annotations).

    ``pair(i)`` → ``(source_image, source_keypoints, target_image, target_keypoints)``: uint8
    ``[S, S, 3]`` RGB and float32 ``[18, 3]`` ``(x_px, y_px, confidence)`` on the ``S × S`` canvas,
    confidence 0 = missing. ``native_pair(i)`` gives the same pair in the dataset's own 176 × 256
    frame (images as stored, :class:`Pose` objects), the frame metrics are computed in;
    :attr:`fit` says how the one maps onto the other (:meth:`pidm_core.placement.Placement.output_images`
    inverts it).

    Construction reads both CSVs and checks that every image of every pair exists and has keypoints,
    so a broken download fails here, with the file named, not hours into training.
    """

    def __init__(self, root: str | Path, split: str = "train", size: int = 256, fit: str = "stretch"):
        split = SPLIT_ALIASES.get(split, split)
        if split not in SPLITS:
            raise ValueError(f"DeepFashion split must be one of {SPLITS} (or 'held_out' = 'test'), got {split!r}")
        if fit not in FIT_MODES:
            raise ValueError(f"fit must be one of {FIT_MODES}, got {fit!r}")
        if int(size) < 8:
            raise ValueError(f"canvas size must be at least 8 pixels, got {size}")
        self.root = Path(root)
        if not self.root.is_dir():
            raise DatasetLayoutError(f"DeepFashion root {self.root} does not exist or is not a folder")
        self.split, self.size, self.fit_mode = split, int(size), fit
        self.pairs_file = _find(self.root, PAIR_FILES, split, "pairs file")
        self.annotation_file = _find(self.root, ANNOTATION_FILES, split, "keypoint annotation file")
        self.image_dir = self.root / split
        if not self.image_dir.is_dir():
            raise DatasetLayoutError(
                f"DeepFashion root {self.root} has no image folder {self.image_dir} for split {split!r} "
                f"(the {DEEPFASHION_WIDTH}x{DEEPFASHION_HEIGHT} images named in {self.pairs_file.name})"
            )
        self.pairs = read_pairs_csv(self.pairs_file)
        self.poses: dict[str, Pose] = read_deepfashion_csv(self.annotation_file)
        self._files = self._resolve_images()
        self.fit: Placement = fitted_placement(DEEPFASHION_HEIGHT, DEEPFASHION_WIDTH, self.size, fit)

    def _resolve_images(self) -> dict[str, Path]:
        """Image path of every name used by a pair (one directory listing, then set lookups)."""
        present = {p.name for p in self.image_dir.iterdir()}
        files: dict[str, Path] = {}
        for index, names in enumerate(self.pairs):
            for name in names:
                if name in files:
                    continue
                if name not in self.poses:
                    raise DatasetLayoutError(
                        f"{self.annotation_file} has no keypoints for image {name!r} "
                        f"(pair {index} of {self.pairs_file})"
                    )
                stem = Path(name).stem
                options = [name] + [stem + s for s in IMAGE_SUFFIXES]
                found = next((n for n in options if n in present), None)
                if found is None:
                    raise DatasetLayoutError(
                        f"image {name!r} of pair {index} in {self.pairs_file} is not in {self.image_dir} "
                        f"(looked for {', '.join(dict.fromkeys(options))})"
                    )
                files[name] = self.image_dir / found
        return files

    def __len__(self) -> int:
        return len(self.pairs)

    def names(self, index: int) -> tuple[str, str]:
        """``(source_name, target_name)`` of pair ``index`` as the pairs CSV spells them."""
        return self.pairs[index]

    def load_image(self, name: str) -> np.ndarray:
        """uint8 ``[256, 176, 3]`` RGB. Images of another size (e.g. the high-resolution originals)
        are resized to 176 × 256, the frame the annotations are in."""
        with Image.open(self._files[name]) as image:
            image = image.convert("RGB")
            if image.size != (DEEPFASHION_WIDTH, DEEPFASHION_HEIGHT):
                image = image.resize((DEEPFASHION_WIDTH, DEEPFASHION_HEIGHT), Image.BICUBIC)
            return np.asarray(image, dtype=np.uint8).copy()

    def native_pair(self, index: int) -> tuple[np.ndarray, Pose, np.ndarray, Pose]:
        """Pair ``index`` in the dataset's frame: images uint8 ``[256, 176, 3]``, poses on 176 × 256."""
        source, target = self.pairs[index]
        return self.load_image(source), self.poses[source], self.load_image(target), self.poses[target]

    def fit_image(self, image: np.ndarray) -> np.ndarray:
        """uint8 ``[256, 176, 3]`` → uint8 ``[S, S, 3]`` on the model canvas."""
        info = self.fit
        resized = Image.fromarray(image).resize((info.content_width, info.content_height), Image.BICUBIC)
        array = np.array(resized, dtype=np.uint8)  # a writable copy: torch.from_numpy warns on PIL's read-only view
        pad_x = (info.offset_x, info.size - info.content_width - info.offset_x)
        pad_y = (info.offset_y, info.size - info.content_height - info.offset_y)
        if any(pad_x + pad_y):
            array = np.pad(array, (pad_y, pad_x, (0, 0)), mode="edge")
        return array

    def fit_keypoints(self, pose: Pose) -> np.ndarray:
        """Pose on 176 × 256 → float32 ``[18, 3]`` on the canvas (``x·sx + ox``, ``y·sy + oy``)."""
        info = self.fit
        keypoints = pose.keypoints.copy()
        present = pose.present
        keypoints[present, 0] = keypoints[present, 0] * np.float32(info.scale_x) + info.offset_x
        keypoints[present, 1] = keypoints[present, 1] * np.float32(info.scale_y) + info.offset_y
        return keypoints

    def pair(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Pair ``index`` on the ``S × S`` canvas: (source uint8 [S, S, 3], source keypoints [18, 3],
        target uint8 [S, S, 3], target keypoints [18, 3])."""
        source, source_pose, target, target_pose = self.native_pair(index)
        return (self.fit_image(source), self.fit_keypoints(source_pose),
                self.fit_image(target), self.fit_keypoints(target_pose))

    def __repr__(self) -> str:
        return (f"DeepFashionPairs({str(self.root)!r}, split={self.split!r}, size={self.size}, "
                f"fit={self.fit_mode!r}: {len(self)} pairs)")
