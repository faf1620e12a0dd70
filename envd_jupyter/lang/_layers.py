"""The order of the managed stage's merge inputs, which is the order of the image's layers.

The envd-managed branches are independent, so any order gives the same files (pip groups that
disagree on a shared distribution are refused after the merge, see ``pip_conflicts``). The order
still decides two costs:

* an image store keys each unpacked layer by every layer below it, so a changed layer makes the
  store unpack every layer above it again (torch's gigabyte after a one-line edit below it);
* BuildKit's overlay merge reuses the longest prefix of inputs that stack on each other
  (base → venv → one pip group) as the merged snapshot's parent and hard-links the rest.

So layers the previous image already had come first, in that image's order; then other layers
this build found in the daemon's cache (they predate it), in written order; then the layers this
build ran, heaviest first (``weights``: the seconds each took), the python venv just below the pip
groups built on it. Without history or weights the order is the written one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from envd_jupyter import llb

LAYERS_LABEL = "org.envd-jupyter.layers"
DIGEST_CHARS = 16  # of each layer's install op digest, in the label


@dataclass(frozen=True, eq=False)
class Layer:
    """One merge input: ``key`` names the branch ("apt", "python", "pip[0]", ...).

    ``upper`` is the branch's install state, ``state`` the merge input (its diff, or the files
    themselves), ``identity`` the install op's digest prefix: same identity, same layer.
    ``needs`` is the key of a layer that must lie below it (the venv under a pip group).
    """

    key: str
    upper: llb.State
    state: llb.State
    identity: str
    needs: str | None = None


def identity_of(upper: llb.State) -> str:
    digest, _ = upper.marshal().head
    return digest.removeprefix("sha256:")[:DIGEST_CHARS]


def arrange(layers: Sequence[Layer], previous: Sequence[str] = (),
            weights: Mapping[str, float] | None = None) -> list[Layer]:
    """Layers ``previous`` lists, in its order; then cached ones; then those in ``weights``, heaviest first."""
    weights = weights or {}
    seen = {identity: i for i, identity in enumerate(previous)}
    kept = sorted((layer for layer in layers if layer.identity in seen), key=lambda layer: seen[layer.identity])
    fresh = [layer for layer in layers if layer.identity not in seen]

    def weight(layer: Layer) -> float:  # a base layer carries the heaviest layer that needs it
        above = [weights.get(other.key, 0.0) for other in fresh if other.needs == layer.key]
        return weights.get(layer.key, 0.0) + max(above, default=0.0)

    cached = [layer for layer in fresh if layer.key not in weights]
    ran = sorted((layer for layer in fresh if layer.key in weights), key=lambda layer: -weight(layer))
    ordered = kept + cached + ran  # sorted is stable: equal weights keep the written order
    return _needs_first(ordered)


def _needs_first(ordered: list[Layer]) -> list[Layer]:
    """Move each layer another one needs to just below the first layer that needs it."""
    by_key = {layer.key: layer for layer in ordered}
    placed: dict[str, Layer] = {}
    for layer in ordered:
        if layer.needs in by_key and layer.needs not in placed:
            placed[layer.needs] = by_key[layer.needs]
        placed.setdefault(layer.key, layer)
    return list(placed.values())


def layers_label(ordered: Sequence[Layer]) -> str:
    return ",".join(layer.identity for layer in ordered)


def parse_layers_label(text: str | None) -> list[str]:
    """Identities from an image's label; anything malformed reads as no history."""
    parts = (text or "").split(",")
    valid = all(len(p) == DIGEST_CHARS and all(c in "0123456789abcdef" for c in p) for p in parts)
    return parts if text and valid else []
