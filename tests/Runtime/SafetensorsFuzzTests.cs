using System.Buffers.Binary;
using System.Diagnostics;
using System.Text;
using Sora.Runtime;
using Sora.Runtime.Safetensors;
using Xunit;
using Xunit.Abstractions;
using static Sora.Tests.Runtime.SafetensorsTestFiles;

namespace Sora.Tests.Runtime;

/// <summary>
/// Thousands of mutated and truncated safetensors files (fixed seed, so a failing case number reproduces):
/// opening, getting every tensor and reading all its bytes must either work or throw SafetensorsException,
/// never anything else, never hang, and never allocate more than the file's size plus a small constant.
/// </summary>
public sealed class SafetensorsFuzzTests(ITestOutputHelper output)
{
    private const int Seed = 20261124;
    private const int Cases = 4000;
    private const int WarmupCases = 200;
    private const long AllocationSlack = 64 * 1024;
    private static readonly TimeSpan CaseTimeout = TimeSpan.FromSeconds(10);

    private static readonly string[] Tokens =
        { "\"", "{", "}", "[", "]", ",", ":", "-1", "0", "1e400", "18446744073709551616", "9223372036854775807", "2147483648",
          "null", "true", "\"I64\"", "\"F16\"", "\"BF16\"", "\"__metadata__\"", "\"dtype\"", "\"shape\"", "\"data_offsets\"", " ", "\\u0000", "\\", "\xff" };
    private static readonly string[] Numbers = { "0", "1", "-1", "3.5", "1e308", "4294967296", "99999999999999999999", "7", "8", "2147483647", "00" };
    private static readonly string[] Strings = { "\"I64\"", "\"F64\"", "\"BOOL\"", "\"U8\"", "\"\"", "\"__metadata__\"", "\"a\"", "null", "[]", "{}", "\"F32\"" };

    private static byte[] Base(string dir, string name, params (string Name, Tensor T)[] tensors)
    {
        string path = Path.Combine(dir, name);
        SafetensorsWriter.Write(path, tensors.Select(t => KeyValuePair.Create(t.Name, t.T)), new Dictionary<string, string> { ["format"] = "pt" });
        return File.ReadAllBytes(path);
    }

    [Fact]
    public async Task MutatedFilesFailOnlyWithSafetensorsExceptionQuicklyAndWithinBoundedAllocation()
    {
        using var dir = new TempFolder();
        var rng = new Random(Seed);
        using var a = RandomBits(rng, DType.F32, 3, 4);
        using var b = RandomBits(rng, DType.F16, 5);
        using var c = RandomBits(rng, DType.BF16, 2, 2, 2);
        using var s = RandomBits(rng, DType.F32);
        using var e = Tensor.ZerosHost(DType.F32, 0, 3);
        using var big = RandomBits(rng, DType.BF16, 64);
        var bases = new[]
        {
            Base(dir.Path, "b0.safetensors", ("w.f32", a), ("h", b), ("blocks.0.bf", c), ("scalar", s), ("empty", e)),
            Base(dir.Path, "b1.safetensors", ("only", big)),
            Base(dir.Path, "b2.safetensors"),
        };
        string path = dir.File("case.safetensors");
        var accepted = new int[7];
        var rejected = new int[7];
        long worstExcess = long.MinValue;
        var clock = Stopwatch.StartNew();
        for (int i = 0; i < WarmupCases + Cases; i++)
        {
            var (kind, bytes) = Mutate(rng, bases[rng.Next(bases.Length)]);
            File.WriteAllBytes(path, bytes);
            (bool ok, long allocated, Exception? error) result;
            try { result = await Task.Run(() => RunCaseTwice(path)).WaitAsync(CaseTimeout); }
            catch (TimeoutException) { Assert.Fail($"case {i} (kind {kind}, seed {Seed}) did not finish in {CaseTimeout}"); throw; }
            var (ok, allocated, error) = result;
            if (error is not null) Assert.Fail($"case {i} (kind {kind}, seed {Seed}) threw {error.GetType().Name}: {error}");
            if (i < WarmupCases) continue; // first calls load types and JIT code
            if (allocated > bytes.Length + AllocationSlack)
                Assert.Fail($"case {i} (kind {kind}, seed {Seed}) allocated {allocated} bytes for a {bytes.Length}-byte file");
            (ok ? accepted : rejected)[kind]++;
            worstExcess = Math.Max(worstExcess, allocated - bytes.Length);
        }
        output.WriteLine($"{Cases} cases in {clock.Elapsed.TotalSeconds:F1} s; accepted per kind [{string.Join(", ", accepted)}], " +
            $"rejected per kind [{string.Join(", ", rejected)}]; worst allocation minus file size {worstExcess} bytes");
        // the mutations must exercise both outcomes, or this test checks nothing
        Assert.True(rejected.Sum() > Cases / 2, $"only {rejected.Sum()} of {Cases} cases were rejected");
        Assert.True(accepted.Sum() > 0, "no mutated file was accepted");
        Assert.All(rejected, n => Assert.True(n > 0));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(60), $"fuzzing took {clock.Elapsed}");
    }

    /// <summary>
    /// Runs a case twice on the same thread and reports the second run's allocation: a pool thread that is new (other
    /// test classes run in parallel and grow the pool) allocates its thread-local caches on first use, which once
    /// made a 431-byte case look like a 100 KB allocation. An allocation driven by the file's contents repeats.
    /// </summary>
    private static (bool Ok, long Allocated, Exception? Error) RunCaseTwice(string path)
    {
        var first = RunCase(path);
        return first.Error is not null ? first : RunCase(path);
    }

    /// <summary>Opens the file, gets every tensor and touches every byte; returns whether it was accepted.</summary>
    private static (bool Ok, long Allocated, Exception? Error) RunCase(string path)
    {
        long before = GC.GetAllocatedBytesForCurrentThread();
        bool ok = false;
        try
        {
            using var f = SafetensorsFile.Open(path);
            // an accepted file must satisfy the format's invariants, checked here from the raw length field
            long dataLength = new FileInfo(path).Length - 8 - ReadLengthField(path);
            long covered = 0;
            int sum = 0;
            foreach (var entry in f.Entries)
            {
                if (entry.Begin < 0 || entry.End < entry.Begin || entry.End > dataLength) throw new InvalidDataException($"{entry.Name}: [{entry.Begin}, {entry.End}) outside {dataLength}");
                covered += entry.End - entry.Begin;
                var t = f.Get(entry.Name);
                if (t.ElementCount * DTypes.SizeOf(t.DType) != entry.End - entry.Begin) throw new InvalidDataException($"{entry.Name}: size mismatch");
                foreach (byte x in ((HostStorage)t.Storage).AsSpan<byte>()) sum += x;
                foreach (byte x in f.GetBytes(entry.Name)) sum -= x;
            }
            if (sum != 0) throw new InvalidDataException("Get and GetBytes disagree");
            if (covered != dataLength) throw new InvalidDataException($"tensors cover {covered} of {dataLength} data bytes");
            ok = true;
        }
        catch (SafetensorsException) { }
        catch (Exception ex) { return (false, 0, ex); }
        return (ok, GC.GetAllocatedBytesForCurrentThread() - before, null);
    }

    private static long ReadLengthField(string path)
    {
        Span<byte> field = stackalloc byte[8];
        using var stream = File.OpenRead(path);
        stream.ReadExactly(field);
        return (long)BinaryPrimitives.ReadUInt64LittleEndian(field);
    }

    private static (int Kind, byte[] Bytes) Mutate(Random rng, byte[] source)
    {
        var bytes = (byte[])source.Clone();
        int headerLength = (int)BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        int kind = rng.Next(7);
        switch (kind)
        {
            case 0: // random bytes anywhere
                for (int n = rng.Next(1, 5); n > 0; n--) bytes[rng.Next(bytes.Length)] = (byte)rng.Next(256);
                return (kind, bytes);
            case 1: // random bytes inside the header text
                for (int n = rng.Next(1, 4); n > 0; n--) bytes[8 + rng.Next(headerLength)] = (byte)rng.Next(256);
                return (kind, bytes);
            case 2: // a wrong length field
                ulong[] lengths = { 0, 1, 7, (ulong)headerLength - 1, (ulong)headerLength + 1, (ulong)headerLength + 8, (ulong)bytes.Length,
                    (ulong)bytes.Length - 8, 1UL << 63, ulong.MaxValue, 100UL * 1024 * 1024, (ulong)rng.NextInt64(), (ulong)rng.Next(64) };
                BinaryPrimitives.WriteUInt64LittleEndian(bytes, lengths[rng.Next(lengths.Length)]);
                return (kind, bytes);
            case 3: // text edits of the JSON, length field fixed up
            case 6: // the same, then truncated
                {
                    string header = Encoding.UTF8.GetString(bytes, 8, headerLength);
                    for (int n = rng.Next(1, 3); n > 0; n--) header = EditJson(rng, header);
                    if (rng.Next(4) == 0) header += new string(' ', rng.Next(8));
                    var edited = Raw(header, bytes[(8 + headerLength)..]);
                    return (kind, kind == 6 ? edited[..rng.Next(edited.Length)] : edited);
                }
            case 4: // truncated anywhere
                return (kind, bytes[..rng.Next(bytes.Length)]);
            default: // trailing garbage
                var extra = new byte[rng.Next(1, 17)];
                rng.NextBytes(extra);
                return (kind, bytes.Concat(extra).ToArray());
        }
    }

    private static string EditJson(Random rng, string h)
    {
        if (h.Length == 0) return Tokens[rng.Next(Tokens.Length)];
        int at = rng.Next(h.Length);
        switch (rng.Next(5))
        {
            case 0: return h.Remove(at, Math.Min(h.Length - at, rng.Next(1, 11)));
            case 1: return h.Insert(at, Tokens[rng.Next(Tokens.Length)]);
            case 2: // replace a run of digits with another number
                {
                    int start = h.IndexOfAny("0123456789".ToCharArray(), at);
                    if (start < 0) return h;
                    int end = start;
                    while (end < h.Length && char.IsAsciiDigit(h[end])) end++;
                    return h[..start] + Numbers[rng.Next(Numbers.Length)] + h[end..];
                }
            case 3: // replace a quoted string (a name, key or dtype) with another value
                {
                    int start = h.IndexOf('"', at);
                    int end = start < 0 ? -1 : h.IndexOf('"', start + 1);
                    if (end < 0) return h;
                    return h[..start] + Strings[rng.Next(Strings.Length)] + h[(end + 1)..];
                }
            default: // repeat the text up to the first '}' (the first entry or the metadata) after the opening brace
                {
                    int open = h.IndexOf('{'), close = h.IndexOf('}');
                    if (open < 0 || close <= open) return h;
                    string entry = h[(open + 1)..(close + 1)];
                    return h[..(open + 1)] + entry + "," + h[(open + 1)..];
                }
        }
    }
}
