// Pose editor on the Edit Pose node (PIDMPoseEditor): drag joints, hide/restore a joint, mirror
// left/right, undo. The edited POSE_KEYPOINT is written as JSON into the node's hidden
// `edited_pose` widget, so the workflow file carries it and the next run outputs it
// (nodes/pose_editor.py). Mouse, pen and touch all go through Pointer Events.
import { app } from "../../scripts/app.js";
import {
    FLIP_PERMUTATION, JOINT_NAMES, LIMBS, NUM_JOINTS, addStyles, drawFrame, frameSlider, fromBox, prepareCanvas,
    readFrame, standingFigure, thumbnailFor, thumbnailImage, toBox, upstreamPreviews, writeFrame,
} from "./pose_draw.js";
import { rememberPreview } from "./pose_preview.js";

const NODE_TYPE = "PIDMPoseEditor";
const VALUE_WIDGET = "edited_pose"; // the node's STRING input (nodes/pose_editor.py)
const UNDO_LIMIT = 100;
const LONG_PRESS_MS = 550;
const HIT_RADIUS_PX = { mouse: 12, pen: 14, touch: 24 }; // on screen
const DRAG_START_PX = 3;

const copyModel = (m) => ({ ...m, people: m.people.map((joints) => Float64Array.from(joints)) });

/** One node's pose being edited: the frames shown, the undo stack, and the views that show them. */
class EditorState {
    constructor(node, widget) {
        this.node = node;
        this.widget = widget;
        this.inputFrames = null; // the input pose of the last run (ui pidm_input_pose)
        this.models = [];        // readFrame() of every frame shown
        this.frameIndex = 0;
        this.selected = null;    // [person, joint]
        this.undoStack = [];
        this.error = "";
        this.views = new Set();
    }

    get edited() {
        return typeof this.widget.value === "string" && this.widget.value.trim() !== "";
    }

    get model() {
        return this.models[this.frameIndex] ?? null;
    }

    /** Frames to show when nothing is edited: the last run's input, else the nearest upstream preview. */
    inputSource() {
        if (this.inputFrames) return { frames: this.inputFrames, from: "input" };
        for (const preview of upstreamPreviews(this.node)) {
            if (preview.frames?.length) return { frames: preview.frames, from: "upstream preview" };
        }
        return null;
    }

    /** Re-reads the models from the widget (or the input); keeps the frame and selection when they still exist. */
    reload() {
        this.error = "";
        let frames = null;
        if (this.edited) {
            try {
                const data = JSON.parse(this.widget.value);
                frames = Array.isArray(data) ? data : [data];
            } catch (error) {
                this.error = `${VALUE_WIDGET} is not valid JSON (${error.message}): press Reset`;
            }
        } else {
            frames = this.inputSource()?.frames ?? null;
        }
        this.models = (frames ?? []).map(readFrame);
        this.frameIndex = Math.min(this.frameIndex, Math.max(0, this.models.length - 1));
        if (this.selected && !this.model?.people[this.selected[0]]) this.selected = null;
        this.changed();
    }

    changed() {
        for (const view of this.views) view.update();
        this.node.setDirtyCanvas?.(true, true);
    }

    /** Writes the models into the widget (one undo step), so the workflow and the next run get them. */
    commit(previousValue) {
        this.undoStack.push(previousValue);
        if (this.undoStack.length > UNDO_LIMIT) this.undoStack.shift();
        this.setValue(JSON.stringify(this.models.map(writeFrame)));
    }

    setValue(value) {
        this.widget.value = value;
        this.widget.callback?.(value);
        // ComfyUI records workflow changes on mouseup/keyup; a touch drag fires neither.
        app.extensionManager?.workflow?.activeWorkflow?.changeTracker?.checkState?.();
        this.changed();
    }

    /** Starts an edit: the current widget value (for undo), with the shown input copied into the models. */
    begin() {
        const previous = this.widget.value ?? "";
        if (!this.edited) this.models = this.models.map(copyModel);
        return previous;
    }

    select(hit) {
        this.selected = hit;
        this.changed();
    }

    moveJoint([p, j], x, y) {
        const joints = this.model.people[p];
        joints[j * 3] = Math.min(Math.max(x, -0.5), this.model.width - 0.5);
        joints[j * 3 + 1] = Math.min(Math.max(y, -0.5), this.model.height - 0.5);
        if (!(joints[j * 3 + 2] > 0)) joints[j * 3 + 2] = 1; // dragging a hidden joint places it again
        this.changed();
    }

    /** Hide a present joint (confidence 0, position kept) or restore a hidden one. */
    toggleJoint([p, j]) {
        const model = this.model;
        if (!model?.people[p]) return;
        const previous = this.begin();
        const joints = this.model.people[p];
        if (joints[j * 3 + 2] > 0) {
            joints[j * 3 + 2] = 0;
        } else {
            if (joints[j * 3] === 0 && joints[j * 3 + 1] === 0) {
                // Never placed: next to a present neighbour, else in the middle of the canvas.
                const limb = LIMBS.find(([a, b]) => (a === j && joints[b * 3 + 2] > 0) || (b === j && joints[a * 3 + 2] > 0));
                const n = limb ? (limb[0] === j ? limb[1] : limb[0]) : -1;
                joints[j * 3] = n >= 0 ? joints[n * 3] + 0.05 * model.width : model.width / 2;
                joints[j * 3 + 1] = n >= 0 ? joints[n * 3 + 1] + 0.05 * model.height : model.height / 2;
            }
            joints[j * 3 + 2] = 1;
        }
        this.selected = [p, j];
        this.commit(previous);
    }

    /** Left/right mirror of the frame: x -> width - 1 - x and every joint swapped with its twin,
     * as pidm_core.pose.geometry.flip_horizontal does. */
    mirror() {
        if (!this.model) return;
        const previous = this.begin();
        const model = this.model;
        model.people = model.people.map((joints) => {
            const flipped = new Float64Array(NUM_JOINTS * 3);
            for (let j = 0; j < NUM_JOINTS; j++) {
                const k = FLIP_PERMUTATION[j];
                const hiddenUnplaced = !(joints[k * 3 + 2] > 0) && joints[k * 3] === 0 && joints[k * 3 + 1] === 0;
                flipped[j * 3] = hiddenUnplaced ? 0 : model.width - 1 - joints[k * 3];
                flipped[j * 3 + 1] = joints[k * 3 + 1];
                flipped[j * 3 + 2] = joints[k * 3 + 2];
            }
            return flipped;
        });
        if (this.selected) this.selected = [this.selected[0], FLIP_PERMUTATION[this.selected[1]]];
        this.commit(previous);
    }

    /** A standing figure on the current canvas (or 512x768), replacing the frame. */
    newFigure() {
        const previous = this.widget.value ?? "";
        const current = this.model;
        const figure = standingFigure(current?.width ?? 512, current?.height ?? 768);
        if (this.models.length) {
            if (!this.edited) this.models = this.models.map(copyModel);
            this.models[this.frameIndex] = figure;
        } else {
            this.models = [figure];
            this.frameIndex = 0;
        }
        this.selected = null;
        this.commit(previous);
    }

    undo() {
        if (!this.undoStack.length) return;
        this.setValue(this.undoStack.pop());
        this.reload();
    }

    /** Drops the edits: the node passes its input through again. */
    reset() {
        if (!this.edited) return;
        this.undoStack.push(this.widget.value);
        this.setValue("");
        this.selected = null;
        this.reload();
    }
}

/** Toolbar, frame slider, canvas and status line showing one EditorState; in the node or in the dialog. */
class EditorView {
    constructor(state, { onExpand } = {}) {
        this.state = state;
        this.drag = null;
        this.transform = null;
        this.root = document.createElement("div");
        this.root.className = "pidm-pose pidm-pose-editor";
        const toolbar = document.createElement("div");
        toolbar.className = "pidm-pose-toolbar";
        const button = (key, label, title, action) => {
            const element = document.createElement("button");
            element.type = "button";
            element.textContent = label;
            element.title = title;
            element.dataset.action = key;
            element.addEventListener("click", (event) => {
                event.stopPropagation();
                action();
            });
            toolbar.append(element);
            return element;
        };
        this.buttons = {
            new: button("new", "New", "Replace this frame with a standing figure", () => state.newFigure()),
            toggle: button("toggle", "Hide", "Hide the selected joint (it becomes missing), or restore it " +
                "(also: right-click or long-press a joint)", () => state.selected && state.toggleJoint(state.selected)),
            mirror: button("mirror", "Mirror", "Swap left and right (mirror the frame horizontally)", () => state.mirror()),
            undo: button("undo", "Undo", "Undo the last edit", () => state.undo()),
            reset: button("reset", "Reset", "Drop all edits: the input pose passes through again", () => state.reset()),
        };
        if (onExpand) this.buttons.expand = button("expand", "⤢", "Open the editor in a larger window", onExpand);
        ({ row: this.frameRow, slider: this.slider } = frameSlider((index) => {
            state.frameIndex = index;
            state.selected = null;
            state.changed();
        }));
        this.canvas = document.createElement("canvas");
        this.canvas.className = "pidm-pose-canvas pidm-editable";
        this.status = document.createElement("div");
        this.status.className = "pidm-pose-status";
        this.root.append(toolbar, this.frameRow, this.canvas, this.status);

        const canvas = this.canvas;
        canvas.addEventListener("pointerdown", (e) => this.onPointerDown(e));
        canvas.addEventListener("pointermove", (e) => this.onPointerMove(e));
        canvas.addEventListener("pointerup", (e) => this.onPointerUp(e));
        canvas.addEventListener("pointercancel", (e) => this.onPointerCancel(e));
        canvas.addEventListener("contextmenu", (e) => this.onContextMenu(e));
        // Keep wheel and touch gestures on the editor from panning or zooming the graph behind it.
        canvas.addEventListener("wheel", (e) => e.stopPropagation(), { passive: true });
        this.resizeObserver = new ResizeObserver(() => this.draw());
        this.resizeObserver.observe(canvas);
        state.views.add(this);
        this.update();
    }

    dispose() {
        this.resizeObserver.disconnect();
        this.state.views.delete(this);
    }

    update() {
        const s = this.state;
        const count = s.models.length;
        this.frameRow.style.display = count > 1 ? "" : "none";
        this.slider.max = String(Math.max(0, count - 1));
        this.slider.value = String(s.frameIndex);
        const joint = s.selected && s.model?.people[s.selected[0]];
        const hidden = joint && !(joint[s.selected[1] * 3 + 2] > 0);
        this.buttons.toggle.textContent = hidden ? "Restore" : "Hide";
        this.buttons.toggle.disabled = !joint;
        this.buttons.mirror.disabled = !s.model;
        this.buttons.undo.disabled = s.undoStack.length === 0;
        this.buttons.reset.disabled = !s.edited;
        this.draw();
    }

    draw() {
        const s = this.state;
        const { ctx, width, height } = prepareCanvas(this.canvas);
        const model = s.model;
        if (!model) {
            ctx.clearRect(0, 0, width, height);
            this.transform = null;
            this.status.textContent = s.error || "No pose yet: run the workflow to bring in the input pose, or press New.";
            return;
        }
        const thumb = thumbnailFor(s.node, null, s.frameIndex, model.width, model.height);
        const image = thumbnailImage(thumb, () => this.draw());
        this.transform = drawFrame(ctx, width, height, model, { image, selected: s.selected, showHidden: true });
        let text;
        if (s.selected && model.people[s.selected[0]]) {
            const [p, j] = s.selected;
            const joints = model.people[p];
            const where = `${Math.round(joints[j * 3])}, ${Math.round(joints[j * 3 + 1])}`;
            text = `${JOINT_NAMES[j]}${model.people.length > 1 ? ` (person ${p + 1})` : ""} at ${where}` +
                (joints[j * 3 + 2] > 0 ? "" : " · hidden");
        } else {
            text = "drag a joint · right-click or long-press: hide/restore";
        }
        const source = s.edited ? "edited" : `showing ${s.inputSource()?.from ?? "input"}`;
        this.status.textContent = `${text} · ${model.width}×${model.height} · ${source}`;
    }

    /** Client coordinates -> canvas box coordinates (the node may be zoomed by a CSS transform). */
    boxPoint(e) {
        const rect = this.canvas.getBoundingClientRect();
        const zoom = rect.width > 0 ? this.canvas.clientWidth / rect.width : 1;
        return { x: (e.clientX - rect.left) * zoom, y: (e.clientY - rect.top) * zoom, zoom };
    }

    /** The nearest joint under the pointer: [person, joint], present joints before hidden ones. */
    hitTest(e) {
        const model = this.state.model;
        const t = this.transform;
        if (!model || !t) return null;
        const { x, y, zoom } = this.boxPoint(e);
        const radius = (HIT_RADIUS_PX[e.pointerType] ?? HIT_RADIUS_PX.mouse) * zoom;
        let best = null;
        model.people.forEach((joints, p) => {
            for (let j = 0; j < NUM_JOINTS; j++) {
                const present = joints[j * 3 + 2] > 0;
                if (!present && joints[j * 3] === 0 && joints[j * 3 + 1] === 0) continue;
                const [jx, jy] = toBox(t, joints[j * 3], joints[j * 3 + 1]);
                const distance = Math.hypot(jx - x, jy - y) + (present ? 0 : 0.5);
                if (distance <= radius && (!best || distance < best.distance)) best = { hit: [p, j], distance, jx, jy };
            }
        });
        return best;
    }

    onPointerDown(e) {
        if (e.pointerType === "mouse" && e.button !== 0) return; // right button: contextmenu
        e.preventDefault();
        e.stopPropagation();
        const found = this.hitTest(e);
        if (!found) {
            this.state.select(null);
            return;
        }
        this.state.select(found.hit);
        this.canvas.setPointerCapture?.(e.pointerId);
        const { x, y } = this.boxPoint(e);
        this.drag = {
            pointerId: e.pointerId, hit: found.hit, startX: e.clientX, startY: e.clientY,
            grabX: found.jx - x, grabY: found.jy - y, moved: false, previous: null, before: null,
        };
        if (e.pointerType !== "mouse") {
            this.drag.longPress = setTimeout(() => {
                const hit = this.drag?.hit;
                this.drag = null;
                this.lastLongPress = performance.now();
                if (hit) this.state.toggleJoint(hit);
            }, LONG_PRESS_MS);
        }
    }

    onPointerMove(e) {
        const drag = this.drag;
        if (!drag || e.pointerId !== drag.pointerId) return;
        e.preventDefault();
        e.stopPropagation();
        if (!drag.moved) {
            if (Math.hypot(e.clientX - drag.startX, e.clientY - drag.startY) < DRAG_START_PX) return;
            clearTimeout(drag.longPress);
            drag.moved = true;
            drag.previous = this.state.begin();
            drag.before = copyModel(this.state.model);
        }
        const { x, y } = this.boxPoint(e);
        const [px, py] = fromBox(this.transform, x + drag.grabX, y + drag.grabY);
        this.state.moveJoint(drag.hit, px, py);
    }

    onPointerUp(e) {
        const drag = this.drag;
        if (!drag || e.pointerId !== drag.pointerId) return;
        e.stopPropagation();
        clearTimeout(drag.longPress);
        this.drag = null;
        this.canvas.releasePointerCapture?.(e.pointerId);
        if (drag.moved) this.state.commit(drag.previous);
    }

    onPointerCancel(e) {
        const drag = this.drag;
        if (!drag || e.pointerId !== drag.pointerId) return;
        clearTimeout(drag.longPress);
        this.drag = null;
        if (drag.moved) {
            this.state.models[this.state.frameIndex] = drag.before; // the gesture was taken over: undo it
            this.state.changed();
        }
    }

    onContextMenu(e) {
        e.preventDefault();
        e.stopPropagation();
        // A long-press on touch also fires contextmenu: the long-press timer handles that one.
        if (this.drag || (e.pointerType && e.pointerType !== "mouse")) return;
        if (performance.now() - (this.lastLongPress ?? -Infinity) < 1000) return;
        const found = this.hitTest({ clientX: e.clientX, clientY: e.clientY, pointerType: "mouse" });
        if (found) this.state.toggleJoint(found.hit);
    }
}

/** The same editor in a large modal window over the graph (Escape or the backdrop closes it). */
function openDialog(node, state) {
    addStyles();
    const overlay = document.createElement("div");
    overlay.className = "pidm-pose-dialog";
    const panel = document.createElement("div");
    panel.className = "pidm-pose-dialog-panel";
    panel.setAttribute("role", "dialog");
    panel.setAttribute("aria-label", `Edit Pose: ${node.title}`);
    const title = document.createElement("div");
    title.className = "pidm-pose-dialog-title pidm-pose-toolbar";
    const label = document.createElement("span");
    label.textContent = `${node.title} (#${node.id})`;
    const close = document.createElement("button");
    close.type = "button";
    close.textContent = "Close";
    title.append(label, close);
    const view = new EditorView(state);
    panel.append(title, view.root);
    overlay.append(panel);
    const onKey = (e) => {
        if (e.key === "Escape") {
            e.stopPropagation();
            dismiss();
        }
    };
    const dismiss = () => {
        view.dispose();
        overlay.remove();
        window.removeEventListener("keydown", onKey, true);
    };
    close.addEventListener("click", dismiss);
    overlay.addEventListener("pointerdown", (e) => {
        if (e.target === overlay) dismiss();
    });
    window.addEventListener("keydown", onKey, true);
    document.body.append(overlay);
    view.update();
    return dismiss;
}

app.registerExtension({
    name: "ComfyUI-PIDM.PoseEditor",
    async beforeRegisterNodeDef(nodeType, nodeData) {
        if (nodeData.name !== NODE_TYPE) return;

        const onNodeCreated = nodeType.prototype.onNodeCreated;
        nodeType.prototype.onNodeCreated = function () {
            const result = onNodeCreated?.apply(this, arguments);
            addStyles();
            const valueWidget = this.widgets?.find((w) => w.name === VALUE_WIDGET);
            if (!valueWidget) return result;
            // The JSON stays a (serialised) widget, hidden: the canvas below is its editor.
            valueWidget.hidden = true;
            if (valueWidget.options) valueWidget.options.hidden = true; // Vue node mode reads this
            valueWidget.computeSize = () => [0, -4]; // older frontends, which ignore `hidden`
            const state = new EditorState(this, valueWidget);
            const view = new EditorView(state, { onExpand: () => openDialog(this, state) });
            const widget = this.addDOMWidget("pidm_pose_editor", "pidm-pose-editor", view.root, {
                serialize: false,
                getMinHeight: () => 280,
            });
            widget.serialize = false; // after the value widget, so widgets_values keeps its order
            const onRemove = widget.onRemove;
            widget.onRemove = () => {
                view.dispose();
                onRemove?.call(widget);
            };
            this.pidmPoseEditor = {
                state,
                view,
                refresh: () => !view.drag && state.reload(),
                open: () => openDialog(this, state),
            };
            const [w, h] = this.computeSize();
            this.setSize([Math.max(w, 320), Math.max(h, 400)]);
            state.reload();
            return result;
        };

        const onConfigure = nodeType.prototype.onConfigure;
        nodeType.prototype.onConfigure = function () {
            const result = onConfigure?.apply(this, arguments);
            this.pidmPoseEditor?.state.reload(); // widget values are in place now
            return result;
        };

        const onConnectionsChange = nodeType.prototype.onConnectionsChange;
        nodeType.prototype.onConnectionsChange = function () {
            const result = onConnectionsChange?.apply(this, arguments);
            this.pidmPoseEditor?.refresh();
            return result;
        };

        const onExecuted = nodeType.prototype.onExecuted;
        nodeType.prototype.onExecuted = function (message) {
            const result = onExecuted?.apply(this, arguments);
            rememberPreview(this, message); // its output, for nodes downstream
            const editor = this.pidmPoseEditor;
            if (editor) {
                editor.state.inputFrames = message?.pidm_input_pose ?? null;
                editor.refresh();
            }
            return result;
        };
    },
});
