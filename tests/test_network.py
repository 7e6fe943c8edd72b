"""Inference shortcuts in the network give the same numbers as the plain computation."""

import pytest
import torch

from pidm_core.network import GroupNorm32, ResBlock


def test_groupnorm_on_half_tensors_matches_the_fp32_round_trip():
    torch.manual_seed(0)
    norm = GroupNorm32(8, 64).to(torch.bfloat16)
    with torch.no_grad():
        norm.weight.normal_(1, 0.2)
        norm.bias.normal_(0, 0.2)
    x = (torch.randn(2, 64, 16, 16) * 3 + 5).to(torch.bfloat16)
    direct = norm(x)
    norm.upcast = True  # the official path: x.float(), normalise, cast back
    official = norm(x)
    assert direct.dtype == official.dtype == torch.bfloat16
    # both normalise with fp32 statistics; they may round the last bit differently
    ulp = official.float().abs().clamp_min(1e-3) * 2 ** -7
    assert ((direct.float() - official.float()).abs() <= ulp).all()


@pytest.mark.parametrize("out_channels", [32, 64])  # identity skip, 1x1 conv skip
def test_resblock_inference_path_equals_the_training_path(out_channels):
    torch.manual_seed(0)
    block = ResBlock(32, out_channels, emb_channels=16, dropout=0.0).eval()
    with torch.no_grad():
        for p in block.parameters():
            p.normal_(0, 0.1)  # the zero-initialised output conv too, so every path counts
    x, emb = torch.randn(2, 32, 8, 8), torch.randn(2, 16)
    with torch.enable_grad():
        reference = block(x, emb)
    x_before = x.clone()
    with torch.no_grad():  # in-place SiLU and residual add
        fast = block(x, emb)
    assert torch.equal(x, x_before)  # the input (the identity skip's source) is untouched
    torch.testing.assert_close(fast, reference.detach(), atol=1e-6, rtol=1e-5)
