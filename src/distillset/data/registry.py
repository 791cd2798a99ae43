"""The dataset registry: name -> shape, classes, normalisation, files, checksums and reader.

``load_dataset(name)`` returns an :class:`ImageDataset` of uint8 pixels for the train and test splits;
:class:`distillset.data.real.RealData` turns a split into normalised tensors on a device.
Names: the fixed benchmarks below, ``imagefolder:PATH`` and ``npz:PATH``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import DistillsetError, unknown_name
from . import formats
from .checksums import verify_file
from .download import extract_tar, extract_zip, fetch

MAX_CLASSES = 100_000  # the most classes a dataset may declare (the SynSet file has the same bound)
from .roots import primary_root, search_roots


@dataclass(frozen=True)
class DataFile:
    """One file of a dataset release: its name, md5 as distributed and (idx files) md5 of its content."""

    name: str
    md5: str | None = None
    content_md5: str | None = None


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    title: str
    shape: tuple[int, int, int]  # C, H, W
    class_names: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    folder: str  # below a data root, as torchvision lays it out
    files: tuple[DataFile, ...] = ()
    reader: Callable[[Path, "DatasetSpec"], tuple] | None = None
    url_base: str | None = None  # files are fetched from url_base + name
    archive: tuple[str, str] | None = None  # (url, md5) of a tarball unpacked into the data root instead
    extra_dirs: tuple[Path, ...] = ()  # absolute alternatives, e.g. Debian's package folder

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


@dataclass
class ImageDataset:
    """A labelled image dataset as uint8 pixels [N, C, H, W] with its normalisation and class names."""

    name: str
    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    class_names: list[str]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    source: str = ""
    info: dict = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.train_images.shape[1:])  # type: ignore[return-value]


# ---------------------------------------------------------------------------------------- readers
def _read_idx_dataset(directory: Path, spec: DatasetSpec) -> tuple:
    paths = [_existing(directory, f.name) for f in spec.files]
    train = formats.read_idx_pair(paths[0], paths[1])
    test = formats.read_idx_pair(paths[2], paths[3])
    return (*train, *test, None)


def _read_cifar10(directory: Path, spec: DatasetSpec) -> tuple:
    train = formats.read_cifar_batches([directory / f"data_batch_{i}" for i in range(1, 6)], "labels")
    test = formats.read_cifar_batches([directory / "test_batch"], "labels")
    return (*train, *test, formats.read_cifar_label_names(directory / "batches.meta", "label_names"))


def _read_cifar100(directory: Path, spec: DatasetSpec) -> tuple:
    train = formats.read_cifar_batches([directory / "train"], "fine_labels")
    test = formats.read_cifar_batches([directory / "test"], "fine_labels")
    return (*train, *test, formats.read_cifar_label_names(directory / "meta", "fine_label_names"))


def _read_svhn(directory: Path, spec: DatasetSpec) -> tuple:
    train = formats.read_svhn_mat(directory / "train_32x32.mat")
    test = formats.read_svhn_mat(directory / "test_32x32.mat")
    return (*train, *test, None)


TINY_IMAGENET_CLASSES = 200


def _read_tiny_imagenet(directory: Path, spec: DatasetSpec) -> tuple:
    """Tiny ImageNet-200 as released: ``train/<wnid>/images/*.JPEG`` (500 per class) and ``val/images`` labelled by
    ``val/val_annotations.txt`` (50 per class). The val split is the test split, as in the MTT/DATM code (the
    release's test split has no labels). Classes are in sorted wnid order, the order of the ImageFolder those
    codes read train/ with; grey JPEGs become RGB. All 110,000 JPEGs are decoded at every load (nothing is cached)."""
    wnids = sorted(formats.read_text_lines(directory / "wnids.txt"))
    if len(wnids) != TINY_IMAGENET_CLASSES or len(set(wnids)) != len(wnids):
        raise DistillsetError(f"{directory / 'wnids.txt'} lists {len(set(wnids))} distinct classes, not Tiny ImageNet's "
                              f"{TINY_IMAGENET_CLASSES}: the folder is not the standard release (fetch it with --download)")
    index = {wnid: i for i, wnid in enumerate(wnids)}
    train_items = []
    for wnid in wnids:
        files = sorted((directory / "train" / wnid / "images").glob("*.JPEG"))
        if not files:
            raise DistillsetError(f"{directory / 'train' / wnid / 'images'} holds no JPEG images; the release is incomplete")
        train_items.extend((path, index[wnid]) for path in files)
    test_items = []
    for number, line in enumerate(formats.read_text_lines(directory / "val" / "val_annotations.txt"), start=1):
        fields = line.split("\t")
        if len(fields) < 2 or fields[1] not in index:
            raise DistillsetError(f"{directory / 'val' / 'val_annotations.txt'} line {number} names no known class: {line[:80]!r}")
        test_items.append((directory / "val" / "images" / fields[0], index[fields[1]]))
    train_x, train_y = formats.read_images(train_items, None, grayscale=False)
    test_x, test_y = formats.read_images(sorted(test_items), None, grayscale=False)
    words = directory / "words.txt"
    names = None
    if words.is_file():  # wnid -> "name, synonym, ..." for all of ImageNet: the first name of each of ours
        lookup = dict(line.split("\t", 1) for line in formats.read_text_lines(words) if "\t" in line)
        names = [lookup.get(wnid, wnid).split(",")[0].strip() for wnid in wnids]
    return train_x, train_y, test_x, test_y, names


def _existing(directory: Path, name: str) -> Path:
    """A file by its release name, or its uncompressed twin (torchvision keeps both)."""
    path = directory / name
    if not path.exists() and name.endswith(".gz") and (directory / name[:-3]).exists():
        return directory / name[:-3]
    return path


def _idx_files(*entries: tuple[str, str | None, str | None]) -> tuple[DataFile, ...]:
    return tuple(DataFile(name, md5, content) for name, md5, content in entries)


_IDX = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")

DATASETS: dict[str, DatasetSpec] = {}


def _register(spec: DatasetSpec) -> None:
    DATASETS[spec.name] = spec


_register(DatasetSpec(
    name="mnist", title="MNIST", shape=(1, 28, 28), class_names=tuple("0123456789"),
    mean=(0.1307,), std=(0.3081,), folder="MNIST/raw", reader=_read_idx_dataset,
    url_base="https://ossci-datasets.s3.amazonaws.com/mnist/",
    files=_idx_files(
        (_IDX[0], "f68b3c2dcbeaaa9fbdd348bbdeb94873", "6bbc9ace898e44ae57da46a324031adb"),
        (_IDX[1], "d53e105ee54ea40749a09fcbcd1e9432", "a25bea736e30d166cdddb491f175f624"),
        (_IDX[2], "9fb629c4189551a2d022fa330f9573f3", "2646ac647ad5339dbf082846283269ea"),
        (_IDX[3], "ec29112dd5afa0611ce80d1b7f02629c", "27ae3e4e09519cfbb04c329615203637"),
    ),
))
_register(DatasetSpec(
    name="fashion-mnist", title="FashionMNIST", shape=(1, 28, 28),
    class_names=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
    mean=(0.2861,), std=(0.3530,), folder="FashionMNIST/raw", reader=_read_idx_dataset,
    url_base="http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    extra_dirs=(Path("/usr/share/datasets/fashion-mnist"),),
    files=_idx_files(
        (_IDX[0], "8d4fb7e6c68d591d4c3dfef9ec88bf0d", "f4a8712d7a061bf5bd6d2ca38dc4d50a"),
        (_IDX[1], "25c81989df183df01b3e8a0aad5dffbe", "9018921c3c673c538a1fc5bad174d6f9"),
        (_IDX[2], "bef4ecab320f06d8554ea6380940ec79", "8181f5470baa50b63fa0f6fddb340f0a"),
        (_IDX[3], "bb300cfdad3c16e7a12a480ee83cd310", "15d484375f8d13e6eb1aabb0c3f46965"),
    ),
))
_register(DatasetSpec(
    name="kmnist", title="KMNIST", shape=(1, 28, 28), class_names=("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"),
    # Normalisation of the KMNIST training set (pixels/255), as commonly used with this dataset.
    mean=(0.1918,), std=(0.3483,), folder="KMNIST/raw", reader=_read_idx_dataset,
    url_base="http://codh.rois.ac.jp/kmnist/dataset/kmnist/",
    files=_idx_files(
        (_IDX[0], "bdb82020997e1d708af4cf47b453dcf7", None),
        (_IDX[1], "e144d726b3acfaa3e44228e80efcd344", None),
        (_IDX[2], "5c965bf0a639b31b8f53240b1b52f4d7", None),
        (_IDX[3], "7320c461ea6c1c855c0b718fb2a4b134", None),
    ),
))
_register(DatasetSpec(
    name="cifar10", title="CIFAR-10", shape=(3, 32, 32),
    class_names=("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"),
    mean=(0.4914, 0.4822, 0.4465), std=(0.2023, 0.1994, 0.2010), folder="cifar-10-batches-py", reader=_read_cifar10,
    archive=("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a"),
    files=(
        DataFile("data_batch_1", "c99cafc152244af753f735de768cd75f"),
        DataFile("data_batch_2", "d4bba439e000b95fd0a9bffe97cbabec"),
        DataFile("data_batch_3", "54ebc095f3ab1f0389bbae665268c751"),
        DataFile("data_batch_4", "634d18415352ddfa80567beed471001a"),
        DataFile("data_batch_5", "482c414d41f54cd18b22e5b47cb7c3cb"),
        DataFile("test_batch", "40351d587109b95175f43aff81a1287e"),
    ),
))
_register(DatasetSpec(
    name="cifar100", title="CIFAR-100", shape=(3, 32, 32), class_names=tuple(f"class_{i}" for i in range(100)),
    mean=(0.5071, 0.4866, 0.4409), std=(0.2673, 0.2564, 0.2762), folder="cifar-100-python", reader=_read_cifar100,
    archive=("https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz", "eb9058c3a382ffc7106e4002c42a8d85"),
    files=(DataFile("train", "16019d7e3df5f24257cddd939b257f8d"), DataFile("test", "f0ef6b0ae62326f3e7ffdfab6717acfc")),
))
_register(DatasetSpec(
    name="svhn", title="SVHN", shape=(3, 32, 32), class_names=tuple("0123456789"),
    mean=(0.4377, 0.4438, 0.4728), std=(0.1980, 0.2010, 0.1970), folder="SVHN", reader=_read_svhn,
    url_base="http://ufldl.stanford.edu/housenumbers/",
    files=(DataFile("train_32x32.mat", "e26dedcc434d2e4c54c9b2d4a06d8373"), DataFile("test_32x32.mat", "eb5a983be6a315427106f1b164d9cef3")),
))
_register(DatasetSpec(
    name="tinyimagenet", title="Tiny ImageNet", shape=(3, 64, 64),
    class_names=tuple(f"class_{i}" for i in range(TINY_IMAGENET_CLASSES)),  # the release's words.txt names them
    mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225), folder="tiny-imagenet-200", reader=_read_tiny_imagenet,
    archive=("http://cs231n.stanford.edu/tiny-imagenet-200.zip", "90528d7ca1a48142e341f4ef8d21d0de"),
    files=(DataFile("wnids.txt"), DataFile("val/val_annotations.txt")),
))
# scikit-learn's 8x8 digits: embedded, no files. Normalisation measured on our training split.
_register(DatasetSpec(
    name="digits", title="scikit-learn digits", shape=(1, 8, 8), class_names=tuple("0123456789"),
    mean=(0.3052,), std=(0.3760,), folder="",
))

PATH_SCHEMES = ("imagefolder", "npz")


def dataset_names() -> list[str]:
    return list(DATASETS) + [f"{scheme}:PATH" for scheme in PATH_SCHEMES]


def get_spec(name: str) -> DatasetSpec:
    if name not in DATASETS:
        raise unknown_name("dataset", name, dataset_names())
    return DATASETS[name]


# -------------------------------------------------------------------------------------- loading
def load_dataset(
    name: str,
    data_root: str | os.PathLike | None = None,
    download: bool = False,
    verify: bool = True,
    image_size: tuple[int, int] | None = None,
) -> ImageDataset:
    """Load a dataset by registry name (or ``imagefolder:PATH`` / ``npz:PATH``) as uint8 pixels.

    ``download`` fetches missing files (verified) into the primary data root; ``verify`` checks the
    md5 of every release file; ``image_size`` resizes image-folder data (H, W).
    """
    scheme, _, rest = name.partition(":")
    if rest and scheme == "imagefolder":
        return _load_image_folder(Path(rest).expanduser(), name, image_size)
    if image_size is not None:
        raise DistillsetError(f"--image-size resizes image-folder data; '{name}' has a fixed shape, so it would change "
                              "nothing (drop --image-size)")
    if rest and scheme == "npz":
        return _load_npz(Path(rest).expanduser(), name)
    spec = get_spec(name)
    if spec.name == "digits":
        return _load_digits()
    directory = _locate(spec, data_root)
    if directory is None:
        if not download:
            raise _missing_error(spec, data_root)
        directory = _download(spec, primary_root(data_root))
    if verify:
        for f in spec.files:
            verify_file(_existing(directory, f.name), f.md5, f.content_md5)
    assert spec.reader is not None
    train_x, train_y, test_x, test_y, names = spec.reader(directory, spec)
    class_names = list(names) if names and len(names) == spec.num_classes else list(spec.class_names)
    dataset = ImageDataset(spec.name, train_x, train_y, test_x, test_y, class_names, spec.mean, spec.std, str(directory))
    _check_dataset(dataset, expected_shape=spec.shape)
    return dataset


def _locate(spec: DatasetSpec, data_root) -> Path | None:
    for directory in [root / spec.folder for root in search_roots(data_root)] + list(spec.extra_dirs):
        if directory.is_dir() and all(_existing(directory, f.name).exists() for f in spec.files):
            not_files = [f.name for f in spec.files if not _existing(directory, f.name).is_file()]
            if not_files:
                raise DistillsetError(f"{directory} holds {', '.join(not_files)} as folder(s), not files; replace "
                                      "them with the dataset's files")
            return directory
    return None


def _missing_error(spec: DatasetSpec, data_root) -> DistillsetError:
    dirs = [root / spec.folder for root in search_roots(data_root)] + list(spec.extra_dirs)
    looked = [str(d) for d in dirs]
    names = ", ".join(f.name for f in spec.files)
    partial = next((d for d in dirs if d.is_dir() and any(_existing(d, f.name).exists() for f in spec.files)), None)
    if partial is not None:  # say which of the files is missing where the others are
        missing = [f.name for f in spec.files if not _existing(partial, f.name).exists()]
        return DistillsetError(f"dataset '{spec.name}' is incomplete in {partial}: {', '.join(missing)} missing. "
                               f"Fix: copy it there, or add --download")
    return DistillsetError(
        f"dataset '{spec.name}' not found: looked for {names} in {'; '.join(looked)}. "
        f"Fix: pass --data-root DIR (a folder holding {spec.folder}/), set DISTILLSET_DATA, or add --download"
    )


def _download(spec: DatasetSpec, root: Path) -> Path:
    directory = root / spec.folder
    if spec.archive is not None:
        url, md5 = spec.archive
        archive = fetch(url, root / url.rsplit("/", 1)[-1], md5)
        (extract_zip if archive.suffix == ".zip" else extract_tar)(archive, root)
    else:
        assert spec.url_base is not None
        for f in spec.files:
            fetch(spec.url_base + f.name, directory / f.name, f.md5)
    if _locate(spec, root) is None:
        raise DistillsetError(f"download of '{spec.name}' finished but {directory} still lacks its files")
    return directory


def _load_digits() -> ImageDataset:
    """scikit-learn digits (values 0-16 scaled to 0-255); every fifth image of each class is the test split."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    pixels = np.rint(bunch.images * (255.0 / 16.0)).astype(np.uint8)[:, None]
    labels = bunch.target.astype(np.int64)
    rank = np.zeros(len(labels), dtype=np.int64)
    for c in range(10):
        idx = np.flatnonzero(labels == c)
        rank[idx] = np.arange(len(idx))
    test = rank % 5 == 4
    spec = DATASETS["digits"]
    return ImageDataset("digits", pixels[~test], labels[~test], pixels[test], labels[test],
                        list(spec.class_names), spec.mean, spec.std, "sklearn.datasets.load_digits")


def _holdout_split(labels: np.ndarray, every: int = 5) -> np.ndarray:
    """Boolean test mask: every ``every``-th image of each class (deterministic, class-balanced)."""
    test = np.zeros(len(labels), dtype=bool)
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        test[idx[every - 1::every]] = True
    return test


def _channel_stats(images: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of pixels/255, the normalisation of user-supplied data."""
    x = images.astype(np.float64) / 255.0
    mean = x.mean(axis=(0, 2, 3))
    std = np.maximum(x.std(axis=(0, 2, 3)), 1e-3)
    return tuple(round(float(m), 6) for m in mean), tuple(round(float(s), 6) for s in std)


def _load_image_folder(root: Path, name: str, image_size: tuple[int, int] | None) -> ImageDataset:
    """``PATH/<class>/*.png``; or ``PATH/train`` and ``PATH/test`` (or ``val``) holding such folders.

    With class folders directly under PATH every fifth image of each class is held out as the test split; a
    ``train`` folder without its ``test`` is refused (a hold-out from train/ would overlap sets made from it).
    """
    train_root = root / "train" if (root / "train").is_dir() else root
    test_root = next((root / s for s in ("test", "val") if train_root != root and (root / s).is_dir()), None)
    if train_root != root and test_root is None:
        # holding out train/ images would test sets made from all of train/ on images they were made from
        raise DistillsetError(f"{root} has a train folder but no test (or val) folder; restore it, or put the class "
                              "folders directly under it to hold out every fifth image as the test split")
    classes, items = formats.list_image_folder(train_root)
    grey = formats.folder_is_grayscale(items)
    x, y = formats.read_images(items, image_size, grey)
    if test_root is not None:
        test_classes, test_items = formats.list_image_folder(test_root)
        if test_classes != classes:
            raise DistillsetError(f"class folders of {test_root} ({test_classes}) differ from those of {train_root} ({classes})")
        tx, ty = formats.read_images(test_items, image_size or tuple(x.shape[2:]), grey)
    else:
        test = _holdout_split(y)
        x, y, tx, ty = x[~test], y[~test], x[test], y[test]
    mean, std = _channel_stats(x)
    dataset = ImageDataset(name, x, y, tx, ty, classes, mean, std, str(root))
    _check_dataset(dataset)
    return dataset


def _load_npz(path: Path, name: str) -> ImageDataset:
    """Arrays ``x`` and ``y`` (and optionally ``x_test``, ``y_test``); class count from the labels."""
    arrays = formats.read_npz(path)
    missing = [k for k in ("x", "y") if k not in arrays]
    if missing:
        raise DistillsetError(f"{path} lacks array(s) {', '.join(missing)}; an npz dataset needs x (images) and y (labels), optionally x_test and y_test")
    x = formats.images_to_uint8_nchw(arrays["x"], f"{path}:x")
    y = _labels(arrays["y"], len(x), f"{path}:y")
    if "x_test" in arrays or "y_test" in arrays:
        if "x_test" not in arrays or "y_test" not in arrays:
            raise DistillsetError(f"{path} has only one of x_test and y_test; give both or neither")
        tx = formats.images_to_uint8_nchw(arrays["x_test"], f"{path}:x_test")
        ty = _labels(arrays["y_test"], len(tx), f"{path}:y_test")
    else:
        test = _holdout_split(y)
        x, y, tx, ty = x[~test], y[~test], x[test], y[test]
    num_classes = int(max(y.max(initial=0), ty.max(initial=0))) + 1
    if num_classes > min(len(y) + len(ty), MAX_CLASSES):  # bound by the file's content before anything is allocated
        raise DistillsetError(f"{path}: label {num_classes - 1} with only {len(y) + len(ty)} images; labels must be 0..K-1 "
                              f"with K at most the number of images (and {MAX_CLASSES})")
    names = [str(c) for c in range(num_classes)]
    mean, std = _channel_stats(x)
    dataset = ImageDataset(name, x, y, tx, ty, names, mean, std, str(path))
    _check_dataset(dataset)
    return dataset


def _labels(y: np.ndarray, n: int, source: str) -> np.ndarray:
    y = np.asarray(y).reshape(-1)
    if len(y) != n:
        raise DistillsetError(f"{source}: {len(y)} labels for {n} images")
    if not np.issubdtype(y.dtype, np.integer):
        if not (np.issubdtype(y.dtype, np.floating) and np.isfinite(y).all() and (y == np.round(y)).all()):
            raise DistillsetError(f"{source}: labels must be whole numbers 0..K-1, found dtype {y.dtype}")
    if len(y) and y.min() < 0:
        raise DistillsetError(f"{source}: labels must be 0..K-1, found {int(y.min())}")
    return y.astype(np.int64)


def _check_dataset(dataset: ImageDataset, expected_shape: tuple[int, int, int] | None = None) -> None:
    """Reject inconsistent data before any method sees it."""
    for split, x, y in (("train", dataset.train_images, dataset.train_labels), ("test", dataset.test_images, dataset.test_labels)):
        if len(x) == 0:
            raise DistillsetError(f"dataset '{dataset.name}' has an empty {split} split")
        if expected_shape is not None and tuple(x.shape[1:]) != expected_shape:
            raise DistillsetError(f"dataset '{dataset.name}' {split} images have shape {list(x.shape[1:])}, expected {list(expected_shape)}")
        if y.min() < 0 or y.max() >= dataset.num_classes:
            raise DistillsetError(f"dataset '{dataset.name}' {split} labels span {int(y.min())}..{int(y.max())}, expected 0..{dataset.num_classes - 1}")
    if dataset.train_images.shape[1:] != dataset.test_images.shape[1:]:
        raise DistillsetError(f"dataset '{dataset.name}': train images {list(dataset.train_images.shape[1:])} and test images {list(dataset.test_images.shape[1:])} differ in shape")
