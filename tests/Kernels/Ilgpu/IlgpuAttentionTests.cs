using Sora.Kernels.Gpu;
using Sora.Runtime;
using Xunit;
using static Sora.Tests.Kernels.OpTestKit;

namespace Sora.Tests.Kernels.Ilgpu;

[Collection(IlgpuCpuCollection.Name)]
[Trait("Backend", "IlgpuCpu")]
public class IlgpuAttentionTests(IlgpuCpuFixture fixture)
{
    private readonly IlgpuBackend _backend = fixture.Backend;

    private void Check(int nq, int nk, int h, int d, float scale, int[]? qo = null, int[]? ko = null, int[]? valid = null,
        bool bias = false, int center = 0, int seed = 1, float spread = 1f) =>
        IlgpuChecks.Attention(_backend, nq, nk, h, d, scale, qo, ko, valid, bias, center, seed, spread);

    // The CPU accelerator's tiles are 8 queries × 8 keys: these cover one element, partial tiles and many tiles.
    [Theory]
    [InlineData(1, 1, 1, 1)]
    [InlineData(8, 8, 1, 8)]
    [InlineData(13, 21, 2, 16)]
    [InlineData(9, 5, 3, 12)]
    public void Single_sequence_matches_softmax_reference(int nq, int nk, int h, int d) =>
        Check(nq, nk, h, d, 1f / MathF.Sqrt(d), seed: nq + nk + h + d, spread: 2f);

    [Fact]
    public void Packed_variable_length_sequences_stay_block_diagonal() =>
        Check(20, 23, 2, 8, 0.3f, [0, 5, 11, 20], [0, 9, 13, 23], seed: 5, spread: 2f);

    [Fact]
    public void Key_padding_masks_keys_beyond_the_valid_length() =>
        Check(15, 20, 2, 8, 0.3f, [0, 6, 15], [0, 11, 20], [10, 3], seed: 9);

    [Fact]
    public void Relative_bias_is_added_by_position_inside_each_sequence() =>
        Check(17, 17, 2, 8, 1f, [0, 7, 17], [0, 7, 17], [7, 9], bias: true, center: 12, seed: 13);

    [Fact]
    public void A_sequence_with_no_valid_keys_yields_zeros_not_NaN()
    {
        Check(12, 12, 2, 8, 0.2f, [0, 5, 12], [0, 5, 12], [0, 4], seed: 21);
        using var q = Upload(_backend, Random(4 * 2 * 8, 3), [4, 2, 8]);
        using var k = Upload(_backend, Random(4 * 2 * 8, 4), [4, 2, 8]);
        using var o = Poisoned(_backend, 4, 2, 8);
        _backend.Attention(q, k, k, o, new AttentionOptions { Scale = 1, KeyValidLengths = [0] });
        Assert.All(Download(_backend, o), value => Assert.Equal(0f, value));
    }

    [Fact]
    public void Strided_views_of_a_fused_projection_are_read_in_place()
    {
        int n = 11, h = 2, d = 8, width = 3 * h * d;
        float[] qkv = Random(n * width, 31, 2f);
        using var fused = Upload(_backend, qkv, [n, 3 * h, d]);
        using var o = Poisoned(_backend, n, h, d);
        _backend.Attention(fused.Slice(1, 0, h), fused.Slice(1, h, h), fused.Slice(1, 2 * h, h), o, new AttentionOptions { Scale = 0.3f });
        double[] q = new double[n * h * d], k = new double[n * h * d], v = new double[n * h * d];
        for (int r = 0; r < n; r++)
            for (int c = 0; c < h * d; c++)
            {
                q[r * h * d + c] = qkv[r * width + c];
                k[r * h * d + c] = qkv[r * width + h * d + c];
                v[r * h * d + c] = qkv[r * width + 2 * h * d + c];
            }
        AssertClose(Reference.Attention(q, k, v, n, n, h, d, 0.3), Download(_backend, o));
    }

    [Fact]
    public void Bad_offsets_are_rejected_naming_options()
    {
        using var q = Upload(_backend, Random(4 * 8, 3), [4, 1, 8]);
        using var o = Poisoned(_backend, 4, 1, 8);
        var e = Assert.Throws<ArgumentException>(() => _backend.Attention(q, q, q, o, new AttentionOptions { Scale = 1, QueryOffsets = [0, 3] }));
        Assert.Contains("QueryOffsets", e.Message);
        Assert.Equal("options", e.ParamName);
    }

    [Fact]
    public void Rope_rotates_interleaved_pairs_of_strided_rows_by_position()
    {
        int rows = 6, h = 2, d = 6, s = 3;
        float[] x = Random(rows * h * d, 41, 2f), cos = Random(s * d / 2, 42), sin = Random(s * d / 2, 43);
        var view = StridedRows(_backend, x, rows, h * d, h * d + 4, out var owner);
        using (owner)
        using (var ct = Upload(_backend, cos, [s, d / 2]))
        using (var st = Upload(_backend, sin, [s, d / 2]))
        {
            _backend.ApplyRope(Heads(view, rows, h, d), ct, st);
            var expected = Reference.Rope(D(x), D(cos), D(sin), rows, h, d, s);
            AssertClose(expected, Download(_backend, view));
        }
    }

    /// <summary>[rows, H·D] row-strided view seen as [rows, H, D] (Reshape needs contiguity, so build the strides).</summary>
    private static Tensor Heads(Tensor rowsView, int rows, int h, int d) =>
        new(rowsView.Storage, [rows, h, d], [rowsView.Strides[0], d, 1], rowsView.Offset);
}
