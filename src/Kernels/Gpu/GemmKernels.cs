using ILGPU;
using ILGPU.Algorithms;

namespace Sora.Kernels.Gpu;

/// <summary>Where the GEMM's left operand A[M, K] comes from: a dense matrix, or a convolution's virtual im2col.</summary>
public interface IGemmInput
{
    /// <summary>A[row, k]; only called with row &lt; M and k &lt; K.</summary>
    float Load(int row, int k);
}

/// <summary>Where y = A·Wᵀ goes: the fused epilogue and the store.</summary>
public interface IGemmOutput
{
    void Store(int row, int col, float acc);
}

/// <summary>Row-major A with a row stride.</summary>
public readonly struct DenseInput(ArrayView<float> x, long ld) : IGemmInput
{
    public readonly ArrayView<float> X = x;
    public readonly long Ld = ld;
    public float Load(int row, int k) => X[row * Ld + k];
}

/// <summary>
/// The implicit im2col of a 3D convolution over x [Cin, T, H, W]: row = output voxel (t, h, w), k = (ci, dt, dh, dw).
/// The time axis is virtual: frames [0, ZeroFront) are zero padding, [ZeroFront, XStart) read the cache, then x,
/// then zero padding; out-of-range rows and columns read zero.
/// </summary>
public readonly struct ConvInput : IGemmInput
{
    public readonly ArrayView<float> X, Cache;
    public readonly int T, H, W, CacheFrames, ZeroFront, XStart;
    public readonly int KT, KH, KW, ST, SH, SW, PadH0, PadW0;
    public readonly int OutH, OutW;

    public ConvInput(ArrayView<float> x, ArrayView<float> cache, int t, int h, int w, int cacheFrames, int zeroFront, int xStart,
        int kt, int kh, int kw, int st, int sh, int sw, int padH0, int padW0, int outH, int outW)
    {
        X = x; Cache = cache;
        T = t; H = h; W = w; CacheFrames = cacheFrames; ZeroFront = zeroFront; XStart = xStart;
        KT = kt; KH = kh; KW = kw; ST = st; SH = sh; SW = sw; PadH0 = padH0; PadW0 = padW0;
        OutH = outH; OutW = outW;
    }

    public float Load(int row, int k)
    {
        int ow = row % OutW, rest = row / OutW;
        int oh = rest % OutH, ot = rest / OutH;
        int dw = k % KW; k /= KW;
        int dh = k % KH; k /= KH;
        int dt = k % KT;
        int ci = k / KT;
        int hi = oh * SH + dh - PadH0, wi = ow * SW + dw - PadW0;
        if (hi < 0 || hi >= H || wi < 0 || wi >= W) return 0f;
        int u = ot * ST + dt;
        long plane = (long)H * W, pos = (long)hi * W + wi;
        if (u < ZeroFront) return 0f;
        if (u < XStart) return Cache[((long)ci * CacheFrames + (u - ZeroFront)) * plane + pos];
        if (u < XStart + T) return X[((long)ci * T + (u - XStart)) * plane + pos];
        return 0f;
    }
}

/// <summary>Weights W[N, K] row-major in any storage dtype, widened while loading the tile.</summary>
public readonly struct WeightRows<TW>(TW w, int k) : IGemmInput where TW : struct, IReadFloat
{
    public readonly TW W = w;
    public readonly int K = k;
    public float Load(int row, int k) => W.Read((long)row * K + k);
}

/// <summary>Activation applied after the bias.</summary>
public interface IActivation
{
    float Apply(float v);
}

public readonly struct Identity : IActivation
{
    public float Apply(float v) => v;
}

public readonly struct GeluTanhAct : IActivation
{
    public float Apply(float v) => Activations.GeluTanh(v);
}

public readonly struct SiluAct : IActivation
{
    public float Apply(float v) => Activations.Silu(v);
}

public static class Activations
{
    /// <summary>
    /// gelu_tanh(v) = 0.5·v·(1 + tanh(u)) with u = √(2/π)·(v + 0.044715·v³), computed as v·σ(2u) = v / (1 + e^(−2u)):
    /// the same function without tanh, whose fast PTX form (tanh.approx, ~2⁻¹¹ relative error) is too coarse
    /// for f32 parity, and without cancellation for negative v.
    /// </summary>
    public static float GeluTanh(float v)
    {
        float u = 0.7978845608028654f * (v + 0.044715f * v * v * v);
        return v / (1f + XMath.Exp(-2f * u));
    }

    public static float Silu(float v) => v / (1f + XMath.Exp(-v));
}

/// <summary>y = act(acc + bias) into a row-strided matrix.</summary>
public readonly struct ActivationOutput<TAct>(ArrayView<float> y, long ldy, ArrayView<float> bias, int hasBias) : IGemmOutput
    where TAct : struct, IActivation
{
    public readonly ArrayView<float> Y = y, Bias = bias;
    public readonly long Ldy = ldy;
    public readonly int HasBias = hasBias;

    public void Store(int row, int col, float acc)
    {
        float v = HasBias != 0 ? acc + Bias[col] : acc;
        Y[row * Ldy + col] = default(TAct).Apply(v);
    }
}

/// <summary>
/// y = residual + (gateBase + gate[sets[row]]) ⊙ (acc + bias): the GatedResidual epilogue with a gate per
/// modulation set (gate rows Ldg apart).
/// </summary>
public readonly struct GatedRowsOutput(ArrayView<float> y, long ldy, ArrayView<float> bias, int hasBias,
    ArrayView<float> residual, long ldr, ArrayView<float> gateBase, ArrayView<float> gate, long ldg, ArrayView<int> sets) : IGemmOutput
{
    public readonly ArrayView<float> Y = y, Bias = bias, Residual = residual, GateBase = gateBase, Gate = gate;
    public readonly ArrayView<int> Sets = sets;
    public readonly long Ldy = ldy, Ldr = ldr, Ldg = ldg;
    public readonly int HasBias = hasBias;

    public void Store(int row, int col, float acc)
    {
        float v = HasBias != 0 ? acc + Bias[col] : acc;
        v *= GateBase[col] + Gate[Sets[row] * Ldg + col];
        // Read before write: the same thread owns y[row, col], so residual == y is safe.
        Y[row * Ldy + col] = Residual[row * Ldr + col] + v;
    }
}

/// <summary>y = residual + gate ⊙ (acc + bias); the gate is all ones for AddResidual. residual may be y.</summary>
public readonly struct ResidualOutput(ArrayView<float> y, long ldy, ArrayView<float> bias, int hasBias,
    ArrayView<float> residual, long ldr, ArrayView<float> gate, int hasGate) : IGemmOutput
{
    public readonly ArrayView<float> Y = y, Bias = bias, Residual = residual, Gate = gate;
    public readonly long Ldy = ldy, Ldr = ldr;
    public readonly int HasBias = hasBias, HasGate = hasGate;

    public void Store(int row, int col, float acc)
    {
        float v = HasBias != 0 ? acc + Bias[col] : acc;
        if (HasGate != 0) v *= Gate[col];
        // Read before write: the same thread owns y[row, col], so residual == y is safe.
        Y[row * Ldy + col] = Residual[row * Ldr + col] + v;
    }
}

/// <summary>Convolution output: y[col = cout, row = voxel] = acc + bias[cout] in [Cout, T'·H'·W'].</summary>
public readonly struct ChannelFirstOutput(ArrayView<float> y, long voxels, ArrayView<float> bias, int hasBias) : IGemmOutput
{
    public readonly ArrayView<float> Y = y, Bias = bias;
    public readonly long Voxels = voxels;
    public readonly int HasBias = hasBias;

    public void Store(int row, int col, float acc) => Y[col * Voxels + row] = HasBias != 0 ? acc + Bias[col] : acc;
}

/// <summary>
/// One tiled, register-blocked GEMM: y[M, N] = out(A[M, K] · W[N, K]ᵀ). A group of TX×TY threads computes a
/// (4·TY)×(4·TX) tile, each thread a 4×4 block of rows ty + i·TY and columns tx + j·TX (strided so shared
/// reads are broadcasts or consecutive, and stores coalesce). K advances in steps of tileK through dynamic
/// shared memory holding A and W tiles transposed to [k][row]. The 4×4 accumulators are separate locals
/// because ILGPU 1.5 does not unroll loops (a local array would spill to local memory).
/// </summary>
public static class GemmKernels
{
    public const int Block = 4;

    /// <summary>
    /// Floats of shared memory per group: a fixed static allocation, because ILGPU 1.5.3's OpenCL backend
    /// keeps the dynamic shared-memory pointer in a program-scope variable that concurrently running groups
    /// overwrite (wrong results on PoCL). Tiles must satisfy <see cref="SharedNeed"/> ≤ this.
    /// </summary>
    public const int SharedFloats = 2304;

    /// <summary>Shared floats a launch needs: tile rows are padded by one so stores of consecutive k avoid bank conflicts.</summary>
    public static long SharedNeed(int threadsX, int threadsY, int tileK) => (long)tileK * (Block * threadsX + 1 + Block * threadsY + 1);

    public static void Gemm<TA, TB, TO>(TA a, TB b, TO output, int m, int n, int k, int tileK)
        where TA : struct, IGemmInput where TB : struct, IGemmInput where TO : struct, IGemmOutput
    {
        int tx = Group.IdxX, ty = Group.IdxY, dx = Group.DimX, dy = Group.DimY;
        int bm = dy * Block, bn = dx * Block;
        // Row tiles on grid X (up to 2³¹−1 groups: conv M is output voxels, millions), column tiles on grid Y.
        int row0 = Grid.IdxX * bm, col0 = Grid.IdxY * bn;
        int tid = ty * dx + tx, threads = dx * dy;
        var shared = SharedMemory.Allocate<float>(SharedFloats);
        int lda = bm + 1, ldb = bn + 1;
        var aTile = shared.SubView(0, tileK * lda);
        var bTile = shared.SubView(tileK * lda, tileK * ldb);

        float c00 = 0, c01 = 0, c02 = 0, c03 = 0;
        float c10 = 0, c11 = 0, c12 = 0, c13 = 0;
        float c20 = 0, c21 = 0, c22 = 0, c23 = 0;
        float c30 = 0, c31 = 0, c32 = 0, c33 = 0;

        for (int k0 = 0; k0 < k; k0 += tileK)
        {
            for (int e = tid; e < tileK * bm; e += threads)
            {
                int r = e / tileK, kk = e - r * tileK;
                int gr = row0 + r, gk = k0 + kk;
                aTile[kk * lda + r] = gr < m && gk < k ? a.Load(gr, gk) : 0f;
            }
            for (int e = tid; e < tileK * bn; e += threads)
            {
                int c = e / tileK, kk = e - c * tileK;
                int gc = col0 + c, gk = k0 + kk;
                bTile[kk * ldb + c] = gc < n && gk < k ? b.Load(gc, gk) : 0f;
            }
            Group.Barrier();
            for (int kk = 0; kk < tileK; kk++)
            {
                int ar = kk * lda + ty, bc = kk * ldb + tx;
                float a0 = aTile[ar], a1 = aTile[ar + dy], a2 = aTile[ar + 2 * dy], a3 = aTile[ar + 3 * dy];
                float b0 = bTile[bc], b1 = bTile[bc + dx], b2 = bTile[bc + 2 * dx], b3 = bTile[bc + 3 * dx];
                c00 += a0 * b0; c01 += a0 * b1; c02 += a0 * b2; c03 += a0 * b3;
                c10 += a1 * b0; c11 += a1 * b1; c12 += a1 * b2; c13 += a1 * b3;
                c20 += a2 * b0; c21 += a2 * b1; c22 += a2 * b2; c23 += a2 * b3;
                c30 += a3 * b0; c31 += a3 * b1; c32 += a3 * b2; c33 += a3 * b3;
            }
            Group.Barrier();
        }

        int r0 = row0 + ty, cl0 = col0 + tx;
        StoreRow(output, m, n, r0, cl0, dx, c00, c01, c02, c03);
        StoreRow(output, m, n, r0 + dy, cl0, dx, c10, c11, c12, c13);
        StoreRow(output, m, n, r0 + 2 * dy, cl0, dx, c20, c21, c22, c23);
        StoreRow(output, m, n, r0 + 3 * dy, cl0, dx, c30, c31, c32, c33);
    }

    private static void StoreRow<TO>(TO output, int m, int n, int row, int col, int dx, float v0, float v1, float v2, float v3)
        where TO : struct, IGemmOutput
    {
        if (row >= m) return;
        if (col < n) output.Store(row, col, v0);
        if (col + dx < n) output.Store(row, col + dx, v1);
        if (col + 2 * dx < n) output.Store(row, col + 2 * dx, v2);
        if (col + 3 * dx < n) output.Store(row, col + 3 * dx, v3);
    }
}
