"""Hostile files and requests against the library (issue 14): names that leave their folder, files
and texts that declare or nest more than they hold, canvases and renders too large to allocate, and
values the browser cannot parse. Each hostile file runs in a fresh process under a 4 GB address-space
cap (tests/capped.py) and must end in a clean ValueError, quickly and well under 1.5 GB.

The same requests through a real ComfyUI server: tests/host/test_hostile_requests_host.py.
"""

from __future__ import annotations

import json
import math
import os
import struct

import numpy as np
import pytest

from pidm_core.paths import read_bounded, resolve_inside
from pidm_core.pose import formats, render
from pidm_core.pose.edit import jsonable, parse_edited_pose, preview_frames
from pidm_core.pose.formats import (MAX_FRAMES, MAX_POSE_FILE_BYTES, load_pose_file, pose_keypoint_from_poses,
                                    poses_from_pose_keypoint)
from pidm_core.pose.keypoints import MAX_CANVAS_SIDE, Pose
from pidm_core.pose.render import (check_render_budget, pose_map_grid, render_pose_map, render_request_bytes,
                                   render_skeleton_image)
from tests.capped import run_capped
from tests.poses import standing_pose

SECRET = "TOPSECRET-4b1d"


def _frame(**changes) -> dict:
    return {**pose_keypoint_from_poses([standing_pose()])[0], **changes}


def _npy_header(shape: tuple, dtype: str = "<f4") -> bytes:
    """A version 1.0 .npy header declaring ``shape``, padded as numpy pads it."""
    header = repr({"descr": dtype, "fortran_order": False, "shape": shape}).encode("latin1")
    header += b" " * (64 - (10 + len(header) + 1) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header


LOAD = "from pidm_core.pose.formats import load_pose_file\nimport os\nload_pose_file(os.environ['POSE_FILE'], {canvas})"


def _load_capped(path, canvas=None):
    return run_capped(LOAD.format(canvas=repr(canvas)), env={"POSE_FILE": str(path)})


# --- files that declare or nest more than they hold -------------------------------------------------


def test_npy_header_declaring_400_gib_is_refused_before_reading(tmp_path):
    path = tmp_path / "huge.npy"
    path.write_bytes(_npy_header((10**9, 18, 3)) + bytes(72))
    assert path.stat().st_size <= 200
    message = _load_capped(path, (64, 64)).assert_clean_error(ValueError, "huge.npy", "declares", "(1000000000, 18, 3)",
                                                              "truncated or damaged")
    assert "GiB" in message


@pytest.mark.parametrize(("header", "fragment"), [
    (_npy_header((2, 18, 3)) + bytes(16), "declares an array of shape (2, 18, 3)"),  # a truncated real file
    (_npy_header((18, 3), "|O"), "not a plain numpy keypoint array"),                # objects: a pickle
    (_npy_header((18, 3), "<U8") + bytes(18 * 3 * 32), "not a plain numpy keypoint array"),
    (b"\x93NUMPY\x01\x00\xff\xff" + b"{" * 200, "not a plain numpy keypoint array"),  # header cut short
])
def test_npy_headers_are_checked_against_the_file(tmp_path, header, fragment):
    path = tmp_path / "bad.npy"
    path.write_bytes(header)
    with pytest.raises(ValueError, match="bad.npy") as error:
        load_pose_file(path, canvas_size=(64, 64))
    assert fragment in str(error.value)


def test_npy_without_frames(tmp_path):
    path = tmp_path / "none.npy"
    np.save(path, np.zeros((0, 18, 3), np.float32))
    with pytest.raises(ValueError, match=r"none.npy holds no frames \(shape \(0, 18, 3\)\)"):
        load_pose_file(path, canvas_size=(64, 64))


def test_npy_with_more_frames_than_the_limit(tmp_path):
    path = tmp_path / "long.npy"
    np.save(path, np.zeros((MAX_FRAMES + 1, 18, 3), np.float32))
    _load_capped(path, (64, 64)).assert_clean_error(ValueError, f"holds {MAX_FRAMES + 1} frames", "split")


@pytest.mark.parametrize("opener", ["[", '{"a":'])
def test_json_file_nested_100000_deep(tmp_path, opener):
    path = tmp_path / "deep.json"
    path.write_text(opener * 100_000)
    _load_capped(path).assert_clean_error(ValueError, "deep.json", "more than 16 levels deep")


def test_json_nested_just_over_the_limit_after_parsing(tmp_path):
    path = tmp_path / "seventeen.json"
    path.write_text("[" * 17 + "]" * 17)  # parses (well under the interpreter's limit) but is no pose
    with pytest.raises(ValueError, match="more than 16 levels deep"):
        load_pose_file(path)


def test_edited_pose_nested_100000_deep():
    body = "from pidm_core.pose.edit import parse_edited_pose\nparse_edited_pose('[' * 100_000)"
    run_capped(body).assert_clean_error(ValueError, "edited_pose", "more than 16 levels deep", "press Reset")


def test_edited_pose_larger_than_the_limit():
    text = json.dumps([_frame()]) + " " * MAX_POSE_FILE_BYTES
    with pytest.raises(ValueError, match=r"edited_pose: the edited pose is 16\.\d MiB of JSON; .*16\.0 MiB"):
        parse_edited_pose(text)


def test_pose_file_over_16_mib_is_refused_before_reading(tmp_path):
    path = tmp_path / "big.json"
    with open(path, "wb") as handle:  # sparse: the size is checked before a byte is read
        handle.truncate(MAX_POSE_FILE_BYTES + 1)
    _load_capped(path).assert_clean_error(ValueError, "big.json", "16.0 MiB")


def test_fifo_and_folder_named_like_pose_files_do_not_hang(tmp_path):
    fifo = tmp_path / "pipe.json"
    os.mkfifo(fifo)
    with pytest.raises(ValueError, match="pipe.json is not a regular file"):
        load_pose_file(fifo)
    (tmp_path / "dir.json").mkdir()
    with pytest.raises(ValueError, match="dir.json"):
        load_pose_file(tmp_path / "dir.json")


def test_long_integer_in_json_is_a_named_error(tmp_path):
    path = tmp_path / "digits.json"
    path.write_text('[{"people": [], "canvas_width": ' + "9" * 5000 + "}]")
    with pytest.raises(ValueError, match="digits.json is not valid JSON"):
        load_pose_file(path)


# --- counts: frames, people, joints -----------------------------------------------------------------


def test_frame_people_and_joint_counts_are_bounded():
    body = """
        from pidm_core.pose.formats import poses_from_pose_keypoint
        person = {"pose_keypoints_2d": [1.0] * 10_000_000}
        poses_from_pose_keypoint([{"people": [person], "canvas_width": 64, "canvas_height": 64}])
    """
    run_capped(body).assert_clean_error(ValueError, "'pose_keypoints_2d' has 10000000 entries", "expected 54")
    frame = _frame()
    with pytest.raises(ValueError, match=f"holds {MAX_FRAMES + 1} frames; at most {MAX_FRAMES}"):
        poses_from_pose_keypoint([frame] * (MAX_FRAMES + 1))
    with pytest.raises(ValueError, match="holds 101 people; at most 100 per frame"):
        poses_from_pose_keypoint([{**frame, "people": frame["people"] * 101}])
    rows = {"pose_keypoints_2d": [[1.0] * 1000] * 18}
    with pytest.raises(ValueError, match="a row of 1000 entries"):
        poses_from_pose_keypoint([{**frame, "people": [rows]}])


def test_csv_with_more_rows_than_the_frame_limit(tmp_path):
    row = formats.deepfashion_csv_row("x", standing_pose())
    path = tmp_path / "many.csv"
    path.write_text("\n".join(row.replace("x:", f"x{i}:", 1) for i in range(MAX_FRAMES + 1)))
    with pytest.raises(ValueError, match=f"more than {MAX_FRAMES} rows"):
        load_pose_file(path)


# --- canvas sizes ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("width_json", "shown"), [
    ("1e309", "inf"), ("NaN", "nan"), ('"64px"', "'64px'"), ("0", "got 0"), ("-64", "got -64"),
    ("12.5", "12.5"), ("true", "True"), ("99999", "99999"), ("1" + "0" * 40, "133-bit integer"), ("null", None),
])
def test_canvas_values_in_files_are_named_errors(tmp_path, width_json, shown):
    path = tmp_path / "canvas.json"
    text = json.dumps([_frame(canvas_width=123456)]).replace("123456", width_json)
    path.write_text(text)
    if shown is None:  # no canvas at all: the caller is asked for one
        with pytest.raises(ValueError, match="has no canvas_width/canvas_height"):
            load_pose_file(path)
        return
    with pytest.raises(ValueError, match=r"canvas\.json frame 1 of 1: canvas_width must be") as error:
        load_pose_file(path)
    assert shown in str(error.value) and "OverflowError" not in str(error.value)


@pytest.mark.parametrize("value", [float("inf"), float("nan"), "64px", 0, 20000, 12.5, True, None, [64]])
def test_canvas_values_in_pose_keypoint_and_editor_text(value):
    with pytest.raises(ValueError, match="canvas_height must be|has no canvas"):
        poses_from_pose_keypoint([_frame(canvas_height=value)], name="pose")
    text = json.dumps([_frame(canvas_height=value)])  # NaN and inf are written as NaN and Infinity
    with pytest.raises(ValueError, match="edited_pose"):
        parse_edited_pose(text)


def test_canvas_from_callers_and_pose_objects_is_validated(tmp_path):
    path = tmp_path / "plain.npy"
    np.save(path, np.ones((18, 3), np.float32))
    for canvas in [(float("nan"), 64), (64, 10**6), ("64", 64)]:
        with pytest.raises(ValueError, match="canvas (width|height) must be"):
            load_pose_file(path, canvas_size=canvas)
    with pytest.raises(ValueError, match="Pose canvas width must be between 1 and 16384"):
        Pose(np.zeros((18, 3)), MAX_CANVAS_SIDE + 1, 64)
    assert Pose(np.zeros((18, 3)), 512.0, np.int64(768)).width == 512  # whole floats and numpy ints are fine


# --- rendering ------------------------------------------------------------------------------------


@pytest.mark.parametrize("far", [3e9, -3e9, 1e30, 3.0e38])
def test_joint_far_off_the_canvas_is_clipped_not_a_cv2_error(far):
    keypoints = standing_pose().keypoints.copy()
    keypoints[4, 0] = far  # the right wrist, far along x: the forearm runs off the canvas
    pose_map = render_pose_map(keypoints, 64, 48)
    skeleton = render_skeleton_image(keypoints, 64, 48)
    assert np.isfinite(pose_map).all() and skeleton.shape == (64, 48, 3)
    forearm = pose_map[3 + 3]  # limb 3 is joints 3-4 (right elbow to right wrist)
    assert forearm.min() == 0.0  # drawn from the elbow to the canvas edge
    edge = 47 if far > 0 else 0
    assert (forearm[:, edge] == 0.0).any()


@pytest.mark.parametrize("slope", [0.0, 0.5, -1.0])
def test_far_joint_keeps_its_limb_direction(slope):
    # A wrist 3e9 px away draws the forearm from the elbow along the line towards it, to the edge.
    keypoints = standing_pose().keypoints.copy()
    elbow = keypoints[3, :2].astype(np.float64)
    direction = np.array([1.0, slope]) / math.hypot(1.0, slope)
    keypoints[4, :2] = elbow + 3e9 * direction
    ys, xs = np.nonzero(render_pose_map(keypoints, 64, 48)[6] == 0)
    offsets = np.stack([xs, ys], axis=1) - elbow
    off_line = np.abs(offsets[:, 0] * direction[1] - offsets[:, 1] * direction[0])
    assert len(xs) and off_line.max() <= 2.5  # the stick is 1 px wide at this size; cv2 rounds
    assert xs.max() == 47 or ys.max() == 63 or ys.min() == 0  # it runs off the canvas


def test_render_sizes_are_bounded_in_a_capped_process():
    body = """
        import numpy as np
        from pidm_core.pose.render import render_pose_map
        render_pose_map(np.zeros((18, 3)), 8192, 8192)
    """
    run_capped(body).assert_clean_error(ValueError, "pose map of 8192x8192 pixels", "megapixels", max_seconds=20)
    body = body.replace("render_pose_map", "render_skeleton_image").replace("8192, 8192", "16384, 16384")
    run_capped(body).assert_clean_error(ValueError, "skeleton image of 16384x16384", max_seconds=20)


@pytest.mark.parametrize(("frames", "height", "width"), [(1, 8192, 8192), (1, 16384, 16384), (100, 2048, 2048),
                                                          (MAX_FRAMES, 512, 512)])
def test_render_request_over_the_budget_is_refused_before_drawing(frames, height, width):
    with pytest.raises(ValueError, match=rf"Render Pose: {frames} frames? at {width}x{height} would need about .* "
                                         rf"one request may use 1\.0 GiB: lower width/height"):
        check_render_budget(frames, height, width)


@pytest.mark.parametrize(("frames", "height", "width"), [(1, 4096, 4096), (64, 512, 512), (1000, 64, 64),
                                                          (100, 256, 256)])
def test_render_requests_of_real_use_fit_the_budget(frames, height, width):
    check_render_budget(frames, height, width)


def test_budget_estimate_covers_what_a_large_render_really_takes():
    # One 4096x4096 frame (about a third of the budget): the peak of drawing it, through the same
    # steps as Render Pose (float32 outputs filled in place), stays below the estimate.
    body = """
        import resource
        import numpy as np
        import torch
        from pidm_core.pose.keypoints import Pose
        from pidm_core.pose.geometry import fit_to_canvas
        from pidm_core.pose.render import pose_map_grid, pose_map_grid_size, render_skeleton_image
        from tests.poses import standing_pose
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        pose = fit_to_canvas(standing_pose(), 4096, 4096)
        skeletons = torch.empty((1, 4096, 4096, 3))
        grids = torch.empty((1, *pose_map_grid_size(4096, 4096), 3))
        skeletons[0].copy_(torch.from_numpy(render_skeleton_image(pose.keypoints, 4096, 4096))).div_(255)
        grids[0].copy_(torch.from_numpy(pose_map_grid(pose.keypoints, 4096, 4096))[:, :, None]).div_(255)
        grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before
        raise ValueError(f"grown {grown}")
    """
    message = run_capped(body).assert_clean_error(ValueError, "grown")
    assert int(message.split()[-1]) <= render_request_bytes(1, 4096, 4096)


def test_grid_tiles_are_the_canvas_when_small_and_capped_when_large():
    pose = standing_pose()
    grid = pose_map_grid(pose.keypoints, 64, 48)
    channels = (render_pose_map(pose.keypoints, 64, 48) * 255.0 + 0.5).astype(np.uint8)
    assert grid.shape == (4 * 64, 5 * 48)
    np.testing.assert_array_equal(grid[64:128, 96:144], channels[7])  # row 1, column 2: channel 5 + 2
    big = pose_map_grid(pose.keypoints * np.float32([64, 64, 1]), 64 * 64, 48 * 64)
    assert big.shape == (4 * render.GRID_TILE_MAX_PX, 5 * 96)


# --- names from requests ------------------------------------------------------------------------------


@pytest.fixture()
def folders(tmp_path):
    inside, outside = tmp_path / "input", tmp_path / "elsewhere"
    (inside / "sub").mkdir(parents=True)
    outside.mkdir()
    (outside / "secret.json").write_text(json.dumps({SECRET: [SECRET]}))
    (inside / "sub" / "ok.json").write_text(json.dumps([_frame()]))
    (inside / "out_link.json").symlink_to(outside / "secret.json")
    (inside / "in_link.json").symlink_to(inside / "sub" / "ok.json")
    (inside / "dir_link").symlink_to(outside, target_is_directory=True)
    return inside, outside


@pytest.mark.parametrize("name", [
    "/etc/passwd", "../elsewhere/secret.json", "sub/../../elsewhere/secret.json", "..", "", " x.json",
    "C:\\secret.json", "\\\\server\\share\\secret.json", "ok\x00.json", 5, None,
])
def test_names_that_leave_the_folder_are_refused(folders, name):
    inside, _ = folders
    with pytest.raises(ValueError, match="Load Pose file .* is not a file name inside its folder") as error:
        resolve_inside(name, [str(inside)], "Load Pose file")
    assert SECRET not in str(error.value)


@pytest.mark.parametrize("name", ["out_link.json", "dir_link/secret.json"])
def test_links_leading_out_of_the_folder_are_refused(folders, name):
    inside, _ = folders
    with pytest.raises(ValueError, match="is a link that leads outside .*copy the file there") as error:
        resolve_inside(name, [str(inside)], "Load Pose file")
    assert SECRET not in str(error.value)


def test_fifo_named_like_a_pose_file_is_refused_without_opening_it(folders):
    inside, _ = folders
    os.mkfifo(inside / "pipe.json")
    with pytest.raises(ValueError, match="'pipe.json' is not a regular file"):
        resolve_inside("pipe.json", [str(inside)], "Load Pose file")


def test_16_mib_of_tiny_frames_stays_small():
    body = """
        import os, tempfile
        from pidm_core.pose.formats import load_pose_file, MAX_POSE_FILE_BYTES
        path = os.path.join(tempfile.mkdtemp(), "dicts.json")
        with open(path, "w") as handle:
            handle.write("[" + ",".join(["{}"] * ((MAX_POSE_FILE_BYTES - 2) // 3)) + "]")
        load_pose_file(path)
    """
    result = run_capped(body)
    result.assert_clean_error(ValueError, "dicts.json holds 55924", "frames; at most 10000")


def test_files_and_links_inside_the_folder_resolve(folders):
    inside, _ = folders
    real = os.path.realpath(inside / "sub" / "ok.json")
    assert resolve_inside("sub/ok.json", [str(inside)], "file") == real
    assert resolve_inside("in_link.json", [str(inside)], "file") == real
    assert resolve_inside("missing.json", [str(inside)], "file") is None
    assert resolve_inside("sub", [str(inside)], "file") is None  # a folder is not a file


def test_read_bounded_names_the_limit(tmp_path):
    path = tmp_path / "x.bin"
    path.write_bytes(b"a" * 2048)
    assert read_bounded(path, 2048, "x") == b"a" * 2048
    with pytest.raises(ValueError, match=r"x is 2\.0 KiB; files of this kind are read up to 1\.0 KiB"):
        read_bounded(path, 1024, "x")
    with pytest.raises(ValueError, match="does not exist"):
        read_bounded(tmp_path / "nope", 1024, "nope")


# --- errors quote nothing of a file that holds no pose --------------------------------------------


@pytest.mark.parametrize(("name", "content"), [
    ("secret.txt", f"{SECRET} is the password\n"),
    ("secret.csv", f"name:keypoints_y:keypoints_x\nimg:{SECRET}:[1]\n"),
    ("secret2.csv", f"name:keypoints_y:keypoints_x\nimg:[{', '.join(['1'] * 18)}]:[{SECRET}]\n"),
    ("secret.npy", SECRET * 4),
    ("secret2.json", json.dumps([{"people": [{"pose_keypoints_2d": [SECRET] * 54}], "canvas_width": 1,
                                  "canvas_height": 1}])),
])
def test_errors_do_not_quote_file_content(tmp_path, name, content):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(ValueError) as error:
        load_pose_file(path, canvas_size=(64, 64))
    assert SECRET not in str(error.value), str(error.value)


def test_json_keys_in_errors_are_few_and_short(tmp_path):
    path = tmp_path / "keys.json"
    path.write_text(json.dumps([{f"{SECRET}{'x' * 100}{i}": 1 for i in range(1000)}]))
    with pytest.raises(ValueError, match="expected a dict with a 'people' list") as error:
        load_pose_file(path)
    assert len(str(error.value)) < 400


# --- what the browser is sent ------------------------------------------------------------------------


HOSTILE_FRAMES = [
    {"people": [{"pose_keypoints_2d": [float("nan"), 1.0, 1.0, float("inf"), 2.0, 1.0] + [3.0, 4.0, 1.0] * 16,
                 "face_keypoints_2d": [float("nan")]}],
     "canvas_width": float("inf"), "canvas_height": float("nan"), "extra": float("-inf")},
    {"people": [{"pose_keypoints_2d": np.full(54, np.nan, np.float32)}, "junk", None],
     "canvas_width": "64px", "canvas_height": 10**400},
    {"people": [{"pose_keypoints_2d": [1.0] * 1_000_000}]},
    "not a frame", 5,
]


def test_preview_frames_are_strict_json_whatever_the_pose_holds():
    previews = preview_frames(HOSTILE_FRAMES, 32)
    text = json.dumps(previews, allow_nan=False)
    assert len(text) < 5000
    first = previews[0]["people"][0]["pose_keypoints_2d"]
    assert first[:6] == [0.0] * 6 and first[6:9] == [3.0, 4.0, 1.0]  # NaN/inf joints become missing
    assert previews[0]["canvas_width"] is None and previews[1]["canvas_height"] is None
    assert previews[2]["people"][0]["pose_keypoints_2d"] is None  # too long to be a pose: not sent
    assert preview_frames(_frame(), 32)[0]["canvas_width"] == 48  # a dict is one frame; ints stay ints


def test_jsonable_drops_non_finite_numbers_and_unknown_objects():
    data = {"a": [np.float32("nan"), np.int64(3), 10**400, object(), (1, 2), np.array([1.5, np.inf])],
            "deep": json.loads("[" * 40 + "]" * 40)}
    out = jsonable(data)
    json.dumps(out, allow_nan=False)
    assert out["a"] == [None, 3, None, None, [1, 2], [1.5, None]]


def test_edited_pose_with_nan_joint_is_read_and_its_preview_is_strict():
    text = json.dumps([_frame()]).replace("[24.0, 8.0, 1.0", "[NaN, 8.0, 1.0", 1)
    assert "NaN" in text
    frames = parse_edited_pose(text)
    (pose,) = poses_from_pose_keypoint(frames)
    assert not pose.present[0] and pose.present[1:].all()  # the NaN joint is missing, the rest is used
    json.dumps(preview_frames(frames, 32), allow_nan=False)
