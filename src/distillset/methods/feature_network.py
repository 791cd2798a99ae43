"""A network trained on the real training set, shared by the herding, k-center and forgetting coresets.

Training it is the expensive part of those baselines, so it is cached on disk (safetensors, atomic)
under a key of (dataset, model, epochs, seed): selecting at ipc 1, 10 and 50, or with another of the
three methods, reuses one trained network; a training cut off resumes from a checkpoint beside the cache entry
(written at the end of an epoch, at most once a minute, with the forgetting counts). Forgetting events
(Toneva et al., 2019) are counted while it trains: a sample is forgotten when a presentation classifies it
wrongly after the previous one classified it correctly.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..data.real import RealData
from ..training import TrainConfig, train_model
from ..fileio import atomic_write, cache_dir, check_writable_folder
from ..models import build_model
from ..seeding import make_generator


@dataclass
class FeatureNetwork:
    model: nn.Module
    forgetting_events: torch.Tensor  # int64 [N], per training image
    ever_learned: torch.Tensor  # bool [N]: classified correctly at least once


def _cache_path(real: RealData, model_name: str, epochs: int, seed: int) -> Path:
    # the data's content, not only its name and shape: an npz or image folder edited in place gets a new network
    content = hashlib.sha256(real.images.detach().cpu().contiguous().numpy().tobytes())
    content.update(real.labels.detach().cpu().numpy().tobytes())
    key = json.dumps([real.name, list(real.shape), int(real.labels.numel()), model_name, epochs, seed, content.hexdigest()])
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    safe = "".join(ch if ch.isalnum() else "-" for ch in real.name)[-40:]
    return cache_dir() / "feature-networks" / f"{safe}-{model_name}-e{epochs}-s{seed}-{digest}.safetensors"


def train_feature_network(real: RealData, model_name: str = "convnet", epochs: int = 3, seed: int = 0,
                          batch_size: int = 256, use_cache: bool = True, log=None) -> FeatureNetwork:
    """Train (or load from the cache) ``model_name`` on all of ``real``, counting forgetting events."""
    from safetensors.torch import load_file, save_file

    path = _cache_path(real, model_name, epochs, seed)
    if use_cache:  # an unwritable cache fails now, not after the training it would have stored
        check_writable_folder(path.parent, "$DISTILLSET_CACHE" if os.environ.get("DISTILLSET_CACHE") else "cache folder")
    model = build_model(model_name, real.shape, real.num_classes, make_generator(seed, "feature-network", "init"), real.device)
    if use_cache and path.is_file():
        try:
            stored = load_file(str(path), device=str(real.device))
            model.load_state_dict({k[len("model."):]: v for k, v in stored.items() if k.startswith("model.")})
            if log:
                log(f"reusing the feature network cached in {path}")
            return FeatureNetwork(model.eval(), stored["forgetting_events"], stored["ever_learned"].bool())
        except Exception:  # a damaged cache entry is retrained, never trusted
            pass
    n = real.labels.numel()
    last_correct = torch.zeros(n, dtype=torch.bool, device=real.device)
    ever_learned = torch.zeros(n, dtype=torch.bool, device=real.device)
    forgetting = torch.zeros(n, dtype=torch.long, device=real.device)

    def count_forgetting(idx: torch.Tensor, logits: torch.Tensor) -> None:
        correct = logits.argmax(1) == real.labels[idx]
        forgetting[idx] += (last_correct[idx] & ~correct).long()
        last_correct[idx] = correct
        ever_learned[idx] |= correct

    def report(epoch: int) -> None:
        if log:
            log(f"feature network epoch {epoch}/{epochs}: {int(last_correct.sum())}/{n} correct at last presentation")

    # cut off, the training resumes from a checkpoint beside the cache entry, forgetting counts included
    partial = path.with_name(path.stem + ".partial.safetensors") if use_cache else None
    train_model(model, real.images, real.labels, TrainConfig(epochs=epochs, batch_size=batch_size),
                make_generator(seed, "feature-network", "train"), on_batch=count_forgetting, on_epoch=report,
                checkpoint=partial, counters={"last_correct": last_correct, "ever_learned": ever_learned,
                                              "forgetting": forgetting})
    model.eval()
    if use_cache:
        tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        tensors["forgetting_events"] = forgetting.cpu()
        tensors["ever_learned"] = ever_learned.cpu().to(torch.uint8)
        atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata={"dataset": real.name, "model": model_name}))
    return FeatureNetwork(model, forgetting, ever_learned)


@torch.inference_mode()
def embed_all(model: nn.Module, images: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    """Embeddings (the classifier's input) of every image, in eval mode."""
    model.eval()
    return torch.cat([model.embed(images[s:s + batch_size]) for s in range(0, images.shape[0], batch_size)])
