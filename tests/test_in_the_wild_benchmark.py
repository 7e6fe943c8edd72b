"""benchmarks/in_the_wild.py runs end to end at a tiny size (2 scenes, 1 step), writes its JSON and grid,
and reuses its sample cache."""

from __future__ import annotations

import json

import pytest

from benchmarks import in_the_wild
from pidm_core.checkpoint import EMBEDDED_PATH


@pytest.mark.skipif(not EMBEDDED_PATH.is_file(), reason="needs the embedded model")
def test_in_the_wild_runs_and_reuses_its_samples(tmp_path, capsys):
    args = ["--count", "2", "--steps", "1", "--height", "96", "--threads", "1", "--json", str(tmp_path / "r.json"),
            "--grid", str(tmp_path / "grid.jpg"), "--cache", str(tmp_path / "samples.npz")]
    first = in_the_wild.main(args)
    saved = json.loads((tmp_path / "r.json").read_text())
    assert set(saved["summary"]) == {"pad", "stretch", "framed", "paste ceiling"}
    for method in saved["summary"].values():
        assert set(method) == {"box_ssim", "box_psnr", "scene_ssim", "scene_psnr"}
    assert len(saved["per_scene"]["framed"]) == 2 and saved["mask_source"] is True
    assert (tmp_path / "grid.jpg").stat().st_size > 1000
    # the ceiling (a perfect generator through the same crops and paste) is far above today's pad
    assert saved["summary"]["paste ceiling"]["box_ssim"]["mean"] > saved["summary"]["pad"]["box_ssim"]["mean"] + 0.2
    second = in_the_wild.main(args)
    assert "reusing 6 sampled groups" in capsys.readouterr().err
    assert second["summary"] == first["summary"]
