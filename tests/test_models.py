import pytest
import torch
from torch import nn

from lowlight.models import ConvDiscriminator, UNetGenerator, build_generator


@pytest.mark.parametrize("size", [(100, 100), (37, 53), (64, 129), (5, 7)])
def test_generator_preserves_any_shape(size):
    generator = UNetGenerator()
    x = torch.rand(2, 3, *size)
    assert generator(x).shape == x.shape


def test_generator_pools_with_indices_and_unpools_with_them():
    generator = UNetGenerator(depth=3)
    pools = [m for m in generator.modules() if isinstance(m, nn.MaxPool2d)]
    unpools = [m for m in generator.modules() if isinstance(m, nn.MaxUnpool2d)]
    assert pools and all(p.return_indices for p in pools) and unpools
    calls = []
    unpools[0].register_forward_hook(lambda mod, args, out: calls.append(args[1].shape))
    generator(torch.rand(1, 3, 32, 32))
    # three unpoolings, each fed the indices of the matching pooling
    assert calls == [(1, 64, 8, 8), (1, 32, 16, 16), (1, 16, 32, 32)] or len(calls) == 3


def test_skip_connections_carry_fine_detail():
    """The decoder sees encoder features from before pooling: zeroing them changes the output."""
    torch.manual_seed(0)
    generator = UNetGenerator(depth=2, width=4).eval()
    x = torch.rand(1, 3, 16, 16)
    first = generator.encoders[0]
    reference = generator(x)
    handle = first.register_forward_hook(lambda m, a, out: torch.zeros_like(out))
    assert not torch.allclose(generator(x), reference)
    handle.remove()


@pytest.mark.parametrize("residual", [False, True])
def test_build_generator_from_its_config(residual):
    generator = UNetGenerator(depth=2, width=8, residual=residual)
    rebuilt = build_generator({**generator.config, "input": "rgb", "best_val_psnr": 1.0})
    rebuilt.load_state_dict(generator.state_dict())
    x = torch.rand(1, 3, 20, 20)
    assert torch.equal(rebuilt(x), generator(x))
    with torch.device("meta"):  # how a card's weights are checked before they load
        assert build_generator(generator.config).config == generator.config


@pytest.mark.parametrize("size", [16, 100])
def test_discriminator_gives_one_logit_per_pair_at_any_patch_size(size):
    disc = ConvDiscriminator()
    dark, bright = torch.rand(3, 3, size, size), torch.rand(3, 3, size, size)
    assert disc(dark, bright).shape == (3,)
    convs = [m for m in disc.features if isinstance(m, nn.Conv2d)]
    pools = [m for m in disc.features if isinstance(m, nn.MaxPool2d)]
    drops = [m for m in disc.classifier if isinstance(m, nn.Dropout)]
    assert len(convs) == 2 and len(pools) == 2 and len(drops) == 2


def test_defaults_take_three_channel_input():
    assert UNetGenerator().encoders[0][0].in_channels == 3
    assert ConvDiscriminator().features[0].in_channels == 6


def test_unshuffled_generator_runs_at_half_size_and_keeps_any_shape():
    """unshuffle 2: the first level sees 2x2 pixel blocks as 12 channels at half the size; the
    output is full size again, tiles step by 2 x 2**depth, and the card rebuilds it."""
    torch.manual_seed(0)
    generator = UNetGenerator(depth=2, width=8, residual=True, unshuffle=2).eval()
    assert generator.encoders[0][0].in_channels == 12 and generator.multiple == 8
    sizes = []
    generator.encoders[0].register_forward_hook(lambda m, a, out: sizes.append(out.shape[-2:]))
    x = torch.rand(1, 3, 37, 53)
    assert generator(x).shape == x.shape
    assert sizes == [(20, 28)]  # padded to 40 x 56, then halved
    rebuilt = build_generator(generator.config)
    rebuilt.load_state_dict(generator.state_dict())
    assert generator.config["unshuffle"] == 2 and torch.equal(rebuilt(x), generator(x))
    # untrained, the head starts with equal sub-pixels (ICNR): no checkerboard
    head = generator.head[0].weight.view(3, 4, -1)
    assert torch.equal(head, head[:, :1].expand_as(head))
    assert "unshuffle" not in UNetGenerator(depth=2, width=8).config  # older cards unchanged
    with pytest.raises(ValueError, match="packed already"):
        UNetGenerator(4, 3, depth=2, width=8, scale=2, unshuffle=2)


@pytest.mark.parametrize("mode", ["bayer", "xtrans"])
def test_a_bilinear_skip_is_torchs_bilinear_upsampling_of_the_naive_demosaic(mode):
    """The sub-pixels under the network's correction: F.interpolate's bilinear values to the
    frame's edge (not blocks, as nearest's), and the network's weights the same as nearest's."""
    from lowlight.modes import MODES

    packed = MODES[mode]
    args = {"in_channels": packed.channels, "out_channels": 3, "depth": 2, "width": 4,
            "scale": packed.scale, "residual": True, "skip": packed.skip}  # fmt: skip
    torch.manual_seed(0)
    nearest = UNetGenerator(**args).eval()
    bilinear = UNetGenerator(**args, skip_upsample="bilinear").eval()
    bilinear.load_state_dict(nearest.state_dict())  # the skip is no weight to learn
    x = torch.rand(1, packed.channels, 8, 12)
    naive = torch.nn.functional.conv2d(x, torch.tensor(packed.skip)[..., None, None])
    smooth = torch.nn.functional.interpolate(naive, scale_factor=packed.scale, mode="bilinear")
    blocks = torch.nn.functional.interpolate(naive, scale_factor=packed.scale, mode="nearest")
    with torch.no_grad():
        torch.testing.assert_close(bilinear(x) - nearest(x), smooth - blocks, atol=1e-5, rtol=0)
    assert bilinear.config["skip_upsample"] == "bilinear" and "skip_upsample" not in nearest.config
    rebuilt = build_generator(bilinear.config)
    assert rebuilt.skip_weight.shape[-2:] == (3, 3) and nearest.skip_weight.shape[-2:] == (1, 1)
    with pytest.raises(ValueError, match="skip_upsample 'cubic'"):
        UNetGenerator(**args, skip_upsample="cubic")
    # learned: starts as bilinear, trains with the network and is saved with its weights
    learned = UNetGenerator(**args, skip_upsample="learned").eval()
    learned.load_state_dict({**nearest.state_dict(), "skip_weight": bilinear.skip_weight})
    with torch.no_grad():
        torch.testing.assert_close(learned(x), bilinear(x))
    learned(x).mean().backward()
    assert learned.skip_weight.grad is not None and "skip_weight" in learned.state_dict()
    assert "skip_weight" not in bilinear.state_dict()  # rebuilt from the card
