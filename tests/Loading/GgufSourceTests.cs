using Sora.Native.Loading;
using Sora.Native.Wan;
using Sora.Runtime.Gguf;
using Sora.Runtime.Safetensors;
using Sora.Tests.Text;
using Xunit;
using static Sora.Tests.Wan.VaeTestSupport;

namespace Sora.Tests.Loading;

/// <summary>GGUF files as tensor sources (tests/fixtures/gguf: original Wan names, written by ggml).</summary>
public sealed class GgufSourceTests
{
    private static string File(string name) => Path.Combine(AppContext.BaseDirectory, "fixtures", "gguf", name);

    [Theory]
    [InlineData("F16")]
    [InlineData("BF16")]
    public void Dense_tensors_bind_under_diffusers_names_with_ggml_values(string type)
    {
        using var source = new RenamedSource(TensorSources.Open(File($"wan-tiny-{type}.gguf")), WanTransformerNames.Table);
        using var expected = SafetensorsFile.Open(File($"wan-tiny-{type}.expected.safetensors"));
        Assert.Equal(6, source.Names.Count());
        foreach (var e in expected.Entries)
        {
            string model = WanTransformerNames.Table.ToModel(e.Name)!;
            Assert.True(source.Contains(model), model);
            Assert.Equal(e.Shape, source.Describe(model).Shape);
            Assert.Equal(expected.Get(e.Name).ToFloatArray(), source.Get(model).ToFloatArray());
        }
        Assert.True(source.Contains("blocks.0.attn1.to_q.weight"));
        Assert.True(source.Contains("blocks.0.norm2.bias"));
        Assert.True(source.Contains("proj_out.weight"));
    }

    [Fact]
    public void Block_quantised_tensors_hand_out_their_blocks_and_refuse_a_dense_read_naming_tensor_and_type()
    {
        using var source = new RenamedSource(TensorSources.Open(File("wan-tiny-Q8_0.gguf")), WanTransformerNames.Table);
        var ex = Assert.Throws<NotSupportedException>(() => source.Get("blocks.0.attn1.to_q.weight"));
        Assert.Contains("wan-tiny-Q8_0.gguf", ex.Message);
        Assert.Contains("'blocks.0.self_attn.q.weight' is q8_0", ex.Message);
        Assert.True(source.TryGetBlocks("blocks.0.attn1.to_q.weight", out var type, out var blocks));
        Assert.Equal(GgmlType.Q8_0, type);
        Assert.Equal(64 * 256 / 32 * 34, blocks.Length);
        Assert.Equal([64, 256], source.Describe("blocks.0.attn1.to_q.weight").Shape);
        Assert.False(source.TryGetBlocks("blocks.0.norm2.bias", out _, out _));
        // The F32 bias of the same file is dense and binds.
        Assert.Equal([256], source.Get("blocks.0.norm2.bias").Shape);
    }

    [Fact]
    public void A_truncated_gguf_file_is_a_load_error_naming_it()
    {
        string path = Path.Combine(Path.GetTempPath(), $"sora-gguf-{Guid.NewGuid():N}.gguf");
        try
        {
            var bytes = System.IO.File.ReadAllBytes(File("wan-tiny-F16.gguf"));
            System.IO.File.WriteAllBytes(path, bytes[..(bytes.Length / 2)]);
            var ex = Assert.Throws<ModelLoadException>(() => TensorSources.Open(path).Dispose());
            Assert.Contains(path, ex.Message);
        }
        finally { System.IO.File.Delete(path); }
    }
}

/// <summary>A whole transformer from a GGUF file as city96's conversions store it: original names, the 5-D patch embedding flattened with comfy.gguf.orig_shape.</summary>
public sealed class GgufTransformerTests
{
    [Fact]
    public void A_gguf_transformer_of_f16_and_f32_tensors_matches_the_reference()
    {
        using var dir = new TempDir();
        string path = Path.Combine(dir.Path, "wan2.1_t2v_tiny-F16.gguf");
        using (var source = SafetensorsFile.Open(SingleFileFixtureTests.File("wan2.1_t2v_tiny_fp16.safetensors")))
        {
            var metadata = new List<KeyValuePair<string, GgufValue>>
            {
                KeyValuePair.Create("general.architecture", new GgufValue(GgufValueType.String, "wan")),
            };
            var tensors = new List<GgufWriterTensor>();
            foreach (var e in source.Entries.OrderBy(e => e.Name, StringComparer.Ordinal))
            {
                var shape = e.Shape;
                if (shape.Length > 4)
                {
                    metadata.Add(KeyValuePair.Create("comfy.gguf.orig_shape." + e.Name,
                        new GgufValue(GgufValueType.Array, shape, GgufValueType.Int32)));
                    shape = [shape[0], (int)(e.ElementCount / shape[0])];
                }
                byte[] bytes = source.GetBytes(e.Name).ToArray();
                tensors.Add(new(e.Name, GgmlType.F16, shape, () => bytes));
            }
            GgufWriter.Write(path, metadata, tensors);
        }

        using var backend = new PoisoningBackend(NewCpuBackend());
        using var model = WanTransformer.Load(path, backend, SingleFileFixtureTests.Config);
        using var cases = SafetensorsFile.Open(SingleFileFixtureTests.File("cases.safetensors"));
        var context = cases.Get("input_context").ToFloatArray();
        var padded = new float[512 * model.Config.TextDim];
        context.CopyTo(padded, 0);
        using var x = ToBackend(backend, cases.Get("input_latents").ToFloatArray(), cases.GetEntry("input_latents").Shape);
        using var e2 = ToBackend(backend, padded, [512, model.Config.TextDim]);
        using var v = model.Forward(x, cases.Get("input_timestep").ToFloatArray()[0], e2);
        double error = RelativeError(Read(backend, v), cases.Get("expected_fp16").ToFloatArray());
        Console.WriteLine($"GGUF (F16) transformer: relative error {error:E2}");
        Assert.True(error < 1e-4, $"relative error {error:E2}");
    }
}
