using Xunit;
using Sora.Native.Wan;
using Sora.Runtime;
using static Sora.Tests.Wan.VaeTestSupport;

namespace Sora.Tests.Wan;

/// <summary>
/// The smallest decode on ILGPU's CPU accelerator (the same kernels that run on CUDA and OpenCL): the first
/// latent frame of the fixture, which by causality decodes to the first frame of diffusers' video. The
/// accelerator runs kernels on emulated thread groups, far too slowly for the whole case.
/// </summary>
public sealed class VaeIlgpuTests(Xunit.Abstractions.ITestOutputHelper output)
{
    [Fact]
    public void First_frame_decode_matches_diffusers_on_the_ilgpu_cpu_accelerator()
    {
        using var backend = Sora.Kernels.Gpu.IlgpuBackend.CreateCpu();
        using var vae = WanVae.Load(FixtureVaeDir, backend);
        var (latents, latentShape) = FixtureTensor("vae_decode_case.safetensors", "latents");
        var (expected, expectedShape) = FixtureTensor("vae_decode_case.safetensors", "expected");
        int z = latentShape[0], t = latentShape[1], h = latentShape[2], w = latentShape[3];
        int frames = expectedShape[1], frame = expectedShape[2] * expectedShape[3];

        var first = new float[z * h * w];
        for (int c = 0; c < z; c++) Array.Copy(latents, c * t * h * w, first, c * h * w, h * w);
        var expectedFirst = new float[3 * frame];
        for (int c = 0; c < 3; c++) Array.Copy(expected, c * frames * frame, expectedFirst, c * frame, frame);

        using var latent = ToBackend(backend, first, [z, 1, h, w]);
        using var video = vae.Decode(latent);
        Assert.Equal([3, 1, expectedShape[2], expectedShape[3]], video.Shape);
        double error = RelativeError(Read(backend, video), expectedFirst);
        output.WriteLine($"relative error {error:E2}");
        Assert.True(error < 1e-4, $"relative error {error:E2}");
    }
}

/// <summary>A fact that runs only when the environment variable is "1" (long measurements); otherwise skipped.</summary>
public sealed class OptInFactAttribute : FactAttribute
{
    public OptInFactAttribute(string variable)
    {
        if (Environment.GetEnvironmentVariable(variable) != "1") Skip = $"opt-in: set {variable}=1 to run";
    }
}
