using System.Buffers.Binary;
using System.Diagnostics;
using Sora.Runtime;
using Sora.Runtime.Gguf;
using Xunit;
using Xunit.Abstractions;

namespace Sora.Tests.Runtime;

/// <summary>
/// Mutated, truncated and lying GGUF files (fixed seed, so a failing case number reproduces): opening, getting and
/// dequantising every tensor must either work or throw GgufException naming the file, never anything else, never
/// hang, and never allocate more than a small multiple of the file's size (metadata strings and tensor infos take
/// more room as .NET objects than as bytes). Every truncation of a file that ends at its last tensor must fail.
/// </summary>
public sealed class GgufFuzzTests(ITestOutputHelper output)
{
    private const int Seed = 20261201;
    private const int Cases = 3000;
    private const int WarmupCases = 200;
    private const int AllocationFactor = 8;
    private const long AllocationSlack = 64 * 1024;
    private static readonly TimeSpan CaseTimeout = TimeSpan.FromSeconds(10);
    private static readonly string FixtureDir = Path.Combine(AppContext.BaseDirectory, "fixtures", "gguf");

    private sealed record Base(byte[] Bytes, int[] U64Fields, int[] U32Fields, int HeaderEnd);

    private static Base Built(GgufBuilder b)
    {
        var bytes = b.Build();
        return new Base(bytes, b.U64Fields.ToArray(), b.U32Fields.ToArray(), b.DataStart);
    }

    private static Base Fixture(string type)
    {
        var bytes = File.ReadAllBytes(Path.Combine(FixtureDir, $"wan-tiny-{type}.gguf"));
        return new Base(bytes, Array.Empty<int>(), Array.Empty<int>(), 544);
    }

    [Fact]
    public void EveryTruncationFails()
    {
        using var dir = new TempFolder();
        string path = dir.File("cut.gguf");
        var rich = Built(GgufBuilder.Rich(new Random(Seed)));
        var fixture = Fixture("Q3_K");
        int cases = 0;
        foreach (var b in new[] { rich, fixture })
        {
            var cuts = Enumerable.Range(0, b.HeaderEnd + 64).Concat(Enumerable.Range(b.HeaderEnd + 64, b.Bytes.Length - b.HeaderEnd - 64).Where(n => n % 97 == 0)).Append(b.Bytes.Length - 1);
            foreach (int n in cuts)
            {
                File.WriteAllBytes(path, b.Bytes[..n]);
                var e = Assert.Throws<GgufException>(() => GgufFile.Open(path).Dispose());
                Assert.StartsWith(path + ":", e.Message);
                cases++;
            }
        }
        output.WriteLine($"{cases} truncations, all rejected");
    }

    [Fact]
    public async Task MutatedFilesFailOnlyWithGgufExceptionQuicklyAndWithinBoundedAllocation()
    {
        using var dir = new TempFolder();
        var rng = new Random(Seed);
        var bases = new[] { Built(GgufBuilder.Rich(rng)), Built(GgufBuilder.Rich(rng)), Fixture("Q4_K"), Fixture("Q5_1"), Fixture("BF16") };
        string path = dir.File("case.gguf");
        var accepted = new int[6];
        var rejected = new int[6];
        long worstExcess = long.MinValue;
        var clock = Stopwatch.StartNew();
        for (int i = 0; i < WarmupCases + Cases; i++)
        {
            var b = bases[rng.Next(bases.Length)];
            var (kind, bytes) = Mutate(rng, b);
            File.WriteAllBytes(path, bytes);
            (bool ok, long allocated, Exception? error) result;
            try { result = await Task.Run(() => RunCaseTwice(path)).WaitAsync(CaseTimeout); }
            catch (TimeoutException) { Assert.Fail($"case {i} (kind {kind}, seed {Seed}) did not finish in {CaseTimeout}"); throw; }
            var (ok, allocated, error) = result;
            if (error is not null) Assert.Fail($"case {i} (kind {kind}, seed {Seed}) threw {error.GetType().Name}: {error}");
            if (i < WarmupCases) continue;
            if (allocated > AllocationFactor * bytes.Length + AllocationSlack)
                Assert.Fail($"case {i} (kind {kind}, seed {Seed}) allocated {allocated} bytes for a {bytes.Length}-byte file");
            (ok ? accepted : rejected)[kind]++;
            worstExcess = Math.Max(worstExcess, allocated - AllocationFactor * bytes.Length);
        }
        output.WriteLine($"{Cases} cases in {clock.Elapsed.TotalSeconds:F1} s; accepted per kind [{string.Join(", ", accepted)}], " +
            $"rejected per kind [{string.Join(", ", rejected)}]; worst allocation minus {AllocationFactor}× the file size {worstExcess} bytes");
        Assert.True(rejected.Sum() > Cases / 3, $"only {rejected.Sum()} of {Cases} cases were rejected");
        Assert.True(accepted.Sum() > 0, "no mutated file was accepted");
        Assert.All(rejected[..5], n => Assert.True(n > 0));
        Assert.True(rejected[5] == 0, "bytes after the last tensor were rejected (GGUF allows them, as ggml's reader does)");
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(90), $"fuzzing took {clock.Elapsed}");
    }

    /// <summary>The second run's allocation counts: a new pool thread allocates its own caches on first use (see the safetensors fuzz test).</summary>
    private static (bool Ok, long Allocated, Exception? Error) RunCaseTwice(string path)
    {
        var first = RunCase(path);
        return first.Error is not null ? first : RunCase(path);
    }

    /// <summary>Opens the file, checks the invariants of an accepted header from the raw length, and dequantises every tensor.</summary>
    private static (bool Ok, long Allocated, Exception? Error) RunCase(string path)
    {
        long before = GC.GetAllocatedBytesForCurrentThread();
        bool ok = false;
        Span<float> chunk = stackalloc float[512];
        try
        {
            using var f = GgufFile.Open(path);
            long length = new FileInfo(path).Length;
            foreach (var t in f.Tensors)
            {
                if (t.Offset < 0 || f.DataStart + t.Offset + t.ByteLength > length) throw new InvalidDataException($"{t.Name} outside the file");
                if (t.ByteLength != GgmlTypes.ByteCount(t.Type, t.ElementCount)) throw new InvalidDataException($"{t.Name}: size mismatch");
                if (t.Shape.Aggregate(1L, (a, d) => a * d) != t.ElementCount) throw new InvalidDataException($"{t.Name}: shape does not hold its elements");
                var g = f.Get(t.Name);
                for (long s = 0; s < g.ElementCount; s += chunk.Length)
                    g.Dequantize(s, chunk[..(int)Math.Min(chunk.Length, g.ElementCount - s)]);
                if (t.Type is GgmlType.F32 or GgmlType.F16 or GgmlType.BF16) f.GetDense(t.Name).ToString();
            }
            ok = true;
        }
        catch (GgufException e) when (e.Message.StartsWith(path + ":", StringComparison.Ordinal)) { }
        catch (Exception ex) { return (false, 0, ex); }
        return (ok, GC.GetAllocatedBytesForCurrentThread() - before, null);
    }

    private static (int Kind, byte[] Bytes) Mutate(Random rng, Base b)
    {
        var bytes = (byte[])b.Bytes.Clone();
        int kind = rng.Next(6);
        switch (kind)
        {
            case 0: // random bytes anywhere
                for (int n = rng.Next(1, 5); n > 0; n--) bytes[rng.Next(bytes.Length)] = (byte)rng.Next(256);
                return (kind, bytes);
            case 1: // bit flips in the header
                for (int n = rng.Next(1, 4); n > 0; n--) bytes[rng.Next(b.HeaderEnd)] ^= (byte)(1 << rng.Next(8));
                return (kind, bytes);
            case 2: // a lying count, length, dimension or offset
                {
                    var fields = b.U64Fields.Length > 0 ? b.U64Fields : new[] { 8, 16 };
                    ulong[] lies = { 0, 1, 2, 31, 32, 33, 255, 256, 4096, (ulong)bytes.Length, (ulong)bytes.Length + 1, 1UL << 31, 1UL << 32, 1UL << 62,
                        long.MaxValue, ulong.MaxValue, (ulong)rng.NextInt64(), (ulong)rng.Next(1 << 16) };
                    BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(fields[rng.Next(fields.Length)]), lies[rng.Next(lies.Length)]);
                    return (kind, bytes);
                }
            case 3: // a wrong type id, value type or dimension count
                {
                    var fields = b.U32Fields.Length > 0 ? b.U32Fields : new[] { 4 };
                    uint[] lies = { 0, 1, 2, 3, 4, 5, 7, 8, 9, 10, 12, 13, 14, 15, 16, 30, 31, 99, uint.MaxValue };
                    BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(fields[rng.Next(fields.Length)]), lies[rng.Next(lies.Length)]);
                    return (kind, bytes);
                }
            case 4: // truncated anywhere
                return (kind, bytes[..rng.Next(bytes.Length)]);
            default: // trailing garbage
                var extra = new byte[rng.Next(1, 65)];
                rng.NextBytes(extra);
                return (kind, bytes.Concat(extra).ToArray());
        }
    }
}
