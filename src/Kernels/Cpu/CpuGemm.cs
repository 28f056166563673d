using System.Numerics.Tensors;
using System.Runtime.Intrinsics;
using Sora.Runtime;
using Sora.Runtime.Gguf;
using Tensor = Sora.Runtime.Tensor;

namespace Sora.Kernels.Cpu;

/// <summary>
/// y = epilogue(x·Wᵀ + b) through <see cref="BlockedGemm"/>: the work is cut into row (or, for few rows,
/// column) ranges run by separate workers, each with its own packing buffers.
/// </summary>
internal static unsafe class CpuGemm
{
    public static void Run(CpuBackend backend, float* x, long ldx, WeightRows weights, float* y, long ldy, int m, int n, int k, GemmTail tail)
    {
        // Enough row ranges to balance two noisy workers, but each big enough to amortise packing W.
        int mTasks = Math.Clamp(m / (4 * MicroKernel.MR), 1, backend.Threads * 2);
        int nTasks = mTasks >= backend.Threads ? 1 : Math.Clamp(n / (4 * MicroKernel.NR), 1, backend.Threads * 2 / mTasks);
        backend.For(mTasks * nTasks, task =>
        {
            int mt = task / nTasks, nt = task % nTasks;
            int m0 = (int)((long)m * mt / mTasks), m1 = (int)((long)m * (mt + 1) / mTasks);
            int n0 = RoundDown((int)((long)n * nt / nTasks)), n1 = nt == nTasks - 1 ? n : RoundDown((int)((long)n * (nt + 1) / nTasks));
            var a = new RowsPackA(x + m0 * ldx, ldx);
            var b = new WeightPackB(weights, n0);
            var t = new GemmBlockTail(tail, y + m0 * ldy, ldy, m0, n0);
            BlockedGemm.Run(a, b, t, y + m0 * ldy + n0, ldy, m1 - m0, n1 - n0, k, weights.DepthAlignment);
        });
    }

    private static int RoundDown(int v) => v / MicroKernel.NR * MicroKernel.NR;
}

/// <summary>Row-major [M, K] activations with row stride ld as the left operand.</summary>
internal readonly unsafe struct RowsPackA(float* x, long ld) : IPackA
{
    public void Pack(int m0, int mc, int k0, int kc, float* dst)
    {
        const int MR = MicroKernel.MR;
        for (int ir = 0; ir < mc; ir += MR)
        {
            float* panel = dst + (long)ir * kc;
            int mr = Math.Min(MR, mc - ir);
            Transpose.Block(x + (m0 + ir) * ld + k0, ld, mr, kc, panel, MR);
            for (int i = mr; i < MR; i++)
                for (int p = 0; p < kc; p++) panel[p * MR + i] = 0;
        }
    }
}

/// <summary>
/// Rows of a weight [N, K] in any stored form: a dense F32/F16/BF16 tensor, fp8 codes times a scale, or ggml blocks
/// (expanded with <see cref="GgmlDequantize"/>, bit-exact with ggml) — read a row segment at a time while packing.
/// </summary>
internal readonly unsafe struct WeightRows
{
    private readonly HostStorage? _dense;
    private readonly long _offset;
    private readonly byte* _encoded;
    private readonly DType _fp8;
    private readonly float _scale;
    private readonly GgmlType _ggml;
    private readonly bool _isGgml;

    private WeightRows(int k, HostStorage? dense, long offset, byte* encoded, DType fp8, float scale, GgmlType ggml, bool isGgml)
    {
        K = k;
        _dense = dense;
        _offset = offset;
        _encoded = encoded;
        _fp8 = fp8;
        _scale = scale;
        _ggml = ggml;
        _isGgml = isGgml;
    }

    public int K { get; }

    /// <summary>K blocks of the GEMM should be multiples of this: a ggml block size when rows start on blocks (no partial blocks decoded twice).</summary>
    public int DepthAlignment => _isGgml && K % GgmlTypes.BlockSize(_ggml) == 0 ? GgmlTypes.BlockSize(_ggml) : 1;

    /// <summary>A dense host tensor W [N, K] (F32, F16 or BF16).</summary>
    public static WeightRows Dense(Tensor w, int k) => new(k, (HostStorage)w.Storage, w.Offset, null, default, 1f, default, false);

    /// <summary>Any host weight kind but LoRA (the side path runs as separate GEMMs).</summary>
    public static WeightRows Of(Weight w, string name) => w switch
    {
        DenseWeight d => Dense(Host(d.Tensor, name), w.In),
        Fp8Weight f => new(w.In, null, 0, (byte*)((HostStorage)Host(f.Codes, name).Storage).Pointer + f.Codes.Offset, f.Codes.DType, f.Scale, default, false),
        BlockWeight b => new(w.In, null, 0, HostPointer(b.Blocks, name), default, 1f, b.Type, true),
        _ => throw new ArgumentException($"{name}: the CPU GEMM does not multiply {w.Format} weights directly", name),
    };

    private static Tensor Host(Tensor t, string name)
    {
        HostArgs.Host(t, name);
        HostArgs.RequireContiguous(t, name);
        return t;
    }

    private static byte* HostPointer(DeviceBytes bytes, string name)
    {
        if (bytes is not HostBytes host) throw new ArgumentException($"{name}: blocks on {bytes.Location} are not host memory: upload them with the CPU backend", name);
        ObjectDisposedException.ThrowIf(host.IsDisposed, host);
        return host.Pointer;
    }

    /// <summary>Pointer to row n when the weight is dense F32 (read in place), else null.</summary>
    public float* F32Row(int row) => _dense is { DType: DType.F32 } ? (float*)_dense.Pointer + _offset + (long)row * K : null;

    /// <summary>Converts row segment [k0, k0+count) to float32.</summary>
    public void Read(int row, int k0, int count, float* dst)
    {
        long first = (long)row * K + k0;
        if (_dense is not null) HostArgs.ToFloat(_dense, _offset + first, count, dst);
        else if (_isGgml)
        {
            if (_ggml == GgmlType.F16)
            {
                TensorPrimitives.ConvertToSingle(new ReadOnlySpan<Half>((Half*)_encoded + first, count), new Span<float>(dst, count));
                return;
            }
            if (_ggml == GgmlType.BF16)
            {
                HostArgs.Bf16ToFloat((ushort*)_encoded + first, dst, count);
                return;
            }
            if (_ggml == GgmlType.Q8_0 && first % 32 == 0 && count % 32 == 0)
            {
                Q8_0Blocks(_encoded + first / 32 * 34, dst, count / 32);
                return;
            }
            if (_ggml == GgmlType.Q4_K && first % 256 == 0 && count % 256 == 0)
            {
                Q4_KBlocks(_encoded + first / 256 * 144, dst, count / 256);
                return;
            }
            int block = GgmlTypes.BlockSize(_ggml), bytes = GgmlTypes.BlockBytes(_ggml);
            long b0 = first / block, b1 = (first + count + block - 1) / block;
            var data = new ReadOnlySpan<byte>(_encoded + b0 * bytes, checked((int)((b1 - b0) * bytes)));
            GgmlDequantize.Range(_ggml, data, first - b0 * block, new Span<float>(dst, count));
        }
        else
        {
            byte* codes = _encoded + first;
            float scale = _scale;
            if (_fp8 == DType.F8E4M3) for (int i = 0; i < count; i++) dst[i] = Float8.E4M3ToFloat(codes[i]) * scale;
            else for (int i = 0; i < count; i++) dst[i] = Float8.E5M2ToFloat(codes[i]) * scale;
        }
    }

    /// <summary>
    /// Whole Q4_K blocks, vectorised: per group y = (d·sc)·q - (dmin·m), the product and the difference rounded
    /// separately as in ggml (no FMA), so the values are ggml's.
    /// </summary>
    private static void Q4_KBlocks(byte* blocks, float* dst, int count)
    {
        for (int b = 0; b < count; b++, blocks += 144)
        {
            float d = (float)*(Half*)blocks, min = (float)*(Half*)(blocks + 2);
            var scales = new ReadOnlySpan<byte>(blocks + 4, 12);
            for (int g = 0; g < 8; g += 2, dst += 64)
            {
                var q = Vector256.Load(blocks + 16 + 16 * g);
                var (sc1, m1) = ScaleMinK4(g, scales);
                var (sc2, m2) = ScaleMinK4(g + 1, scales);
                Nibbles(q & Vector256.Create((byte)0x0F), d * sc1, min * m1, dst);
                Nibbles(Vector256.ShiftRightLogical(q, 4), d * sc2, min * m2, dst + 32);
            }
        }
    }

    /// <summary>y[i] = scale·q[i] - offset for 32 small unsigned values.</summary>
    private static void Nibbles(Vector256<byte> q, float scale, float offset, float* y)
    {
        var s = Vector256.Create(scale);
        var o = Vector256.Create(offset);
        var (lo, hi) = Vector256.Widen(q);
        var (a, b) = Vector256.Widen(lo);
        var (c, e) = Vector256.Widen(hi);
        (Vector256.ConvertToSingle(a.AsInt32()) * s - o).Store(y);
        (Vector256.ConvertToSingle(b.AsInt32()) * s - o).Store(y + 8);
        (Vector256.ConvertToSingle(c.AsInt32()) * s - o).Store(y + 16);
        (Vector256.ConvertToSingle(e.AsInt32()) * s - o).Store(y + 24);
    }

    /// <summary>The six-bit scale and min of group j (ggml's get_scale_min_k4).</summary>
    private static (int Scale, int Min) ScaleMinK4(int j, ReadOnlySpan<byte> q) => j < 4
        ? (q[j] & 63, q[j + 4] & 63)
        : ((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4), (q[j + 4] >> 4) | ((q[j] >> 6) << 4));

    /// <summary>Whole Q8_0 blocks, vectorised: y = q·d (an exact int → float conversion and one product, as ggml's).</summary>
    private static void Q8_0Blocks(byte* blocks, float* dst, int count)
    {
        for (int b = 0; b < count; b++, blocks += 34, dst += 32)
        {
            var y = new Span<float>(dst, 32);
            TensorPrimitives.ConvertChecked<sbyte, float>(new ReadOnlySpan<sbyte>(blocks + 2, 32), y);
            TensorPrimitives.Multiply(y, (float)*(Half*)blocks, y);
        }
    }
}

/// <summary>Wᵀ as the right operand: column n of B is row n of W, converted (F16/BF16) while packing.</summary>
internal readonly unsafe struct WeightPackB(WeightRows w, int nBase) : IPackB
{
    public void Pack(int n0, int nc, int k0, int kc, float* dst)
    {
        const int NR = MicroKernel.NR;
        float* rows = stackalloc float[NR * BlockedGemm.KC];
        for (int jr = 0; jr < nc; jr += NR)
        {
            float* panel = dst + (long)jr * kc;
            int nr = Math.Min(NR, nc - jr);
            int first = nBase + n0 + jr;
            float* src = w.F32Row(first);
            long lds = w.K;
            if (src == null)
            {
                for (int j = 0; j < nr; j++) w.Read(first + j, k0, kc, rows + j * kc);
                src = rows;
                lds = kc;
            }
            else src += k0;
            Transpose.Block(src, lds, nr, kc, panel, NR);
            for (int j = nr; j < NR; j++)
                for (int p = 0; p < kc; p++) panel[p * NR + j] = 0;
        }
    }
}

/// <summary>Applies the GEMM epilogue to finished blocks (rows relative to the task's first row).</summary>
internal readonly unsafe struct GemmBlockTail(GemmTail tail, float* y, long ldy, int mBase, int nBase) : IBlockTail
{
    public void Apply(int m0, int mc, int n0, int nc)
    {
        for (int r = m0; r < m0 + mc; r++) tail.Apply(y + r * ldy, mBase + r, nBase + n0, nc);
    }
}
