using Sora.Native.Loading;
using Sora.Runtime;
using Sora.Runtime.Safetensors;
using Sora.Tests.Text;
using Xunit;
using static Sora.Tests.Wan.VaeTestSupport;

namespace Sora.Tests.Loading;

/// <summary>LoRA reading and merging against a float64 reference on fresh random weights, and its errors.</summary>
public sealed class LoraTests : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly Random _rng = new(23);

    public void Dispose() => _dir.Dispose();

    private float[] Random(long n) => Enumerable.Range(0, (int)n).Select(_ => (float)(_rng.NextDouble() * 2 - 1)).ToArray();

    private string Write(string name, params (string Name, int[] Shape, float[] Data)[] tensors)
    {
        string path = Path.Combine(_dir.Path, name);
        var data = tensors.ToDictionary(t => t.Name, t => t.Data);
        WriteSafetensors(path, tensors.Select(t => (t.Name, t.Shape)).ToList(), (n, _) => data[n]);
        return path;
    }

    /// <summary>A base model in diffusers names: one linear [24, 40], a conv [8, 4, 1, 2, 2], and a bias.</summary>
    private (ITensorSource Source, float[] Linear, float[] Conv) Base()
    {
        var linear = Random(24 * 40);
        var conv = Random(8 * 4 * 4);
        string path = Write("base.safetensors",
            ("blocks.0.attn1.to_q.weight", [24, 40], linear),
            ("blocks.0.attn1.to_q.bias", [24], Random(24)),
            ("patch_embedding.weight", [8, 4, 1, 2, 2], conv));
        return (new RenamedSource(TensorSources.Open(path), WanTransformerNames.Table), linear, conv);
    }

    /// <summary>W + s · up·down in float64.</summary>
    private static double[] Reference(float[] w, float[] up, float[] down, int rank, double scale)
    {
        int columns = down.Length / rank, rows = up.Length / rank;
        var result = new double[w.Length];
        for (int o = 0; o < rows; o++)
            for (int i = 0; i < columns; i++)
            {
                double sum = 0;
                for (int r = 0; r < rank; r++) sum += (double)up[o * rank + r] * down[r * columns + i];
                result[o * columns + i] = w[o * columns + i] + scale * sum;
            }
        return result;
    }

    private static double Error(float[] actual, double[] expected)
    {
        double diff = 0, norm = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            diff += (actual[i] - expected[i]) * (actual[i] - expected[i]);
            norm += expected[i] * expected[i];
        }
        return Math.Sqrt(diff / norm);
    }

    [Fact]
    public void Kohya_and_peft_loras_on_a_linear_and_a_conv_merge_to_the_float64_sum()
    {
        var (source, linear, conv) = Base();
        using var backend = new PoisoningBackend(NewCpuBackend());
        // kohya: flattened original names (blocks.0.self_attn.q), lora_down/lora_up, alpha 2.5 at rank 5.
        var kDown = Random(5 * 40);
        var kUp = Random(24 * 5);
        var cDown = Random(3 * 16);
        var cUp = Random(8 * 3);
        string kohya = Write("kohya.safetensors",
            ("lora_unet_blocks_0_self_attn_q.lora_down.weight", [5, 40], kDown),
            ("lora_unet_blocks_0_self_attn_q.lora_up.weight", [24, 5], kUp),
            ("lora_unet_blocks_0_self_attn_q.alpha", [], [2.5f]),
            ("lora_unet_patch_embedding.lora_down.weight", [3, 4, 1, 2, 2], cDown),
            ("lora_unet_patch_embedding.lora_up.weight", [8, 3, 1, 1, 1], cUp));
        // peft: diffusers names, lora_A/lora_B, no alpha.
        var pA = Random(2 * 40);
        var pB = Random(24 * 2);
        string peft = Write("peft.safetensors",
            ("transformer.blocks.0.attn1.to_q.lora_A.weight", [2, 40], pA),
            ("transformer.blocks.0.attn1.to_q.lora_B.weight", [24, 2], pB));

        var (kd, ks) = Lora.Read(new LoraSpec(kohya, 0.6f), source, WanTransformerNames.Table);
        var (pd, ps) = Lora.Read(new LoraSpec(peft, -1.3f), source, WanTransformerNames.Table);
        Assert.Equal(2, ks.LayersTouched);
        Assert.Equal(1, ps.LayersTouched);
        using var merged = new LoraMergedSource(source, kd.Concat(pd), backend);

        // W + 0.6·(2.5/5)·up·down + (−1.3)·B·A
        var expectedLinear = Reference(linear, kUp, kDown, 5, 0.6 * 2.5 / 5).Zip(Reference(new float[linear.Length], pB, pA, 2, -1.3), (a, b) => a + b).ToArray();
        double linearError = Error(merged.Get("blocks.0.attn1.to_q.weight").ToFloatArray(), expectedLinear);
        double convError = Error(merged.Get("patch_embedding.weight").ToFloatArray(), Reference(conv, cUp, cDown, 3, 0.6));
        Console.WriteLine($"LoRA merge vs float64: linear {linearError:E2}, conv {convError:E2}");
        Assert.True(linearError < 1e-6, $"linear {linearError:E2}");
        Assert.True(convError < 1e-6, $"conv {convError:E2}");
        Assert.Equal(DType.F32, merged.Describe("blocks.0.attn1.to_q.weight").DType);
        Assert.Equal([8, 4, 1, 2, 2], merged.Get("patch_embedding.weight").Shape);
        Assert.Equal(source.Get("blocks.0.attn1.to_q.bias").ToFloatArray(), merged.Get("blocks.0.attn1.to_q.bias").ToFloatArray());
    }

    [Fact]
    public void A_lora_whose_keys_match_nothing_names_the_file()
    {
        var (source, _, _) = Base();
        using (source)
        {
            string path = Write("other.safetensors",
                ("diffusion_model.blocks.0.nothing.lora_down.weight", [2, 40], Random(80)),
                ("diffusion_model.blocks.0.nothing.lora_up.weight", [24, 2], Random(48)));
            var ex = Assert.Throws<ModelLoadException>(() => Lora.Read(new LoraSpec(path), source, WanTransformerNames.Table));
            Assert.Contains("other.safetensors", ex.Message);
            Assert.Contains("none of its 1 LoRA layers", ex.Message);
        }
    }

    [Fact]
    public void Ranks_that_disagree_name_the_file_and_tensor()
    {
        var (source, _, _) = Base();
        using (source)
        {
            string path = Write("rank.safetensors",
                ("diffusion_model.blocks.0.self_attn.q.lora_down.weight", [4, 40], Random(160)),
                ("diffusion_model.blocks.0.self_attn.q.lora_up.weight", [24, 3], Random(72)));
            var ex = Assert.Throws<ModelLoadException>(() => Lora.Read(new LoraSpec(path), source, WanTransformerNames.Table));
            Assert.Contains("rank.safetensors", ex.Message);
            Assert.Contains("'diffusion_model.blocks.0.self_attn.q.lora_up.weight'", ex.Message);
            Assert.Contains("rank 4", ex.Message);
        }
    }

    [Fact]
    public void A_pair_that_does_not_fit_the_layer_names_both_shapes()
    {
        var (source, _, _) = Base();
        using (source)
        {
            string path = Write("shape.safetensors",
                ("diffusion_model.blocks.0.self_attn.q.lora_down.weight", [4, 48], Random(192)),
                ("diffusion_model.blocks.0.self_attn.q.lora_up.weight", [24, 4], Random(96)));
            var ex = Assert.Throws<ModelLoadException>(() => Lora.Read(new LoraSpec(path), source, WanTransformerNames.Table));
            Assert.Contains("[24, 48]", ex.Message);
            Assert.Contains("'blocks.0.attn1.to_q.weight'", ex.Message);
            Assert.Contains("[24, 40]", ex.Message);
        }
    }

    [Fact]
    public void A_lora_matching_part_of_the_model_says_how_much_it_touched_and_what_it_skipped()
    {
        var (source, _, _) = Base();
        using (source)
        {
            string path = Write("part.safetensors",
                ("diffusion_model.blocks.0.self_attn.q.lora_down.weight", [2, 40], Random(80)),
                ("diffusion_model.blocks.0.self_attn.q.lora_up.weight", [24, 2], Random(48)),
                ("diffusion_model.blocks.0.cross_attn.k_img.lora_down.weight", [2, 40], Random(80)),
                ("diffusion_model.blocks.0.cross_attn.k_img.lora_up.weight", [24, 2], Random(48)));
            var (_, summary) = Lora.Read(new LoraSpec(path, 0.5f), source, WanTransformerNames.Table);
            Assert.Equal(1, summary.LayersTouched);
            Assert.Equal(2, summary.ModelLayers);
            Assert.Single(summary.Unmatched);
            Assert.Contains("1 of 2 weight tensors", summary.ToString());
            Assert.Contains("k_img", summary.ToString());
        }
    }

    [Fact]
    public void A_tensor_of_no_lora_kind_and_a_half_pair_are_named()
    {
        var (source, _, _) = Base();
        using (source)
        {
            string odd = Write("odd.safetensors", ("diffusion_model.blocks.0.self_attn.q.weight", [24, 40], Random(960)));
            Assert.Contains("'diffusion_model.blocks.0.self_attn.q.weight' is not a LoRA tensor",
                Assert.Throws<ModelLoadException>(() => Lora.Read(new LoraSpec(odd), source, WanTransformerNames.Table)).Message);
            string half = Write("half.safetensors", ("diffusion_model.blocks.0.self_attn.q.lora_down.weight", [2, 40], Random(80)));
            Assert.Contains("no lora_up/lora_B partner",
                Assert.Throws<ModelLoadException>(() => Lora.Read(new LoraSpec(half), source, WanTransformerNames.Table)).Message);
        }
    }

    [Theory]
    [InlineData("a.safetensors", "a.safetensors", 1f)]
    [InlineData("a.safetensors:0.75", "a.safetensors", 0.75f)]
    [InlineData("C:/x/a.safetensors", "C:/x/a.safetensors", 1f)]
    [InlineData("dir:1/a.safetensors:-2", "dir:1/a.safetensors", -2f)]
    public void Lora_arguments_split_at_a_trailing_strength(string text, string path, float strength)
        => Assert.Equal(new LoraSpec(path, strength), LoraSpec.Parse(text));
}
