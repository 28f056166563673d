using Sora.Kernels.Cpu;
using Sora.Runtime;
using Xunit;
using static Sora.Tests.Kernels.OpTestKit;

namespace Sora.Tests.Kernels.Cpu;

public class CpuAttentionTests
{
    private static readonly CpuBackend Backend = new(2);

    private static void Check(int nq, int nk, int h, int d, float scale, int[]? qo = null, int[]? ko = null, int[]? valid = null,
        bool bias = false, int center = 0, int seed = 1, float spread = 1f, int[]? repeatFrom = null)
    {
        float[] q = Random(nq * h * d, seed, spread), k = Random(nk * h * d, seed + 1, spread), v = Random(nk * h * d, seed + 2);
        if (repeatFrom is not null) RepeatLastRows(k, v, h * d, ko ?? [0, nk], valid, repeatFrom);
        float[]? rb = bias ? Random(h * (2 * center + 1), seed + 3, 2f) : null;
        using var qt = Upload(Backend, q, [nq, h, d]);
        using var kt = Upload(Backend, k, [nk, h, d]);
        using var vt = Upload(Backend, v, [nk, h, d]);
        using var bt = rb is null ? null : Upload(Backend, rb, [h, 2 * center + 1]);
        using var o = Poisoned(Backend, nq, h, d);
        Backend.Attention(qt, kt, vt, o, new AttentionOptions
        {
            Scale = scale, QueryOffsets = qo, KeyOffsets = ko, KeyValidLengths = valid, RelativeBias = bt, RelativeBiasCenter = center,
        });
        var expected = Reference.Attention(D(q), D(k), D(v), nq, nk, h, d, scale, qo, ko, valid, rb is null ? null : D(rb), center);
        AssertClose(expected, Download(Backend, o), 1e-5, $"attention nq={nq} nk={nk} h={h} d={d}");
    }

    [Theory]
    [InlineData(1, 1, 1, 1)]
    [InlineData(64, 64, 2, 64)]
    [InlineData(77, 45, 3, 128)]
    [InlineData(200, 200, 2, 32)]
    [InlineData(33, 17, 1, 40)]
    public void Single_sequence_matches_softmax_reference(int nq, int nk, int h, int d) =>
        Check(nq, nk, h, d, 1f / MathF.Sqrt(d), seed: nq + nk + h + d, spread: 2f);

    [Fact]
    public void Peaked_scores_where_one_key_dominates() => Check(50, 300, 2, 64, 1f, seed: 41, spread: 2f);

    [Fact]
    public void Several_query_and_key_blocks_with_partial_ones_and_odd_head_dim() =>
        Check(130, 600, 2, 72, 0.12f, [0, 130], [0, 600], [531], seed: 43, spread: 2f);

    [Fact]
    public void Packed_variable_length_sequences_stay_block_diagonal() =>
        Check(30, 33, 2, 64, 0.125f, [0, 5, 17, 30], [0, 9, 20, 33], seed: 5, spread: 2f);

    [Fact]
    public void Key_padding_masks_keys_beyond_the_valid_length() =>
        Check(30, 36, 2, 48, 0.15f, [0, 12, 30], [0, 16, 36], [10, 7], seed: 9);

    [Fact]
    public void Relative_bias_is_added_by_position_inside_each_sequence() =>
        Check(26, 26, 3, 16, 1f, [0, 11, 26], [0, 11, 26], [11, 9], bias: true, center: 20, seed: 13);

    [Fact]
    public void Cross_attention_with_other_key_lengths() =>
        Check(40, 512, 2, 64, 0.125f, [0, 25, 40], [0, 256, 512], [7, 256], seed: 17, spread: 2f);

    /// <summary>Keys and values of sequence b from its row from[b] up to its last visible row become copies of that row (a prompt's padding).</summary>
    private static void RepeatLastRows(float[] k, float[] v, int width, int[] ko, int[]? valid, int[] from)
    {
        for (int b = 0; b < from.Length; b++)
        {
            int last = ko[b] + (valid?[b] ?? ko[b + 1] - ko[b]) - 1;
            for (int r = ko[b] + from[b]; r < last; r++)
            {
                Array.Copy(k, last * width, k, r * width, width);
                Array.Copy(v, last * width, v, r * width, width);
            }
        }
    }

    [Fact]
    public void Repeated_padding_keys_count_once_each_short_sequences() =>
        Check(41, 512, 4, 32, 1f / MathF.Sqrt(32), [0, 14, 41], [0, 256, 512], seed: 51, spread: 2f, repeatFrom: [9, 30]);

    [Fact]
    public void Repeated_padding_keys_count_once_each_long_sequence() =>
        Check(400, 512, 2, 32, 0.3f, [0, 400], [0, 512], seed: 53, spread: 2f, repeatFrom: [12]);

    [Fact]
    public void Repeated_keys_within_the_valid_length_and_a_sequence_of_one_repeated_key() =>
        Check(30, 300, 2, 48, 0.2f, [0, 12, 30], [0, 200, 300], [150, 100], seed: 55, spread: 2f, repeatFrom: [40, 0]);

    [Fact]
    public void A_sequence_with_no_valid_keys_yields_zeros_not_NaN()
    {
        Check(20, 20, 2, 32, 0.2f, [0, 8, 20], [0, 8, 20], [0, 5], seed: 21);
        using var q = Upload(Backend, Random(4 * 2 * 8, 3), [4, 2, 8]);
        using var k = Upload(Backend, Random(4 * 2 * 8, 4), [4, 2, 8]);
        using var o = Poisoned(Backend, 4, 2, 8);
        Backend.Attention(q, k, k, o, new AttentionOptions { Scale = 1, KeyValidLengths = [0] });
        Assert.All(Download(Backend, o), value => Assert.Equal(0f, value));
    }

    [Fact]
    public void Strided_views_of_a_fused_projection_are_read_in_place()
    {
        int n = 37, h = 3, d = 32, width = 3 * h * d;
        float[] qkv = Random(n * width, 31, 2f);
        using var fused = Upload(Backend, qkv, [n, 3 * h, d]);
        using var o = Poisoned(Backend, n, h, d);
        Backend.Attention(fused.Slice(1, 0, h), fused.Slice(1, h, h), fused.Slice(1, 2 * h, h), o, new AttentionOptions { Scale = 0.2f });
        double[] q = new double[n * h * d], k = new double[n * h * d], v = new double[n * h * d];
        for (int r = 0; r < n; r++)
            for (int c = 0; c < h * d; c++)
            {
                q[r * h * d + c] = qkv[r * width + c];
                k[r * h * d + c] = qkv[r * width + h * d + c];
                v[r * h * d + c] = qkv[r * width + 2 * h * d + c];
            }
        AssertClose(Reference.Attention(q, k, v, n, n, h, d, 0.2), Download(Backend, o));
    }

    [Fact]
    public void Bad_offsets_are_rejected_naming_options()
    {
        using var q = Upload(Backend, Random(4 * 8, 3), [4, 1, 8]);
        using var o = Poisoned(Backend, 4, 1, 8);
        var e = Assert.Throws<ArgumentException>(() => Backend.Attention(q, q, q, o, new AttentionOptions { Scale = 1, QueryOffsets = [0, 3] }));
        Assert.Contains("QueryOffsets", e.Message);
    }
}
