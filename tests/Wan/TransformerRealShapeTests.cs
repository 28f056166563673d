using System.Text.Json;
using Sora.Native.Wan;
using Sora.Runtime;
using Xunit;
using static Sora.Tests.Wan.VaeTestSupport;

namespace Sora.Tests.Wan;

/// <summary>
/// One-block transformers with real widths and random weights, on 192 tokens: a few output tokens are checked
/// against a float64 evaluation of the architecture written from the specification in this test. Wan2.1-T2V-1.3B
/// (12 heads × 128, ffn 8960, 16 channels) with a scalar timestep; Wan2.2-TI2V-5B (24 heads × 128, ffn 14336,
/// 48 channels) with per-token timesteps (0 on the first latent frame, t on the second, as image to video).
/// Both text_dim 4096, freq_dim 256.
/// </summary>
public sealed class TransformerRealShapeTests
{
    private const int HeadDim = 128, TextDim = 4096, FreqDim = 256;
    private const int T = 2, H = 16, W = 24, Hp = H / 2, Wp = W / 2, L = T * Hp * Wp;
    private const double Eps = 1e-6;

    /// <summary>The widths that differ between the two models, and the number of text rows.</summary>
    private sealed record Widths(int Heads, int Ffn, int Channels, int TextRows)
    {
        public int D => Heads * HeadDim;
    }

    [Fact]
    public void One_block_at_Wan_1_3B_width_matches_a_float64_reference()
    {
        var widths = new Widths(Heads: 12, Ffn: 8960, Channels: 16, TextRows: 64);
        AssertOneBlockMatches(widths, Enumerable.Repeat(937f, L).ToArray(), useTokenOverload: false, "1.3B-width block");
    }

    /// <summary>Opt-in (SORA_REAL_SHAPE_TI2V=1): 1 GB of random weights and a float64 reference, about a minute on two cores.</summary>
    [OptInFact("SORA_REAL_SHAPE_TI2V")]
    public void One_block_at_Wan2_2_TI2V_5B_width_with_per_token_timesteps_matches_a_float64_reference()
    {
        var widths = new Widths(Heads: 24, Ffn: 14336, Channels: 48, TextRows: 16);
        var timesteps = Enumerable.Range(0, L).Select(t => t < Hp * Wp ? 0f : 713f).ToArray();
        AssertOneBlockMatches(widths, timesteps, useTokenOverload: true, "TI2V-5B-width block, timesteps {0, 713}");
    }

    private static void AssertOneBlockMatches(Widths widths, float[] timesteps, bool useTokenOverload, string what)
    {
        int c = widths.Channels;
        using var dir = new TempDir();
        var weights = WriteModel(dir.Path, widths);
        var rng = new Random(5);
        var latents = Enumerable.Range(0, c * T * H * W).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        var text = Enumerable.Range(0, widths.TextRows * TextDim).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();

        float[] output;
        using (var backend = NewCpuBackend())
        using (var model = WanTransformer.Load(dir.Path, backend))
        using (var x = Tensor.FromArray(latents, [c, T, H, W]))
        using (var e = Tensor.FromArray(text, [widths.TextRows, TextDim]))
        using (var v = useTokenOverload ? model.Forward(x, timesteps, e) : model.Forward(x, timesteps[0], e))
            output = v.ToFloatArray();
        Assert.All(output, o => Assert.True(float.IsFinite(o)));

        // Tokens of both frames (with per-token timesteps: both timesteps).
        int[] tokens = [0, 77, 150, 191];
        var expected = new Reference(widths, weights, latents, text, timesteps).OutputTokens(tokens);
        var actual = new List<float>();
        var wanted = new List<float>();
        for (int i = 0; i < tokens.Length; i++)
        {
            int f = tokens[i] / (Hp * Wp), h = tokens[i] / Wp % Hp, w = tokens[i] % Wp;
            for (int dh = 0; dh < 2; dh++)
                for (int dw = 0; dw < 2; dw++)
                    for (int ch = 0; ch < c; ch++)
                    {
                        actual.Add(output[((ch * T + f) * H + 2 * h + dh) * W + 2 * w + dw]);
                        wanted.Add((float)expected[i][(dh * 2 + dw) * c + ch]);
                    }
        }
        double error = RelativeError(actual.ToArray(), wanted.ToArray());
        Console.WriteLine($"{what}: relative error {error:E2} on {actual.Count} outputs");
        Assert.True(error < 1e-5, $"{what}: relative error {error:E2}");
    }

    /// <summary>Writes config.json and random weights (variance 1/fan_in, norm weights near 1); returns them for the reference.</summary>
    private static Dictionary<string, float[]> WriteModel(string dir, Widths widths)
    {
        int D = widths.D, C = widths.Channels, Ffn = widths.Ffn;
        var shapes = new List<(string, int[])>
        {
            ("patch_embedding.weight", [D, C, 1, 2, 2]), ("patch_embedding.bias", [D]),
            ("condition_embedder.time_embedder.linear_1.weight", [D, FreqDim]), ("condition_embedder.time_embedder.linear_1.bias", [D]),
            ("condition_embedder.time_embedder.linear_2.weight", [D, D]), ("condition_embedder.time_embedder.linear_2.bias", [D]),
            ("condition_embedder.time_proj.weight", [6 * D, D]), ("condition_embedder.time_proj.bias", [6 * D]),
            ("condition_embedder.text_embedder.linear_1.weight", [D, TextDim]), ("condition_embedder.text_embedder.linear_1.bias", [D]),
            ("condition_embedder.text_embedder.linear_2.weight", [D, D]), ("condition_embedder.text_embedder.linear_2.bias", [D]),
            ("blocks.0.scale_shift_table", [1, 6, D]),
            ("blocks.0.norm2.weight", [D]), ("blocks.0.norm2.bias", [D]),
            ("blocks.0.ffn.net.0.proj.weight", [Ffn, D]), ("blocks.0.ffn.net.0.proj.bias", [Ffn]),
            ("blocks.0.ffn.net.2.weight", [D, Ffn]), ("blocks.0.ffn.net.2.bias", [D]),
            ("proj_out.weight", [C * 4, D]), ("proj_out.bias", [C * 4]),
            ("scale_shift_table", [1, 2, D]),
        };
        foreach (var attn in new[] { "attn1", "attn2" })
        {
            foreach (var p in new[] { "to_q", "to_k", "to_v", "to_out.0" })
            {
                shapes.Add(($"blocks.0.{attn}.{p}.weight", [D, D]));
                shapes.Add(($"blocks.0.{attn}.{p}.bias", [D]));
            }
            shapes.Add(($"blocks.0.{attn}.norm_q.weight", [D]));
            shapes.Add(($"blocks.0.{attn}.norm_k.weight", [D]));
        }
        var rng = new Random(17);
        var values = new Dictionary<string, float[]>();
        foreach (var (name, shape) in shapes)
        {
            int n = shape.Aggregate(1, (a, b) => a * b);
            var data = new float[n];
            if (name.Contains("norm")) for (int i = 0; i < n; i++) data[i] = 1f + 0.2f * (rng.NextSingle() - 0.5f);
            else if (name.EndsWith(".bias") || name.EndsWith("scale_shift_table")) for (int i = 0; i < n; i++) data[i] = 0.2f * (rng.NextSingle() - 0.5f);
            else
            {
                float a = MathF.Sqrt(3f / (n / shape[0]));
                for (int i = 0; i < n; i++) data[i] = a * (2 * rng.NextSingle() - 1);
            }
            values[name] = data;
        }
        WriteSafetensors(Path.Combine(dir, "diffusion_pytorch_model.safetensors"), shapes, (name, _) => values[name]);
        File.WriteAllText(Path.Combine(dir, "config.json"), JsonSerializer.Serialize(new Dictionary<string, object?>
        {
            ["_class_name"] = "WanTransformer3DModel", ["added_kv_proj_dim"] = null, ["attention_head_dim"] = HeadDim,
            ["cross_attn_norm"] = true, ["eps"] = 1e-6, ["ffn_dim"] = Ffn, ["freq_dim"] = FreqDim, ["image_dim"] = null,
            ["in_channels"] = C, ["num_attention_heads"] = widths.Heads, ["num_layers"] = 1, ["out_channels"] = C,
            ["patch_size"] = new[] { 1, 2, 2 }, ["qk_norm"] = "rms_norm_across_heads", ["rope_max_seq_len"] = 1024, ["text_dim"] = TextDim,
        }));
        return values;
    }

    /// <summary>
    /// wan-architecture.md section 2.3 evaluated in float64 (rows of row-major matrices), with each token's own
    /// timestep as diffusers' per-token path (wan22-and-conditioning.md): every token gets the modulation of its timestep.
    /// </summary>
    private sealed class Reference(Widths widths, Dictionary<string, float[]> w, float[] latents, float[] text, float[] timesteps)
    {
        private readonly int Heads = widths.Heads, D = widths.D, C = widths.Channels, TextRows = widths.TextRows;
        private readonly Dictionary<float, (double[] Temb, double[] Proj)> _time = new();

        public double[][] OutputTokens(int[] tokens)
        {
            // Patch embedding of every token: the patch vector is ordered (c, dt, dh, dw).
            var x = new double[L][];
            for (int f = 0; f < T; f++)
                for (int h = 0; h < Hp; h++)
                    for (int ww = 0; ww < Wp; ww++)
                    {
                        var patch = new double[C * 4];
                        for (int c = 0; c < C; c++)
                            for (int dh = 0; dh < 2; dh++)
                                for (int dw = 0; dw < 2; dw++)
                                    patch[c * 4 + dh * 2 + dw] = latents[((c * T + f) * H + 2 * h + dh) * W + 2 * ww + dw];
                        x[(f * Hp + h) * Wp + ww] = Linear(patch, "patch_embedding");
                    }

            var table = w["blocks.0.scale_shift_table"];
            double[] Mod(int token, int j)
            {
                var proj = Time(token).Proj;
                return Enumerable.Range(0, D).Select(i => table[j * D + i] + proj[j * D + i]).ToArray();
            }

            var context = Enumerable.Range(0, TextRows).Select(r =>
                Linear(GeluTanh(Linear(text.AsSpan(r * TextDim, TextDim).ToArray().Select(v => (double)v).ToArray(),
                    "condition_embedder.text_embedder.linear_1")), "condition_embedder.text_embedder.linear_2")).ToArray();

            // Self-attention: keys and values of all tokens, queries of the checked ones.
            var n1 = x.Select((r, t) => Modulate(r, Mod(t, 0), Mod(t, 1))).ToArray();
            var keys = n1.Select((r, t) => Rope(RmsNorm(Linear(r, "blocks.0.attn1.to_k"), "blocks.0.attn1.norm_k"), t)).ToArray();
            var vals = n1.Select(r => Linear(r, "blocks.0.attn1.to_v")).ToArray();
            var crossKeys = context.Select(r => RmsNorm(Linear(r, "blocks.0.attn2.to_k"), "blocks.0.attn2.norm_k")).ToArray();
            var crossVals = context.Select(r => Linear(r, "blocks.0.attn2.to_v")).ToArray();

            var result = new double[tokens.Length][];
            for (int i = 0; i < tokens.Length; i++)
            {
                int t = tokens[i];
                var q = Rope(RmsNorm(Linear(n1[t], "blocks.0.attn1.to_q"), "blocks.0.attn1.norm_q"), t);
                var a = Linear(Attend(q, keys, vals), "blocks.0.attn1.to_out.0");
                var gate = Mod(t, 2);
                var h1 = x[t].Select((v, j) => v + gate[j] * a[j]).ToArray();

                var n2 = LayerNorm(h1).Select((v, j) => v * w["blocks.0.norm2.weight"][j] + w["blocks.0.norm2.bias"][j]).ToArray();
                var q2 = RmsNorm(Linear(n2, "blocks.0.attn2.to_q"), "blocks.0.attn2.norm_q");
                var a2 = Linear(Attend(q2, crossKeys, crossVals), "blocks.0.attn2.to_out.0");
                var h2 = h1.Select((v, j) => v + a2[j]).ToArray();

                var f = Linear(GeluTanh(Linear(Modulate(h2, Mod(t, 3), Mod(t, 4)), "blocks.0.ffn.net.0.proj")), "blocks.0.ffn.net.2");
                var cGate = Mod(t, 5);
                var h3 = h2.Select((v, j) => v + cGate[j] * f[j]).ToArray();

                var outTable = w["scale_shift_table"];
                var temb = Time(t).Temb;
                var oShift = Enumerable.Range(0, D).Select(j => outTable[j] + temb[j]).ToArray();
                var oScale = Enumerable.Range(0, D).Select(j => outTable[D + j] + temb[j]).ToArray();
                result[i] = Linear(Modulate(h3, oShift, oScale), "proj_out");
            }
            return result;
        }

        /// <summary>temb and timestep_proj of a token's timestep: frequencies and angles in f32 as diffusers computes them, cos half first.</summary>
        private (double[] Temb, double[] Proj) Time(int token)
        {
            float timestep = timesteps[token];
            if (_time.TryGetValue(timestep, out var cached)) return cached;
            var emb = new double[FreqDim];
            for (int k = 0; k < FreqDim / 2; k++)
            {
                float freq = MathF.Exp(-MathF.Log(10000f) * k / (FreqDim / 2));
                float angle = timestep * freq;
                emb[k] = Math.Cos(angle);
                emb[FreqDim / 2 + k] = Math.Sin(angle);
            }
            var temb = Linear(Silu(Linear(emb, "condition_embedder.time_embedder.linear_1")), "condition_embedder.time_embedder.linear_2");
            return _time[timestep] = (temb, Linear(Silu(temb), "condition_embedder.time_proj"));
        }

        private double[] Linear(double[] x, string prefix)
        {
            var weight = w[prefix + ".weight"];
            var bias = w[prefix + ".bias"];
            int inF = x.Length, outF = bias.Length;
            var y = new double[outF];
            for (int o = 0; o < outF; o++)
            {
                double s = bias[o];
                int row = o * inF;
                for (int k = 0; k < inF; k++) s += weight[row + k] * x[k];
                y[o] = s;
            }
            return y;
        }

        private static double[] LayerNorm(double[] x)
        {
            double mean = x.Average(), variance = x.Sum(v => (v - mean) * (v - mean)) / x.Length;
            return x.Select(v => (v - mean) / Math.Sqrt(variance + Eps)).ToArray();
        }

        private static double[] Modulate(double[] x, double[] shift, double[] scale)
            => LayerNorm(x).Select((v, j) => v * (1 + scale[j]) + shift[j]).ToArray();

        private double[] RmsNorm(double[] x, string name)
        {
            double rms = Math.Sqrt(x.Sum(v => v * v) / x.Length + Eps);
            return x.Select((v, j) => v / rms * w[name + ".weight"][j]).ToArray();
        }

        /// <summary>Interleaved pairs; dims 0..43 rotate with the frame, 44..85 with the row, 86..127 with the column.</summary>
        private double[] Rope(double[] x, int token)
        {
            int f = token / (Hp * Wp), h = token / Wp % Hp, c = token % Wp;
            var y = new double[x.Length];
            for (int head = 0; head < Heads; head++)
                for (int k = 0; k < HeadDim / 2; k++)
                {
                    (int pos, int j, int d) = k < 22 ? (f, k, 44) : k < 43 ? (h, k - 22, 42) : (c, k - 43, 42);
                    double angle = pos / Math.Pow(10000, 2.0 * j / d);
                    int i = head * HeadDim + 2 * k;
                    y[i] = x[i] * Math.Cos(angle) - x[i + 1] * Math.Sin(angle);
                    y[i + 1] = x[i] * Math.Sin(angle) + x[i + 1] * Math.Cos(angle);
                }
            return y;
        }

        private double[] Attend(double[] q, double[][] keys, double[][] values)
        {
            var o = new double[D];
            for (int head = 0; head < Heads; head++)
            {
                int b = head * HeadDim;
                var scores = keys.Select(k =>
                {
                    double s = 0;
                    for (int i = 0; i < HeadDim; i++) s += q[b + i] * k[b + i];
                    return s / Math.Sqrt(HeadDim);
                }).ToArray();
                double max = scores.Max();
                var p = scores.Select(s => Math.Exp(s - max)).ToArray();
                double sum = p.Sum();
                for (int r = 0; r < keys.Length; r++)
                    for (int i = 0; i < HeadDim; i++) o[b + i] += p[r] / sum * values[r][b + i];
            }
            return o;
        }

        private static double[] Silu(double[] x) => x.Select(v => v / (1 + Math.Exp(-v))).ToArray();

        private static double[] GeluTanh(double[] x)
            => x.Select(v => 0.5 * v * (1 + Math.Tanh(Math.Sqrt(2 / Math.PI) * (v + 0.044715 * v * v * v)))).ToArray();
    }
}
