"""Small LLB Definitions built straight from ops_pb2, so client tests do not depend on the IR.

A linear chain: one image source and ``sh -c`` steps, each mounting the previous root at "/".
"""

from __future__ import annotations

import hashlib

from envd_jupyter._proto import ops_pb2


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def chain(image_ref: str, scripts: list[str], *, network: str = "sandbox", env: tuple[str, ...] = ()) -> bytes:
    """Definition bytes: ``image_ref`` then one RUN per script (network "sandbox", "host" or "none")."""
    name = image_ref if "/" in image_ref.split(":")[0] else "library/" + image_ref
    source = ops_pb2.Op(source=ops_pb2.SourceOp(identifier=f"docker-image://docker.io/{name}"))
    ops = [source.SerializeToString(deterministic=True)]
    net = {"sandbox": ops_pb2.UNSET, "host": ops_pb2.HOST, "none": ops_pb2.NONE}[network]
    for script in scripts:
        run = ops_pb2.Op(
            inputs=[ops_pb2.Input(digest=_digest(ops[-1]), index=0)],
            exec=ops_pb2.ExecOp(
                meta=ops_pb2.Meta(args=["/bin/sh", "-c", script], cwd="/",
                                  env=["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", *env]),
                mounts=[ops_pb2.Mount(input=0, dest="/", output=0)],
                network=net,
            ),
        )
        ops.append(run.SerializeToString(deterministic=True))
    final = ops_pb2.Op(inputs=[ops_pb2.Input(digest=_digest(ops[-1]), index=0)])
    ops.append(final.SerializeToString(deterministic=True))
    return ops_pb2.Definition(**{"def": ops}).SerializeToString(deterministic=True)
