using System.Buffers.Binary;
using System.Text.Json;
using Sora.Cli;
using Xunit;

namespace Sora.Tests.Cli;

public sealed record CliResult(int Code, string Out, string Err)
{
    public string[] ErrLines => Err.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    /// <summary>The run failed with exactly one "sora: error: ..." line on stderr, nothing else, and returns that line.</summary>
    public string SingleError()
    {
        Assert.True(Code != 0, $"expected a failure, got exit 0; stdout: {Out}");
        var line = Assert.Single(ErrLines);
        Assert.StartsWith("sora: error: ", line);
        Assert.DoesNotContain(" at Sora.", Err); // never a stack trace
        return line;
    }
}

/// <summary>Runs the sora command in-process.</summary>
public static class CliRunner
{
    public static string Fixtures => Path.Combine(AppContext.BaseDirectory, "fixtures", "wan-small");
    public static string Model => Path.Combine(Fixtures, "model");

    public static CliResult Run(params string[] args) => Run(CancellationToken.None, args);

    public static CliResult Run(CancellationToken ct, params string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        int code = Program.Run(args, o, e, ct);
        return new CliResult(code, o.ToString(), e.ToString());
    }

    public static string NewTempDir()
    {
        var dir = Path.Combine(Path.GetTempPath(), "sora-cli-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        return dir;
    }
}

/// <summary>
/// A safetensors reader written for the tests (header JSON + raw little-endian data), independent of the runtime's
/// reader; reads F32 data and the headers of any dtype (the fixtures also hold I64).
/// </summary>
public static class MiniSafetensors
{
    public sealed record Entry(string DType, int[] Shape, long Begin, long End)
    {
        public long Count => Shape.Aggregate(1L, (a, b) => a * b);
    }

    public static Dictionary<string, Entry> Header(string path)
    {
        using var f = File.OpenRead(path);
        var len = new byte[8];
        f.ReadExactly(len);
        var json = new byte[BinaryPrimitives.ReadInt64LittleEndian(len)];
        f.ReadExactly(json);
        using var doc = JsonDocument.Parse(json);
        var result = new Dictionary<string, Entry>();
        foreach (var p in doc.RootElement.EnumerateObject())
        {
            if (p.Name == "__metadata__") continue;
            var off = p.Value.GetProperty("data_offsets");
            result[p.Name] = new Entry(p.Value.GetProperty("dtype").GetString()!,
                p.Value.GetProperty("shape").EnumerateArray().Select(d => d.GetInt32()).ToArray(), off[0].GetInt64(), off[1].GetInt64());
        }
        return result;
    }

    public static (int[] Shape, float[] Values) ReadF32(string path, string name)
    {
        var entry = Header(path)[name];
        Assert.Equal("F32", entry.DType);
        var bytes = File.ReadAllBytes(path);
        long start = 8 + BinaryPrimitives.ReadInt64LittleEndian(bytes) + entry.Begin;
        var values = new float[entry.Count];
        for (int i = 0; i < values.Length; i++) values[i] = BinaryPrimitives.ReadSingleLittleEndian(bytes.AsSpan((int)start + 4 * i));
        return (entry.Shape, values);
    }

    /// <summary>Writes float32 tensors as a safetensors file (for handing fixture inputs to the command line).</summary>
    public static void WriteF32(string path, params (string Name, int[] Shape, float[] Values)[] tensors)
    {
        var header = new Dictionary<string, object>();
        long offset = 0;
        foreach (var t in tensors)
        {
            header[t.Name] = new { dtype = "F32", shape = t.Shape, data_offsets = new[] { offset, offset + 4L * t.Values.Length } };
            offset += 4L * t.Values.Length;
        }
        var json = JsonSerializer.SerializeToUtf8Bytes(header);
        using var f = File.Create(path);
        var len = new byte[8];
        BinaryPrimitives.WriteInt64LittleEndian(len, json.Length);
        f.Write(len);
        f.Write(json);
        foreach (var t in tensors)
            foreach (var v in t.Values)
            {
                var b = new byte[4];
                BinaryPrimitives.WriteSingleLittleEndian(b, v);
                f.Write(b);
            }
    }

    public static double RelativeError(float[] actual, float[] expected)
    {
        Assert.Equal(expected.Length, actual.Length);
        double num = 0, den = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            double d = (double)actual[i] - expected[i];
            num += d * d;
            den += (double)expected[i] * expected[i];
        }
        return Math.Sqrt(num / den);
    }
}
