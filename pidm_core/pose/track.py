"""One person followed through a video: identity, left and right, and the frames they were not found in.

:class:`PersonTracker` takes each frame's people (COCO-18 ``[18, 3]`` px, from
:func:`~pidm_core.pose.people.open_people_detector`) and the frame itself, one frame at a time, and keeps
only that person's joints (never the frames). :meth:`PersonTracker.finish` gives a :class:`Track`.

* **Choice**: ``person="largest"`` takes the largest (box of its joints); an index takes that person
  counted left to right by the centre of their box, as Pose From Image counts. The choice is made once,
  in the first :data:`CHOICE_WINDOW_S` after people first appear, at the first frame there that shows
  the most people (a detector often misses one of two people in a frame, and "person 0" must not become
  whoever was found alone); the frames before it are followed backwards from it. An index beyond the
  people seen waits for a frame that shows enough of them.
* **Identity**: each later frame's people are compared with the track's prediction: every joint moved
  by the body's velocity (constant velocity since it was last seen), the person's size, and the colours
  of their clothes (a colour histogram of the torso and thighs). Someone crossing in front lands where
  the prediction is but wears other colours, and is refused; that frame counts as not found. The colour
  model learns only from frames where the person stands clear of everyone detected and already looks
  like the model (:data:`LEARN_GATE`), so someone the detector missed, standing behind or in front of
  them, does not creep into it. A detection whose skeleton lies on the wrong body parts samples the
  wrong colours and is refused too. After :data:`REACQUIRE_AFTER_S` without the person, the position
  no longer limits the search (they may come back anywhere) and the colours must match closer.
* **Left and right**: detectors swap a person's sides from frame to frame (a person seen from the front
  or back looks much the same mirrored). While tracking, each candidate is compared with the prediction
  in the side assignment closest to it. The sides kept are decided at the end, for arms, legs and face
  separately, as the labelling of the whole video that moves the joints least from frame to frame
  while agreeing with the detector where moving costs nothing either way (:func:`consistent_sides`).
* **Gaps**: a joint (or the whole person) missing for at most ``max_gap`` frames between two frames
  that show it is interpolated linearly, with the lower of the two confidences; frames where the person
  was not found but now have joints are reported in :attr:`Track.filled`. Longer gaps, and frames before
  the first or after the last sighting, are held at the nearest sighting (``long_gaps="hold"``, the
  default: a pose sampler needs a pose for every frame and a person standing still is better than
  nothing) or left empty, every joint missing (``long_gaps="empty"``); either way they are reported in
  :attr:`Track.held` or :attr:`Track.empty`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .keypoints import FLIP_PERMUTATION, NUM_JOINTS, Pose
from .measure import body_part_stature

# Joint groups whose sides are decided separately (detectors often swap only the legs).
SIDE_GROUPS = {"arms": (2, 3, 4, 5, 6, 7), "legs": (8, 9, 10, 11, 12, 13), "face": (14, 15, 16, 17)}
TORSO = (1, 2, 5, 8, 11)
LONG_GAPS = ("hold", "empty")

POSITION_GATE = 0.35  # mean joint distance to the prediction, in person heights, for a frame after a sighting
POSITION_GATE_GROWTH = 0.06  # ... plus this per frame without a sighting
SIZE_GATE = 0.5  # |log(size / track size)| above this: a different person (or a bad detection)
APPEARANCE_GATE = 0.55  # Bhattacharyya distance of clothes colours: above it, someone else
REACQUIRE_GATE = 0.5  # stricter, when the person is searched for anywhere in the frame
REACQUIRE_AFTER_S = 1.0
SIZE_WEIGHT, APPEARANCE_WEIGHT = 0.5, 1.0
CHOICE_WINDOW_S = 1.0  # the person is chosen in this much video after people first appear
SIDE_PRIOR = 0.003  # cost (person heights) of a frame labelled against the detector's sides
JOINT_MEMORY_S = 0.5  # a joint last seen longer ago than this does not take part in the prediction
VELOCITY_SMOOTHING = 0.5  # share of the newest displacement in the body velocity
APPEARANCE_LEARNING = 0.1  # share of a clear new view in the clothes-colour model
LEARN_GATE = 0.4  # ... taken only when its colours are this close to the model already
COLOUR_LEVELS = 6  # per RGB channel: 216 bins
HISTOGRAM_SAMPLES = 48  # a region is sampled on at most this many points per side


# --------------------------------------------------------------------------------------------------
# measures of one pose


def pose_size(keypoints: np.ndarray, width: int, height: int) -> float:
    """Person height in pixels: the stature from body parts (:func:`~pidm_core.pose.measure.body_part_stature`),
    else the height of the box of the joints; 0 with fewer than two joints."""
    present = keypoints[:, 2] > 0
    stature, _ = body_part_stature(Pose(keypoints, width, height))
    if stature > 0:
        return float(stature)
    if present.sum() < 2:
        return 0.0
    ys = keypoints[present, 1]
    return float(max(ys.max() - ys.min(), np.ptp(keypoints[present, 0])))


def pose_centre(keypoints: np.ndarray) -> np.ndarray | None:
    """Mean of the present torso joints (neck, shoulders, hips), else of all present joints."""
    present = keypoints[:, 2] > 0
    torso = [j for j in TORSO if present[j]]
    chosen = torso if torso else np.nonzero(present)[0]
    return keypoints[list(chosen), :2].astype(np.float64).mean(axis=0) if len(chosen) else None


def pose_box(keypoints: np.ndarray) -> tuple[float, float, float, float] | None:
    present = keypoints[:, 2] > 0
    if not present.any():
        return None
    xy = keypoints[present, :2]
    return float(xy[:, 0].min()), float(xy[:, 1].min()), float(xy[:, 0].max()), float(xy[:, 1].max())


def _boxes_overlap(a, b, margin: float) -> bool:
    return not (a[2] + margin < b[0] or b[2] + margin < a[0] or a[3] + margin < b[1] or b[3] + margin < a[1])


def flip_group(keypoints: np.ndarray, group: str) -> np.ndarray:
    """``keypoints`` with the left and right joints of one :data:`SIDE_GROUPS` group exchanged."""
    out = keypoints.copy()
    joints = list(SIDE_GROUPS[group])
    out[joints] = keypoints[[FLIP_PERMUTATION[j] for j in joints]]
    return out


# --------------------------------------------------------------------------------------------------
# appearance: colours of the clothes


def _regions(keypoints: np.ndarray) -> list[np.ndarray]:
    """Polygons over the torso (shoulders to hips) and each thigh (hip to knee), shrunk towards their
    centre so that the backdrop at their edge stays out."""
    present = keypoints[:, 2] > 0
    xy = keypoints[:, :2].astype(np.float64)
    polygons = []
    if present[[2, 5, 8, 11]].all():
        polygons.append(xy[[2, 5, 11, 8]])
    elif present[[2, 5]].all():  # no hips: a box below the shoulders, as deep as they are wide
        a, b = xy[2], xy[5]
        down = np.array([-(b - a)[1], (b - a)[0]])
        down = down if down[1] >= 0 else -down
        polygons.append(np.array([a, b, b + down, a + down]))
    for hip, knee in ((8, 9), (11, 12)):
        if present[[hip, knee]].all():
            axis = xy[knee] - xy[hip]
            side = np.array([-axis[1], axis[0]]) * 0.18
            polygons.append(np.array([xy[hip] - side, xy[hip] + side, xy[knee] + side, xy[knee] - side]))
    shrunk = []
    for polygon in polygons:
        centre = polygon.mean(axis=0)
        shrunk.append(centre + 0.75 * (polygon - centre))
    return shrunk


def clothes_histogram(rgb: np.ndarray, keypoints: np.ndarray) -> np.ndarray | None:
    """Normalised RGB histogram (:data:`COLOUR_LEVELS`³ bins) of the torso and thighs of the person whose
    joints are ``keypoints`` in ``rgb``; None when those parts are not seen. Sampled on a grid of at
    most :data:`HISTOGRAM_SAMPLES`² points, so its cost does not grow with the frame size."""
    import cv2

    height, width = rgb.shape[:2]
    counts = np.zeros(COLOUR_LEVELS ** 3, dtype=np.float64)
    for polygon in _regions(keypoints):
        x0, y0 = np.floor(polygon.min(axis=0)).astype(int)
        x1, y1 = np.ceil(polygon.max(axis=0)).astype(int) + 1
        x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
        if x1 - x0 < 2 or y1 - y0 < 2:
            continue
        stride = max(1, int(np.ceil(max(x1 - x0, y1 - y0) / HISTOGRAM_SAMPLES)))
        patch = rgb[y0:y1:stride, x0:x1:stride]
        mask = np.zeros(patch.shape[:2], np.uint8)
        cv2.fillPoly(mask, [np.round((polygon - (x0, y0)) / stride).astype(np.int32)], 1)
        pixels = patch[mask > 0].astype(np.int32) * COLOUR_LEVELS // 256
        codes = (pixels[:, 0] * COLOUR_LEVELS + pixels[:, 1]) * COLOUR_LEVELS + pixels[:, 2]
        counts += np.bincount(codes, minlength=COLOUR_LEVELS ** 3)
    total = counts.sum()
    return counts / total if total >= 8 else None


def colour_distance(a: np.ndarray | None, b: np.ndarray | None) -> float | None:
    """Bhattacharyya distance of two normalised histograms (0 = same colours, 1 = nothing shared), or
    None when either is unknown."""
    if a is None or b is None:
        return None
    return float(np.sqrt(max(0.0, 1.0 - np.sqrt(a * b).sum())))


# --------------------------------------------------------------------------------------------------
# the tracker


@dataclass
class Track:
    """The followed person over ``len(keypoints)`` frames.

    ``keypoints`` float32 ``[T, 18, 3]`` (px, confidence; 0 = missing) with gaps filled (module doc);
    ``found`` bool ``[T]``: the person was detected there; ``filled``: positions not found but
    interpolated from their neighbours; ``held``: positions of long gaps given the nearest sighting;
    ``empty``: positions left without joints; ``chosen_at``: the position where the person was chosen;
    ``refused``: frames where someone stood where the person was predicted but was refused for their
    colours."""

    keypoints: np.ndarray
    found: np.ndarray
    filled: list[int]
    held: list[int]
    empty: list[int]
    chosen_at: int
    refused: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class _Seen:
    """One frame's people as the tracker keeps them: joints [18, 3], clothes histograms (or None), and
    whether each stands clear of everyone else (only then are their colours learnt)."""

    people: list
    colours: list
    clear: list


def _seen(people: list[np.ndarray], rgb: np.ndarray | None) -> _Seen:
    people = [np.asarray(p, dtype=np.float64) for p in people]
    boxes = [pose_box(p) for p in people]
    clear = []
    for i, box in enumerate(boxes):
        margin = 0.1 * (box[3] - box[1]) if box else 0.0
        clear.append(box is not None and not any(
            j != i and other is not None and _boxes_overlap(box, other, margin) for j, other in enumerate(boxes)))
    colours = [clothes_histogram(rgb, p) if rgb is not None else None for p in people]
    return _Seen(people, colours, clear)


class PersonTracker:
    """Follows one person frame by frame (module doc): ``update(people, rgb)`` per frame, then
    ``finish(max_gap)``. ``person``: ``"largest"`` or a 0-based index counted left to right.
    ``frame_rate``: frames per second of the frames given (after any frame step).

    The person is chosen in the first :data:`CHOICE_WINDOW_S` after people first appear, at the first
    frame there that shows the most people (a detector often misses someone in a single frame, and
    "the second from the left" means nothing in a frame where one of two is missed); until then only
    the people of those frames are kept (joints and colour histograms, never the frames). The frames
    before the choice are then followed backwards from it, the later ones forwards."""

    def __init__(self, width: int, height: int, frame_rate: float, person: int | str = "largest"):
        if person != "largest" and (isinstance(person, bool) or not isinstance(person, (int, np.integer)) or person < 0):
            raise ValueError(f"person must be 'largest' or a 0-based index (left to right), got {person!r}")
        if not (isinstance(frame_rate, (int, float, np.integer, np.floating)) or hasattr(frame_rate, "numerator")) or not (
                0 < float(frame_rate) < 1000):
            raise ValueError(f"frame_rate must be a positive number of frames per second, got {frame_rate!r}")
        self.width, self.height, self.person = int(width), int(height), person
        self.frame_rate = float(frame_rate)
        self._rows: list[np.ndarray | None] = []  # the person's joints per frame as the detector labelled them
        self._pending: list[_Seen] = []  # frames since people first appeared, while the person is not chosen
        self._refused: list[int] = []
        self._chosen_at: int | None = None
        self._last = np.zeros((NUM_JOINTS, 3))
        self._seen_at = np.full(NUM_JOINTS, -(10 ** 9))
        self._last_found = -(10 ** 9)
        self._velocity = np.zeros(2)
        self._size = 0.0
        self._colours: np.ndarray | None = None

    # ---- per frame

    @property
    def frames(self) -> int:
        return len(self._rows) + len(self._pending)

    def update(self, people: list[np.ndarray], rgb: np.ndarray | None = None) -> None:
        """Take one frame's people (``[18, 3]`` each) and the frame they were found in (for the colours
        of their clothes; None: position and size only)."""
        seen = _seen(people, rgb)
        if self._chosen_at is not None:
            self._step(len(self._rows), seen)
        elif self._pending or seen.people:
            self._pending.append(seen)
            if len(self._pending) >= max(1, round(CHOICE_WINDOW_S * self.frame_rate)):
                self._decide()
        else:
            self._rows.append(None)

    def _choice(self, seen: _Seen) -> int | None:
        """The requested person among one frame's people, or None when the frame has too few."""
        people = seen.people
        if self.person == "largest":
            areas = [(b[2] - b[0]) * (b[3] - b[1]) if (b := pose_box(p)) else 0.0 for p in people]
            return int(np.argmax(areas)) if people else None
        if len(people) <= self.person:
            return None
        order = sorted(range(len(people)), key=lambda i: (pose_box(people[i])[0] + pose_box(people[i])[2]) / 2)
        return order[self.person]

    def _decide(self, final: bool = False) -> None:
        """Choose the person in the pending frames (module doc), if one of them shows enough people."""
        counts = [len(seen.people) for seen in self._pending]
        at = int(np.argmax(counts))
        chosen = self._choice(self._pending[at])
        if chosen is None:
            if final:
                return
            # an index beyond the people seen so far: wait for a frame with enough of them (joints only)
            if len(self._pending) > 10 * max(1, round(CHOICE_WINDOW_S * self.frame_rate)):
                self._rows.extend([None] * len(self._pending))
                self._pending = []
            return
        pending, first = self._pending, len(self._rows)
        self._pending = []
        self._rows.extend([None] * len(pending))
        backwards = PersonTracker(self.width, self.height, self.frame_rate, self.person)
        backwards._start(0, pending[at], chosen)
        for k, seen in enumerate(reversed(pending[:at])):
            backwards._step(k + 1, seen)
        for k, row in enumerate(backwards._rows[1:]):
            self._rows[first + at - 1 - k] = row
        self._refused.extend(first + at - p for p in backwards._refused)
        self._start(first + at, pending[at], chosen)
        for k, seen in enumerate(pending[at + 1:]):
            self._step(first + at + 1 + k, seen)

    def _start(self, position: int, seen: _Seen, chosen: int) -> None:
        self._chosen_at = position
        self._accept(position, seen.people[chosen], seen.people[chosen], seen.colours[chosen], True)

    def _step(self, position: int, seen: _Seen) -> None:
        while len(self._rows) <= position:
            self._rows.append(None)
        chosen, flips = self._associate(position, seen)
        if chosen is None:
            return
        oriented = seen.people[chosen]
        for group, flipped in flips.items():
            if flipped:
                oriented = flip_group(oriented, group)
        self._accept(position, oriented, seen.people[chosen], seen.colours[chosen], seen.clear[chosen])

    def _prediction(self, position: int) -> tuple[np.ndarray, np.ndarray]:
        """Predicted joints (constant body velocity since each was seen) and which of them are known."""
        age = position - self._seen_at
        known = (self._last[:, 2] > 0) & (age <= max(2, JOINT_MEMORY_S * self.frame_rate))
        predicted = self._last[:, :2] + self._velocity[None, :] * age[:, None]
        return predicted, known

    def _orient(self, candidate: np.ndarray, predicted: np.ndarray, known: np.ndarray) -> dict:
        """For each side group: whether exchanging its sides brings it closer to the prediction."""
        flips = {}
        for group, joints in SIDE_GROUPS.items():
            joints = np.array(joints)
            mirrored = np.array([FLIP_PERMUTATION[j] for j in joints])
            direct = self._group_distance(candidate[joints], predicted[joints], known[joints])
            swapped = self._group_distance(candidate[mirrored], predicted[joints], known[joints])
            flips[group] = bool(direct is not None and swapped is not None and swapped < direct)
        return flips

    @staticmethod
    def _group_distance(points: np.ndarray, predicted: np.ndarray, known: np.ndarray) -> float | None:
        both = (points[:, 2] > 0) & known
        if not both.any():
            return None
        return float(np.linalg.norm(points[both, :2] - predicted[both], axis=1).sum() / both.sum())

    def _associate(self, position: int, seen: _Seen) -> tuple[int | None, dict]:
        """The person among ``seen``'s people (index, side flips), or None: gates and costs of the module doc."""
        missed = position - self._last_found - 1
        searching = missed >= REACQUIRE_AFTER_S * self.frame_rate
        predicted, known = self._prediction(position)
        size = max(self._size, 1.0)
        best, best_cost, best_flips, refused = None, np.inf, {}, False
        for index, candidate in enumerate(seen.people):
            flips = self._orient(candidate, predicted, known)
            oriented = candidate
            for group, flipped in flips.items():
                if flipped:
                    oriented = flip_group(oriented, group)
            both = (oriented[:, 2] > 0) & known
            if both.sum() >= 3:
                distance = float(np.linalg.norm(oriented[both, :2] - predicted[both], axis=1).mean()) / size
            else:
                centre, last_centre = pose_centre(oriented), pose_centre(self._last)
                distance = 1.0 if centre is None or last_centre is None else float(
                    np.linalg.norm(centre - last_centre - self._velocity * (missed + 1))) / size
            candidate_size = pose_size(oriented, self.width, self.height)
            size_change = abs(np.log(max(candidate_size, 1.0) / size)) if candidate_size > 0 else 0.0
            colours = colour_distance(self._colours, seen.colours[index])
            if searching:
                if colours is None or colours > REACQUIRE_GATE or size_change > 2 * SIZE_GATE:
                    continue
                cost = colours
            else:
                if distance > POSITION_GATE + POSITION_GATE_GROWTH * missed or size_change > SIZE_GATE:
                    continue
                if colours is not None and colours > APPEARANCE_GATE:
                    refused = True
                    continue
                cost = distance + SIZE_WEIGHT * size_change + APPEARANCE_WEIGHT * (colours or 0.0)
            if cost < best_cost:
                best, best_cost, best_flips = index, cost, flips
        if best is None and refused:
            self._refused.append(position)
        return best, best_flips

    def _accept(self, position: int, joints: np.ndarray, raw: np.ndarray, colours, learn_colours: bool) -> None:
        """Take ``joints`` (sides matched to the track) as the person's; the detector's own labelling
        ``raw`` is what is kept: sides are decided over the whole video in :meth:`finish`."""
        present = joints[:, 2] > 0
        centre, last_centre = pose_centre(joints), pose_centre(self._last)
        if centre is not None and last_centre is not None and self._last_found >= 0:
            step = (centre - last_centre) / max(1, position - self._last_found)
            self._velocity = (1 - VELOCITY_SMOOTHING) * self._velocity + VELOCITY_SMOOTHING * step
        self._last[present] = joints[present]
        self._seen_at[present] = position
        self._last_found = position
        size = pose_size(joints, self.width, self.height)
        if size > 0:
            self._size = size if self._size == 0 else 0.8 * self._size + 0.2 * size
        if learn_colours and colours is not None:
            if self._colours is None:
                self._colours = colours
            elif colour_distance(self._colours, colours) <= LEARN_GATE:
                # only views that already look like the person teach the model: someone the detector
                # missed standing behind or in front of them would otherwise creep into it
                self._colours = (1 - APPEARANCE_LEARNING) * self._colours + APPEARANCE_LEARNING * colours
        while len(self._rows) <= position:
            self._rows.append(None)
        self._rows[position] = raw.astype(np.float32)

    # ---- the whole video

    def finish(self, max_gap: int, long_gaps: str = "hold") -> Track:
        """The :class:`Track` of every frame given so far; ``max_gap``: longest gap (frames) that is
        interpolated. Raises ValueError when the person was never found (the caller names the video)."""
        if isinstance(max_gap, bool) or not isinstance(max_gap, (int, np.integer)) or max_gap < 0:
            raise ValueError(f"max_gap must be a whole number of frames >= 0, got {max_gap!r}")
        if long_gaps not in LONG_GAPS:
            raise ValueError(f"long_gaps must be one of {LONG_GAPS}, got {long_gaps!r}")
        if self._pending:
            self._decide(final=True)
        if self._chosen_at is None:
            wanted = "nobody" if self.person == "largest" else f"never {self.person + 1} people at once"
            raise ValueError(f"no person to follow: {wanted} found in {self.frames} frame(s)")
        found = np.array([row is not None for row in self._rows])
        keypoints = np.zeros((len(self._rows), NUM_JOINTS, 3), np.float32)
        keypoints[found] = np.stack([row for row in self._rows if row is not None])
        keypoints = consistent_sides(keypoints, found, max(self._size, 1.0))
        keypoints = fill_joint_gaps(keypoints, max_gap)
        has_joints = (keypoints[:, :, 2] > 0).any(axis=1)
        filled = [int(i) for i in np.nonzero(~found & has_joints)[0]]
        keypoints, still_missing = hold_or_empty(keypoints, long_gaps)
        held = still_missing if long_gaps == "hold" else []
        empty = still_missing if long_gaps == "empty" else []
        return Track(keypoints, found, filled, held, empty, self._chosen_at, sorted(self._refused))


def consistent_sides(keypoints: np.ndarray, found: np.ndarray, size: float) -> np.ndarray:
    """Left and right of each side group chosen over the whole video: per found frame, keep the
    detector's labelling or exchange it, whichever sequence costs least, where exchanging costs
    :data:`SIDE_PRIOR` person heights and every frame-to-frame move of the group's joints costs its
    length in person heights (divided by the frames between). A one-frame swap by the detector is
    two long jumps and gets undone; a change of labels while the joints pass each other (a person
    turning round) costs little and follows the detector. Solved exactly (Viterbi, two states)."""
    keypoints = keypoints.copy()
    positions = np.nonzero(found)[0]
    if len(positions) < 2:
        return keypoints
    for group in SIDE_GROUPS:
        joints = np.array(SIDE_GROUPS[group])
        views = [keypoints[positions][:, joints], keypoints[positions][:, [FLIP_PERMUTATION[j] for j in joints]]]
        cost = np.array([0.0, SIDE_PRIOR])
        back = np.zeros((len(positions), 2), int)
        for k in range(1, len(positions)):
            gap = positions[k] - positions[k - 1]
            step = np.zeros((2, 2))  # [previous state, this state]
            for a in range(2):
                for b in range(2):
                    before, now = views[a][k - 1], views[b][k]
                    both = (before[:, 2] > 0) & (now[:, 2] > 0)
                    if both.any():
                        step[a, b] = np.linalg.norm(now[both, :2] - before[both, :2], axis=1).mean() / size / gap
            total = cost[:, None] + step
            back[k] = total.argmin(axis=0)
            cost = total.min(axis=0) + np.array([0.0, SIDE_PRIOR])
        state = int(cost.argmin())
        for k in range(len(positions) - 1, -1, -1):
            if state:
                keypoints[positions[k]] = flip_group(keypoints[positions[k]], group)
            state = back[k, state]
    return keypoints


def fill_joint_gaps(keypoints: np.ndarray, max_gap: int) -> np.ndarray:
    """Each joint missing for at most ``max_gap`` frames between two frames that have it: linearly
    interpolated, with the lower confidence of the two ends."""
    keypoints = keypoints.copy()
    if max_gap <= 0:
        return keypoints
    for joint in range(NUM_JOINTS):
        present = np.nonzero(keypoints[:, joint, 2] > 0)[0]
        for a, b in zip(present[:-1], present[1:]):
            if 1 < b - a <= max_gap + 1:
                t = (np.arange(a + 1, b) - a)[:, None] / (b - a)
                keypoints[a + 1:b, joint, :2] = (1 - t) * keypoints[a, joint, :2] + t * keypoints[b, joint, :2]
                keypoints[a + 1:b, joint, 2] = min(keypoints[a, joint, 2], keypoints[b, joint, 2])
    return keypoints


def hold_or_empty(keypoints: np.ndarray, long_gaps: str) -> tuple[np.ndarray, list[int]]:
    """Frames still without any joint: given the nearest frame that has joints (``"hold"``; the earlier
    one on a tie) or left empty (``"empty"``); returns the keypoints and those frames' positions."""
    has_joints = (keypoints[:, :, 2] > 0).any(axis=1)
    missing = [int(i) for i in np.nonzero(~has_joints)[0]]
    if long_gaps == "empty" or not missing or not has_joints.any():
        return keypoints, missing
    keypoints = keypoints.copy()
    sources = np.nonzero(has_joints)[0]
    for i in missing:
        after = np.searchsorted(sources, i)
        candidates = [s for s in (sources[after - 1] if after > 0 else None,
                                  sources[after] if after < len(sources) else None) if s is not None]
        keypoints[i] = keypoints[min(candidates, key=lambda s: (abs(s - i), s))]
    return keypoints, missing
