// Pose preview on the PIDM pose nodes: after a node runs, its skeleton is drawn over a thumbnail of
// the image it came from (the server sends both in the node's ui output, see nodes/previews.py).
import { app } from "../../scripts/app.js";
import {
    addStyles, drawFrame, frameSlider, prepareCanvas, readFrame, thumbnailImage, thumbnailFor,
} from "./pose_draw.js";

const PREVIEW_NODES = new Set([
    "PIDMPoseFromImage", "PIDMLoadPose", "PIDMRenderPose", "PIDMRetargetPose", "PIDMInterpolatePoses",
    "PIDMSavePose", "PIDMPosesFromVideo",
]);
const WIDGET_NAME = "pidm_pose_preview";

/** Keeps the server's ui output as node.pidmPreview = {frames, thumbnails, frameCount}. */
export function rememberPreview(node, message) {
    if (!message?.pidm_pose) return null;
    node.pidmPreview = {
        frames: message.pidm_pose,
        thumbnails: message.pidm_thumbnails ?? [],
        frameCount: message.pidm_frame_count?.[0] ?? message.pidm_pose.length,
    };
    return node.pidmPreview;
}

class PosePreview {
    constructor(node) {
        this.node = node;
        this.frameIndex = 0;
        this.root = document.createElement("div");
        this.root.className = "pidm-pose pidm-pose-preview";
        this.canvas = document.createElement("canvas");
        this.canvas.className = "pidm-pose-canvas";
        ({ row: this.frameRow, slider: this.slider } = frameSlider((index) => {
            this.frameIndex = index;
            this.draw();
        }));
        this.frameRow.style.display = "none";
        this.status = document.createElement("div");
        this.status.className = "pidm-pose-status";
        this.root.append(this.canvas, this.frameRow, this.status);
        this.resizeObserver = new ResizeObserver(() => this.draw());
        this.resizeObserver.observe(this.canvas);
        this.widget = node.addDOMWidget(WIDGET_NAME, "pidm-pose-preview", this.root, {
            serialize: false,
            hideOnZoom: false,
            getMinHeight: () => 160,
        });
        this.widget.serialize = false;
        const onRemove = this.widget.onRemove;
        this.widget.onRemove = () => {
            this.resizeObserver.disconnect();
            onRemove?.call(this.widget);
        };
    }

    update() {
        const preview = this.node.pidmPreview;
        const count = preview?.frames?.length ?? 0;
        this.frameIndex = Math.min(this.frameIndex, Math.max(0, count - 1));
        this.frameRow.style.display = count > 1 ? "" : "none";
        this.slider.max = String(Math.max(0, count - 1));
        this.slider.value = String(this.frameIndex);
        this.draw();
    }

    draw() {
        const preview = this.node.pidmPreview;
        const frame = preview?.frames?.[this.frameIndex];
        const { ctx, width, height } = prepareCanvas(this.canvas);
        if (!frame) {
            ctx.clearRect(0, 0, width, height);
            this.status.textContent = "";
            return;
        }
        const model = readFrame(frame);
        const thumb = thumbnailFor(this.node, preview, this.frameIndex, model.width, model.height);
        const image = thumbnailImage(thumb, () => this.draw());
        drawFrame(ctx, width, height, model, { image });
        const joints = model.people[0] ? Array.from({ length: 18 }, (_, j) => model.people[0][j * 3 + 2] > 0).filter(Boolean).length : 0;
        const more = preview.frameCount > preview.frames.length ? ` (first ${preview.frames.length} shown)` : "";
        this.status.textContent = `frame ${this.frameIndex + 1}/${preview.frameCount}${more} · ` +
            `${model.width}×${model.height} · ${joints}/18 joints` + (model.people.length > 1 ? ` · ${model.people.length} people` : "");
    }
}

app.registerExtension({
    name: "ComfyUI-PIDM.PosePreview",
    async beforeRegisterNodeDef(nodeType, nodeData) {
        if (!PREVIEW_NODES.has(nodeData.name)) return;
        const onExecuted = nodeType.prototype.onExecuted;
        nodeType.prototype.onExecuted = function (message) {
            const result = onExecuted?.apply(this, arguments);
            if (rememberPreview(this, message)) {
                addStyles();
                if (!this.pidmPosePreview) {
                    this.pidmPosePreview = new PosePreview(this);
                    const [w, h] = this.computeSize();
                    this.setSize([Math.max(this.size[0], 240, w), Math.max(this.size[1], h)]);
                }
                this.pidmPosePreview.update();
                // Nodes downstream (an editor, another preview) may draw over this node's thumbnail.
                for (const other of this.graph?.nodes ?? this.graph?._nodes ?? []) {
                    if (other === this) continue;
                    other.pidmPosePreview?.draw();
                    other.pidmPoseEditor?.refresh();
                }
                this.setDirtyCanvas(true, true);
            }
            return result;
        };
    },
});
