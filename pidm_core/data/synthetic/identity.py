"""Who is drawn: body proportions, skin, hair, clothes with their patterns, and the backdrop."""

from __future__ import annotations

import colorsys
import math
from dataclasses import dataclass

import numpy as np

Colour = tuple[int, int, int]  # RGB, 0–255

PATTERNS = ("solid", "stripes", "checks", "dots", "gradient", "logo")
_PATTERN_WEIGHTS = (0.40, 0.16, 0.10, 0.10, 0.10, 0.14)
BACKGROUND_KINDS = ("plain", "vertical_gradient", "horizontal_gradient", "two_tone")
HAIR_STYLES = ("short", "long", "bald")
SLEEVES = ("none", "short", "long")
BOTTOM_KINDS = ("trousers", "shorts", "skirt")


@dataclass(frozen=True)
class Body:
    """Proportions in body units (the standing figure is 1 unit from head top to sole)."""

    stature: float  # standing height as a fraction of the canvas height
    head_height: float
    head_width: float
    neck_length: float  # chin to shoulder line
    torso_length: float  # shoulder line (COCO neck) to hip line
    shoulder_half_width: float
    hip_half_width: float
    torso_half_depth: float
    upper_arm: float
    forearm: float
    hand: float
    thigh: float
    shin: float
    foot_height: float  # ankle to sole
    foot_length: float
    arm_radius: float  # at the shoulder; limbs taper toward the hand
    leg_radius: float  # at the hip; tapers toward the ankle
    neck_radius: float


@dataclass(frozen=True)
class Garment:
    """A fabric: ``colour`` is the main colour, ``colour_b`` the pattern's second colour."""

    pattern: str  # one of PATTERNS
    colour: Colour
    colour_b: Colour
    period: float  # pattern period (stripes, checks, dots) or logo size, body units
    orientation: str  # stripes: "horizontal", "vertical" or "diagonal"
    logo_shape: str  # logo: "circle", "diamond", "triangle" or "star"


@dataclass(frozen=True)
class Background:
    """A studio backdrop; low-frequency by construction (no edges but the soft two-tone seam)."""

    kind: str  # one of BACKGROUND_KINDS
    colour: Colour  # top / left / wall
    colour_b: Colour  # bottom / right / floor
    split: float  # two_tone: seam height as a fraction of the canvas height


@dataclass(frozen=True)
class Identity:
    """Everything that stays the same between the two images of a pair."""

    body: Body
    skin: Colour
    hair: Colour
    hair_style: str  # one of HAIR_STYLES
    top: Garment
    sleeves: str  # one of SLEEVES
    v_neck: bool
    top_drop: float  # how far the top reaches below the hip line, body units
    bottom: Garment  # a dress is a skirt cut from the top's garment
    bottom_kind: str  # one of BOTTOM_KINDS
    bottom_length: float  # shorts: fraction of the thigh; skirt: fraction of thigh + shin
    shoes: Colour
    background: Background


def _hsv(h: float, s: float, v: float) -> Colour:
    r, g, b = colorsys.hsv_to_rgb(h % 1.0, s, v)
    return int(r * 255), int(g * 255), int(b * 255)


def _distance(a: Colour, b: Colour) -> float:
    return math.dist(a, b)


def _sample_body(rng: np.random.Generator) -> Body:
    u = rng.uniform
    build = u(0.85, 1.25)  # slim to stocky: scales widths, not lengths
    broad = u(0.9, 1.15)  # shoulders against hips
    head_height = 0.13 * u(0.9, 1.12)
    neck_length = 0.045 * u(0.85, 1.15)
    torso_length = 0.30 * u(0.92, 1.08)
    thigh = 0.245 * u(0.92, 1.08)
    shin = 0.235 * u(0.92, 1.08)
    foot_height = 0.04
    total = head_height + neck_length + torso_length + thigh + shin + foot_height
    k = 1.0 / total  # the vertical chain defines the unit; everything else scales with it
    return Body(
        stature=u(0.76, 0.90),
        head_height=head_height * k,
        head_width=head_height * k * u(0.74, 0.84),
        neck_length=neck_length * k,
        torso_length=torso_length * k,
        shoulder_half_width=0.112 * k * broad * (0.5 + 0.5 * build),
        hip_half_width=0.072 * k / broad * (0.5 + 0.5 * build),
        torso_half_depth=0.06 * k * build,
        upper_arm=0.175 * k * u(0.93, 1.07),
        forearm=0.15 * k * u(0.93, 1.07),
        hand=0.07 * k,
        thigh=thigh * k,
        shin=shin * k,
        foot_height=foot_height * k,
        foot_length=0.13 * k * u(0.9, 1.1),
        arm_radius=0.031 * k * build,
        leg_radius=0.05 * k * build,
        neck_radius=0.027 * k * build,
    )


def _sample_skin(rng: np.random.Generator) -> Colour:
    light, medium, dark = np.array([242, 200, 172]), np.array([196, 134, 96]), np.array([96, 62, 42])
    t = rng.uniform(0.0, 1.0)
    base = light + (medium - light) * (t / 0.5) if t < 0.5 else medium + (dark - medium) * ((t - 0.5) / 0.5)
    jitter = rng.uniform(-10, 10, size=3)
    return tuple(int(c) for c in np.clip(base + jitter, 0, 255))


def _sample_hair_colour(rng: np.random.Generator) -> Colour:
    palette = ((28, 22, 20), (62, 42, 30), (112, 76, 46), (204, 170, 112), (146, 64, 32), (150, 150, 150))
    base = np.array(palette[rng.choice(len(palette), p=(0.3, 0.25, 0.18, 0.12, 0.08, 0.07))])
    return tuple(int(c) for c in np.clip(base + rng.uniform(-12, 12, size=3), 0, 255))


def _sample_fabric_colour(rng: np.random.Generator) -> Colour:
    if rng.uniform() < 0.22:  # the neutrals people actually wear a lot: white, black, grey, navy, beige
        neutrals = ((240, 240, 236), (30, 30, 34), (128, 128, 132), (36, 44, 84), (206, 190, 160))
        return neutrals[rng.integers(len(neutrals))]
    return _hsv(rng.uniform(), rng.uniform(0.25, 0.95), rng.uniform(0.25, 0.95))


def _contrasting(
    rng: np.random.Generator, sampler, avoid: tuple[Colour, ...], min_distance: float, tries: int = 8
) -> Colour:
    """A colour from ``sampler`` at least ``min_distance`` (RGB Euclidean) from every colour in
    ``avoid``; after ``tries`` failures, the best of the tries (the figure must stay visible)."""
    best, best_distance = None, -1.0
    for _ in range(tries):
        colour = sampler(rng)
        distance = min((_distance(colour, a) for a in avoid), default=math.inf)
        if distance >= min_distance:
            return colour
        if distance > best_distance:
            best, best_distance = colour, distance
    return best


def _sample_garment(rng: np.random.Generator, avoid: tuple[Colour, ...]) -> Garment:
    pattern = PATTERNS[rng.choice(len(PATTERNS), p=_PATTERN_WEIGHTS)]
    colour = _contrasting(rng, _sample_fabric_colour, avoid, 40.0)
    colour_b = _contrasting(rng, _sample_fabric_colour, (colour,), 90.0)
    if pattern == "gradient":  # a gradient between far-apart colours looks like two garments
        darker = np.array(colour) * rng.uniform(0.45, 0.7) + rng.uniform(0, 60)
        colour_b = tuple(int(c) for c in np.clip(darker, 0, 255))
    period = {"stripes": (0.035, 0.08), "checks": (0.05, 0.1), "dots": (0.04, 0.08), "logo": (0.045, 0.07)}
    low, high = period.get(pattern, (0.05, 0.05))
    return Garment(
        pattern=pattern,
        colour=colour,
        colour_b=colour_b,
        period=rng.uniform(low, high),
        orientation=("horizontal", "vertical", "diagonal")[rng.choice(3, p=(0.55, 0.3, 0.15))],
        logo_shape=("circle", "diamond", "triangle", "star")[rng.integers(4)],
    )


# Plain backdrops to fall back on when no sampled one stands out from the clothes.
_FALLBACK_BACKDROPS = (
    (236, 236, 236), (196, 196, 196), (140, 140, 140), (72, 72, 72), (24, 24, 24), (198, 218, 240),
    (58, 78, 118), (218, 234, 206), (70, 108, 80), (240, 224, 198), (128, 88, 70), (240, 208, 220),
)  # fmt: skip


def _sample_background(rng: np.random.Generator, avoid: tuple[Colour, ...]) -> Background:
    """A backdrop whose colours lie at least 70 (RGB distance) from every colour in ``avoid`` when
    16 tries or the fallback list allow; otherwise the one that stands out most."""
    kind = BACKGROUND_KINDS[rng.choice(len(BACKGROUND_KINDS), p=(0.35, 0.25, 0.15, 0.25))]
    split = rng.uniform(0.6, 0.9)

    def backdrop() -> Colour:
        if rng.uniform() < 0.55:  # DeepFashion's studios are mostly light and neutral
            level = rng.uniform(170, 250)
            return tuple(int(c) for c in np.clip(level + rng.uniform(-8, 8, size=3), 0, 255))
        return _hsv(rng.uniform(), rng.uniform(0.08, 0.5), rng.uniform(0.3, 0.95))

    def contrast(*colours: Colour) -> float:
        return min(_distance(c, a) for c in colours for a in avoid)

    best = (-1.0, None, None, kind)
    for _ in range(16):
        colour = backdrop()
        shade, tint = rng.uniform(0.65, 1.1), rng.uniform(-15, 15, size=3)
        colour_b = tuple(int(c) for c in np.clip(np.array(colour) * shade + tint, 0, 255))
        if kind == "plain":
            colour_b = colour
        distance = contrast(colour, colour_b)
        if distance >= 70.0:
            return Background(kind=kind, colour=colour, colour_b=colour_b, split=split)
        if distance > best[0]:
            best = (distance, colour, colour_b, kind)
    for colour in _FALLBACK_BACKDROPS:
        if (distance := contrast(colour)) > best[0]:
            best = (distance, colour, colour, "plain")
    _, colour, colour_b, kind = best
    return Background(kind=kind, colour=colour, colour_b=colour_b, split=split)


def sample_identity(rng: np.random.Generator) -> Identity:
    """A random person: body proportions, skin, hair, clothes, shoes and the studio background.

    Skin, hair, garments and shoes are drawn first; the background is then chosen to contrast with them and
    with the average of each pattern's two colours (RGB distance >= 70 when possible) so the figure
    never dissolves into the backdrop.
    """
    body = _sample_body(rng)
    skin = _sample_skin(rng)
    hair = _sample_hair_colour(rng)
    hair_style = HAIR_STYLES[rng.choice(3, p=(0.5, 0.44, 0.06))]
    top = _sample_garment(rng, (skin,))
    sleeves = SLEEVES[rng.choice(3, p=(0.15, 0.45, 0.4))]
    v_neck = bool(rng.uniform() < 0.4)
    top_drop = rng.uniform(-0.01, 0.06)
    bottom_kind = BOTTOM_KINDS[rng.choice(3, p=(0.55, 0.15, 0.3))]
    bottom = _sample_garment(rng, (top.colour, skin))
    if bottom_kind == "skirt" and rng.uniform() < 0.35:
        bottom = top  # a dress
    bottom_length = rng.uniform(0.45, 0.8) if bottom_kind == "shorts" else rng.uniform(0.35, 0.8)
    shoes = _sample_fabric_colour(rng) if rng.uniform() < 0.3 else _hsv(rng.uniform(), 0.3, rng.uniform(0.1, 0.3))
    colours = [skin, hair, shoes]
    for garment in (top, bottom):
        # A fine pattern averages to the mean of its colours once shrunk: that must stand out too.
        mean = tuple((a + b) // 2 for a, b in zip(garment.colour, garment.colour_b))
        colours += [garment.colour, garment.colour_b, mean]
    background = _sample_background(rng, tuple(colours))
    return Identity(
        body=body,
        skin=skin,
        hair=hair,
        hair_style=hair_style,
        top=top,
        sleeves=sleeves,
        v_neck=v_neck,
        top_drop=top_drop,
        bottom=bottom,
        bottom_kind=bottom_kind,
        bottom_length=bottom_length,
        shoes=shoes,
        background=background,
    )
