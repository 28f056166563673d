namespace Sora.Native.Pipeline;

/// <summary>
/// The pipeline's deterministic standard-normal noise: xoshiro256** seeded through SplitMix64, uniforms
/// u = (53 random bits + 1)·2⁻⁵³ in (0, 1], and Box–Muller pairs (r·cos θ, r·sin θ) with r = √(−2 ln u₁),
/// θ = 2π·u₂, written in row-major order. The same seed gives the same values on a given runtime; it is not
/// torch's generator, so a seed does not reproduce a diffusers video (pass <c>Latents</c> for that).
/// </summary>
public sealed class GaussianNoise
{
    private ulong _s0, _s1, _s2, _s3;

    public GaussianNoise(long seed)
    {
        ulong x = unchecked((ulong)seed);
        _s0 = SplitMix(ref x);
        _s1 = SplitMix(ref x);
        _s2 = SplitMix(ref x);
        _s3 = SplitMix(ref x);
    }

    /// <summary>Fills <paramref name="destination"/> with independent N(0, 1) samples.</summary>
    public void Fill(Span<float> destination)
    {
        for (int i = 0; i < destination.Length; i += 2)
        {
            double r = Math.Sqrt(-2.0 * Math.Log(NextUniform()));
            double theta = 2.0 * Math.PI * NextUniform();
            destination[i] = (float)(r * Math.Cos(theta));
            if (i + 1 < destination.Length) destination[i + 1] = (float)(r * Math.Sin(theta));
        }
    }

    public float[] Sample(long count)
    {
        var values = new float[count];
        Fill(values);
        return values;
    }

    private double NextUniform() => ((Next() >> 11) + 1) * (1.0 / (1UL << 53));

    private ulong Next()
    {
        ulong result = ulong.RotateLeft(_s1 * 5, 7) * 9;
        ulong t = _s1 << 17;
        _s2 ^= _s0;
        _s3 ^= _s1;
        _s1 ^= _s2;
        _s0 ^= _s3;
        _s2 ^= t;
        _s3 = ulong.RotateLeft(_s3, 45);
        return result;
    }

    private static ulong SplitMix(ref ulong x)
    {
        ulong z = x += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
