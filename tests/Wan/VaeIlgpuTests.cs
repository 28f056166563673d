using Xunit;
using System.Reflection;
using Sora.Native.Wan;
using Sora.Runtime;
using static Sora.Tests.Wan.VaeTestSupport;

namespace Sora.Tests.Wan;

/// <summary>The fixture decode on ILGPU's CPU accelerator: the same kernels that run on CUDA and OpenCL.</summary>
public sealed class VaeIlgpuTests
{
    [IlgpuCpuFact]
    public void Decode_matches_diffusers_on_the_ilgpu_cpu_accelerator()
    {
        using var backend = IlgpuCpuFactAttribute.CreateBackend();
        using var vae = WanVae.Load(FixtureVaeDir, backend);
        var (latents, latentShape) = FixtureTensor("vae_decode_case.safetensors", "latents");
        var (expected, expectedShape) = FixtureTensor("vae_decode_case.safetensors", "expected");
        using var z = ToBackend(backend, latents, latentShape);
        using var video = vae.Decode(z);
        Assert.Equal(expectedShape, video.Shape);
        double error = RelativeError(Read(backend, video), expected);
        Assert.True(error < 1e-4, $"relative error {error:E2}");
    }
}

/// <summary>
/// A fact that runs only when this build has the ILGPU backend (<c>Sora.Kernels.Backends.Create("ilgpu-cpu")</c>),
/// found by reflection so the VAE tests build before that backend lands; otherwise it is reported as skipped.
/// </summary>
public sealed class IlgpuCpuFactAttribute : FactAttribute
{
    private static readonly MethodInfo? Create = typeof(Sora.Native.Loading.WeightSet).Assembly
        .GetReferencedAssemblies().Where(a => a.Name == "Sora.Kernels").Select(Assembly.Load)
        .Select(a => a.GetType("Sora.Kernels.Backends"))
        .Select(t => t?.GetMethod("Create", [typeof(string)])).FirstOrDefault(m => m is not null);

    public IlgpuCpuFactAttribute()
    {
        if (Create is null) Skip = "the ILGPU backend (Sora.Kernels.Backends) is not in this build";
    }

    public static IBackend CreateBackend() => (IBackend)Create!.Invoke(null, ["ilgpu-cpu"])!;
}

/// <summary>A fact that runs only when the environment variable is "1" (long measurements); otherwise skipped.</summary>
public sealed class OptInFactAttribute : FactAttribute
{
    public OptInFactAttribute(string variable)
    {
        if (Environment.GetEnvironmentVariable(variable) != "1") Skip = $"opt-in: set {variable}=1 to run";
    }
}
