"""The library's outputs held still through redesigns: every sampler × guidance mode, img2img, an
appearance mask, η, the pad / stretch / person fits, sequences (shared and independent noise, chunked)
and putting the person back into the photo, against tests/fixtures/redesign_reference.safetensors.

The fixture was made by scripts/make_reference_outputs.py at commit 13cbcb8 (before issue 24's redesign)
on the project's CPU. Allowed: 1e-5 of each output's largest value (another CPU sums in another order;
issue 23's row-block pasting changed put-back images by at most 1.2e-7 inside the pasted person).
"""

from safetensors.torch import load_file

from tests.scripts import make_reference_outputs


def test_outputs_match_the_reference_from_before_the_redesign():
    reference = load_file(make_reference_outputs.OUT)
    outputs = make_reference_outputs.reference_outputs()
    assert set(reference) <= set(outputs)  # a new sampler or case adds outputs; none that were there may go
    for name, expected in reference.items():
        assert outputs[name].shape == expected.shape, name
        assert (outputs[name] - expected).abs().max() <= 1e-5 * expected.abs().max(), name
