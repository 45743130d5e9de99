"""Every registered architecture: shapes, gradients, ONNX parity; torchvision weight loading."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from stemwatch.core.errors import StemwatchError
from trainer.architectures import (
    ArchitectureError,
    CamModel,
    InitWeightsError,
    UnknownArchitectureError,
    create,
    get_info,
    list_architectures,
    load_init_weights,
)
from trainer.architectures.layers import StaticAdaptiveAvgPool2d
from trainer.export import ExportModule, check_parity, export_module, synthetic_tiles


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """One intra-op thread: on the shared 2-core machine spinning OpenMP threads cost more."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


EXPECTED = {
    "lenet5",
    "alexnet",
    "resnet18",
    "resnet34",
    "resnet50",
    "densenet121",
    "fastnet",
    "fastnet_s",
}


def build(name: str, **kwargs: object) -> torch.nn.Module:
    torch.manual_seed(0)
    return create(name, **kwargs)  # type: ignore[arg-type]


def test_registry_lists_every_family():
    assert set(list_architectures()) == EXPECTED
    for name in list_architectures():
        info = get_info(name)
        assert info.name == name and info.description and info.input_size >= 32


def test_unknown_architecture_names_the_choices():
    with pytest.raises(UnknownArchitectureError, match=r"'resnet9'.*fastnet") as exc:
        create("resnet9")
    assert isinstance(exc.value, StemwatchError)
    with pytest.raises(ArchitectureError, match=r"resnet18: unsupported .*'width': 2"):
        create("resnet18", width=2)
    assert create("fastnet", width=0.5).fc.in_features == 128
    assert create("fastnet_s").fc.in_features == 128  # fastnet at half width


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_architecture_trains_and_exports(name: str, tmp_path: Path):
    side = 64  # small, but through the whole network (AlexNet needs >= 63)
    model = build(name, num_classes=3)
    assert isinstance(model, CamModel) == get_info(name).has_gap

    # forward + backward in training mode
    model.train()
    x = torch.rand(2, 1, side, side)
    logits = model(x)
    assert logits.shape == (2, 3)
    assert torch.isfinite(logits).all()
    torch.nn.functional.cross_entropy(logits, torch.tensor([0, 2])).backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(float(g.abs().sum()) > 0 for g in grads if g is not None)

    # CAM models: forward == head(features)
    model.eval()
    if isinstance(model, CamModel):
        with torch.no_grad():
            feats = model.forward_features(x)
            assert feats.ndim == 4 and feats.shape[1] == model.classifier_layer().in_features
            torch.testing.assert_close(model.forward_head(feats), model(x))

    # ONNX export at the fixed side, parity at batch 1 and 3
    module = ExportModule(model, temperature=1.7, positive_index=2)
    onnx_path = export_module(module, tmp_path / f"{name}.onnx", input_size=side)
    results = check_parity(module, onnx_path, synthetic_tiles(3, 1, side), tolerance=1e-4)
    assert [r.batch_size for r in results] == [1, 3]
    expected = {"probabilities", "logits"} | ({"cam"} if get_info(name).has_gap else set())
    assert set(results[0].max_abs_diff) == expected


@pytest.mark.parametrize("name", ["fastnet", "resnet50", "densenet121", "alexnet", "lenet5"])
def test_forward_at_native_input_size(name: str):
    side = get_info(name).input_size
    model = build(name).eval()
    with torch.no_grad():
        out = model(torch.rand(1, 1, side, side))
    assert out.shape == (1, 2) and torch.isfinite(out).all()


def test_lenet_is_classic_at_32_and_pools_larger_inputs():
    model = build("lenet5").eval()
    assert model.features(torch.rand(1, 1, 32, 32)).shape == (1, 16, 5, 5)
    x = torch.rand(1, 1, 128, 128)
    with torch.no_grad():
        pooled = torch.nn.functional.adaptive_avg_pool2d(model.features(x), 5)
        torch.testing.assert_close(model(x), model.classifier(pooled.flatten(1)))


@pytest.mark.parametrize("side", [3, 5, 6, 13, 29])
def test_static_adaptive_pool_equals_torch(side: int):
    x = torch.rand(2, 4, side, side + 1)
    expected = torch.nn.functional.adaptive_avg_pool2d(x, 5)
    torch.testing.assert_close(StaticAdaptiveAvgPool2d(5)(x), expected)


# Key names and shapes of torchvision's ImageNet state dicts (torchvision 0.2x).
TORCHVISION_KEYS = {
    "resnet18": {
        "conv1.weight": (64, 3, 7, 7),
        "layer2.0.downsample.0.weight": (128, 64, 1, 1),
        "layer4.1.bn2.running_var": (512,),
        "layer4.1.bn2.num_batches_tracked": (),
        "fc.weight": (1000, 512),
    },
    "resnet34": {"layer3.5.conv2.weight": (256, 256, 3, 3), "fc.bias": (1000,)},
    "resnet50": {
        "layer1.0.downsample.1.running_mean": (256,),
        "layer4.2.conv3.weight": (2048, 512, 1, 1),
        "fc.weight": (1000, 2048),
    },
    "densenet121": {
        "features.conv0.weight": (64, 3, 7, 7),
        "features.denseblock1.denselayer1.norm1.weight": (64,),
        "features.transition3.conv.weight": (512, 1024, 1, 1),
        "features.denseblock4.denselayer16.conv2.weight": (32, 128, 3, 3),
        "features.norm5.running_var": (1024,),
        "classifier.weight": (1000, 1024),
    },
    "alexnet": {
        "features.0.weight": (64, 3, 11, 11),
        "features.10.bias": (256,),
        "classifier.1.weight": (4096, 9216),
        "classifier.6.weight": (1000, 4096),
    },
}
TORCHVISION_KEY_COUNTS = {"resnet18": 122, "resnet50": 320, "densenet121": 727, "alexnet": 16}


@pytest.mark.parametrize("name", sorted(TORCHVISION_KEYS))
def test_state_dict_names_match_torchvision(name: str):
    with torch.device("meta"):
        state = create(name, num_classes=1000, in_channels=3).state_dict()
    for key, shape in TORCHVISION_KEYS[name].items():
        assert tuple(state[key].shape) == shape, key
    if name in TORCHVISION_KEY_COUNTS:
        assert len(state) == TORCHVISION_KEY_COUNTS[name]


def save_imagenet_style(name: str, path: Path, *, old_densenet_names: bool = False) -> dict:
    """A torchvision-style file: 3 input channels, 1000 classes, random weights."""
    torch.manual_seed(1)
    state = create(name, num_classes=1000, in_channels=3).state_dict()
    if old_densenet_names:  # how torchvision's downloadable DenseNet files spell the layers
        state = {
            k.replace(".norm1.", ".norm.1.").replace(".conv2.", ".conv.2."): v
            for k, v in state.items()
        }
    torch.save(state, path)
    return state


def test_init_weights_adapt_first_conv_and_skip_head(tmp_path: Path):
    path = tmp_path / "resnet18-imagenet.pth"
    theirs = save_imagenet_style("resnet18", path)
    model = build("resnet18")
    fc_before = model.state_dict()["fc.weight"].clone()
    report = load_init_weights(model, path, in_channels=1)
    mine = model.state_dict()
    torch.testing.assert_close(mine["conv1.weight"], theirs["conv1.weight"].sum(1, keepdim=True))
    torch.testing.assert_close(mine["layer3.1.conv2.weight"], theirs["layer3.1.conv2.weight"])
    torch.testing.assert_close(mine["layer4.1.bn2.running_var"], theirs["layer4.1.bn2.running_var"])
    torch.testing.assert_close(mine["fc.weight"], fc_before)
    assert report.adapted == ["conv1.weight"]
    assert report.skipped == ["fc.weight", "fc.bias"]
    assert report.loaded == len(mine) - 2
    # a gray image through the adapted net == the same image as RGB through the original
    rgb = create("resnet18", num_classes=1000, in_channels=3).eval()
    rgb.load_state_dict(theirs)
    model.eval()
    gray = torch.rand(1, 1, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(
            model.forward_features(gray),  # type: ignore[operator]
            rgb.forward_features(gray.repeat(1, 3, 1, 1)),  # type: ignore[operator]
            atol=1e-4,
            rtol=1e-4,
        )


def test_init_weights_densenet_old_names_and_three_channels(tmp_path: Path):
    path = tmp_path / "densenet121.pth"
    theirs = save_imagenet_style("densenet121", path, old_densenet_names=True)
    assert "features.denseblock1.denselayer1.norm.1.weight" in theirs
    model = build("densenet121", in_channels=3, num_classes=1000)
    report = load_init_weights(model, path, in_channels=3)
    assert report.adapted == [] and report.skipped == []
    key = "features.denseblock4.denselayer16.conv2.weight"
    torch.testing.assert_close(model.state_dict()[key], theirs[key.replace(".conv2.", ".conv.2.")])


def test_init_weights_of_another_architecture_name_file_and_keys(tmp_path: Path):
    path = tmp_path / "resnet50-0676ba61.pth"
    save_imagenet_style("resnet50", path)
    with pytest.raises(InitWeightsError) as exc:
        load_init_weights(build("resnet18"), path, in_channels=1)
    msg = str(exc.value)
    assert str(path) in msg and "layer1.0.conv3.weight" in msg and "another architecture" in msg


def test_init_weights_wrong_width_and_wrong_channels(tmp_path: Path):
    path = tmp_path / "fastnet.pth"
    torch.save(create("fastnet", width=0.5).state_dict(), path)
    with pytest.raises(InitWeightsError, match=r"shapes do not match.*blocks\.0\.pw\.weight"):
        load_init_weights(create("fastnet"), path, in_channels=1)
    with pytest.raises(InitWeightsError, match="in_channels=3"):
        load_init_weights(create("fastnet"), path, in_channels=3)


def test_init_weights_not_a_state_dict(tmp_path: Path):
    text = tmp_path / "weights.pth"
    text.write_text("not weights")
    with pytest.raises(InitWeightsError, match=r"weights\.pth: not a PyTorch state dict"):
        load_init_weights(create("fastnet"), text, in_channels=1)
    array = tmp_path / "array.pth"
    torch.save([torch.zeros(3)], array)
    with pytest.raises(InitWeightsError, match="holds a list"):
        load_init_weights(create("fastnet"), array, in_channels=1)
    with pytest.raises(InitWeightsError, match="does not exist"):
        load_init_weights(create("fastnet"), tmp_path / "missing.pth", in_channels=1)


def test_init_weights_accept_wrapped_and_data_parallel_state(tmp_path: Path):
    source = create("fastnet")
    path = tmp_path / "wrapped.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in source.state_dict().items()}}, path)
    model = create("fastnet")
    report = load_init_weights(model, path, in_channels=1)
    assert report.skipped == [] and report.adapted == []
    x = torch.rand(1, 1, 64, 64)
    with torch.no_grad():
        np.testing.assert_allclose(model.eval()(x).numpy(), source.eval()(x).numpy(), atol=1e-6)
