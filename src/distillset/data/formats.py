"""Readers for the standard on-disk formats of image datasets, each returning plain numpy arrays.

Every reader returns ``(images, labels)`` with ``images`` uint8 [N, C, H, W] and ``labels`` int64 [N],
and raises :class:`DistillsetError` naming the file when it is truncated, corrupt or not of the format.
No reader executes code from a file: CIFAR's pickles go through a whitelisting unpickler.
"""

from __future__ import annotations

import gzip
import math
import os
import pickle
import zlib
from pathlib import Path

import numpy as np

from ..errors import DistillsetError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


def read_bytes(path: Path) -> bytes:
    """File content, transparently gunzipped when the name ends in .gz."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DistillsetError(f"cannot read {path}: {exc.strerror or exc}") from None
    if path.suffix != ".gz":
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        raise DistillsetError(f"{path} is a truncated or corrupt gzip file ({exc}); delete it and fetch it again") from None


# --------------------------------------------------------------------------------------------- idx
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_text_lines(path: Path) -> list[str]:
    """The non-empty lines of a text file (a release's index or annotation file), without line ends."""
    try:
        text = read_bytes(path).decode("utf-8")
    except UnicodeDecodeError:
        raise DistillsetError(f"{path} is not a UTF-8 text file; the release is damaged") from None
    return [line.rstrip("\r") for line in text.split("\n") if line.strip()]


def parse_idx(data: bytes, source: str) -> np.ndarray:
    """Decode the idx format of MNIST-family files (magic 0 0 dtype ndim, big-endian dims, data)."""
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES or data[3] == 0:
        raise DistillsetError(f"{source} is not an idx file (bad magic number)")
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DistillsetError(f"{source} is truncated (idx header incomplete)")
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    dtype = np.dtype(_IDX_DTYPES[data[2]])
    expected = header + math.prod(dims) * dtype.itemsize  # Python integers: a forged header cannot overflow
    if len(data) != expected:
        what = "truncated" if len(data) < expected else "longer than its header says"
        raise DistillsetError(f"{source} is {what}: {len(data)} bytes, expected {expected} for shape {dims}")
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(dims)


def read_idx_pair(images_path: Path, labels_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One split of an MNIST-family dataset: an idx3 image file and an idx1 label file."""
    images = parse_idx(read_bytes(images_path), str(images_path))
    labels = parse_idx(read_bytes(labels_path), str(labels_path))
    if images.ndim != 3 or images.dtype != np.uint8:
        raise DistillsetError(f"{images_path} should hold uint8 images [N, H, W], found {images.dtype} {list(images.shape)}")
    if labels.ndim != 1 or len(labels) != len(images):
        raise DistillsetError(
            f"{labels_path} holds {labels.shape} labels for {len(images)} images in {images_path}; the pair does not match"
        )
    return images[:, None, :, :].copy(), labels.astype(np.int64)


# ------------------------------------------------------------------------------------------- CIFAR
class _SafeUnpickler(pickle.Unpickler):
    """Unpickles CIFAR batches: plain containers and numpy arrays only, never an arbitrary callable."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("copyreg", "_reconstructor"),
        ("_codecs", "encode"),  # how Python 3 writes bytes at protocol 2: str -> bytes, nothing more
        ("__builtin__", "object"),
        ("builtins", "object"),
    }

    def find_class(self, module: str, name: str):  # noqa: D401 - pickle API
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}: not plain data")
        return super().find_class(module, name)


def read_cifar_pickle(path: Path) -> dict:
    """Load one CIFAR python batch (a dict) with keys decoded to str."""
    try:
        with open(path, "rb") as handle:
            obj = _SafeUnpickler(handle, encoding="bytes").load()
    except OSError as exc:
        raise DistillsetError(f"cannot read {path}: {exc.strerror or exc}") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError) as exc:
        raise DistillsetError(f"{path} is not a readable CIFAR batch (truncated, corrupt or unsafe: {exc})") from None
    if not isinstance(obj, dict):
        raise DistillsetError(f"{path} is not a CIFAR batch: expected a dict, found {type(obj).__name__}")
    return {(k.decode("latin1") if isinstance(k, bytes) else k): v for k, v in obj.items()}


def read_cifar_batches(paths: list[Path], label_key: str) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate CIFAR batches: ``data`` [N, 3072] row-major RGB planes, labels under ``label_key``."""
    images, labels = [], []
    for path in paths:
        batch = read_cifar_pickle(path)
        if "data" not in batch or label_key not in batch:
            raise DistillsetError(f"{path} lacks the '{'data' if 'data' not in batch else label_key}' entry of a CIFAR batch")
        data = np.asarray(batch["data"])
        try:
            batch_labels = np.asarray(batch[label_key], dtype=np.int64)
        except (ValueError, TypeError, OverflowError):
            raise DistillsetError(f"{path}: the '{label_key}' entry is not a flat list of whole-number labels") from None
        if batch_labels.ndim != 1:
            raise DistillsetError(f"{path}: the '{label_key}' entry must be a flat list of labels, found shape "
                                  f"{list(batch_labels.shape)}")
        if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(batch_labels) != len(data):
            raise DistillsetError(f"{path} has data {data.dtype} {list(data.shape)} and {len(batch_labels)} labels; expected uint8 [N, 3072] and N labels")
        images.append(data.reshape(-1, 3, 32, 32))
        labels.append(batch_labels)
    return np.concatenate(images), np.concatenate(labels)


def read_cifar_label_names(path: Path, key: str) -> list[str] | None:
    """Class names from CIFAR's meta file, or None when the file is absent."""
    if not path.exists():
        return None
    meta = read_cifar_pickle(path)
    names = meta.get(key)
    if names is None:
        return None
    return [n.decode() if isinstance(n, bytes) else str(n) for n in names]


# -------------------------------------------------------------------------------------------- SVHN
def read_svhn_mat(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """SVHN's cropped-digit .mat: X [32, 32, 3, N] uint8, y [N, 1] with the digit 0 stored as 10."""
    from scipy.io import loadmat
    from scipy.io.matlab import MatReadError

    if not path.exists():
        raise DistillsetError(f"cannot read {path}: no such file")
    try:
        mat = loadmat(str(path), variable_names=["X", "y"])
    except (MatReadError, ValueError, OSError, TypeError, zlib.error) as exc:
        raise DistillsetError(f"{path} is not a readable SVHN .mat file (truncated or corrupt: {exc})") from None
    if "X" not in mat or "y" not in mat:
        raise DistillsetError(f"{path} lacks the X and y arrays of an SVHN .mat file")
    x, y = mat["X"], mat["y"].reshape(-1).astype(np.int64)
    if x.ndim != 4 or x.shape[2] != 3 or x.shape[3] != len(y):
        raise DistillsetError(f"{path}: X has shape {list(x.shape)}, expected [32, 32, 3, N] with N = {len(y)}")
    y = np.where(y == 10, 0, y)
    return np.ascontiguousarray(np.transpose(x, (3, 2, 0, 1))).astype(np.uint8), y


# ------------------------------------------------------------------------------------- image folder
def list_image_folder(root: Path) -> tuple[list[str], list[tuple[Path, int]]]:
    """Class names (sorted sub-folder names) and (file, class index) pairs below ``root``."""
    if not root.is_dir():
        raise DistillsetError(f"image folder {root} does not exist or is not a directory")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise DistillsetError(f"image folder {root} has no class sub-folders; expected {root}/<class name>/<image files>")
    items = []
    for index, name in enumerate(classes):
        files = sorted(p for p in (root / name).rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
        if not files:
            raise DistillsetError(f"class folder {root / name} holds no image files ({', '.join(IMAGE_EXTENSIONS)})")
        items.extend((f, index) for f in files)
    return classes, items


DEFAULT_MAX_IMAGE_PIXELS = 64_000_000  # 8000 x 8000; DISTILLSET_MAX_IMAGE_PIXELS overrides


def read_images(items: list[tuple[Path, int]], size: tuple[int, int] | None, grayscale: bool) -> tuple[np.ndarray, np.ndarray]:
    """Decode image files with Pillow into one uint8 array, resizing to ``size`` (H, W) when given."""
    from PIL import Image, UnidentifiedImageError

    mode = "L" if grayscale else "RGB"
    limit = int(os.environ.get("DISTILLSET_MAX_IMAGE_PIXELS", DEFAULT_MAX_IMAGE_PIXELS))
    arrays, labels = [], []
    first_shape = None
    for path, label in items:
        try:
            with Image.open(path) as img:
                if img.width * img.height > limit:  # read from the header, before anything is decoded
                    raise DistillsetError(
                        f"image {path} declares {img.width}x{img.height} = {img.width * img.height:,} pixels, above the "
                        f"limit of {limit:,} (a decompression bomb?); if it is genuine, raise DISTILLSET_MAX_IMAGE_PIXELS")
                img = img.convert(mode)
                if size is not None and (img.height, img.width) != tuple(size):
                    img = img.resize((size[1], size[0]), Image.BILINEAR)
                array = np.asarray(img, dtype=np.uint8)
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
            raise DistillsetError(f"cannot decode image {path}: {exc}") from None
        if first_shape is None:
            first_shape = array.shape
        elif array.shape != first_shape:
            raise DistillsetError(
                f"images differ in size ({path} is {array.shape[1]}x{array.shape[0]}, an earlier one "
                f"{first_shape[1]}x{first_shape[0]}); pass an image size (--image-size H or H,W) to resize them all"
            )
        arrays.append(array)
        labels.append(label)
    stacked = np.stack(arrays)
    stacked = stacked[:, None] if grayscale else stacked.transpose(0, 3, 1, 2)
    return np.ascontiguousarray(stacked), np.asarray(labels, dtype=np.int64)


def folder_is_grayscale(items: list[tuple[Path, int]], probe: int = 32) -> bool:
    """True when the first images are single-channel, so a grey folder stays one channel."""
    from PIL import Image

    for path, _ in items[:probe]:
        try:
            with Image.open(path) as img:
                if img.mode not in ("L", "1", "I;16", "I", "LA"):
                    return False
        except OSError:
            return False
    return True


# --------------------------------------------------------------------------------------------- npz
def read_npz(path: Path) -> dict[str, np.ndarray]:
    """Arrays of a .npz file (pickled object arrays refused)."""
    try:
        loaded = np.load(path, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            raise DistillsetError(f"{path} holds a single .npy array, not an .npz archive of named arrays; save x and y "
                                  "with numpy.savez")
        with loaded as archive:
            return {key: archive[key] for key in archive.files}
    except FileNotFoundError:
        raise DistillsetError(f"cannot read {path}: no such file") from None
    except (ValueError, OSError, EOFError, zlib.error) as exc:
        raise DistillsetError(f"{path} is not a readable .npz file ({exc})") from None


def images_to_uint8_nchw(x: np.ndarray, source: str) -> np.ndarray:
    """Bring [N,H,W], [N,H,W,C] or [N,C,H,W] images, uint8 or float in [0, 1], to uint8 [N, C, H, W]."""
    if x.ndim == 3:
        x = x[:, None]
    elif x.ndim == 4:
        # channels-last when the last axis looks like channels and the second does not (or is larger)
        if x.shape[-1] in (1, 3, 4) and (x.shape[1] not in (1, 3, 4) or x.shape[-1] < x.shape[1]):
            x = x.transpose(0, 3, 1, 2)
    else:
        raise DistillsetError(f"{source}: images must be [N, H, W], [N, H, W, C] or [N, C, H, W]; found shape {list(x.shape)}")
    if x.dtype == np.uint8:
        return np.ascontiguousarray(x)
    is_float = np.issubdtype(x.dtype, np.floating)
    if not is_float and not np.issubdtype(x.dtype, np.integer):
        raise DistillsetError(f"{source}: images have dtype {x.dtype}; expected uint8 pixels or floats in [0, 1]")
    x = x.astype(np.float64)
    if not np.isfinite(x).all():
        raise DistillsetError(f"{source}: images contain NaN or infinite values")
    if is_float and x.size and x.min() >= 0.0 and x.max() <= 1.0:
        x = x * 255.0
    if x.size and (x.min() < 0 or x.max() > 255):
        raise DistillsetError(f"{source}: pixel values span [{x.min():g}, {x.max():g}]; expected [0, 255] or floats in [0, 1]")
    return np.ascontiguousarray(np.rint(x).astype(np.uint8))
