import warnings

import numpy as np
import pytest
import torch

from mne_eegfm.models.factory import create_model

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from mne_eegfm import onnx_backend  # noqa: E402


def _export(model, tmp_path, **kwargs):
    fname = tmp_path / "model.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's warnings on constants
        onnx_backend.export_onnx(model, fname, n_channels=5, n_times=320, **kwargs)
    return onnx_backend.OnnxModel(fname, n_threads=1)


@pytest.mark.parametrize(
    "ssm", ["mamba", pytest.param("mamba2", marks=pytest.mark.slow)]
)
def test_onnx_matches_torch(ssm, tmp_path):
    torch.manual_seed(0)
    model = create_model(
        "lumamba-tiny", n_outputs=3, num_blocks=1, embed_dim=16, num_queries=2, ssm=ssm
    ).eval()
    onnx_model = _export(model, tmp_path)
    # another batch size and montage than the trace's, positions shared (C, 3)
    x = torch.randn(3, 7, 320)
    pos = torch.randn(7, 3) * 0.05
    with torch.no_grad():  # the torch path: in-place scan, kernel, carried state
        want = (model.encode(x, pos), model.embed(x, pos), model(x, pos))
    got = (
        onnx_model.encode(x.numpy(), pos.numpy()),
        onnx_model.embed(x.numpy(), pos.numpy()),
        onnx_model(x.numpy(), pos.numpy()),
    )
    for expected, have in zip(want, got):
        assert have.shape == tuple(expected.shape)
        np.testing.assert_allclose(have, expected.numpy(), atol=1e-4, rtol=0)
    assert not model.training  # the model is left as it was
    with pytest.raises(ValueError, match="shape \\(batch, channels, 320\\)"):
        onnx_model.encode(np.zeros((1, 7, 256), np.float32), pos.numpy())


@pytest.mark.slow
def test_onnx_encoder_without_head(tmp_path):
    torch.manual_seed(1)
    model = create_model("lumamba-tiny", num_blocks=1, embed_dim=16, num_queries=2)
    onnx_model = _export(model.eval(), tmp_path)
    assert not onnx_model.has_head
    x, pos = torch.randn(2, 4, 320), torch.randn(2, 4, 3) * 0.05
    with torch.no_grad():
        want = model.embed(x, pos).numpy()
    got = onnx_model.embed(x.numpy(), pos.numpy())
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=0)
    with pytest.raises(ValueError, match="no classification head"):
        onnx_model(x.numpy(), pos.numpy())


def test_traceable_scan_matches_selective_scan():
    from mne_eegfm.models.scan import selective_scan

    g = torch.Generator().manual_seed(0)
    u, delta, z = (torch.randn(2, 50, 8, generator=g) for _ in range(3))
    A = -torch.rand(8, 4, generator=g)
    B, C = (torch.randn(2, 50, 4, generator=g) for _ in range(2))
    D, bias = torch.randn(8, generator=g), torch.randn(8, generator=g)
    args = (u, delta, A, B, C)
    kwargs = dict(D=D, z=z, delta_bias=bias, delta_softplus=True)
    with torch.no_grad():
        want = selective_scan(*args, **kwargs)
        got = onnx_backend._traceable_scan(*args, **kwargs)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
