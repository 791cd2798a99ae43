"""distillset: dataset distillation (condensation) in one library.

Python API::

    import distillset as ds
    data = ds.load_dataset("mnist", data_root="data")
    real = ds.real_data(data, "train", device="cpu")
    synset = ds.make_coreset("random", real, ipc=10, seed=0)
    synset.save("r10.safetensors")
    results = ds.evaluate_synset(synset, data.test_images, data.test_labels, runs=3)
"""

__version__ = "0.1.0"

from .data import RealData, load_dataset, real_data  # noqa: E402
from .errors import DistillsetError  # noqa: E402
from .evaluation import evaluate_synset  # noqa: E402
from .methods import make_coreset  # noqa: E402
from .models import build_model  # noqa: E402
from .synset import SynSet  # noqa: E402

__all__ = ["DistillsetError", "RealData", "SynSet", "build_model", "evaluate_synset", "load_dataset", "make_coreset", "real_data", "__version__"]
