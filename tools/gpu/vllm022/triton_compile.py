"""A Triton kernel whose block is not a power of two: the compiler rejects tl.arange."""

import torch
import triton
import triton.language as tl


@triton.jit
def scale_rows(x_ptr, out_ptr, n_cols, BLOCK: tl.constexpr):
    row = tl.program_id(0)
    cols = tl.arange(0, BLOCK)
    mask = cols < n_cols
    x = tl.load(x_ptr + row * n_cols + cols, mask=mask)
    tl.store(out_ptr + row * n_cols + cols, x * 2.0, mask=mask)


x = torch.randn(4, 100, device="cuda")
out = torch.empty_like(x)
scale_rows[(4,)](x, out, 100, BLOCK=100)
torch.cuda.synchronize()
print("no error")
