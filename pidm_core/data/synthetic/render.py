"""Drawing: backdrops, garment textures, and the figure's parts painted at supersampled resolution."""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np

from .figure import Part, TextureFill, figure_parts
from .identity import BACKGROUND_KINDS, PATTERNS, Background, Colour, Garment, Identity
from .pose import FigurePose

SUPERSAMPLE = 2


def render_background(background: Background, height: int, width: int) -> np.ndarray:
    """The backdrop alone: uint8 RGB ``[height, width, 3]``."""
    a = np.array(background.colour, np.float32)
    b = np.array(background.colour_b, np.float32)
    if background.kind == "plain":
        t = np.zeros((1, 1, 1), np.float32)
    elif background.kind == "vertical_gradient":
        t = np.linspace(0, 1, height, dtype=np.float32)[:, None, None]
    elif background.kind == "horizontal_gradient":
        t = np.linspace(0, 1, width, dtype=np.float32)[None, :, None]
    elif background.kind == "two_tone":  # wall and floor meeting in a soft seam
        y = np.linspace(0, 1, height, dtype=np.float32)
        t = np.clip((y - background.split) / 0.08 + 0.5, 0, 1)
        t = (t * t * (3 - 2 * t))[:, None, None]
    else:
        raise ValueError(f"unknown background kind {background.kind!r}; expected one of {BACKGROUND_KINDS}")
    ramp = (a + (b - a) * t + 0.5).astype(np.uint8)  # [H, 1, 3], [1, W, 3] or [1, 1, 3]
    # Stretching the one-pixel ramp with cv2 is several times faster than numpy's broadcast copies.
    return cv2.resize(ramp, (width, height), interpolation=cv2.INTER_NEAREST)


def _texture(garment: Garment, length_px: float, unit_px: float) -> tuple[np.ndarray, int]:
    """A garment's texture tile (uint8 RGB) and the cv2 border mode that extends it: patterns
    repeat (wrap), a gradient runs once down the garment and then holds its end colour."""
    a = np.array(garment.colour, np.uint8)
    b = np.array(garment.colour_b, np.uint8)
    if garment.pattern == "gradient":
        n = max(2, int(round(length_px)))
        t = np.linspace(0, 1, n, dtype=np.float32)[:, None, None]
        return (a + (b.astype(np.float32) - a) * t + 0.5).astype(np.uint8), cv2.BORDER_REPLICATE
    period = max(2, int(round(garment.period * unit_px)))
    y, x = np.mgrid[0:period, 0:period]
    if garment.pattern == "stripes":
        coordinate = {"horizontal": y, "vertical": x, "diagonal": (x + y) % period}[garment.orientation]
        mask = coordinate < period / 2
    elif garment.pattern == "checks":
        mask = (x < period / 2) ^ (y < period / 2)
    elif garment.pattern == "dots":
        c = (period - 1) / 2
        mask = (x - c) ** 2 + (y - c) ** 2 <= (0.25 * period) ** 2
    else:
        raise ValueError(f"pattern {garment.pattern!r} has no texture; expected one of {PATTERNS}")
    return np.where(mask[:, :, None], b, a), cv2.BORDER_WRAP


def _darker(colour: Colour) -> Colour:
    r, g, b = colour
    return int(r * 0.62), int(g * 0.62), int(b * 0.62)


def _paint(canvas: np.ndarray, part: Part, points: np.ndarray, unit_px: float, outline_px: int, textures: dict) -> None:
    """Fill one part into ``canvas`` (in place) and trace its edge in a darker shade, which keeps
    an arm visible in front of a torso of the same fabric. ``points`` is the part's polygon in
    cv2 fixed point (int32, 4 fractional bits)."""
    fill = part.fill
    if isinstance(fill, TextureFill):
        height, width = canvas.shape[:2]
        x0, y0 = np.floor(part.polygon.min(axis=0)).astype(int)
        x1, y1 = np.ceil(part.polygon.max(axis=0)).astype(int) + 1
        x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
        if x1 > x0 and y1 > y0:
            key = (fill.garment, round(fill.length_px))
            if key not in textures:
                textures[key] = _texture(fill.garment, fill.length_px, unit_px)
            tile, border = textures[key]
            across = np.array([fill.axis[1], -fill.axis[0]])
            matrix = np.array([[*across, -fill.origin @ across], [*fill.axis, -fill.origin @ fill.axis + fill.v0]])
            matrix[:, 2] += matrix[:, :2] @ np.array([x0, y0])  # the warp fills the ROI, not the canvas
            flags = cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP  # matrix maps canvas to texture
            warped = cv2.warpAffine(tile, matrix, (x1 - x0, y1 - y0), flags=flags, borderMode=border)
            mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
            cv2.fillPoly(mask, [points - np.array([x0, y0]) * 16], 1, shift=4)
            np.copyto(canvas[y0:y1, x0:x1], warped, where=mask[:, :, None].astype(bool))
        base = fill.garment.colour
    else:
        cv2.fillPoly(canvas, [points], fill, shift=4)
        base = fill
    if part.name != "eye":
        cv2.polylines(canvas, [points], True, _darker(base), outline_px, shift=4)


def render_person(identity: Identity, pose: FigurePose) -> np.ndarray:
    """The figure in ``pose`` over its background: uint8 RGB ``[pose.height, pose.width, 3]``.

    Drawn at ``SUPERSAMPLE``× and shrunk with INTER_AREA, so edges are anti-aliased.
    """
    return render_parts(identity.background, figure_parts(identity, pose), pose)


def render_parts(background: Background, parts: list[Part], pose: FigurePose) -> np.ndarray:
    s = SUPERSAMPLE
    canvas = render_background(background, pose.height * s, pose.width * s)
    return paint_parts(canvas, parts, pose, outline_px=max(1, int(round(pose.height * s / 300))))


def paint_parts(canvas: np.ndarray, parts: list[Part], pose: FigurePose, outline_px: int) -> np.ndarray:
    """Paint ``parts`` over ``canvas`` (uint8 RGB at ``SUPERSAMPLE``× the pose's canvas, changed in
    place) and return it shrunk to the pose's canvas with INTER_AREA. Scenes pass a backdrop of their own."""
    s = SUPERSAMPLE
    unit_px = pose.scale_px * s
    textures: dict = {}
    # Output pixel i covers supersampled pixels i*s .. i*s+s-1, whose centre is i*s + (s-1)/2.
    offset = (s - 1) / 2
    polygons = np.concatenate([part.polygon for part in parts]) * s + offset
    fixed_point = np.round(polygons * 16).astype(np.int32)  # cv2 shift=4
    ends = np.cumsum([len(part.polygon) for part in parts])
    for part, points in zip(parts, np.split(fixed_point, ends[:-1])):
        if isinstance(part.fill, TextureFill):  # texture frames move to supersampled pixels too
            f = part.fill
            fill = replace(f, length_px=f.length_px * s, origin=f.origin * s + offset, v0=f.v0 * s)
            part = replace(part, polygon=part.polygon * s + offset, fill=fill)
        _paint(canvas, part, points, unit_px, outline_px, textures)
    return cv2.resize(canvas, (pose.width, pose.height), interpolation=cv2.INTER_AREA)
