// Shared pose drawing for the PIDM preview and editor widgets: COCO-18 constants (mirroring
// pidm_core/pose/keypoints.py), POSE_KEYPOINT reading/writing, skeleton drawing, thumbnails.
import { api } from "../../scripts/api.js";

export const JOINT_NAMES = [
    "nose", "neck",
    "right shoulder", "right elbow", "right wrist",
    "left shoulder", "left elbow", "left wrist",
    "right hip", "right knee", "right ankle",
    "left hip", "left knee", "left ankle",
    "right eye", "left eye", "right ear", "left ear",
];
export const NUM_JOINTS = JOINT_NAMES.length;
export const LIMBS = [
    [1, 2], [1, 5], [2, 3], [3, 4], [5, 6], [6, 7], [1, 8], [8, 9], [9, 10],
    [1, 11], [11, 12], [12, 13], [1, 0], [0, 14], [14, 16], [0, 15], [15, 17],
];
export const COLORS = [
    [255, 0, 0], [255, 85, 0], [255, 170, 0], [255, 255, 0], [170, 255, 0], [85, 255, 0],
    [0, 255, 0], [0, 255, 85], [0, 255, 170], [0, 255, 255], [0, 170, 255], [0, 85, 255],
    [0, 0, 255], [85, 0, 255], [170, 0, 255], [255, 0, 255], [255, 0, 170], [255, 0, 85],
];
// Left/right twins, as pidm_core's FLIP_PERMUTATION.
export const FLIP_PERMUTATION = [0, 1, 5, 6, 7, 2, 3, 4, 11, 12, 13, 8, 9, 10, 15, 14, 17, 16];
// BODY_25 -> COCO-18 (BODY_25's mid-hip, 8, has no COCO twin).
const BODY25_TO_COCO18 = [0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18];

/** /view URL of a {filename, subfolder, type} image reference (as PreviewImage sends them). */
export function viewUrl(ref) {
    const params = new URLSearchParams({ filename: ref.filename, subfolder: ref.subfolder ?? "", type: ref.type ?? "temp" });
    return api.apiURL(`/view?${params}`);
}

const imageCache = new Map();
/** A loaded HTMLImageElement for a reference; `onload` is called once it can be drawn. */
export function thumbnailImage(ref, onload) {
    if (!ref) return null;
    const url = viewUrl(ref);
    let image = imageCache.get(url);
    if (!image) {
        image = new Image();
        image.src = url;
        imageCache.set(url, image);
        if (imageCache.size > 64) imageCache.delete(imageCache.keys().next().value);
    }
    if (!image.complete) image.addEventListener("load", onload, { once: true });
    return image;
}

/**
 * One POSE_KEYPOINT frame -> {width, height, normalized, people: [Float64Array(54) of x_px, y_px, c]}.
 * Coordinates become pixels; `normalized` remembers the frame's own convention (the rule of
 * pidm_core.pose.formats.is_normalized: every present coordinate in [0, 1] on a canvas > 4x4).
 */
export function readFrame(frame) {
    const width = Number(frame?.canvas_width) || 512;
    const height = Number(frame?.canvas_height) || 512;
    const people = [];
    for (const person of frame?.people ?? []) {
        const flat = person?.pose_keypoints_2d;
        if (!Array.isArray(flat)) continue;
        const joints = new Float64Array(NUM_JOINTS * 3);
        const table = flat.length === 75 ? BODY25_TO_COCO18 : flat.length === 54 ? null : undefined;
        if (table === undefined) continue;
        for (let j = 0; j < NUM_JOINTS; j++) {
            const k = table ? table[j] : j;
            for (let a = 0; a < 3; a++) joints[j * 3 + a] = Number(flat[k * 3 + a]) || 0;
        }
        people.push(joints);
    }
    let anyPresent = false;
    let withinUnit = true;
    for (const joints of people) {
        for (let j = 0; j < NUM_JOINTS; j++) {
            if (!(joints[j * 3 + 2] > 0)) continue;
            anyPresent = true;
            const x = joints[j * 3], y = joints[j * 3 + 1];
            if (x < 0 || x > 1 || y < 0 || y > 1) withinUnit = false;
        }
    }
    const normalized = anyPresent && withinUnit && width > 4 && height > 4;
    if (normalized) {
        for (const joints of people) {
            for (let j = 0; j < NUM_JOINTS; j++) {
                joints[j * 3] *= width;
                joints[j * 3 + 1] *= height;
            }
        }
    }
    return { width, height, normalized, people };
}

/** The inverse of readFrame: a POSE_KEYPOINT frame in the frame's own convention. Hidden joints
 * keep their x, y with confidence 0, so the editor can restore them after a reload. */
export function writeFrame(model) {
    const sx = model.normalized ? 1 / model.width : 1;
    const sy = model.normalized ? 1 / model.height : 1;
    const round = (v) => Math.round(v * 1e4) / 1e4;
    return {
        people: model.people.map((joints) => {
            const flat = [];
            for (let j = 0; j < NUM_JOINTS; j++) {
                flat.push(round(joints[j * 3] * sx), round(joints[j * 3 + 1] * sy), joints[j * 3 + 2] > 0 ? round(joints[j * 3 + 2]) : 0);
            }
            return { pose_keypoints_2d: flat, face_keypoints_2d: null, hand_left_keypoints_2d: null, hand_right_keypoints_2d: null };
        }),
        canvas_width: model.width,
        canvas_height: model.height,
    };
}

/** A front-facing standing figure on a width x height canvas (the editor's "New"). */
export function standingFigure(width = 512, height = 768) {
    // (x, y) as fractions of the canvas, COCO-18 order
    const layout = [
        [0.5, 0.12], [0.5, 0.22], [0.38, 0.22], [0.34, 0.36], [0.32, 0.5], [0.62, 0.22], [0.66, 0.36],
        [0.68, 0.5], [0.43, 0.5], [0.43, 0.68], [0.43, 0.86], [0.57, 0.5], [0.57, 0.68], [0.57, 0.86],
        [0.47, 0.1], [0.53, 0.1], [0.44, 0.11], [0.56, 0.11],
    ];
    const joints = new Float64Array(NUM_JOINTS * 3);
    layout.forEach(([x, y], j) => {
        joints[j * 3] = x * width;
        joints[j * 3 + 1] = y * height;
        joints[j * 3 + 2] = 1;
    });
    return { width, height, normalized: false, people: [joints] };
}

/** Scale and offset that fit a w x h canvas inside a box (aspect kept, centred). */
export function fitTransform(boxWidth, boxHeight, width, height) {
    const scale = Math.max(1e-6, Math.min(boxWidth / width, boxHeight / height));
    return { scale, ox: (boxWidth - width * scale) / 2, oy: (boxHeight - height * scale) / 2 };
}

/** Pose pixel (x, y) -> box coordinates; (0, 0) is the centre of the top-left pixel. */
export function toBox(t, x, y) {
    return [t.ox + (x + 0.5) * t.scale, t.oy + (y + 0.5) * t.scale];
}

/** Box coordinates -> pose pixels. */
export function fromBox(t, bx, by) {
    return [(bx - t.ox) / t.scale - 0.5, (by - t.oy) / t.scale - 0.5];
}

const rgb = (c, alpha = 1) => `rgba(${c[0]}, ${c[1]}, ${c[2]}, ${alpha})`;

/**
 * Draws one frame into a 2D context of size boxWidth x boxHeight (CSS pixels): the thumbnail (or a
 * dark canvas), then limbs and joints in the OpenPose colours. Returns the transform used.
 * options: {image, selected: [person, joint], showHidden: bool, radius}
 */
export function drawFrame(ctx, boxWidth, boxHeight, model, options = {}) {
    const t = fitTransform(boxWidth, boxHeight, model.width, model.height);
    const w = model.width * t.scale, h = model.height * t.scale;
    ctx.clearRect(0, 0, boxWidth, boxHeight);
    ctx.fillStyle = "#000";
    ctx.fillRect(t.ox, t.oy, w, h);
    const image = options.image;
    if (image && image.complete && image.naturalWidth > 0) {
        ctx.drawImage(image, t.ox, t.oy, w, h);
        ctx.fillStyle = "rgba(0, 0, 0, 0.35)"; // dim the photo so the skeleton reads
        ctx.fillRect(t.ox, t.oy, w, h);
    }
    const radius = options.radius ?? Math.max(2.5, Math.min(6, 4 * t.scale));
    ctx.lineCap = "round";
    ctx.lineWidth = Math.max(2, radius * 0.9);
    model.people.forEach((joints, p) => {
        const present = (j) => joints[j * 3 + 2] > 0;
        LIMBS.forEach(([a, b], i) => {
            if (!present(a) || !present(b)) return;
            const [x0, y0] = toBox(t, joints[a * 3], joints[a * 3 + 1]);
            const [x1, y1] = toBox(t, joints[b * 3], joints[b * 3 + 1]);
            ctx.strokeStyle = rgb(COLORS[i], 0.75);
            ctx.beginPath();
            ctx.moveTo(x0, y0);
            ctx.lineTo(x1, y1);
            ctx.stroke();
        });
        for (let j = 0; j < NUM_JOINTS; j++) {
            const [x, y] = toBox(t, joints[j * 3], joints[j * 3 + 1]);
            const selected = options.selected && options.selected[0] === p && options.selected[1] === j;
            if (present(j)) {
                ctx.fillStyle = rgb(COLORS[j]);
                ctx.beginPath();
                ctx.arc(x, y, radius, 0, Math.PI * 2);
                ctx.fill();
            } else if (options.showHidden && (joints[j * 3] !== 0 || joints[j * 3 + 1] !== 0)) {
                ctx.save();
                ctx.setLineDash([3, 3]);
                ctx.lineWidth = 1.5;
                ctx.strokeStyle = rgb(COLORS[j], 0.8);
                ctx.beginPath();
                ctx.arc(x, y, radius, 0, Math.PI * 2);
                ctx.stroke();
                ctx.restore();
            } else {
                continue;
            }
            if (selected) {
                ctx.save();
                ctx.lineWidth = 2;
                ctx.strokeStyle = "#fff";
                ctx.beginPath();
                ctx.arc(x, y, radius + 3, 0, Math.PI * 2);
                ctx.stroke();
                ctx.restore();
            }
        }
    });
    return t;
}

/** Sizes a canvas's backing store to its CSS size times the device pixel ratio; returns a context
 * drawing in CSS pixels, and the CSS size. */
export function prepareCanvas(canvas) {
    const ratio = window.devicePixelRatio || 1;
    const width = Math.max(1, canvas.clientWidth);
    const height = Math.max(1, canvas.clientHeight);
    if (canvas.width !== Math.round(width * ratio) || canvas.height !== Math.round(height * ratio)) {
        canvas.width = Math.round(width * ratio);
        canvas.height = Math.round(height * ratio);
    }
    const ctx = canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    return { ctx, width, height };
}

/** The "frame" row of a preview or editor: a label holding a range slider that calls onInput(index). */
export function frameSlider(onInput) {
    const row = document.createElement("label");
    row.className = "pidm-pose-frame";
    const slider = document.createElement("input");
    slider.type = "range";
    slider.min = "0";
    slider.step = "1";
    slider.addEventListener("input", () => onInput(Number(slider.value)));
    row.append("frame", slider);
    return { row, slider };
}

/**
 * Pose previews (set by pose_preview.js / pose_editor.js from the server's ui output) of the nodes
 * upstream of `node` along POSE_KEYPOINT links, nearest first.
 */
export function* upstreamPreviews(node) {
    const seen = new Set();
    const queue = [node];
    while (queue.length && seen.size < 64) {
        const current = queue.shift();
        if (!current || seen.has(current)) continue;
        seen.add(current);
        if (current !== node && current.pidmPreview) yield current.pidmPreview;
        (current.inputs ?? []).forEach((input, i) => {
            if (input.type === "POSE_KEYPOINT" && input.link != null) queue.push(current.getInputNode?.(i));
        });
    }
}

/**
 * A thumbnail for frame `frameIndex` of a node's pose: its own, else the nearest upstream one on a
 * canvas of the same size (a retargeted pose lives on its source's canvas, so the source photo fits).
 */
export function thumbnailFor(node, preview, frameIndex, width, height) {
    const own = preview?.thumbnails?.[frameIndex];
    if (own) return own;
    for (const up of upstreamPreviews(node)) {
        const frames = up.frames ?? [];
        const thumbs = up.thumbnails ?? [];
        if (!frames.length || !thumbs.length) continue;
        const frame = frames[Math.min(frameIndex, frames.length - 1)];
        const thumb = thumbs[Math.min(frameIndex, thumbs.length - 1)];
        if (Number(frame.canvas_width) === width && Number(frame.canvas_height) === height) return thumb;
    }
    return null;
}

let stylesAdded = false;
/** The pack's CSS, built on ComfyUI's own theme variables so it follows light and dark palettes. */
export function addStyles() {
    if (stylesAdded) return;
    stylesAdded = true;
    const style = document.createElement("style");
    style.id = "pidm-pose-styles";
    style.textContent = `
.pidm-pose { display: flex; flex-direction: column; gap: 4px; box-sizing: border-box; min-height: 0;
  color: var(--fg-color); font: 12px sans-serif; }
.pidm-pose-canvas { flex: 1 1 auto; min-height: 0; width: 100%; display: block; border-radius: 6px;
  background: var(--comfy-input-bg); border: 1px solid var(--border-color); touch-action: none;
  box-sizing: border-box; }
.pidm-pose-canvas.pidm-editable { cursor: crosshair; }
.pidm-pose-toolbar { display: flex; flex-wrap: wrap; gap: 4px; align-items: center; }
.pidm-pose-toolbar button { background: var(--comfy-input-bg); color: var(--input-text);
  border: 1px solid var(--border-color); border-radius: 4px; padding: 2px 8px; font: inherit; cursor: pointer;
  touch-action: manipulation; }
.pidm-pose-toolbar button:hover:not(:disabled) { border-color: var(--fg-color); }
.pidm-pose-toolbar button:disabled { opacity: 0.45; cursor: default; }
.pidm-pose-status { color: var(--descrip-text); white-space: nowrap; overflow: hidden; text-overflow: ellipsis;
  min-height: 1.3em; }
.pidm-pose-frame { display: flex; gap: 6px; align-items: center; color: var(--descrip-text); }
.pidm-pose-frame input { flex: 1; min-width: 40px; accent-color: var(--p-primary-color, var(--fg-color)); }
.pidm-pose-dialog { position: fixed; inset: 0; z-index: 3000; background: rgba(0, 0, 0, 0.6); display: flex;
  align-items: center; justify-content: center; }
.pidm-pose-dialog-panel { width: min(92vw, 900px); height: min(92vh, 960px); display: flex; flex-direction: column;
  gap: 8px; padding: 12px; box-sizing: border-box; background: var(--comfy-menu-bg); color: var(--fg-color);
  border: 1px solid var(--border-color); border-radius: 8px; box-shadow: 0 8px 32px rgba(0, 0, 0, 0.5); }
.pidm-pose-dialog-title { display: flex; justify-content: space-between; align-items: center; font-size: 14px; }
.pidm-pose-dialog-panel .pidm-pose { flex: 1; min-height: 0; }
`;
    document.head.appendChild(style);
}
