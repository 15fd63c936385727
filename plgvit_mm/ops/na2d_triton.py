"""Fused Triton kernels for 2-D neighborhood attention with relative position bias.

Forward: one program per (batch*head, 2-D tile of TY x TX queries of one dilation group); it
streams the tile's key halo ((TY + ky - 1) x (TX + kx - 1) keys) in BLOCK_N chunks through
tensor-core dots with an online softmax, masking keys outside each query's window and adding
the bias gathered from the (tiny, cached) rpb table; it stores the output and the log-sum-exp.
Backward (FlashAttention-2 style, no atomics, deterministic):
- a query-centric kernel recomputes the probabilities, accumulates dq and writes the logit
  gradients of the k*k neighbours of every query to a (B, heads, H, W, ky*kx) buffer;
- a key-centric kernel walks each key tile's query halo (the queries whose windows can hold
  those keys: tile + k - 1 + k // 2 per axis, border windows shift) and accumulates dk, dv;
- the rpb gradient is the buffer summed per bias index through one-hot matmuls.
Runs on CUDA tensors; with TRITON_INTERPRET=1 also on CPU tensors (used by the tests).
"""

from __future__ import annotations

import functools
import os

import torch
import torch.nn.functional as F
from torch import Tensor

from .na_windows import axis_neighbors

try:
    import triton
    import triton.language as tl
except ImportError:  # pragma: no cover - depends on the installation
    triton = None

HEAD_DIMS = (16, 32, 64, 128)
DTYPES = (torch.float16, torch.bfloat16, torch.float32)
QUERY_TILE = (8, 16)
"""Forward / dq query tile (TY, TX): 128 queries, halo 14 x 22 keys for k = 7."""
KEY_TILE = (8, 8)
"""dk/dv key tile (TKY, TKX): 64 keys, query halo 17 x 17 for k = 7."""
BLOCK = 64
"""Halo chunk streamed per dot (keys in the forward / dq kernels, queries in dk/dv)."""


def _interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


def unsupported_reason(
    q: Tensor, rpb: Tensor | None, attn_drop: float, grad: bool = False
) -> str | None:
    """Why the Triton kernels cannot serve this call, or None when they can (both directions have
    kernels, so ``grad`` does not matter)."""
    if triton is None:
        return "triton is not installed"
    if q.device.type != "cuda" and not _interpreting():
        return f"device {q.device.type} (needs cuda)"
    if q.dtype not in DTYPES:
        return f"dtype {q.dtype} (needs float16, bfloat16 or float32)"
    if q.shape[-1] not in HEAD_DIMS:
        return f"head_dim {q.shape[-1]} (needs one of {HEAD_DIMS})"
    if attn_drop > 0.0:
        return "attention dropout"
    return None


if triton is not None:

    @triton.jit
    def _window_start(i, group_len, KERNEL: tl.constexpr):
        """Window start s(i) in group coordinates (spec: clamp(i - r, 0, L_g - k))."""
        return tl.minimum(tl.maximum(i - KERNEL // 2, 0), group_len - KERNEL)

    @triton.jit
    def _tile_origin(pid, H, W, DY, DX, TY: tl.constexpr, TX: tl.constexpr):
        """Program id -> (group y, group x, group lengths, first tile index y, x)."""
        n_tx = tl.cdiv(tl.cdiv(W, DX), TX)
        n_ty = tl.cdiv(tl.cdiv(H, DY), TY)
        tile_x = pid % n_tx
        rest = pid // n_tx
        tile_y = rest % n_ty
        rest = rest // n_ty
        gx = rest % DX
        gy = rest // DX
        len_y = H // DY + (gy < H % DY).to(tl.int32)
        len_x = W // DX + (gx < W % DX).to(tl.int32)
        return gy, gx, len_y, len_x, tile_y * TY, tile_x * TX

    @triton.jit
    def _logits(
        q,
        k,
        iy,
        ix,
        jy,
        jx,
        sy,
        sx,
        pair_ok,
        h,
        RPB,
        srh,
        sry,
        srx,
        KY: tl.constexpr,
        KX: tl.constexpr,
        HAS_RPB: tl.constexpr,
        PRECISION: tl.constexpr,
        QUERY_ROWS: tl.constexpr,
    ):
        """Scaled-q . k logits + bias and the window mask, as (query, key) or (key, query)."""
        if QUERY_ROWS:  # q: (M, D) rows, k: (N, D); indices (M, 1) x (1, N)
            s = tl.dot(q, tl.trans(k), input_precision=PRECISION)
        else:  # k rows: (N, M)
            s = tl.dot(k, tl.trans(q), input_precision=PRECISION)
        valid = pair_ok & (jy >= sy) & (jy < sy + KY) & (jx >= sx) & (jx < sx + KX)
        if HAS_RPB:
            bias = tl.load(
                RPB + h * srh + (jy - iy + KY - 1) * sry + (jx - ix + KX - 1) * srx,
                mask=valid,
                other=0.0,
            )
            s = s + bias
        return s, valid

    @triton.jit
    def _na2d_fwd_kernel(
        Q,
        K,
        V,
        RPB,
        OUT,
        LSE,
        sqb,
        sqy,
        sqx,
        sqh,
        skb,
        sky,
        skx,
        skh,
        svb,
        svy,
        svx,
        svh,
        srh,
        sry,
        srx,
        H,
        W,
        HEADS,
        DY,
        DX,
        scale,
        KY: tl.constexpr,
        KX: tl.constexpr,
        HEAD_DIM: tl.constexpr,
        TY: tl.constexpr,
        TX: tl.constexpr,
        BLOCK_N: tl.constexpr,
        HAS_RPB: tl.constexpr,
        PRECISION: tl.constexpr,
    ):
        pid_bh = tl.program_id(1)
        b = (pid_bh // HEADS).to(tl.int64)
        h = pid_bh % HEADS
        gy, gx, len_y, len_x, iy0, ix0 = _tile_origin(tl.program_id(0), H, W, DY, DX, TY, TX)
        offs_m = tl.arange(0, TY * TX)
        offs_d = tl.arange(0, HEAD_DIM)
        iy = iy0 + offs_m // TX
        ix = ix0 + offs_m % TX
        q_ok = (iy < len_y) & (ix < len_x)
        sy = _window_start(iy, len_y, KY)
        sx = _window_start(ix, len_x, KX)
        y = gy + iy * DY
        x = gx + ix * DX
        q = tl.load(
            Q + b * sqb + h * sqh + y[:, None] * sqy + x[:, None] * sqx + offs_d[None, :],
            mask=q_ok[:, None],
            other=0.0,
        )
        q = (q.to(tl.float32) * scale).to(Q.dtype.element_ty)
        SY: tl.constexpr = TY + KY - 1
        SX: tl.constexpr = TX + KX - 1
        hy0 = tl.minimum(_window_start(iy0, len_y, KY), tl.maximum(len_y - SY, 0))
        hx0 = tl.minimum(_window_start(ix0, len_x, KX), tl.maximum(len_x - SX, 0))
        m_i = tl.full([TY * TX], -1.0e30, tl.float32)
        l_i = tl.zeros([TY * TX], tl.float32)
        acc = tl.zeros([TY * TX, HEAD_DIM], tl.float32)
        for start_n in range(0, SY * SX, BLOCK_N):
            offs_n = start_n + tl.arange(0, BLOCK_N)
            jy = hy0 + offs_n // SX
            jx = hx0 + offs_n % SX
            k_ok = (offs_n < SY * SX) & (jy < len_y) & (jx < len_x)
            ky_pos = gy + jy * DY
            kx_pos = gx + jx * DX
            k = tl.load(
                K
                + b * skb
                + h * skh
                + ky_pos[:, None] * sky
                + kx_pos[:, None] * skx
                + offs_d[None, :],
                mask=k_ok[:, None],
                other=0.0,
            )
            v = tl.load(
                V
                + b * svb
                + h * svh
                + ky_pos[:, None] * svy
                + kx_pos[:, None] * svx
                + offs_d[None, :],
                mask=k_ok[:, None],
                other=0.0,
            )
            s, valid = _logits(
                q,
                k,
                iy[:, None],
                ix[:, None],
                jy[None, :],
                jx[None, :],
                sy[:, None],
                sx[:, None],
                k_ok[None, :] & q_ok[:, None],
                h,
                RPB,
                srh,
                sry,
                srx,
                KY,
                KX,
                HAS_RPB,
                PRECISION,
                True,
            )
            s = tl.where(valid, s, -1.0e30)
            m_new = tl.maximum(m_i, tl.max(s, 1))
            alpha = tl.exp(m_i - m_new)
            p = tl.where(valid, tl.exp(s - m_new[:, None]), 0.0)
            l_i = l_i * alpha + tl.sum(p, 1)
            acc = acc * alpha[:, None] + tl.dot(
                p.to(V.dtype.element_ty), v, input_precision=PRECISION
            )
            m_i = m_new
        acc = acc / l_i[:, None]
        token = (b * H + y) * W + x
        tl.store(
            OUT + token[:, None] * (HEADS * HEAD_DIM) + h * HEAD_DIM + offs_d[None, :],
            acc.to(OUT.dtype.element_ty),
            mask=q_ok[:, None],
        )
        tl.store(LSE + token * HEADS + h, m_i + tl.log(l_i), mask=q_ok)

    @triton.jit
    def _na2d_bwd_dq_kernel(
        Q,
        K,
        V,
        RPB,
        DO,
        LSE,
        DELTA,
        DQ,
        DS,
        sqb,
        sqy,
        sqx,
        sqh,
        skb,
        sky,
        skx,
        skh,
        svb,
        svy,
        svx,
        svh,
        srh,
        sry,
        srx,
        H,
        W,
        HEADS,
        DY,
        DX,
        scale,
        KY: tl.constexpr,
        KX: tl.constexpr,
        HEAD_DIM: tl.constexpr,
        TY: tl.constexpr,
        TX: tl.constexpr,
        BLOCK_N: tl.constexpr,
        HAS_RPB: tl.constexpr,
        STORE_DS: tl.constexpr,
        PRECISION: tl.constexpr,
    ):
        pid_bh = tl.program_id(1)
        b = (pid_bh // HEADS).to(tl.int64)
        h = pid_bh % HEADS
        gy, gx, len_y, len_x, iy0, ix0 = _tile_origin(tl.program_id(0), H, W, DY, DX, TY, TX)
        offs_m = tl.arange(0, TY * TX)
        offs_d = tl.arange(0, HEAD_DIM)
        iy = iy0 + offs_m // TX
        ix = ix0 + offs_m % TX
        q_ok = (iy < len_y) & (ix < len_x)
        sy = _window_start(iy, len_y, KY)
        sx = _window_start(ix, len_x, KX)
        y = gy + iy * DY
        x = gx + ix * DX
        token = (b * H + y) * W + x
        q = tl.load(
            Q + b * sqb + h * sqh + y[:, None] * sqy + x[:, None] * sqx + offs_d[None, :],
            mask=q_ok[:, None],
            other=0.0,
        )
        q = (q.to(tl.float32) * scale).to(Q.dtype.element_ty)
        do = tl.load(
            DO + token[:, None] * (HEADS * HEAD_DIM) + h * HEAD_DIM + offs_d[None, :],
            mask=q_ok[:, None],
            other=0.0,
        )
        lse = tl.load(LSE + token * HEADS + h, mask=q_ok, other=0.0)
        delta = tl.load(DELTA + token * HEADS + h, mask=q_ok, other=0.0)
        SY: tl.constexpr = TY + KY - 1
        SX: tl.constexpr = TX + KX - 1
        hy0 = tl.minimum(_window_start(iy0, len_y, KY), tl.maximum(len_y - SY, 0))
        hx0 = tl.minimum(_window_start(ix0, len_x, KX), tl.maximum(len_x - SX, 0))
        dq = tl.zeros([TY * TX, HEAD_DIM], tl.float32)
        for start_n in range(0, SY * SX, BLOCK_N):
            offs_n = start_n + tl.arange(0, BLOCK_N)
            jy = hy0 + offs_n // SX
            jx = hx0 + offs_n % SX
            k_ok = (offs_n < SY * SX) & (jy < len_y) & (jx < len_x)
            ky_pos = gy + jy * DY
            kx_pos = gx + jx * DX
            k = tl.load(
                K
                + b * skb
                + h * skh
                + ky_pos[:, None] * sky
                + kx_pos[:, None] * skx
                + offs_d[None, :],
                mask=k_ok[:, None],
                other=0.0,
            )
            v = tl.load(
                V
                + b * svb
                + h * svh
                + ky_pos[:, None] * svy
                + kx_pos[:, None] * svx
                + offs_d[None, :],
                mask=k_ok[:, None],
                other=0.0,
            )
            s, valid = _logits(
                q,
                k,
                iy[:, None],
                ix[:, None],
                jy[None, :],
                jx[None, :],
                sy[:, None],
                sx[:, None],
                k_ok[None, :] & q_ok[:, None],
                h,
                RPB,
                srh,
                sry,
                srx,
                KY,
                KX,
                HAS_RPB,
                PRECISION,
                True,
            )
            p = tl.where(valid, tl.exp(s - lse[:, None]), 0.0)
            dp = tl.dot(do, tl.trans(v), input_precision=PRECISION)
            ds = p * (dp - delta[:, None])
            dq += tl.dot(ds.to(K.dtype.element_ty), k, input_precision=PRECISION)
            if STORE_DS:
                neighbour = (jy[None, :] - sy[:, None]) * KX + (jx[None, :] - sx[:, None])
                row = ((b * HEADS + h) * H + y) * W + x
                tl.store(DS + row[:, None] * (KY * KX) + neighbour, ds, mask=valid)
        tl.store(
            DQ + token[:, None] * (HEADS * HEAD_DIM) + h * HEAD_DIM + offs_d[None, :],
            (dq * scale).to(DQ.dtype.element_ty),
            mask=q_ok[:, None],
        )

    @triton.jit
    def _na2d_bwd_dkdv_kernel(
        Q,
        K,
        V,
        RPB,
        DO,
        LSE,
        DELTA,
        DK,
        DV,
        sqb,
        sqy,
        sqx,
        sqh,
        skb,
        sky,
        skx,
        skh,
        svb,
        svy,
        svx,
        svh,
        srh,
        sry,
        srx,
        H,
        W,
        HEADS,
        DY,
        DX,
        scale,
        KY: tl.constexpr,
        KX: tl.constexpr,
        HEAD_DIM: tl.constexpr,
        TKY: tl.constexpr,
        TKX: tl.constexpr,
        BLOCK_M: tl.constexpr,
        HAS_RPB: tl.constexpr,
        PRECISION: tl.constexpr,
    ):
        pid_bh = tl.program_id(1)
        b = (pid_bh // HEADS).to(tl.int64)
        h = pid_bh % HEADS
        gy, gx, len_y, len_x, jy0, jx0 = _tile_origin(tl.program_id(0), H, W, DY, DX, TKY, TKX)
        offs_n = tl.arange(0, TKY * TKX)
        offs_d = tl.arange(0, HEAD_DIM)
        jy = jy0 + offs_n // TKX
        jx = jx0 + offs_n % TKX
        k_ok = (jy < len_y) & (jx < len_x)
        ky_pos = gy + jy * DY
        kx_pos = gx + jx * DX
        k = tl.load(
            K + b * skb + h * skh + ky_pos[:, None] * sky + kx_pos[:, None] * skx + offs_d[None, :],
            mask=k_ok[:, None],
            other=0.0,
        )
        v = tl.load(
            V + b * svb + h * svh + ky_pos[:, None] * svy + kx_pos[:, None] * svx + offs_d[None, :],
            mask=k_ok[:, None],
            other=0.0,
        )
        # queries whose window can hold key j: from 0 (j < k) or j - k // 2, at most
        # tile + k - 1 + k // 2 of them per axis (windows shift at the borders)
        QY: tl.constexpr = TKY + KY - 1 + KY // 2
        QX: tl.constexpr = TKX + KX - 1 + KX // 2
        qy0 = tl.where(jy0 < KY, 0, jy0 - KY // 2)
        qx0 = tl.where(jx0 < KX, 0, jx0 - KX // 2)
        dk = tl.zeros([TKY * TKX, HEAD_DIM], tl.float32)
        dv = tl.zeros([TKY * TKX, HEAD_DIM], tl.float32)
        for start_m in range(0, QY * QX, BLOCK_M):
            offs_m = start_m + tl.arange(0, BLOCK_M)
            iy = qy0 + offs_m // QX
            ix = qx0 + offs_m % QX
            q_ok = (offs_m < QY * QX) & (iy < len_y) & (ix < len_x)
            sy = _window_start(iy, len_y, KY)
            sx = _window_start(ix, len_x, KX)
            y = gy + iy * DY
            x = gx + ix * DX
            token = (b * H + y) * W + x
            q = tl.load(
                Q + b * sqb + h * sqh + y[:, None] * sqy + x[:, None] * sqx + offs_d[None, :],
                mask=q_ok[:, None],
                other=0.0,
            )
            q = (q.to(tl.float32) * scale).to(Q.dtype.element_ty)
            do = tl.load(
                DO + token[:, None] * (HEADS * HEAD_DIM) + h * HEAD_DIM + offs_d[None, :],
                mask=q_ok[:, None],
                other=0.0,
            )
            lse = tl.load(LSE + token * HEADS + h, mask=q_ok, other=0.0)
            delta = tl.load(DELTA + token * HEADS + h, mask=q_ok, other=0.0)
            s_t, valid = _logits(
                q,
                k,
                iy[None, :],
                ix[None, :],
                jy[:, None],
                jx[:, None],
                sy[None, :],
                sx[None, :],
                k_ok[:, None] & q_ok[None, :],
                h,
                RPB,
                srh,
                sry,
                srx,
                KY,
                KX,
                HAS_RPB,
                PRECISION,
                False,
            )
            p_t = tl.where(valid, tl.exp(s_t - lse[None, :]), 0.0)
            dv += tl.dot(p_t.to(DO.dtype.element_ty), do, input_precision=PRECISION)
            dp_t = tl.dot(v, tl.trans(do), input_precision=PRECISION)
            ds_t = p_t * (dp_t - delta[None, :])
            dk += tl.dot(ds_t.to(Q.dtype.element_ty), q, input_precision=PRECISION)
        key = (b * H + ky_pos) * W + kx_pos
        out = key[:, None] * (HEADS * HEAD_DIM) + h * HEAD_DIM + offs_d[None, :]
        tl.store(DK + out, dk.to(DK.dtype.element_ty), mask=k_ok[:, None])
        tl.store(DV + out, dv.to(DV.dtype.element_ty), mask=k_ok[:, None])


def _strides(t: Tensor) -> tuple[int, int, int, int]:
    """(batch, y, x, head) element strides of a (B, H, W, heads, d) tensor."""
    return t.stride(0), t.stride(1), t.stride(2), t.stride(3)


def _n_tiles(size: int, dilation: int, tile: int) -> int:
    return dilation * triton.cdiv(triton.cdiv(size, dilation), tile)


@functools.lru_cache(maxsize=64)
def _bias_one_hot(length: int, kernel: int, dilation: int, device: torch.device) -> Tensor:
    """(length, kernel, 2*kernel-1) float32: neighbour t of query i uses bias index b."""
    _, bias = axis_neighbors(length, kernel, dilation)
    return F.one_hot(bias, 2 * kernel - 1).to(device=device, dtype=torch.float32)


class _NA2DTriton(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, k, v, rpb, kernel_size, dilation, scale):
        q, k, v = (t if t.stride(-1) == 1 else t.contiguous() for t in (q, k, v))
        batch, height, width, heads, dim = q.shape
        (ky, kx), (dy, dx) = kernel_size, dilation
        table = rpb.detach().float().contiguous() if rpb is not None else q.new_zeros(1, 1, 1)
        out = torch.empty(q.shape, dtype=q.dtype, device=q.device)
        lse = torch.empty(q.shape[:4], dtype=torch.float32, device=q.device)
        ty, tx = QUERY_TILE
        grid = (_n_tiles(height, dy, ty) * _n_tiles(width, dx, tx), batch * heads)
        _na2d_fwd_kernel[grid](
            q,
            k,
            v,
            table,
            out,
            lse,
            *_strides(q),
            *_strides(k),
            *_strides(v),
            *table.stride(),
            height,
            width,
            heads,
            dy,
            dx,
            scale,
            KY=ky,
            KX=kx,
            HEAD_DIM=dim,
            TY=ty,
            TX=tx,
            BLOCK_N=BLOCK,
            HAS_RPB=rpb is not None,
            PRECISION="ieee" if q.dtype == torch.float32 else "tf32",
        )
        ctx.save_for_backward(q, k, v, table, out, lse)
        ctx.has_rpb = rpb is not None
        ctx.rpb_dtype = rpb.dtype if rpb is not None else None
        ctx.args = (kernel_size, dilation, scale)
        return out

    @staticmethod
    def backward(ctx, grad_out):
        q, k, v, table, out, lse = ctx.saved_tensors
        (ky, kx), (dy, dx) = kernel_size, dilation = ctx.args[:2]
        scale = ctx.args[2]
        batch, height, width, heads, dim = q.shape
        grad_out = grad_out.contiguous()
        delta = (grad_out.float() * out.float()).sum(-1)
        dq, dk, dv = (torch.empty(q.shape, dtype=q.dtype, device=q.device) for _ in range(3))
        need_rpb = ctx.has_rpb and ctx.needs_input_grad[3]
        ds = (
            torch.empty(batch, heads, height, width, ky * kx, device=q.device)
            if need_rpb
            else q.new_empty(1, dtype=torch.float32)
        )
        common = (
            *_strides(q),
            *_strides(k),
            *_strides(v),
            *table.stride(),
            height,
            width,
            heads,
            dy,
            dx,
            scale,
        )
        precision = "ieee" if q.dtype == torch.float32 else "tf32"
        ty, tx = QUERY_TILE
        grid = (_n_tiles(height, dy, ty) * _n_tiles(width, dx, tx), batch * heads)
        _na2d_bwd_dq_kernel[grid](
            q,
            k,
            v,
            table,
            grad_out,
            lse,
            delta,
            dq,
            ds,
            *common,
            KY=ky,
            KX=kx,
            HEAD_DIM=dim,
            TY=ty,
            TX=tx,
            BLOCK_N=BLOCK,
            HAS_RPB=ctx.has_rpb,
            STORE_DS=need_rpb,
            PRECISION=precision,
        )
        tky, tkx = KEY_TILE
        grid = (_n_tiles(height, dy, tky) * _n_tiles(width, dx, tkx), batch * heads)
        _na2d_bwd_dkdv_kernel[grid](
            q,
            k,
            v,
            table,
            grad_out,
            lse,
            delta,
            dk,
            dv,
            *common,
            KY=ky,
            KX=kx,
            HEAD_DIM=dim,
            TKY=tky,
            TKX=tkx,
            BLOCK_M=BLOCK,
            HAS_RPB=ctx.has_rpb,
            PRECISION=precision,
        )
        grad_rpb = None
        if need_rpb:
            one_hot_y = _bias_one_hot(height, ky, dy, q.device)
            one_hot_x = _bias_one_hot(width, kx, dx, q.device)
            per_query = ds.sum(0).view(heads, height, width, ky, kx)
            grad_rpb = torch.einsum("hyxab,yap,xbq->hpq", per_query, one_hot_y, one_hot_x)
            grad_rpb = grad_rpb.to(ctx.rpb_dtype)
        return dq, dk, dv, grad_rpb, None, None, None


def na2d_triton(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    kernel_size: tuple[int, int],
    dilation: tuple[int, int],
    rpb: Tensor | None,
    scale: float,
    attn_drop: float = 0.0,
) -> Tensor:
    """Neighborhood attention with the fused kernels (see :func:`plgvit_mm.ops.na2d`).

    Requires ``attn_drop == 0`` (the dispatcher falls back to the reference otherwise).
    """
    if attn_drop > 0.0:
        raise ValueError(f"the Triton backend has no attention dropout, got attn_drop={attn_drop}")
    return _NA2DTriton.apply(q, k, v, rpb, kernel_size, dilation, scale)
