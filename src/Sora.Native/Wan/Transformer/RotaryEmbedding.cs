using Sora.Runtime;

namespace Sora.Native.Wan.Transformer;

/// <summary>
/// Wan's 3-axis rotary embedding tables for a post-patch grid (T', H', W'). head_dim is split into
/// h = w = 2·⌊hd/6⌋ dims for rows and columns and t = hd − 2h for frames (128 → 44, 42, 42); pair k of a head
/// (elements 2k, 2k+1) rotates by pos·ω with ω_j = 1/10000^(2j/d_axis) of its axis, pos the token's frame, row or
/// column. Angles and their cos/sin are computed in float64 on the host and stored as f32 (as diffusers does).
/// </summary>
internal static class RotaryEmbedding
{
    private const double Theta = 10000.0;

    /// <summary>Host tables cos, sin [T'·H'·W', hd/2], rows in token order (frame, row, column).</summary>
    public static (float[] Cos, float[] Sin) Tables(int headDim, int frames, int rows, int columns)
    {
        int hw = 2 * (headDim / 6), t = headDim - 2 * hw;
        var frameFreq = Frequencies(t);
        var rowFreq = Frequencies(hw);
        var colFreq = Frequencies(hw);
        int half = headDim / 2, tokens = frames * rows * columns;
        var cos = new float[(long)tokens * half];
        var sin = new float[(long)tokens * half];
        for (int f = 0; f < frames; f++)
            for (int r = 0; r < rows; r++)
                for (int c = 0; c < columns; c++)
                {
                    long offset = ((long)(f * rows + r) * columns + c) * half;
                    int k = 0;
                    foreach (double w in frameFreq) Set(offset + k++, f * w);
                    foreach (double w in rowFreq) Set(offset + k++, r * w);
                    foreach (double w in colFreq) Set(offset + k++, c * w);
                }
        return (cos, sin);

        void Set(long index, double angle)
        {
            cos[index] = (float)Math.Cos(angle);
            sin[index] = (float)Math.Sin(angle);
        }
    }

    /// <summary>ω_j = 1/θ^(2j/d) for the d/2 pairs of one axis of d dims.</summary>
    private static double[] Frequencies(int d)
    {
        var freq = new double[d / 2];
        for (int j = 0; j < freq.Length; j++) freq[j] = 1.0 / Math.Pow(Theta, 2.0 * j / d);
        return freq;
    }
}

/// <summary>The device copies of one grid's tables, cached by the transformer across denoising steps.</summary>
internal sealed class RotaryTables : IDisposable
{
    public RotaryTables(IBackend backend, int headDim, int frames, int rows, int columns)
    {
        var (cos, sin) = RotaryEmbedding.Tables(headDim, frames, rows, columns);
        int tokens = frames * rows * columns;
        using var hostCos = Tensor.FromArray(cos, [tokens, headDim / 2]);
        using var hostSin = Tensor.FromArray(sin, [tokens, headDim / 2]);
        Cos = backend.ToDevice(hostCos);
        Sin = backend.ToDevice(hostSin);
    }

    /// <summary>Tables already on the device (owned: freed with this).</summary>
    public RotaryTables(Tensor cos, Tensor sin)
    {
        Cos = cos;
        Sin = sin;
    }

    public Tensor Cos { get; }
    public Tensor Sin { get; }

    public void Dispose()
    {
        Cos.Dispose();
        Sin.Dispose();
    }
}
