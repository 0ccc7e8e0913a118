import jax.numpy as jnp
import numpy as np
import pytest

from cnn_jax.ops import output_size, window_slices


def test_output_size():
    assert output_size(28, 5) == 24
    assert output_size(24, 2, 2) == 12
    assert output_size(28, 5, 2) == 12
    assert output_size(25, 2, 2) == 12  # the last row does not fit a window: dropped
    assert output_size(28, 5, 2, "SAME") == 14
    assert output_size(27, 5, 2, "SAME") == 14
    with pytest.raises(ValueError, match="padding='FULL'"):
        output_size(28, 5, 1, "FULL")
    with pytest.raises(ValueError, match="window=6 is larger than the 5-pixel input"):
        output_size(5, 6)


@pytest.mark.parametrize("window, stride", [(2, 2), (3, 2), (2, 3), ((2, 3), 1), ((3, 1), 2)])
def test_window_slices_are_the_strided_offsets(window, stride):
    x = np.arange(2 * 7 * 8 * 3, dtype=np.float32).reshape(2, 7, 8, 3)
    kh, kw = (window, window) if isinstance(window, int) else window
    oh, ow = output_size(7, kh, stride), output_size(8, kw, stride)
    slices = window_slices(jnp.asarray(x), window, stride)
    assert len(slices) == kh * kw
    for i, s in enumerate(slices):
        l, m = divmod(i, kw)  # noqa: E741
        expected = [[x[:, j * stride + l, k * stride + m] for k in range(ow)] for j in range(oh)]
        np.testing.assert_array_equal(s, np.stack([np.stack(r, 1) for r in expected], 1))
