using Sora.Native.Loading;
using Sora.Native.Wan;
using Sora.Runtime;
using Sora.Runtime.Gguf;
using Sora.Runtime.Safetensors;
using Sora.Tests.Text;
using Xunit;
using static Sora.Tests.Wan.VaeTestSupport;

namespace Sora.Tests.Loading;

/// <summary>
/// Quantised files through the loaders: a transformer whose linears are Q8_0 GGUF blocks, and a LoRA on fp8 weights
/// kept as a side path, each against the same model with those weights expanded into a dense F32 file.
/// </summary>
public sealed class QuantizedLoadTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private static float[] Case(string name)
    {
        using var f = SafetensorsFile.Open(SingleFileFixtureTests.File("cases.safetensors"));
        return f.Get(name).ToFloatArray();
    }

    private static float[] Velocity(string file, IReadOnlyList<LoraSpec>? loras = null)
    {
        using var backend = new PoisoningBackend(NewCpuBackend());
        using var model = WanTransformer.Load(file, backend, SingleFileFixtureTests.Config, loras);
        var padded = new float[512 * model.Config.TextDim];
        Case("input_context").CopyTo(padded, 0);
        using var x = ToBackend(backend, Case("input_latents"), [4, 3, 8, 12]);
        using var e = ToBackend(backend, padded, [512, model.Config.TextDim]);
        using var v = model.Forward(x, Case("input_timestep")[0], e);
        return Read(backend, v);
    }

    /// <summary>ggml's Q8_0 of one row-major run of 32-multiples: per block d = max|x|/127 (as f16), q = round(x/d).</summary>
    private static (byte[] Blocks, float[] Values) Q8_0(float[] x)
    {
        var blocks = new byte[x.Length / 32 * 34];
        var values = new float[x.Length];
        for (int b = 0; b < x.Length / 32; b++)
        {
            float amax = 0;
            for (int i = 0; i < 32; i++) amax = Math.Max(amax, Math.Abs(x[b * 32 + i]));
            Half d = (Half)(amax / 127f);
            BitConverter.TryWriteBytes(blocks.AsSpan(b * 34, 2), d);
            float id = amax == 0 ? 0 : 1f / (amax / 127f);
            for (int i = 0; i < 32; i++)
            {
                sbyte q = (sbyte)Math.Round(x[b * 32 + i] * id);
                blocks[b * 34 + 2 + i] = (byte)q;
                values[b * 32 + i] = (float)d * q;
            }
        }
        return (blocks, values);
    }

    [Fact]
    public void A_gguf_transformer_with_q8_0_linears_equals_its_expansion()
    {
        var tensors = ReadAll(SingleFileFixtureTests.File("wan2.1_t2v_tiny_fp16.safetensors"));
        var written = new List<GgufWriterTensor>();
        var expanded = new Dictionary<string, float[]>();
        var metadata = new List<KeyValuePair<string, GgufValue>>();
        int quantised = 0;
        foreach (var (name, (shape, data)) in tensors.OrderBy(t => t.Key, StringComparer.Ordinal))
        {
            bool linear = name.StartsWith("blocks.", StringComparison.Ordinal) && name.EndsWith(".weight", StringComparison.Ordinal) && shape.Length == 2 && shape[1] % 32 == 0;
            if (linear)
            {
                var (blocks, values) = Q8_0(data);
                written.Add(new(name, GgmlType.Q8_0, shape, () => blocks));
                expanded[name] = values;
                quantised++;
                continue;
            }
            var stored = shape;
            if (shape.Length > 4)
            {
                metadata.Add(KeyValuePair.Create("comfy.gguf.orig_shape." + name, new GgufValue(GgufValueType.Array, shape, GgufValueType.Int32)));
                stored = [shape[0], data.Length / shape[0]];
            }
            var bytes = System.Runtime.InteropServices.MemoryMarshal.AsBytes(data.AsSpan()).ToArray();
            written.Add(new(name, GgmlType.F32, stored, () => bytes));
            expanded[name] = data;
        }
        Assert.Equal(20, quantised);
        string gguf = Path.Combine(_dir.Path, "tiny-Q8_0.gguf"), dense = Path.Combine(_dir.Path, "tiny-expanded.safetensors");
        GgufWriter.Write(gguf, metadata, written);
        WriteSafetensors(dense, tensors.Select(t => (t.Key, t.Value.Shape)).ToList(), (n, _) => expanded[n]);

        double error = RelativeError(Velocity(gguf), Velocity(dense));
        Console.WriteLine($"Q8_0 GGUF transformer vs its F32 expansion: relative error {error:E2}");
        Assert.True(error < 1e-5, $"relative error {error:E2}");
    }

    [Fact]
    public void A_lora_on_scaled_fp8_weights_is_a_side_path_equal_to_merging_into_their_expansion()
    {
        string fp8 = SingleFileFixtureTests.File("wan2.1_t2v_tiny_fp8_scaled.safetensors");
        var lora = new LoraSpec(SingleFileFixtureTests.File("lora_tiny_comfy.safetensors"), 0.8f);
        // The dense twin: every fp8 weight expanded to f8·scale in F32, the scales and the marker dropped.
        using var file = SafetensorsFile.Open(fp8);
        var tensors = new Dictionary<string, (int[] Shape, float[] Data)>(StringComparer.Ordinal);
        foreach (var e in file.Entries)
        {
            if (e.Name == "scaled_fp8" || e.Name.EndsWith(".scale_weight", StringComparison.Ordinal)) continue;
            var values = file.Get(e.Name).ToFloatArray();
            string scale = e.Name[..^".weight".Length] + ".scale_weight";
            if (e.Name.EndsWith(".weight", StringComparison.Ordinal) && file.Contains(scale))
            {
                float s = file.Get(scale).ToFloatArray()[0];
                values = values.Select(v => v * s).ToArray();
            }
            tensors[e.Name] = (e.Shape, values);
        }
        string dense = Path.Combine(_dir.Path, "expanded.safetensors");
        WriteSafetensors(dense, tensors.Select(t => (t.Key, t.Value.Shape)).ToList(), (n, _) => tensors[n].Data);

        using (var backend = NewCpuBackend())
        using (var model = WanTransformer.Load(fp8, backend, SingleFileFixtureTests.Config, [lora]))
            Assert.Equal(20, model.Loras[0].LayersTouched);
        double error = RelativeError(Velocity(fp8, [lora]), Velocity(dense, [lora]));
        Console.WriteLine($"LoRA side path on scaled fp8 vs merged into the expansion: relative error {error:E2}");
        Assert.True(error < 1e-5, $"relative error {error:E2}");
        Assert.True(RelativeError(Velocity(fp8, [lora]), Velocity(fp8)) > 1e-2); // the LoRA is really applied
    }
}
