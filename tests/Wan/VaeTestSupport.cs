using Xunit;
using System.Text;
using System.Text.Json;
using Sora.Runtime;
using Sora.Runtime.Safetensors;

namespace Sora.Tests.Wan;

/// <summary>Fixture paths, error measures and synthetic VAE folders for the VAE tests.</summary>
internal static class VaeTestSupport
{
    public static string FixtureDir => Path.Combine(AppContext.BaseDirectory, "fixtures", "wan-small");
    public static string FixtureVaeDir => Path.Combine(FixtureDir, "model", "vae");
    public static string Fixture22Dir => Path.Combine(AppContext.BaseDirectory, "fixtures", "ti2v-small");
    public static string Fixture22VaeDir => Path.Combine(Fixture22Dir, "model", "vae");

    public static IBackend NewCpuBackend() => new Sora.Kernels.Cpu.CpuBackend();

    /// <summary>‖a − b‖ / ‖b‖ in float64; NaN anywhere gives NaN (which fails every "&lt;" check).</summary>
    public static double RelativeError(float[] actual, float[] expected)
    {
        Assert.Equal(expected.Length, actual.Length);
        double diff = 0, norm = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            double d = (double)actual[i] - expected[i];
            diff += d * d;
            norm += (double)expected[i] * expected[i];
        }
        return Math.Sqrt(diff) / Math.Sqrt(norm);
    }

    /// <summary>Host copy of a backend tensor as floats.</summary>
    public static float[] Read(IBackend backend, Tensor t)
    {
        using var host = backend.ToHost(t);
        return host.ToFloatArray();
    }

    /// <summary>A fixture tensor without its batch axis of 1, as floats.</summary>
    public static (float[] Data, int[] Shape) FixtureTensor(string file, string name) => FixtureTensorIn(FixtureDir, file, name);

    /// <summary>A tensor of a fixture file in <paramref name="dir"/> without its batch axis of 1, as floats.</summary>
    public static (float[] Data, int[] Shape) FixtureTensorIn(string dir, string file, string name)
    {
        using var f = SafetensorsFile.Open(Path.Combine(dir, file));
        var t = f.Get(name);
        Assert.Equal(1, t.Dim(0));
        return (t.ToFloatArray(), t.Shape[1..]);
    }

    public static Tensor ToBackend(IBackend backend, float[] data, int[] shape)
    {
        using var host = Tensor.FromArray(data, shape);
        return backend.ToDevice(host);
    }

    /// <summary>
    /// Writes F32 tensors in the safetensors format (8-byte header length, JSON header, raw data); each tensor's
    /// values are produced by <paramref name="data"/> only when written, so large files never sit in memory.
    /// A tensor whose values come back null is all zeros, left as a hole in a sparse file (instant to write);
    /// without <paramref name="data"/> every tensor is (for binding tests).
    /// </summary>
    public static void WriteSafetensors(string path, IReadOnlyList<(string Name, int[] Shape)> tensors, Func<string, int[], float[]?>? data)
    {
        var header = new Dictionary<string, object>();
        long offset = 0;
        foreach (var (name, shape) in tensors)
        {
            long bytes = 4L * shape.Aggregate(1L, (a, b) => a * b);
            header[name] = new { dtype = "F32", shape, data_offsets = new[] { offset, offset + bytes } };
            offset += bytes;
        }
        var json = Encoding.UTF8.GetBytes(JsonSerializer.Serialize(header));
        int padded = (json.Length + 7) / 8 * 8;
        using var stream = File.Create(path);
        stream.Write(BitConverter.GetBytes((ulong)padded));
        stream.Write(json);
        for (int i = json.Length; i < padded; i++) stream.WriteByte((byte)' ');
        long end = stream.Position + offset;
        foreach (var (name, shape) in tensors)
        {
            if (data?.Invoke(name, shape) is { } values)
                stream.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan()));
            else
                stream.Seek(4L * shape.Aggregate(1L, (a, b) => a * b), SeekOrigin.Current);
        }
        stream.SetLength(end);
    }

    /// <summary>All tensors of a safetensors file as F32 arrays (to re-write altered copies of the fixture).</summary>
    public static Dictionary<string, (int[] Shape, float[] Data)> ReadAll(string path)
    {
        using var f = SafetensorsFile.Open(path);
        return f.Entries.ToDictionary(e => e.Name, e => (e.Shape, f.Get(e.Name).ToFloatArray()), StringComparer.Ordinal);
    }

    /// <summary>A fresh temporary folder, deleted on Dispose.</summary>
    public sealed class TempDir : IDisposable
    {
        public string Path { get; } = Directory.CreateTempSubdirectory("sora-vae-test-").FullName;
        public void Dispose()
        {
            try { Directory.Delete(Path, recursive: true); } catch (IOException) { }
        }
    }

    /// <summary>
    /// Names and shapes of every tensor of a Wan2.1 VAE in the diffusers layout, written from the specification
    /// (wan-architecture.md 3.3, 3.4, 3.7), independently of the model code.
    /// </summary>
    public static List<(string Name, int[] Shape)> VaeTensorShapes(int baseDim, int[] dimMult, int z, int numResBlocks, bool[] temporalDown)
    {
        var t = new ShapeList();
        int stages = dimMult.Length;
        var enc = new[] { baseDim }.Concat(dimMult.Select(m => baseDim * m)).ToArray();
        t.Conv("encoder.conv_in", enc[0], 3, 3, 3, 3);
        int k = 0;
        for (int s = 0; s < stages; s++)
        {
            int i = enc[s], o = enc[s + 1];
            for (int r = 0; r < numResBlocks; r++, i = o) t.Res($"encoder.down_blocks.{k++}", i, o);
            if (s == stages - 1) continue;
            t.Conv($"encoder.down_blocks.{k}.resample.1", o, o, 3, 3);
            if (temporalDown[s]) t.Conv($"encoder.down_blocks.{k}.time_conv", o, o, 3, 1, 1);
            k++;
        }
        t.Head("encoder", enc[^1], 2 * z);
        t.Conv("quant_conv", 2 * z, 2 * z, 1, 1, 1);
        t.Conv("post_quant_conv", z, z, 1, 1, 1);

        var dec = new[] { dimMult[^1] }.Concat(dimMult.Reverse()).Select(m => baseDim * m).ToArray();
        var temporalUp = temporalDown.Reverse().ToArray();
        t.Conv("decoder.conv_in", dec[0], z, 3, 3, 3);
        t.Mid("decoder.mid_block", dec[0]);
        for (int s = 0; s < stages; s++)
        {
            int i = s == 0 ? dec[0] : dec[s] / 2, o = dec[s + 1];
            for (int r = 0; r <= numResBlocks; r++, i = o) t.Res($"decoder.up_blocks.{s}.resnets.{r}", i, o);
            if (s == stages - 1) continue;
            t.Conv($"decoder.up_blocks.{s}.upsamplers.0.resample.1", o / 2, o, 3, 3);
            if (temporalUp[s]) t.Conv($"decoder.up_blocks.{s}.upsamplers.0.time_conv", 2 * o, o, 3, 1, 1);
        }
        t.Add(("decoder.norm_out.gamma", [dec[^1], 1, 1, 1]));
        t.Conv("decoder.conv_out", 3, dec[^1], 3, 3, 3);
        return t;
    }

    /// <summary>
    /// Names and shapes of every tensor of a Wan2.2 VAE (is_residual, patch_size 2) in the diffusers layout, written
    /// from the specification (wan22-and-conditioning.md): per encoder stage down_blocks.i.resnets.r and
    /// down_blocks.i.downsampler, per decoder stage up_blocks.i.resnets.r (num_res_blocks + 1) and up_blocks.i.upsampler
    /// keeping the width; 12 = 3·2² channels into the encoder and out of the decoder; the shortcuts have no weights.
    /// </summary>
    public static List<(string Name, int[] Shape)> Vae22TensorShapes(int baseDim, int decoderBaseDim, int[] dimMult, int z, int numResBlocks, bool[] temporalDown)
    {
        var t = new ShapeList();
        int stages = dimMult.Length;
        var enc = new[] { baseDim }.Concat(dimMult.Select(m => baseDim * m)).ToArray();
        t.Conv("encoder.conv_in", enc[0], 12, 3, 3, 3);
        for (int s = 0; s < stages; s++)
        {
            int i = enc[s], o = enc[s + 1];
            for (int r = 0; r < numResBlocks; r++, i = o) t.Res($"encoder.down_blocks.{s}.resnets.{r}", i, o);
            if (s == stages - 1) continue;
            t.Conv($"encoder.down_blocks.{s}.downsampler.resample.1", o, o, 3, 3);
            if (temporalDown[s]) t.Conv($"encoder.down_blocks.{s}.downsampler.time_conv", o, o, 3, 1, 1);
        }
        t.Head("encoder", enc[^1], 2 * z);
        t.Conv("quant_conv", 2 * z, 2 * z, 1, 1, 1);
        t.Conv("post_quant_conv", z, z, 1, 1, 1);

        var dec = new[] { dimMult[^1] }.Concat(dimMult.Reverse()).Select(m => decoderBaseDim * m).ToArray();
        var temporalUp = temporalDown.Reverse().ToArray();
        t.Conv("decoder.conv_in", dec[0], z, 3, 3, 3);
        t.Mid("decoder.mid_block", dec[0]);
        for (int s = 0; s < stages; s++)
        {
            int i = dec[s], o = dec[s + 1];
            for (int r = 0; r <= numResBlocks; r++, i = o) t.Res($"decoder.up_blocks.{s}.resnets.{r}", i, o);
            if (s == stages - 1) continue;
            t.Conv($"decoder.up_blocks.{s}.upsampler.resample.1", o, o, 3, 3);
            if (temporalUp[s]) t.Conv($"decoder.up_blocks.{s}.upsampler.time_conv", 2 * o, o, 3, 1, 1);
        }
        t.Add(("decoder.norm_out.gamma", [dec[^1], 1, 1, 1]));
        t.Conv("decoder.conv_out", 12, dec[^1], 3, 3, 3);
        return t;
    }

    /// <summary>The building blocks the two layouts share.</summary>
    private sealed class ShapeList : List<(string Name, int[] Shape)>
    {
        public void Conv(string name, params int[] shape)
        {
            Add((name + ".weight", shape));
            Add((name + ".bias", [shape[0]]));
        }

        public void Res(string name, int i, int o)
        {
            Add((name + ".norm1.gamma", [i, 1, 1, 1]));
            Conv(name + ".conv1", o, i, 3, 3, 3);
            Add((name + ".norm2.gamma", [o, 1, 1, 1]));
            Conv(name + ".conv2", o, o, 3, 3, 3);
            if (i != o) Conv(name + ".conv_shortcut", o, i, 1, 1, 1);
        }

        public void Mid(string name, int c)
        {
            Res(name + ".resnets.0", c, c);
            Add((name + ".attentions.0.norm.gamma", [c, 1, 1]));
            Conv(name + ".attentions.0.to_qkv", 3 * c, c, 1, 1);
            Conv(name + ".attentions.0.proj", c, c, 1, 1);
            Res(name + ".resnets.1", c, c);
        }

        /// <summary>The encoder's mid block, norm_out and conv_out.</summary>
        public void Head(string prefix, int c, int outChannels)
        {
            Mid(prefix + ".mid_block", c);
            Add((prefix + ".norm_out.gamma", [c, 1, 1, 1]));
            Conv(prefix + ".conv_out", outChannels, c, 3, 3, 3);
        }
    }

    /// <summary>
    /// Writes a VAE folder (config.json + weights) with random weights scaled so activations stay of order 1:
    /// convolution weights uniform with variance 1/fan_in, gammas near 1, small biases.
    /// </summary>
    public static void WriteRandomVae(string dir, int baseDim, int[] dimMult, int z, int numResBlocks, int seed)
    {
        bool[] temporalDown = dimMult.Skip(1).Select((_, i) => i > 0).ToArray(); // [false, true, true, ...]
        WriteSafetensors(Path.Combine(dir, "diffusion_pytorch_model.safetensors"),
            VaeTensorShapes(baseDim, dimMult, z, numResBlocks, temporalDown), RandomWeights(seed));
        WriteConfig(dir, baseDim, dimMult, z, numResBlocks, temporalDown, []);
    }

    /// <summary>
    /// A Wan2.2 VAE folder (is_residual, patch_size 2) with random weights as <see cref="WriteRandomVae"/>; with
    /// <paramref name="decoderOnly"/> the encoder's weights are zeros (a sparse file: quick for decode-only tests).
    /// </summary>
    public static void WriteRandomVae22(string dir, int baseDim, int decoderBaseDim, int[] dimMult, int z, int numResBlocks, int seed, bool decoderOnly = false)
    {
        bool[] temporalDown = dimMult.Skip(1).Select((_, i) => i > 0).ToArray();
        var random = RandomWeights(seed);
        WriteSafetensors(Path.Combine(dir, "diffusion_pytorch_model.safetensors"),
            Vae22TensorShapes(baseDim, decoderBaseDim, dimMult, z, numResBlocks, temporalDown),
            (name, shape) => decoderOnly && !name.StartsWith("decoder.") && name != "post_quant_conv.weight" && name != "post_quant_conv.bias" ? null : random(name, shape));
        WriteConfig(dir, baseDim, dimMult, z, numResBlocks, temporalDown, new()
        {
            ["decoder_base_dim"] = decoderBaseDim,
            ["is_residual"] = true,
            ["patch_size"] = 2,
            ["in_channels"] = 12,
            ["out_channels"] = 12,
            ["scale_factor_spatial"] = 16,
            ["scale_factor_temporal"] = 4,
        });
    }

    private static Func<string, int[], float[]> RandomWeights(int seed)
    {
        var rng = new Random(seed);
        return (name, shape) =>
        {
            long n = shape.Aggregate(1L, (a, b) => a * b);
            var data = new float[n];
            if (name.EndsWith(".gamma"))
                for (long i = 0; i < n; i++) data[i] = 1f + 0.2f * (rng.NextSingle() - 0.5f);
            else if (name.EndsWith(".bias"))
                for (long i = 0; i < n; i++) data[i] = 0.1f * (rng.NextSingle() - 0.5f);
            else
            {
                float a = MathF.Sqrt(3f / (n / shape[0]));
                for (long i = 0; i < n; i++) data[i] = a * (2 * rng.NextSingle() - 1);
            }
            return data;
        };
    }

    private static void WriteConfig(string dir, int baseDim, int[] dimMult, int z, int numResBlocks, bool[] temporalDown, Dictionary<string, object?> extra)
    {
        var config = new Dictionary<string, object?>
        {
            ["_class_name"] = "AutoencoderKLWan",
            ["attn_scales"] = Array.Empty<int>(),
            ["base_dim"] = baseDim,
            ["dim_mult"] = dimMult,
            ["num_res_blocks"] = numResBlocks,
            ["temperal_downsample"] = temporalDown,
            ["z_dim"] = z,
            ["latents_mean"] = new float[z],
            ["latents_std"] = Enumerable.Repeat(1f, z).ToArray(),
        };
        foreach (var (key, value) in extra) config[key] = value;
        File.WriteAllText(Path.Combine(dir, "config.json"), JsonSerializer.Serialize(config));
    }
}
