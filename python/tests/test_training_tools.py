"""The training tools (python/*.py, PyTorch): skipped where torch is not installed (CI's
package environment has none; run with the training environment of python/README.md)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import resnet_cifar  # noqa: E402


@pytest.mark.parametrize("channels", [1, 16])
@pytest.mark.parametrize("levels", [2, 4, 8])
def test_fused_qcfs_equals_the_autograd_reference(channels, levels):
    generator = torch.Generator().manual_seed(levels * 100 + channels)
    x = (torch.randn(8, 16, 6, 6, dtype=torch.float64, generator=generator) * 3).requires_grad_()
    lam = (torch.rand(channels, dtype=torch.float64, generator=generator) * 3 + 1).requires_grad_()
    grad = torch.randn(8, 16, 6, 6, dtype=torch.float64, generator=generator)
    expected = resnet_cifar.qcfs_reference(x, lam, levels)
    expected_grads = torch.autograd.grad(expected, (x, lam), grad)
    got = resnet_cifar.QCFSFunction.apply(x, lam, levels)
    got_grads = torch.autograd.grad(got, (x, lam), grad)
    assert torch.equal(got, expected)
    # Some inputs sit on each side of the clip bounds, where the gradient stops.
    assert 0 < int((got_grads[0] == 0).sum()) < x.numel()
    torch.testing.assert_close(got_grads[0], expected_grads[0], rtol=0, atol=1e-12)
    torch.testing.assert_close(got_grads[1], expected_grads[1], rtol=1e-12, atol=1e-12)


def test_qcfs_trains_the_inputs_inside_the_clip_range():
    # lambda = 2, L = 4: level k covers x in [(k - 1/2) / 2, (k + 1/2) / 2). The gradient
    # passes where 0 < x < lambda, levels 0 and L included (the gradient of clip(x, 0,
    # lambda)), and not on negative inputs that round to level 0, nor at or above lambda.
    x = torch.tensor([-0.3, -0.2, 0.0, 0.2, 0.3, 1.6, 1.9, 2.0, 2.2, 2.25, 2.6], dtype=torch.float64)
    passes = [0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0]
    for function in (resnet_cifar.QCFSFunction.apply, resnet_cifar.qcfs_reference):
        xs = x.clone().requires_grad_()
        lam = torch.tensor([2.0], dtype=torch.float64, requires_grad=True)
        out = function(xs, lam, 4)
        assert out.tolist() == [0.0, 0.0, 0.0, 0.0, 0.5, 1.5, 2.0, 2.0, 2.0, 2.0, 2.0]
        grad_x, grad_lam = torch.autograd.grad(out.sum(), (xs, lam))
        assert grad_x.tolist() == passes
        # d h / d lambda = clip(s, 0, L) / L - [0 < x < lambda] * x / lambda, summed.
        expected = sum(o / 2.0 - p * v / 2.0 for o, p, v in zip(out.tolist(), passes, x.tolist()))
        assert abs(float(grad_lam) - expected) < 1e-12


def test_qcfs_module_uses_the_fused_function_and_trains_lambda():
    module = resnet_cifar.QCFS(4, channels=3, initial=2.0)
    x = torch.linspace(-1, 3, 3 * 2 * 2).reshape(1, 3, 2, 2).requires_grad_()
    out = module(x)
    assert torch.equal(out, resnet_cifar.qcfs_reference(x, module.lam, 4))
    out.sum().backward()
    assert module.lam.grad is not None and module.lam.grad.shape == (3,)


def test_a_state_saved_before_a_setting_existed_resumes_with_its_default(tmp_path):
    import cifar10

    path = tmp_path / "run.state.pt"
    torch.save({"recipe": {"lr": "0.01"}, "step": 7}, path)
    assert cifar10.load_resume_state(path, {"lr": "0.01", "precision": "f32"}, False, {"precision": "f32"})["step"] == 7
    with pytest.raises(SystemExit, match="precision"):
        cifar10.load_resume_state(path, {"lr": "0.01", "precision": "bf16"}, False, {"precision": "f32"})
    with pytest.raises(SystemExit, match="lr"):
        cifar10.load_resume_state(path, {"lr": "0.02", "precision": "f32"}, False, {"precision": "f32"})
    assert cifar10.load_resume_state(path, {"lr": "0.02"}, True) is None
    # A default applies only to a setting the resuming run has: a ReLU run has no QCFS gradient.
    qcfs_defaults = {"precision": "f32", "qcfs_gradient": "levels 1..L-1"}
    assert cifar10.load_resume_state(path, {"lr": "0.01", "precision": "f32"}, False, qcfs_defaults)["step"] == 7
    with pytest.raises(SystemExit, match="qcfs_gradient"):
        cifar10.load_resume_state(path, {"lr": "0.01", "precision": "f32", "qcfs_gradient": "levels 0..L"}, False,
                                  qcfs_defaults)


def test_distillation_loss_is_hintons_soft_target_kl():
    import finetune_restructured

    student = torch.tensor([[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]], dtype=torch.float64)
    teacher = torch.tensor([[2.0, 0.0, 1.0], [0.5, 0.5, 2.0]], dtype=torch.float64)
    t = 4.0
    p = torch.softmax(teacher / t, 1)
    q = torch.softmax(student / t, 1)
    by_hand = (p * (p.log() - q.log())).sum(1).mean() * t * t
    got = finetune_restructured.distillation_loss(student, teacher, t)
    torch.testing.assert_close(got, by_hand, rtol=1e-12, atol=1e-12)
    assert float(finetune_restructured.distillation_loss(student, student, t)) == pytest.approx(0, abs=1e-12)


def test_trained_lambdas_never_fall_below_the_floor():
    import finetune_restructured

    lambdas = [torch.nn.Parameter(torch.tensor([-0.26])), torch.nn.Parameter(torch.tensor([0.5, 0.0001]))]
    finetune_restructured.keep_lambdas_positive(lambdas)
    floor = finetune_restructured.LAMBDA_FLOOR
    assert lambdas[0].tolist() == [pytest.approx(floor)]
    assert lambdas[1].tolist() == [0.5, pytest.approx(floor)]
