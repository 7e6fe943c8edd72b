"""How a photo is fitted to the model's square canvas: the names only.

Kept apart from :mod:`.canvas` (which does the fitting) so that low-level modules can check a fit
name, e.g. a weights file's ``fit`` metadata at load, without importing images and poses.
"""

FIT_MODES = ("pad", "stretch")
