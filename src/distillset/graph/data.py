"""Graph datasets: node features, an undirected edge list, labels and the standard split.

Readers (no network access; files are found under the data root as PyTorch Geometric lays them out):

* Planetoid (Cora, CiteSeer, PubMed): the eight ``ind.NAME.*`` Python-2 pickles, unpickled with an
  allow-list (numpy arrays, a CSR placeholder, dict/list containers; never an arbitrary callable), with
  the public split: the first 20 labelled nodes per class for training (all of ``y``), the next 500 for
  validation, ``test.index`` for testing. CiteSeer's isolated test nodes get zero features and no label
  (excluded from every split), as in the usual loaders. Features are row-normalised, as GCN and
  GCond preprocess them (``row_normalised``).
* GraphSAINT (Flickr, Reddit): ``adj_full.npz`` (CSR arrays), ``feats.npy``, ``class_map.json``, ``role.json``.
* OGB node property (ogbn-arxiv): ``raw/node-feat.csv.gz``, ``raw/edge.csv.gz``, ``raw/node-label.csv.gz``
  and ``split/time/{train,valid,test}.csv.gz``.
"""

from __future__ import annotations

import gzip
import json
import pickle
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import DistillsetError, unknown_name


@dataclass
class GraphData:
    name: str
    features: torch.Tensor  # float32 [N, F]
    edge_index: torch.Tensor  # long [2, E], both directions, no self loops, no duplicates
    labels: torch.Tensor  # long [N]; -1 for unlabelled nodes
    train: torch.Tensor  # long node indices
    val: torch.Tensor
    test: torch.Tensor
    num_classes: int

    @property
    def num_nodes(self) -> int:
        return int(self.features.shape[0])

    def to(self, device) -> "GraphData":
        return GraphData(self.name, self.features.to(device), self.edge_index.to(device), self.labels.to(device),
                         self.train.to(device), self.val.to(device), self.test.to(device), self.num_classes)


def undirected_edges(rows: np.ndarray, cols: np.ndarray, num_nodes: int) -> torch.Tensor:
    """Both directions, self loops and duplicates removed, sorted."""
    rows, cols = np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64)
    if rows.size and (min(rows.min(), cols.min()) < 0 or max(rows.max(), cols.max()) >= num_nodes):
        raise DistillsetError(f"an edge refers to a node outside [0, {num_nodes})")
    both = np.concatenate([np.stack([rows, cols]), np.stack([cols, rows])], axis=1)
    both = both[:, both[0] != both[1]]
    keys = np.unique(both[0] * num_nodes + both[1])
    return torch.from_numpy(np.stack([keys // num_nodes, keys % num_nodes]))


# ---------------------------------------------------------------------------------------------- Planetoid
MAX_DENSE_ENTRIES = 500_000_000  # 2 GB of float32: far above any Planetoid matrix, far below a forged header's ask


class _CSRState:
    """Stands in for scipy's csr_matrix while unpickling: keeps the arrays, runs no scipy code."""

    def __setstate__(self, state) -> None:
        self.state = state

    def dense(self, source: str = "a Planetoid file") -> np.ndarray:
        """The dense matrix, after checking the stored arrays describe one (a forged file fails here, in one line,
        before any large allocation: the dense size is bounded by MAX_DENSE_ENTRIES)."""
        def bad(problem: str) -> DistillsetError:
            return DistillsetError(f"{source} holds a damaged sparse matrix: {problem}")

        if not isinstance(self.__dict__.get("state"), dict):
            raise bad("no array state")
        s = {(k.decode() if isinstance(k, bytes) else k): v for k, v in self.state.items()}
        missing = [k for k in ("indptr", "indices", "data") if k not in s]
        if missing or not ("_shape" in s or "shape" in s):
            raise bad(f"it lacks {', '.join(missing or ['shape'])}")
        try:
            shape = tuple(int(v) for v in (s.get("_shape") or s.get("shape")))
            indptr, indices = np.asarray(s["indptr"], dtype=np.int64), np.asarray(s["indices"], dtype=np.int64)
            data = np.asarray(s["data"], dtype=np.float32)
        except (TypeError, ValueError, OverflowError):
            raise bad("its entries are not numbers") from None
        if len(shape) != 2 or min(shape) < 0:
            raise bad(f"shape {list(shape)}")
        if shape[0] * shape[1] > MAX_DENSE_ENTRIES:
            raise bad(f"shape {list(shape)} would need {shape[0] * shape[1]:,} dense entries (at most {MAX_DENSE_ENTRIES:,})")
        if indptr.ndim != 1 or len(indptr) != shape[0] + 1 or (np.diff(indptr) < 0).any() or indptr[0] != 0 \
                or indptr[-1] != len(indices) or len(indices) != len(data):
            raise bad("its row pointers do not match its entries")
        if len(indices) and (indices.min() < 0 or indices.max() >= shape[1]):
            raise bad("a column index lies outside the matrix")
        out = np.zeros(shape, dtype=np.float32)
        rows = np.repeat(np.arange(shape[0]), np.diff(indptr))
        out[rows, indices] = data
        return out


class _PlanetoidUnpickler(pickle.Unpickler):
    _NUMPY = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"), ("numpy", "ndarray"),
              ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
              ("copyreg", "_reconstructor"), ("__builtin__", "object"), ("builtins", "object")}

    def find_class(self, module: str, name: str):  # noqa: D401 - pickle API
        if name in ("csr_matrix", "csr_array") and module.startswith("scipy.sparse"):
            return _CSRState
        if (module, name) in (("collections", "defaultdict"),):
            return defaultdict
        if (module, name) in (("__builtin__", "list"), ("builtins", "list"), ("__builtin__", "dict"), ("builtins", "dict")):
            return list if name == "list" else dict
        if (module, name) in self._NUMPY:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}: not plain data")


def _unpickle(path: Path):
    try:
        with open(path, "rb") as handle:
            return _PlanetoidUnpickler(handle, encoding="latin1").load()
    except FileNotFoundError:
        raise DistillsetError(f"missing Planetoid file {path}") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError) as exc:
        raise DistillsetError(f"{path} is not a readable Planetoid file (truncated, corrupt or unsafe: {exc})") from None


def _dense(obj, path: Path) -> np.ndarray:
    if isinstance(obj, _CSRState):
        return obj.dense(str(path))
    if isinstance(obj, np.ndarray):
        return obj.astype(np.float32)
    raise DistillsetError(f"{path} holds {type(obj).__name__}, expected a sparse or dense matrix")


def row_normalised(features: np.ndarray) -> np.ndarray:
    """Each row divided by its sum (all-zero rows stay zero).

    The standard preprocessing of the Planetoid bag-of-words features (Kipf & Welling's GCN, and GCond's
    default): GCond's learning rates (1e-4 for the synthetic features) are set for entries of ~1/20,
    and on the raw 0/1 features its condensed Cora graph measured no better than random nodes
    (63.5% vs 64.3% at r = 0.25, BENCHMARKS.md).
    """
    sums = features.sum(1, keepdims=True)
    return (features / np.where(sums == 0, 1, sums)).astype(np.float32)


# md5 of the Planetoid release files (kimiyoung/planetoid's data/, as PyG fetches them), checked like the image
# datasets' unless --no-verify; PubMed's are not listed (not available here to check against)
PLANETOID_MD5 = {
    "cora": {"allx": "c9083193a57057dd1238321e140194d7", "ally": "125d70817fe1fdbfdcad991995e81579",
             "graph": "b37c419cec179f45834467630c278e4c", "test.index": "9b822cae1d01f41e8bf8782e20367c0e",
             "tx": "b29c36916768e1d2f55391c1aa9317ac", "ty": "48bf43f54fa5b86089a4bd0299795f10",
             "x": "190831eee19d8f330d89d94b40a65c5a", "y": "78344284e3ff7fd24eb9c307d51351eb"},
    "citeseer": {"allx": "28486b4b9c4ee076b4eee2febd89ba86", "ally": "f0df7e5f859245e32987bfd224d01657",
                 "graph": "5f88483d5f5cc2b26b987bbbfb695005", "test.index": "70af39d4dff8aaa5c63f8dc526b16534",
                 "tx": "c25ab826a7e95c0922ab625de705f7df", "ty": "356894a73b7a7eff43c3580f2fcf92a4",
                 "x": "baeb0100b5a8af8d41f928113ce0a4e5", "y": "8b99f50aa950fbbf9a7a2b71ff9cac97"},
}


def read_planetoid(directory: Path, name: str, verify: bool = True) -> GraphData:
    """The Planetoid files of ``name`` (lower case: cora, citeseer, pubmed) in ``directory``; features row-normalised.
    ``verify`` checks each file's md5 first (PLANETOID_MD5)."""
    if verify:
        from ..data.checksums import verify_file

        for part, md5 in PLANETOID_MD5.get(name, {}).items():
            path = directory / f"ind.{name}.{part}"
            if path.is_file():
                verify_file(path, md5)
    parts = {}
    for key in ("x", "y", "tx", "ty", "allx", "ally", "graph"):
        parts[key] = _unpickle(directory / f"ind.{name}.{key}")
    index_path = directory / f"ind.{name}.test.index"
    try:
        test_index = np.array([int(line) for line in index_path.read_text().split()], dtype=np.int64)
    except FileNotFoundError:
        raise DistillsetError(f"missing Planetoid file {index_path}") from None
    except ValueError:
        raise DistillsetError(f"{index_path} must hold one node index per line") from None
    x, tx, allx = (_dense(parts[k], directory / f"ind.{name}.{k}") for k in ("x", "tx", "allx"))
    y, ty, ally = (np.asarray(parts[k], dtype=np.float32) for k in ("y", "ty", "ally"))
    if not (len(x) == len(y) and len(tx) == len(ty) == len(test_index) and len(allx) == len(ally)):
        raise DistillsetError(f"the Planetoid files of {name} in {directory} disagree in their row counts (partial download?)")
    test_sorted = np.sort(test_index)
    low, high = int(test_sorted[0]), int(test_sorted[-1])
    n = max(high + 1, len(allx) + (high - low + 1))
    # CiteSeer: some test indices are missing (isolated nodes); pad the test block to the full range
    tx_full = np.zeros((high - low + 1, tx.shape[1]), dtype=np.float32)
    ty_full = np.zeros((high - low + 1, ty.shape[1]), dtype=np.float32)
    tx_full[test_index - low], ty_full[test_index - low] = tx, ty
    features = row_normalised(np.concatenate([allx, tx_full])[:n])
    onehot = np.concatenate([ally, ty_full])[:n]
    labels = np.where(onehot.sum(1) > 0, onehot.argmax(1), -1).astype(np.int64)
    graph = parts["graph"]
    if not isinstance(graph, dict):
        raise DistillsetError(f"ind.{name}.graph must be an adjacency dict, found {type(graph).__name__}")
    rows = np.array([u for u, vs in graph.items() for _ in vs], dtype=np.int64)
    cols = np.array([v for vs in graph.values() for v in vs], dtype=np.int64)
    keep = (rows < len(features)) & (cols < len(features))
    edge_index = undirected_edges(rows[keep], cols[keep], len(features))
    train = np.arange(len(y))
    val = np.arange(len(y), len(y) + 500)
    test = test_sorted[labels[test_sorted] >= 0]
    return GraphData(name, torch.from_numpy(features), edge_index, torch.from_numpy(labels), torch.from_numpy(train),
                     torch.from_numpy(val), torch.from_numpy(test), int(onehot.shape[1]))


# ---------------------------------------------------------------------------------------------- GraphSAINT
def read_graphsaint(directory: Path, name: str) -> GraphData:
    def need(file: str) -> Path:
        path = directory / file
        if not path.is_file():
            raise DistillsetError(f"missing GraphSAINT file {path}")
        return path

    try:
        adj = np.load(need("adj_full.npz"), allow_pickle=False)
        indptr, indices, shape = adj["indptr"], adj["indices"], tuple(int(v) for v in adj["shape"])
        features = np.load(need("feats.npy"), allow_pickle=False).astype(np.float32)
        class_map = json.loads(need("class_map.json").read_text())
        role = json.loads(need("role.json").read_text())
    except (ValueError, KeyError, OSError) as exc:
        raise DistillsetError(f"the GraphSAINT files in {directory} are unreadable ({exc})") from None
    n = features.shape[0]
    if shape != (n, n) or len(indptr) != n + 1:
        raise DistillsetError(f"adj_full.npz is {shape} with {len(indptr) - 1} rows but feats.npy has {n} nodes")
    labels = np.full(n, -1, dtype=np.int64)
    multi = False
    for key, value in class_map.items():
        if isinstance(value, list):
            multi = True
            break
        labels[int(key)] = int(value)
    if multi:
        raise DistillsetError(f"{name}: multi-label class maps (e.g. Yelp, PPI) are not supported; single-label only")
    rows = np.repeat(np.arange(n), np.diff(indptr))
    split = {k: torch.as_tensor(sorted(role.get(k, [])), dtype=torch.long) for k in ("tr", "va", "te")}
    if not all(len(v) for v in split.values()):
        raise DistillsetError(f"role.json in {directory} must list 'tr', 'va' and 'te' nodes")
    return GraphData(name, torch.from_numpy(features), undirected_edges(rows, indices, n), torch.from_numpy(labels),
                     split["tr"], split["va"], split["te"], int(labels.max()) + 1)


# ---------------------------------------------------------------------------------------------- OGB
def _csv(path: Path, dtype) -> np.ndarray:
    if not path.is_file():
        raise DistillsetError(f"missing OGB file {path}")
    try:
        with gzip.open(path, "rt") as handle:
            return np.loadtxt(handle, delimiter=",", dtype=dtype, ndmin=2)
    except (OSError, ValueError, EOFError) as exc:
        raise DistillsetError(f"{path} is not a readable gzipped CSV ({exc})") from None


def read_ogb_node(directory: Path, name: str) -> GraphData:
    features = _csv(directory / "raw" / "node-feat.csv.gz", np.float32)
    edges = _csv(directory / "raw" / "edge.csv.gz", np.int64)
    labels = _csv(directory / "raw" / "node-label.csv.gz", np.int64)[:, 0]
    n = features.shape[0]
    if len(labels) != n or edges.shape[1] != 2:
        raise DistillsetError(f"{directory}: {n} feature rows, {len(labels)} labels and edges of width {edges.shape[1]} disagree")
    split = {k: torch.from_numpy(_csv(directory / "split" / "time" / f"{k}.csv.gz", np.int64)[:, 0]) for k in ("train", "valid", "test")}
    return GraphData(name, torch.from_numpy(features), undirected_edges(edges[:, 0], edges[:, 1], n), torch.from_numpy(labels),
                     split["train"], split["valid"], split["test"], int(labels.max()) + 1)


GRAPH_DATASETS = {
    "cora": ("Planetoid/Cora/raw", lambda d, verify: read_planetoid(d, "cora", verify)),
    "citeseer": ("Planetoid/CiteSeer/raw", lambda d, verify: read_planetoid(d, "citeseer", verify)),
    "pubmed": ("Planetoid/PubMed/raw", lambda d, verify: read_planetoid(d, "pubmed", verify)),
    "flickr": ("Flickr/raw", lambda d, verify: read_graphsaint(d, "flickr")),
    "reddit": ("Reddit/raw", lambda d, verify: read_graphsaint(d, "reddit")),
    "ogbn-arxiv": ("ogbn_arxiv", lambda d, verify: read_ogb_node(d, "ogbn-arxiv")),
}


def is_graph_dataset(name: str) -> bool:
    return name.lower() in GRAPH_DATASETS


def load_graph(name: str, data_root=None, verify: bool = True) -> GraphData:
    from ..data.roots import search_roots

    key = name.lower()
    if key not in GRAPH_DATASETS:
        raise unknown_name("graph dataset", name, list(GRAPH_DATASETS))
    sub, reader = GRAPH_DATASETS[key]
    roots = search_roots(data_root)
    for root in roots:
        if (Path(root) / sub).is_dir():
            return reader(Path(root) / sub, verify)
    raise DistillsetError(f"graph dataset '{name}' not found: looked for {sub}/ under {', '.join(str(r) for r in roots)}; "
                          "pass --data-root or set DISTILLSET_DATA")
