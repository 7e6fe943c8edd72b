"""The pack's files in ComfyUI's folders, put in place when the pack loads.

The example workflows (example_workflows/, opened from the template browser) read their images and
poses from ComfyUI's input folder, as LoadImage does, and ComfyUI-Manager only clones the pack and
installs its requirements. So at every load the pack copies each bundled example input (assets/pidm_*)
that the input folder lacks; a file of that name already there is never replaced, whatever it holds
(it may be the user's). The ``pidm_`` prefix keeps the examples' names apart from a user's own files.

Only the standard library is used, so the tests can load this file without ComfyUI.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

ASSETS_DIR = Path(__file__).resolve().parents[1] / "assets"
EXAMPLE_PREFIX = "pidm_"
EXAMPLE_SUFFIXES = (".png", ".json", ".mp4")
LOG_PREFIX = "ComfyUI-PIDM:"


def example_inputs(assets_dir: Path = ASSETS_DIR) -> list[Path]:
    """The bundled files the example workflows read from the input folder, by name."""
    return sorted(p for p in assets_dir.iterdir()
                  if p.is_file() and p.name.startswith(EXAMPLE_PREFIX) and p.suffix.lower() in EXAMPLE_SUFFIXES)


def _copy_if_absent(source: Path, target: Path) -> bool:
    """Copy source to target unless target exists (a file, a folder or a link, even a broken one).
    O_EXCL makes the check and the creation one step: a file that appears meanwhile is never replaced,
    and a link at target is never written through."""
    try:
        handle = open(target, "xb")
    except FileExistsError:
        return False
    try:
        with handle:
            handle.write(source.read_bytes())
    except BaseException:
        target.unlink(missing_ok=True)  # no half-written example input left behind
        raise
    return True


def provide_example_inputs(input_dir: str | os.PathLike, assets_dir: Path = ASSETS_DIR) -> list[str]:
    """Copy the example inputs that ``input_dir`` lacks into it (created if missing); returns the names
    copied. Raises OSError when the folder cannot be written."""
    folder = Path(input_dir)
    wanted = [p for p in example_inputs(assets_dir) if not os.path.lexists(folder / p.name)]
    if not wanted:
        return []
    folder.mkdir(parents=True, exist_ok=True)
    return [p.name for p in wanted if _copy_if_absent(p, folder / p.name)]


def provide_at_load() -> None:
    """Called when ComfyUI imports the pack: example inputs into the input folder, and an empty
    ``models/pidm`` so that the folder where Load PIDM Model looks exists. A folder that cannot be
    written is logged, never raised: the pack must load anyway."""
    try:
        import folder_paths

        input_dir = folder_paths.get_input_directory()
        models_dir = folder_paths.models_dir
    except Exception as error:  # not inside a ComfyUI that has these (a tool importing the pack)
        logging.debug("%s no ComfyUI folders to set up (%s)", LOG_PREFIX, error)
        return
    try:
        copied = provide_example_inputs(input_dir)
        if copied:
            logging.info("%s copied the example workflows' inputs into %s: %s", LOG_PREFIX, input_dir, ", ".join(copied))
    except OSError as error:
        logging.warning("%s could not copy the example workflows' inputs into ComfyUI's input folder %s (%s); "
                        "the example workflows need them: copy assets/pidm_* there by hand", LOG_PREFIX, input_dir, error)
    model_dir = os.path.join(models_dir, "pidm")
    try:
        os.makedirs(model_dir, exist_ok=True)
    except OSError as error:
        logging.warning("%s could not create %s (%s); create it to load weights files from it (the embedded "
                        "model needs no folder)", LOG_PREFIX, model_dir, error)
