"""Video files in and out, as streams: frames are decoded and encoded a few at a time, so a video of any
length fits in bounded memory (:mod:`.read` decodes, :mod:`.write` encodes). Uses PyAV, which ComfyUI itself
requires."""
