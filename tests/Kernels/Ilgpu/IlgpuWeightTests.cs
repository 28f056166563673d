using Sora.Kernels.Cpu;
using Sora.Kernels.Gpu;
using Sora.Runtime;
using Sora.Runtime.Gguf;
using Xunit;

namespace Sora.Tests.Kernels.Ilgpu;

/// <summary>
/// The ILGPU GEMM and convolution with fp8, ggml-block and LoRA weights on the CPU accelerator (tiny shapes: it runs at
/// ~0.1 GFLOP/s), ragged against the 16×16 tile and rows starting inside blocks.
/// </summary>
[Collection(IlgpuCpuCollection.Name)]
[Trait("Backend", "IlgpuCpu")]
public class IlgpuWeightTests(IlgpuCpuFixture fixture)
{
    private readonly IlgpuBackend _backend = fixture.Backend;

    public static readonly TheoryData<GgmlType> BlockTypes = new(WeightChecks.BlockTypes);

    [Theory]
    [MemberData(nameof(BlockTypes))]
    public void Block_weight_gemm_matches_the_gemm_on_its_ggml_values(GgmlType type)
    {
        bool k256 = GgmlTypes.BlockSize(type) == 256;
        WeightChecks.BlockGemm(_backend, type, 7, 5, k256 ? 256 : 96, 1);
        WeightChecks.BlockGemm(_backend, type, 17, k256 ? 4 : 8, k256 ? 320 : 36, 2);
    }

    [Theory]
    [MemberData(nameof(BlockTypes))]
    public void Block_weight_dequantises_to_ggml_values_exactly(GgmlType type) =>
        WeightChecks.DequantizeExact(_backend, type, 8, GgmlTypes.BlockSize(type) == 256 ? 320 : 36, 4);

    [Theory]
    [InlineData(DType.F8E4M3, 1f)]
    [InlineData(DType.F8E4M3, 0.0371f)]
    [InlineData(DType.F8E5M2, 1f)]
    [InlineData(DType.F8E5M2, 2.5f)]
    public void Fp8_weight_gemm_matches_the_gemm_on_decoded_times_scale(DType dtype, float scale) =>
        WeightChecks.Fp8Gemm(_backend, dtype, scale, 17, 21, 19, 5);

    [Fact]
    public void Lora_side_path_matches_the_merged_float64_weight() => WeightChecks.LoraGemm(_backend, 9, 18, 64, 7);

    [Fact]
    public void Conv3d_takes_block_and_fp8_weights() => WeightChecks.ConvWeights(_backend);

    [Theory]
    [MemberData(nameof(WeightFixtures.FileTypes), MemberType = typeof(WeightFixtures))]
    public void Gguf_fixture_tensors_expand_to_ggmls_values(string fileType) => WeightFixtures.EveryTensorExpandsToGgmlsValues(_backend, fileType);

    [Fact]
    public void Bad_weights_are_rejected_naming_the_argument()
    {
        using var other = new CpuBackend(1);
        WeightChecks.BadWeightsAreRejected(_backend, other);
    }

    [Fact]
    public void Fp8_codes_decode_to_the_tables_for_all_256_codes()
    {
        foreach (var dtype in new[] { DType.F8E4M3, DType.F8E5M2 })
        {
            var codes = Enumerable.Range(0, 256).Select(c => (byte)c).ToArray();
            var weight = WeightChecks.Fp8(_backend, dtype, codes, 16, 16, 1f, out var owner);
            using (owner)
            using (var y = OpTestKit.Poisoned(_backend, 16, 16))
            {
                _backend.Dequantize(weight, y);
                var got = OpTestKit.Download(_backend, y);
                var want = WeightChecks.DecodeFp8(dtype, codes, 1f);
                for (int c = 0; c < 256; c++)
                    Assert.True(float.IsNaN(want[c]) ? float.IsNaN(got[c]) : BitConverter.SingleToInt32Bits(want[c]) == BitConverter.SingleToInt32Bits(got[c]),
                        $"{dtype} code 0x{c:X2}: {got[c]}, expected {want[c]}");
            }
        }
    }
}

/// <summary>wan-small with Q4_K weights on the ILGPU CPU accelerator (<see cref="QuantizedTransformerChecks"/>).</summary>
[Collection(IlgpuCpuCollection.Name)]
[Trait("Backend", "IlgpuCpu")]
public class IlgpuQuantizedTransformerTests(IlgpuCpuFixture fixture)
{
    [Fact]
    public void Wan_small_with_q4_K_weights_matches_the_dense_model_on_their_values() =>
        QuantizedTransformerChecks.MatchesTheDenseModelOnTheExpandedValues(fixture.Backend, GgmlType.Q4_K);
}
