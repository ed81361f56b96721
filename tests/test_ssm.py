"""State-space layers: scans against plain float64 recurrences, layouts, gradients."""

from functools import cache

import pytest
import torch
import torch.nn.functional as F

from mne_eegfm.models import Mamba, Mamba2, mamba, scan
from mne_eegfm.models.scan import (
    _ScanFunction,
    chunk_scan,
    scan_segments,
    selective_scan,
)

TOL = 1e-5


def rel_err(y, ref):
    return ((y.double() - ref).norm() / ref.norm()).item()


def mamba_reference(u, delta, A, B, C, D, z):
    """Mamba (v1) recurrence, one step at a time in float64."""
    u, delta, A, B, C, D, z = (t.double() for t in (u, delta, A, B, C, D, z))
    h = torch.zeros(u.shape[0], u.shape[2], A.shape[1], dtype=torch.float64)
    ys = []
    for t in range(u.shape[1]):
        decay = torch.exp(delta[:, t, :, None] * A)
        h = decay * h + (delta[:, t] * u[:, t])[:, :, None] * B[:, t, None, :]
        ys.append((h * C[:, t, None, :]).sum(-1) + D * u[:, t])
    return torch.stack(ys, dim=1) * F.silu(z)


def mamba2_reference(x, dt, A, B, C, D):
    """Mamba-2 recurrence per head, one step at a time in float64."""
    x, dt, A, B, C, D = (t.double() for t in (x, dt, A, B, C, D))
    n_heads, n_groups = x.shape[2], B.shape[2]
    state = torch.zeros(*x.shape[:1], n_heads, x.shape[3], B.shape[3]).double()
    ys = []
    for t in range(x.shape[1]):
        Bh = B[:, t].repeat_interleave(n_heads // n_groups, dim=1)
        Ch = C[:, t].repeat_interleave(n_heads // n_groups, dim=1)
        inp = (dt[:, t, :, None] * x[:, t])[..., None] * Bh[:, :, None, :]
        state = torch.exp(dt[:, t] * A)[:, :, None, None] * state + inp
        ys.append(torch.einsum("bhpn,bhn->bhp", state, Ch) + D[:, None] * x[:, t])
    return torch.stack(ys, dim=1)


def mamba_inputs(gen, batch, length, d_inner, d_state):
    def randn(*shape):
        return torch.randn(*shape, generator=gen)

    delta = F.softplus(randn(batch, length, d_inner) - 2)
    A = -torch.exp(randn(d_inner, d_state))
    return dict(
        u=randn(batch, length, d_inner),
        delta=delta,
        A=A,
        B=randn(batch, length, d_state),
        C=randn(batch, length, d_state),
        D=randn(d_inner),
        z=randn(batch, length, d_inner),
    )


SHAPES = [(2, 1, 8, 4), (3, 7, 16, 5), (4, 32, 24, 16), (1, 4000, 16, 16)]


@pytest.fixture(params=["kernel", "torch"])
def scan_impl(request, monkeypatch):
    """Run inference scans with the numba kernel or the pure-PyTorch loop."""
    kernel = scan.load_kernel() if request.param == "kernel" else None
    if request.param == "kernel" and kernel is None:
        pytest.skip("numba is not installed: the fused kernel is unavailable")
    monkeypatch.setattr(scan, "_pick_kernel", lambda length, updates: kernel)
    return request.param


@pytest.mark.parametrize("batch, length, d_inner, d_state", SHAPES)
def test_selective_scan_matches_recurrence(batch, length, d_inner, d_state, scan_impl):
    gen = torch.Generator().manual_seed(length)
    inputs = mamba_inputs(gen, batch, length, d_inner, d_state)
    ref = mamba_reference(**inputs)
    with torch.no_grad():
        assert rel_err(selective_scan(**inputs), ref) < TOL
    # Autograd path (states kept for the backward).
    inputs["A"].requires_grad_(True)
    y = selective_scan(**inputs)
    assert y.requires_grad
    assert rel_err(y.detach(), ref) < TOL


def test_broken_kernel_falls_back_loudly(monkeypatch):
    """A kernel that fails to load warns and leaves the pure-PyTorch scan."""
    if scan.load_kernel() is None:
        pytest.skip("numba is not installed: the fused kernel is unavailable")
    from mne_eegfm.models import scan_kernel

    def broken(*args):
        raise RuntimeError("cannot cache function: no locator available")

    monkeypatch.setattr(scan_kernel, "fused_scan", broken)
    scan.load_kernel.cache_clear()
    try:
        with pytest.warns(RuntimeWarning, match="no locator available"):
            assert scan.load_kernel() is None
        inputs = mamba_inputs(torch.Generator().manual_seed(7), 1, 300, 8, 4)
        with torch.no_grad():
            assert rel_err(selective_scan(**inputs), mamba_reference(**inputs)) < TOL
    finally:
        monkeypatch.undo()
        scan.load_kernel.cache_clear()
        scan.load_kernel()


def test_kernel_policy(monkeypatch):
    """A long sequence, or enough short ones, load the kernel; then all use it."""
    kernel = scan.load_kernel()
    if kernel is None:
        pytest.skip("numba is not installed: the fused kernel is unavailable")
    assert scan._pick_kernel(1, 1) is kernel  # loaded above
    monkeypatch.setattr(scan, "_loop_updates", 0)
    scan.load_kernel.cache_clear()
    try:
        assert scan._pick_kernel(scan.KERNEL_MIN_LENGTH - 1, 10**8) is None
        assert scan._pick_kernel(scan.KERNEL_MIN_LENGTH, 1) is kernel
        scan.load_kernel.cache_clear()
        monkeypatch.setattr(scan, "_loop_updates", 0)
        for _ in range(10):  # 10 x 1e8 updates
            assert scan._pick_kernel(64, 10**8) is None
        assert scan._pick_kernel(64, 1) is kernel
        assert scan._pick_kernel(1, 1) is kernel
    finally:
        scan.load_kernel()


@pytest.mark.parametrize("cuts", [(1,), (3, 4), (100, 2000, 2001)])
def test_scan_state_carries_across_pieces(cuts, scan_impl):
    """Scanning consecutive pieces with ``state`` equals one whole scan."""
    gen = torch.Generator().manual_seed(1)
    inputs = mamba_inputs(gen, 2, 4000, 70, 16)  # 70: a partial kernel block
    ref = mamba_reference(**inputs)
    state = torch.zeros(2, 16, 70)
    bounds = [0, *cuts, 4000]
    with torch.no_grad():
        pieces = [
            selective_scan(
                **{k: v[:, a:b] if v.dim() == 3 else v for k, v in inputs.items()},
                state=state,
            )
            for a, b in zip(bounds[:-1], bounds[1:])
        ]
    assert rel_err(torch.cat(pieces, dim=1), ref) < TOL


def test_selective_scan_extreme_values(scan_impl):
    """Huge steps and gates saturate (decay 0, silu 0 or identity), never NaN."""
    gen = torch.Generator().manual_seed(2)
    inputs = mamba_inputs(gen, 2, 20, 8, 4)
    inputs["delta"][:, 5] = 1e4
    inputs["z"][:, ::2] = 1e3
    inputs["z"][:, 1::2] = -1e3
    ref = mamba_reference(**inputs)
    with torch.no_grad():
        y = selective_scan(**inputs)
    assert torch.isfinite(y).all()
    assert rel_err(y, ref) < TOL


def test_selective_scan_bias_and_softplus(scan_impl):
    """``delta_bias`` and ``delta_softplus`` (fused in the kernel) over all regimes."""
    gen = torch.Generator().manual_seed(4)
    inputs = mamba_inputs(gen, 2, 40, 24, 8)
    raw = torch.randn(2, 40, 24, generator=gen) * 4
    raw[:, :4] = torch.tensor([-100.0, -30.0, 25.0, 60.0])[:, None]
    bias = torch.randn(24, generator=gen)
    expected = mamba_reference(**{**inputs, "delta": F.softplus(raw.double() + bias)})
    with torch.no_grad():
        y = selective_scan(
            **{**inputs, "delta": raw}, delta_bias=bias, delta_softplus=True
        )
    assert rel_err(y, expected) < TOL


@pytest.mark.parametrize("name", ["u", "delta", "B", "z"])
def test_selective_scan_propagates_nan(name, scan_impl):
    """A NaN in the input shows in the output; it is never clamped away."""
    inputs = mamba_inputs(torch.Generator().manual_seed(5), 1, 6, 8, 4)
    inputs[name][0, 2] = torch.nan
    with torch.no_grad():
        y = selective_scan(**inputs)
    assert y[0, 2].isnan().any()


def test_selective_scan_from_several_threads(scan_impl):
    """Concurrent calls (e.g. a threaded web server) give the sequential results."""
    from concurrent.futures import ThreadPoolExecutor

    cases = [
        mamba_inputs(torch.Generator().manual_seed(i), 2, 64, 40, 8) for i in range(6)
    ]
    with torch.no_grad():
        expected = [selective_scan(**inputs) for inputs in cases]
        with ThreadPoolExecutor(3) as pool:
            results = list(pool.map(lambda kw: selective_scan(**kw), cases))
    for got, want in zip(results, expected):
        torch.testing.assert_close(got, want, rtol=0, atol=0)


def _scan_in_child(inputs, queue):
    with torch.no_grad():
        queue.put(selective_scan(**inputs).numpy())  # plain array: no shared fds


def test_selective_scan_in_forked_child():
    """A child forked after the parallel kernel ran (e.g. a DataLoader worker)
    scans correctly instead of being terminated by numba's OpenMP pool."""
    import multiprocessing

    if "fork" not in multiprocessing.get_all_start_methods():
        pytest.skip("this platform cannot fork")
    if scan.load_kernel() is None:
        pytest.skip("numba is not installed: the fused kernel is unavailable")
    inputs = mamba_inputs(torch.Generator().manual_seed(6), 2, 300, 16, 8)
    with torch.no_grad():
        expected = selective_scan(**inputs)  # 300 steps: the kernel, in parallel
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_scan_in_child, args=(inputs, queue))
    child.start()
    try:
        got = queue.get(timeout=60)
    finally:
        child.join(10)
        if child.exitcode is None:
            child.kill()
    assert child.exitcode == 0
    torch.testing.assert_close(torch.from_numpy(got), expected)


def test_state_needs_inference_mode():
    inputs = mamba_inputs(torch.Generator().manual_seed(3), 1, 4, 8, 4)
    inputs["u"].requires_grad_(True)
    with pytest.raises(ValueError, match="inference only"):
        selective_scan(**inputs, state=torch.zeros(1, 4, 8))


@pytest.mark.parametrize("reverse", [False, True])
def test_mamba_pieces_match_whole_sequence(reverse, scan_impl, monkeypatch):
    """Inference in pieces (conv history and state carried) equals one pass."""
    torch.manual_seed(0)
    layer = Mamba(12, d_state=4, d_conv=4, expand=2)
    x = torch.randn(3, 50, 12)
    whole = layer(x.flip(1)).flip(1) if reverse else layer(x)  # autograd: one pass
    monkeypatch.setattr(mamba, "PIECE_TOKENS", 3 * 7)  # pieces of 7 steps
    with torch.no_grad():
        pieces = layer(x, reverse=reverse)
        monkeypatch.setattr(mamba, "PIECE_TOKENS", 3 * 2)  # shorter than d_conv
        short = layer(x, reverse=reverse)
    assert rel_err(pieces, whole.detach().double()) < TOL
    assert rel_err(short, whole.detach().double()) < TOL
    with torch.no_grad():  # float64 layers carry a float64 state
        double = layer.double()(x.double(), reverse=reverse)
    assert rel_err(double, whole.detach().double()) < TOL


@cache
def segment_case(length):
    gen = torch.Generator().manual_seed(length)
    inputs = mamba_inputs(gen, 2, length, 8, 16)
    return inputs, mamba_reference(**inputs)


@pytest.mark.parametrize("n_segments", [2, 3, 7, 50])
@pytest.mark.parametrize("length", [7, 32, 4000])
def test_segmented_scan_matches_recurrence(length, n_segments):
    if n_segments > length:
        pytest.skip("more segments than steps")
    inputs, ref = segment_case(length)
    u, delta, z = inputs["u"], inputs["delta"], inputs["z"]
    with torch.no_grad():
        y = scan_segments(
            delta, inputs["A"].t(), inputs["B"], inputs["C"], delta * u, n_segments
        )
        y = (y + u * inputs["D"]) * F.silu(z)
    assert rel_err(y, ref) < TOL


def test_selective_scan_gradcheck():
    gen = torch.Generator().manual_seed(0)
    inputs = mamba_inputs(gen, 2, 5, 3, 2)
    inputs = {k: v.double().requires_grad_() for k, v in inputs.items()}
    names = list(inputs)

    def fn(*args):
        return selective_scan(**dict(zip(names, args)))

    assert torch.autograd.gradcheck(fn, tuple(inputs.values()))
    dt = torch.float64
    args = (
        F.softplus(torch.randn(2, 6, 3, dtype=dt, generator=gen)),
        -torch.rand(2, 3, dtype=dt, generator=gen),
        torch.randn(2, 6, 2, dtype=dt, generator=gen),
        torch.randn(2, 6, 2, dtype=dt, generator=gen),
        torch.randn(2, 6, 3, dtype=dt, generator=gen),
    )
    args = tuple(a.requires_grad_() for a in args)
    assert torch.autograd.gradcheck(_ScanFunction.apply, args)


@cache
def chunk_case(batch, length, heads, head_dim, groups, d_state):
    gen = torch.Generator().manual_seed(length)

    def randn(*shape):
        return torch.randn(*shape, generator=gen)

    x = randn(batch, length, heads, head_dim)
    dt = randn(batch, length, heads) - 1
    A = -torch.rand(heads, generator=gen) * 16
    B, C = randn(batch, length, groups, d_state), randn(batch, length, groups, d_state)
    D = randn(heads)
    inputs = (x, dt, A, B, C, D)
    return inputs, mamba2_reference(x, F.softplus(dt), A, B, C, D)


MAMBA2_SHAPES = [
    (2, 1, 2, 4, 1, 8),
    (2, 7, 4, 3, 2, 5),
    (1, 32, 4, 8, 2, 16),
    (1, 4000, 2, 8, 1, 16),
]


@pytest.mark.parametrize("chunk_size", [1, 5, 64])
@pytest.mark.parametrize(
    "batch, length, heads, head_dim, groups, d_state", MAMBA2_SHAPES
)
def test_chunk_scan_matches_recurrence(
    batch, length, heads, head_dim, groups, d_state, chunk_size
):
    (x, dt, A, B, C, D), ref = chunk_case(
        batch, length, heads, head_dim, groups, d_state
    )
    y = chunk_scan(x, dt, A, B, C, chunk_size=chunk_size, D=D, dt_softplus=True)
    assert y.shape == x.shape
    assert rel_err(y, ref) < TOL


def test_chunk_scan_gradcheck():
    gen = torch.Generator().manual_seed(0)
    dt = torch.float64
    args = (
        torch.randn(1, 6, 2, 2, dtype=dt, generator=gen),
        torch.randn(1, 6, 2, dtype=dt, generator=gen),
        -torch.rand(2, dtype=dt, generator=gen),
        torch.randn(1, 6, 1, 3, dtype=dt, generator=gen),
        torch.randn(1, 6, 1, 3, dtype=dt, generator=gen),
    )
    args = tuple(a.requires_grad_() for a in args)

    def fn(x, dt, A, B, C):
        return chunk_scan(x, dt, A, B, C, chunk_size=4, dt_softplus=True)

    assert torch.autograd.gradcheck(fn, args)


MAMBA_KEYS = {
    384: {
        "in_proj.weight": (1536, 384),
        "conv1d.weight": (768, 1, 4),
        "conv1d.bias": (768,),
        "x_proj.weight": (56, 768),
        "dt_proj.weight": (768, 24),
        "dt_proj.bias": (768,),
        "A_log": (768, 16),
        "D": (768,),
        "out_proj.weight": (384, 768),
    },
    256: {
        "in_proj.weight": (1024, 256),
        "conv1d.weight": (512, 1, 4),
        "conv1d.bias": (512,),
        "x_proj.weight": (48, 512),
        "dt_proj.weight": (512, 16),
        "dt_proj.bias": (512,),
        "A_log": (512, 16),
        "D": (512,),
        "out_proj.weight": (256, 512),
    },
}


@pytest.mark.parametrize("d_model", sorted(MAMBA_KEYS))
def test_mamba_state_dict_layout(d_model):
    torch.manual_seed(0)
    model = Mamba(d_model)
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert shapes == MAMBA_KEYS[d_model]
    assert torch.equal(model.A_log[3], torch.log(torch.arange(1.0, 17.0)))
    assert torch.equal(model.D, torch.ones(2 * d_model))
    dt = F.softplus(model.dt_proj.bias)
    assert dt.min() >= 1e-4 and dt.max() <= 0.1 + 1e-6
    bound = model.dt_rank**-0.5
    assert model.dt_proj.weight.abs().max() <= bound
    # strict round trip into a fresh module
    other = Mamba(d_model)
    other.load_state_dict(model.state_dict(), strict=True)
    x = torch.randn(2, 9, d_model)
    with torch.no_grad():
        torch.testing.assert_close(other(x), model(x))


def test_mamba2_state_dict_layout():
    model = Mamba2(256)  # d_inner 512, 8 heads of 64, N = 128, one group
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert shapes == {
        "dt_bias": (8,),
        "A_log": (8,),
        "D": (8,),
        "in_proj.weight": (2 * 512 + 2 * 128 + 8, 256),
        "conv1d.weight": (512 + 2 * 128, 1, 4),
        "conv1d.bias": (512 + 2 * 128,),
        "norm.weight": (512,),
        "out_proj.weight": (256, 512),
    }
    A = torch.exp(model.A_log)
    assert A.min() >= 1 and A.max() <= 16
    other = Mamba2(256)
    other.load_state_dict(model.state_dict(), strict=True)


def mamba_module_reference(model, x):
    """Mamba forward written out with the float64 reference recurrence."""
    d_inner = model.d_inner
    xz = x @ model.in_proj.weight.T
    u, z = xz[..., :d_inner], xz[..., d_inner:]
    conv = F.conv1d(
        u.transpose(1, 2),
        model.conv1d.weight,
        model.conv1d.bias,
        padding=model.d_conv - 1,
        groups=d_inner,
    )[..., : x.shape[1]]
    u = F.silu(conv.transpose(1, 2))
    dt, B, C = (u @ model.x_proj.weight.T).split(
        [model.dt_rank, model.d_state, model.d_state], dim=-1
    )
    delta = F.softplus(model.dt_proj(dt))
    A = -torch.exp(model.A_log)
    y = mamba_reference(u, delta, A, B, C, model.D, z)
    return y.float() @ model.out_proj.weight.T


@pytest.mark.parametrize("length", [1, 7, 50])
def test_mamba_module_matches_reference(length):
    torch.manual_seed(length)
    model = Mamba(32, d_state=8)
    with torch.no_grad():
        model.dt_proj.bias.add_(1.0)  # larger steps than at init
        x = torch.randn(3, length, 32)
        y = model(x)
        ref = mamba_module_reference(model, x)
    assert y.shape == (3, length, 32)
    assert rel_err(y, ref.double()) < 1e-4  # float32 projections around the scan


def test_mamba_lower_precision_and_backward():
    torch.manual_seed(0)
    model = Mamba(32, d_state=8)
    x = torch.randn(2, 11, 32)
    out = model(x.to(torch.bfloat16).float())
    out.square().mean().backward()
    assert all(
        p.grad is not None and p.grad.isfinite().all() for p in model.parameters()
    )
    half = Mamba(32, d_state=8, dtype=torch.bfloat16)
    assert half(x.to(torch.bfloat16)).dtype == torch.bfloat16


@pytest.mark.parametrize("grad", [False, True])
def test_scans_stay_float32_under_autocast(grad, scan_impl):
    """Under bfloat16 autocast the scans compute exactly as in float32."""
    gen = torch.Generator().manual_seed(0)
    inputs = mamba_inputs(gen, 2, 9, 16, 4)
    x, dt, A, B, C, D = chunk_case(2, 9, 4, 2, 1, 8)[0]

    def run():
        leaves = {k: v.clone().requires_grad_(grad) for k, v in inputs.items()}
        y = selective_scan(**leaves, delta_softplus=True)
        y2 = chunk_scan(x, dt, A, B, C, chunk_size=4, D=D, dt_softplus=True)
        if grad:
            y.sum().backward()
            return y, y2, leaves["delta"].grad
        return y, y2

    with torch.set_grad_enabled(grad):
        ref = run()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = run()
    for got, want in zip(out, ref):
        assert got.dtype == torch.float32
        assert torch.equal(got, want)


def test_mamba2_module_forward_backward():
    torch.manual_seed(0)
    model = Mamba2(32, d_state=16, headdim=16, ngroups=2)
    x = torch.randn(2, 70, 32, requires_grad=True)
    y = model(x)
    assert y.shape == x.shape
    y.square().mean().backward()
    assert x.grad.isfinite().all()
    # The output at t does not depend on the future.
    with torch.no_grad():
        x2 = x.detach().clone()
        x2[:, 40:] = torch.randn(2, 30, 32)
        torch.testing.assert_close(model(x2)[:, :40], y[:, :40].detach())


def test_mamba_is_causal():
    torch.manual_seed(0)
    model = Mamba(32, d_state=8)
    x = torch.randn(1, 300, 32)
    with torch.no_grad():
        y = model(x)
        x2 = x.clone()
        x2[:, 200:] = 0.0
        torch.testing.assert_close(model(x2)[:, :200], y[:, :200])


@pytest.mark.gpu
def test_parity_with_mamba_ssm():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU: parity with mamba-ssm kernels needs one")
    mamba_ssm = pytest.importorskip(
        "mamba_ssm", reason="mamba-ssm is not installed (pip install mne-eegfm[cuda])"
    )
    torch.manual_seed(0)
    for ours_cls, theirs_cls, kwargs in (
        (Mamba, mamba_ssm.Mamba, {}),
        (Mamba2, mamba_ssm.Mamba2, {"headdim": 32}),
    ):
        ours = ours_cls(128, **kwargs).cuda()
        theirs = theirs_cls(128, **kwargs).cuda()
        theirs.load_state_dict(ours.state_dict(), strict=True)
        x = torch.randn(2, 200, 128, device="cuda")
        with torch.no_grad():
            ref = theirs(x)
            fast = ours(x)  # dispatches to the mamba-ssm kernels
            pure = ours.cpu()(x.cpu())  # pure-PyTorch path on CPU
        assert rel_err(fast.cpu(), ref.cpu().double()) < 1e-4
        assert rel_err(pure, ref.cpu().double()) < 1e-4
