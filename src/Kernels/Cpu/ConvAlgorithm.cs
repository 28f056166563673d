using System.Runtime.CompilerServices;

[assembly: InternalsVisibleTo("Sora.Tests")]
[assembly: InternalsVisibleTo("Sora.Bench")]

namespace Sora.Kernels.Cpu;

/// <summary>How the CPU backend computes a 3D convolution.</summary>
internal enum ConvAlgorithm
{
    /// <summary>Winograd F(4×4, 3×3) where it applies (<see cref="WinogradConv.Applies"/>), else the implicit GEMM.</summary>
    Auto,
    /// <summary>The implicit GEMM for every shape: the direct sum, kept as the reference for the Winograd path.</summary>
    ImplicitGemm,
}

public sealed partial class CpuBackend
{
    /// <summary>Which algorithm this backend's <c>Conv3d</c> runs; tests and benchmarks pin the implicit GEMM to compare the two.</summary>
    internal ConvAlgorithm ConvAlgorithm { get; init; }
}
