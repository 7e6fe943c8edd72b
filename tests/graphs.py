"""ComfyUI API graphs that several host test files post."""


def one_step_sampler_graph(model_name: str, photo: str, pose_file: str, sources: int = 1, **sampler) -> dict:
    """Load PIDM Model -> Encode Source Texture (photo, repeated ``sources`` times) -> PIDM Sampler
    (1 ddim step, pose file; ``sampler`` overrides its inputs) -> preview."""
    graph = {
        "model": {"class_type": "PIDMLoadModel", "inputs": {"model_name": model_name, "dtype": "fp32"}},
        "photo": {"class_type": "LoadImage", "inputs": {"image": photo}},
        "texture": {"class_type": "PIDMEncodeTexture",
                    "inputs": {"model": ["model", 0], "image": ["photo", 0], "fit": "auto"}},
        "pose": {"class_type": "PIDMLoadPose",
                 "inputs": {"file": pose_file, "person_index": -1, "canvas_width": 0, "canvas_height": 0}},
        "sample": {"class_type": "PIDMSampler", "inputs": {
            "model": ["model", 0], "texture": ["texture", 0], "pose": ["pose", 0], "seed": 0, "steps": 1,
            "sampler": "ddim", "guidance": "official", "appearance_scale": 2.0, "pose_scale": 2.0,
            "person_index": -1, "denoise": 1.0, **sampler}},
        "preview": {"class_type": "PreviewImage", "inputs": {"images": ["sample", 0]}},
    }
    if sources > 1:
        graph["batch"] = {"class_type": "RepeatImageBatch", "inputs": {"image": ["photo", 0], "amount": sources}}
        graph["texture"]["inputs"]["image"] = ["batch", 0]
    return graph
