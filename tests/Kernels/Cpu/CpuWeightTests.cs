using Sora.Kernels.Cpu;
using Sora.Kernels.Gpu;
using Sora.Runtime;
using Sora.Runtime.Gguf;
using Xunit;

namespace Sora.Tests.Kernels.Cpu;

/// <summary>The CPU GEMM and convolution with fp8, ggml-block and LoRA weights (<see cref="WeightChecks"/>).</summary>
public class CpuWeightTests
{
    private static readonly CpuBackend Backend = new(2);

    public static readonly TheoryData<GgmlType> BlockTypes = new(WeightChecks.BlockTypes);

    // Odd M and N, K over one KC block with a remainder (768 = 512 + 256, 1280), and rows that begin inside blocks
    // (K = 320 for 256-element blocks, K = 36 for 32-element ones).
    [Theory]
    [MemberData(nameof(BlockTypes))]
    public void Block_weight_gemm_matches_the_gemm_on_its_ggml_values(GgmlType type)
    {
        bool k256 = GgmlTypes.BlockSize(type) == 256;
        WeightChecks.BlockGemm(Backend, type, 37, 45, k256 ? 768 : 800, 1);
        WeightChecks.BlockGemm(Backend, type, 19, k256 ? 44 : 40, k256 ? 320 : 36, 2);
        WeightChecks.BlockGemm(Backend, type, 130, 9, 1280, 3);
    }

    [Theory]
    [MemberData(nameof(BlockTypes))]
    public void Block_weight_dequantises_to_ggml_values_exactly(GgmlType type) =>
        WeightChecks.DequantizeExact(Backend, type, 8, GgmlTypes.BlockSize(type) == 256 ? 320 : 36, 4);

    [Theory]
    [InlineData(DType.F8E4M3, 1f)]
    [InlineData(DType.F8E4M3, 0.0371f)]
    [InlineData(DType.F8E5M2, 1f)]
    [InlineData(DType.F8E5M2, 2.5f)]
    public void Fp8_weight_gemm_matches_the_gemm_on_decoded_times_scale(DType dtype, float scale)
    {
        WeightChecks.Fp8Gemm(Backend, dtype, scale, 37, 53, 71, 5);
        WeightChecks.Fp8Gemm(Backend, dtype, scale, 130, 20, 600, 6);
    }

    [Fact]
    public void Lora_side_path_matches_the_merged_float64_weight() => WeightChecks.LoraGemm(Backend, 23, 40, 96, 7);

    [Fact]
    public void Conv3d_takes_block_and_fp8_weights() => WeightChecks.ConvWeights(Backend);

    [Theory]
    [MemberData(nameof(WeightFixtures.FileTypes), MemberType = typeof(WeightFixtures))]
    public void Gguf_fixture_tensors_expand_to_ggmls_values(string fileType) => WeightFixtures.EveryTensorExpandsToGgmlsValues(Backend, fileType);

    [Fact]
    public void Bad_weights_are_rejected_naming_the_argument()
    {
        using var other = IlgpuBackend.CreateCpu();
        WeightChecks.BadWeightsAreRejected(Backend, other);
    }
}

/// <summary>wan-small with block weights on the CPU backend (<see cref="QuantizedTransformerChecks"/>).</summary>
public class CpuQuantizedTransformerTests
{
    [Theory]
    [InlineData(GgmlType.Q8_0)]
    [InlineData(GgmlType.Q4_K)]
    [InlineData(GgmlType.Q5_K)]
    [InlineData(GgmlType.Q6_K)]
    public void Wan_small_with_block_weights_matches_the_dense_model_on_their_values(GgmlType type)
    {
        using var backend = new CpuBackend(2);
        QuantizedTransformerChecks.MatchesTheDenseModelOnTheExpandedValues(backend, type);
    }
}
