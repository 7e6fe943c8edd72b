// ComfyUI-PIDM front-end extension (placeholder: the pose preview/editor widgets replace it).
import { app } from "../../scripts/app.js";

app.registerExtension({
    name: "ComfyUI-PIDM",
});
