using ILGPU;
using ILGPU.Algorithms;

namespace Sora.Kernels.Gpu;

/// <summary>Geometry and tiling of one attention launch (a kernel parameter).</summary>
public readonly struct AttentionShape
{
    public readonly long Ldq, Ldk, Ldv, Ldo;
    public readonly int HeadDim, QueryTile, KeyTile, BiasWidth, BiasCenter, HasBias;
    public readonly float Scale;

    public AttentionShape(long ldq, long ldk, long ldv, long ldo, int headDim, int queryTile, int keyTile, float scale,
        int biasWidth, int biasCenter, int hasBias)
    {
        Ldq = ldq; Ldk = ldk; Ldv = ldv; Ldo = ldo;
        HeadDim = headDim; QueryTile = queryTile; KeyTile = keyTile; Scale = scale;
        BiasWidth = biasWidth; BiasCenter = biasCenter; HasBias = hasBias;
    }

    /// <summary>Floats of dynamic shared memory one group needs.</summary>
    /// <remarks>K/V rows are padded to head_dim + 1 so threads scoring different keys hit different banks.</remarks>
    public static int SharedFloats(int headDim, int queryTile, int keyTile) =>
        2 * queryTile * headDim + keyTile * (headDim + 1) + queryTile * keyTile + 3 * queryTile;
}

/// <summary>
/// Flash attention with an online softmax over key tiles. One group per (query tile, head); a query tile never
/// crosses a sequence (the host lists tiles as (first query row, query count, position of the first query in
/// its sequence, first key row, visible keys)), so padding keys are simply never visited and a sequence with
/// no visible key leaves l = 0 and writes zeros. The unnormalised output, the running max m and sum l live in
/// shared memory; one buffer holds K, then V, of the current key tile.
/// </summary>
public static class AttentionKernel
{
    public const int TileInts = 5;

    /// <summary>Static shared memory per group in floats (32 KB; see <see cref="GemmKernels.SharedFloats"/> for why static).</summary>
    public const int SharedCapacity = 8192;

    public static void Run(ArrayView<float> q, ArrayView<float> k, ArrayView<float> v, ArrayView<float> o,
        ArrayView<int> tiles, ArrayView<float> bias, AttentionShape s)
    {
        int tile = Grid.IdxX, head = Grid.IdxY;
        int tid = Group.IdxX, threads = Group.DimX;
        int d = s.HeadDim, bq = s.QueryTile, bk = s.KeyTile;
        int qBegin = tiles[tile * TileInts], qCount = tiles[tile * TileInts + 1], qPos0 = tiles[tile * TileInts + 2];
        int kBegin = tiles[tile * TileInts + 3], kValid = tiles[tile * TileInts + 4];

        var shared = SharedMemory.Allocate<float>(SharedCapacity);
        var qs = shared.SubView(0, bq * d);
        var os = shared.SubView(bq * d, bq * d);
        int ldkv = d + 1;
        var kv = shared.SubView(2 * bq * d, bk * ldkv);
        var p = shared.SubView(2 * bq * d + bk * ldkv, bq * bk);
        var rowMax = shared.SubView(2 * bq * d + bk * ldkv + bq * bk, bq);
        var rowSum = shared.SubView(2 * bq * d + bk * ldkv + bq * bk + bq, bq);
        var rescale = shared.SubView(2 * bq * d + bk * ldkv + bq * bk + 2 * bq, bq);

        long headOffset = (long)head * d;
        for (int e = tid; e < bq * d; e += threads)
        {
            int r = e / d, c = e - r * d;
            qs[e] = r < qCount ? q[(qBegin + r) * s.Ldq + headOffset + c] * s.Scale : 0f;
            os[e] = 0f;
        }
        for (int r = tid; r < bq; r += threads)
        {
            rowMax[r] = float.NegativeInfinity;
            rowSum[r] = 0f;
        }
        Group.Barrier();

        for (int kt = 0; kt < kValid; kt += bk)
        {
            int kn = XMath.Min(bk, kValid - kt);
            for (int e = tid; e < bk * d; e += threads)
            {
                int j = e / d, c = e - j * d;
                kv[j * ldkv + c] = j < kn ? k[(kBegin + kt + j) * s.Ldk + headOffset + c] : 0f;
            }
            Group.Barrier();
            for (int e = tid; e < bq * bk; e += threads)
            {
                int r = e / bk, j = e - r * bk;
                float score = float.NegativeInfinity;
                if (r < qCount && j < kn)
                {
                    float dot = 0f;
                    for (int c = 0; c < d; c++) dot += qs[r * d + c] * kv[j * ldkv + c];
                    score = dot;
                    if (s.HasBias != 0) score += bias[head * s.BiasWidth + (kt + j) - (qPos0 + r) + s.BiasCenter];
                }
                p[e] = score;
            }
            Group.Barrier();
            // Row statistics (one thread per row) while the other threads replace K by V.
            for (int r = tid; r < bq; r += threads)
            {
                float mOld = rowMax[r], mx = float.NegativeInfinity;
                for (int j = 0; j < kn; j++) mx = XMath.Max(mx, p[r * bk + j]);
                float mNew = XMath.Max(mOld, mx);
                float alpha = 1f, sum = 0f;
                if (mNew == float.NegativeInfinity)
                {
                    for (int j = 0; j < bk; j++) p[r * bk + j] = 0f;
                }
                else
                {
                    alpha = mOld == float.NegativeInfinity ? 0f : XMath.Exp(mOld - mNew);
                    for (int j = 0; j < bk; j++)
                    {
                        float pj = j < kn ? XMath.Exp(p[r * bk + j] - mNew) : 0f;
                        p[r * bk + j] = pj;
                        sum += pj;
                    }
                }
                rowMax[r] = mNew;
                rowSum[r] = rowSum[r] * alpha + sum;
                rescale[r] = alpha;
            }
            for (int e = tid; e < bk * d; e += threads)
            {
                int j = e / d, c = e - j * d;
                kv[j * ldkv + c] = j < kn ? v[(kBegin + kt + j) * s.Ldv + headOffset + c] : 0f;
            }
            Group.Barrier();
            for (int e = tid; e < bq * d; e += threads)
            {
                int r = e / d, c = e - r * d;
                float acc = os[e] * rescale[r];
                for (int j = 0; j < kn; j++) acc += p[r * bk + j] * kv[j * ldkv + c];
                os[e] = acc;
            }
            Group.Barrier();
        }

        for (int e = tid; e < qCount * d; e += threads)
        {
            int r = e / d, c = e - r * d;
            float l = rowSum[r];
            o[(qBegin + r) * s.Ldo + headOffset + c] = l > 0f ? os[e] / l : 0f;
        }
    }
}
