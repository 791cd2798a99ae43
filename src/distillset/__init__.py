"""distillset: dataset distillation (condensation) in one library.

Python API::

    import distillset as ds
    ds.retain_freed_memory()   # optional, CPU speed: keep freed tensors' memory for reuse (distillset.host_memory)
    print([m.name for m in ds.list_methods()])
    data = ds.load_dataset("mnist", data_root="data")
    real = ds.real_data(data, "train", device="cpu")
    synset = ds.make_coreset("random", real, ipc=10, seed=0)          # any selection method
    dm = ds.condense_real("dm", real, ipc=10, iterations=500)          # any image method, in memory
    synset.save("r10.safetensors")
    results = ds.evaluate_synset(synset, data.test_images, data.test_labels, runs=3)
"""

from ._version import __version__
from .catalogue import describe_methods, get_method, list_methods
from .data import RealData, load_dataset, real_data
from .device import resolve_device
from .driver import condense_graph, condense_real, make_coreset, run_condense, run_coreset, run_method
from .errors import DistillsetError
from .evaluation import evaluate_synset
from .host_memory import retain_freed_memory
from .models import build_model
from .runner import environment
from .synset import SynSet

__all__ = ["DistillsetError", "RealData", "SynSet", "__version__", "build_model", "condense_graph", "condense_real",
           "describe_methods", "environment", "evaluate_synset", "get_method", "list_methods", "load_dataset", "make_coreset",
           "real_data", "resolve_device", "retain_freed_memory", "run_condense", "run_coreset", "run_method"]
