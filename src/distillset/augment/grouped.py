"""Applying one transform per group of images (a DSA family, a DC operation) without host-device syncs.

Both augmentations draw, for every image, which transform it gets and that transform's parameters on the host.
Here the images are ordered by group (ascending within each, so a group selects the same rows as a mask would),
every image's parameters are packed with that order into ONE float64 table (exact for float32 values and
pixel offsets) and sent in one copy (pinned and asynchronous on CUDA); each group's transform then reads its
slice of the table on the device. Nothing is read back, so the host never waits for the stream.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from ..device import to_device

# transform(images of the group, their table rows on the device, their positions in the batch on the host)
GroupTransform = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def apply_by_group(x: torch.Tensor, group: torch.Tensor, columns: Callable[[torch.Tensor], torch.Tensor],
                   transforms: Sequence[GroupTransform]) -> torch.Tensor:
    """``x`` with image i replaced by ``transforms[group[i]]`` of it.

    ``group``: host int64 [N]. ``columns(order)``: the parameters of the images ``order`` lists, [N, M] (host). The
    table each transform reads has the image's position in column 0 and those columns after it."""
    order = torch.argsort(group, stable=True)
    counts = torch.bincount(group, minlength=len(transforms)).tolist()
    table = to_device(torch.cat([order[:, None], columns(order)], 1).to(torch.float64), x.device)
    out, start = x, 0
    for transform, count in zip(transforms, counts):
        if count == 0:
            continue
        rows = table[start:start + count]
        selected = rows[:, 0].long()
        out = out.index_copy(0, selected, transform(out[selected], rows, order[start:start + count]))
        start += count
    return out
