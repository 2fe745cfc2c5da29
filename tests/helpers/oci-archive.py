#!/usr/bin/python3
"""oci-archive.py NAME DIR ARCHIVE LAYER.tar...: an OCI image named NAME from uncompressed
layer tars (bottom first), by hand (no registry): the image layout in DIR (made if missing,
its blobs/sha256 too), then DIR as the tar ARCHIVE that `ctr image import` and skopeo's
oci-archive: read. Used by image_build (tests/container-lib.sh) and scripts/bench."""
import hashlib
import json
import os
import subprocess
import sys


def main():
    if len(sys.argv) < 5:
        sys.exit(__doc__)
    name, top, archive = sys.argv[1:4]
    blobs = os.path.join(top, "blobs", "sha256")
    os.makedirs(blobs, exist_ok=True)

    def blob(data):
        h = hashlib.sha256(data).hexdigest()
        with open(os.path.join(blobs, h), "wb") as f:
            f.write(data)
        return {"digest": "sha256:" + h, "size": len(data)}

    layers = []
    for t in sys.argv[4:]:
        with open(t, "rb") as f:
            layers.append(blob(f.read()))
    config = blob(json.dumps({
        "architecture": "amd64", "os": "linux",
        "config": {"Cmd": ["sh"], "Env": ["PATH=/bin"]},
        "rootfs": {"type": "layers", "diff_ids": [l["digest"] for l in layers]},
    }).encode())
    manifest = blob(json.dumps({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": dict(config, mediaType="application/vnd.oci.image.config.v1+json"),
        "layers": [dict(l, mediaType="application/vnd.oci.image.layer.v1.tar") for l in layers],
    }).encode())
    index = {"schemaVersion": 2, "manifests": [dict(
        manifest, mediaType="application/vnd.oci.image.manifest.v1+json",
        annotations={"io.containerd.image.name": name, "org.opencontainers.image.ref.name": "latest"})]}
    with open(os.path.join(top, "index.json"), "w") as f:
        json.dump(index, f)
    with open(os.path.join(top, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)
    subprocess.run(["tar", "-C", top, "-cf", os.path.abspath(archive), "oci-layout", "index.json", "blobs"],
                   check=True)


if __name__ == "__main__":
    main()
