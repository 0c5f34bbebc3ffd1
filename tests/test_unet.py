import pytest
import torch

from ws_fm.nets import UNet


@pytest.mark.parametrize(
    "shape,mults", [((4, 1, 8, 8), (1, 2)), ((2, 1, 28, 28), (1, 2, 2)), ((2, 3, 7, 9), (1, 2))]
)
def test_unet_keeps_the_image_shape_and_uses_time(shape, mults):
    torch.manual_seed(0)
    net = UNet(in_channels=shape[1], channels=16, channel_mults=mults)
    for p in net.out.parameters():  # the output layer starts at zero; perturb it to see signal
        torch.nn.init.normal_(p, std=0.1)
    x = torch.randn(shape)
    a, b = net(x, torch.zeros(shape[0])), net(x, torch.full((shape[0],), 0.7))
    assert a.shape == x.shape
    assert (a - b).abs().mean() > 1e-4
    net(x, torch.rand(shape[0])).square().mean().backward()
    assert all(p.grad is not None for p in net.parameters())


def test_unet_rejects_wrong_channels():
    with pytest.raises(ValueError, match="in_channels=1"):
        UNet(in_channels=1)(torch.randn(2, 3, 8, 8), torch.rand(2))
