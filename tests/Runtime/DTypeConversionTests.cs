using Sora.Runtime;
using Xunit;

namespace Sora.Tests.Runtime;

/// <summary>
/// F16/BF16 conversions against an independent reference: every 16-bit pattern is decoded with double
/// arithmetic from the IEEE field layout, and rounding picks the nearer neighbour in double (ties to the even
/// encoding), with infinity standing as the next rung above the largest finite value.
/// </summary>
public sealed class DTypeConversionTests
{
    private static double Bf16Value(int bits)
    {
        int exp = (bits >> 7) & 0xFF, mant = bits & 0x7F;
        double v = exp switch
        {
            0 => mant * Math.Pow(2, -133),
            0xFF => mant == 0 ? Math.Pow(2, 128) : double.NaN,
            _ => (128 + mant) * Math.Pow(2, exp - 134),
        };
        return (bits & 0x8000) != 0 ? -v : v;
    }

    private static double F16Value(int bits)
    {
        int exp = (bits >> 10) & 0x1F, mant = bits & 0x3FF;
        double v = exp switch
        {
            0 => mant * Math.Pow(2, -24),
            0x1F => mant == 0 ? Math.Pow(2, 16) : double.NaN,
            _ => (1024 + mant) * Math.Pow(2, exp - 25),
        };
        return (bits & 0x8000) != 0 ? -v : v;
    }

    /// <summary>RNE of a finite float to bf16, decided in double between the two bracketing encodings.</summary>
    private static ushort ExpectedBf16(float f)
    {
        uint bits = BitConverter.SingleToUInt32Bits(f);
        int sign = (int)(bits >> 16) & 0x8000;
        int lo = (int)(bits >> 16) & 0x7FFF; // magnitude truncated toward zero
        int hi = lo + 1;
        double a = Math.Abs((double)f), dl = a - Bf16Value(lo), dh = Bf16Value(hi) - a;
        int pick = dl < dh ? lo : dh < dl ? hi : (lo & 1) == 0 ? lo : hi;
        return (ushort)(sign | pick);
    }

    private static void CheckBf16(float f)
    {
        ushort got = BFloat16.FromFloat(f);
        if (float.IsNaN(f))
        {
            uint bits = BitConverter.SingleToUInt32Bits(f);
            Assert.True((got & 0x7F80) == 0x7F80 && (got & 0x7F) != 0, $"NaN {bits:X8} became {got:X4}, not a NaN");
            Assert.Equal(bits >> 31, (uint)got >> 15);
            return;
        }
        if (float.IsInfinity(f)) { Assert.Equal(f > 0 ? 0x7F80 : 0xFF80, got); return; }
        ushort expected = ExpectedBf16(f);
        if (got != expected) Assert.Fail($"bf16({BitConverter.SingleToUInt32Bits(f):X8}) = {got:X4}, expected {expected:X4}");
    }

    [Fact]
    public void Bf16ToFloatIsExactForEveryPattern()
    {
        for (int b = 0; b < 65536; b++)
        {
            float f = BFloat16.ToFloat((ushort)b);
            double expected = Bf16Value(b);
            if (double.IsNaN(expected)) Assert.True(float.IsNaN(f), $"{b:X4}");
            else if (Math.Abs(expected) == Math.Pow(2, 128)) Assert.True(float.IsInfinity(f) && Math.Sign(f) == Math.Sign(expected), $"{b:X4}");
            else Assert.Equal(expected, (double)f);
        }
    }

    [Fact]
    public void Bf16FromFloatRoundsToNearestEvenIncludingTiesSubnormalsAndOverflow()
    {
        // every upper half with the low halves that decide rounding: exact, just below/at/above the tie, max
        ushort[] lows = { 0x0000, 0x0001, 0x7FFF, 0x8000, 0x8001, 0xFFFF };
        for (uint hiBits = 0; hiBits < 65536; hiBits++)
            foreach (ushort low in lows)
                CheckBf16(BitConverter.UInt32BitsToSingle((hiBits << 16) | low));

        var rng = new Random(1234);
        for (int i = 0; i < 200_000; i++) CheckBf16(BitConverter.UInt32BitsToSingle((uint)rng.NextInt64(0, 1L << 32)));

        // named cases: ties to even in both directions, overflow by rounding, subnormal tie, NaN payloads
        Assert.Equal(0x3F80, BFloat16.FromFloat(BitConverter.UInt32BitsToSingle(0x3F808000))); // tie, even below
        Assert.Equal(0x3F82, BFloat16.FromFloat(BitConverter.UInt32BitsToSingle(0x3F818000))); // tie, even above
        Assert.Equal(0x7F80, BFloat16.FromFloat(BitConverter.UInt32BitsToSingle(0x7F7F8000))); // max + half ulp → inf
        Assert.Equal(0x7F7F, BFloat16.FromFloat(BitConverter.UInt32BitsToSingle(0x7F7F7FFF)));
        Assert.Equal(0x0000, BFloat16.FromFloat(BitConverter.UInt32BitsToSingle(0x00008000))); // subnormal tie → 0
        Assert.Equal(0x0002, BFloat16.FromFloat(BitConverter.UInt32BitsToSingle(0x00018000))); // subnormal tie → even
        Assert.Equal(0x7FC0, BFloat16.FromFloat(BitConverter.UInt32BitsToSingle(0x7F800001)) & 0x7FC0); // sNaN stays NaN, quiet
        Assert.Equal(0xFFC0, BFloat16.FromFloat(BitConverter.UInt32BitsToSingle(0xFFFFFFFF)) & 0xFFC0);
    }

    [Fact]
    public void Bf16StorageRoundsThroughHostData()
    {
        var rng = new Random(7);
        var values = Enumerable.Range(0, 4096).Select(_ => BitConverter.UInt32BitsToSingle((uint)rng.NextInt64(0, 1L << 32)))
            .Where(v => float.IsFinite(v)).ToArray();
        using var t = Tensor.FromArray(values, new[] { values.Length }, DType.BF16);
        var stored = ((HostStorage)t.Storage).AsSpan<ushort>();
        for (int i = 0; i < values.Length; i++) Assert.Equal(ExpectedBf16(values[i]), stored[i]);
        var back = t.ToFloatArray();
        for (int i = 0; i < values.Length; i++)
            if (Math.Abs(Bf16Value(stored[i])) != Math.Pow(2, 128)) Assert.Equal(Bf16Value(stored[i]), back[i]);
    }

    [Fact]
    public void F16ReadsEveryPatternExactly()
    {
        var storage = HostStorage.Allocate(DType.F16, 65536);
        using var t = new Tensor(storage, new[] { 65536 }, ownsStorage: true);
        var bits = storage.AsSpan<ushort>();
        for (int b = 0; b < 65536; b++) bits[b] = (ushort)b;
        var values = t.ToFloatArray();
        for (int b = 0; b < 65536; b++)
        {
            double expected = F16Value(b);
            if (double.IsNaN(expected)) Assert.True(float.IsNaN(values[b]), $"{b:X4}");
            else if (Math.Abs(expected) == 65536) Assert.True(float.IsInfinity(values[b]) && Math.Sign(values[b]) == Math.Sign(expected), $"{b:X4}");
            else Assert.Equal(expected, (double)values[b]);
        }
    }

    [Fact]
    public void F16WritesRoundToNearestEven()
    {
        // the finite non-negative halves in order, with +inf as the rung above 65504
        var ladder = Enumerable.Range(0, 0x7C01).Select(F16Value).ToArray();
        var inputs = new List<float>();
        for (int b = 0; b < 0x7C00; b++)
        {
            float mid = (float)((ladder[b] + ladder[b + 1]) / 2); // exact: 12 significant bits
            inputs.AddRange(new[] { (float)ladder[b], mid, MathF.BitDecrement(mid), MathF.BitIncrement(mid) });
        }
        var rng = new Random(99);
        for (int i = 0; i < 50_000; i++) inputs.Add((float)(rng.NextDouble() * Math.Pow(2, rng.Next(-30, 17))));
        var all = inputs.Concat(inputs.Select(v => -v)).ToArray();

        using var t = Tensor.FromArray(all, new[] { all.Length }, DType.F16);
        var stored = ((HostStorage)t.Storage).AsSpan<ushort>();
        for (int i = 0; i < all.Length; i++)
        {
            double a = Math.Abs((double)all[i]);
            int hi = Array.BinarySearch(ladder, a);
            int pick;
            if (hi >= 0) pick = hi;
            else
            {
                hi = ~hi;
                if (hi >= ladder.Length) pick = 0x7C00; // beyond the inf rung
                else
                {
                    int lo = hi - 1;
                    double dl = a - ladder[lo], dh = ladder[hi] - a;
                    pick = dl < dh ? lo : dh < dl ? hi : (lo & 1) == 0 ? lo : hi;
                }
            }
            int expected = (all[i] < 0 || (all[i] == 0 && float.IsNegative(all[i])) ? 0x8000 : 0) | pick;
            if (stored[i] != expected) Assert.Fail($"f16({all[i]:R}) = {stored[i]:X4}, expected {expected:X4}");
        }
    }
}
