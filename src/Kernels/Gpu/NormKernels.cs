using ILGPU;
using ILGPU.Algorithms;

namespace Sora.Kernels.Gpu;

/// <summary>Which row norm <see cref="NormKernels.Rows"/> computes.</summary>
public enum RowNormKind
{
    /// <summary>(x − mean)/√(var + eps) · weight + bias (weight, bias optional).</summary>
    LayerNorm,
    /// <summary>(x − mean)/√(var + eps) · (1 + scale) + shift: scale in Weight, shift in Bias.</summary>
    AdaLn,
    /// <summary>x / √(mean(x²) + eps) · weight.</summary>
    Rms,
}

/// <summary>Parameters of a row norm launch.</summary>
public readonly struct RowNormShape(int width, float eps, RowNormKind kind, int hasWeight, int hasBias)
{
    public readonly int Width = width, HasWeight = hasWeight, HasBias = hasBias;
    public readonly float Eps = eps;
    public readonly RowNormKind Kind = kind;
}

/// <summary>Parameters of an <see cref="NormKernels.AdaLnRows"/> launch: row width and the row strides of the per-set tensors.</summary>
public readonly struct AdaLnRowsShape(int width, float eps, long shiftStride, long scaleStride)
{
    public readonly int Width = width;
    public readonly float Eps = eps;
    public readonly long ShiftStride = shiftStride, ScaleStride = scaleStride;
}

/// <summary>
/// Norms. Row norms run one group per row with a shared-memory tree reduction (the group size must be a power
/// of two); the mean and variance are two passes over the row, as the reference does, so no cancellation.
/// </summary>
public static class NormKernels
{
    /// <summary>Largest row-norm group: the reduction scratch is a static shared array (see <see cref="GemmKernels.SharedFloats"/>).</summary>
    public const int MaxGroupSize = 1024;

    public static void Rows(ArrayView<float> x, ArrayView<float> y, ArrayView<float> weight, ArrayView<float> bias, RowNormShape s)
    {
        int row = Grid.IdxX, tid = Group.IdxX, threads = Group.DimX;
        int n = s.Width;
        long start = (long)row * n;
        var scratch = SharedMemory.Allocate<float>(MaxGroupSize);

        float mean = 0f;
        if (s.Kind != RowNormKind.Rms)
        {
            float part = 0f;
            for (int j = tid; j < n; j += threads) part += x[start + j];
            mean = GroupSum(scratch, part, tid, threads) / n;
        }
        float sq = 0f;
        for (int j = tid; j < n; j += threads)
        {
            float c = x[start + j] - mean;
            sq += c * c;
        }
        float inv = 1f / XMath.Sqrt(GroupSum(scratch, sq, tid, threads) / n + s.Eps);
        for (int j = tid; j < n; j += threads)
        {
            float v = (x[start + j] - mean) * inv;
            if (s.Kind == RowNormKind.AdaLn) v = v * (1f + weight[j]) + bias[j];
            else
            {
                if (s.HasWeight != 0) v *= weight[j];
                if (s.HasBias != 0) v += bias[j];
            }
            y[start + j] = v;
        }
    }

    /// <summary>
    /// AdaLN with a modulation set per row (one group per row, as <see cref="Rows"/>): s = sets[row],
    /// y = (x − mean)/√(var + eps) · (1 + (scaleBase + scale[s])) + (shiftBase + shift[s]).
    /// </summary>
    public static void AdaLnRows(ArrayView<float> x, ArrayView<float> y, ArrayView<float> shiftBase, ArrayView<float> shift,
        ArrayView<float> scaleBase, ArrayView<float> scale, ArrayView<int> sets, AdaLnRowsShape s)
    {
        int row = Grid.IdxX, tid = Group.IdxX, threads = Group.DimX;
        int n = s.Width;
        long start = (long)row * n;
        var scratch = SharedMemory.Allocate<float>(MaxGroupSize);

        float part = 0f;
        for (int j = tid; j < n; j += threads) part += x[start + j];
        float mean = GroupSum(scratch, part, tid, threads) / n;
        float sq = 0f;
        for (int j = tid; j < n; j += threads)
        {
            float c = x[start + j] - mean;
            sq += c * c;
        }
        float inv = 1f / XMath.Sqrt(GroupSum(scratch, sq, tid, threads) / n + s.Eps);
        long set = sets[row];
        for (int j = tid; j < n; j += threads)
        {
            float sc = scaleBase[j] + scale[set * s.ScaleStride + j];
            float sh = shiftBase[j] + shift[set * s.ShiftStride + j];
            y[start + j] = (x[start + j] - mean) * inv * (1f + sc) + sh;
        }
    }

    /// <summary>Sum over the group; every thread gets the result. Threads must all call it.</summary>
    private static float GroupSum(ArrayView<float> scratch, float value, int tid, int threads)
    {
        scratch[tid] = value;
        Group.Barrier();
        for (int half = threads / 2; half > 0; half /= 2)
        {
            if (tid < half) scratch[tid] += scratch[tid + half];
            Group.Barrier();
        }
        float total = scratch[0];
        Group.Barrier();
        return total;
    }

    /// <summary>Wan's channel RMS norm of x [C, L]: one thread per position l, looping over channels (coalesced in l).</summary>
    public static void Channels(Index1D l, ArrayView<float> x, ArrayView<float> y, ArrayView<float> gamma, ArrayView<float> beta,
        int channels, long length, int hasBeta)
    {
        float ss = 0f;
        for (int c = 0; c < channels; c++)
        {
            float v = x[c * length + l];
            ss += v * v;
        }
        float scale = XMath.Sqrt((float)channels) / XMath.Max(XMath.Sqrt(ss), 1e-12f);
        for (int c = 0; c < channels; c++)
        {
            float v = x[c * length + l] * scale * gamma[c];
            y[c * length + l] = hasBeta != 0 ? v + beta[c] : v;
        }
    }
}
